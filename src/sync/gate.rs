//! The gate: upper → plan → policy → conflicts → stage → scan → preview → apply → verify →
//! baseline → audit, in that order, stopping at the first stage that refuses.
//!
//! Invariants: nothing is written to the host workspace before every check has passed on the
//! same plan; the scanner sees the staged bytes that will be written, never a second read of the
//! source; an unfinished apply from an earlier run is rolled back before anything else.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::profile::{Profile, SecretRules};
use crate::scan::RuleSet;
use crate::sync::apply::{self, Conflict, OnConflict, Record};
use crate::sync::error::SyncError;
use crate::sync::findings::{self, Scanned};
use crate::sync::host::Host;
use crate::sync::manifest::{self, hex};
use crate::sync::plan::{self, Op, Plan};
use crate::sync::policy::{self, HostContext, Issue, Policy, Tier};
use crate::sync::report::{Decision, DiffView, Item, OpKind, OpView, Redactor, Report};
use crate::sync::stage::Stage;
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
    /// Files and folders `sandbox` itself reads (the profile chain, its config and state
    /// folders): a change to them needs review when they lie in the workspace.
    pub(crate) protected: Vec<PathBuf>,
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
        Source::Dir(dir) if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) => {
            Err(SyncError::UpperNotADirectory { path: dir.clone() })
        }
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

/// `path` relative to the workspace root, as written and with its existing part's symlinks
/// resolved, each when it lies inside the workspace (`""` for the root itself): a profile at
/// `ws/p.yaml -> real.yaml` is read through both names.
fn relative_names(root: &Path, path: &Path) -> Vec<String> {
    let mut tail = Vec::new();
    let mut existing = Some(path);
    let canonical = loop {
        let Some(at) = existing else { break None };
        if let Ok(c) = std::fs::canonicalize(at) {
            break Some(tail.iter().rev().fold(c, |acc: PathBuf, name| acc.join(name)));
        }
        tail.extend(at.file_name());
        existing = at.parent();
    };
    let mut names: Vec<String> = [Some(path), canonical.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|p| p.strip_prefix(root).ok().and_then(|rel| rel.to_str().map(str::to_owned)))
        .collect();
    names.dedup();
    names
}

/// The folder git runs the workspace repository's hooks from (`core.hooksPath`, else
/// `.git/hooks`), as git itself resolves it; `None` outside a repository or without git. A
/// planted bare repository is never consulted (`safe.bareRepository=explicit`).
fn hooks_folder(host_root: &Path) -> Option<PathBuf> {
    let out = crate::exec::Invocation::new(crate::exec::GIT)
        .args(["-c", "safe.bareRepository=explicit", "rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .dir(host_root)
        .output()
        .ok()?;
    let text = out.stdout_text();
    let line = text.lines().next()?.trim();
    (out.success() && !line.is_empty()).then(|| PathBuf::from(line))
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
            || (c.can_take_vm() && take_vm.contains(&c.path) && plan.ops.iter().any(|op| apply::op_path(op) == c.path))
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
            Op::Delete { path } => OpView { op: OpKind::Delete, path: path.clone(), bytes: None, target: None },
            Op::Mkdir { path, .. } | Op::DirMode { path, .. } => {
                OpView { op: OpKind::Mkdir, path: path.clone(), bytes: None, target: None }
            }
            Op::Write { path } => match &upper[path.as_str()].kind {
                UpperKind::Symlink { target } => {
                    OpView { op: OpKind::Symlink, path: path.clone(), bytes: None, target: Some(target.clone()) }
                }
                UpperKind::File { size, .. } => {
                    OpView { op: OpKind::Write, path: path.clone(), bytes: Some(*size), target: None }
                }
                _ => OpView { op: OpKind::Write, path: path.clone(), bytes: None, target: None },
            },
        })
        .collect()
}

/// The preview's diffs of the files the plan writes: review-tier paths first (they get the
/// budget before anything else), each against the host's current version, secrets redacted.
fn diffs(
    plan: &Plan,
    scanned: &Scanned,
    host: &Host,
    set: &RuleSet,
    review: &[&str],
    credentials: &[&str],
) -> Vec<DiffView> {
    let mut writes: Vec<&str> = plan
        .ops
        .iter()
        .filter_map(|op| if let Op::Write { path } = op { Some(path.as_str()) } else { None })
        .filter(|path| scanned.staged.get(path).is_some())
        .collect();
    writes.sort_by_key(|path| !review.contains(path));
    let mut budget = crate::sync::diff::Budget::default();
    let none: (findings::Spans, findings::Spans) = (Vec::new(), Vec::new());
    writes
        .into_iter()
        .map(|path| {
            if credentials.contains(&path) {
                // A credential file is never printed, found secrets or not (`PASSWORD=hunter2`).
                return DiffView {
                    path: path.to_owned(),
                    text: format!("{}: not shown: a credential file name\n", crate::ui::escape_name(path)),
                    lines_not_shown: 0,
                    complete: false,
                };
            }
            let new = scanned.staged.read(path).unwrap_or_default();
            let old = host.read(path).ok().flatten().unwrap_or_default();
            // The host's version is printed too (its `-` lines): a secret it holds that the VM
            // removes is redacted like one it adds.
            let scanned_old;
            let (old_secrets, new_secrets) = match scanned.spans.get(path) {
                Some(spans) => (&spans.0, &spans.1),
                None => {
                    scanned_old = findings::spans_of(set, path, &old);
                    (&scanned_old, &none.1)
                }
            };
            let input = crate::sync::diff::Input {
                path,
                old: &old,
                new: &new,
                old_secrets,
                new_secrets,
                review: review.contains(&path),
            };
            crate::sync::diff::diff(&input, &mut budget)
        })
        .collect()
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

/// Policy refusals that make a path unfit to look up on the host (its name or length), and
/// those that refuse the whole plan for its size: after these, the conflict check and the scan
/// skip the path, or the whole plan.
const UNFIT_NAME: [&str; 3] = [policy::rule::NAME, policy::rule::NAME_LENGTH, policy::rule::DEPTH];
const OVER_LIMITS: [&str; 2] = [policy::rule::COUNT, policy::rule::TOTAL_SIZE];

fn item(i: &Issue) -> Item {
    Item { code: i.rule, path: i.path.clone(), message: i.message.clone(), fix: i.fix.clone() }
}

/// Run the gate. Every stage runs (policy, conflicts, scan), so the report holds every problem
/// at once; `confirm` is asked only when nothing blocks and a person decides (or `--yes` does).
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
    let context = HostContext {
        profile_paths: request.protected.iter().flat_map(|p| relative_names(&host_root, p)).collect(),
        hooks_path: hooks_folder(&host_root).and_then(|p| relative_names(&host_root, &p).pop()),
    };
    let policy = Policy::new(&profile.sync, workspace.map_or(&[][..], |w| &w.exclude))
        .map_err(|e| SyncError::Policy { message: e.to_string() })?
        .with_context(context);
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
    let mut refusals: Vec<Item> = plan
        .refusals
        .iter()
        .map(|r| Item {
            code: r.code,
            path: if r.path.is_empty() { ".".into() } else { r.path.clone() },
            message: r.message.clone(),
            fix: String::new(),
        })
        .collect();
    refusals.extend(issues.iter().filter(|i| matches!(i.tier, Tier::Refuse)).map(item));
    let review: Vec<Item> = issues.iter().filter(|i| matches!(i.tier, Tier::Review)).map(item).collect();
    let refused = !refusals.is_empty();
    let over_limits = refusals.iter().any(|r| OVER_LIMITS.contains(&r.code));
    let unfit: std::collections::HashSet<&str> = issues
        .iter()
        .filter(|i| UNFIT_NAME.contains(&i.rule) || i.rule == policy::rule::SIZE)
        .map(|i| i.path.as_str())
        .chain(upper.unread.iter().map(String::as_str))
        .collect();
    // Conflicts. A plan that is refused anyway is checked on a copy (its operations are only
    // reported, never applied), leaving out paths unfit to look up.
    let (conflicts, expected) = if over_limits {
        notes.push("conflicts and secrets were not checked: the plan is over its limits (see the refusals)".into());
        (Vec::new(), apply::Expected::new())
    } else if refused {
        let mut copy = Plan {
            ops: plan.ops.iter().filter(|op| !unfit.contains(apply::op_path(op))).cloned().collect(),
            ..Plan::default()
        };
        match apply::check_conflicts(&mut copy, &base, &index, &host, request.on_conflict) {
            Ok((conflicts, _)) => (conflicts, apply::Expected::new()),
            Err(e) => {
                notes.push(format!("conflicts were not checked: {e}"));
                (Vec::new(), apply::Expected::new())
            }
        }
    } else {
        let checked =
            apply::check_conflicts(&mut plan, &base, &index, &host, request.on_conflict).map_err(io(&host_root))?;
        notes.extend(std::mem::take(&mut plan.notes));
        notes.extend(host_only_kept(&plan, &base, &index, &host).map_err(io(&host_root))?);
        checked
    };
    let set = match &profile.sync.secret_rules {
        SecretRules::Builtin => RuleSet::load(None, &[]),
        SecretRules::File(path) => RuleSet::load(Some(path), &[]),
    }
    .map_err(|e| SyncError::Scanner { message: e.to_string() })?;
    let mut redactor = Redactor::default();
    // Names and link targets are scanned whatever else happens: they are printed.
    let name_findings = findings::scan_names(&plan, &index, &set, &mut redactor);
    let scanned = if over_limits {
        Scanned::default()
    } else {
        let writes: Vec<&str> = plan
            .ops
            .iter()
            .filter_map(|op| if let Op::Write { path } = op { Some(path.as_str()) } else { None })
            .filter(|path| !unfit.contains(path))
            .collect();
        let private = matches!(request.source, Source::Tar { .. } | Source::Stream(_));
        findings::stage_and_scan(&writes, &index, &stage_dir, private, &set, &host)?
    };
    let review_paths: Vec<&str> = review.iter().map(|i| i.path.as_str()).collect();
    let credentials: Vec<&str> =
        issues.iter().filter(|i| i.rule == policy::rule::BLOCKED_NAME).map(|i| i.path.as_str()).collect();
    let mut report = Report {
        version: crate::sync::report::JSON_VERSION,
        host: host_root.clone(),
        decision: Decision::Refused,
        recovered,
        ops: view(&plan, &index),
        diffs: diffs(&plan, &scanned, &host, &set, &review_paths, &credentials),
        notes,
        excluded,
        mount_points,
        refusals,
        review,
        conflicts,
        findings: scanned.findings.iter().cloned().chain(name_findings).collect(),
        preexisting_findings: scanned.preexisting,
    };
    let printed = report
        .excluded
        .iter()
        .chain(&report.mount_points)
        .map(String::as_str)
        .chain(report.ops.iter().map(|o| o.path.as_str()))
        .chain(report.refusals.iter().chain(&report.review).map(|i| i.path.as_str()))
        .chain(report.conflicts.iter().map(|c| c.path.as_str()))
        .chain(upper.entries.iter().map(|e| e.path.as_str()))
        .chain(upper.entries.iter().filter_map(|e| match &e.kind {
            UpperKind::Symlink { target } => Some(target.as_str()),
            _ => None,
        }));
    findings::redact_names(printed, &set, &mut redactor);
    report.redact(&redactor);
    debug_assert!(
        !redactor.is_unsafe(&serde_json::to_string(&report).unwrap_or_default()),
        "a secret found in a name survived the report's redaction"
    );
    // Conflicts alone can be settled one by one by a person at a terminal.
    let settle_conflicts = request.interactive && !request.dry_run;
    report.decision = if report.blocked(settle_conflicts) {
        Decision::Refused
    } else if plan.ops.is_empty() {
        Decision::NothingToDo
    } else if request.dry_run {
        Decision::DryRun
    } else if !report.review.is_empty() && !request.interactive {
        // Review-tier paths need a person: `--yes` alone never applies them.
        report.refusals.push(Item {
            code: "E_NEEDS_REVIEW",
            path: ".".into(),
            message: "paths in the review tier need a person's approval, and there is no terminal to ask in".into(),
            fix: "run `sandbox sync` in a terminal and approve them one by one".into(),
        });
        Decision::Refused
    } else if request.yes && report.review.is_empty() && report.conflicts.is_empty() {
        Decision::Applied
    } else {
        match confirm(&report) {
            Approval::Decline => Decision::Declined,
            Approval::Apply { leave_out, take_vm } if !settled(&report.conflicts, &leave_out, &take_vm, &plan) => {
                report.refusals.push(Item {
                    code: "E_UNSETTLED",
                    path: ".".into(),
                    message: "a conflict was neither left out nor taken from the VM".into(),
                    fix: "settle every conflict, or use `--on-conflict keep-host|take-vm`".into(),
                });
                Decision::Refused
            }
            Approval::Apply { leave_out, take_vm } => {
                for path in &take_vm {
                    report.notes.push(format!(
                        "{}: conflict settled by you: the VM's version replaces the host's (undo restores it)",
                        crate::ui::escape_name(&redactor.apply(path))
                    ));
                }
                for path in leave_out_ops(&mut plan, &leave_out) {
                    report.notes.push(format!(
                        "{}: left out by you; the host keeps its version",
                        crate::ui::escape_name(&redactor.apply(&path))
                    ));
                }
                report.ops = view(&plan, &index);
                report.redact(&redactor);
                if plan.ops.is_empty() { Decision::Declined } else { Decision::Applied }
            }
        }
    };
    if report.decision == Decision::Applied {
        let pending = sync_dir.join("pending");
        if let Err(source) = apply::apply(&plan, &index, &scanned.staged, &host, &expected, &pending) {
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
        store::save_baseline(state_dir, &refreshed(base, &plan, &scanned.staged, &host, &host_root)?)?;
    }
    let _ = std::fs::remove_dir_all(&stage_dir);
    let written: Vec<(String, String)> = if report.decision == Decision::Applied {
        plan.ops
            .iter()
            .filter_map(|op| if let Op::Write { path } = op { Some(path) } else { None })
            .filter_map(|path| scanned.staged.sha256(path).map(|sha| (redactor.apply(path), sha.to_owned())))
            .collect()
    } else {
        Vec::new()
    };
    audit(state_dir, profile, &report, &written)?;
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

/// The audit line of one run: what was decided and, for an apply, exactly what was written.
fn audit(state_dir: &Path, profile: &Profile, report: &Report, written: &[(String, String)]) -> Result<(), SyncError> {
    let count = |op: OpKind| report.ops.iter().filter(|o| o.op == op).count();
    let applied = report.decision == Decision::Applied;
    let mut written: Vec<&(String, String)> = written.iter().collect();
    written.sort();
    let line = serde_json::json!({
        "time": now(),
        "profile": profile.name,
        "host": report.host,
        "action": "sync",
        "decision": report.decision,
        "counts": if applied {
            serde_json::json!({ "write": count(OpKind::Write), "symlink": count(OpKind::Symlink), "mkdir": count(OpKind::Mkdir), "delete": count(OpKind::Delete) })
        } else {
            serde_json::json!({})
        },
        "sha256": written.iter().map(|(p, s)| serde_json::json!({ "path": p, "sha256": s })).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(|f| serde_json::json!({ "code": f.code, "rule_id": f.finding.rule_id, "path": f.finding.path, "line": f.finding.line, "redacted": f.finding.redacted })).collect::<Vec<_>>(),
        "refusals": report.refusals.iter().map(|r| serde_json::json!({ "code": r.code, "path": r.path })).collect::<Vec<_>>(),
        "conflicts": report.conflicts.iter().map(|c| serde_json::json!({ "code": c.code, "path": c.path })).collect::<Vec<_>>(),
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
