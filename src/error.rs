//! The top-level error: one variant per domain, and the mapping to exit codes. Only `run()`
//! prints it (through `ui`).

use crate::exit_code::ExitCode;
use crate::init::InitError;
use crate::profile::ProfileError;
use crate::render::RenderError;
use crate::scan::ScanError;
use crate::sync::SyncError;
use crate::vm::VmError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Vm(#[from] VmError),

    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("{0}\n  help: see `sandbox help` for the command's options")]
    Usage(String),
    #[error("cannot determine the current directory: {0}")]
    CurrentDir(std::io::Error),
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}

impl Error {
    #[must_use]
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Vm(crate::vm::VmError::Interrupted { .. }) => ExitCode::Interrupted,
            _ => ExitCode::Error,
        }
    }
}
