//! The gate's secret scan: the staged bytes of every file the plan writes, and every name and
//! symlink target the plan creates (a token in a file name is as public as one in a file).
//!
//! Invariant: findings never hold a secret. The spans found here are kept only to redact the
//! preview's diffs, and the secrets found in names and targets only inside the [`Redactor`]
//! that scrubs them from every printed field.

use std::collections::HashMap;
use std::path::Path;

use crate::scan::RuleSet;
use crate::scan::finding::Finding;
use crate::sync::SyncError;
use crate::sync::host::Host;
use crate::sync::plan::{Op, Plan};
use crate::sync::report::{FindingView, Redactor, finding_code};
use crate::sync::stage::{self, Stage};
use crate::sync::upper::{UpperEntry, UpperKind};

/// Byte ranges of secrets in one version of a file.
pub(crate) type Spans = Vec<(usize, usize)>;

/// What the scan of the staged files found.
#[derive(Default)]
pub(crate) struct Scanned {
    pub(crate) staged: Stage,
    /// New findings (and unscannable content): each blocks.
    pub(crate) findings: Vec<FindingView>,
    /// Findings the host's current version already has.
    pub(crate) preexisting: usize,
    /// For each file with any finding: the secrets' byte spans in the host's version and in
    /// the staged one, for the diff.
    pub(crate) spans: HashMap<String, (Spans, Spans)>,
}

/// The byte spans of `findings` in `bytes` (the whole match, which holds the secret; findings in
/// archive members or without a position have none).
fn spans(bytes: &[u8], path: &str, findings: &[Finding]) -> Spans {
    let mut starts = vec![0usize];
    starts.extend(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
    let offset = |line: usize, column: usize| starts.get(line.checked_sub(1)?).map(|s| s + column.saturating_sub(1));
    findings
        .iter()
        .filter(|f| f.path == path && f.line > 0)
        .filter_map(|f| Some((offset(f.line, f.column)?, offset(f.end_line, f.end_column)? + 1)))
        .map(|(s, e)| (s.min(bytes.len()), e.min(bytes.len())))
        .collect()
}

/// The spans of every secret the scanner finds in `bytes` (a file's content at `path`).
pub(crate) fn spans_of(set: &RuleSet, path: &str, bytes: &[u8]) -> Spans {
    if bytes.is_empty() {
        return Spans::new();
    }
    let opts = crate::scan::engine::EngineOptions::default();
    spans(bytes, path, &crate::scan::engine::scan(set, path, bytes, opts))
}

/// Stage every file of `writes` and scan the staged bytes (see `stage`). Findings whose secret
/// the host's current version already has are pre-existing and do not block.
pub(crate) fn stage_and_scan(
    writes: &[&str],
    upper: &HashMap<&str, &UpperEntry>,
    stage_dir: &Path,
    private: bool,
    set: &RuleSet,
    host: &Host,
) -> Result<Scanned, SyncError> {
    let items: Vec<stage::Item<'_>> = writes
        .iter()
        .filter_map(|path| {
            let entry = upper[path];
            let UpperKind::File { sha256, size } = &entry.kind else { return None };
            Some(stage::Item { path, source: &entry.source, sha256, size: *size, private })
        })
        .collect();
    let opts = crate::scan::engine::EngineOptions::default();
    let limits = crate::scan::archive::ArchiveLimits::default();
    let shared = std::sync::atomic::AtomicU64::new(crate::scan::archive::SYNC_TOTAL_BYTES);
    let (staged, scanned) = Stage::build(stage_dir, &items, |path, bytes| {
        let found = crate::scan::archive::scan_shared(set, path, bytes, limits, opts, &shared);
        if found.is_empty() {
            return None;
        }
        let old = host.read(path).ok().flatten().unwrap_or_default();
        let before =
            if old.is_empty() { Vec::new() } else { crate::scan::archive::scan(set, path, &old, limits, opts) };
        let spans = (spans(&old, path, &before), spans(bytes, path, &found));
        let total = found.len();
        let new: Vec<Finding> = found
            .into_iter()
            .filter(|f| {
                f.is_unscannable()
                    || !before.iter().any(|b| b.rule_id == f.rule_id && b.secret_digest == f.secret_digest)
            })
            .collect();
        let preexisting = total - new.len();
        Some((new, preexisting, spans))
    })
    .map_err(|e| match e {
        stage::StageError::Io { path, source } => SyncError::Io { path, source },
        stage::StageError::Changed { path } => SyncError::Changed { path },
    })?;
    let mut out = Scanned { staged, ..Scanned::default() };
    for (item, result) in items.iter().zip(scanned) {
        let Some((found, known, spans)) = result else { continue };
        out.spans.insert(item.path.to_owned(), spans);
        out.findings.extend(found.into_iter().map(|finding| {
            let code = if finding.is_unscannable() { finding_code::UNSCANNABLE } else { finding_code::CONTENT };
            FindingView { code, finding }
        }));
        out.preexisting += known;
    }
    out.findings.sort_by(|a, b| {
        let (a, b) = (&a.finding, &b.finding);
        (&a.path, a.line, a.column, &a.rule_id).cmp(&(&b.path, b.line, b.column, &b.rule_id))
    });
    Ok(out)
}

/// Register the text of `finding` (a match in the one-line `text`) with `redactor`.
fn register(text: &str, finding: &Finding, redactor: &mut Redactor) {
    if finding.line == 1 && finding.end_line == 1 {
        let start = finding.column.saturating_sub(1).min(text.len());
        let end = finding.end_column.min(text.len()).max(start);
        // The span is in bytes; widen it to character boundaries.
        let start = (0..=start).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        redactor.add(&text[start..end], &finding.rule_id);
    } else {
        // A match that is not one line of the text: all of it is unsafe to print.
        redactor.add(text, &finding.rule_id);
    }
}

/// Scan the name of every entry the plan creates and the target of every symlink it writes.
/// Each secret found is a blocking finding and goes into `redactor`, so no printed field ever
/// shows it (the finding's own path included).
pub(crate) fn scan_names(
    plan: &Plan,
    upper: &HashMap<&str, &UpperEntry>,
    set: &RuleSet,
    redactor: &mut Redactor,
) -> Vec<FindingView> {
    let opts = crate::scan::engine::EngineOptions::default();
    let mut out = Vec::new();
    let mut scan = |path: &str, text: &str, code: &'static str| {
        for finding in crate::scan::engine::scan(set, path, text.as_bytes(), opts) {
            register(text, &finding, redactor);
            out.push(FindingView { code, finding });
        }
    };
    for op in &plan.ops {
        let (Op::Write { path } | Op::Mkdir { path, .. }) = op else { continue };
        let name = path.rsplit('/').next().unwrap_or(path);
        scan(path, name, finding_code::NAME);
        if let Some(UpperKind::Symlink { target }) = upper.get(path.as_str()).map(|e| &e.kind) {
            scan(path, target, finding_code::TARGET);
        }
    }
    out
}

/// Register with `redactor` every secret in the components of `paths` (the report's other
/// paths: excluded, refused, deleted, conflicting): never synced or not new, so not findings,
/// but printed, and a secret is never printed.
pub(crate) fn redact_names<'a>(paths: impl Iterator<Item = &'a str>, set: &RuleSet, redactor: &mut Redactor) {
    let opts = crate::scan::engine::EngineOptions::default();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        for name in path.split('/').filter(|n| !n.is_empty() && seen.insert(*n)) {
            for finding in crate::scan::engine::scan(set, name, name.as_bytes(), opts) {
                register(name, &finding, redactor);
            }
        }
    }
}
