//! The command line: `args` is the clap surface (the only clap user), `command` the validated,
//! clap-free commands and their execution.

mod args;
pub(crate) mod command;
mod sync;

pub(crate) use args::Cli;
