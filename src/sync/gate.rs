//! The gate: upper → plan → policy → conflicts → stage → scan → preview → apply → verify →
//! baseline → audit, in that order, stopping at the first stage that refuses.
//!
//! Invariants: nothing is written to the host workspace before every check has passed on the
//! same plan; the scanner sees the staged bytes that will be written, never a second read of the
//! source; an unfinished apply from an earlier run is rolled back before anything else.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::profile::{Profile, SecretRules};
use crate::scan::RuleSet;
use crate::scan::finding::Finding;
use crate::sync::apply::{self, Conflict, OnConflict, Record};
use crate::sync::error::SyncError;
use crate::sync::host::Host;
use crate::sync::manifest::{self, hex};
use crate::sync::plan::{self, Op, Plan};
use crate::sync::policy::{Issue, Policy, Tier};
use crate::sync::stage::{self, Stage};
use crate::sync::store;
use crate::sync::upper::{self, Namespace, Upper, UpperEntry, UpperKind};

/// Where the VM's changes come from.
#[derive(Debug)]
pub(crate) enum Source {
    Dir(PathBuf),
    /// The VM's export, streamed as it arrives (over SSH), with its declared counts.
    Stream(Stream),
    /// A PAX tar stream (a file, or `-` for stdin) with the entry count and byte total the VM
    /// declared alongside it.
    Tar {
        path: PathBuf,
        entries: u64,
        bytes: u64,
    },
}

/// A tar stream being read from a running command.
pub(crate) struct Stream {
    /// What the stream is, for messages (`ssh … export`).
    pub(crate) what: String,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    pub(crate) reader: std::sync::Mutex<Option<Box<dyn std::io::Read + Send>>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("what", &self.what)
            .field("entries", &self.entries)
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) source: Source,
    pub(crate) host: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) yes: bool,
    pub(crate) on_conflict: OnConflict,
    pub(crate) interactive: bool,
}

/// Everything the preview shows and `--json` prints.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) host: PathBuf,
    /// What recovery did with an interrupted earlier apply, if anything.
    pub(crate) recovered: Option<String>,
    pub(crate) ops: Vec<OpView>,
    pub(crate) notes: Vec<String>,
    pub(crate) excluded: Vec<String>,
    /// The tool sandbox's empty mount points, left out (`Policy::drop_tool_mount_points`).
    pub(crate) mount_points: Vec<String>,
    pub(crate) refusals: Vec<String>,
    pub(crate) policy: Vec<String>,
    pub(crate) review: Vec<String>,
    /// The paths of `review`, for the per-path approval.
    #[serde(skip)]
    pub(crate) review_paths: Vec<String>,
    pub(crate) conflicts: Vec<Conflict>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) preexisting_findings: usize,
    pub(crate) decision: Decision,
    #[serde(skip)]
    pub(crate) diffs: String,
}

/// What the person at the terminal decided about a plan the gate let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Approval {
    /// Apply, leaving out these paths (and the operations that depend on them). Review-tier
    /// paths not left out count as approved; each conflict must be left out (the host keeps its
    /// version) or named in `take_vm`.
    Apply {
        leave_out: Vec<String>,
        take_vm: Vec<String>,
    },
    Decline,
}

#[derive(Debug, Serialize)]
pub(crate) struct OpView {
    pub(crate) op: &'static str,
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes: Option<u64>,
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

fn hash_root(path: &Path) -> String {
    hex(&Sha256::digest(path.as_os_str().as_encoded_bytes()))[..24].to_owned()
}

/// `$XDG_STATE_HOME/sandbox/sync/<workspace hash>/`: `pending/` while applying, `last/` after.
pub(crate) fn sync_dir(state_dir: &Path, host: &Path) -> PathBuf {
    store::root(state_dir).join("sync").join(hash_root(host))
}

/// Hold the workspace's sync lock (released when the returned descriptor is dropped): two syncs
/// of one workspace must never interleave, nor share a staging directory.
fn lock(state_dir: &Path, host_root: &Path) -> Result<std::os::fd::OwnedFd, SyncError> {
    let dir = sync_dir(state_dir, host_root);
    let path = dir.join("lock");
    let io = |source| SyncError::Io { path: path.clone(), source };
    std::fs::create_dir_all(&dir).map_err(io)?;
    match crate::sync::store::try_lock(&path).map_err(io)? {
        Some(fd) => Ok(fd),
        None => Err(SyncError::Locked { host: host_root.to_path_buf(), lock: path }),
    }
}

/// Roll back an apply that did not commit (a crash or kill); finish one that did.
pub(crate) fn recover(state_dir: &Path, host_root: &Path, host: &Host) -> Result<Option<String>, SyncError> {
    let dir = sync_dir(state_dir, host_root);
    let pending = dir.join("pending");
    if !pending.exists() {
        return Ok(None);
    }
    let io = |source| SyncError::Io { path: pending.clone(), source };
    let records = apply::Journal::read(&pending).map_err(io)?;
    if records.iter().any(|r| matches!(r, Record::Commit)) {
        promote(&dir).map_err(io)?;
        return Ok(Some("the previous sync had committed; its record was completed".into()));
    }
    let left = apply::roll_back(&records, &pending, host, false).map_err(io)?;
    std::fs::remove_dir_all(&pending).map_err(io)?;
    let mut message = format!(
        "rolled back an interrupted sync ({} operations begun)",
        records.iter().filter(|r| matches!(r, Record::Intent { .. })).count()
    );
    if !left.is_empty() {
        message.push_str(&format!("; these directories kept host files and were left: {}", left.join(", ")));
    }
    Ok(Some(message))
}

fn promote(dir: &Path) -> std::io::Result<()> {
    let last = dir.join("last");
    if last.exists() {
        std::fs::remove_dir_all(&last)?;
    }
    std::fs::rename(dir.join("pending"), last)
}

/// Read the upper (directory or tar stream) and stage every file the plan may write.
fn read_source(
    source: &Source,
    ns: Namespace,
    stage: &Path,
    profile: &Profile,
    policy: &Policy,
) -> Result<Upper, SyncError> {
    let limits = crate::sync::tar::TarLimits {
        max_entries: profile.sync.max_files.saturating_mul(4).max(1000),
        max_total_bytes: profile.sync.max_total_size.bytes().saturating_mul(2),
        max_file_bytes: profile.sync.max_file_size.bytes(),
    };
    match source {
        Source::Dir(dir) => upper::read_within(dir, ns, policy.read_limits(), |p| policy.is_excluded(p))
            .map_err(|source| SyncError::Io { path: dir.clone(), source }),
        Source::Stream(stream) => {
            let expect = Some(crate::sync::tar::Completeness { entries: stream.entries, bytes: stream.bytes });
            let io = |source| SyncError::Io { path: PathBuf::from(&stream.what), source };
            let reader = stream.reader.lock().ok().and_then(|mut r| r.take());
            let reader = reader.ok_or_else(|| io(std::io::Error::other("the stream was already read")))?;
            crate::sync::tar::read_tar(std::io::BufReader::new(reader), ns, expect, stage, limits).map_err(io)
        }
        Source::Tar { path, entries, bytes } => {
            let expect = Some(crate::sync::tar::Completeness { entries: *entries, bytes: *bytes });
            let io = |source| SyncError::Io { path: path.clone(), source };
            if path.as_os_str() == "-" {
                crate::sync::tar::read_tar(std::io::stdin().lock(), ns, expect, stage, limits).map_err(io)
            } else {
                let file = std::fs::File::open(path).map_err(io)?;
                crate::sync::tar::read_tar(std::io::BufReader::new(file), ns, expect, stage, limits).map_err(io)
            }
        }
    }
}

/// Stage every file the plan writes and scan the staged bytes (see `stage`). Findings whose
/// secret the host's current version already has are pre-existing and do not block. Also
/// returns the paths with any finding, whose diffs are never shown.
#[allow(clippy::type_complexity)]
fn stage_and_scan(
    plan: &Plan,
    upper: &HashMap<&str, &UpperEntry>,
    stage_dir: &Path,
    private: bool,
    set: &RuleSet,
    host: &Host,
) -> Result<(Stage, Vec<Finding>, usize, std::collections::HashSet<String>), SyncError> {
    let items: Vec<stage::Item<'_>> = plan
        .ops
        .iter()
        .filter_map(|op| {
            let Op::Write { path } = op else { return None };
            let entry = upper[path.as_str()];
            let UpperKind::File { sha256, size } = &entry.kind else { return None };
            Some(stage::Item { path, source: &entry.source, sha256, size: *size, private })
        })
        .collect();
    let opts = crate::scan::engine::EngineOptions::default();
    let limits = crate::scan::archive::ArchiveLimits::default();
    let (staged, scanned) = Stage::build(stage_dir, &items, |path, bytes| {
        let found = crate::scan::archive::scan(set, path, bytes, limits, opts);
        if found.is_empty() {
            return (Vec::new(), 0);
        }
        let before: Vec<Finding> = match host.read(path) {
            Ok(Some(old)) => crate::scan::archive::scan(set, path, &old, limits, opts),
            _ => Vec::new(),
        };
        let total = found.len();
        let new: Vec<Finding> = found
            .into_iter()
            .filter(|f| {
                f.is_unscannable()
                    || !before.iter().any(|b| b.rule_id == f.rule_id && b.secret_digest == f.secret_digest)
            })
            .collect();
        let preexisting = total - new.len();
        (new, preexisting)
    })
    .map_err(|e| match e {
        stage::StageError::Io { path, source } => SyncError::Io { path, source },
        stage::StageError::Changed { path } => SyncError::Changed { path },
    })?;
    let mut secret_paths = std::collections::HashSet::new();
    let mut new = Vec::new();
    let mut preexisting = 0;
    for (item, (found, known)) in items.iter().zip(scanned) {
        if !found.is_empty() || known > 0 {
            secret_paths.insert(item.path.to_owned());
        }
        new.extend(found);
        preexisting += known;
    }
    new.sort_by(|a, b| (&a.path, a.line, a.column, &a.rule_id).cmp(&(&b.path, b.line, b.column, &b.rule_id)));
    Ok((staged, new, preexisting, secret_paths))
}

/// `p` is `q` or inside it.
pub(crate) fn within(p: &str, q: &str) -> bool {
    p == q || p.strip_prefix(q).is_some_and(|rest| rest.starts_with('/'))
}

/// Every conflict is left out, or taken from the VM where the plan has an operation on exactly
/// that path (a symlink in the way is never written through: it can only be left out).
fn settled(conflicts: &[Conflict], leave_out: &[String], take_vm: &[String], plan: &Plan) -> bool {
    conflicts.iter().all(|c| {
        leave_out.iter().any(|q| within(&c.path, q))
            || (take_vm.contains(&c.path) && plan.ops.iter().any(|op| apply::op_path(op) == c.path))
    })
}

/// Drop from `plan` every operation on a path left out or inside one, and the deletion of any
/// directory that holds one (it must stay). Returns the paths dropped, in plan order.
fn leave_out_ops(plan: &mut Plan, leave_out: &[String]) -> Vec<String> {
    let mut dropped = Vec::new();
    plan.ops.retain(|op| {
        let path = apply::op_path(op);
        let drop = leave_out.iter().any(|q| within(path, q))
            || (matches!(op, Op::Delete { .. }) && leave_out.iter().any(|q| within(q, path)));
        if drop {
            dropped.push(path.to_owned());
        }
        !drop
    });
    dropped
}

/// Host files listed per directory at most, in the notes about host-only files kept.
const KEPT_LISTED: usize = 20;

/// Notes naming host files the VM never saw (not in the baseline) that stay inside a directory
/// the VM deleted or replaced (opaque): the host will not match the VM's view there, and the
/// user should know why.
fn host_only_kept(
    plan: &Plan,
    base: &manifest::Manifest,
    upper: &HashMap<&str, &UpperEntry>,
    host: &Host,
) -> std::io::Result<Vec<String>> {
    let touched: std::collections::HashSet<&str> = plan.ops.iter().map(apply::op_path).collect();
    let mut cleared: Vec<&str> = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Delete { path } if matches!(base.entries.get(path).map(|e| &e.kind), Some(manifest::Kind::Dir)) => {
                Some(path.as_str())
            }
            _ => None,
        })
        .chain(upper.values().filter(|e| matches!(e.kind, UpperKind::Dir { opaque: true })).map(|e| e.path.as_str()))
        .collect();
    cleared.sort_unstable();
    cleared.dedup();
    // Nested cleared directories are covered by their outermost one.
    let outer: Vec<&str> = cleared
        .iter()
        .copied()
        .filter(|d| !cleared.iter().any(|o| o != d && d.starts_with(&format!("{o}/"))))
        .collect();
    let mut notes = Vec::new();
    for dir in outer {
        let mut kept = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(d) = pending.pop() {
            for (name, is_dir) in host.list(&d)? {
                let path = format!("{d}/{name}");
                if is_dir {
                    pending.push(path.clone());
                }
                if !base.entries.contains_key(&path) && !touched.contains(path.as_str()) && !is_dir {
                    kept.push(path);
                }
            }
        }
        kept.sort();
        for path in kept.iter().take(KEPT_LISTED) {
            notes.push(format!(
                "{}: kept: a host file the VM never saw, inside `{}`, which the VM deleted or replaced",
                crate::ui::escape_name(path),
                crate::ui::escape_name(dir)
            ));
        }
        if kept.len() > KEPT_LISTED {
            notes.push(format!("… and {} more host-only files kept inside `{}`", kept.len() - KEPT_LISTED, dir));
        }
    }
    Ok(notes)
}

fn view(plan: &Plan, upper: &HashMap<&str, &UpperEntry>) -> Vec<OpView> {
    plan.ops
        .iter()
        .map(|op| match op {
            Op::Delete { path } => OpView { op: "delete", path: path.clone(), bytes: None },
            Op::Mkdir { path, .. } => OpView { op: "mkdir", path: path.clone(), bytes: None },
            Op::DirMode { path, .. } => OpView { op: "chmod", path: path.clone(), bytes: None },
            Op::Write { path } => {
                let bytes = match &upper[path.as_str()].kind {
                    UpperKind::File { size, .. } => Some(*size),
                    _ => None,
                };
                let op =
                    if matches!(upper[path.as_str()].kind, UpperKind::Symlink { .. }) { "symlink" } else { "write" };
                OpView { op, path: path.clone(), bytes }
            }
        })
        .collect()
}

/// Lines of diff shown per file, and in all: a preview is for reading, and memory must not grow
/// with the change set.
const DIFF_LINES_PER_FILE: usize = 80;
const DIFF_LINES_TOTAL: usize = 4000;

/// Unified diffs of changed text files (host now → staged), binary files summarised, capped.
/// Files with a secret finding get no diff: a diff would print the secret.
fn diffs(plan: &Plan, staged: &Stage, host: &Host, withheld: &std::collections::HashSet<String>) -> String {
    let mut out = String::new();
    let mut shown = 0;
    let writes: Vec<&String> =
        plan.ops.iter().filter_map(|op| if let Op::Write { path } = op { Some(path) } else { None }).collect();
    for (i, &path) in writes.iter().enumerate() {
        if shown >= DIFF_LINES_TOTAL {
            out.push_str(&format!("… diffs of {} more files not shown\n", writes.len() - i));
            break;
        }
        if staged.get(path).is_none() {
            continue;
        }
        if withheld.contains(path) {
            out.push_str(&format!("diff of {} withheld: it contains a secret finding\n", crate::ui::escape_name(path)));
            continue;
        }
        let new = staged.read(path).unwrap_or_default();
        let old = host.read(path).ok().flatten().unwrap_or_default();
        let (Ok(old_text), Ok(new_text)) = (std::str::from_utf8(&old), std::str::from_utf8(&new)) else {
            out.push_str(&format!("binary {}: {} -> {} bytes\n", crate::ui::escape_name(path), old.len(), new.len()));
            continue;
        };
        let diff = similar::TextDiff::from_lines(old_text, new_text)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{}", crate::ui::escape_name(path)), &format!("b/{}", crate::ui::escape_name(path)))
            .to_string();
        let lines: Vec<&str> = diff.lines().collect();
        for line in lines.iter().take(DIFF_LINES_PER_FILE) {
            out.push_str(&crate::ui::sanitize(line));
            out.push('\n');
        }
        if lines.len() > DIFF_LINES_PER_FILE {
            out.push_str(&format!("… {} more diff lines of {path}\n", lines.len() - DIFF_LINES_PER_FILE));
        }
        shown += lines.len().min(DIFF_LINES_PER_FILE);
    }
    out
}

/// The baseline after an apply: the old one, with every touched path re-read from the host
/// beneath the workspace root (written files take the hash of the bytes staged and written).
fn refreshed(
    mut base: manifest::Manifest,
    plan: &Plan,
    staged: &Stage,
    host: &Host,
    host_root: &Path,
) -> Result<manifest::Manifest, SyncError> {
    for op in &plan.ops {
        let path = apply::op_path(op);
        let io = |source| SyncError::Io { path: host_root.join(path), source };
        let Some(stat) = host.stat(path).map_err(io)? else {
            base.entries.remove(path);
            continue;
        };
        // A written file was hashed by the verification a moment ago: its size and the staged
        // hash are enough, no third read of its content.
        if let Some(sha256) = staged.sha256(path)
            && rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
        {
            let kind = manifest::Kind::File { size: stat.st_size.unsigned_abs(), sha256: sha256.to_owned() };
            base.entries
                .insert(path.to_owned(), manifest::Entry { kind, mode: stat.st_mode & 0o7777, mtime: stat.st_mtime });
            continue;
        }
        let kind = match host.state(path).map_err(io)? {
            crate::sync::host::HostState::Symlink { target } => manifest::Kind::Symlink { target },
            crate::sync::host::HostState::Dir { .. } => manifest::Kind::Dir,
            crate::sync::host::HostState::File { sha256, size, .. } => manifest::Kind::File { size, sha256 },
            crate::sync::host::HostState::Missing => {
                base.entries.remove(path);
                continue;
            }
            crate::sync::host::HostState::Other => manifest::Kind::Special,
        };
        base.entries
            .insert(path.to_owned(), manifest::Entry { kind, mode: stat.st_mode & 0o7777, mtime: stat.st_mtime });
    }
    Ok(base)
}

/// Run the gate. Returns the report; `apply_now` decides interactively (or from `--yes`).
pub(crate) fn run(
    request: &Request,
    profile: &Profile,
    state_dir: &Path,
    confirm: &mut dyn FnMut(&Report) -> Approval,
) -> Result<Report, SyncError> {
    let host_root =
        std::fs::canonicalize(&request.host).map_err(|source| SyncError::Io { path: request.host.clone(), source })?;
    let host = Host::open(&host_root).map_err(|source| SyncError::Io { path: host_root.clone(), source })?;
    let _lock = lock(state_dir, &host_root)?;
    let mut notes = Vec::new();
    let recovered = recover(state_dir, &host_root, &host)?;
    let base = store::load_baseline(state_dir, &host_root)?
        .ok_or_else(|| SyncError::NoBaseline { path: host_root.clone() })?;
    let ns = if profile.sync.userxattr { Namespace::User } else { Namespace::Trusted };
    let sync_dir = sync_dir(state_dir, &host_root);
    let stage_dir = sync_dir.join("stage");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SyncError::Io { path: path.clone(), source }
    };
    if stage_dir.exists() {
        std::fs::remove_dir_all(&stage_dir).map_err(io(&stage_dir))?;
    }
    std::fs::create_dir_all(&stage_dir).map_err(io(&stage_dir))?;
    let workspace = profile.workspaces.iter().find(|w| w.host == host_root);
    let policy = Policy::new(&profile.sync, workspace.map_or(&[][..], |w| &w.exclude))
        .map_err(|e| SyncError::Policy { message: e.to_string() })?;
    let upper = read_source(&request.source, ns, &stage_dir, profile, &policy)?;
    let index: HashMap<&str, &UpperEntry> = upper.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut plan = plan::interpret(&upper, &base);
    notes.extend(std::mem::take(&mut plan.notes));
    notes.extend(upper.warnings.iter().cloned());
    let excluded = policy.exclude(&mut plan);
    let mount_points = Policy::drop_tool_mount_points(&mut plan);
    // Directory permissions stay the host's: the VM could otherwise make them world-writable.
    plan.ops.retain(|op| match op {
        Op::DirMode { path, .. } => {
            notes.push(format!("{path}: directory mode changed in the VM; not applied"));
            false
        }
        _ => true,
    });
    let issues: Vec<Issue> = policy.check(&plan, &upper, &base, &host_root);
    // A plan already refused is not checked further: its names may not even be valid on the host,
    // and nothing of it (not even an oversized file) is read into staging.
    let refused_early = !plan.refusals.is_empty() || issues.iter().any(|i| matches!(i.tier, Tier::Refuse));
    let (conflicts, expected) = if refused_early {
        (Vec::new(), apply::Expected::new())
    } else {
        apply::check_conflicts(&mut plan, &base, &index, &host, request.on_conflict).map_err(io(&host_root))?
    };
    notes.extend(std::mem::take(&mut plan.notes));
    if !refused_early {
        notes.extend(host_only_kept(&plan, &base, &index, &host).map_err(io(&host_root))?);
    }
    let set = match &profile.sync.secret_rules {
        SecretRules::Builtin => RuleSet::load(None, &[]),
        SecretRules::File(path) => RuleSet::load(Some(path), &[]),
    }
    .map_err(|e| SyncError::Scanner { message: e.to_string() })?;
    let (staged, findings, preexisting_findings, secret_paths) = if refused_early {
        (Stage::default(), Vec::new(), 0, std::collections::HashSet::new())
    } else {
        let private = matches!(request.source, Source::Tar { .. } | Source::Stream(_));
        stage_and_scan(&plan, &index, &stage_dir, private, &set, &host)?
    };
    let refusals: Vec<String> = plan
        .refusals
        .iter()
        .map(|r| format!("{}: {} ({})", if r.path.is_empty() { "." } else { &r.path }, r.message, r.code))
        .collect();
    let describe = |i: &Issue| format!("{}: {} [{}]; fix: {}", i.path, i.message, i.rule, i.fix);
    let policy_refusals: Vec<String> = issues.iter().filter(|i| matches!(i.tier, Tier::Refuse)).map(describe).collect();
    let review: Vec<String> = issues.iter().filter(|i| matches!(i.tier, Tier::Review)).map(describe).collect();
    let mut report = Report {
        host: host_root.clone(),
        recovered,
        ops: view(&plan, &index),
        diffs: diffs(&plan, &staged, &host, &secret_paths),
        notes,
        excluded,
        mount_points,
        refusals,
        policy: policy_refusals,
        review,
        review_paths: issues.iter().filter(|i| matches!(i.tier, Tier::Review)).map(|i| i.path.clone()).collect(),
        conflicts,
        findings,
        preexisting_findings,
        decision: Decision::Refused,
    };
    // Conflicts alone can be settled one by one by a person at a terminal.
    let settle_conflicts = request.interactive && !request.dry_run;
    let blocked = !report.refusals.is_empty()
        || !report.policy.is_empty()
        || (!report.conflicts.is_empty() && !settle_conflicts)
        || !report.findings.is_empty();
    report.decision = if blocked {
        Decision::Refused
    } else if plan.ops.is_empty() {
        Decision::NothingToDo
    } else if request.dry_run {
        Decision::DryRun
    } else if !report.review.is_empty() && !request.interactive {
        // Review-tier paths need a person: `--yes` alone never applies them.
        report.policy.push("paths in the review tier need explicit approval; run `sandbox sync` in a terminal".into());
        Decision::Refused
    } else if request.yes && report.review.is_empty() && report.conflicts.is_empty() {
        Decision::Applied
    } else {
        match confirm(&report) {
            Approval::Decline => Decision::Declined,
            Approval::Apply { leave_out, take_vm } if !settled(&report.conflicts, &leave_out, &take_vm, &plan) => {
                report.policy.push("a conflict was neither left out nor taken from the VM".into());
                Decision::Refused
            }
            Approval::Apply { leave_out, take_vm } => {
                for path in &take_vm {
                    report.notes.push(format!(
                        "{}: conflict settled by you: the VM's version replaces the host's (undo restores it)",
                        crate::ui::escape_name(path)
                    ));
                }
                for path in leave_out_ops(&mut plan, &leave_out) {
                    report.notes.push(format!(
                        "{}: left out by you; the host keeps its version",
                        crate::ui::escape_name(&path)
                    ));
                }
                report.ops = view(&plan, &index);
                if plan.ops.is_empty() { Decision::Declined } else { Decision::Applied }
            }
        }
    };
    if report.decision == Decision::Applied {
        let pending = sync_dir.join("pending");
        if let Err(source) = apply::apply(&plan, &index, &staged, &host, &expected, &pending) {
            // Undo what this apply began right away (ENOSPC, a failed verification, ...), so
            // an error never leaves the workspace half-synced until the next run.
            let rolled = apply::Journal::read(&pending)
                .and_then(|records| apply::roll_back(&records, &pending, &host, false))
                .and_then(|_| std::fs::remove_dir_all(&pending));
            let _ = std::fs::remove_dir_all(&stage_dir);
            return Err(match rolled {
                Ok(()) => SyncError::ApplyRolledBack { host: host_root, source },
                Err(rollback) => SyncError::ApplyFailed { host: host_root, source, rollback },
            });
        }
        promote(&sync_dir).map_err(io(&sync_dir))?;
        store::save_baseline(state_dir, &refreshed(base, &plan, &staged, &host, &host_root)?)?;
    }
    let _ = std::fs::remove_dir_all(&stage_dir);
    audit(state_dir, profile, &report, &staged)?;
    Ok(report)
}

/// Undo the last applied sync, refusing if any file it wrote or removed changed since.
pub(crate) fn undo(host: &Path, profile: &Profile, state_dir: &Path) -> Result<Vec<String>, SyncError> {
    let host_root = std::fs::canonicalize(host).map_err(|source| SyncError::Io { path: host.to_path_buf(), source })?;
    let host_fd = Host::open(&host_root).map_err(|source| SyncError::Io { path: host_root.clone(), source })?;
    let _lock = lock(state_dir, &host_root)?;
    recover(state_dir, &host_root, &host_fd)?;
    let dir = sync_dir(state_dir, &host_root);
    let last = dir.join("last");
    if !last.exists() {
        return Err(SyncError::NothingToUndo { path: host_root });
    }
    let io = |source| SyncError::Io { path: last.clone(), source };
    let records = apply::Journal::read(&last).map_err(io)?;
    let changed = apply::changed_since(&records, &host_fd).map_err(io)?;
    if !changed.is_empty() {
        return Err(SyncError::ChangedSinceSync { paths: changed });
    }
    let left = apply::roll_back(&records, &last, &host_fd, false).map_err(io)?;
    std::fs::remove_dir_all(&last).map_err(io)?;
    let manifest = manifest::record(&host_root, 2)?;
    store::save_baseline(state_dir, &manifest)?;
    let line = serde_json::json!({ "time": now(), "profile": profile.name, "host": host_root, "action": "undo", "operations": records.iter().filter(|r| matches!(r, Record::Intent { .. })).count() });
    append_audit(state_dir, &line)?;
    Ok(left)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn audit(state_dir: &Path, profile: &Profile, report: &Report, staged: &Stage) -> Result<(), SyncError> {
    let count = |op: &str| report.ops.iter().filter(|o| o.op == op).count();
    let mut written: Vec<(&str, &str)> = staged.hashes().collect();
    written.sort();
    let line = serde_json::json!({
        "time": now(),
        "profile": profile.name,
        "host": report.host,
        "action": "sync",
        "decision": report.decision,
        "counts": { "write": count("write"), "symlink": count("symlink"), "mkdir": count("mkdir"), "delete": count("delete"), "chmod": count("chmod") },
        "sha256": written.iter().map(|(p, s)| serde_json::json!({ "path": p, "sha256": s })).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(|f| serde_json::json!({ "rule_id": f.rule_id, "path": f.path, "line": f.line, "redacted": f.redacted })).collect::<Vec<_>>(),
        "refusals": report.refusals.len() + report.policy.len() + report.conflicts.len(),
    });
    append_audit(state_dir, &line)
}

fn append_audit(state_dir: &Path, line: &serde_json::Value) -> Result<(), SyncError> {
    let path = store::root(state_dir).join("audit.jsonl");
    let io = |source| SyncError::Io { path: path.clone(), source };
    std::fs::create_dir_all(store::root(state_dir)).map_err(io)?;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    let mut bytes = serde_json::to_vec(line).map_err(|e| io(std::io::Error::other(e)))?;
    bytes.push(b'\n');
    file.write_all(&bytes).map_err(io)?;
    file.sync_data().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ops: &[(&str, &str)]) -> Plan {
        let ops = ops
            .iter()
            .map(|(op, path)| {
                let path = (*path).to_owned();
                match *op {
                    "delete" => Op::Delete { path },
                    "mkdir" => Op::Mkdir { path, mode: 0o755 },
                    _ => Op::Write { path },
                }
            })
            .collect();
        Plan { ops, ..Plan::default() }
    }

    fn paths(plan: &Plan) -> Vec<&str> {
        plan.ops.iter().map(apply::op_path).collect()
    }

    #[test]
    fn leaving_out_a_path_drops_what_depends_on_it() {
        let mut p = plan(&[
            ("delete", "old/keep.txt"),
            ("delete", "old/gone.txt"),
            ("delete", "old"),
            ("delete", "swap"),
            ("mkdir", "swap"),
            ("write", "swap/a"),
            ("mkdir", "new"),
            ("write", "new/x"),
            ("write", "new/y"),
            ("write", "newer"),
        ]);
        let dropped = leave_out_ops(&mut p, &["old/keep.txt".into(), "swap".into(), "new/x".into()]);
        // The directory holding a kept file is not deleted; a path left out loses every
        // operation on it and beneath it (never a deletion without its replacement).
        assert_eq!(dropped, ["old/keep.txt", "old", "swap", "swap", "swap/a", "new/x"]);
        assert_eq!(paths(&p), ["old/gone.txt", "new", "new/y", "newer"]);
    }
}
