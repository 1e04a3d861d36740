//! The top-level error: one variant per domain, and the mapping to exit codes. Only `run()`
//! prints it (through `ui`).

use crate::exit_code::ExitCode;
use crate::init::InitError;
use crate::profile::ProfileError;
use crate::render::RenderError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error("cannot determine the current directory: {0}")]
    CurrentDir(std::io::Error),
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}

impl Error {
    /// Every error is a plain failure today; gate refusals get their own code with the gate.
    #[must_use]
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::Error
    }
}
