//! `Test`: a temporary home, config dir and project folder, the real `sandbox` binary run in
//! them, and expectations on its output, exit code and files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Paths the tests put a fake home and project under are replaced by these placeholders in
/// snapshots, so golden files do not depend on the temp directory.
pub(crate) const HOME_PLACEHOLDER: &str = "[HOME]";

#[must_use]
pub(crate) struct Test {
    pub(crate) root: tempfile::TempDir,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    stdin: Option<Vec<u8>>,
}

pub(crate) struct Run {
    pub(crate) output: Output,
    pub(crate) home: PathBuf,
    /// Kept so the files stay until the Run is dropped.
    _root: tempfile::TempDir,
}

impl Test {
    pub(crate) fn new() -> Self {
        let root = tempfile::Builder::new().prefix("sandbox-test-").tempdir().expect("temp dir");
        let home = root.path().join("home");
        let project = home.join("project");
        std::fs::create_dir_all(&project).expect("project dir");
        std::fs::create_dir_all(home.join(".config/sandbox/profiles")).expect("config dir");
        let mut env = BTreeMap::new();
        env.extend(home_env(&home));
        env.insert("NO_COLOR".into(), "1".into());
        Test { root, args: Vec::new(), env, cwd: project, stdin: None }
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub(crate) fn project(&self) -> PathBuf {
        self.home().join("project")
    }

    /// Write a file relative to the fake home.
    pub(crate) fn file(self, rel: &str, text: &str) -> Self {
        let path = self.home().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        self
    }

    /// Write a named profile into the profiles directory.
    pub(crate) fn profile(self, name: &str, yaml: &str) -> Self {
        self.file(&format!(".config/sandbox/profiles/{name}.yaml"), yaml)
    }

    pub(crate) fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub(crate) fn cwd(mut self, rel: &str) -> Self {
        self.cwd = self.home().join(rel);
        std::fs::create_dir_all(&self.cwd).expect("cwd");
        self
    }

    pub(crate) fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Run `sandbox` with a clean environment (only the variables set here).
    pub(crate) fn run(self) -> Run {
        use std::io::Write;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
        cmd.args(&self.args).current_dir(&self.cwd).env_clear().envs(&self.env);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sandbox");
        let stdin = self.stdin.clone().unwrap_or_default();
        {
            let mut pipe = child.stdin.take().expect("stdin");
            let _ = pipe.write_all(&stdin);
        }
        let output = child.wait_with_output().expect("wait sandbox");
        let home = self.home();
        Run { output, home, _root: self.root }
    }
}

impl Test {
    /// Start `sandbox` without waiting (stdin closed, output piped), for tests that signal it.
    /// The returned directory must outlive the child.
    pub(crate) fn spawn(self) -> (std::process::Child, tempfile::TempDir) {
        let child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sandbox");
        (child, self.root)
    }
}

/// The environment `sandbox` gets in tests: a fake home (config and state inside it) and the
/// caller's PATH, nothing else.
pub(crate) fn home_env(home: &Path) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.display().to_string()),
        ("XDG_CONFIG_HOME".into(), home.join(".config").display().to_string()),
        ("XDG_STATE_HOME".into(), home.join(".local/state").display().to_string()),
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
    ]
}

/// Run `sandbox ARGS` in an existing fake home (in `cwd`, without colour, stdin closed), with
/// `extra` variables.
pub(crate) fn sandbox_in(home: &Path, cwd: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(home_env(home))
        .env("NO_COLOR", "1")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("spawn sandbox")
}

impl Run {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr with the fake home replaced by a placeholder.
    pub(crate) fn stderr(&self) -> String {
        redact_home(&String::from_utf8_lossy(&self.output.stderr), &self.home)
    }

    pub(crate) fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub(crate) fn status(self, code: i32) -> Self {
        assert_eq!(self.code(), code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout(), self.stderr());
        self
    }

    #[track_caller]
    pub(crate) fn success(self) -> Self {
        self.status(0)
    }

    #[track_caller]
    pub(crate) fn stderr_contains(self, needle: &str) -> Self {
        let stderr = self.stderr();
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
        self
    }

    #[track_caller]
    pub(crate) fn stdout_contains(self, needle: &str) -> Self {
        let stdout = self.stdout();
        assert!(stdout.contains(needle), "stdout lacks {needle:?}:\n{stdout}");
        self
    }
}

pub(crate) fn redact_home(text: &str, home: &Path) -> String {
    text.replace(&home.display().to_string(), HOME_PLACEHOLDER)
}

/// Every regular file under `dir`, relative path → contents, sorted.
pub(crate) fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).expect("prefix").display().to_string();
            out.insert(rel, std::fs::read(entry.path()).expect("read"));
        }
    }
    out
}

/// A private tmux server (its socket in the test's temp dir, no user config) running one
/// `sandbox` command in one pane, for the interactive prompts. Dropping it kills the server,
/// whatever the test's outcome.
pub(crate) struct Tmux {
    socket: PathBuf,
    home: PathBuf,
}

impl Tmux {
    /// `None` when tmux is not installed.
    #[allow(clippy::disallowed_methods)] // tests spawn tmux directly
    pub(crate) fn start(home: &Path, cwd: &Path, env: &[(String, String)], args: &str) -> Option<Tmux> {
        match Command::new("tmux").arg("-V").output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            other => assert!(other.expect("tmux -V").status.success(), "tmux -V failed"),
        }
        // Beside the fake home, so it goes with the temp dir (tmux leaves its socket file behind).
        // A socket of its own each time: a server just killed may still hold the previous one.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = home.parent().expect("home has a parent").join(format!("tmux-{n}.sock"));
        let tmux = Tmux { socket, home: home.to_path_buf() };
        let mut env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
        env.push("TERM=xterm-256color".into());
        let script = format!(
            "env -i {} {} {args}; code=$?; echo; echo \"sandbox exited with $code\"; sleep 600",
            env.join(" "),
            shell_quote(env!("CARGO_BIN_EXE_sandbox")),
        );
        let cwd = cwd.display().to_string();
        tmux.tmux(&["new-session", "-d", "-s", "init", "-x", "120", "-y", "40", "-c", &cwd, &script]);
        Some(tmux)
    }

    #[allow(clippy::disallowed_methods)] // tests spawn tmux directly
    #[track_caller]
    pub(crate) fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            // The pane's command is POSIX shell, whatever the user's login shell is.
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux");
        assert!(output.status.success(), "tmux {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The visible screen, wrapped lines joined, the fake home replaced by `[HOME]`.
    pub(crate) fn screen(&self) -> String {
        redact_home(&self.tmux(&["capture-pane", "-p", "-J", "-t", "init"]), &self.home)
    }

    /// Wait (up to 10 s, polling every 50 ms) until a line of the screen contains `text`.
    #[track_caller]
    pub(crate) fn wait_for(&self, text: &str) {
        self.wait_until(text, |screen| screen.lines().any(|l| l.contains(text)));
    }

    #[track_caller]
    pub(crate) fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what:?}; the screen shows:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type `text` literally (no key names), and wait until the prompt line shows it.
    #[track_caller]
    pub(crate) fn type_text(&self, prompt: &str, text: &str) {
        self.wait_for_raw_mode();
        self.tmux(&["send-keys", "-t", "init", "-l", text]);
        self.wait_until(&format!("{prompt} … › {text}"), |screen| {
            screen.lines().any(|l| l.contains(prompt) && l.trim_end().ends_with(&format!("› {text}")))
        });
    }

    /// Wait (up to 10 s) until the program reads keys in raw mode. Keys that arrive while its
    /// terminal is still in canonical mode are echoed by the tty itself, and the prompt would
    /// show them twice (the echo, then the program's own drawing) on a loaded machine.
    #[allow(clippy::disallowed_methods)] // tests spawn stty directly
    #[track_caller]
    fn wait_for_raw_mode(&self) {
        let tty = self.tmux(&["display-message", "-p", "-t", "init", "#{pane_tty}"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("stty").args(["-F", tty.trim(), "-a"]).output().expect("run stty");
            let modes = String::from_utf8_lossy(&out.stdout);
            if modes.split_whitespace().any(|m| m == "-icanon") {
                return;
            }
            assert!(Instant::now() < deadline, "the terminal never left canonical mode: {modes}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn key(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "init", key]);
    }

    /// Wait for the active question `prompt`, answer `text` (empty: take the default), Enter.
    #[track_caller]
    pub(crate) fn answer(&self, prompt: &str, text: &str) {
        let active = format!("? {prompt}");
        self.wait_for(&active);
        if !text.is_empty() {
            self.type_text(&active, text);
        }
        self.key("Enter");
    }

    /// Wait for the shell line the pane prints when `sandbox` ends; return its exit code.
    #[track_caller]
    pub(crate) fn exit_code(&self) -> i32 {
        self.wait_for("sandbox exited with ");
        let screen = self.screen();
        let line = screen.lines().find_map(|l| l.split("sandbox exited with ").nth(1)).expect("exit line");
        line.trim().parse().unwrap_or_else(|_| panic!("exit line {line:?}; the screen shows:\n{screen}"))
    }
}

impl Drop for Tmux {
    #[allow(clippy::disallowed_methods)] // tests spawn tmux directly
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Whether `tool` runs. When it does not, the test is skipped (saying so on one line), except
/// under `CI=true`, where that is a failure.
pub(crate) fn have(tool: &str, test: &str) -> bool {
    let runs = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return true;
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{test}: `{tool}` is not installed, and CI must install it");
    #[allow(clippy::print_stderr)] // the only way to say a test was skipped
    {
        eprintln!("skipped {test}: `{tool}` is not installed");
    }
    false
}
