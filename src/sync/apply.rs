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

use crate::sync::host::{Host, HostState, split};
use crate::sync::manifest::{Entry, Kind, Manifest};
use crate::sync::plan::{Op, Plan};
use crate::sync::stage::Stage;
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

/// Stable conflict codes (docs/sync.md).
pub(crate) mod code {
    /// The host changed the path since the baseline, and the VM changed it too.
    pub(crate) const HOST_CHANGED: &str = "C_HOST_CHANGED";
    /// A symlink or mount point on the host is on the way to the path.
    pub(crate) const IN_THE_WAY: &str = "C_IN_THE_WAY";
    /// A FIFO, device or socket on the host at the path: never opened, never replaced.
    pub(crate) const HOST_SPECIAL: &str = "C_HOST_SPECIAL";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Conflict {
    pub(crate) code: &'static str,
    pub(crate) path: String,
    pub(crate) message: String,
}

impl Conflict {
    /// Whether a person (or `--on-conflict take-vm`) may settle it by taking the VM's version:
    /// never through something in the way, never over a FIFO or device.
    pub(crate) fn can_take_vm(&self) -> bool {
        self.code == code::HOST_CHANGED
    }
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
    reachable(host.state(path))
}

/// `None` for a path beyond a symlink or mount (or too long to name there).
fn reachable<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match result {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if crate::sync::host::unreachable(&e)
                || e.raw_os_error() == Some(rustix::io::Errno::NAMETOOLONG.raw_os_error()) =>
        {
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
) -> std::io::Result<(Vec<Conflict>, Expected)> {
    let deleted: std::collections::HashSet<String> =
        plan.ops.iter().filter_map(|op| if let Op::Delete { path } = op { Some(path.clone()) } else { None }).collect();
    let mut conflicts: Vec<Conflict> = Vec::new();
    let mut expected = Expected::new();
    let mut keep = Vec::with_capacity(plan.ops.len());
    // Symlinks and files this plan deletes (checked: as in the baseline) before creating a
    // directory there: nothing can be beneath them, and a symlink's target is never looked at.
    // Deletions come first in a plan.
    let mut replaced: std::collections::HashSet<String> = std::collections::HashSet::new();
    for op in std::mem::take(&mut plan.ops) {
        let under_replaced = ancestors(op_path(&op)).any(|a| replaced.contains(a));
        let h = if under_replaced { Some(HostState::Missing) } else { state(host, op_path(&op))? };
        // A symlink or mount point on the way to the path is never followed: always a conflict,
        // named by the ancestor that is in the way.
        let Some(h) = h else {
            let path = op_path(&op);
            let blocker = blocking_ancestor(host, path)?;
            if !conflicts.iter().any(|c| c.path == blocker) {
                conflicts.push(Conflict {
                    code: code::IN_THE_WAY,
                    message: format!(
                        "a symlink or mount point on the host is in the way of `{}`; the gate never writes through one",
                        crate::ui::escape_name(path)
                    ),
                    path: blocker,
                });
            }
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
                let verdict = match (&h, deleted.contains(path)) {
                    (_, true) | (HostState::Missing, _) => Verdict::Keep,
                    (HostState::Dir { .. }, _) => Verdict::Drop("the directory already exists"),
                    _ => Verdict::Conflict("something else was created on the host at this path"),
                };
                (path.clone(), verdict)
            }
            Op::DirMode { path, .. } => match &h {
                HostState::Dir { .. } => (path.clone(), Verdict::Keep),
                _ => (path.clone(), Verdict::Conflict("no longer a directory on the host")),
            },
        };
        match verdict {
            Verdict::Keep => {
                if matches!(op, Op::Write { .. } | Op::Delete { .. })
                    && matches!(h, HostState::File { .. })
                    && host.stat(&path)?.is_some_and(|st| st.st_nlink > 1)
                {
                    plan.notes.push(format!(
                        "{}: has other hard links on the host; the file is replaced, not written through, so they keep the old content",
                        crate::ui::escape_name(&path)
                    ));
                }
                // Only a symlink or file: a deleted directory can survive with host-only files
                // in it, which must still be checked.
                if let (Op::Delete { path }, HostState::File { .. } | HostState::Symlink { .. }) = (&op, &h) {
                    replaced.insert(path.clone());
                }
                expected.entry(path).or_insert(h);
                keep.push(op);
            }
            Verdict::Drop(why) => plan.notes.push(format!("{path}: {why}")),
            Verdict::Conflict(_) if h == HostState::Other => {
                expected.entry(path.clone()).or_insert(h);
                conflicts.push(Conflict {
                    code: code::HOST_SPECIAL,
                    path,
                    message: "a FIFO, device or socket is on the host at this path; the gate never opens or replaces \
                              one"
                    .into(),
                });
                keep.push(op);
            }
            Verdict::Conflict(why) => match on_conflict {
                OnConflict::Refuse => {
                    // Kept for a person to settle; what was seen is re-checked if they take the VM's.
                    expected.entry(path.clone()).or_insert(h);
                    conflicts.push(Conflict { code: code::HOST_CHANGED, path, message: why.into() });
                    keep.push(op);
                }
                OnConflict::KeepHost => plan.notes.push(format!("{path}: conflict ({why}); kept the host's version")),
                OnConflict::TakeVm => {
                    plan.notes.push(format!("{path}: conflict ({why}); took the VM's version (undo restores it)"));
                    expected.entry(path).or_insert(h);
                    keep.push(op);
                }
            },
        }
    }
    plan.ops = keep;
    Ok((conflicts, expected))
}

/// What the conflict check saw on the host for each path of the plan: `apply` refuses to go on
/// if a path no longer is what was checked (E_TOCTOU_CHANGED).
pub(crate) type Expected = HashMap<String, HostState>;

/// Whether two observations of a host path show the same thing (content, not metadata).
fn same_state(a: &HostState, b: &HostState) -> bool {
    match (a, b) {
        (HostState::File { sha256: x, .. }, HostState::File { sha256: y, .. }) => x == y,
        (HostState::Symlink { target: x }, HostState::Symlink { target: y }) => x == y,
        (HostState::Dir { .. }, HostState::Dir { .. }) | (HostState::Missing, HostState::Missing) => true,
        _ => false,
    }
}

fn toctou(path: &str, what: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "{}: {what} on the host after the checks (E_TOCTOU_CHANGED); the sync is abandoned",
        crate::ui::escape_name(path)
    ))
}

/// Enough of a file's identity to notice that it was replaced or edited between two looks.
type Ident = Option<(u64, u64, i64, i64, i64)>;

fn ident(dir: &OwnedFd, name: &str) -> std::io::Result<Ident> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some((st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec as i64))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `a`, `a/b` for `a/b/c`: the proper ancestors of a relative path, outermost first.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// The outermost ancestor of `path` that is a symlink, not a directory, or another mount on
/// the host (what makes `path` unreachable without following something); `path` itself if none.
fn blocking_ancestor(host: &Host, path: &str) -> std::io::Result<String> {
    let root_dev = rustix::fs::fstat(&host.root)?.st_dev;
    for a in ancestors(path) {
        let Some(stat) = host.stat(a)? else { continue };
        let dir = rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory;
        if !dir || stat.st_dev != root_dev {
            return Ok(a.to_owned());
        }
    }
    Ok(path.to_owned())
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
        /// The temp file a write goes through, removed by a roll-back if it is still there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tmp: Option<String>,
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

    /// Make the backups written since the last flush durable (names and contents, one
    /// `syncfs` of the state directory's filesystem), then the journal records.
    fn flush_all(&mut self) -> std::io::Result<()> {
        rustix::fs::syncfs(&self.file)?;
        self.sync()
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

/// A fresh, unguessable temp name: created with O_EXCL, so an existing host file is never
/// touched, and recorded in the journal before it is created, so a roll-back removes it.
fn temp_name() -> String {
    format!(".sandbox-sync-{}-{:016x}.tmp", std::process::id(), rand_u64())
}

/// Create `tmp` in `dir` with `content` (not yet durable: the caller flushes). On failure
/// nothing is left behind.
fn write_temp(dir: &OwnedFd, tmp: &str, content: &Content<'_>, mode: u32) -> std::io::Result<()> {
    match content {
        Content::Bytes(bytes) => {
            let fd = rustix::fs::openat(
                dir,
                tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut file = std::fs::File::from(fd);
            let written =
                file.write_all(bytes).and_then(|()| Ok(rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?));
            if let Err(e) = written {
                // ENOSPC and the like: the partial temp file must not stay in the workspace.
                let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
                return Err(e);
            }
        }
        Content::Symlink(target) => rustix::fs::symlinkat(*target, dir, tmp)?,
    }
    Ok(())
}

/// Write `bytes` (or a symlink to `target`) at `name` in `dir` atomically and durably on its
/// own: temp file, fsync, rename, directory fsync. Used by roll-backs; `apply` batches this.
fn put(dir: &OwnedFd, name: &str, content: &Content<'_>, mode: u32) -> std::io::Result<()> {
    let tmp = temp_name();
    write_temp(dir, &tmp, content, mode)?;
    let synced = match content {
        Content::Bytes(_) => {
            rustix::fs::openat(dir, tmp.as_str(), OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .and_then(|fd| rustix::fs::fsync(&fd))
        }
        Content::Symlink(_) => Ok(()),
    };
    if let Err(e) = synced.and_then(|()| rustix::fs::renameat(dir, tmp.as_str(), dir, name)) {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return Err(e.into());
    }
    fsync_dir(dir)
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

fn prev_of(rel: &str, now: HostState) -> std::io::Result<Prev> {
    Ok(match now {
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
    staged: &Stage,
    host: &Host,
    expected: &Expected,
    journal_dir: &Path,
) -> std::io::Result<()> {
    let mut journal = Journal::create(journal_dir)?;
    let ops: Vec<(usize, &Op)> = plan.ops.iter().enumerate().collect();
    // Operations go in batches, with a handful of flushes per batch instead of an fsync per
    // file: (1) backups and intents are written, then flushed together (`syncfs` of the state
    // directory's filesystem, then the journal); (2) the operations run, each write into a temp
    // file named in its intent; (3) one `syncfs` of the workspace makes the temp files durable,
    // then they are renamed over their targets, and a second `syncfs` makes the renames, new
    // directories and deletions durable; (4) the batch is marked done. A crash anywhere leaves
    // each target old or new, and the roll-back removes temp files by their recorded names.
    // Symlinks and files deleted so far: what a later operation finds beneath one is nothing
    // (never what the symlink pointed to).
    let mut gone: std::collections::HashSet<&str> = std::collections::HashSet::new();
    // Paths an earlier operation of this apply already touched: only the first one finds the
    // host as the checks saw it.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut deleted: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for batch in ops.chunks(BATCH) {
        let mut prevs = Vec::with_capacity(batch.len());
        let mut temps = Vec::with_capacity(batch.len());
        let mut idents = Vec::with_capacity(batch.len());
        for &(seq, op) in batch {
            let path = op_path(op);
            let beneath_gone = ancestors(path).any(|a| gone.contains(a));
            // A path this apply deleted before (a type change: file to directory, directory to
            // link...) is missing by the time this operation runs; its roll-back must know that.
            let (now, content) = if beneath_gone || deleted.contains(path) {
                (HostState::Missing, None)
            } else {
                reachable(host.state_and_content(path))?.unwrap_or((HostState::Other, None))
            };
            if seen.insert(path)
                && let Some(before) = expected.get(path)
                && !same_state(before, &now)
            {
                return Err(toctou(path, "changed"));
            }
            let prev = prev_of(path, now)?;
            // What a write expects to find just before its rename: nothing, if this apply
            // deletes the path first (or it is beneath a deleted symlink), else this very file.
            let expect_at_rename = if matches!(op, Op::Write { .. }) && !beneath_gone && !deleted.contains(path) {
                let (parent, name) = split(path);
                // No parent yet: a directory this apply creates first.
                match host.dir(parent)? {
                    Some(dir) => ident(&dir, name)?,
                    None => None,
                }
            } else {
                None
            };
            if matches!(op, Op::Delete { .. }) {
                deleted.insert(path);
            }
            if matches!(op, Op::Delete { .. }) && matches!(prev, Prev::File { .. } | Prev::Symlink { .. }) {
                gone.insert(path);
            }
            let backup = match (&prev, content) {
                (Prev::File { .. }, Some(bytes)) if matches!(op, Op::Delete { .. } | Op::Write { .. }) => {
                    let backup_name = format!("{seq}.bak");
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(journal.dir.join("backups").join(&backup_name))?;
                    f.write_all(&bytes)?;
                    Some(backup_name)
                }
                _ => None,
            };
            let tmp = matches!(op, Op::Write { .. }).then(temp_name);
            let sha256 = staged.sha256(path).map(str::to_owned);
            journal.write(&Record::Intent {
                seq,
                op: op_kind(op).into(),
                path: path.to_owned(),
                backup,
                prev: prev.clone(),
                sha256,
                tmp: tmp.clone(),
            })?;
            prevs.push(prev);
            temps.push(tmp);
            idents.push(expect_at_rename);
        }
        journal.flush_all()?;
        let mut pending: Vec<Rename> = Vec::new();
        for (((&(seq, op), prev), tmp), expect) in batch.iter().zip(&prevs).zip(&temps).zip(&idents) {
            failpoint(seq);
            let path = op_path(op);
            if matches!(op, Op::Delete { .. }) && !pending.is_empty() {
                // A deletion may concern a directory a pending rename lands in: keep plan order.
                finish_renames(host, &mut pending)?;
            }
            let (dir, name) = parent_fd(host, path)?;
            match (op, tmp) {
                (Op::Write { path }, Some(tmp)) => {
                    write_op(path, &dir, tmp, upper, staged)?;
                    pending.push(Rename { dir, tmp: tmp.clone(), name, path, expect: *expect });
                }
                _ => perform(op, prev, &dir, &name)?,
            }
        }
        finish_renames(host, &mut pending)?;
        rustix::fs::syncfs(&host.root)?;
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

/// A write's temp file, to be renamed over its target once durable, if the target still is
/// what was there when its intent was recorded.
struct Rename<'a> {
    dir: OwnedFd,
    tmp: String,
    name: String,
    path: &'a str,
    expect: Ident,
}

/// Make the pending temp files durable (one `syncfs`), then rename each over its target.
fn finish_renames(host: &Host, pending: &mut Vec<Rename<'_>>) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    rustix::fs::syncfs(&host.root)?;
    for r in pending.drain(..) {
        match r.expect {
            // A new path: a file the host created there since is never clobbered.
            None => match rustix::fs::renameat_with(
                &r.dir,
                r.tmp.as_str(),
                &r.dir,
                r.name.as_str(),
                rustix::fs::RenameFlags::NOREPLACE,
            ) {
                Err(rustix::io::Errno::EXIST) => return Err(toctou(r.path, "appeared")),
                other => other?,
            },
            Some(_) => {
                if ident(&r.dir, &r.name)? != r.expect {
                    return Err(toctou(r.path, "changed"));
                }
                rustix::fs::renameat(&r.dir, r.tmp.as_str(), &r.dir, r.name.as_str())?;
            }
        }
    }
    Ok(())
}

/// Write the new content of `path` into its temp file `tmp` in `dir`.
fn write_op(
    path: &str,
    dir: &OwnedFd,
    tmp: &str,
    upper: &HashMap<&str, &UpperEntry>,
    staged: &Stage,
) -> std::io::Result<()> {
    let entry = upper[path];
    match &entry.kind {
        UpperKind::Symlink { target } => write_temp(dir, tmp, &Content::Symlink(target), 0),
        _ => {
            let bytes = staged.read(path)?;
            write_temp(dir, tmp, &Content::Bytes(&bytes), file_mode(entry.mode))
        }
    }
}

/// Operations per journal batch.
const BATCH: usize = 2048;

pub(crate) fn op_path(op: &Op) -> &str {
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

fn perform(op: &Op, prev: &Prev, dir: &OwnedFd, name: &str) -> std::io::Result<()> {
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
        Op::Write { path } => return Err(std::io::Error::other(format!("{path}: a write without a temp name"))),
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
fn verify(plan: &Plan, upper: &HashMap<&str, &UpperEntry>, staged: &Stage, host: &Host) -> std::io::Result<()> {
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
                    (_, HostState::File { sha256, .. }) => staged.sha256(path).is_some_and(|s| s == sha256),
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
    for (i, record) in records.iter().enumerate() {
        let Record::Intent { op, path, sha256, .. } = record else { continue };
        if is_superseded(records, i, path) {
            continue;
        }
        // Beneath a symlink or file the apply left, a path is simply not there.
        let now = state(host, path)?.unwrap_or(HostState::Missing);
        if !left_as_applied(op, sha256.as_deref(), &now) {
            changed.push(path.clone());
        }
    }
    Ok(changed)
}

/// Whether a later intent of the same apply concerns `path` too (a type change: delete, then
/// create): only the last one says what the apply left there.
fn is_superseded(records: &[Record], i: usize, path: &str) -> bool {
    records[i + 1..].iter().any(|r| matches!(r, Record::Intent { path: p, .. } if p == path))
}

/// Whether `now` is what operation `op` left at its path.
fn left_as_applied(op: &str, sha256: Option<&str>, now: &HostState) -> bool {
    match op {
        "write" => match (now, sha256) {
            (HostState::File { sha256: a, .. }, Some(b)) => a == b,
            (HostState::Symlink { .. }, None) => true,
            _ => false,
        },
        // A directory that kept host-only files stays.
        "delete" => matches!(now, HostState::Missing | HostState::Dir { .. }),
        _ => matches!(now, HostState::Dir { .. }),
    }
}

/// Undo the operations of `records` that were begun, newest first, restoring `backups/`.
/// With `verify`, a path whose current state is not what the apply left there is not touched
/// and is returned (used by `--undo`; crash recovery restores unconditionally).
pub(crate) fn roll_back(records: &[Record], dir: &Path, host: &Host, verify: bool) -> std::io::Result<Vec<String>> {
    let done: std::collections::HashSet<usize> =
        records.iter().filter_map(|r| if let Record::Done { seq } = r { Some(*seq) } else { None }).collect();
    let mut changed = Vec::new();
    for (i, record) in records.iter().enumerate().rev() {
        let Record::Intent { seq, op, path, backup, prev, sha256, tmp } = record else { continue };
        let now = state(host, path)?.unwrap_or(HostState::Missing);
        if verify && !is_superseded(records, i, path) && done.contains(seq) {
            let as_left = match (op.as_str(), prev) {
                ("delete", Prev::File { .. } | Prev::Symlink { .. }) => now == HostState::Missing,
                _ => left_as_applied(op, sha256.as_deref(), &now),
            };
            if !as_left {
                changed.push(path.clone());
                continue;
            }
        }
        let (pdir, name) = match parent_fd(host, path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(tmp) = tmp {
            match rustix::fs::unlinkat(&pdir, tmp.as_str(), AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match prev {
            Prev::File { mode } => {
                let bytes = std::fs::read(dir.join("backups").join(backup.as_deref().unwrap_or("missing")))?;
                if matches!(now, HostState::Dir { .. }) {
                    let _ = rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::REMOVEDIR);
                }
                put(&pdir, &name, &Content::Bytes(&bytes), *mode)?;
            }
            Prev::Symlink { target } => {
                if matches!(now, HostState::Dir { .. }) {
                    let _ = rustix::fs::unlinkat(&pdir, name.as_str(), AtFlags::REMOVEDIR);
                }
                put(&pdir, &name, &Content::Symlink(target), 0)?;
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
