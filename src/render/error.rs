//! Errors of rendering and of writing or checking rendered files.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    #[error(
        "template `{template}` failed: {message}\n  help: this is a bug in sandbox's templates; please report it with your profile"
    )]
    Template { template: String, message: String },

    #[error(
        "rendered `{path}` is not a valid Lima instance: {message}\n  help: this is a bug in sandbox's Lima template; please report it with your profile"
    )]
    InvalidLima { path: String, message: String },

    #[error("cannot write `{}`: {source}\n  help: check that the output directory is writable", path.display())]
    Write { path: PathBuf, source: io::Error },

    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("`{}` exists and is not a directory\n  help: pass a directory to --out/--check", path.display())]
    NotADirectory { path: PathBuf },
}
