//! Reading an overlay upper directory (as root) into validated entries, per the xattr decision
//! table of overlay-sync-semantics.md §1.8: exactly two markers are interpreted (a 0:0 character
//! device is a whiteout; `<ns>.overlay.opaque` = `y` on a non-root directory is opaque), a few
//! are ignored, and everything else that could change the meaning of the tree is refused.
//!
//! Invariants: nothing is followed or opened for writing; only the configured namespace
//! (`trusted`, or `user` for a `userxattr` overlay) is read, and overlay names from the other
//! namespace are refused, so an unprivileged VM user cannot forge markers.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sync::manifest::sha256_file;

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

/// Read the upper directory `root`.
pub(crate) fn read(root: &Path, ns: Namespace) -> std::io::Result<Upper> {
    let mut out = Upper::default();
    let root_xattrs = xattrs_of(&mut out, root, "");
    check_xattrs(&mut out, &root_xattrs, "", true, true, ns);
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk error")))?;
        let full = entry.path();
        let rel = full.strip_prefix(root).unwrap_or(full);
        let Some(path) = rel.to_str().map(str::to_owned) else {
            refuse(&mut out, &rel.to_string_lossy(), "E_NAME", "the name is not valid UTF-8");
            continue;
        };
        let meta = std::fs::symlink_metadata(full)?;
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
            UpperKind::File { size: meta.len(), sha256: sha256_file(full)? }
        } else {
            refuse(&mut out, &path, "E_SPECIAL", "a device, FIFO or socket cannot be synced");
            continue;
        };
        out.entries.push(UpperEntry { path, kind, mode, source: full.to_path_buf() });
    }
    Ok(out)
}
