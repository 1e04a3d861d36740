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
    let t = t.env("PATH", &path).env("FAKE_LIMA_ALLOW_ROOT", "1");
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

/// A real OpenSSH server on 127.0.0.1, for root with one key, in a temp dir; killed on drop.
/// `None` (the test is skipped, saying so) when sshd is not installed; CI installs it.
struct Sshd {
    child: std::process::Child,
    port: u16,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

/// A forced command for the test sshd that refuses Ansible: `up` may run its real
/// `ansible-playbook` against this machine's sshd only to see it fail before anything runs.
/// Everything Ansible executes goes through python3 (pipelining) or sudo.
const REFUSE_ANSIBLE: &str = r#"#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
  *python*|*ansible*|*sudo*) echo "test sshd: provisioning this machine is refused" >&2; exit 97 ;;
esac
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"#;

impl Sshd {
    fn start() -> Option<Sshd> {
        Sshd::start_with(false)
    }

    /// `refuse_ansible`: every command passes through [`REFUSE_ANSIBLE`].
    fn start_with(refuse_ansible: bool) -> Option<Sshd> {
        Sshd::start_forced(refuse_ansible.then_some(REFUSE_ANSIBLE))
    }

    /// An sshd whose login user's shell is `shell` (fish, tcsh...): sshd runs the client's
    /// command line with it, as it would with that user's login shell.
    fn start_with_login_shell(shell: &str) -> Option<Sshd> {
        Sshd::start_forced(Some(&format!("#!/bin/sh\nexec {shell} -c \"$SSH_ORIGINAL_COMMAND\"\n")))
    }

    /// `forced`: a script every command passes through (sshd's ForceCommand).
    fn start_forced(forced: Option<&str>) -> Option<Sshd> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            #[allow(clippy::print_stderr)] // the only way to say a test was skipped
            {
                eprintln!("skipped: /usr/sbin/sshd is not installed (CI installs openssh-server)");
            }
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let keygen = |path: &Path| {
            let out = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .output()
                .expect("ssh-keygen");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\n",
            d.join("host_key").display(),
            d.join("sshd.pid").display(),
            d.join("authorized_keys").display()
        );
        let mut config = config;
        if let Some(forced) = forced {
            use std::os::unix::fs::PermissionsExt;
            let gate = d.join("forced-command");
            std::fs::write(&gate, forced).expect("gate");
            std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            config.push_str(&format!("ForceCommand {}\n", gate.display()));
        }
        std::fs::write(d.join("sshd_config"), config).expect("config");
        std::fs::create_dir_all("/run/sshd").expect("privilege separation dir");
        let child = std::process::Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sshd");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not start listening");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Sshd { child, port, key: d.join("client_key"), _dir: dir })
    }
}

/// A profile `box` whose VM is the test's sshd (an ssh-backend host), with one workspace.
fn ssh_profile(sshd: &Sshd, project: &Path, workspace: &str) -> String {
    format!(
        "name: box\nextends: default\nvm: {{backend: ssh, ssh: {{host: 127.0.0.1, port: {}, user: root, identity_file: {}}}}}\n\
         workspaces: [{{host: {}, name: {workspace}}}]\n",
        sshd.port,
        sshd.key.display(),
        project.display()
    )
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_runs_a_command_in_a_lima_vm_word_for_word() {
    let Some(sshd) = Sshd::start() else { return };
    let t = with_vm(Some("Running"));
    let config = format!(
        "Host lima-default\n  Hostname 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
         StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n",
        sshd.port,
        sshd.key.display()
    );
    let t = t.file(".local/state/sandbox/lima/default/ssh.config", &config);
    let run = t.args(["ssh", "--", "printf", "%s|", "two words", "it's", "$HOME", "*"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.stdout(), "two words|it's|$HOME|*|", "each word arrives as is");

    // A stopped VM: no ssh attempt, a clear message.
    let run = with_vm(Some("Stopped")).args(["ssh", "--", "true"]).run();
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("the VM `default` is stopped") && run.stderr().contains("`sandbox up` starts it"));
}

/// Lines whose meaning differs between shells: a newline (tcsh), a backslash (fish), `!`
/// (tcsh's history), `$`, quotes, globs, a leading `=` (zsh) or `%`.
const TRICKY_WORDS: [&str; 11] =
    ["two words", "it's", "$HOME", "*", "a\\b", "c:\\", "line\nbreak", "wow!", "=ls", "%1", "\"q\""];

#[test]
fn commands_reach_an_ssh_host_whose_login_shell_is_fish_tcsh_or_zsh_word_for_word() {
    for shell in ["/usr/bin/fish", "/usr/bin/tcsh", "/usr/bin/zsh"] {
        if !Path::new(shell).exists() {
            #[allow(clippy::print_stderr)] // the only way to say a case was skipped
            {
                eprintln!("skipped {shell}: not installed (CI installs fish, tcsh and zsh)");
            }
            continue;
        }
        let Some(sshd) = Sshd::start_with_login_shell(shell) else { return };
        let t = Test::new();
        let name =
            format!("shell-{}-{}", Path::new(shell).file_name().expect("name").to_string_lossy(), std::process::id());
        let upper = Upper::new(&name);
        std::fs::write(upper.0.join("notes.txt"), "agent work\n").expect("write");
        let profile = ssh_profile(&sshd, &t.project(), &name);
        let t = t.profile("box", &profile);
        let home = t.home();

        let mut args = vec!["--profile", "box", "ssh", "--", "printf", "%s|"];
        args.extend(TRICKY_WORDS);
        let run = crate::test::sandbox_in(&home, &t.project(), &args, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{shell}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&run.stdout), format!("{}|", TRICKY_WORDS.join("|")), "{shell}: {stderr}");

        // Read as sh reads it whatever the login shell: an assignment before the command.
        let run = crate::test::sandbox_in(
            &home,
            &t.project(),
            &["--profile", "box", "ssh", "--", "X=1", "sh", "-c", "printf %s \"$X\""],
            &[],
        );
        assert_eq!(String::from_utf8_lossy(&run.stdout), "1", "{shell}: {}", String::from_utf8_lossy(&run.stderr));

        // The multi-line scripts run as root in the "VM": here, reset's listing of the upper.
        let run = t.args(["--profile", "box", "reset"]).run();
        assert_eq!(run.code(), 1, "{shell}: {}", run.stderr());
        assert!(
            run.stderr().contains("will be lost") && run.stderr().contains("notes.txt"),
            "{shell}: {}",
            run.stderr()
        );
    }
}

#[test]
fn ssh_reaches_an_ssh_backend_host_and_remembers_its_key() {
    let Some(sshd) = Sshd::start() else { return };
    let profile = format!(
        "name: box\nextends: default\nvm: {{backend: ssh, ssh: {{host: 127.0.0.1, port: {}, user: root, identity_file: {}}}}}\n",
        sshd.port,
        sshd.key.display()
    );
    let t = Test::new().profile("box", &profile);
    let run = t.args(["--profile", "box", "ssh", "--", "echo", "reached"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.stdout(), "reached\n");
    let known = std::fs::read_to_string(run.home.join(".local/state/sandbox/known_hosts")).expect("known_hosts");
    assert!(known.contains("ssh-ed25519"), "{known}");
}

/// An overlay upper at the path the rendered mount units give a workspace named `name`, on
/// this machine (the "VM" the test's sshd serves); removed on drop.
struct Upper(PathBuf);

impl Upper {
    fn new(name: &str) -> Upper {
        let path = PathBuf::from(format!("/var/lib/sandbox/overlay/{name}/upper"));
        std::fs::create_dir_all(&path).expect("upper");
        Upper(path)
    }
}

impl Drop for Upper {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().expect("workspace dir"));
    }
}

#[test]
fn sync_pulls_the_overlay_from_the_vm_over_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let name = format!("t{}", std::process::id());
    let t = Test::new().file("project/a.txt", "A\n").file("project/old.txt", "old\n");
    let project = t.project();
    let profile = ssh_profile(&sshd, &project, &name);
    let t = t.profile("box", &profile);
    let upper = Upper::new(&name);
    std::fs::write(upper.0.join("a.txt"), "A2\n").expect("write");
    std::fs::write(upper.0.join("new.txt"), "new\n").expect("write");
    // A whiteout, as overlayfs records a deletion.
    let made = std::process::Command::new("mknod").arg(upper.0.join("old.txt")).args(["c", "0", "0"]).status();
    assert!(made.expect("mknod").success());

    // The same test home for every step: baseline, then sync from the VM.
    let home = t.home();
    let run_in = |args: &[&str]| crate::test::sandbox_in(&home, &project, args, &[]);
    let out = run_in(&["baseline", "."]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_in(&["--profile", "box", "sync", "--to", ".", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read_to_string(project.join("a.txt")).expect("a"), "A2\n");
    assert_eq!(std::fs::read_to_string(project.join("new.txt")).expect("new"), "new\n");
    assert!(!project.join("old.txt").exists(), "the whiteout deleted it");

    // A secret planted in the VM is refused; the host is untouched.
    std::fs::write(upper.0.join("conf.txt"), concat!("token = gh", "p_0123456789abcdefghijklmnopqrstuvwxyz\n"))
        .expect("write");
    let out = run_in(&["--profile", "box", "sync", "--to", ".", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!project.join("conf.txt").exists());
    drop(t);
}

#[test]
fn sync_from_a_vm_without_the_upper_says_what_is_missing() {
    let Some(sshd) = Sshd::start() else { return };
    let name = format!("missing{}", std::process::id());
    let t = Test::new().file("project/a.txt", "A\n");
    let profile = ssh_profile(&sshd, &t.project(), &name);
    let run = t.profile("box", &profile).args(["--profile", "box", "sync", "--to", ".", "--yes"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("there is no overlay upper at /var/lib/sandbox/overlay/missing"), "{}", run.stderr());
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
}

#[test]
fn status_of_a_lima_vm_that_is_not_running() {
    let run = with_vm(Some("Stopped")).args(["status"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.stdout(), "VM `default` (lima): stopped\n");
    let run = with_vm(None).args(["status", "--json"]).run();
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(json["state"], "absent");
}

#[test]
fn status_reports_pending_changes_services_firewall_and_gateway_over_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let name = format!("s{}", std::process::id());
    let t = Test::new().file("project/a.txt", "A\n");
    let profile = ssh_profile(&sshd, &t.project(), &name);
    let upper = Upper::new(&name);
    std::fs::create_dir(upper.0.join("d")).expect("mkdir");
    std::fs::write(upper.0.join("d/x"), "12345").expect("write");
    std::fs::write(upper.0.join("y"), "678").expect("write");
    let run = t.profile("box", &profile).args(["--profile", "box", "status", "--json"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(json["state"], "reachable");
    assert_eq!(json["workspaces"][0]["entries"], 3, "{json}");
    assert_eq!(json["workspaces"][0]["bytes"], 8, "{json}");
    // This machine runs none of the VM's services: each is reported, not guessed.
    let units: Vec<&str> =
        json["units"].as_array().expect("units").iter().map(|u| u[0].as_str().expect("name")).collect();
    let view = format!("mnt-sandbox-view-{}.mount", name.replace('-', "\\x2d"));
    assert_eq!(
        units,
        [
            "openclaw-gateway.service",
            "sandbox-overlay-audit.service",
            "squid.service",
            "openclaw/podman.socket",
            view.as_str(),
            "workspace.mount"
        ]
    );
    assert!(json["units"][0][1].as_str().is_some_and(|s| s != "active"), "{json}");
    // A unit of the service user's own systemd: there is no such user here.
    assert!(json["units"][3][1].as_str().is_some_and(|s| s != "active"), "{json}");
    assert!(json["firewall"].is_string() && json["gateway"].is_string(), "{json}");
    assert_ne!(json["gateway"], "ok", "no gateway listens here");
    // The policy is the profile's; this machine does not enforce it, and status says which files
    // differ (or are missing) instead of claiming it does.
    let egress = &json["egress"];
    assert_eq!(
        egress["domains"],
        serde_json::json!([
            "api.anthropic.com",
            "api.openai.com",
            "registry.npmjs.org",
            "github.com",
            "api.github.com"
        ]),
        "{json}"
    );
    let stale: Vec<&str> =
        egress["stale"].as_array().expect("stale").iter().map(|v| v.as_str().expect("path")).collect();
    assert!(stale.contains(&"/etc/ufw/before.rules") && stale.contains(&"/etc/squid/squid.conf"), "{json}");
    let text = crate::test::sandbox_in(&run.home, &run.home, &["--profile", "box", "status"], &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("in force in the VM: no, /etc/squid/squid.conf"), "{stdout}");
}

#[test]
fn an_unreachable_vm_is_reported_with_sshs_own_words() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let profile = format!(
        "name: box\nextends: default\nvm: {{backend: ssh, ssh: {{host: 127.0.0.1, port: {port}, user: dev}}}}\n"
    );
    let run = Test::new().profile("box", &profile).args(["--profile", "box", "status"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("failed (exit status 255)") && err.contains("Connection refused"), "{err}");
    assert!(err.lines().count() < 12, "the remote script is not dumped into the message:\n{err}");
}

/// A port on 127.0.0.1 nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

fn unreachable_profile(port: u16) -> String {
    format!("name: box\nextends: default\nvm: {{backend: ssh, ssh: {{host: 127.0.0.1, port: {port}, user: dev}}}}\n")
}

#[test]
fn up_gives_up_on_ssh_after_the_timeout_with_sshs_words() {
    let t = Test::new().profile("box", &unreachable_profile(closed_port()));
    let run = t.args(["--profile", "box", "up", "--ssh-timeout", "1"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("the VM did not answer SSH within 1 s") && err.contains("Connection refused"), "{err}");
    assert!(err.contains("--ssh-timeout waits longer"), "{err}");
    assert!(!run.home.join(".local/state/sandbox/instances/box/provisioned").exists());
}

#[test]
fn up_stops_at_once_when_ssh_refuses_the_key() {
    let Some(sshd) = Sshd::start() else { return };
    let t = Test::new();
    let other = t.home().join("other_key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let profile = format!(
        "name: box\nextends: default\nvm: {{backend: ssh, ssh: {{host: 127.0.0.1, port: {}, user: root, identity_file: {}}}}}\n",
        sshd.port,
        other.display()
    );
    let started = std::time::Instant::now();
    let run = t.profile("box", &profile).args(["--profile", "box", "up", "--ssh-timeout", "120"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("SSH to the VM was refused") && run.stderr().contains("Permission denied"),
        "{}",
        run.stderr()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "a refused key is not retried until the timeout");
}

#[test]
fn a_failing_playbook_names_the_task_the_host_and_the_log() {
    if which("ansible-playbook").is_none() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: ansible-playbook is not installed (CI installs ansible-core)");
        }
        return;
    }
    let Some(sshd) = Sshd::start_with(true) else { return };
    let t = Test::new();
    let profile = ssh_profile(&sshd, &t.project(), "ws");
    let run = t.profile("box", &profile).args(["--profile", "box", "up"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("provisioning failed (ansible-playbook exit status"), "{err}");
    assert!(err.contains("task `Gathering Facts` on host `box`"), "{err}");
    assert!(err.contains("provisioning this machine is refused"), "Ansible's own message: {err}");
    let log = err.split("full log: ").nth(1).and_then(|l| l.lines().next()).expect("log path");
    let log = log.replace(crate::test::HOME_PLACEHOLDER, &run.home.display().to_string());
    let text = std::fs::read_to_string(&log).expect("the log exists");
    assert!(text.contains("PLAY RECAP") && text.contains("$ ansible-playbook -i "), "{text}");
    let state = run.home.join(".local/state/sandbox/instances/box");
    assert!(state.join("rendered/ansible/inventory.yml").is_file() && state.join("ansible/site.yml").is_file());
    assert!(!state.join("provisioned").exists(), "a failed run is never recorded as provisioned");
}

#[test]
fn up_creates_and_starts_a_lima_vm_from_the_rendered_yaml() {
    let Some(sshd) = Sshd::start_with(true) else { return };
    let t = with_vm(None);
    let config = format!(
        "Host lima-default\n  Hostname 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
         StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
        sshd.port,
        sshd.key.display()
    );
    let config_path = t.home().join("lima-ssh.config");
    std::fs::write(&config_path, config).expect("ssh config");
    let t = t.env("FAKE_LIMA_SSH_CONFIG", &config_path.display().to_string());
    let run = t.args(["up", "--ssh-timeout", "20"]).run();
    let home = run.home.clone();
    let log = calls(&home);
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("limactl --tty=false create --name default -")), "{log}");
    assert!(lines.iter().any(|l| l.starts_with("limactl --tty=false start ") && l.ends_with(" default")), "{log}");
    let created = std::fs::read_to_string(lima_home(&home).join("default.stdin")).expect("stdin of create");
    let rendered =
        std::fs::read_to_string(home.join(".local/state/sandbox/instances/default/rendered/lima/default.yaml"))
            .expect("rendered");
    assert_eq!(created, rendered, "Lima gets exactly the rendered instance");
    assert_eq!(status(&home).as_deref(), Some("Running"));
    // SSH reached the VM (through the instance's ssh.config); provisioning then ran and failed on
    // the refusing sshd, or was skipped for want of ansible-playbook.
    if which("ansible-playbook").is_some() {
        assert!(run.stderr().contains("task `Gathering Facts` on host `default`"), "{}", run.stderr());
    } else {
        assert!(run.stderr().contains("install Ansible"), "{}", run.stderr());
    }
}

#[test]
fn up_refuses_a_profile_change_an_existing_lima_vm_cannot_take() {
    let t = with_vm(Some("Running"))
        .file(".local/state/sandbox/instances/default/lima.yaml", "cpus: 1\nmemory: 1GiB\nvmType: vz\n");
    let run = t.args(["up"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("was created from a profile with other settings for these keys"), "{err}");
    assert!(
        err.contains("`cpus`") && err.contains("`memory`") && err.contains("`sandbox destroy` and `sandbox up`"),
        "{err}"
    );
    let log = calls(&run.home);
    assert!(!log.contains("limactl start") && !log.contains("limactl create"), "nothing was changed: {log}");
}

/// A test with the VM `default` in `status`, on record with the default profile's rendered
/// instance file but other `cpus` and `memory`; and that rendered file.
fn vm_with_other_cpus_and_memory(status: &str) -> (Test, String) {
    let t = with_vm(Some(status));
    let out = t.home().join("rendered");
    let run = crate::test::sandbox_in(&t.home(), &t.project(), &["render", "--out", &out.display().to_string()], &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let rendered = std::fs::read_to_string(out.join("lima/default.yaml")).expect("rendered");
    let mut other: String = rendered
        .lines()
        .map(|l| match l {
            _ if l.starts_with("cpus: ") => "cpus: 1",
            _ if l.starts_with("memory: ") => "memory: \"1GiB\"",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    other.push('\n');
    assert_ne!(rendered, other, "the render has top-level cpus and memory");
    (t.file(LIMA_RECORD, &other), rendered)
}

const LIMA_RECORD: &str = ".local/state/sandbox/instances/default/lima.yaml";

#[test]
fn up_gives_a_stopped_lima_vm_the_profiles_new_cpus_and_memory() {
    let (t, rendered) = vm_with_other_cpus_and_memory("Stopped");
    let values = serde_yaml::from_str::<serde_yaml::Mapping>(&rendered).expect("yaml");
    let cpus = values["cpus"].as_u64().expect("cpus");
    let memory = serde_json::json!(values["memory"].as_str().expect("memory"));
    let run = t.args(["up", "--ssh-timeout", "1"]).run();
    let log = calls(&run.home);
    let edit = log.lines().position(|l| l.starts_with("limactl --tty=false edit --set "));
    let start = log.lines().position(|l| l.starts_with("limactl --tty=false start "));
    assert!(edit.is_some() && edit < start, "edited, then started: {log}\n{}", run.stderr());
    let edits = std::fs::read_to_string(lima_home(&run.home).join("default/edits")).expect("edits");
    assert_eq!(edits, format!(".cpus = {cpus} | .memory = {memory}\n"));
    assert_eq!(std::fs::read_to_string(run.home.join(LIMA_RECORD)).expect("record"), rendered, "now on record");
    assert!(!log.contains(" create ") && !log.contains(" delete "), "the VM is kept: {log}");
}

#[test]
fn up_asks_to_stop_a_running_lima_vm_for_new_cpus_and_memory() {
    let (t, _) = vm_with_other_cpus_and_memory("Running");
    let before = std::fs::read_to_string(t.home().join(LIMA_RECORD)).expect("record");
    let run = t.args(["up"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("gives the running VM `default` new `cpus` and `memory`"), "{err}");
    assert!(err.contains("`sandbox down`, then `sandbox up`"), "{err}");
    let log = calls(&run.home);
    assert!(!log.contains(" edit ") && !log.contains(" stop ") && !log.contains(" start "), "{log}");
    assert_eq!(std::fs::read_to_string(run.home.join(LIMA_RECORD)).expect("record"), before, "unchanged");
}

#[test]
fn a_failed_lima_edit_keeps_the_old_settings_on_record_and_the_vm_stopped() {
    let (t, _) = vm_with_other_cpus_and_memory("Stopped");
    let before = std::fs::read_to_string(t.home().join(LIMA_RECORD)).expect("record");
    let run = t.file(".local/state/sandbox/lima/fail-edit", "").args(["up"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("`limactl --tty=false edit --set ") && err.contains("YAML is invalid"), "{err}");
    assert!(!calls(&run.home).contains(" start "), "{}", calls(&run.home));
    assert_eq!(std::fs::read_to_string(run.home.join(LIMA_RECORD)).expect("record"), before);
    assert_eq!(status(&run.home).as_deref(), Some("Stopped"));
    assert!(!run.home.join("project/lima.REJECTED.yaml").exists(), "nothing left where sandbox ran");
    assert!(lima_home(&run.home).join("lima.REJECTED.yaml").exists(), "Lima's rejected file is in sandbox's LIMA_HOME");
}

#[test]
fn ctrl_c_during_up_exits_130_and_says_how_to_resume() {
    let t = Test::new().profile("box", &unreachable_profile(closed_port()));
    let (child, _dir) = t.args(["--profile", "box", "up", "--ssh-timeout", "120"]).spawn();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).expect("pid"),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted during `wait for SSH`") && err.contains("resumes"), "{err}");
}

#[test]
fn reset_lists_what_would_be_lost_and_needs_a_confirmation() {
    let Some(sshd) = Sshd::start() else { return };
    let t = Test::new();
    let name = format!("reset-{}", std::process::id());
    let upper = Upper::new(&name);
    std::fs::write(upper.0.join("notes.txt"), "agent work\n").expect("write");
    std::fs::create_dir(upper.0.join("src")).expect("mkdir");
    let profile = ssh_profile(&sshd, &t.project(), &name);
    let run = t.profile("box", &profile).args(["--profile", "box", "reset"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("will be lost") && err.contains("2 entries"), "{err}");
    assert!(err.contains("notes.txt") && err.contains("src"), "{err}");
    assert!(err.contains("needs a confirmation") && err.contains("--force"), "{err}");
    assert!(upper.0.join("notes.txt").exists(), "nothing was discarded");
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

#[test]
fn lima_refusing_root_is_said_plainly() {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let path = format!("{}:{}", fake_bin().display(), std::env::var("PATH").unwrap_or_default());
    let run = Test::new().env("PATH", &path).args(["up"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("limactl refuses to run as root") && run.stderr().contains("your own user"),
        "{}",
        run.stderr()
    );
}

#[test]
fn up_without_ansible_playbook_says_how_to_install_it() {
    let Some(sshd) = Sshd::start_with(true) else { return };
    let t = Test::new();
    // A PATH with ssh and nothing else: ansible-playbook is missing, as on a fresh Mac.
    let bin = t.home().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let ssh = which("ssh").expect("ssh is installed");
    std::os::unix::fs::symlink(ssh, bin.join("ssh")).expect("symlink");
    let profile = ssh_profile(&sshd, &t.project(), "ws");
    let run = t.profile("box", &profile).env("PATH", &bin.display().to_string()).args(["--profile", "box", "up"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("ansible-playbook") && err.contains("pipx install ansible-core"), "{err}");
    assert!(!run.home.join(".local/state/sandbox/instances/box/provisioned").exists());
}
