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
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["baseline", "project"])
        .current_dir(&home)
        .env_clear()
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .output()
        .expect("run");
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
        let dir = tempfile::tempdir().expect("tmp");
        for d in ["home/ws", "upper", "work", "merged", "home/.local/state"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let s = Session { dir };
        for (path, content) in files {
            s.put(&s.host().join(path), content);
        }
        s.put(
            &s.home().join(".config/sandbox/profiles/t.yaml"),
            "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\n",
        );
        let out = s.sandbox(&["baseline", "ws"], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        s
    }
    fn put(&self, path: &std::path::Path, content: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
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
        let umount = std::process::Command::new("umount").arg(self.merged()).status().expect("umount");
        result.expect("agent session");
        assert!(umount.success());
        view
    }
    fn sandbox(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(args)
            .current_dir(self.home())
            .env_clear()
            .env("HOME", self.home())
            .env("XDG_STATE_HOME", self.home().join(".local/state"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sandbox")
    }
    fn sync(&self, extra: &[&str]) -> std::process::Output {
        let upper = self.upper().display().to_string();
        let mut args = vec!["--profile", "t", "sync", "--from-dir", &upper, "--to", "ws"];
        args.extend(extra);
        self.sandbox(&args, &[])
    }
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
        let upper = s.upper().display().to_string();
        let crashed = s.sandbox(
            &["--profile", "t", "sync", "--from-dir", &upper, "--to", "ws", "--yes"],
            &[("SANDBOX_FAILPOINT", &step.to_string())],
        );
        assert!(!crashed.status.success(), "step {step}: the failpoint kills the process");
        // Every file is old or new (never partial): the next run rolls back first...
        let dry = s.sync(&["--dry-run"]);
        assert_eq!(code(&dry), 0, "step {step}: {}", stderr(&dry));
        assert!(stderr(&dry).contains("rolled back an interrupted sync") || step == 0, "step {step}: {}", stderr(&dry));
        assert_eq!(tree(&s.host()), before, "step {step}: recovery restores the old state");
        // ...and then the sync goes through.
        let out = s.sync(&["--yes"]);
        assert_eq!(code(&out), 0, "step {step}: {}", stderr(&out));
        assert_eq!(tree(&s.host()), merged, "step {step}");
    }
}
