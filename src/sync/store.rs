//! Where sync state lives: `$XDG_STATE_HOME/sandbox/`. Baselines are keyed by the workspace's
//! canonical path, written atomically and privately (they list the names of the user's files).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::sync::error::SyncError;
use crate::sync::manifest::{FORMAT_VERSION, Manifest, hex};

/// The sandbox state directory.
pub(crate) fn root(state_dir: &Path) -> PathBuf {
    state_dir.join("sandbox")
}

/// Where the baseline of the canonical workspace `workspace` is kept.
pub(crate) fn baseline_path(state_dir: &Path, workspace: &Path) -> PathBuf {
    let digest = Sha256::digest(workspace.as_os_str().as_encoded_bytes());
    root(state_dir).join("baselines").join(format!("{}.json", &hex(&digest)[..24]))
}

/// Write `manifest` atomically (temp file, fsync, rename, directory fsync), mode 0600.
pub(crate) fn save_baseline(state_dir: &Path, manifest: &Manifest) -> Result<PathBuf, SyncError> {
    let path = baseline_path(state_dir, &manifest.root);
    let dir = path.parent().expect("baseline paths have a parent");
    let io = |source| SyncError::Io { path: path.clone(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    let mut tmp = tempfile::Builder::new().prefix(".baseline-").tempfile_in(dir).map_err(io)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), manifest)
        .map_err(|e| io(std::io::Error::other(e)))?;
    tmp.as_file_mut().flush().map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(path)
}

/// Load the baseline of `workspace`, or `None` when none was recorded.
pub(crate) fn load_baseline(state_dir: &Path, workspace: &Path) -> Result<Option<Manifest>, SyncError> {
    let path = baseline_path(state_dir, workspace);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SyncError::Io { path, source }),
    };
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    let corrupt = |message: String| SyncError::Corrupt { path: path.clone(), root: workspace.to_path_buf(), message };
    let version: Version = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if version.version != FORMAT_VERSION {
        return Err(SyncError::Version {
            path,
            root: workspace.to_path_buf(),
            found: version.version,
            expected: FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if manifest.root != workspace {
        return Err(corrupt(format!("it describes `{}`", manifest.root.display())));
    }
    Ok(Some(manifest))
}

/// Take an exclusive `flock` on `path` (created 0600, never through a symlink), without
/// waiting: `None` when another process holds it. Released when the descriptor is dropped.
pub(crate) fn try_lock(path: &Path) -> std::io::Result<Option<std::os::fd::OwnedFd>> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )?;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_private_and_versioned() {
        let state = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("f"), "x").unwrap();
        let manifest = crate::sync::manifest::record(ws.path(), 1).unwrap();
        let path = save_baseline(state.path(), &manifest).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = load_baseline(state.path(), &manifest.root).unwrap().unwrap();
        assert_eq!(loaded, manifest);
        let text = std::fs::read_to_string(&path).unwrap().replace("\"version\":1", "\"version\":99");
        std::fs::write(&path, text).unwrap();
        let err = load_baseline(state.path(), &manifest.root).unwrap_err().to_string();
        assert!(err.contains("format version 99") && err.contains("sandbox baseline"), "{err}");
        std::fs::write(&path, "{not json").unwrap();
        assert!(load_baseline(state.path(), &manifest.root).unwrap_err().to_string().contains("damaged"));
        assert!(load_baseline(state.path(), Path::new("/elsewhere")).unwrap().is_none());
    }
}
