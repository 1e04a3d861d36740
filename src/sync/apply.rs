//! Applying a checked plan to the host workspace: the only code that writes there.
//!
//! Every operation is journaled (intent, fsynced) before it happens and marked done after;
//! every overwritten or deleted file is backed up first; every write is a temp file in the same
//! directory, fsynced, renamed over the target, then the directory fsynced; every path is opened
//! beneath the workspace root without following symlinks. A crash at any point leaves each file
//! old or new, and `recover` (run before anything else) rolls an unfinished apply back.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::sync::host::{Host, HostState, read_at, split};
use crate::sync::manifest::{Entry, Kind, Manifest};
use crate::sync::plan::{Op, Plan};
use crate::sync::upper::{UpperEntry, UpperKind};

/// What to do about a path the host changed since the baseline and the VM changed too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    Refuse,
    /// Keep the host's version; drop the VM's change to that path.
    KeepHost,
    /// Apply the VM's version (the host's is backed up and restored by `--undo`).
    TakeVm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Conflict {
    pub(crate) path: String,
    pub(crate) message: String,
}

fn matches_base(h: &HostState, b: &Entry) -> bool {
    match (h, &b.kind) {
        (HostState::File { sha256: a, .. }, Kind::File { sha256: b, .. }) => a == b,
        (HostState::Dir { .. }, Kind::Dir) => true,
        (HostState::Symlink { target: a }, Kind::Symlink { target: b }) => a == b,
        _ => false,
    }
}

fn matches_upper(h: &HostState, u: &UpperEntry) -> bool {
    match (h, &u.kind) {
        (HostState::File { sha256: a, mode, .. }, UpperKind::File { sha256: b, .. }) => {
            // The executable bit is the one mode bit the VM decides (see `file_mode`).
            a == b && (mode & 0o111 != 0) == (u.mode & 0o111 != 0)
        }
        (HostState::Symlink { target: a }, UpperKind::Symlink { target: b }) => a == b,
        _ => false,
    }
}

/// The host state, with a symlink or non-directory in the way reported as `Blocked` (a
/// conflict for the plan, never something to follow).
fn state(host: &Host, path: &str) -> std::io::Result<Option<HostState>> {
    match host.state(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if matches!(e.raw_os_error(), Some(n) if n == rustix::io::Errno::LOOP.raw_os_error() || n == rustix::io::Errno::XDEV.raw_os_error() || n == rustix::io::Errno::NAMETOOLONG.raw_os_error()) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Phase 5: compare each operation's expectation with the live host (three-way: baseline, host,
/// upper). Operations the host already satisfies are dropped; conflicts are returned.
pub(crate) fn check_conflicts(
    plan: &mut Plan,
    base: &Manifest,
    upper: &HashMap<&str, &UpperEntry>,
    host: &Host,
    on_conflict: OnConflict,
) -> std::io::Result<Vec<Conflict>> {
    let deleted: std::collections::HashSet<String> =
        plan.ops.iter().filter_map(|op| if let Op::Delete { path } = op { Some(path.clone()) } else { None }).collect();
    let mut conflicts = Vec::new();
    let mut keep = Vec::with_capacity(plan.ops.len());
    for op in std::mem::take(&mut plan.ops) {
        // A symlink or mount point on the way to the path is never followed: always a conflict.
        let Some(h) = state(host, op_path(&op))? else {
            conflicts.push(Conflict {
                path: op_path(&op).to_owned(),
                message: "a symlink or mount on the host is in the way".into(),
            });
            keep.push(op);
            continue;
        };
        let (path, verdict) = match &op {
            Op::Delete { path } => {
                let b = base.entries.get(path);
                match (&h, b) {
                    (HostState::Missing, _) => (path.clone(), Verdict::Drop("already gone on the host")),
                    (_, Some(b)) if matches_base(&h, b) => (path.clone(), Verdict::Keep),
                    _ => (path.clone(), Verdict::Conflict("changed on the host since the baseline; the VM deletes it")),
                }
            }
            Op::Write { path } => {
                let u = upper[path.as_str()];
                let verdict = if deleted.contains(path) {
                    Verdict::Keep
                } else if matches_upper(&h, u) {
                    Verdict::Drop("the host already has this content")
                } else {
                    match (base.entries.get(path), &h) {
                        (Some(b), h) if matches_base(h, b) => Verdict::Keep,
                        (Some(_), HostState::Missing) => Verdict::Conflict("deleted on the host; the VM changed it"),
                        (Some(_), _) => {
                            Verdict::Conflict("changed on the host since the baseline; the VM changed it too")
                        }
                        (None, HostState::Missing) => Verdict::Keep,
                        (None, _) => Verdict::Conflict("created on the host too, with other content"),
                    }
                };
                (path.clone(), verdict)
            }
            Op::Mkdir { path, .. } => {
                let verdict = match (h, deleted.contains(path)) {
                    (_, true) | (HostState::Missing, _) => Verdict::Keep,
                    (HostState::Dir { .. }, _) => Verdict::Drop("the directory already exists"),
                    _ => Verdict::Conflict("something else was created on the host at this path"),
                };
                (path.clone(), verdict)
            }
            Op::DirMode { path, .. } => match h {
                HostState::Dir { .. } => (path.clone(), Verdict::Keep),
                _ => (path.clone(), Verdict::Conflict("no longer a directory on the host")),
            },
        };
        match verdict {
            Verdict::Keep => keep.push(op),
            Verdict::Drop(why) => plan.notes.push(format!("{path}: {why}")),
            Verdict::Conflict(why) => match on_conflict {
                OnConflict::Refuse => {
                    conflicts.push(Conflict { path, message: why.into() });
                    keep.push(op);
                }
                OnConflict::KeepHost => plan.notes.push(format!("{path}: conflict ({why}); kept the host's version")),
                OnConflict::TakeVm => {
                    plan.notes.push(format!("{path}: conflict ({why}); took the VM's version (undo restores it)"));
                    keep.push(op);
                }
            },
        }
    }
    plan.ops = keep;
    Ok(conflicts)
}

enum Verdict {
    Keep,
    Drop(&'static str),
    Conflict(&'static str),
}

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub(crate) enum Record {
    /// About to perform operation `seq`; `backup` holds the previous content if there was any.
    Intent {
        seq: usize,
        op: String,
        path: String,
        backup: Option<String>,
        prev: Prev,
        sha256: Option<String>,
    },
    Done {
        seq: usize,
    },
    Commit,
}

/// What was at a path before an operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Prev {
    Missing,
    File { mode: u32 },
    Dir { mode: u32 },
    Symlink { target: String },
}

/// The journal of one apply, in `dir` (with `backups/`).
pub(crate) struct Journal {
    pub(crate) dir: PathBuf,
    file: std::fs::File,
}

impl Journal {
    pub(crate) fn create(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir.join("backups"))?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("journal.jsonl"))?;
        Ok(Journal { dir: dir.to_path_buf(), file })
    }

    fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }

    /// Write-ahead: records are durable before the operations they announce happen.
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    pub(crate) fn read(dir: &Path) -> std::io::Result<Vec<Record>> {
        let file = std::fs::File::open(dir.join("journal.jsonl"))?;
        let mut out = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            // A torn last line is an intent that never became durable: nothing happened for it.
            match serde_json::from_str(&line) {
                Ok(r) => out.push(r),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

fn fsync_dir(dir: &impl AsFd) -> std::io::Result<()> {
    rustix::fs::fsync(dir).map_err(Into::into)
}

fn parent_fd(host: &Host, rel: &str) -> std::io::Result<(OwnedFd, String)> {
    let (parent, name) = split(rel);
    let dir = host.dir(parent)?.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{parent}: missing parent directory"))
    })?;
    Ok((dir, name.to_owned()))
}

/// Write `bytes` (or a symlink to `target`) at `name` in `dir` atomically: temp file, fsync,
/// rename, and (unless the caller batches it) directory fsync.
fn put(dir: &OwnedFd, name: &str, content: &Content<'_>, mode: u32, sync_dir: bool) -> std::io::Result<()> {
    // A fresh, unguessable name created with O_EXCL: an existing host file is never touched.
    let tmp = format!(".sandbox-sync-{}-{:016x}.tmp", std::process::id(), rand_u64());
    match content {
        Content::Bytes(bytes) => {
            let fd = rustix::fs::openat(
                dir,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut file = std::fs::File::from(fd);
            file.write_all(bytes)?;
            rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
            file.sync_all()?;
        }
        Content::Symlink(target) => rustix::fs::symlinkat(*target, dir, tmp.as_str())?,
    }
    rustix::fs::renameat(dir, tmp.as_str(), dir, name)?;
    if sync_dir { fsync_dir(dir) } else { Ok(()) }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

enum Content<'a> {
    Bytes(&'a [u8]),
    Symlink(&'a str),
}

/// Normalised modes: the VM decides only whether a file is executable.
pub(crate) fn file_mode(upper_mode: u32) -> u32 {
    if upper_mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

fn prev_of(host: &Host, rel: &str) -> std::io::Result<Prev> {
    Ok(match host.state(rel)? {
        HostState::Missing => Prev::Missing,
        HostState::File { mode, .. } => Prev::File { mode },
        HostState::Dir { mode } => Prev::Dir { mode },
        HostState::Symlink { target } => Prev::Symlink { target },
        HostState::Other => return Err(std::io::Error::other(format!("{rel}: a device, FIFO or socket on the host"))),
    })
}

/// Apply `plan` (already checked) to the workspace, journaling in `journal_dir`. `staged` maps
/// each written file to its staged copy (the exact bytes that were scanned), read one at a time.
pub(crate) fn apply(
    plan: &Plan,
    upper: &HashMap<&str, &UpperEntry>,
    staged: &HashMap<String, (PathBuf, String)>,
    host: &Host,
    journal_dir: &Path,
) -> std::io::Result<()> {
    let mut journal = Journal::create(journal_dir)?;
    let ops: Vec<(usize, &Op)> = plan.ops.iter().enumerate().collect();
    // Operations go in batches: the intents (and backups) of a batch are made durable together,
    // then its operations run, then the touched directories are fsynced once each. The
    // write-ahead rule holds for every operation, with a few fsyncs per batch instead of per file.
    for batch in ops.chunks(BATCH) {
        let mut prevs = Vec::with_capacity(batch.len());
        for &(seq, op) in batch {
            let path = op_path(op);
            let prev = prev_of(host, path)?;
            let backup = match &prev {
                Prev::File { .. } if matches!(op, Op::Delete { .. } | Op::Write { .. }) => {
                    let (dir, name) = parent_fd(host, path)?;
                    let bytes = read_at(&dir, &name)?;
                    let backup_name = format!("{seq}.bak");
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(journal.dir.join("backups").join(&backup_name))?;
                    f.write_all(&bytes)?;
                    f.sync_all()?;
                    Some(backup_name)
                }
                _ => None,
            };
            let sha256 = staged.get(path).map(|(_, sha)| sha.clone());
            journal.write(&Record::Intent {
                seq,
                op: op_kind(op).into(),
                path: path.to_owned(),
                backup,
                prev: prev.clone(),
                sha256,
            })?;
            prevs.push(prev);
        }
        journal.sync()?;
        let mut touched: Vec<(String, OwnedFd)> = Vec::new();
        for (&(seq, op), prev) in batch.iter().zip(&prevs) {
            failpoint(seq);
            let path = op_path(op);
            let (dir, name) = parent_fd(host, path)?;
            perform(op, prev, &dir, &name, upper, staged)?;
            let parent = split(path).0.to_owned();
            if !touched.iter().any(|(p, _)| *p == parent) {
                touched.push((parent, dir));
            }
        }
        for (_, dir) in &touched {
            fsync_dir(dir)?;
        }
        for &(seq, _) in batch {
            journal.write(&Record::Done { seq })?;
        }
        journal.sync()?;
    }
    verify(plan, upper, staged, host)?;
    failpoint(plan.ops.len());
    journal.write(&Record::Commit)?;
    journal.sync()
}

/// Operations per journal batch.
const BATCH: usize = 256;

fn op_path(op: &Op) -> &str {
    match op {
        Op::Delete { path } | Op::Mkdir { path, .. } | Op::Write { path } | Op::DirMode { path, .. } => path,
    }
}

fn op_kind(op: &Op) -> &'static str {
    match op {
        Op::Delete { .. } => "delete",
        Op::Mkdir { .. } => "mkdir",
        Op::Write { .. } => "write",
        Op::DirMode { .. } => "dirmode",
    }
}

fn perform(
    op: &Op,
    prev: &Prev,
    dir: &OwnedFd,
    name: &str,
    upper: &HashMap<&str, &UpperEntry>,
    staged: &HashMap<String, (PathBuf, String)>,
) -> std::io::Result<()> {
    match op {
        Op::Delete { .. } => match prev {
            Prev::Dir { .. } => match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                // Host files the VM never saw keep the directory alive; they are reported.
                Err(rustix::io::Errno::NOTEMPTY) => {}
                other => other?,
            },
            Prev::Missing => {}
            _ => match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                // Already gone: a batch replayed after a crash.
                Err(rustix::io::Errno::NOENT) => {}
                other => other?,
            },
        },
        // Directory modes are normalised: the VM cannot make a host directory world-writable.
        Op::Mkdir { .. } => match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
            Err(rustix::io::Errno::EXIST) => {}
            other => other?,
        },
        Op::Write { path } => {
            let entry = upper[path.as_str()];
            match &entry.kind {
                UpperKind::Symlink { target } => put(dir, name, &Content::Symlink(target), 0, false)?,
                _ => {
                    let (staged_path, _) = staged
                        .get(path.as_str())
                        .ok_or_else(|| std::io::Error::other(format!("{path}: not staged")))?;
                    let bytes = std::fs::read(staged_path)?;
                    put(dir, name, &Content::Bytes(&bytes), file_mode(entry.mode), false)?;
                }
            }
        }
        Op::DirMode { mode, .. } => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

/// Re-read every touched path and compare it with the plan. A mismatch leaves the journal
/// uncommitted, so the next run rolls the whole apply back.
fn verify(
    plan: &Plan,
    upper: &HashMap<&str, &UpperEntry>,
    staged: &HashMap<String, (PathBuf, String)>,
    host: &Host,
) -> std::io::Result<()> {
    let recreated: std::collections::HashSet<&str> = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Write { path } | Op::Mkdir { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    for op in &plan.ops {
        let (path, ok) = match op {
            Op::Write { path } => {
                let now = host.state(path)?;
                let ok = match (&upper[path.as_str()].kind, &now) {
                    (UpperKind::Symlink { target }, HostState::Symlink { target: t }) => target == t,
                    (_, HostState::File { sha256, .. }) => staged.get(path.as_str()).is_some_and(|(_, s)| s == sha256),
                    _ => false,
                };
                (path, ok)
            }
            Op::Mkdir { path, .. } | Op::DirMode { path, .. } => {
                (path, matches!(host.state(path)?, HostState::Dir { .. }))
            }
            // A directory that kept host-only files is allowed to remain.
            Op::Delete { path } => (
                path,
                recreated.contains(path.as_str())
                    || matches!(state(host, path)?, None | Some(HostState::Missing | HostState::Dir { .. })),
            ),
        };
        if !ok {
            return Err(std::io::Error::other(format!(
                "{path}: the host does not hold what was just written; the sync will be rolled back"
            )));
        }
    }
    Ok(())
}

/// Test hook: `SANDBOX_FAILPOINT=N` kills the process just before apply step N (N = number of
/// operations: just before the commit), to prove recovery. Documented in docs/sync.md.
fn failpoint(step: usize) {
    if std::env::var("SANDBOX_FAILPOINT").ok().and_then(|v| v.parse::<usize>().ok()) == Some(step) {
        std::process::abort();
    }
}

/// Paths whose current state is not what the apply left there (for `--undo`).
pub(crate) fn changed_since(records: &[Record], host: &Host) -> std::io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for record in records {
        let Record::Intent { op, path, sha256, .. } = record else { continue };
        let now = host.state(path)?;
        let as_left = match op.as_str() {
            "write" => match (&now, sha256) {
                (HostState::File { sha256: a, .. }, Some(b)) => a == b,
                (HostState::Symlink { .. }, None) => true,
                _ => false,
            },
            "delete" => matches!(now, HostState::Missing | HostState::Dir { .. }),
            _ => matches!(now, HostState::Dir { .. }),
        };
        if !as_left {
            changed.push(path.clone());
        }
    }
    Ok(changed)
}

/// Undo the operations of `records` that were begun, newest first, restoring `backups/`.
/// With `verify`, a path whose current state is not what the apply left there is not touched
/// and is returned (used by `--undo`; crash recovery restores unconditionally).
pub(crate) fn roll_back(records: &[Record], dir: &Path, host: &Host, verify: bool) -> std::io::Result<Vec<String>> {
    let done: std::collections::HashSet<usize> =
        records.iter().filter_map(|r| if let Record::Done { seq } = r { Some(*seq) } else { None }).collect();
    let mut changed = Vec::new();
    for record in records.iter().rev() {
        let Record::Intent { seq, op, path, backup, prev, sha256 } = record else { continue };
        let now = host.state(path)?;
        if verify {
            let as_left = match op.as_str() {
                "write" => match (&now, sha256) {
                    (HostState::File { sha256: a, .. }, Some(b)) => a == b,
                    (HostState::Symlink { .. }, None) => true,
                    _ => false,
                },
                "delete" => {
                    now == HostState::Missing || matches!((&now, prev), (HostState::Dir { .. }, Prev::Dir { .. }))
                }
                "mkdir" | "dirmode" => matches!(now, HostState::Dir { .. }),
                _ => false,
            };
            if !as_left && done.contains(seq) {
                changed.push(path.clone());
                continue;
            }
        }
        let (pdir, name) = match parent_fd(host, path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match prev {
            Prev::File { mode } => {
                let bytes = std::fs::read(dir.join("backups").join(backup.as_deref().unwrap_or("missing")))?;
                if matches!(now, HostState::Dir { .. }) {
                    let _ = rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::REMOVEDIR);
                }
                put(&pdir, &name, &Content::Bytes(&bytes), *mode, true)?;
            }
            Prev::Symlink { target } => {
                if matches!(now, HostState::Dir { .. }) {
                    let _ = rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::REMOVEDIR);
                }
                put(&pdir, &name, &Content::Symlink(target), 0, true)?;
            }
            Prev::Dir { mode } => match now {
                HostState::Dir { .. } => {
                    let fd = rustix::fs::openat(
                        &pdir,
                        name.as_str(),
                        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(*mode))?;
                }
                HostState::Missing => rustix::fs::mkdirat(&pdir, name.as_str(), Mode::from_raw_mode(*mode))?,
                _ => {
                    rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::empty())?;
                    rustix::fs::mkdirat(&pdir, name.as_str(), Mode::from_raw_mode(*mode))?;
                }
            },
            Prev::Missing => match now {
                HostState::Dir { .. } => match rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::REMOVEDIR) {
                    Err(rustix::io::Errno::NOTEMPTY) => changed.push(path.clone()),
                    other => other?,
                },
                HostState::Missing => {}
                _ => rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::empty())?,
            },
        }
        fsync_dir(&pdir)?;
    }
    Ok(changed)
}
