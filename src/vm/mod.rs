//! The VM's lifecycle as the user drives it: `up` and `reset` (in `up.rs`), `down`, `destroy`,
//! `status`, `ssh`, `doctor`, and the export `sync` reads. The `lima` backend goes through
//! [`crate::lima::driver`]; the `ssh` backend's host is not owned by `sandbox`.

mod gateway;
mod up;

pub(crate) use up::{Discard, Event, Provisioned, UpOptions, reset, up};

use std::path::{Path, PathBuf};

use crate::exec::{ANSIBLE_PLAYBOOK, ExecError, Invocation, LIMACTL, SSH, Tool};
use crate::lima::driver::{Lima, LimaError, Status};
use crate::profile::{Backend, Profile};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub(crate) enum VmError {
    #[error(transparent)]
    Lima(#[from] LimaError),

    #[error(transparent)]
    Exec(#[from] ExecError),

    #[error("`{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("`{}` is not a workspace of profile `{profile}`\n  help: sync into one of the profile's `workspaces[].host` folders", host.display())]
    NotAWorkspace { host: PathBuf, profile: String },

    #[error(
        "reading {what} failed: {message}\n  help: check the VM with `sandbox ssh`; the export runs as root (`sudo -n` for a non-root login)"
    )]
    Export { what: String, message: String },

    #[error("there is no VM `{name}` (looked in `{}`)\n  help: `sandbox up` creates it", home.display())]
    NoVm { name: String, home: PathBuf },

    #[error(
        "`sandbox {command}` manages Lima VMs; profile `{profile}` uses the ssh backend, whose host sandbox does not own\n  help: {help}"
    )]
    NotOwned { command: &'static str, profile: String, help: &'static str },

    #[error("the VM `{name}` is {status}\n  help: `sandbox up` starts it")]
    NotRunning { name: String, status: String },

    #[error(transparent)]
    Render(#[from] crate::render::RenderError),

    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),

    #[error(transparent)]
    Sync(#[from] crate::sync::error::SyncError),

    #[error("another `sandbox up` or `reset` of `{name}` is running (it holds `{}`)\n  help: wait for it to finish", lock.display())]
    Busy { name: String, lock: PathBuf },

    #[error("interrupted during `{step}`\n  help: run `sandbox up` again: it resumes where this run stopped")]
    Interrupted { step: &'static str },

    #[error(
        "the VM `{name}` was created from a profile with other {}: {}\n  help: an existing Lima VM keeps these (only `cpus` and `memory` can change); to apply the change, sync what you need (`sandbox sync`), then `sandbox destroy` and `sandbox up`, or undo the profile change",
        if keys.len() == 1 { "settings for this key" } else { "settings for these keys" },
        ticked(keys, ", ")
    )]
    Incompatible { name: String, keys: Vec<String> },

    #[error(
        "the profile gives the running VM `{name}` new {}; Lima applies them when the VM starts\n  help: `sandbox down`, then `sandbox up` (it applies them and starts the VM)",
        ticked(keys, " and ")
    )]
    StopToApply { name: String, keys: Vec<String> },

    #[error(
        "the VM `{name}` is {status}\n  help: `sandbox down` stops it; if it stays {status}, `sandbox destroy` and `sandbox up` make a new one"
    )]
    Broken { name: String, status: String },

    #[error(
        "SSH to the VM was refused: `{command}`\n{stderr}\n  help: check `vm.ssh.user` and `vm.ssh.identity_file`; a changed host key is in sandbox's own known_hosts under the state dir"
    )]
    SshRefused { command: String, stderr: String },

    #[error(
        "the VM did not answer SSH within {seconds} s: `{command}`\n{stderr}\n  help: check that it runs (`sandbox status`) and that `vm.ssh` host and port reach its sshd; --ssh-timeout waits longer"
    )]
    SshTimeout { command: String, seconds: u64, stderr: String },

    #[error(transparent)]
    Provision(Box<ProvisionFailure>),

    #[error(
        "the VM is provisioned but not healthy: {}\n  help: `sandbox status` shows every service; `sandbox ssh -- sudo journalctl -u UNIT` shows why one failed",
        failed.join("; ")
    )]
    Unhealthy { failed: Vec<String> },

    #[error(
        "{problem}\n{}  help: {help}; `sandbox ssh -- sudo journalctl -u openclaw-gateway.service` shows more",
        if journal.trim().is_empty() { String::new() } else { format!("  the gateway's last log lines:\n{}", journal.lines().map(|l| format!("    {l}\n")).collect::<String>()) }
    )]
    GatewayUnhealthy { problem: String, journal: String, help: String },

    #[error(
        "resetting the VM `{name}` discards every change the agent made that was not synced, and needs a confirmation\n  help: run it in a terminal, or pass --force"
    )]
    ResetNeedsConfirmation { name: String },

    #[error(
        "destroying the VM `{name}` deletes its disk and every change not synced yet, and needs a confirmation\n  help: run it in a terminal, or pass --force"
    )]
    NeedsConfirmation { name: String },
}

/// A failed `ansible-playbook` run: the task and host Ansible reported, and where the log is.
#[derive(Debug, thiserror::Error)]
#[error(
    "provisioning failed{}: task `{task}` on host `{host}`: {message}\n  command: {command}\n  full log: {}\n  help: fix the cause and run `sandbox up` again; it resumes (add --verbose to watch Ansible)",
    code.map_or_else(|| " (killed by a signal)".to_owned(), |c| format!(" (ansible-playbook exit status {c})")),
    log.display()
)]
pub(crate) struct ProvisionFailure {
    pub(crate) command: String,
    pub(crate) code: Option<i32>,
    pub(crate) task: String,
    pub(crate) host: String,
    pub(crate) message: String,
    pub(crate) log: PathBuf,
}

/// Where `sandbox` keeps its Lima VMs (its own `LIMA_HOME`; see `lima::driver`).
pub(crate) fn lima_home(state_dir: &Path) -> PathBuf {
    crate::sync::store::root(state_dir).join("lima")
}

fn lima_for(profile: &Profile, state_dir: &Path, command: &'static str) -> Result<Lima, VmError> {
    match profile.vm.backend {
        Backend::Lima => Ok(Lima::new(&lima_home(state_dir))),
        Backend::Ssh => Err(VmError::NotOwned {
            command,
            profile: profile.name.clone(),
            help: "stop or remove the host with the tools that manage it",
        }),
    }
}

/// What `down` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Down {
    Stopped,
    AlreadyStopped(String),
}

/// Stop the profile's VM (its disk, overlay and pending changes stay).
pub(crate) fn down(profile: &Profile, state_dir: &Path) -> Result<Down, VmError> {
    let lima = lima_for(profile, state_dir, "down")?;
    let Some(vm) = lima.instance(&profile.name)? else {
        return Err(VmError::NoVm { name: profile.name.clone(), home: lima.home().to_path_buf() });
    };
    match vm.status {
        Status::Running => {
            lima.stop(&profile.name, false)?;
            Ok(Down::Stopped)
        }
        Status::Stopped => Ok(Down::AlreadyStopped("already stopped".into())),
        // Half-booted or broken: only a forced stop gets it down.
        other => {
            lima.stop(&profile.name, true)?;
            Ok(Down::AlreadyStopped(format!("was {}; force-stopped", other.as_str())))
        }
    }
}

/// Delete the profile's VM and its disk. `confirm` is asked (with what will be lost) unless
/// `force`; it returns `None` when there is no one to ask.
pub(crate) fn destroy(
    profile: &Profile,
    state_dir: &Path,
    force: bool,
    confirm: &mut dyn FnMut(&str) -> Option<bool>,
) -> Result<bool, VmError> {
    let lima = lima_for(profile, state_dir, "destroy")?;
    let Some(vm) = lima.instance(&profile.name)? else {
        return Err(VmError::NoVm { name: profile.name.clone(), home: lima.home().to_path_buf() });
    };
    if !force {
        let question = format!(
            "Destroy the VM `{}` ({}) and its disk? Changes the agent made that were not synced are lost",
            vm.name,
            vm.status.as_str()
        );
        match confirm(&question) {
            None => return Err(VmError::NeedsConfirmation { name: vm.name }),
            Some(false) => return Ok(false),
            Some(true) => {}
        }
    }
    lima.delete(&vm.name)?;
    Ok(true)
}

/// Profile keys as the messages quote them: `a`, `b`.
fn ticked(keys: &[String], separator: &str) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(separator)
}

/// The `ssh` command line that reaches the profile's VM (and runs `command` there, each word
/// passed through exactly: they are quoted for the remote shell).
pub(crate) fn ssh(profile: &Profile, state_dir: &Path, command: &[String]) -> Result<Invocation, VmError> {
    ssh_with(profile, state_dir, &[], command)
}

/// [`ssh`] with extra `-o` options (`ConnectTimeout=...`), which must come before the target.
pub(crate) fn ssh_with(
    profile: &Profile,
    state_dir: &Path,
    options: &[&str],
    command: &[String],
) -> Result<Invocation, VmError> {
    let mut inv = Invocation::new(SSH);
    for option in options {
        inv = inv.arg("-o").arg(option);
    }
    match profile.vm.backend {
        Backend::Lima => {
            let lima = Lima::new(&lima_home(state_dir));
            let Some(vm) = lima.instance(&profile.name)? else {
                return Err(VmError::NoVm { name: profile.name.clone(), home: lima.home().to_path_buf() });
            };
            let config = match (&vm.status, &vm.ssh_config) {
                (Status::Running, Some(config)) => config.clone(),
                (status, _) => return Err(VmError::NotRunning { name: vm.name, status: status.as_str().to_owned() }),
            };
            inv = inv.arg("-F").arg(config).arg(&vm.hostname);
        }
        Backend::Ssh => {
            let Some(target) = &profile.vm.ssh else {
                return Err(VmError::NotOwned { command: "ssh", profile: profile.name.clone(), help: "set `vm.ssh`" });
            };
            inv = inv.arg("-p").arg(target.port.to_string()).args(ssh_backend_options(profile, state_dir)?);
            if let Some(key) = &target.identity_file {
                inv = inv.arg("-i").arg(key);
            }
            inv = inv.arg(format!("{}@{}", target.user, target.host));
        }
    }
    if !command.is_empty() {
        let (line, sent) = remote_command_line(command);
        inv = inv.arg("--").arg_shown(sent, &line);
    }
    Ok(inv)
}

/// The command as a POSIX shell line, and what sshd hands to the login user's shell for it.
/// That shell may be fish or tcsh as well as sh, bash or zsh, which read a line differently (a
/// newline, a backslash, `!`, `VAR=value cmd`, their own builtins), so the line goes
/// base64-encoded, a plain word to every shell, for sh to decode and run. Messages show the line.
fn remote_command_line(command: &[String]) -> (String, String) {
    use base64::Engine as _;
    let line = command.iter().map(|w| crate::exec::shell_word(w)).collect::<Vec<_>>().join(" ");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&line);
    // `&&`: a decode that fails (no base64 in the VM) fails the command instead of running
    // nothing, or part of it, with exit status 0.
    let sent = format!("sh -c 'c=$(printf %s \"$0\" | base64 -d) && eval \"$c\"' {encoded}");
    (line, sent)
}

/// The `-o` options every ssh to an ssh-backend host carries (`sandbox ssh`, `sync`, Ansible).
/// Host keys are trusted on first use, in a known_hosts file of sandbox's own: the user's is not
/// changed, and a host key that changes later is refused by ssh. With a key file, only that key.
pub(crate) fn ssh_backend_options(profile: &Profile, state_dir: &Path) -> Result<Vec<String>, VmError> {
    let root = crate::sync::store::root(state_dir);
    std::fs::create_dir_all(&root).map_err(|source| VmError::Io { path: root.clone(), source })?;
    let mut options = vec![
        "-o".to_owned(),
        "StrictHostKeyChecking=accept-new".to_owned(),
        "-o".to_owned(),
        format!("UserKnownHostsFile={}", root.join("known_hosts").display()),
    ];
    if profile.vm.ssh.as_ref().is_some_and(|s| s.identity_file.is_some()) {
        options.extend(["-o".to_owned(), "IdentitiesOnly=yes".to_owned()]);
    }
    Ok(options)
}

/// Streams the overlay upper of a workspace, as root in the VM: a header line with the entry
/// count and byte total, then the PAX tar (with overlay xattrs) of the upper. `$1` is the upper.
/// A stream that changes while it is read fails the gate's completeness check (nothing is
/// applied); the agent should be idle during a sync.
const EXPORT_SCRIPT: &str = r#"set -eu
u=$1
[ -d "$u" ] || { echo "sandbox-export: there is no overlay upper at $u" >&2; exit 3; }
cd "$u"
n=$(find . -mindepth 1 -printf x | wc -c)
b=$(find . -type f -printf '%s
' | awk '{ s += $1 } END { printf "%d", s }')
printf 'sandbox-export %s %s
' "$n" "$b"
exec tar --xattrs --xattrs-include='*' --numeric-owner -C "$u" -cf - .
"#;

/// Run the export as root: directly when the login user is root, else through `sudo -n`.
const AS_ROOT: &str = r#"s=$1; shift; if [ "$(id -u)" = 0 ]; then exec sh -c "$s" sandbox "$@"; else exec sudo -n sh -c "$s" sandbox "$@"; fi"#;

/// The remote command running `script` as root with `args` as its `$1...`.
pub(crate) fn as_root(script: &str, args: impl IntoIterator<Item = String>) -> Vec<String> {
    ["sh", "-c", AS_ROOT, "sandbox", script].map(str::to_owned).into_iter().chain(args).collect()
}

/// The longest header line the export prints.
const HEADER_MAX: usize = 128;

/// Start streaming the overlay upper of the workspace at `host` out of the profile's VM.
pub(crate) fn export(profile: &Profile, state_dir: &Path, host: &Path) -> Result<crate::sync::gate::Stream, VmError> {
    let canonical = std::fs::canonicalize(host).map_err(|source| VmError::Io { path: host.to_path_buf(), source })?;
    let Some(ws) = profile.workspaces.iter().find(|w| w.host == canonical) else {
        return Err(VmError::NotAWorkspace { host: canonical, profile: profile.name.clone() });
    };
    let upper = format!("{}/{}/upper", crate::render::context::OVERLAY_ROOT, ws.name);
    let command = as_root(EXPORT_SCRIPT, [upper.clone()]);
    let inv = ssh(profile, state_dir, &command)?;
    let what = format!("the VM's export of {upper}");
    let mut reader = inv.reader()?;
    let header =
        read_header(&mut reader).map_err(|e| VmError::Export { what: what.clone(), message: e.to_string() })?;
    let parsed = header
        .strip_prefix("sandbox-export ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, b)| Some((n.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    let Some((entries, bytes)) = parsed else {
        return Err(VmError::Export {
            what,
            message: format!("unexpected first line {:?}", crate::ui::sanitize(&header)),
        });
    };
    Ok(crate::sync::gate::Stream { what, entries, bytes, reader: std::sync::Mutex::new(Some(Box::new(reader))) })
}

/// The first line of `reader`, read byte by byte so nothing after it is consumed.
fn read_header(reader: &mut impl std::io::Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < HEADER_MAX {
        if reader.read(&mut byte)? == 0 {
            return Err(std::io::Error::other("the stream ended before its header"));
        }
        if byte[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(byte[0]);
    }
    Err(std::io::Error::other("no header line"))
}

/// Reports, as root in the VM, one `key value...` line per fact: each upper's entry count and
/// bytes, each unit's state, each network policy file's sha256, the firewall and the gateway's
/// health. `$1` is the gateway port, then `--uppers`, `--units` and `--policy` lists.
const STATUS_SCRIPT: &str = r#"set -u
port=$1; shift
mode=
for a in "$@"; do
  case "$a" in
    --uppers|--units|--policy) mode=$a; continue ;;
  esac
  if [ "$mode" = --policy ]; then
    if [ -r "$a" ]; then echo "policy $a $(sha256sum < "$a" | cut -d ' ' -f 1)"; else echo "policy $a missing"; fi
  elif [ "$mode" = --uppers ]; then
    if [ -d "$a" ]; then
      n=$(find "$a" -mindepth 1 -printf x | wc -c)
      b=$(find "$a" -type f -printf '%s
' | awk '{ s += $1 } END { printf "%d", s }')
      echo "upper $a $n $b"
    else
      echo "upper $a missing"
    fi
  else
    if ! command -v systemctl >/dev/null 2>&1; then
      echo "unit $a unknown"
    elif [ "${a#*/}" != "$a" ]; then
      # USER/UNIT: a unit of that user's own systemd instance.
      echo "unit $a $(systemctl --user --machine="${a%%/*}@" is-active "${a#*/}" 2>/dev/null || true)"
    else
      echo "unit $a $(systemctl is-active "$a" 2>/dev/null || true)"
    fi
  fi
done
if command -v ufw >/dev/null 2>&1; then
  echo "firewall $(ufw status 2>/dev/null | head -n 1 | sed 's/^Status: //')"
else
  echo "firewall not-installed"
fi
if command -v curl >/dev/null 2>&1; then
  # Three tries, 10 s each: a gateway still busy with its start-up work (seconds on an emulated
  # CPU) answers late, not never. A stopped one refuses at once, so this stays quick.
  g=unreachable
  for _ in 1 2 3; do
    if curl -fsS -m 10 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then g=ok; break; fi
    sleep 1
  done
  echo "gateway $g"
else
  echo "gateway unknown"
fi
"#;

/// ssh options for the round trips of a wait: no prompt, and a hung connection ends well within
/// the wait's own timeout.
const WAIT_SSH_OPTIONS: [&str; 4] =
    ["BatchMode=yes", "ConnectTimeout=10", "ServerAliveInterval=5", "ServerAliveCountMax=2"];

pub(crate) const GATEWAY_UNIT: &str = "openclaw-gateway.service";
pub(crate) const AUDIT_UNIT: &str = "sandbox-overlay-audit.service";
pub(crate) const PROXY_UNIT: &str = "squid.service";
/// The tool containers' engine: the service user's rootless Podman, socket-activated in that
/// user's systemd instance (`USER/UNIT` in the status script).
pub(crate) const ENGINE_UNIT: &str = "podman.socket";

/// What `status` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct VmStatus {
    pub(crate) name: String,
    pub(crate) backend: &'static str,
    /// `running`, `stopped`, ... (for an ssh host: `reachable`).
    pub(crate) state: String,
    pub(crate) workspaces: Vec<Pending>,
    pub(crate) units: Vec<(String, String)>,
    pub(crate) firewall: Option<String>,
    pub(crate) gateway: Option<String>,
    /// The profile's egress policy, and whether the VM enforces exactly it.
    pub(crate) egress: Option<EgressStatus>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct EgressStatus {
    /// `network.egress.allow_domains`: reachable through the proxy on ports 80 and 443.
    pub(crate) domains: Vec<String>,
    /// `network.egress.allow` entries, as `CIDR PROTO [PORT]`.
    pub(crate) rules: Vec<String>,
    /// DNS resolvers the VM may query.
    pub(crate) resolvers: Vec<String>,
    /// Policy files in the VM (proxy and firewall) that differ from what the profile renders,
    /// or are missing; empty when the VM enforces the profile's policy.
    pub(crate) stale: Vec<String>,
}

/// Where `up` installs each rendered network policy file in the VM.
const POLICY_FILES: [(&str, &str); 7] = [
    ("/etc/squid/squid.conf", "firewall/squid/squid.conf"),
    ("/etc/ufw/before.rules", "firewall/ufw/before.rules"),
    ("/etc/ufw/user.rules", "firewall/ufw/user.rules"),
    ("/etc/ufw/after.rules", "firewall/ufw/after.rules"),
    ("/etc/ufw/before6.rules", "firewall/ufw/before6.rules"),
    ("/etc/ufw/user6.rules", "firewall/ufw/user6.rules"),
    ("/etc/ufw/after6.rules", "firewall/ufw/after6.rules"),
];

/// A workspace's changes in the VM, not synced yet.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Pending {
    pub(crate) host: PathBuf,
    /// The upper's path in the VM.
    pub(crate) upper: String,
    /// Entries in the overlay upper (`None`: no upper there).
    pub(crate) entries: Option<u64>,
    pub(crate) bytes: Option<u64>,
}

/// The profile's VM: its state, and when it runs, pending changes per workspace, service
/// states, the firewall and the gateway's health (one SSH round trip).
pub(crate) fn status(profile: &Profile, state_dir: &Path) -> Result<VmStatus, VmError> {
    let backend = match profile.vm.backend {
        Backend::Lima => "lima",
        Backend::Ssh => "ssh",
    };
    let mut out = VmStatus {
        name: profile.name.clone(),
        backend,
        state: "reachable".into(),
        workspaces: Vec::new(),
        units: Vec::new(),
        firewall: None,
        gateway: None,
        egress: None,
    };
    if profile.vm.backend == Backend::Lima {
        let lima = Lima::new(&lima_home(state_dir));
        match lima.instance(&profile.name)? {
            None => {
                out.state = "absent".into();
                return Ok(out);
            }
            Some(vm) if vm.status != Status::Running => {
                out.state = vm.status.as_str().to_owned();
                return Ok(out);
            }
            Some(_) => out.state = "running".into(),
        }
    }
    let uppers: Vec<(PathBuf, String)> = profile
        .workspaces
        .iter()
        .map(|w| (w.host.clone(), format!("{}/{}/upper", crate::render::context::OVERLAY_ROOT, w.name)))
        .collect();
    let ctx = crate::render::context::Context::new(profile);
    let mut units = vec![GATEWAY_UNIT.to_owned(), AUDIT_UNIT.to_owned(), PROXY_UNIT.to_owned()];
    if ctx.tool_sandbox.mode != "off" {
        units.push(format!("{}/{ENGINE_UNIT}", ctx.paths.service_user));
    }
    for ws in &ctx.overlays {
        units.push(ws.view_unit.clone());
        units.push(ws.mount_unit.clone());
    }
    let args = std::iter::once(profile.gateway.port.to_string())
        .chain(std::iter::once("--uppers".to_owned()))
        .chain(uppers.iter().map(|(_, u)| u.clone()))
        .chain(std::iter::once("--units".to_owned()))
        .chain(units.iter().cloned())
        .chain(std::iter::once("--policy".to_owned()))
        .chain(POLICY_FILES.iter().map(|(vm, _)| (*vm).to_owned()));
    let command = as_root(STATUS_SCRIPT, args);
    let output = ssh(profile, state_dir, &command)?.checked()?;
    let expected = expected_policy(profile)?;
    let mut egress = egress_policy(profile, ctx);
    for line in output.stdout_text().lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["upper", path, "missing"] => {
                if let Some((host, _)) = uppers.iter().find(|(_, u)| u == path) {
                    out.workspaces.push(Pending {
                        host: host.clone(),
                        upper: (*path).to_owned(),
                        entries: None,
                        bytes: None,
                    });
                }
            }
            ["upper", path, n, b] => {
                if let Some((host, _)) = uppers.iter().find(|(_, u)| u == path) {
                    out.workspaces.push(Pending {
                        host: host.clone(),
                        upper: (*path).to_owned(),
                        entries: n.parse().ok(),
                        bytes: b.parse().ok(),
                    });
                }
            }
            ["unit", unit, state @ ..] => out.units.push(((*unit).to_owned(), state.join(" "))),
            ["firewall", rest @ ..] => out.firewall = Some(rest.join(" ")),
            ["gateway", rest @ ..] => out.gateway = Some(rest.join(" ")),
            ["policy", path, hash] if expected.iter().any(|(p, h)| p == path && h != hash) => {
                egress.stale.push((*path).to_owned());
            }
            _ => {}
        }
    }
    out.egress = Some(egress);
    Ok(out)
}

/// The sha256 of each policy file as the profile renders it, by its path in the VM.
fn expected_policy(profile: &Profile) -> Result<Vec<(String, String)>, VmError> {
    let rendered = crate::render::render(profile)?;
    Ok(POLICY_FILES
        .iter()
        .filter_map(|(vm, rel)| {
            let file = rendered.iter().find(|r| r.rel_path == std::path::Path::new(rel))?;
            Some(((*vm).to_owned(), crate::sync::manifest::hex(&Sha256::digest(&file.bytes))))
        })
        .collect())
}

fn egress_policy(profile: &Profile, ctx: crate::render::context::Context) -> EgressStatus {
    let egress = &profile.network.egress;
    EgressStatus {
        domains: egress.allow_domains.iter().map(ToString::to_string).collect(),
        rules: egress
            .allow
            .iter()
            .map(|r| match r.port {
                Some(port) => format!("{} {} {port}", r.cidr, r.proto.as_str()),
                None => format!("{} {} (every port)", r.cidr, r.proto.as_str()),
            })
            .collect(),
        resolvers: ctx.firewall.resolvers,
        stale: Vec::new(),
    }
}

/// One line of `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) level: Level,
    pub(crate) what: String,
    pub(crate) detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Ok,
    Warn,
    Fail,
}

fn check(level: Level, what: impl Into<String>, detail: impl Into<String>) -> Check {
    Check { level, what: what.into(), detail: detail.into() }
}

/// The tool's version line, from stdout or (for `ssh -V`) stderr.
fn tool_version(tool: Tool, arg: &str) -> Result<String, ExecError> {
    let out = Invocation::new(tool).arg(arg).checked()?;
    let text =
        if out.stdout.is_empty() { String::from_utf8_lossy(&out.stderr).into_owned() } else { out.stdout_text() };
    Ok(crate::ui::sanitize(text.lines().next().unwrap_or_default().trim()))
}

fn tool_check(tool: Tool, arg: &str) -> Check {
    let missing = Level::Fail;
    match (crate::exec::which(tool), tool_version(tool, arg)) {
        (Some(path), Ok(version)) => check(Level::Ok, tool.program, format!("{version} ({})", path.display())),
        (_, Err(ExecError::NotFound { .. })) | (None, Err(ExecError::Spawn { .. }) | Ok(_)) => {
            check(missing, tool.program, format!("not installed; {}", tool.install))
        }
        (_, Err(e)) => check(missing, tool.program, format!("does not run: {e}")),
    }
}

/// `limactl --version` is at least 2.0 (the rendered `minimumLimaVersion`).
fn lima_version_ok(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    parts.next().unwrap_or(0) >= 2
}

/// Macs limit a unix socket path to 104 bytes; Lima puts `ssh.sock.<16 chars>` in the
/// instance directory.
const SOCKET_PATH_MAX: usize = 104;

/// Every check `doctor` runs for `profile`.
pub(crate) fn doctor(profile: &Profile, state_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(check(Level::Ok, "profile", format!("`{}` is valid", profile.name)));
    for w in &profile.warnings {
        out.push(check(Level::Warn, "profile", crate::ui::sanitize(&w.to_string())));
    }
    out.push(tool_check(ANSIBLE_PLAYBOOK, "--version"));
    out.push(tool_check(SSH, "-V"));
    match profile.vm.backend {
        Backend::Lima => {
            let lima = Lima::new(&lima_home(state_dir));
            let limactl = match (crate::exec::which(LIMACTL), lima.version()) {
                (Some(path), Ok(v)) if lima_version_ok(&v) => {
                    check(Level::Ok, "limactl", format!("limactl version {v} ({})", path.display()))
                }
                (Some(_), Ok(v)) => {
                    check(Level::Fail, "limactl", format!("version {v}; sandbox needs Lima 2.0 or later"))
                }
                (None, _) | (_, Err(LimaError::Exec(ExecError::NotFound { .. }))) => {
                    check(Level::Fail, "limactl", format!("not installed; {}", LIMACTL.install))
                }
                (Some(_), Err(e)) => check(Level::Fail, "limactl", format!("does not run: {e}")),
            };
            out.push(limactl);
            for path in lima.global_config() {
                out.push(check(
                    Level::Fail,
                    "Lima global config",
                    format!("`{}` would be merged into the VM; remove it", path.display()),
                ));
            }
            let user_config = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".lima/_config"));
            for path in user_config.iter().flat_map(|d| crate::lima::driver::GLOBAL_CONFIG.map(|f| d.join(f))) {
                if path.exists() {
                    out.push(check(
                        Level::Ok,
                        "Lima global config",
                        format!(
                            "`{}` exists but is not used: sandbox keeps its VMs in its own LIMA_HOME",
                            path.display()
                        ),
                    ));
                }
            }
            let socket = lima.home().join(&profile.name).join("ssh.sock.0123456789abcdef");
            let len = socket.as_os_str().len();
            if len >= SOCKET_PATH_MAX {
                out.push(check(
                    Level::Fail,
                    "LIMA_HOME",
                    format!(
                        "`{}` makes Lima's ssh socket path {len} bytes long (the limit is {SOCKET_PATH_MAX}); use a shorter XDG_STATE_HOME or profile name",
                        lima.home().display()
                    ),
                ));
            }
            if rustix::process::geteuid().is_root() {
                out.push(check(
                    Level::Fail,
                    "user",
                    "running as root: limactl refuses to; run sandbox as your own user",
                ));
            }
        }
        Backend::Ssh => {
            if let Some(ssh) = &profile.vm.ssh {
                out.push(check(Level::Ok, "ssh backend", format!("target {}@{}:{}", ssh.user, ssh.host, ssh.port)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_commands_go_encoded_for_sh_and_show_as_the_line() {
        use base64::Engine as _;
        let words = ["printf", "%s|", "a b", "it's", "two\nlines", "back\\slash", "bang!", "=ls"].map(str::to_owned);
        let (line, sent) = remote_command_line(&words);
        assert_eq!(
            line,
            r"printf '%s|' 'a b' 'it'\''s' 'two
lines' 'back\slash' 'bang!' '=ls'"
        );
        let (wrapper, encoded) = sent.rsplit_once(' ').expect("two parts");
        assert_eq!(wrapper, r#"sh -c 'c=$(printf %s "$0" | base64 -d) && eval "$c"'"#);
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
        assert_eq!(String::from_utf8(decoded).expect("utf-8"), line);

        let shown = Invocation::new(SSH).arg("host").arg("--").arg_shown(&sent, &line).display();
        assert!(shown.starts_with("ssh host -- 'printf '\\''%s|'\\''") && shown.ends_with('…'), "{shown}");
        assert!(!shown.contains(encoded), "{shown}");
    }

    #[test]
    fn lima_versions() {
        assert!(lima_version_ok("2.0.0") && lima_version_ok("v2.2.1") && lima_version_ok("10.0"));
        assert!(!lima_version_ok("1.2.3") && !lima_version_ok("garbage"));
    }
}
