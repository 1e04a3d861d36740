//! Test-only: a baseline folder and a crafted upper folder, shared by the `plan` and `policy`
//! tests (each adds its own checks in an `impl Fx` of its own).

use std::path::{Path, PathBuf};

pub(crate) struct Fx {
    _dir: tempfile::TempDir,
    pub(crate) base: PathBuf,
    pub(crate) upper: PathBuf,
}

impl Fx {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (base, upper) = (dir.path().join("base"), dir.path().join("upper"));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        Fx { _dir: dir, base, upper }
    }

    pub(crate) fn put(root: &Path, path: &str, content: &str) {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub(crate) fn b(&self, path: &str, content: &str) -> &Self {
        Self::put(&self.base, path, content);
        self
    }

    pub(crate) fn u(&self, path: &str, content: &str) -> &Self {
        Self::put(&self.upper, path, content);
        self
    }

    pub(crate) fn u_dir(&self, path: &str) -> &Self {
        std::fs::create_dir_all(self.upper.join(path)).unwrap();
        self
    }

    /// A whiteout (character device 0:0), as overlayfs writes one.
    pub(crate) fn whiteout(&self, path: &str) -> &Self {
        let full = self.upper.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &full,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        self
    }
}
