//! Writing rendered files to a directory, and checking a directory against a fresh render.
//!
//! A manifest (`.sandbox-rendered`) lists what the last `--out` wrote, so a later render removes
//! files that are no longer produced (a dropped workspace's mount unit) and `--check` reports
//! them, without ever touching files sandbox did not write.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::render::{RenderError, Rendered};

pub(crate) const MANIFEST: &str = ".sandbox-rendered";

/// One way a directory differs from the render.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Difference {
    Missing(PathBuf),
    /// A unified diff, old (on disk) to new (rendered).
    Content {
        path: PathBuf,
        diff: String,
    },
    Mode {
        path: PathBuf,
        on_disk: u32,
        rendered: u32,
    },
    /// Listed in the manifest of a previous render but no longer rendered.
    Stale(PathBuf),
}

fn previous_manifest(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .map(|text| {
            text.lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(PathBuf::from)
                // Only plain relative paths: a tampered manifest must not reach outside `dir`.
                .filter(|p| p.components().all(|c| matches!(c, std::path::Component::Normal(_))))
                .collect()
        })
        .unwrap_or_default()
}

fn ensure_dir(dir: &Path) -> Result<(), RenderError> {
    if dir.exists() && !dir.is_dir() {
        return Err(RenderError::NotADirectory { path: dir.to_path_buf() });
    }
    Ok(())
}

/// Write every file (temp file + rename, so a reader never sees half a file), remove stale
/// files from the previous render, then write the manifest.
pub(crate) fn write(dir: &Path, files: &[Rendered]) -> Result<(), RenderError> {
    ensure_dir(dir)?;
    let previous = previous_manifest(dir);
    for file in files {
        let path = dir.join(&file.rel_path);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(|source| RenderError::Write { path: parent.to_path_buf(), source })?;
        write_atomic(&path, &file.bytes, file.mode)?;
    }
    for stale in previous.iter().filter(|p| !files.iter().any(|f| &f.rel_path == *p)) {
        let path = dir.join(stale);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RenderError::Write { path, source }),
        }
    }
    let mut manifest =
        String::from("# Files written by `sandbox render`; stale ones are removed on the next render.\n");
    for file in files {
        manifest.push_str(&file.rel_path.to_string_lossy());
        manifest.push('\n');
    }
    write_atomic(&dir.join(MANIFEST), manifest.as_bytes(), 0o644)
}

/// Write one file atomically with `mode` (set before any byte is written).
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), RenderError> {
    write_atomic(path, bytes, mode)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), RenderError> {
    let err = |source| RenderError::Write { path: path.to_path_buf(), source };
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".render-").tempfile_in(parent).map_err(err)?;
    // Set the mode before any byte is written, so a 0640 file is never briefly world-readable.
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Compare `dir` with `files`.
pub(crate) fn check(dir: &Path, files: &[Rendered]) -> Result<Vec<Difference>, RenderError> {
    ensure_dir(dir)?;
    let mut out = Vec::new();
    for file in files {
        let path = dir.join(&file.rel_path);
        let on_disk = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(Difference::Missing(file.rel_path.clone()));
                continue;
            }
            Err(source) => return Err(RenderError::Read { path, source }),
        };
        if on_disk != file.bytes {
            let old = String::from_utf8_lossy(&on_disk);
            let new = String::from_utf8_lossy(&file.bytes);
            let name = file.rel_path.display().to_string();
            let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{name}"), &format!("b/{name}"))
                .to_string();
            out.push(Difference::Content { path: file.rel_path.clone(), diff });
        }
        let mode = std::fs::metadata(&path)
            .map_err(|source| RenderError::Read { path: path.clone(), source })?
            .permissions()
            .mode()
            & 0o7777;
        if mode != file.mode {
            out.push(Difference::Mode { path: file.rel_path.clone(), on_disk: mode, rendered: file.mode });
        }
    }
    for stale in previous_manifest(dir) {
        if !files.iter().any(|f| f.rel_path == stale) && dir.join(&stale).exists() {
            out.push(Difference::Stale(stale));
        }
    }
    Ok(out)
}
