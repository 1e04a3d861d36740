//! The gate's report: data, not prose. Every refusal, review item, conflict and finding carries a
//! stable code (docs/sync.md lists them) and a path; the decision is computed from these values
//! (`Report::blocked`); text is made only where it is printed (the preview in `cli::preview`,
//! `--json`, the audit line).
//!
//! Invariant: nothing in a report holds a secret. Paths and link targets the scanner found a
//! secret in are redacted in every field, by one [`Redactor`], before the report leaves the gate.

use std::path::PathBuf;

use serde::Serialize;

use crate::scan::finding::Finding;
use crate::sync::apply::Conflict;

/// The version of the `--json` format (docs/sync.md); bumped on any incompatible change.
pub(crate) const JSON_VERSION: u32 = 1;

/// What an operation does to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OpKind {
    Write,
    Symlink,
    Mkdir,
    Delete,
}

impl OpKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpKind::Write => "write",
            OpKind::Symlink => "symlink",
            OpKind::Mkdir => "mkdir",
            OpKind::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpView {
    pub(crate) op: OpKind,
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes: Option<u64>,
    /// A symlink's target, as it will be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

/// One refusal or review item: a stable code, the path, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Item {
    pub(crate) code: &'static str,
    pub(crate) path: String,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) fix: String,
}

/// Stable codes of findings: where the scanner found the secret.
pub(crate) mod finding_code {
    /// In a file's content.
    pub(crate) const CONTENT: &str = "S_SECRET";
    /// In a file or folder name the plan creates.
    pub(crate) const NAME: &str = "S_SECRET_NAME";
    /// In a symlink's target.
    pub(crate) const TARGET: &str = "S_SECRET_TARGET";
    /// Content the scanner could not read or decode (fail closed).
    pub(crate) const UNSCANNABLE: &str = "S_UNSCANNABLE";
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingView {
    pub(crate) code: &'static str,
    #[serde(flatten)]
    pub(crate) finding: Finding,
}

/// One file's diff as the preview shows it: text with invalid bytes escaped and secrets
/// redacted, or why it is not shown in full.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DiffView {
    pub(crate) path: String,
    /// The unified diff (or the summary line of a file not shown as text).
    pub(crate) text: String,
    /// Diff lines not shown (the budget ran out), or 0.
    pub(crate) lines_not_shown: usize,
    /// Whether every changed line is in `text`.
    pub(crate) complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Decision {
    NothingToDo,
    Refused,
    DryRun,
    Declined,
    Applied,
}

/// Everything the preview shows and `--json` prints.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) version: u32,
    pub(crate) host: PathBuf,
    pub(crate) decision: Decision,
    /// What recovery did with an interrupted earlier apply, if anything.
    pub(crate) recovered: Option<String>,
    pub(crate) ops: Vec<OpView>,
    /// Refusals of the upper reader and of the path policy: any one refuses the plan.
    pub(crate) refusals: Vec<Item>,
    /// Paths that need a person's explicit approval (never `--yes` alone).
    pub(crate) review: Vec<Item>,
    pub(crate) conflicts: Vec<Conflict>,
    /// New secret findings (and content that could not be scanned): any one refuses the plan.
    pub(crate) findings: Vec<FindingView>,
    /// Findings the host's current version of a file already has (not blocking).
    pub(crate) preexisting_findings: usize,
    pub(crate) excluded: Vec<String>,
    /// The tool sandbox's empty mount points, left out (`Policy::drop_tool_mount_points`).
    pub(crate) mount_points: Vec<String>,
    pub(crate) notes: Vec<String>,
    pub(crate) diffs: Vec<DiffView>,
}

impl Report {
    /// Whether the gate refuses: a refusal, a finding, or a conflict nobody can settle here.
    pub(crate) fn blocked(&self, settle_conflicts: bool) -> bool {
        !self.refusals.is_empty() || !self.findings.is_empty() || (!self.conflicts.is_empty() && !settle_conflicts)
    }

    /// The review items' paths, for the per-path approval.
    pub(crate) fn review_paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.review.iter().map(|i| i.path.as_str()).collect();
        paths.dedup();
        paths
    }

    /// The diff shown for `path`, if any.
    pub(crate) fn diff_of(&self, path: &str) -> Option<&DiffView> {
        self.diffs.iter().find(|d| d.path == path)
    }

    /// Replace every secret `redactor` knows, in every text field.
    pub(crate) fn redact(&mut self, redactor: &Redactor) {
        if redactor.is_empty() {
            return;
        }
        let r = |s: &mut String| *s = redactor.apply(s);
        for op in &mut self.ops {
            r(&mut op.path);
            if let Some(t) = &mut op.target {
                r(t);
            }
        }
        for item in self.refusals.iter_mut().chain(self.review.iter_mut()) {
            r(&mut item.path);
            r(&mut item.message);
            r(&mut item.fix);
        }
        for c in &mut self.conflicts {
            r(&mut c.path);
            r(&mut c.message);
        }
        for f in &mut self.findings {
            r(&mut f.finding.path);
            r(&mut f.finding.fingerprint);
            r(&mut f.finding.redacted);
        }
        for s in self.excluded.iter_mut().chain(self.mount_points.iter_mut()).chain(self.notes.iter_mut()) {
            r(s);
        }
        for d in &mut self.diffs {
            r(&mut d.path);
            r(&mut d.text);
        }
        if let Some(s) = &mut self.recovered {
            r(s);
        }
    }
}

/// The one predicate of what is unsafe to print: the secrets the scanner found in names and
/// link targets (text that is otherwise printed everywhere), each with the rule that found it.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    pub(crate) fn add(&mut self, secret: &str, rule_id: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|(s, _)| s == secret) {
            self.secrets.push((secret.to_owned(), rule_id.to_owned()));
            // Longest first, so a secret that contains another is replaced whole.
            self.secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Whether `text` holds a secret this redactor knows.
    pub(crate) fn is_unsafe(&self, text: &str) -> bool {
        self.secrets.iter().any(|(s, _)| text.contains(s.as_str()))
    }

    pub(crate) fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (secret, rule) in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &format!("[REDACTED:{rule}]"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redactor_replaces_every_occurrence_longest_first() {
        let mut r = Redactor::default();
        r.add("ghp_abc", "short");
        r.add("ghp_abcdef", "github-pat");
        assert!(r.is_unsafe("dir/ghp_abcdef/x"));
        assert!(!r.is_unsafe("dir/ghp_ab/x"));
        assert_eq!(r.apply("ghp_abcdef/ghp_abcdef.txt"), "[REDACTED:github-pat]/[REDACTED:github-pat].txt");
    }
}
