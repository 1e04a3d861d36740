//! A problem found in a profile: where it is, which key, what is wrong and how to fix it.

use std::fmt;

use crate::profile::source::{Location, SpanIndex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Error,
    Warning,
}

/// One finding of validation. Errors stop the command; warnings are printed and the command goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) location: Option<Location>,
    /// The key path, e.g. `workspaces[0].host`; empty for the document itself.
    pub(crate) key_path: String,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: ")?;
        if !self.key_path.is_empty() {
            write!(f, "`{}`: ", self.key_path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics against one (merged) span index.
pub(crate) struct Diagnostics<'a> {
    spans: &'a SpanIndex,
    pub(crate) items: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(spans: &'a SpanIndex) -> Self {
        Diagnostics { spans, items: Vec::new() }
    }

    /// The location of `key_path`, or of its nearest ancestor that has one.
    pub(crate) fn locate(&self, key_path: &str) -> Option<Location> {
        let mut path = key_path;
        loop {
            if let Some(location) = self.spans.get(path) {
                return Some(location.clone());
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    fn push(&mut self, severity: Severity, key_path: &str, message: String, help: Option<String>) {
        let location = self.locate(key_path);
        self.items.push(Diagnostic { severity, location, key_path: key_path.to_owned(), message, help });
    }

    pub(crate) fn error(&mut self, key_path: &str, message: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        self.push(Severity::Error, key_path, message.into(), (!help.is_empty()).then_some(help));
    }

    pub(crate) fn warning(&mut self, key_path: &str, message: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        self.push(Severity::Warning, key_path, message.into(), (!help.is_empty()).then_some(help));
    }

    /// Whether an error was already recorded at or below `key_path` (to avoid piling a second,
    /// derived complaint onto the same item).
    pub(crate) fn has_error_under(&self, key_path: &str) -> bool {
        self.items.iter().any(|d| {
            d.severity == Severity::Error
                && (d.key_path == key_path
                    || d.key_path.strip_prefix(key_path).is_some_and(|r| r.starts_with('.') || r.starts_with('[')))
        })
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}
