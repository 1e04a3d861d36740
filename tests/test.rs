//! `Test`: a temporary home, config dir and project folder, the real `sandbox` binary run in
//! them, and expectations on its output, exit code and files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        env.insert("HOME".into(), home.display().to_string());
        env.insert("XDG_CONFIG_HOME".into(), home.join(".config").display().to_string());
        env.insert("XDG_STATE_HOME".into(), home.join(".local/state").display().to_string());
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
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
