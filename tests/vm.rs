//! `down`, `destroy` and `doctor` through the real binary, with the `lima` backend driven
//! against a fake `limactl` (tests/fixtures/lima/limactl) first on PATH: Lima cannot run on
//! these machines (no usable KVM for its VMs, and limactl refuses to run as root, as CI does).

use std::path::{Path, PathBuf};

use crate::test::Test;

fn fake_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lima")
}

/// A test whose PATH starts with the fake `limactl`; `vm` (if any) exists with `status`.
fn with_vm(vm: Option<&str>) -> Test {
    let t = Test::new();
    let path = format!("{}:{}", fake_bin().display(), std::env::var("PATH").unwrap_or_default());
    let t = t.env("PATH", &path);
    match vm {
        Some(status) => t.file(".local/state/sandbox/lima/default/status", &format!("{status}\n")),
        None => t,
    }
}

fn lima_home(home: &Path) -> PathBuf {
    home.join(".local/state/sandbox/lima")
}

fn calls(home: &Path) -> String {
    std::fs::read_to_string(lima_home(home).join("calls.log")).unwrap_or_default()
}

fn status(home: &Path) -> Option<String> {
    std::fs::read_to_string(lima_home(home).join("default/status")).ok().map(|s| s.trim().to_owned())
}

#[test]
fn down_stops_a_running_vm_and_is_idempotent() {
    let run = with_vm(Some("Running")).args(["down"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stderr().contains("stopped the VM `default`"), "{}", run.stderr());
    assert!(calls(&run.home).contains("limactl --tty=false stop default\n"), "{}", calls(&run.home));
    assert_eq!(status(&run.home).as_deref(), Some("Stopped"));

    let run = with_vm(Some("Stopped")).args(["down"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stderr().contains("already stopped"), "{}", run.stderr());
    assert!(!calls(&run.home).contains(" stop "), "nothing to stop: {}", calls(&run.home));

    // Half-booted: only a forced stop gets it down.
    let run = with_vm(Some("Installing")).args(["down"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(calls(&run.home).contains("stop -f default"), "{}", calls(&run.home));
}

#[test]
fn down_and_destroy_without_a_vm_say_how_to_get_one() {
    for cmd in ["down", "destroy"] {
        let run = with_vm(None).args([cmd, "--force"].iter().take(if cmd == "down" { 1 } else { 2 })).run();
        assert_eq!(run.code(), 1, "{}", run.stderr());
        assert!(run.stderr().contains("there is no VM `default`"), "{}", run.stderr());
        assert!(run.stderr().contains("`sandbox up` creates it"), "{}", run.stderr());
    }
}

#[test]
fn a_failing_limactl_is_reported_with_its_stderr() {
    let t = with_vm(Some("Running")).file(".local/state/sandbox/lima/fail-stop", "");
    let run = t.args(["down"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("`limactl --tty=false stop default` failed (exit status 1)"), "{err}");
    assert!(err.contains("failed to stop the host agent"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn destroy_needs_a_confirmation_or_force() {
    let run = with_vm(Some("Running")).args(["destroy"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("needs a confirmation") && run.stderr().contains("--force"), "{}", run.stderr());
    assert_eq!(status(&run.home).as_deref(), Some("Running"), "nothing was destroyed");

    let run = with_vm(Some("Running")).args(["destroy", "--force"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(calls(&run.home).contains("limactl --tty=false delete -f default\n"), "{}", calls(&run.home));
    assert_eq!(status(&run.home), None, "the VM is gone");
}

#[test]
fn lima_commands_refuse_the_ssh_backend() {
    let profile = "name: box\nextends: default\nvm: {backend: ssh, ssh: {host: 10.0.0.5, user: dev}}\n";
    for cmd in ["down", "destroy"] {
        let run = with_vm(None).profile("box", profile).args(["--profile", "box", cmd]).run();
        assert_eq!(run.code(), 1, "{}", run.stderr());
        assert!(run.stderr().contains("uses the ssh backend, whose host sandbox does not own"), "{}", run.stderr());
        assert_eq!(calls(&run.home), "", "limactl was not run");
    }
}

#[test]
fn doctor_checks_tools_versions_and_lima_global_config() {
    let run = with_vm(None).args(["doctor"]).run();
    let out = run.stdout();
    assert!(out.contains("ok   limactl: limactl version 2.2.0 ("), "{out}");
    // ansible-playbook and ssh are whatever this machine has: found with a version, or a hint.
    for tool in ["ansible-playbook", "ssh"] {
        let line = out.lines().find(|l| l.contains(&format!(" {tool}: "))).unwrap_or_else(|| panic!("{out}"));
        assert!(line.starts_with("ok   ") || line.contains("not installed; install"), "{line}");
    }
    let failed = out.lines().filter(|l| l.starts_with("FAIL")).count();
    assert_eq!(run.code(), if failed == 0 { 0 } else { 1 }, "{out}\n{}", run.stderr());

    // A leaking global config and an old Lima fail.
    let t = with_vm(None).file(".local/state/sandbox/lima/_config/default.yaml", "mounts: []\n");
    let run = t.env("FAKE_LIMA_VERSION", "1.2.3").args(["doctor"]).run();
    let out = run.stdout();
    assert_eq!(run.code(), 1, "{out}");
    assert!(
        out.contains("FAIL Lima global config: `") && out.contains("_config/default.yaml` would be merged"),
        "{out}"
    );
    assert!(out.contains("FAIL limactl: version 1.2.3; sandbox needs Lima 2.0 or later"), "{out}");

    // Without limactl at all: the install hint.
    let run = Test::new().env("PATH", "/nonexistent").args(["doctor"]).run();
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout().contains("FAIL limactl: not installed; install Lima: `brew install lima`"),
        "{}",
        run.stdout()
    );
}
