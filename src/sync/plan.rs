//! Interpreting an upper against the baseline (overlay-sync-semantics.md §4, phase 2): the
//! exact operations that make the host equal the VM's merged view.
//!
//! Walk the upper top-down carrying MERGE or REPLACE (the root is MERGE). A whiteout deletes the
//! baseline subtree it hides; an opaque directory replaces its baseline subtree; a file or symlink
//! replaces whatever was at its path; a plain directory merges with a baseline directory. Only
//! baseline entries are ever deleted, so files the host added since are never touched here.

use std::collections::{BTreeMap, BTreeSet};

use crate::sync::manifest::{Entry, Kind, Manifest};
use crate::sync::upper::{Refusal, Upper, UpperEntry, UpperKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Remove a baseline entry (files and symlinks, and directories once empty).
    Delete { path: String },
    /// Create a directory absent from the baseline (or replacing a non-directory).
    Mkdir { path: String, mode: u32 },
    /// Write a file or symlink from the upper.
    Write { path: String },
    /// A baseline directory whose mode changed in the VM.
    DirMode { path: String, mode: u32 },
}

#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Deletes deepest-first, then mkdirs and writes top-down, then directory modes.
    pub(crate) ops: Vec<Op>,
    /// Things that needed no operation: unchanged copy-ups, whiteouts for unseen paths.
    pub(crate) notes: Vec<String>,
    pub(crate) refusals: Vec<Refusal>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Merge,
    Replace,
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn same_content(u: &UpperEntry, b: &Entry) -> bool {
    let same_mode = (u.mode & 0o777) == (b.mode & 0o777);
    match (&u.kind, &b.kind) {
        (UpperKind::File { sha256: a, .. }, Kind::File { sha256: b, .. }) => a == b && same_mode,
        (UpperKind::Symlink { target: a }, Kind::Symlink { target: b }) => a == b,
        _ => false,
    }
}

/// Build the plan of `upper` against `base`.
pub(crate) fn interpret(upper: &Upper, base: &Manifest) -> Plan {
    let mut plan = Plan { refusals: upper.refusals.clone(), ..Plan::default() };
    let mut modes: BTreeMap<&str, Mode> = BTreeMap::from([("", Mode::Merge)]);
    let mut deletes: BTreeSet<String> = BTreeSet::new();
    let mut creates: Vec<Op> = Vec::new();
    let mut dir_modes: Vec<Op> = Vec::new();
    let mut replace_roots: Vec<&str> = Vec::new();
    let in_upper: BTreeSet<&str> = upper.entries.iter().map(|e| e.path.as_str()).collect();
    let delete_subtree = |deletes: &mut BTreeSet<String>, path: &str| {
        for (p, _) in base.subtree(path) {
            deletes.insert(p.clone());
        }
    };
    for e in &upper.entries {
        let p = e.path.as_str();
        let mode = modes.get(parent(p)).copied().unwrap_or(Mode::Replace);
        let b = base.entries.get(p);
        match &e.kind {
            UpperKind::Whiteout => {
                if mode == Mode::Replace {
                    plan.refusals.push(Refusal {
                        path: p.to_owned(),
                        code: "E_WHITEOUT_IN_OPAQUE",
                        message: "a whiteout inside an opaque directory; overlayfs never writes one".into(),
                    });
                } else if b.is_some() {
                    delete_subtree(&mut deletes, p);
                } else {
                    plan.notes.push(format!("{p}: deleted in the VM but never in the baseline; nothing to do"));
                }
            }
            UpperKind::Dir { opaque } => {
                let child = match b {
                    Some(Entry { kind: Kind::Dir, mode: base_mode, .. }) if !opaque && mode == Mode::Merge => {
                        if (base_mode & 0o777) != (e.mode & 0o777) {
                            dir_modes.push(Op::DirMode { path: p.to_owned(), mode: e.mode });
                        }
                        Mode::Merge
                    }
                    Some(Entry { kind: Kind::Dir, .. }) => {
                        replace_roots.push(p);
                        Mode::Replace
                    }
                    Some(_) => {
                        deletes.insert(p.to_owned());
                        creates.push(Op::Mkdir { path: p.to_owned(), mode: e.mode });
                        Mode::Replace
                    }
                    None => {
                        creates.push(Op::Mkdir { path: p.to_owned(), mode: e.mode });
                        Mode::Replace
                    }
                };
                modes.insert(p, child);
            }
            UpperKind::File { .. } | UpperKind::Symlink { .. } => match b {
                // Content never read cannot be shown unchanged: it stays a write, for the policy.
                Some(b) if !upper.unread.contains(p) && same_content(e, b) => {
                    plan.notes.push(format!("{p}: copied up without changes"));
                }
                Some(Entry { kind: Kind::Dir, .. }) => {
                    delete_subtree(&mut deletes, p);
                    creates.push(Op::Write { path: p.to_owned() });
                }
                _ => creates.push(Op::Write { path: p.to_owned() }),
            },
        }
    }
    // Below a replaced directory, the baseline entries the upper does not list are gone.
    for root in replace_roots {
        for (p, _) in base.subtree(root).skip(1) {
            if !in_upper.contains(p.as_str()) {
                deletes.insert(p.clone());
            }
        }
    }
    // A write over a baseline file replaces it in place; it needs no separate delete.
    let mut ordered: Vec<String> = deletes.into_iter().collect();
    ordered.sort_by(|a, b| b.matches('/').count().cmp(&a.matches('/').count()).then(b.cmp(a)));
    plan.ops.extend(ordered.into_iter().map(|path| Op::Delete { path }));
    plan.ops.extend(creates);
    plan.ops.extend(dir_modes);
    plan
}

#[cfg(test)]
mod tests {
    //! overlay-sync-semantics.md §5 A (core semantics) and B (format attacks) on crafted uppers,
    //! and a real overlayfs mount driven like an agent would.
    #![allow(clippy::disallowed_methods)] // mount/umount: a real overlay needs the real tools.

    use std::path::Path;

    use super::*;
    use crate::sync::fixture::Fx;
    use crate::sync::manifest::record;
    use crate::sync::upper::{Namespace, read};

    impl Fx {
        fn xattr(&self, path: &str, name: &str, value: &[u8]) -> &Self {
            xattr::set(self.upper.join(path), name, value).unwrap();
            self
        }
        fn opaque(&self, path: &str) -> &Self {
            self.u_dir(path).xattr(path, "trusted.overlay.opaque", b"y")
        }
        fn plan(&self) -> Plan {
            let base = record(&self.base, 1).unwrap();
            interpret(&read(&self.upper, Namespace::Trusted).unwrap(), &base)
        }
        fn ops(&self) -> Vec<String> {
            let plan = self.plan();
            assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
            plan.ops.iter().map(show).collect()
        }
        fn refused(&self) -> Vec<&'static str> {
            self.plan().refusals.iter().map(|r| r.code).collect()
        }
    }

    fn show(op: &Op) -> String {
        match op {
            Op::Delete { path } => format!("delete {path}"),
            Op::Mkdir { path, .. } => format!("mkdir {path}"),
            Op::Write { path } => format!("write {path}"),
            Op::DirMode { path, mode } => format!("chmod {path} {mode:o}"),
        }
    }

    #[test]
    fn a1_a2_modified_and_unchanged_copy_up() {
        let fx = Fx::new();
        fx.b("a", "hi\n").b("same", "x").u("a", "hi\nmore\n").u("same", "x");
        assert_eq!(fx.ops(), ["write a"]);
        assert!(fx.plan().notes.iter().any(|n| n.contains("same: copied up without changes")));
    }

    #[test]
    fn a3_a4_a5_deleted_file_and_directory_with_shared_whiteouts() {
        let fx = Fx::new();
        fx.b("b", "x").b("d2/x", "1").b("d2/sub/y", "2").b("d4/z", "3").whiteout("b").whiteout("d2");
        std::fs::hard_link(fx.upper.join("b"), fx.upper.join("d4")).unwrap();
        assert_eq!(
            fx.ops(),
            ["delete d2/sub/y", "delete d4/z", "delete d2/x", "delete d2/sub", "delete d4", "delete d2", "delete b"]
        );
    }

    #[test]
    fn a6_a7_opaque_directory_replaces_its_whole_subtree() {
        let fx = Fx::new();
        fx.b("d3/y", "1").b("d3/sub/z", "2").b("d/sub/b", "1").b("d/sub/b2", "2");
        fx.opaque("d3").u("d3/new", "n").opaque("d").u("d/sub/u", "u");
        assert_eq!(
            fx.ops(),
            [
                "delete d3/sub/z",
                "delete d/sub/b2",
                "delete d/sub/b",
                "delete d3/y",
                "delete d3/sub",
                "write d/sub/u",
                "write d3/new"
            ]
        );
    }

    #[test]
    fn a8_a9_a10_type_changes() {
        let fx = Fx::new();
        fx.b("c", "file").b("d6/r", "r").b("docs/index.md", "i");
        fx.opaque("c").u("c/inner", "i").u("d6", "now a file");
        std::os::unix::fs::symlink("site/docs", fx.upper.join("docs")).unwrap();
        assert_eq!(
            fx.ops(),
            [
                "delete docs/index.md",
                "delete d6/r",
                "delete docs",
                "delete d6",
                "delete c",
                "mkdir c",
                "write c/inner",
                "write d6",
                "write docs"
            ]
        );
    }

    #[test]
    fn a11_a12_a18_renames() {
        let fx = Fx::new();
        fx.b("d1/f1", "one").b("d4/z", "z").b("d4/inner/i", "i").b("a", "A").b("b", "B");
        fx.u_dir("d1")
            .whiteout("d1/f1")
            .u("d1/f1renamed", "one")
            .whiteout("d4")
            .u("d4renamed/z", "z")
            .u("d4renamed/inner/i", "i");
        fx.whiteout("a").u("b", "A");
        assert_eq!(
            fx.ops(),
            [
                "delete d4/inner/i",
                "delete d4/z",
                "delete d4/inner",
                "delete d1/f1",
                "delete d4",
                "delete a",
                "write b",
                "write d1/f1renamed",
                "mkdir d4renamed",
                "mkdir d4renamed/inner",
                "write d4renamed/inner/i",
                "write d4renamed/z"
            ]
        );
    }

    #[test]
    fn a13_a14_a15_a16_a17_metadata_spurious_opaque_ghosts_empty_new_trees() {
        let fx = Fx::new();
        fx.b("d5/x", "1").b("d5/y", "2");
        fx.u_dir("d5");
        std::fs::set_permissions(fx.upper.join("d5"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        fx.opaque("newdir").u("newdir/deep/f", "f").whiteout("ghost");
        fx.xattr("", "trusted.overlay.uuid", b"1234").xattr("", "trusted.overlay.impure", b"y");
        let plan = fx.plan();
        assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
        assert_eq!(
            plan.ops.iter().map(show).collect::<Vec<_>>(),
            ["mkdir newdir", "mkdir newdir/deep", "write newdir/deep/f", "chmod d5 700"]
        );
        assert!(plan.notes.iter().any(|n| n.starts_with("ghost:")));
        let empty = Fx::new();
        empty.b("keep", "k").xattr("", "trusted.overlay.uuid", b"u");
        assert!(empty.ops().is_empty());
    }

    #[test]
    fn b_format_attacks_are_refused() {
        let cases: [(&str, &[u8], &str); 7] = [
            ("trusted.overlay.redirect", b"/d4", "E_REDIRECT"),
            ("trusted.overlay.metacopy", b"", "E_METACOPY"),
            ("trusted.overlay.whiteout", b"y", "E_XWHITEOUT"),
            ("trusted.overlay.nlink", b"1", "E_INDEX"),
            ("trusted.overlay.frobnicate", b"1", "E_OVL_UNKNOWN"),
            ("user.overlay.opaque", b"y", "E_WRONG_NS"),
            ("trusted.overlay.opaque", b"yes", "E_OPAQUE_ANOMALY"),
        ];
        for (name, value, code) in cases {
            let fx = Fx::new();
            fx.b("d/x", "1").u_dir("d").xattr("d", name, value);
            assert_eq!(fx.refused(), [code], "{name}");
        }
        let root = Fx::new();
        root.xattr("", "trusted.overlay.opaque", b"y");
        assert_eq!(root.refused(), ["E_OPAQUE_ANOMALY"], "opaque on the root");
        let fifo = Fx::new();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.upper.join("p"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert_eq!(fifo.refused(), ["E_SPECIAL"]);
        let nested = Fx::new();
        nested.b("d/x", "1").opaque("d").whiteout("d/x");
        assert_eq!(nested.refused(), ["E_WHITEOUT_IN_OPAQUE"]);
        let escaped = Fx::new();
        escaped.u("f", "x").xattr("f", "trusted.overlay.overlay.opaque", b"y");
        let plan = escaped.plan();
        assert!(plan.refusals.is_empty() && plan.ops.len() == 1);
    }

    /// Apply a plan to a copy of the base (test-only, plain std::fs) to compare with the merged view.
    fn apply_naively(plan: &Plan, upper: &Path, host: &Path) {
        for op in &plan.ops {
            match op {
                Op::Delete { path } => {
                    let p = host.join(path);
                    let meta = std::fs::symlink_metadata(&p).unwrap();
                    if meta.is_dir() { std::fs::remove_dir(&p).unwrap() } else { std::fs::remove_file(&p).unwrap() }
                }
                Op::Mkdir { path, .. } => std::fs::create_dir(host.join(path)).unwrap(),
                Op::Write { path } => {
                    let (from, to) = (upper.join(path), host.join(path));
                    if std::fs::symlink_metadata(&from).unwrap().file_type().is_symlink() {
                        let _ = std::fs::remove_file(&to);
                        std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
                    } else {
                        std::fs::copy(&from, &to).unwrap();
                    }
                }
                Op::DirMode { path, mode } => {
                    std::fs::set_permissions(host.join(path), std::os::unix::fs::PermissionsExt::from_mode(*mode))
                        .unwrap();
                }
            }
        }
    }

    fn tree(root: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let what = if e.path_is_symlink() {
                format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
            } else if e.file_type().is_dir() {
                "dir".to_owned()
            } else {
                String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned()
            };
            out.push((rel, what));
        }
        out
    }

    #[test]
    fn real_overlayfs_agent_session_is_reproduced_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper, work, merged, host) =
            ["lower", "upper", "work", "merged", "host"].map(|d| dir.path().join(d)).into();
        for d in [&lower, &upper, &work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        for (p, c) in [
            ("a.txt", "a\n"),
            ("keep.txt", "k\n"),
            ("src/main.rs", "fn main() {}\n"),
            ("src/lib.rs", "// lib\n"),
            ("old/x", "x"),
            ("old/sub/y", "y"),
            ("re/1", "1"),
            ("re/2", "2"),
            ("f2d", "file"),
        ] {
            Fx::put(&lower, p, c);
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=nofollow,index=off,metacopy=off,nfs_export=off,xino=off,uuid=off",
            lower.display(),
            upper.display(),
            work.display()
        );
        let mount = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged)
            .output()
            .unwrap();
        assert!(
            mount.status.success(),
            "mounting overlayfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&mount.stderr)
        );
        let m = |p: &str| merged.join(p);
        let session = || -> std::io::Result<()> {
            std::fs::write(m("a.txt"), "a\nmore\n")?;
            std::fs::write(
                m("new/deep/file.txt").parent().map(std::fs::create_dir_all).map(|_| m("new/deep/file.txt")).unwrap(),
                "new\n",
            )?;
            std::fs::remove_file(m("src/lib.rs"))?;
            std::fs::rename(m("src/main.rs"), m("src/app.rs"))?;
            std::fs::remove_dir_all(m("old"))?;
            std::fs::remove_dir_all(m("re"))?;
            std::fs::create_dir(m("re"))?;
            std::fs::write(m("re/3"), "3")?;
            std::fs::remove_file(m("f2d"))?;
            std::fs::create_dir(m("f2d"))?;
            std::fs::write(m("f2d/inside"), "i")?;
            std::os::unix::fs::symlink("src/app.rs", m("link"))?;
            let _ = std::fs::OpenOptions::new().read(true).write(true).open(m("keep.txt"))?;
            Ok(())
        };
        let result = session();
        let expected = tree(&merged);
        let umount = std::process::Command::new("umount").arg(&merged).status().unwrap();
        result.unwrap();
        assert!(umount.success());

        let base = record(&lower, 1).unwrap();
        let plan = interpret(&read(&upper, Namespace::Trusted).unwrap(), &base);
        assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
        std::process::Command::new("cp").arg("-a").arg(&lower).arg(&host).status().unwrap();
        apply_naively(&plan, &upper, &host);
        assert_eq!(tree(&host), expected, "host after the plan equals the VM's merged view");
        assert!(
            !plan.ops.iter().any(|op| matches!(op, Op::Write { path } if path == "keep.txt")),
            "unchanged copy-up is not written"
        );
    }
}
