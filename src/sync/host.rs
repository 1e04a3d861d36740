//! Reading the host workspace safely: every path is opened relative to the workspace's root
//! directory fd with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)`, so a
//! symlink, `..` or mount point on the host can never redirect a check (or, in `apply`, a write)
//! outside the workspace.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use sha2::{Digest, Sha256};

use crate::sync::manifest::hex;

/// What the host has at a path, as far as the gate cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostState {
    Missing,
    File { sha256: String, mode: u32, size: u64 },
    Dir { mode: u32 },
    Symlink { target: String },
    Other,
}

/// The workspace root, opened once.
pub(crate) struct Host {
    pub(crate) root: OwnedFd,
}

pub(crate) fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

/// Whether `e` says a path lies beyond a symlink or another mount (`openat2` refused to go
/// there): for the gate, something in the way, never something to follow.
pub(crate) fn unreachable(e: &std::io::Error) -> bool {
    [rustix::io::Errno::LOOP, rustix::io::Errno::XDEV].iter().any(|n| e.raw_os_error() == Some(n.raw_os_error()))
}

/// Split `a/b/c` into (`a/b`, `c`); the parent of a top-level name is `.`.
pub(crate) fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or((".", rel))
}

impl Host {
    pub(crate) fn open(root: &Path) -> std::io::Result<Host> {
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Host { root: fd })
    }

    /// Open a directory beneath the root (never through a symlink). `None` if it does not exist.
    pub(crate) fn dir(&self, rel: &str) -> std::io::Result<Option<OwnedFd>> {
        match rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve(),
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The state of `rel` without following a final symlink; a symlinked parent is an error.
    pub(crate) fn state(&self, rel: &str) -> std::io::Result<HostState> {
        Ok(self.state_and_content(rel)?.0)
    }

    /// The state of `rel`, and for a regular file the very bytes it was hashed from (so a
    /// backup holds what was checked, and the file is read once).
    pub(crate) fn state_and_content(&self, rel: &str) -> std::io::Result<(HostState, Option<Vec<u8>>)> {
        let (parent, name) = split(rel);
        let Some(dir) = self.dir(parent)? else { return Ok((HostState::Missing, None)) };
        let stat = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(rustix::io::Errno::NOENT) => return Ok((HostState::Missing, None)),
            Err(e) => return Err(e.into()),
        };
        let mode = stat.st_mode & 0o7777;
        Ok(match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {
                let bytes = match read_at(&dir, name) {
                    Ok(bytes) => bytes,
                    // Swapped for a FIFO or the like since the stat.
                    Err(e) if is_not_regular(&e) => return Ok((HostState::Other, None)),
                    Err(e) => return Err(e),
                };
                let state = HostState::File { sha256: hex(&Sha256::digest(&bytes)), mode, size: bytes.len() as u64 };
                (state, Some(bytes))
            }
            FileType::Directory => (HostState::Dir { mode }, None),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&dir, name, Vec::new())?;
                (HostState::Symlink { target: target.to_string_lossy().into_owned() }, None)
            }
            _ => (HostState::Other, None),
        })
    }

    /// `lstat` of `rel` beneath the root; `None` when it does not exist or cannot exist (its
    /// parent is missing, not a directory, a symlink or another mount).
    pub(crate) fn stat(&self, rel: &str) -> std::io::Result<Option<rustix::fs::Stat>> {
        let (parent, name) = split(rel);
        let dir = match self.dir(parent) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) if unreachable(&e) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The names in directory `rel` (beneath the root, never through a symlink) with whether
    /// each is a real directory; empty when `rel` is not a directory reachable that way.
    pub(crate) fn list(&self, rel: &str) -> std::io::Result<Vec<(String, bool)>> {
        let dir = match self.dir(rel) {
            Ok(Some(dir)) => dir,
            Ok(None) => return Ok(Vec::new()),
            Err(e) if unreachable(&e) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut entries = rustix::fs::Dir::read_from(&dir)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            out.push((name, entry.file_type() == FileType::Directory));
        }
        out.sort();
        Ok(out)
    }

    /// The bytes of a regular file at `rel`, or `None` when there is none.
    pub(crate) fn read(&self, rel: &str) -> std::io::Result<Option<Vec<u8>>> {
        let (parent, name) = split(rel);
        let Some(dir) = self.dir(parent)? else { return Ok(None) };
        match read_at(&dir, name) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => Ok(None),
            // A symlink (or a FIFO, a device...) where a file was expected has no file content.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) || is_not_regular(&e) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Read a regular file by name in `dir`, refusing to follow a symlink. Anything else there (a
/// FIFO, a device, a socket, swapped in at any moment) is [`not_regular`], never opened in a way
/// that can block: `O_NONBLOCK` makes the open of a FIFO return at once, and `fstat` of what was
/// opened decides.
pub(crate) fn read_at(dir: &impl AsFd, name: &str) -> std::io::Result<Vec<u8>> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The error of [`read_at`] for an entry that is not a regular file.
pub(crate) fn not_regular() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")
}

/// Whether `e` is [`not_regular`].
pub(crate) fn is_not_regular(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::InvalidInput
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_follows_symlinks_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/f"), "data").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("real", root.join("inner")).unwrap();
        let host = Host::open(&root).unwrap();
        assert!(matches!(host.state("real/f").unwrap(), HostState::File { size: 4, .. }));
        assert_eq!(host.state("evil").unwrap(), HostState::Symlink { target: "/etc".into() });
        assert!(host.state("evil/passwd").is_err(), "a symlinked parent is refused");
        assert!(host.state("inner/f").is_err(), "even one inside the workspace");
        assert_eq!(host.state("missing/x").unwrap(), HostState::Missing);
        assert!(host.dir("../").is_err());
        assert_eq!(host.read("real/f").unwrap().unwrap(), b"data");
    }

    #[test]
    fn a_fifo_is_never_opened_in_a_way_that_blocks() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, dir.path().join("fifo"), FileType::Fifo, Mode::from_raw_mode(0o644), 0)
            .unwrap();
        let host = Host::open(dir.path()).unwrap();
        // Each of these would wait for a writer forever with a blocking open.
        assert_eq!(host.read("fifo").unwrap(), None);
        assert_eq!(host.state("fifo").unwrap(), HostState::Other);
        assert!(is_not_regular(&read_at(&host.root, "fifo").unwrap_err()));
    }
}
