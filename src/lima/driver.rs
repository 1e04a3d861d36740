//! Driving `limactl` (docs: ../shared/design/lima.md §2) under a `LIMA_HOME` that belongs to
//! `sandbox`, so the user's global Lima config (`_config/default.yaml`, `override.yaml`,
//! `base.yaml`, merged into every instance) cannot leak mounts or writable flags into ours.
//!
//! Always non-interactive (`--tty=false`): with a terminal, `create` would open an editor.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exec::{ExecError, Invocation, LIMACTL};

/// How long `limactl start` may take before it gives up (first boots download an image).
const START_TIMEOUT: &str = "15m";

/// The global config files Lima merges into every instance it starts.
pub(crate) const GLOBAL_CONFIG: [&str; 3] = ["default.yaml", "override.yaml", "base.yaml"];

/// An instance's state as `limactl list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Running,
    Stopped,
    Broken,
    Installing,
    Uninitialized,
    /// Empty or unknown to this version.
    Unknown(String),
}

impl Status {
    fn parse(s: &str) -> Status {
        match s {
            "Running" => Status::Running,
            "Stopped" => Status::Stopped,
            "Broken" => Status::Broken,
            "Installing" => Status::Installing,
            "Uninitialized" => Status::Uninitialized,
            other => Status::Unknown(other.to_owned()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Broken => "broken",
            Status::Installing => "installing",
            Status::Uninitialized => "uninitialized",
            Status::Unknown(s) if s.is_empty() => "unknown",
            Status::Unknown(s) => s,
        }
    }
}

/// One line of `limactl list --json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstance {
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    ssh_config_file: String,
    #[serde(default)]
    ssh_local_port: Option<u16>,
    #[serde(default)]
    errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) name: String,
    pub(crate) status: Status,
    pub(crate) dir: PathBuf,
    /// The `Host` of the instance's `ssh.config` (`lima-NAME`).
    pub(crate) hostname: String,
    pub(crate) ssh_config: Option<PathBuf>,
    pub(crate) ssh_port: Option<u16>,
    pub(crate) errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LimaError {
    #[error(transparent)]
    Exec(ExecError),

    #[error(
        "`limactl list --json` printed a line this version of sandbox cannot read ({message}): {line}\n  help: check `limactl --version`; sandbox needs Lima 2.0 or later"
    )]
    List { line: String, message: String },

    #[error("creating the VM `{name}` failed: {source}\n  {cleanup}")]
    Create { name: String, source: ExecError, cleanup: String },

    #[error("starting the VM `{name}` failed: {source}\n  {cleanup}")]
    Start { name: String, source: ExecError, cleanup: String },

    #[error("Lima's global config `{}` would be merged into the VM (Lima adds its mounts and can make them writable)\n  help: remove it; sandbox keeps its VMs in `{}` and never needs one", path.display(), home.display())]
    GlobalConfig { path: PathBuf, home: PathBuf },

    #[error("limactl refuses to run as root\n  help: run sandbox as your own user")]
    Root,
}

/// `limactl` with `LIMA_HOME` set to `home`.
#[derive(Debug, Clone)]
pub(crate) struct Lima {
    home: PathBuf,
    /// `limactl` at this path instead of on PATH.
    program: Option<PathBuf>,
}

impl Lima {
    pub(crate) fn new(home: &Path) -> Lima {
        Lima { home: home.to_path_buf(), program: None }
    }

    #[cfg(test)]
    fn with_program(home: &Path, program: &Path) -> Lima {
        Lima { home: home.to_path_buf(), program: Some(program.to_path_buf()) }
    }

    pub(crate) fn home(&self) -> &Path {
        &self.home
    }

    fn limactl(&self) -> Invocation {
        let inv = Invocation::new(LIMACTL).program(self.program.as_deref()).env("LIMA_HOME", &self.home);
        // Only the unit tests set a program: the fake limactl, which refuses root like Lima unless told.
        let inv = if self.program.is_some() { inv.env("FAKE_LIMA_ALLOW_ROOT", "1") } else { inv };
        inv.arg("--tty=false")
    }

    /// Global config files present in our `LIMA_HOME` (each would leak into the VM).
    pub(crate) fn global_config(&self) -> Vec<PathBuf> {
        GLOBAL_CONFIG.iter().map(|f| self.home.join("_config").join(f)).filter(|p| p.exists()).collect()
    }

    fn refuse_leaks(&self) -> Result<(), LimaError> {
        match self.global_config().into_iter().next() {
            Some(path) => Err(LimaError::GlobalConfig { path, home: self.home.clone() }),
            None => Ok(()),
        }
    }

    /// `limactl --version`, e.g. `2.2.0`.
    pub(crate) fn version(&self) -> Result<String, LimaError> {
        let out = Invocation::new(LIMACTL)
            .program(self.program.as_deref())
            .env("LIMA_HOME", &self.home)
            .arg("--version")
            .checked()?;
        let text = out.stdout_text();
        Ok(text.trim().rsplit(' ').next().unwrap_or_default().to_owned())
    }

    /// Every instance under our `LIMA_HOME`.
    pub(crate) fn list(&self) -> Result<Vec<Instance>, LimaError> {
        let out = self.limactl().args(["list", "--json"]).checked()?;
        parse_list(&out.stdout_text())
    }

    pub(crate) fn instance(&self, name: &str) -> Result<Option<Instance>, LimaError> {
        Ok(self.list()?.into_iter().find(|i| i.name == name))
    }

    /// Create `name` from the rendered instance YAML (on stdin). If creation fails part-way,
    /// whatever it left is deleted, so a retry starts clean.
    pub(crate) fn create(&self, name: &str, yaml: &str) -> Result<(), LimaError> {
        self.refuse_leaks()?;
        std::fs::create_dir_all(&self.home).map_err(|source| {
            LimaError::Exec(ExecError::Spawn { command: format!("mkdir {}", self.home.display()), source })
        })?;
        let created = self.limactl().args(["create", "--name", name, "-"]).stdin(yaml.as_bytes().to_vec()).checked();
        match created {
            Ok(_) => Ok(()),
            Err(source) if refused_root(&source) => Err(LimaError::Root),
            Err(source) => {
                let cleanup = match self.instance(name) {
                    Ok(Some(_)) => match self.delete(name) {
                        Ok(()) => "the partly created VM was deleted; nothing is left behind".to_owned(),
                        Err(e) => format!("deleting the partly created VM failed too: {e}"),
                    },
                    Ok(None) => "nothing was left behind".to_owned(),
                    Err(e) => format!("could not check what was left behind: {e}"),
                };
                Err(LimaError::Create { name: name.to_owned(), source, cleanup })
            }
        }
    }

    /// Boot `name`. A failed start can leave the VM running half-probed (lima.md §2.2): it is
    /// stopped; and when `fresh` (created by this `up`), deleted, so the next `up` starts over.
    pub(crate) fn start(&self, name: &str, fresh: bool) -> Result<(), LimaError> {
        self.refuse_leaks()?;
        let started = self.limactl().args(["start", "--timeout", START_TIMEOUT, name]).checked();
        let Err(source) = started else { return Ok(()) };
        if refused_root(&source) {
            return Err(LimaError::Root);
        }
        let stopped = self.stop(name, true);
        let cleanup = match (stopped, fresh) {
            (Err(e), _) => format!("stopping it failed too: {e}"),
            (Ok(()), false) => {
                "the VM was stopped; run `sandbox up` again, or `sandbox destroy` to start over".to_owned()
            }
            (Ok(()), true) => match self.delete(name) {
                Ok(()) => "the new VM was stopped and deleted; `sandbox up` starts over".to_owned(),
                Err(e) => format!("the VM was stopped, but deleting it failed: {e}"),
            },
        };
        Err(LimaError::Start { name: name.to_owned(), source, cleanup })
    }

    /// Apply a yq expression to the stopped instance's `lima.yaml` (Lima validates the result
    /// and refuses a running instance); it takes effect at the next start. Run in our
    /// `LIMA_HOME`: Lima saves a rejected file in its working directory.
    pub(crate) fn edit(&self, name: &str, expression: &str) -> Result<(), LimaError> {
        self.limactl().dir(&self.home).args(["edit", "--set", expression, name]).checked()?;
        Ok(())
    }

    /// Stop `name` (`force`: kill it, also when it is not running).
    pub(crate) fn stop(&self, name: &str, force: bool) -> Result<(), LimaError> {
        let inv = if force { self.limactl().args(["stop", "-f", name]) } else { self.limactl().args(["stop", name]) };
        inv.checked()?;
        Ok(())
    }

    /// Delete `name` and its disk (force-stopping it first).
    pub(crate) fn delete(&self, name: &str) -> Result<(), LimaError> {
        self.limactl().args(["delete", "-f", name]).checked()?;
        Ok(())
    }
}

/// Lima refuses to run as root ("must not run as the root user"); `doctor` says so beforehand.
fn refused_root(e: &ExecError) -> bool {
    matches!(e, ExecError::Failed { stderr_tail, .. } if stderr_tail.contains("must not run as the root user"))
}

/// Every failed `limactl` call goes through here, so Lima's refusal to run as root is always
/// reported as such.
impl From<ExecError> for LimaError {
    fn from(e: ExecError) -> Self {
        if refused_root(&e) { LimaError::Root } else { LimaError::Exec(e) }
    }
}

/// Parse `limactl list --json` output: one JSON object per line (when stdout is not a TTY).
fn parse_list(text: &str) -> Result<Vec<Instance>, LimaError> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let raw: RawInstance = serde_json::from_str(line)
            .map_err(|e| LimaError::List { line: crate::ui::sanitize(line), message: e.to_string() })?;
        out.push(Instance {
            status: Status::parse(&raw.status),
            dir: PathBuf::from(&raw.dir),
            hostname: if raw.hostname.is_empty() {
                format!("lima-{}", raw.name.replace(['.', '_'], "-"))
            } else {
                raw.hostname
            },
            ssh_config: (!raw.ssh_config_file.is_empty()).then(|| PathBuf::from(&raw.ssh_config_file)),
            ssh_port: raw.ssh_local_port.filter(|p| *p != 0),
            errors: raw.errors,
            name: raw.name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fake `limactl` (Lima cannot run on the CI machines; see the script's header).
    fn fake() -> (tempfile::TempDir, Lima) {
        let dir = tempfile::tempdir().unwrap();
        let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lima/limactl");
        let lima = Lima::with_program(&dir.path().join("lima"), &program);
        (dir, lima)
    }

    fn calls(lima: &Lima) -> Vec<String> {
        std::fs::read_to_string(lima.home().join("calls.log")).unwrap().lines().map(str::to_owned).collect()
    }

    #[test]
    fn create_and_start_pass_the_yaml_on_stdin_non_interactively() {
        let (_d, lima) = fake();
        lima.create("dev", "vmType: vz\n").unwrap();
        lima.start("dev", true).unwrap();
        assert_eq!(lima.instance("dev").unwrap().unwrap().status, Status::Running);
        assert_eq!(std::fs::read_to_string(lima.home().join("dev.stdin")).unwrap(), "vmType: vz\n");
        let log = calls(&lima);
        assert_eq!(log[0], "limactl --tty=false create --name dev -");
        assert!(log.contains(&"limactl --tty=false start --timeout 15m dev".to_owned()), "{log:?}");
        assert_eq!(lima.version().unwrap(), "2.2.0");
    }

    #[test]
    fn a_failed_create_leaves_nothing_behind() {
        let (_d, lima) = fake();
        std::fs::create_dir_all(lima.home()).unwrap();
        std::fs::write(lima.home().join("fail-create"), "").unwrap();
        let err = lima.create("dev", "x: 1\n").unwrap_err().to_string();
        assert!(err.contains("sha256 digest mismatch") && err.contains("nothing is left behind"), "{err}");
        assert!(lima.instance("dev").unwrap().is_none());
        assert!(calls(&lima).contains(&"limactl --tty=false delete -f dev".to_owned()));
    }

    #[test]
    fn a_failed_start_stops_the_vm_and_deletes_a_new_one() {
        let (_d, lima) = fake();
        lima.create("new", "x: 1\n").unwrap();
        lima.create("old", "x: 1\n").unwrap();
        std::fs::write(lima.home().join("fail-start"), "").unwrap();
        let err = lima.start("new", true).unwrap_err().to_string();
        assert!(err.contains("degraded") && err.contains("stopped and deleted"), "{err}");
        assert!(lima.instance("new").unwrap().is_none(), "a VM created by this `up` is removed");
        let err = lima.start("old", false).unwrap_err().to_string();
        assert!(err.contains("the VM was stopped"), "{err}");
        assert_eq!(lima.instance("old").unwrap().unwrap().status, Status::Stopped, "never left running");
    }

    #[test]
    fn global_config_in_our_lima_home_is_refused() {
        let (_d, lima) = fake();
        std::fs::create_dir_all(lima.home().join("_config")).unwrap();
        std::fs::write(lima.home().join("_config/override.yaml"), "mounts: [{location: '~', writable: true}]\n")
            .unwrap();
        let err = lima.create("dev", "x: 1\n").unwrap_err().to_string();
        assert!(err.contains("override.yaml") && err.contains("remove it"), "{err}");
        assert!(lima.instance("dev").unwrap().is_none(), "nothing was created");
    }

    #[test]
    fn list_reads_json_lines_with_every_status() {
        let text = concat!(
            r#"{"name":"a","status":"Running","dir":"/l/a","sshConfigFile":"/l/a/ssh.config","sshLocalPort":60022,"vmType":"vz","config":{"cpus":4}}"#,
            "\n",
            r#"{"name":"b","status":"Stopped","dir":"/l/b","sshConfigFile":"/l/b/ssh.config"}"#,
            "\n\n",
            r#"{"name":"c","status":"Broken","dir":"/l/c","errors":["cannot read lima.yaml"]}"#,
            "\n",
            r#"{"name":"d","status":"Installing"}"#,
            "\n",
            r#"{"name":"e","status":"Uninitialized"}"#,
            "\n",
            r#"{"name":"f","status":""}"#,
            "\n",
        );
        let list = parse_list(text).unwrap();
        let statuses: Vec<&str> = list.iter().map(|i| i.status.as_str()).collect();
        assert_eq!(statuses, ["running", "stopped", "broken", "installing", "uninitialized", "unknown"]);
        assert_eq!(list[0].ssh_port, Some(60022));
        assert_eq!(list[0].ssh_config.as_deref(), Some(Path::new("/l/a/ssh.config")));
        assert_eq!(list[2].errors, ["cannot read lima.yaml"]);
        assert!(list[3].ssh_config.is_none());
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn an_unreadable_list_line_is_a_clear_error() {
        let err = parse_list("{\"status\":\"Running\"}\n").unwrap_err().to_string();
        assert!(err.contains("missing field `name`") && err.contains("Lima 2.0"), "{err}");
    }
}
