//! Walking scan roots and scanning every file in parallel. Nothing is skipped silently: a file
//! that cannot be read, is over the size limit, or is not a regular file is a blocking finding.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::GlobSet;
use rayon::prelude::*;

use crate::scan::archive::{self, ArchiveLimits};
use crate::scan::engine::EngineOptions;
use crate::scan::error::ScanError;
use crate::scan::finding::Finding;
use crate::scan::ruleset::RuleSet;

/// How to scan a set of roots.
#[derive(Debug, Clone)]
pub(crate) struct WalkOptions {
    pub(crate) max_file_size: u64,
    pub(crate) limits: ArchiveLimits,
    /// Honour `gitleaks:allow` and `.gitleaksignore` (the user's own files only; never for a
    /// tree written by the agent).
    pub(crate) ignore_files: bool,
    pub(crate) threads: usize,
    /// Paths (relative to their root) not to scan.
    pub(crate) exclude: Option<GlobSet>,
}

enum Entry {
    File { path: PathBuf, display: String, size: u64 },
    Symlink { path: PathBuf, display: String },
    Problem { display: String, reason: String },
}

fn display(root: &Path, rel: &Path) -> String {
    if rel.as_os_str().is_empty() { root.display().to_string() } else { root.join(rel).display().to_string() }
}

/// The entries under one root, lazily: a large tree is never held in memory as a list.
fn entries<'a>(
    root: &'a Path,
    opts: &'a WalkOptions,
) -> Result<Box<dyn Iterator<Item = Entry> + Send + 'a>, ScanError> {
    let meta =
        std::fs::symlink_metadata(root).map_err(|source| ScanError::Root { path: root.to_path_buf(), source })?;
    if !meta.is_dir() {
        return Ok(Box::new(std::iter::once(classify(root, &meta, root.display().to_string()))));
    }
    let walk = walkdir::WalkDir::new(root).follow_links(false).into_iter().filter_map(move |entry| {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let at = e.path().map_or_else(|| root.display().to_string(), |p| p.display().to_string());
                return Some(Entry::Problem { display: at, reason: format!("cannot read: {e}") });
            }
        };
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        if entry.file_type().is_dir() || opts.exclude.as_ref().is_some_and(|g| g.is_match(rel)) {
            return None;
        }
        Some(match entry.metadata() {
            Ok(meta) => classify(entry.path(), &meta, display(root, rel)),
            Err(e) => Entry::Problem { display: display(root, rel), reason: format!("cannot read: {e}") },
        })
    });
    Ok(Box::new(walk))
}

fn classify(path: &Path, meta: &std::fs::Metadata, display: String) -> Entry {
    if meta.file_type().is_symlink() {
        Entry::Symlink { path: path.to_path_buf(), display }
    } else if meta.is_file() {
        Entry::File { path: path.to_path_buf(), display, size: meta.len() }
    } else {
        Entry::Problem { display, reason: "not a regular file (device, FIFO or socket); it cannot be scanned".into() }
    }
}

/// `.gitleaksignore` fingerprints (`file:rule:line`) in a root, when ignore files are honoured.
fn ignored_fingerprints(roots: &[PathBuf]) -> HashSet<String> {
    let mut out = HashSet::new();
    for root in roots.iter().filter(|r| r.is_dir()) {
        if let Ok(text) = std::fs::read_to_string(root.join(".gitleaksignore")) {
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                out.insert(line.replace('\\', "/"));
            }
        }
    }
    out
}

fn scan_entry(set: &RuleSet, entry: &Entry, opts: &WalkOptions) -> Vec<Finding> {
    let engine_opts = EngineOptions { inline_allow: opts.ignore_files, ..EngineOptions::default() };
    match entry {
        Entry::Problem { display, reason } => vec![Finding::unscannable(display, reason.clone())],
        // A symlink's content is its target: that is what would be copied.
        Entry::Symlink { path, display } => match std::fs::read_link(path) {
            Ok(target) => crate::scan::engine::scan(set, display, target.as_os_str().as_encoded_bytes(), engine_opts),
            Err(e) => vec![Finding::unscannable(display, format!("cannot read symlink: {e}"))],
        },
        Entry::File { path, display, size } => {
            let size = *size;
            if size > opts.max_file_size {
                return vec![Finding::unscannable(
                    display,
                    format!(
                        "file is {}, over the scan limit of {}; it was not scanned",
                        crate::profile::ByteSize(size),
                        crate::profile::ByteSize(opts.max_file_size)
                    ),
                )];
            }
            match std::fs::read(path) {
                // A file that grew past the limit since it was listed is still refused.
                Ok(data) if data.len() as u64 > opts.max_file_size => {
                    vec![Finding::unscannable(display, "file grew past the scan limit while being scanned".into())]
                }
                Ok(data) => archive::scan(set, display, &data, opts.limits, engine_opts),
                Err(e) => vec![Finding::unscannable(display, format!("cannot read: {e}"))],
            }
        }
    }
}

/// Scan every file under `roots`; findings are sorted by path, line and rule.
pub(crate) fn scan_paths(set: &RuleSet, roots: &[PathBuf], opts: &WalkOptions) -> Result<Vec<Finding>, ScanError> {
    let mut walks = Vec::with_capacity(roots.len());
    for root in roots {
        walks.push(entries(root, opts)?);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| ScanError::Threads { threads: opts.threads, message: e.to_string() })?;
    let mut findings: Vec<Finding> = pool
        .install(|| walks.into_iter().flatten().par_bridge().flat_map_iter(|e| scan_entry(set, &e, opts)).collect());
    if opts.ignore_files {
        let ignored = ignored_fingerprints(roots);
        findings.retain(|f| !ignored.contains(&f.fingerprint) && !ignored.contains(&strip_root(&f.fingerprint, roots)));
    }
    findings.sort_by(|a, b| (&a.path, a.line, a.column, &a.rule_id).cmp(&(&b.path, b.line, b.column, &b.rule_id)));
    Ok(findings)
}

/// A fingerprint relative to its root, as gitleaks writes them when run inside the repository.
fn strip_root(fingerprint: &str, roots: &[PathBuf]) -> String {
    for root in roots {
        let prefix = format!("{}/", root.display().to_string().trim_end_matches('/'));
        if let Some(rest) = fingerprint.strip_prefix(&prefix) {
            return rest.to_owned();
        }
    }
    fingerprint.to_owned()
}
