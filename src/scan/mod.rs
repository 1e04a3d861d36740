//! The built-in secret scanner: gitleaks-compatible rules, fail-closed by default.
//!
//! The sync gate calls it on the exact bytes it is about to write; `sandbox scan` exposes it.
//! Invariants: a secret value never leaves this module (findings carry a redacted preview and a
//! digest); anything that could not be scanned is a finding, never a silent skip; in gate mode
//! nothing from the scanned tree (`.gitleaks.toml`, `.gitleaksignore`, `gitleaks:allow`) can
//! change what is reported.

pub(crate) mod archive;
pub(crate) mod checksum;
pub(crate) mod config;
pub(crate) mod container;
pub(crate) mod decode;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod escape;
pub(crate) mod finding;
pub(crate) mod pattern;
pub(crate) mod report;
pub(crate) mod rule;
pub(crate) mod ruleset;
pub(crate) mod utf16;
pub(crate) mod walk;

pub(crate) use error::ScanError;
pub(crate) use ruleset::RuleSet;
