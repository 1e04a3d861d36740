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
    /// A regular file as listed; its size and type are checked again on the open descriptor.
    File {
        path: PathBuf,
        display: String,
    },
    Symlink {
        path: PathBuf,
        display: String,
    },
    Problem {
        display: String,
        reason: String,
    },
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
        // The type comes from the directory listing: no `lstat` per file. What is opened is
        // checked again through its descriptor.
        let display = display(root, rel);
        let kind = entry.file_type();
        Some(if kind.is_symlink() {
            Entry::Symlink { path: entry.into_path(), display }
        } else if kind.is_file() {
            Entry::File { path: entry.into_path(), display }
        } else {
            not_regular(display)
        })
    });
    Ok(Box::new(walk))
}

fn classify(path: &Path, meta: &std::fs::Metadata, display: String) -> Entry {
    if meta.file_type().is_symlink() {
        Entry::Symlink { path: path.to_path_buf(), display }
    } else if meta.is_file() {
        Entry::File { path: path.to_path_buf(), display }
    } else {
        not_regular(display)
    }
}

fn not_regular(display: String) -> Entry {
    Entry::Problem { display, reason: "not a regular file (device, FIFO or socket); it cannot be scanned".into() }
}

/// Open a listed file without following a symlink and without blocking on a FIFO that replaced
/// it since the listing.
fn open_listed(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{CWD, Mode, OFlags};
    let fd = rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

/// The content of a listed regular file, at most `limit` bytes; `Err` is the finding's reason.
fn read_listed(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = open_listed(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("changed into something other than a regular file while being scanned".into());
    }
    let size = meta.len();
    if size > limit {
        return Err(format!(
            "file is {}, over the scan limit of {}; it was not scanned",
            crate::profile::ByteSize(size),
            crate::profile::ByteSize(limit)
        ));
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1)).read_to_end(&mut data).map_err(|e| format!("cannot read: {e}"))?;
    if data.len() as u64 > limit {
        // A file that grew past the limit since it was opened is still refused.
        return Err("file grew past the scan limit while being scanned".into());
    }
    Ok(data)
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
        Entry::File { path, display } => match read_listed(path, opts.max_file_size) {
            Ok(data) => archive::scan(set, display, &data, opts.limits, engine_opts),
            Err(reason) => vec![Finding::unscannable(display, reason)],
        },
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
