//! Reading an overlay upper directory (as root) into validated entries, per the xattr decision
//! table of overlay-sync-semantics.md §1.8: exactly two markers are interpreted (a 0:0 character
//! device is a whiteout; `<ns>.overlay.opaque` = `y` on a non-root directory is opaque), a few
//! are ignored, and everything else that could change the meaning of the tree is refused.
//!
//! Invariants: nothing is followed or opened for writing; only the configured namespace
//! (`trusted`, or `user` for a `userxattr` overlay) is read, and overlay names from the other
//! namespace are refused, so an unprivileged VM user cannot forge markers. No file's content is
//! read before the whole tree is listed, and none beyond the size its listing gave
//! (overlay-sync-semantics.md §3.8: a sparse file's apparent size is what counts).

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::sync::manifest::hex;

/// Which xattr namespace the overlay stores its metadata in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    Trusted,
    User,
}

impl Namespace {
    fn prefix(self) -> &'static str {
        match self {
            Namespace::Trusted => "trusted.overlay.",
            Namespace::User => "user.overlay.",
        }
    }

    fn other(self) -> Namespace {
        match self {
            Namespace::Trusted => Namespace::User,
            Namespace::User => Namespace::Trusted,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpperKind {
    File { size: u64, sha256: String },
    Dir { opaque: bool },
    Symlink { target: String },
    Whiteout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpperEntry {
    /// Relative, `/`-separated.
    pub(crate) path: String,
    pub(crate) kind: UpperKind,
    pub(crate) mode: u32,
    /// Where the content is (for files), to stage it later.
    pub(crate) source: PathBuf,
}

/// Why the whole upper is refused; `code` is stable (`E_REDIRECT`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) path: String,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

#[derive(Debug, Default)]
pub(crate) struct Upper {
    /// Top-down (parents before children), sorted by path.
    pub(crate) entries: Vec<UpperEntry>,
    pub(crate) warnings: Vec<String>,
    pub(crate) refusals: Vec<Refusal>,
    /// Files listed but never read (excluded, or over [`Limits`]): their `sha256` is empty, so it
    /// matches no baseline, and the policy refuses any of them the plan still writes.
    pub(crate) unread: BTreeSet<String>,
}

/// How much file content the directory reader may read, by apparent (lstat) size; the same
/// numbers the gate gives the tar reader (`TarLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// A larger file is not read.
    pub(crate) max_file_bytes: u64,
    /// When the files within `max_file_bytes` add up to more, none is read.
    pub(crate) max_total_bytes: u64,
    /// Entries listed at most: the walk stops there (`E_COUNT`), so a million empty files cost
    /// what this many do.
    pub(crate) max_entries: u64,
}

/// Levels listed at most; a folder at this depth is refused (`E_DEPTH`), its content not read
/// (the policy's limit is the same: nothing deeper could be synced).
pub(crate) const MAX_DEPTH: usize = 64;

impl Limits {
    #[cfg(test)]
    pub(crate) const NONE: Limits =
        Limits { max_file_bytes: u64::MAX, max_total_bytes: u64::MAX, max_entries: u64::MAX };
}

pub(crate) fn refuse(out: &mut Upper, path: &str, code: &'static str, message: impl Into<String>) {
    out.refusals.push(Refusal { path: path.to_owned(), code, message: message.into() });
}

/// The extended attributes of a file on disk (not following symlinks), as (name, value) pairs.
fn xattrs_of(out: &mut Upper, full: &Path, path: &str) -> Vec<(String, Vec<u8>)> {
    let names = match xattr::list(full) {
        Ok(names) => names,
        Err(e) => {
            refuse(out, path, "E_XATTR", format!("cannot list extended attributes: {e}"));
            return Vec::new();
        }
    };
    let mut pairs = Vec::new();
    for name in names {
        let Some(text) = name.to_str().map(str::to_owned) else {
            refuse(out, path, "E_XATTR", "an extended attribute name is not UTF-8");
            continue;
        };
        let value = xattr::get(full, &name).ok().flatten().unwrap_or_default();
        pairs.push((text, value));
    }
    pairs
}

/// Apply §1.8 to one entry's xattrs; returns whether it is marked opaque. Shared by the
/// directory reader and the tar-stream reader (PAX `SCHILY.xattr.*` records).
pub(crate) fn check_xattrs(
    out: &mut Upper,
    xattrs: &[(String, Vec<u8>)],
    path: &str,
    is_dir: bool,
    is_root: bool,
    ns: Namespace,
) -> bool {
    let mut opaque = false;
    for (name, value) in xattrs {
        if let Some(key) = name.strip_prefix(ns.prefix()) {
            match key {
                "opaque" => match value.as_slice() {
                    b"y" if is_dir && !is_root => opaque = true,
                    b"x" => refuse(out, path, "E_XWHITEOUT", "opaque=x (xattr whiteouts) is not produced by overlayfs"),
                    _ => refuse(
                        out,
                        path,
                        "E_OPAQUE_ANOMALY",
                        "an opaque marker the kernel would ignore (wrong value, non-directory or root)",
                    ),
                },
                "whiteout" => refuse(out, path, "E_XWHITEOUT", "xattr whiteouts are not produced by overlayfs"),
                "redirect" => refuse(
                    out,
                    path,
                    "E_REDIRECT",
                    "a redirect (rename with redirect_dir=on); mount with redirect_dir=nofollow",
                ),
                "metacopy" => refuse(
                    out,
                    path,
                    "E_METACOPY",
                    "a metadata-only copy-up: the data is not in the upper; mount with metacopy=off",
                ),
                "nlink" | "upper" => refuse(
                    out,
                    path,
                    "E_INDEX",
                    "index/nfs_export was on, the upper is incomplete; mount with index=off",
                ),
                "origin" | "impure" => {}
                "uuid" if is_root => {}
                "protattr" => {
                    out.warnings.push(format!("{path}: immutable/append-only flags set in the VM are not applied"));
                }
                escaped if escaped.starts_with("overlay.") => {
                    out.warnings
                        .push(format!("{path}: escaped overlay attribute `{name}` is user data and is not copied"));
                }
                _ => refuse(out, path, "E_OVL_UNKNOWN", format!("unknown overlay attribute `{name}`")),
            }
        } else if name.starts_with(ns.other().prefix()) {
            refuse(out, path, "E_WRONG_NS", format!("`{name}` is from the other overlay namespace"));
        } else if name == "security.capability" {
            out.warnings.push(format!("{path}: file capabilities are dropped"));
        }
    }
    opaque
}

/// Read the upper directory `root`, hashing every file whatever its size.
#[cfg(test)]
pub(crate) fn read(root: &Path, ns: Namespace) -> std::io::Result<Upper> {
    read_within(root, ns, Limits::NONE, |_| false)
}

/// A regular file as listed, before its content is read.
struct Listed {
    /// Its index in `Upper::entries`.
    entry: usize,
    size: u64,
    dev: u64,
    ino: u64,
    nlink: u64,
}

/// Read the upper directory `root`: list it all, then hash the files within `limits` that are not
/// `excluded` (never synced, so never read); the others are left in `Upper::unread` for the policy
/// to refuse, so a sparse or huge file costs one lstat, not a read of its apparent size.
pub(crate) fn read_within(
    root: &Path,
    ns: Namespace,
    limits: Limits,
    excluded: impl Fn(&str) -> bool,
) -> std::io::Result<Upper> {
    let mut out = Upper::default();
    let mut files = Vec::new();
    let root_xattrs = xattrs_of(&mut out, root, "");
    check_xattrs(&mut out, &root_xattrs, "", true, true, ns);
    // Unsorted: walkdir then streams each folder instead of reading it whole first (the
    // entries are sorted once at the end, within `max_entries`).
    let mut walk = walkdir::WalkDir::new(root).follow_links(false).min_depth(1).max_depth(MAX_DEPTH + 1).into_iter();
    let mut listed = 0u64;
    let too_long = |e: &std::io::Error| e.raw_os_error() == Some(rustix::io::Errno::NAMETOOLONG.raw_os_error());
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let at = e.path().map(|p| p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned());
                let io = e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk error"));
                match at {
                    Some(at) if too_long(&io) => {
                        refuse(&mut out, &at, "E_NAME_LENGTH", "the path is too long to open (ENAMETOOLONG)");
                        continue;
                    }
                    _ => return Err(io),
                }
            }
        };
        listed += 1;
        if listed > limits.max_entries {
            let message = format!("the upper holds more than {} entries; the rest was not read", limits.max_entries);
            refuse(&mut out, "", "E_COUNT", message);
            break;
        }
        let full = entry.path();
        let rel = full.strip_prefix(root).unwrap_or(full);
        let Some(path) = rel.to_str().map(str::to_owned) else {
            refuse(&mut out, &rel.to_string_lossy(), "E_NAME", "the name is not valid UTF-8");
            continue;
        };
        if entry.depth() > MAX_DEPTH {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            refuse(&mut out, &path, "E_DEPTH", format!("more than {MAX_DEPTH} levels deep; not read further"));
            continue;
        }
        let meta = match std::fs::symlink_metadata(full) {
            Ok(meta) => meta,
            Err(e) if too_long(&e) => {
                refuse(&mut out, &path, "E_NAME_LENGTH", "the path is too long to open (ENAMETOOLONG)");
                continue;
            }
            Err(e) => return Err(e),
        };
        let ft = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        let xattrs = xattrs_of(&mut out, full, &path);
        let kind = if ft.is_char_device() && meta.rdev() == 0 {
            check_xattrs(&mut out, &xattrs, &path, false, false, ns);
            UpperKind::Whiteout
        } else if ft.is_dir() {
            UpperKind::Dir { opaque: check_xattrs(&mut out, &xattrs, &path, true, false, ns) }
        } else if ft.is_symlink() {
            check_xattrs(&mut out, &xattrs, &path, false, false, ns);
            let target = std::fs::read_link(full)?;
            match target.to_str() {
                Some(t) => UpperKind::Symlink { target: t.to_owned() },
                None => {
                    refuse(&mut out, &path, "E_NAME", "the symlink target is not valid UTF-8");
                    continue;
                }
            }
        } else if ft.is_file() {
            check_xattrs(&mut out, &xattrs, &path, false, false, ns);
            let (size, dev, ino, nlink) = (meta.len(), meta.dev(), meta.ino(), meta.nlink());
            files.push(Listed { entry: out.entries.len(), size, dev, ino, nlink });
            UpperKind::File { size, sha256: String::new() }
        } else {
            refuse(&mut out, &path, "E_SPECIAL", "a device, FIFO or socket cannot be synced");
            continue;
        };
        out.entries.push(UpperEntry { path, kind, mode, source: full.to_path_buf() });
    }
    check_links(&mut out, &files);
    let mut total = 0u64;
    let mut to_read = Vec::new();
    for file in &files {
        let path = &out.entries[file.entry].path;
        if file.size > limits.max_file_bytes || excluded(path) {
            out.unread.insert(path.clone());
        } else {
            total = total.saturating_add(file.size);
            to_read.push(file);
        }
    }
    if total > limits.max_total_bytes {
        out.unread.extend(to_read.drain(..).map(|file| out.entries[file.entry].path.clone()));
    }
    for file in to_read {
        let entry = &mut out.entries[file.entry];
        let sha256 = hash_listed(&entry.source, &entry.path, file)?;
        entry.kind = UpperKind::File { size: file.size, sha256 };
    }
    // Top-down, siblings by name: the order the tar reader gives too.
    out.entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    Ok(out)
}

/// §3.4: a regular file with more links than names in the upper has its other names outside it,
/// in overlay's `work/index` (index=on), where the VM saw the new content under names the upper
/// does not list. The `nlink` xattr usually says so too; this catches an upper without it.
fn check_links(out: &mut Upper, files: &[Listed]) {
    let linked: Vec<&Listed> = files.iter().filter(|f| f.nlink > 1).collect();
    let mut names: HashMap<(u64, u64), u64> = HashMap::new();
    for file in &linked {
        *names.entry((file.dev, file.ino)).or_default() += 1;
    }
    for file in linked {
        let inside = names.get(&(file.dev, file.ino)).copied().unwrap_or(0);
        let path = out.entries[file.entry].path.clone();
        let known = out.refusals.iter().any(|r| r.path == path && r.code == "E_INDEX");
        if inside < file.nlink && !known {
            let message = format!(
                "{} hard links but {inside} in the upper: the others are outside it (overlay's `work/index`, \
                 index=on), so the upper is incomplete; mount with index=off",
                file.nlink
            );
            refuse(out, &path, "E_INDEX", message);
        }
    }
}

/// Hash the file listed at `full` without following a symlink, reading no more than its listed
/// size: the VM may still be writing the upper, and a file swapped or grown since the listing
/// must not be read past the limits it was checked against.
fn hash_listed(full: &Path, path: &str, listed: &Listed) -> std::io::Result<String> {
    use rustix::fs::{Mode, OFlags};
    let changed = || {
        std::io::Error::other(format!(
            "`{path}` changed while the upper was read (it was listed as a file of {} bytes); stop the agent, \
             then sync again",
            listed.size
        ))
    };
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("`{path}`: {e}"));
    // NONBLOCK: a FIFO swapped in after the listing must not hang the open.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(full, flags, Mode::empty())
        .map_err(|e| if e == rustix::io::Errno::LOOP { changed() } else { named(e.into()) })?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(named)?;
    if !meta.is_file() || (meta.dev(), meta.ino()) != (listed.dev, listed.ino) {
        return Err(changed());
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0u64;
    let mut limited = file.take(listed.size.saturating_add(1));
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(named(e)),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    if read != listed.size {
        return Err(changed());
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    //! The reader's own guarantees: what it refuses to read (§3.8, §5 J2) and the link count check
    //! (§3.4, §5 F7). The §1.8 table is exercised by the plan and tar tests.

    use std::time::{Duration, Instant};

    use super::*;
    use crate::sync::fixture::Fx;

    const SMALL: Limits = Limits { max_file_bytes: 1024, max_total_bytes: 2048, max_entries: u64::MAX };

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn kind<'u>(upper: &'u Upper, path: &str) -> &'u UpperKind {
        &upper.entries.iter().find(|e| e.path == path).unwrap().kind
    }

    fn codes(upper: &Upper) -> Vec<(&str, &'static str)> {
        upper.refusals.iter().map(|r| (r.path.as_str(), r.code)).collect()
    }

    #[test]
    fn j2_a_sparse_file_over_the_limit_is_listed_but_never_read() {
        let fx = Fx::new();
        fx.u("small", "abc").u("sparse.bin", "");
        std::fs::File::options().write(true).open(fx.upper.join("sparse.bin")).unwrap().set_len(1 << 40).unwrap();
        let start = Instant::now();
        let upper = read_within(&fx.upper, Namespace::Trusted, SMALL, |_| false).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert_eq!(*kind(&upper, "sparse.bin"), UpperKind::File { size: 1 << 40, sha256: String::new() });
        assert_eq!(*kind(&upper, "small"), UpperKind::File { size: 3, sha256: sha(b"abc") });
        assert_eq!(upper.unread, BTreeSet::from(["sparse.bin".to_owned()]));
        assert!(upper.refusals.is_empty(), "the policy refuses it, if the plan writes it: {:?}", upper.refusals);
    }

    #[test]
    fn over_the_total_no_file_is_read() {
        let fx = Fx::new();
        fx.u("a", &"x".repeat(1000)).u("b", &"y".repeat(1000)).u("c", &"z".repeat(48));
        let upper = read_within(&fx.upper, Namespace::Trusted, SMALL, |_| false).unwrap();
        assert!(upper.unread.is_empty(), "the limits are inclusive");
        fx.u("c", &"z".repeat(49));
        let upper = read_within(&fx.upper, Namespace::Trusted, SMALL, |_| false).unwrap();
        assert_eq!(upper.unread.len(), 3);
        assert!(upper.entries.iter().all(|e| matches!(&e.kind, UpperKind::File { sha256, .. } if sha256.is_empty())));
    }

    #[test]
    fn excluded_files_are_neither_read_nor_counted() {
        let fx = Fx::new();
        fx.u("target/big", &"x".repeat(5000)).u("target/small", "s").u("src/a.rs", "a");
        let upper = read_within(&fx.upper, Namespace::Trusted, SMALL, |p| p.starts_with("target/")).unwrap();
        assert_eq!(upper.unread, BTreeSet::from(["target/big".to_owned(), "target/small".to_owned()]));
        assert_eq!(*kind(&upper, "src/a.rs"), UpperKind::File { size: 1, sha256: sha(b"a") });
    }

    #[test]
    fn f7_a_file_with_links_outside_the_upper_is_refused() {
        let fx = Fx::new();
        let index = tempfile::tempdir().unwrap();
        fx.u("f", "data").u("hl/one", "pair").u("marked", "m").whiteout("w1");
        std::fs::hard_link(fx.upper.join("f"), index.path().join("00fb")).unwrap();
        std::fs::hard_link(fx.upper.join("hl/one"), fx.upper.join("hl/two")).unwrap();
        std::fs::hard_link(fx.upper.join("w1"), fx.upper.join("w2")).unwrap();
        std::fs::hard_link(fx.upper.join("w1"), index.path().join("whiteout")).unwrap();
        std::fs::hard_link(fx.upper.join("marked"), index.path().join("00fc")).unwrap();
        xattr::set(fx.upper.join("marked"), "trusted.overlay.nlink", b"U+0").unwrap();
        let upper = read(&fx.upper, Namespace::Trusted).unwrap();
        assert_eq!(codes(&upper), [("marked", "E_INDEX"), ("f", "E_INDEX")], "once per path; pairs and whiteouts pass");
        let message = &upper.refusals[1].message;
        assert!(message.contains("2 hard links but 1 in the upper") && message.contains("index=off"), "{message}");
    }

    #[test]
    fn a_file_changed_since_it_was_listed_is_not_read_past_its_size() {
        let fx = Fx::new();
        // `g` exists alongside `f`, so its inode differs even on a filesystem that reuses them.
        fx.u("f", "abc").u("g", "abc");
        let meta = std::fs::symlink_metadata(fx.upper.join("f")).unwrap();
        let listed = Listed { entry: 0, size: 3, dev: meta.dev(), ino: meta.ino(), nlink: 1 };
        let full = fx.upper.join("f");
        assert_eq!(hash_listed(&full, "f", &listed).unwrap(), sha(b"abc"));
        std::fs::write(&full, "abcd").unwrap();
        let err = hash_listed(&full, "f", &listed).unwrap_err().to_string();
        assert!(err.contains("`f` changed while the upper was read") && err.contains("sync again"), "{err}");
        std::fs::remove_file(&full).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &full).unwrap();
        assert!(hash_listed(&full, "f", &listed).unwrap_err().to_string().contains("changed"));
        std::fs::rename(fx.upper.join("g"), &full).unwrap();
        assert!(hash_listed(&full, "f", &listed).unwrap_err().to_string().contains("changed"), "another inode");
    }

    #[test]
    fn the_walk_stops_at_the_depth_and_count_limits() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join(vec!["d"; MAX_DEPTH + 5].join("/"));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("f"), "x").unwrap();
        let upper = read(dir.path(), Namespace::Trusted).unwrap();
        let codes: Vec<(&str, usize)> = upper.refusals.iter().map(|r| (r.code, r.path.split('/').count())).collect();
        assert_eq!(codes, [("E_DEPTH", MAX_DEPTH + 1)], "refused once, where the limit is passed");
        assert!(upper.entries.iter().all(|e| e.path.split('/').count() <= MAX_DEPTH));

        let flat = tempfile::tempdir().unwrap();
        for i in 0..50 {
            std::fs::write(flat.path().join(format!("f{i:02}")), "").unwrap();
        }
        let limits = Limits { max_entries: 10, ..Limits::NONE };
        let upper = read_within(flat.path(), Namespace::Trusted, limits, |_| false).unwrap();
        assert_eq!(upper.entries.len(), 10, "the walk stops at the limit");
        assert_eq!(upper.refusals.iter().map(|r| r.code).collect::<Vec<_>>(), ["E_COUNT"]);
    }
}
