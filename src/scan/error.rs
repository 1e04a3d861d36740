//! Errors of the secret scanner: configuration problems and I/O on the scan roots. Problems with
//! individual scanned files are not errors: they are findings that block (fail closed).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ScanError {
    #[error("secret rules `{origin}`: {message}\n  help: fix the rules file (gitleaks TOML format, see docs/scan.md)")]
    Config { origin: String, message: String },

    #[error(
        "secret rules `{origin}`: rule `{rule}`: invalid {what} `{pattern}`: {message}\n  help: rules use Go RE2 syntax without lookaround or backreferences"
    )]
    Regex { origin: String, rule: String, what: &'static str, pattern: String, message: String },

    #[error("cannot read secret rules `{}`: {source}\n  help: check the --config path", path.display())]
    ReadConfig { path: PathBuf, source: std::io::Error },

    #[error("cannot scan `{}`: {source}\n  help: check that the path exists", path.display())]
    Root { path: PathBuf, source: std::io::Error },

    #[error("cannot start {threads} scan threads: {message}")]
    Threads { threads: usize, message: String },
}
