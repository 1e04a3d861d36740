//! Errors of `sandbox init`.

use std::path::PathBuf;

use crate::profile::{Diagnostic, ProfileError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error(
        "`sandbox init` needs a terminal to ask questions\n  help: run it in a terminal, or pass `--non-interactive` with `--name`, `--workspace`, ... (see `sandbox init --help`)"
    )]
    NoTerminal,

    #[error("`{}` cannot be a sandbox name: {reason}\n  help: pass another `--name`", name.escape_debug())]
    Name { name: String, reason: String },

    #[error("profile `{}` already exists\n  help: pass `--force` to replace it (a backup is kept), or choose another `--name`", path.display())]
    Exists { path: PathBuf },

    #[error("the answers do not make a valid profile:{}\n  help: run `sandbox init` again with corrected answers", diagnostics.iter().map(|d| format!("\n{d}")).collect::<String>())]
    Invalid { diagnostics: Vec<Diagnostic> },

    #[error("cannot write `{}`: {source}\n  help: check that the profiles directory is writable", path.display())]
    Write { path: PathBuf, source: std::io::Error },

    #[error("the wizard was cancelled: {0}")]
    Prompt(String),

    #[error("init template failed: {0}")]
    Template(String),

    #[error(transparent)]
    Profile(#[from] ProfileError),
}
