//! Errors of the sync domain (baseline, and later the gate).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("`{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("`{}` is not a directory\n  help: pass the workspace folder", path.display())]
    NotADirectory { path: PathBuf },

    #[error("`--from-dir {}`: not a directory (an overlay upper is one)\n  help: pass the upper directory, or use `--from-tar FILE` for a tar stream", path.display())]
    UpperNotADirectory { path: PathBuf },

    #[error("`{}`: {message}\n  help: rename the entry; the sync gate only handles UTF-8 names", path.display())]
    Name { path: PathBuf, message: String },

    #[error("baseline `{}` is unreadable or damaged: {message}\n  help: record it again with `sandbox baseline {}`", path.display(), root.display())]
    Corrupt { path: PathBuf, root: PathBuf, message: String },

    #[error("no baseline for `{}`: the gate cannot tell what the VM saw\n  help: run `sandbox baseline {}` (or `sandbox up`) before the agent starts, then sync", path.display(), path.display())]
    NoBaseline { path: PathBuf },

    #[error(
        "`{path}` changed in the upper while the sync was running\n  help: stop the agent (or run `sync` after `down`) and try again"
    )]
    Changed { path: String },

    #[error("applying to `{}` failed: {source}; every change it had made was rolled back, the workspace is as it was\n  help: fix the cause (disk space, permissions) and run the sync again", host.display())]
    ApplyRolledBack { host: PathBuf, source: std::io::Error },

    #[error("applying to `{}` failed: {source}, and rolling back failed too: {rollback}\n  help: fix the cause; the next `sandbox sync` or `sandbox sync --undo` finishes the roll-back before anything else", host.display())]
    ApplyFailed { host: PathBuf, source: std::io::Error, rollback: std::io::Error },

    #[error("another `sandbox sync` is running for `{}` (its lock `{}` is held)\n  help: wait for it to finish, then run this one again", host.display(), lock.display())]
    Locked { host: PathBuf, lock: PathBuf },

    #[error("invalid sync policy in the profile: {message}")]
    Policy { message: String },

    #[error("{message}")]
    Scanner { message: String },

    #[error("there is no applied sync to undo for `{}`", path.display())]
    NothingToUndo { path: PathBuf },

    #[error("cannot undo: these paths changed since the sync: {}\n  help: restore or move them, then run `sandbox sync --undo` again", paths.join(", "))]
    ChangedSinceSync { paths: Vec<String> },

    #[error("baseline `{}` has format version {found}, this sandbox reads version {expected}\n  help: record it again with `sandbox baseline {}`", path.display(), root.display())]
    Version { path: PathBuf, root: PathBuf, found: u32, expected: u32 },
}
