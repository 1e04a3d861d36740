//! Staging: the exact bytes the gate scans are the bytes it writes.
//!
//! For a directory source (an upper the VM may still be changing), every file to write is read
//! once, checked against the hash the plan was made with, scanned from that same buffer, and
//! appended to one private pack file in the state directory; `apply` later reads it back from
//! there, never from the source. One pack instead of a file per entry: staging 10,000 files
//! then costs one inode, not 10,000 creations and deletions (which dominate on ext4).
//! For a tar source, the reader already streamed each file into `stage/<sha256>`; those files
//! are read, checked and scanned the same way.
//!
//! Files are processed in parallel, each held in memory only while it is checked and scanned.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::sync::manifest::hex;

/// Where one staged file's bytes are.
#[derive(Debug, Clone)]
enum Location {
    /// A file of its own (staged by the tar reader).
    File(PathBuf),
    /// A range of the pack.
    Pack { offset: u64, len: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub(crate) sha256: String,
    at: Location,
}

/// The staged files of one sync, by workspace path.
#[derive(Debug, Default)]
pub(crate) struct Stage {
    files: HashMap<String, Staged>,
    pack: Option<std::fs::File>,
}

/// One file to stage: its workspace path, where the source bytes are, and the hash the plan
/// expects them to have.
pub(crate) struct Item<'a> {
    pub(crate) path: &'a str,
    pub(crate) source: &'a Path,
    pub(crate) sha256: &'a str,
    pub(crate) size: u64,
    /// Already a private staged copy (tar source): read it, do not copy it.
    pub(crate) private: bool,
}

/// Why staging stopped.
#[derive(Debug)]
pub(crate) enum StageError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The source no longer has the bytes the plan was made from.
    Changed {
        path: String,
    },
}

impl Stage {
    /// Stage `items` into `dir`, calling `inspect(path, bytes)` on each file's staged bytes (in
    /// parallel; the scanner). Returns the stage and what `inspect` returned, in item order.
    pub(crate) fn build<T: Send>(
        dir: &Path,
        items: &[Item<'_>],
        inspect: impl Fn(&str, &[u8]) -> T + Sync,
    ) -> Result<(Stage, Vec<T>), StageError> {
        let pack_path = dir.join("pack");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StageError::Io { path: path.clone(), source }
        };
        let pack = if items.iter().any(|i| !i.private) {
            use std::os::unix::fs::OpenOptionsExt;
            Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&pack_path)
                    .map_err(io(&pack_path))?,
            )
        } else {
            None
        };
        let end = AtomicU64::new(0);
        let results: Vec<(Staged, T)> = items
            .par_iter()
            .map(|item| {
                let bytes = read_source(item.source).map_err(io(item.source))?;
                if bytes.len() as u64 != item.size || hex(&Sha256::digest(&bytes)) != item.sha256 {
                    return Err(StageError::Changed { path: item.path.to_owned() });
                }
                let found = inspect(item.path, &bytes);
                let at = match (&pack, item.private) {
                    (Some(pack), false) => {
                        let offset = end.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        pack.write_all_at(&bytes, offset).map_err(io(&pack_path))?;
                        Location::Pack { offset, len: bytes.len() as u64 }
                    }
                    _ => Location::File(item.source.to_path_buf()),
                };
                Ok((Staged { sha256: item.sha256.to_owned(), at }, found))
            })
            .collect::<Result<_, _>>()?;
        let mut files = HashMap::with_capacity(items.len());
        let mut out = Vec::with_capacity(items.len());
        for (item, (staged, found)) in items.iter().zip(results) {
            files.insert(item.path.to_owned(), staged);
            out.push(found);
        }
        Ok((Stage { files, pack }, out))
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Staged> {
        self.files.get(path)
    }

    pub(crate) fn sha256(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(|s| s.sha256.as_str())
    }

    /// The staged bytes of `path`.
    pub(crate) fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        let staged = self.files.get(path).ok_or_else(|| std::io::Error::other(format!("{path}: not staged")))?;
        match (&staged.at, &self.pack) {
            (Location::File(file), _) => read_source(file),
            (Location::Pack { offset, len }, Some(pack)) => {
                let mut bytes = vec![0; usize::try_from(*len).map_err(std::io::Error::other)?];
                pack.read_exact_at(&mut bytes, *offset)?;
                Ok(bytes)
            }
            (Location::Pack { .. }, None) => Err(std::io::Error::other(format!("{path}: the stage has no pack"))),
        }
    }
}

/// Read a source file without following a symlink in its last component (the upper is the
/// VM's; a file there may have been swapped for a symlink since it was listed).
fn read_source(path: &Path) -> std::io::Result<Vec<u8>> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let dir = rustix::fs::open(
        parent,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    crate::sync::host::read_at(&dir, &name.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[test]
    fn staged_bytes_are_the_checked_bytes_and_a_changed_source_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<(String, Vec<u8>)> =
            (0..50).map(|i| (format!("f{i}"), format!("content {i} ").repeat(i + 1).into_bytes())).collect();
        for (name, bytes) in &contents {
            std::fs::write(src.path().join(name), bytes).unwrap();
        }
        let sources: Vec<PathBuf> = contents.iter().map(|(n, _)| src.path().join(n)).collect();
        let hashes: Vec<String> = contents.iter().map(|(_, b)| sha(b)).collect();
        let items: Vec<Item<'_>> = contents
            .iter()
            .zip(&sources)
            .zip(&hashes)
            .map(|(((name, bytes), source), sha256)| Item {
                path: name,
                source,
                sha256,
                size: bytes.len() as u64,
                private: false,
            })
            .collect();
        let (stage, seen) = Stage::build(dir.path(), &items, |_, bytes| bytes.len()).unwrap();
        assert_eq!(seen, contents.iter().map(|(_, b)| b.len()).collect::<Vec<_>>());
        for (name, bytes) in &contents {
            assert_eq!(&stage.read(name).unwrap(), bytes);
            assert_eq!(stage.sha256(name), Some(sha(bytes).as_str()));
        }
        // The pack is the only file staged, and it is private.
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.path().join("pack")).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(src.path().join("f3"), b"changed after planning").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = Stage::build(dir.path(), &items, |_, _| ()).unwrap_err();
        assert!(matches!(err, StageError::Changed { path } if path == "f3"));
    }
}
