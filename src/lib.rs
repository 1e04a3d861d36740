//! `sandbox`: run AI agents in a hardened VM; changes reach the host only through the sync gate.
//!
//! `main.rs` only calls [`run`]. See docs/ARCHITECTURE.md for the codemap and invariants.

pub(crate) mod cli;
pub(crate) mod environment;
pub(crate) mod error;
pub(crate) mod exec;
pub mod exit_code;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod init;
pub(crate) mod lima;
pub(crate) mod profile;
pub(crate) mod render;
pub(crate) mod scan;
pub(crate) mod secrets;
pub(crate) mod sync;
pub(crate) mod ui;
pub(crate) mod vm;

use std::ffi::OsString;

use clap::Parser;

pub use exit_code::ExitCode;

/// Parse `args`, run the command, print any error once, and return the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { ExitCode::Usage } else { ExitCode::Ok };
            // clap prints help, version and usage errors itself, coloured when on a terminal.
            let _ = e.print();
            return code;
        }
    };
    let ui = ui::Ui::new(cli.quiet);
    let env = match environment::Environment::from_process() {
        Ok(env) => env,
        Err(e) => {
            let err = error::Error::CurrentDir(e);
            ui.error(&err);
            return err.exit_code();
        }
    };
    let result = cli::command::Command::from_args(cli.profile, cli.command, &env).and_then(|c| c.execute(&env, &ui));
    match result {
        Ok(code) => code,
        Err(err) => {
            ui.error(&err);
            err.exit_code()
        }
    }
}
