//! Errors of the sync domain (baseline, and later the gate).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("`{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("`{}` is not a directory\n  help: pass the workspace folder", path.display())]
    NotADirectory { path: PathBuf },

    #[error("`{}`: {message}\n  help: rename the entry; the sync gate only handles UTF-8 names", path.display())]
    Name { path: PathBuf, message: String },

    #[error("baseline `{}` is unreadable or damaged: {message}\n  help: record it again with `sandbox baseline {}`", path.display(), root.display())]
    Corrupt { path: PathBuf, root: PathBuf, message: String },

    #[error("baseline `{}` has format version {found}, this sandbox reads version {expected}\n  help: record it again with `sandbox baseline {}`", path.display(), root.display())]
    Version { path: PathBuf, root: PathBuf, found: u32, expected: u32 },
}
