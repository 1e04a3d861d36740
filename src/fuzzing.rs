//! Entry points for the coverage-guided fuzzers in `fuzz/` (afl.rs, stable Rust): one function per
//! parser of input the agent or a stranger controls. They exist only for those fuzzers and their
//! regression tests; nothing else calls them, and they are not an API.
//!
//! Each takes arbitrary bytes, must return (never panic, never hang) whatever they are, and
//! returns nothing: a finding is a panic (or an `assert!` on a documented invariant of the
//! result) or a timeout seen by the fuzzer. Temporary files go under `$TMPDIR` and are removed
//! before returning. Nothing here follows a symlink the input created.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::environment::Environment;
use crate::profile::Origin;
use crate::sync::tar::{Completeness, TarLimits};
use crate::sync::upper::{Limits, Namespace, Upper, UpperKind};

/// Tar limits small enough that the fuzzer reaches them.
const SMALL_TAR: TarLimits = TarLimits { max_entries: 16, max_total_bytes: 4096, max_file_bytes: 1024 };
const ROOMY_TAR: TarLimits = TarLimits { max_entries: 512, max_total_bytes: 1 << 20, max_file_bytes: 256 << 10 };
const SMALL_UPPER: Limits = Limits { max_file_bytes: 16, max_total_bytes: 64, max_entries: 32 };
const ROOMY_UPPER: Limits = Limits { max_file_bytes: 64 << 10, max_total_bytes: 256 << 10, max_entries: 4096 };

/// `sync::tar::read_tar`. Byte 0 chooses: bit 0 the namespace (trusted or user), bit 1 the
/// limits (small or roomy), bits 2-3 the expected `Completeness` (none; bits 5-7 as the entry
/// count; the counts of a first read; those counts off by one entry), bit 4 whether the header
/// checksums are set right first (else nearly every mutation of a header stops at its checksum);
/// the rest is the stream.
pub fn tar(data: &[u8]) {
    let Some((&flags, stream)) = data.split_first() else { return };
    let ns = if flags & 1 == 0 { Namespace::Trusted } else { Namespace::User };
    let limits = if flags & 2 == 0 { SMALL_TAR } else { ROOMY_TAR };
    let mut stream = stream.to_vec();
    if flags & 0x10 != 0 {
        repair_checksums(&mut stream);
    }
    let Ok(stage) = tempfile::tempdir() else { return };
    let read = |expect| crate::sync::tar::read_tar(&stream[..], ns, expect, stage.path(), limits);
    let expect = match (flags >> 2) & 3 {
        0 => None,
        1 => Some(Completeness { entries: u64::from(flags >> 5), bytes: 0 }),
        mode => {
            let Ok(first) = read(None) else { return };
            check_upper(&first);
            let entries = first.entries.len() as u64 + u64::from(mode == 3);
            let bytes =
                first.entries.iter().map(|e| if let UpperKind::File { size, .. } = e.kind { size } else { 0 }).sum();
            Some(Completeness { entries, bytes })
        }
    };
    let Ok(upper) = read(expect) else { return };
    check_upper(&upper);
    for entry in &upper.entries {
        if let UpperKind::File { sha256, .. } = &entry.kind {
            assert_eq!(entry.source, stage.path().join(sha256), "a staged file is named by its sha256");
        }
    }
}

/// `sync::upper::read_within` on a tree the input builds (see `Program`) in a fresh temporary
/// directory. Byte 0 chooses: bit 0 the namespace read, bit 1 the limits (roomy or small), bit 2 excluding
/// names that start with `x`; the rest are build steps.
pub fn upper(data: &[u8]) {
    let Some((&flags, program)) = data.split_first() else { return };
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path().join("upper");
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    Program::new(program, &root).run();
    let ns = if flags & 1 == 0 { Namespace::Trusted } else { Namespace::User };
    // Within limits every file is hashed, so a sparse file of a TiB costs a read of a TiB: the
    // gate always passes the profile's limits, and so does this.
    let limits = if flags & 2 == 0 { ROOMY_UPPER } else { SMALL_UPPER };
    let exclude = flags & 4 != 0;
    if let Ok(upper) = crate::sync::upper::read_within(&root, ns, limits, |p| exclude && p.starts_with('x')) {
        check_upper(&upper);
    }
}

/// `secrets::dotenv::parse` on the input as text (invalid UTF-8 replaced, as a lossy reader would).
pub fn dotenv(data: &[u8]) {
    let _ = crate::secrets::dotenv::parse(&String::from_utf8_lossy(data));
}

/// One profile document through what `--profile FILE` does: `profile::load::parse`, the
/// `extends` chain (embedded parents, or files under a temporary home, where the document itself
/// is written as `profile.yaml` beside a few files and folders), then `profile::validate::validate` (structure, then meaning).
pub fn profile(data: &[u8]) {
    // A profile file is read with `read_to_string`: anything else is refused before parsing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(home) = tempfile::tempdir() else { return };
    let Ok(home_path) = std::fs::canonicalize(home.path()) else { return };
    let file = home_path.join("profile.yaml");
    // What the seeds name (tests/fixtures/render/*/profile.yaml), so their paths exist.
    let made = std::fs::write(&file, text).is_ok()
        && ["project", "data", "scratch", "roles", ".ssh", "keys"]
            .iter()
            .all(|d| std::fs::create_dir(home_path.join(d)).is_ok())
        && ["keys/build_ed25519", "node-v24.19.0-linux-x64.tar.xz", "secrets.env"]
            .iter()
            .all(|f| std::fs::write(home_path.join(f), "A=1\n").is_ok());
    if !made {
        return;
    }
    let env = Environment {
        cwd: home_path.join("project"),
        config_dir: home_path.join(".config"),
        state_dir: home_path.join(".local/state"),
        profile: None,
        home: home_path,
    };
    let Ok(doc) = crate::profile::load::parse(text, Origin::File(file)) else { return };
    let Ok(loaded) = crate::profile::load::merge_with_parents(doc, &env) else { return };
    let _ = crate::profile::validate::validate(&loaded, &env);
}

/// Give every header block the checksum of its bytes, walking the stream as a reader would (a
/// header, then its size rounded up to whole blocks; zero blocks one at a time).
fn repair_checksums(stream: &mut [u8]) {
    const BLOCK: usize = 512;
    let mut at = 0usize;
    while let Some(block) = stream.get_mut(at..at.saturating_add(BLOCK)) {
        at += BLOCK;
        if block.iter().all(|b| *b == 0) {
            continue;
        }
        let mut header = ::tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(block);
        header.set_cksum();
        block.copy_from_slice(header.as_bytes());
        let data = header.entry_size().unwrap_or(0).div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
        at = at.saturating_add(usize::try_from(data).unwrap_or(usize::MAX));
    }
}

/// `Upper::entries` is documented as sorted top-down by path, so each path once.
fn check_upper(upper: &Upper) {
    for pair in upper.entries.windows(2) {
        let (a, b) = (&pair[0].path, &pair[1].path);
        assert!(a.split('/').lt(b.split('/')), "entries out of order or repeated: `{a}` then `{b}`");
    }
}

/// The steps (at most 64) that build an upper directory: an opcode byte (mod 10), then operands.
/// `0` dir NAME; `1` file NAME CONTENT; `2` symlink NAME TARGET; `3` whiteout NAME; `4` special
/// NAME KIND (FIFO, char 1:3, block 0:0, char 0:1); `5` xattr NODE PREFIX KEY VALUE; `6` chmod
/// NODE MODE (2 bytes); `7` hardlink FILE NAME; `8` sparse FILE SHIFT (2^(SHIFT % 41) bytes);
/// `9` chain DIR LEVELS LEN (LEVELS % 40 nested dirs named `d` × (LEN + 1)). A NAME is a byte
/// picking a directory made earlier, then a count byte and up to 12 bytes (any but `/` and NUL,
/// so not always UTF-8); a NODE, FILE or DIR is a byte picking among those made earlier (the
/// root included); CONTENT, TARGET, KEY and VALUE are a count byte and bytes. Failing steps are
/// skipped. Files are created with `O_EXCL`, and mode changes skip symlinks, so nothing written
/// ever leaves the temporary directory whatever the symlinks point at.
struct Program<'a> {
    input: &'a [u8],
    root: &'a Path,
    /// Directories made so far, relative to `root` (`""` is the root).
    dirs: Vec<PathBuf>,
    /// Everything made so far.
    nodes: Vec<PathBuf>,
    /// Regular files made so far.
    files: Vec<PathBuf>,
}

/// Overlay attribute names, so the fuzzer reaches each row of the §1.8 table without guessing.
const OVERLAY_KEYS: [&str; 13] = [
    "opaque",
    "whiteout",
    "redirect",
    "metacopy",
    "nlink",
    "upper",
    "origin",
    "impure",
    "uuid",
    "protattr",
    "overlay.opaque",
    "overlay.",
    "",
];
const XATTR_PREFIXES: [&str; 5] = ["user.overlay.", "trusted.overlay.", "user.", "security.", "trusted."];
const MAX_STEPS: usize = 64;

impl<'a> Program<'a> {
    fn new(input: &'a [u8], root: &'a Path) -> Self {
        Program { input, root, dirs: vec![PathBuf::new()], nodes: vec![PathBuf::new()], files: Vec::new() }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.input.split_first()?;
        self.input = rest;
        Some(b)
    }

    /// Up to `max` bytes, the count given by the next byte.
    fn chunk(&mut self, max: usize) -> &[u8] {
        let n = usize::from(self.byte().unwrap_or(0)) % (max + 1);
        let (taken, rest) = self.input.split_at(n.min(self.input.len()));
        self.input = rest;
        taken
    }

    fn pick<'v>(&mut self, from: &'v [PathBuf]) -> &'v Path {
        &from[usize::from(self.byte().unwrap_or(0)) % from.len()]
    }

    /// A new path: a name in a directory made earlier; `None` for an empty, `.` or `..` name.
    fn new_path(&mut self) -> Option<PathBuf> {
        let dirs = std::mem::take(&mut self.dirs);
        let parent = self.pick(&dirs).to_path_buf();
        self.dirs = dirs;
        let name: Vec<u8> = self.chunk(12).iter().copied().filter(|b| *b != b'/' && *b != 0).collect();
        if name.is_empty() || name == b"." || name == b".." {
            return None;
        }
        Some(parent.join(OsStr::from_bytes(&name)))
    }

    fn run(mut self) {
        for _ in 0..MAX_STEPS {
            let Some(op) = self.byte() else { return };
            let _ = self.step(op);
        }
    }

    fn step(&mut self, op: u8) -> std::io::Result<()> {
        use rustix::fs::{CWD, FileType, Mode, OFlags};
        let root = self.root;
        match op % 10 {
            0 => {
                let path = self.new_path().ok_or(std::io::ErrorKind::InvalidInput)?;
                std::fs::create_dir(root.join(&path))?;
                self.dirs.push(path.clone());
                self.nodes.push(path);
            }
            1 => {
                let path = self.new_path().ok_or(std::io::ErrorKind::InvalidInput)?;
                let content = self.chunk(64).to_vec();
                let mut file = std::fs::File::options().write(true).create_new(true).open(root.join(&path))?;
                std::io::Write::write_all(&mut file, &content)?;
                self.files.push(path.clone());
                self.nodes.push(path);
            }
            2 => {
                let path = self.new_path().ok_or(std::io::ErrorKind::InvalidInput)?;
                let target: Vec<u8> = self.chunk(32).iter().copied().filter(|b| *b != 0).collect();
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), root.join(&path))?;
                self.nodes.push(path);
            }
            3 | 4 => {
                let path = self.new_path().ok_or(std::io::ErrorKind::InvalidInput)?;
                // A 0:0 character device is a whiteout; anything else is refused as special.
                let special = if op % 10 == 3 { None } else { Some(self.byte().unwrap_or(0) % 4) };
                let (kind, dev) = match special {
                    None => (FileType::CharacterDevice, 0),
                    Some(0) => (FileType::Fifo, 0),
                    Some(1) => (FileType::CharacterDevice, rustix::fs::makedev(1, 3)),
                    Some(2) => (FileType::BlockDevice, 0),
                    Some(_) => (FileType::CharacterDevice, rustix::fs::makedev(0, 1)),
                };
                rustix::fs::mknodat(CWD, root.join(&path), kind, Mode::from_raw_mode(0o644), dev)?;
                self.nodes.push(path);
            }
            5 => {
                let nodes = std::mem::take(&mut self.nodes);
                let node = self.pick(&nodes).to_path_buf();
                self.nodes = nodes;
                let prefix = XATTR_PREFIXES[usize::from(self.byte().unwrap_or(0)) % XATTR_PREFIXES.len()];
                let which = usize::from(self.byte().unwrap_or(0));
                let mut name = prefix.as_bytes().to_vec();
                match OVERLAY_KEYS.get(which) {
                    Some(key) => name.extend_from_slice(key.as_bytes()),
                    None => name.extend(self.chunk(16).iter().copied().filter(|b| *b != 0)),
                }
                let value = self.chunk(8).to_vec();
                // `xattr::set` does not follow symlinks.
                xattr::set(root.join(node), OsStr::from_bytes(&name), &value)?;
            }
            6 => {
                let nodes = std::mem::take(&mut self.nodes);
                let node = root.join(self.pick(&nodes));
                self.nodes = nodes;
                let mode = u16::from_le_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)]) & 0o7777;
                let meta = std::fs::symlink_metadata(&node)?;
                if meta.file_type().is_symlink() {
                    return Ok(()); // chmod would follow it.
                }
                // Directories keep owner rwx so the temporary tree can be removed without root.
                let mode = if meta.is_dir() { mode | 0o700 } else { mode };
                rustix::fs::chmodat(CWD, &node, Mode::from_raw_mode(u32::from(mode)), rustix::fs::AtFlags::empty())?;
            }
            7 if !self.files.is_empty() => {
                let files = std::mem::take(&mut self.files);
                let file = self.pick(&files).to_path_buf();
                self.files = files;
                let path = self.new_path().ok_or(std::io::ErrorKind::InvalidInput)?;
                std::fs::hard_link(root.join(file), root.join(&path))?;
                self.files.push(path.clone());
                self.nodes.push(path);
            }
            8 if !self.files.is_empty() => {
                let files = std::mem::take(&mut self.files);
                let file = root.join(self.pick(&files));
                self.files = files;
                let len = 1u64 << (self.byte().unwrap_or(0) % 41);
                let fd = rustix::fs::open(&file, OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
                rustix::fs::ftruncate(&fd, len)?; // sparse: costs no disk
            }
            9 => {
                let dirs = std::mem::take(&mut self.dirs);
                let mut path = self.pick(&dirs).to_path_buf();
                self.dirs = dirs;
                let (levels, name) =
                    (self.byte().unwrap_or(0) % 40, "d".repeat(1 + usize::from(self.byte().unwrap_or(0))));
                // Made relative to each new directory, so the chain may pass `PATH_MAX`.
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let mut fd = rustix::fs::open(root.join(&path), flags, Mode::empty())?;
                for _ in 0..levels {
                    rustix::fs::mkdirat(&fd, name.as_str(), Mode::from_raw_mode(0o755))?;
                    fd = rustix::fs::openat(&fd, name.as_str(), flags, Mode::empty())?;
                    path.push(&name);
                    self.dirs.push(path.clone());
                    self.nodes.push(path.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Regression tests for what the fuzzers found, each named after it; the inputs are in
    //! `tests/fixtures/fuzz/<target>/`. Plus a smoke test that each entry point takes the seeds.

    use super::*;

    #[test]
    fn every_entry_point_takes_empty_and_short_inputs() {
        for input in [&b""[..], b"\0", b"\xff\xff\xff", b"\x01\x00\x05a\x01\x05\x03abc"] {
            tar(input);
            upper(input);
            dotenv(input);
            profile(input);
        }
    }

    #[test]
    fn the_upper_program_builds_what_it_says() {
        // flags 0; mkdir "d"; file "d/f" = "hi"; symlink "l" -> "/etc/passwd"; whiteout "w";
        // xattr user.overlay.opaque=y on node 1 ("d"); chmod node 3 ("l", a symlink: skipped).
        let program = b"\0\x00\x00\x01d\x01\x01\x01f\x02hi\x02\x00\x01l\x0b/etc/passwd\x03\x00\x01w\x05\x01\x00\x00\x01y\x06\x03\x00\x00";
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("upper");
        std::fs::create_dir(&root).unwrap();
        Program::new(&program[1..], &root).run();
        let limits = Limits { max_file_bytes: 99, max_total_bytes: 99, max_entries: 99 };
        let upper = crate::sync::upper::read_within(&root, Namespace::User, limits, |_| false).unwrap();
        let kinds: Vec<(&str, &UpperKind)> = upper.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert_eq!(kinds[0], ("d", &UpperKind::Dir { opaque: true }));
        assert_eq!(kinds[2], ("l", &UpperKind::Symlink { target: "/etc/passwd".into() }));
        assert_eq!(kinds[3], ("w", &UpperKind::Whiteout));
        assert!(upper.refusals.is_empty(), "{:?}", upper.refusals);
    }
}
