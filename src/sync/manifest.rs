//! The baseline manifest: what the VM's lower layer held when it was recorded (path, kind,
//! mode, size, mtime, sha256, symlink target). An overlay upper only means something relative to
//! it: whiteouts and opaque directories delete what the VM *saw*, never what the host added since.
//!
//! Invariants: symlinks are recorded, never followed; file contents are hashed streaming (never
//! held whole in memory) and in parallel; the walk never leaves the root.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::OpenOptionsExt;

use rustix::fs::OFlags;
use sha2::{Digest, Sha256};

use crate::sync::error::SyncError;

/// Bumped when the file format changes; older files are refused with instructions.
pub(crate) const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Kind {
    File {
        size: u64,
        sha256: String,
    },
    Dir,
    Symlink {
        target: String,
    },
    /// A device, FIFO or socket: recorded so a plan never mistakes it for a missing path.
    Special,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    #[serde(flatten)]
    pub(crate) kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub(crate) mode: u32,
    /// Modification time, seconds since the epoch.
    pub(crate) mtime: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u32,
    /// The canonical host directory the manifest describes.
    pub(crate) root: PathBuf,
    /// Relative path (`/`-separated, no leading `/`) → entry. The root itself is not listed.
    pub(crate) entries: BTreeMap<String, Entry>,
}

impl Manifest {
    pub(crate) fn files(&self) -> usize {
        self.entries.values().filter(|e| matches!(e.kind, Kind::File { .. })).count()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.entries.values().map(|e| if let Kind::File { size, .. } = e.kind { size } else { 0 }).sum()
    }

    /// Entries at or below `path` (the path itself first, then its subtree in order).
    pub(crate) fn subtree<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        let prefix = format!("{path}/");
        self.entries.range(path.to_owned()..).take_while(move |(p, _)| *p == path || p.starts_with(&prefix))
    }
}

/// How many paths were added, removed or changed between two manifests (mtime alone is not a
/// change).
pub(crate) fn changed_paths(old: &Manifest, new: &Manifest) -> usize {
    let same = |a: &Entry, b: &Entry| a.kind == b.kind && a.mode == b.mode;
    let removed_or_changed =
        old.entries.iter().filter(|(p, e)| new.entries.get(*p).is_none_or(|n| !same(e, n))).count();
    let added = new.entries.keys().filter(|p| !old.entries.contains_key(*p)).count();
    removed_or_changed + added
}

/// Hash a file streaming, in 64 KiB reads.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    // Never blocks on a FIFO swapped in since the walk saw a file (`read_at`'s reasoning).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits().cast_signed())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(crate::sync::host::not_regular());
    }
    let mut file = file;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `/`-separated relative path; non-UTF-8 names are refused (the gate refuses them anyway).
fn rel_string(rel: &Path) -> Result<String, String> {
    rel.to_str().map(str::to_owned).ok_or_else(|| format!("{} is not valid UTF-8", rel.display()))
}

/// Record the manifest of `root`, hashing files on `threads` threads.
pub(crate) fn record(root: &Path, threads: usize) -> Result<Manifest, SyncError> {
    let root = std::fs::canonicalize(root).map_err(|source| SyncError::Io { path: root.to_path_buf(), source })?;
    if !root.is_dir() {
        return Err(SyncError::NotADirectory { path: root });
    }
    let mut listed: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    for entry in walkdir::WalkDir::new(&root).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().map_or_else(|| root.clone(), Path::to_path_buf);
            SyncError::Io { path, source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk error")) }
        })?;
        let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
        let rel = rel_string(rel).map_err(|message| SyncError::Name { path: entry.path().to_path_buf(), message })?;
        let meta =
            entry.metadata().map_err(|e| SyncError::Io { path: entry.path().to_path_buf(), source: e.into() })?;
        listed.push((rel, entry.path().to_path_buf(), meta));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| SyncError::Io { path: root.clone(), source: std::io::Error::other(e.to_string()) })?;
    let entries: Result<Vec<(String, Entry)>, SyncError> = pool.install(|| {
        listed
            .into_par_iter()
            .map(|(rel, path, meta)| {
                let kind = if meta.file_type().is_symlink() {
                    let target =
                        std::fs::read_link(&path).map_err(|source| SyncError::Io { path: path.clone(), source })?;
                    let target =
                        rel_string(&target).map_err(|message| SyncError::Name { path: path.clone(), message })?;
                    Kind::Symlink { target }
                } else if meta.is_dir() {
                    Kind::Dir
                } else if meta.is_file() {
                    let sha256 = sha256_file(&path).map_err(|source| SyncError::Io { path: path.clone(), source })?;
                    Kind::File { size: meta.len(), sha256 }
                } else {
                    Kind::Special
                };
                Ok((rel, Entry { kind, mode: meta.permissions().mode() & 0o7777, mtime: meta.mtime() }))
            })
            .collect()
    });
    Ok(Manifest { version: FORMAT_VERSION, root, entries: entries?.into_iter().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_files_dirs_and_symlinks_without_following() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.txt"), "hello\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("dirlink")).unwrap();
        let m = record(root, 2).unwrap();
        let keys: Vec<&str> = m.entries.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "a/b", "a/b/f.txt", "dirlink", "link"]);
        assert_eq!(
            m.entries["a/b/f.txt"].kind,
            Kind::File { size: 6, sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into() }
        );
        assert_eq!(m.entries["link"].kind, Kind::Symlink { target: "/etc/passwd".into() });
        assert_eq!(m.entries["dirlink"].kind, Kind::Symlink { target: "/etc".into() });
        assert_eq!(m.subtree("a").map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["a", "a/b", "a/b/f.txt"]);
        assert_eq!((m.files(), m.bytes()), (1, 6));
    }
}
