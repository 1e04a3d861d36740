//! Errors of the profile domain: finding, reading, parsing and validating profiles.

use std::io;
use std::path::PathBuf;

use crate::profile::diagnostic::{Diagnostic, Severity};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    #[error(
        "profile `{name}` not found (looked for {})\n  help: create it with `sandbox init --name {name}`, name a file by its path (`--profile ./{name}`: a bare name is never a file), or list profiles with `sandbox profile list`",
        searched.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
    )]
    NotFound { name: String, searched: Vec<PathBuf> },

    #[error("cannot read profile `{}`: {source}\n  help: check that the file exists and is readable", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "{location}: invalid YAML: {message}\n  help: fix the syntax at that line (indentation, quoting, `key: value` pairs)"
    )]
    Syntax { location: String, message: String },

    #[error("{location}: `extends` forms a cycle: {}\n  help: remove `extends` from one of these profiles", chain.join(" -> "))]
    Cycle { location: String, chain: Vec<String> },

    #[error("{location}: `extends` chain is deeper than {limit} profiles\n  help: flatten the chain")]
    TooDeep { location: String, limit: usize },

    #[error("{}", render_invalid(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

fn render_invalid(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let mut out = format!("profile is invalid: {errors} error{}", if errors == 1 { "" } else { "s" });
    for d in diagnostics {
        out.push('\n');
        out.push_str(&d.to_string());
    }
    out
}
