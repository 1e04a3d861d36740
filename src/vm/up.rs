//! `sandbox up`: render → create/start (lima) or connect (ssh) → wait for SSH → the real
//! `ansible-playbook` → baselines → health; and `sandbox reset`.
//!
//! Idempotence: the content hash of everything provisioning reads (rendered files, the embedded
//! playbook, the sandbox version) is recorded on both sides, in the state dir and by the playbook's
//! last task in the VM (`/var/lib/sandbox/provisioned`, removed by its first task). When both match,
//! provisioning is skipped. An interrupted `up` therefore resumes: each step checks what exists
//! (the VM, its state, the two records) and redoes only what is missing.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use super::{AUDIT_UNIT, GATEWAY_UNIT, VmError, as_root, lima_home, ssh_with, status};
use crate::exec::{ANSIBLE_PLAYBOOK, Invocation};
use crate::lima::driver::{Lima, Status};
use crate::profile::{Backend, Profile};
use crate::render::rendered::Rendered;

/// The playbook and roles, compiled into the binary: `up` needs no checkout of anything.
static ANSIBLE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/ansible");

/// Where the playbook records what it provisioned (see the module docs).
const REMOTE_RECORD: &str = "/var/lib/sandbox/provisioned";

/// How `up` was asked to run.
#[derive(Debug, Clone)]
pub(crate) struct UpOptions {
    pub(crate) reprovision: bool,
    pub(crate) ssh_timeout: Duration,
    /// How long `up` waits for the gateway's health endpoint after provisioning.
    pub(crate) gateway_timeout: Duration,
}

/// What `up` tells the person watching, as it goes.
#[derive(Debug)]
pub(crate) enum Event {
    /// A step begins.
    Step(&'static str),
    /// What the current step is doing now (an Ansible task name).
    Doing(String),
    /// One line of Ansible's output (shown with `--verbose`).
    Output(String),
    /// The current step ended; how.
    Done(String),
}

/// What provisioning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Provisioned {
    /// Nothing changed since the last complete run, on either side.
    Skipped,
    Ran {
        ok: u32,
        changed: u32,
        log: PathBuf,
    },
}

/// What `up` did.
#[derive(Debug)]
pub(crate) struct UpReport {
    pub(crate) vm: &'static str,
    pub(crate) provisioned: Provisioned,
    pub(crate) baselines: Vec<PathBuf>,
    /// Each health check: what, and its state.
    pub(crate) health: Vec<(String, String)>,
}

/// The state-dir folder of one profile's VM: rendered files, the extracted playbook, records.
fn instance_dir(state_dir: &Path, name: &str) -> PathBuf {
    crate::sync::store::root(state_dir).join("instances").join(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VmError + '_ {
    move |source| VmError::Io { path: path.to_path_buf(), source }
}

/// Stops `up` between steps after Ctrl-C: the child processes get the signal themselves (same
/// process group); `up` then reports where it stopped instead of dying half-way.
struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    fn install() -> Result<Self, VmError> {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag))
            .map_err(|source| VmError::Io { path: PathBuf::from("SIGINT handler"), source })?;
        Ok(Interrupt(flag))
    }

    fn check(&self, step: &'static str) -> Result<(), VmError> {
        if self.0.load(Ordering::SeqCst) { Err(VmError::Interrupted { step }) } else { Ok(()) }
    }
}

/// Bring the profile's VM up and provisioned; see the module docs.
pub(crate) fn up(
    profile: &Profile,
    state_dir: &Path,
    options: &UpOptions,
    secret_var: &dyn Fn(&str) -> Option<String>,
    report: &mut dyn FnMut(Event),
) -> Result<UpReport, VmError> {
    let dir = instance_dir(state_dir, &profile.name);
    let _held = lock_instance(&dir, &profile.name)?;
    let interrupt = Interrupt::install()?;

    report(Event::Step("render"));
    let files = crate::render::render(profile)?;
    let rendered = dir.join("rendered");
    crate::render::output::write(&rendered, &files)?;
    let playbook = dir.join("ansible");
    extract_playbook(&playbook)?;
    let hash = content_hash(&files);
    report(Event::Done(format!("{} files, content {}", files.len(), &hash[..12])));

    let vm = match profile.vm.backend {
        Backend::Lima => {
            report(Event::Step("start the VM"));
            let how = lima_up(profile, state_dir, &dir, &files)?;
            report(Event::Done(how.to_owned()));
            how
        }
        Backend::Ssh => "existing host",
    };
    interrupt.check("start the VM")?;

    report(Event::Step("wait for SSH"));
    let waited = wait_for_ssh(profile, state_dir, options.ssh_timeout, &interrupt)?;
    report(Event::Done(format!("reachable after {:.1} s", waited.as_secs_f64())));

    report(Event::Step("deliver secrets"));
    let (how, secrets) = deliver_secrets(profile, state_dir, secret_var)?;
    report(Event::Done(how));
    interrupt.check("deliver secrets")?;

    report(Event::Step("provision"));
    let local_record = dir.join("provisioned");
    let remote = remote_record(profile, state_dir)?;
    let local = std::fs::read_to_string(&local_record).ok();
    let up_to_date = local.as_deref().map(str::trim) == Some(hash.as_str()) && remote.as_deref() == Some(hash.as_str());
    let provisioned = if up_to_date && !options.reprovision {
        report(Event::Done("up to date (skipped; --reprovision forces a run)".into()));
        Provisioned::Skipped
    } else {
        // The record goes first: a run that stops half-way must not look finished next time.
        match std::fs::remove_file(&local_record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&local_record)(e)),
            _ => {}
        }
        let recap = provision(profile, state_dir, &dir, &rendered, &playbook, &hash, &interrupt, report)?;
        crate::render::output::write_file(&local_record, format!("{hash}\n").as_bytes(), 0o600)?;
        report(Event::Done(format!("{} tasks ok, {} changed", recap.ok, recap.changed)));
        Provisioned::Ran { ok: recap.ok, changed: recap.changed, log: recap.log }
    };

    report(Event::Step("record baselines"));
    let baselines = record_baselines(profile, state_dir, false)?;
    report(Event::Done(if baselines.is_empty() {
        "already recorded".into()
    } else {
        format!("{} recorded", baselines.len())
    }));

    report(Event::Step("wait for the gateway"));
    let waited = super::gateway::wait(
        profile,
        state_dir,
        options.gateway_timeout,
        &|| interrupt.check("wait for the gateway"),
        &secrets,
    )?;
    report(Event::Done(format!("healthy after {:.1} s", waited.as_secs_f64())));

    report(Event::Step("health checks"));
    let health = health(profile, state_dir)?;
    report(Event::Done(format!("{} checks passed", health.len())));
    Ok(UpReport { vm, provisioned, baselines, health })
}

/// One `up` or `reset` of a VM at a time (they share its state dir and its playbook copy).
fn lock_instance(dir: &Path, name: &str) -> Result<std::os::fd::OwnedFd, VmError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock = dir.join("up.lock");
    match crate::sync::store::try_lock(&lock).map_err(io(&lock))? {
        Some(fd) => Ok(fd),
        None => Err(VmError::Busy { name: name.to_owned(), lock }),
    }
}

/// Write the embedded playbook to `dest`, replacing what an older sandbox left there.
fn extract_playbook(dest: &Path) -> Result<(), VmError> {
    match std::fs::remove_dir_all(dest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(dest)(e)),
        _ => {}
    }
    for file in playbook_files() {
        let path = dest.join(file.path());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, file.contents()).map_err(io(&path))?;
    }
    Ok(())
}

/// Every file of the embedded playbook, in path order.
fn playbook_files() -> Vec<&'static include_dir::File<'static>> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<&'static include_dir::File<'static>>) {
        out.extend(dir.files());
        for sub in dir.dirs() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&ANSIBLE, &mut out);
    out.sort_by_key(|f| f.path());
    out
}

/// The hash both sides record: everything provisioning reads.
fn content_hash(files: &[Rendered]) -> String {
    let mut h = Sha256::new();
    h.update(concat!("sandbox-up 1 ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
    let mut part = |kind: &str, path: &Path, bytes: &[u8]| {
        h.update(format!("{kind} {} {}\n", path.display(), bytes.len()).as_bytes());
        h.update(bytes);
    };
    let mut rendered: Vec<&Rendered> = files.iter().collect();
    rendered.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    for f in rendered {
        part("rendered", &f.rel_path, &f.bytes);
    }
    for f in playbook_files() {
        part("ansible", f.path(), f.contents());
    }
    crate::sync::manifest::hex(&h.finalize())
}

/// Create or start the Lima VM; refuses when the profile changed what only a new VM can change.
fn lima_up(profile: &Profile, state_dir: &Path, dir: &Path, files: &[Rendered]) -> Result<&'static str, VmError> {
    let lima = Lima::new(&lima_home(state_dir));
    let rel = PathBuf::from(format!("lima/{}.yaml", profile.name));
    let yaml = files.iter().find(|f| f.rel_path == rel).map(|f| String::from_utf8_lossy(&f.bytes).into_owned());
    let yaml = yaml.ok_or_else(|| VmError::Io {
        path: rel.clone(),
        source: std::io::Error::other("the render produced no Lima instance file"),
    })?;
    let created_with = dir.join("lima.yaml");
    match lima.instance(&profile.name)? {
        None => {
            // Recorded first: a create that is interrupted still leaves the VM's settings known.
            crate::render::output::write_file(&created_with, yaml.as_bytes(), 0o600)?;
            if let Err(e) = lima.create(&profile.name, &yaml) {
                // `create` removed what it left; nothing was created with these settings.
                let _ = std::fs::remove_file(&created_with);
                return Err(e.into());
            }
            lima.start(&profile.name, true)?;
            Ok("created and started")
        }
        Some(vm) => {
            let changes = match std::fs::read_to_string(&created_with) {
                Ok(before) => changed_keys(&before, &yaml),
                Err(_) => Vec::new(),
            };
            let keys: Vec<String> = changes.iter().map(|(k, _)| k.clone()).collect();
            if keys.iter().any(|k| !APPLIED_AT_START.contains(&k.as_str())) {
                return Err(VmError::Incompatible { name: profile.name.clone(), keys });
            }
            match vm.status {
                Status::Running if keys.is_empty() => Ok("already running"),
                Status::Running => Err(VmError::StopToApply { name: profile.name.clone(), keys }),
                Status::Stopped if keys.is_empty() => {
                    lima.start(&profile.name, false)?;
                    Ok("started")
                }
                Status::Stopped => {
                    lima.edit(&profile.name, &set_expression(&changes))?;
                    // Only once Lima took them: a failed edit leaves the old settings on record.
                    crate::render::output::write_file(&created_with, yaml.as_bytes(), 0o600)?;
                    lima.start(&profile.name, false)?;
                    Ok("started with the profile's new CPUs and memory")
                }
                other => Err(VmError::Broken { name: profile.name.clone(), status: other.as_str().to_owned() }),
            }
        }
    }
}

/// The instance file's keys Lima applies to an existing VM at its next start (`limactl edit`);
/// a change to any other key needs a new VM.
const APPLIED_AT_START: [&str; 2] = ["cpus", "memory"];

/// A yq expression for `limactl edit --set` that gives each changed key its new value.
fn set_expression(changes: &[(String, Option<serde_yaml::Value>)]) -> String {
    changes
        .iter()
        .map(|(k, value)| match value.as_ref().and_then(|v| serde_json::to_string(v).ok()) {
            Some(json) => format!(".{k} = {json}"),
            None => format!("del(.{k})"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The top-level keys of the Lima instance file whose values differ, sorted, each with its value
/// in `after` (an existing VM keeps most of what it was created with: image, disk, mounts, ...).
fn changed_keys(before: &str, after: &str) -> Vec<(String, Option<serde_yaml::Value>)> {
    let parse = |text: &str| serde_yaml::from_str::<serde_yaml::Mapping>(text).unwrap_or_default();
    let (a, b) = (parse(before), parse(after));
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let value = b.get(k.as_str()).cloned();
            (k, value)
        })
        .collect()
}

/// How long a refused key or host key is retried (see `wait_for_ssh`).
const AUTH_GRACE: Duration = Duration::from_secs(30);

/// Retry `ssh ... true` until it works or `timeout` passes. Authentication and host-key errors
/// end the wait at once: waiting does not fix them.
fn wait_for_ssh(
    profile: &Profile,
    state_dir: &Path,
    timeout: Duration,
    interrupt: &Interrupt,
) -> Result<Duration, VmError> {
    let started = Instant::now();
    loop {
        let inv = ssh_with(profile, state_dir, &super::WAIT_SSH_OPTIONS, &["true".to_owned()])?;
        let out = inv.output()?;
        interrupt.check("wait for SSH")?;
        if out.success() {
            return Ok(started.elapsed());
        }
        let stderr = crate::exec::tail(&out.stderr);
        let fatal = ["Permission denied", "Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED"];
        // A freshly booted guest can answer before its authorized_keys is written: give a
        // refused key half a minute before calling it final.
        if fatal.iter().any(|f| stderr.contains(f)) && started.elapsed() >= AUTH_GRACE.min(timeout) {
            return Err(VmError::SshRefused { command: inv.display(), stderr });
        }
        if started.elapsed() >= timeout {
            return Err(VmError::SshTimeout { command: inv.display(), seconds: timeout.as_secs(), stderr });
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Replaces, as root, the secrets file with stdin when it differs (root:root 0600, written to a
/// temp file in the same folder, then renamed), and then restarts the gateway if it is installed,
/// a failed one too. `$1`: the configuration folder. Prints `changed` or `unchanged`.
const SECRETS_SCRIPT: &str = r#"set -eu
d=$1; f=$d/secrets.env
umask 077
mkdir -p "$d"
t=$(mktemp "$d/.secrets.XXXXXX")
trap 'rm -f "$t"' EXIT
cat > "$t"
chown root:root "$t"
chmod 600 "$t"
if [ -f "$f" ] && cmp -s "$t" "$f"; then echo unchanged; exit 0; fi
mv -f "$t" "$f"
# A unit that failed for want of a secret starts again now that the secrets changed.
if systemctl is-enabled -q openclaw-gateway.service 2>/dev/null; then
  systemctl reset-failed openclaw-gateway.service 2>/dev/null || true
  systemctl restart openclaw-gateway.service
fi
echo changed
"#;

/// Send the profile's secrets to the VM over SSH stdin (never argv, never a file on the host).
/// Also returns the secrets sent, to redact them from anything the VM says later.
fn deliver_secrets(
    profile: &Profile,
    state_dir: &Path,
    secret_var: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, crate::secrets::SecretSet), VmError> {
    if profile.secrets.sources.is_empty() {
        // Nothing to send; the gateway cannot start without its token, and the wait for it says so.
        let message = format!(
            "none configured: the gateway needs {} (add `secrets.sources`; `sandbox secrets check` lists them)",
            crate::secrets::required(profile).join(", ")
        );
        return Ok((message, crate::secrets::SecretSet::default()));
    }
    let set = crate::secrets::for_delivery(profile, secret_var)?;
    let body = set.env_file()?;
    let command = as_root(SECRETS_SCRIPT, [crate::render::context::CONFIG_DIR.to_owned()]);
    let out = ssh_with(profile, state_dir, &["BatchMode=yes"], &command)?.stdin(body).checked()?;
    let names = crate::secrets::required(profile).join(", ");
    let how = match out.stdout_text().trim() {
        "unchanged" => format!("unchanged ({names})"),
        _ => format!("written to {}/secrets.env ({names})", crate::render::context::CONFIG_DIR),
    };
    Ok((how, set))
}

/// What the VM says it was last provisioned with (`None`: never, or not to the end).
fn remote_record(profile: &Profile, state_dir: &Path) -> Result<Option<String>, VmError> {
    let script = format!("cat {REMOTE_RECORD} 2>/dev/null || true");
    let out = ssh_with(profile, state_dir, &["BatchMode=yes"], &["sh".into(), "-c".into(), script])?.checked()?;
    let text = out.stdout_text();
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// The PLAY RECAP of a run.
#[derive(Debug, Default)]
struct Recap {
    ok: u32,
    changed: u32,
    log: PathBuf,
}

/// A failure Ansible printed: the task it was in, the host and its message.
#[derive(Debug, Default, Clone)]
struct Failure {
    task: String,
    host: String,
    message: String,
}

/// Run the real `ansible-playbook` with the rendered inventory, streaming its output to the
/// log (and the task names to the progress line).
#[allow(clippy::too_many_arguments)]
fn provision(
    profile: &Profile,
    state_dir: &Path,
    dir: &Path,
    rendered: &Path,
    playbook: &Path,
    hash: &str,
    interrupt: &Interrupt,
    report: &mut dyn FnMut(Event),
) -> Result<Recap, VmError> {
    let vars = dir.join("extra-vars.json");
    let extra = serde_json::json!({
        "sandbox_rendered_dir": rendered,
        "sandbox_provision_hash": hash,
    });
    crate::render::output::write_file(&vars, format!("{extra}\n").as_bytes(), 0o600)?;
    let logs = crate::sync::store::root(state_dir).join("logs");
    std::fs::create_dir_all(&logs).map_err(io(&logs))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let log_path = logs.join(format!("up-{}-{stamp}-{}.log", profile.name, std::process::id()));
    let mut log =
        std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(&log_path).map_err(io(&log_path))?;

    let inv = Invocation::new(ANSIBLE_PLAYBOOK)
        .arg("-i")
        .arg(rendered.join("ansible/inventory.yml"))
        .arg("-e")
        .arg(format!("@{}", vars.display()))
        .arg(playbook.join("site.yml"))
        .env("ANSIBLE_CONFIG", playbook.join("ansible.cfg"))
        .env("ANSIBLE_SSH_ARGS", ansible_ssh_args(profile, state_dir)?)
        .env("ANSIBLE_STDOUT_CALLBACK", "default")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("PYTHONUNBUFFERED", "1");
    let _ = writeln!(log, "$ {}", inv.display());
    let mut lines = inv.lines()?;
    let mut task = String::new();
    let mut failure: Option<Failure> = None;
    let mut recap = Recap { log: log_path.clone(), ..Recap::default() };
    let mut in_recap = false;
    while let Some(line) = lines.next_line()? {
        let _ = writeln!(log, "{line}");
        if let Some(name) = task_name(&line) {
            task = name.to_owned();
            report(Event::Doing(task.clone()));
        } else if line.starts_with("PLAY RECAP") {
            in_recap = true;
        } else if in_recap {
            if let Some((ok, changed)) = recap_counts(&line) {
                recap.ok += ok;
                recap.changed += changed;
            }
        } else if let Some((host, message)) = failed_line(&line)
            && failure.is_none()
        {
            failure = Some(Failure { task: task.clone(), host, message });
        }
        report(Event::Output(line));
    }
    let command = lines.command().to_owned();
    let code = lines.finish()?;
    let _ = writeln!(log, "# exit status {code:?}");
    if code != Some(0) {
        interrupt.check("provision")?;
    }
    match code {
        Some(0) => Ok(recap),
        code => {
            let f = failure.unwrap_or(Failure { task, ..Failure::default() });
            Err(VmError::Provision(Box::new(super::ProvisionFailure {
                command,
                code,
                task: f.task,
                host: f.host,
                message: f.message,
                log: log_path,
            })))
        }
    }
}

/// Ansible's ssh options: Lima's generated config, or sandbox's own known_hosts (trust on first
/// use) for the ssh backend. Connection sharing keeps a TCG or remote VM's provisioning fast.
fn ansible_ssh_args(profile: &Profile, state_dir: &Path) -> Result<String, VmError> {
    let mut words: Vec<String> =
        vec!["-o".into(), "ControlMaster=auto".into(), "-o".into(), "ControlPersist=60s".into()];
    match profile.vm.backend {
        Backend::Lima => {
            let lima = Lima::new(&lima_home(state_dir));
            let config = lima.instance(&profile.name)?.and_then(|vm| vm.ssh_config);
            let config =
                config.ok_or_else(|| VmError::NoVm { name: profile.name.clone(), home: lima.home().to_path_buf() })?;
            words.splice(0..0, ["-F".to_owned(), config.display().to_string()]);
        }
        Backend::Ssh => words.extend(super::ssh_backend_options(profile, state_dir)?),
    }
    Ok(words.iter().map(|w| crate::exec::shell_word(w)).collect::<Vec<_>>().join(" "))
}

/// `TASK [role : name] ****` and `RUNNING HANDLER [role : name] ****` → `role : name`.
fn task_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("TASK [").or_else(|| line.strip_prefix("RUNNING HANDLER ["))?;
    let end = rest.rfind("] ")?;
    Some(&rest[..end])
}

/// `host : ok=12 changed=3 unreachable=0 failed=0 ...` → (ok, changed).
fn recap_counts(line: &str) -> Option<(u32, u32)> {
    let (_, counts) = line.split_once(" : ")?;
    let get = |key: &str| {
        counts.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')?.parse().ok()))
    };
    Some((get("ok")?, get("changed")?))
}

/// `fatal: [host]: FAILED! => {...}`, `fatal: [host]: UNREACHABLE! => {...}` or
/// `failed: [host] (item=...) => {...}` → (host, its message).
fn failed_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("fatal: [").or_else(|| line.strip_prefix("failed: ["))?;
    let (host, rest) = rest.split_once(']')?;
    let json = rest.split_once("=> ").map_or("", |(_, j)| j);
    let message = serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| {
            let msg = v.get("msg").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
            let stderr = first_stderr(&v, 3).unwrap_or_default();
            let text = [msg, stderr].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ");
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_else(|| rest.trim_start_matches(':').trim().to_owned());
    Some((host.to_owned(), message))
}

/// The first non-empty `stderr` or `module_stderr` in a task result, looking into nested
/// results (`failed_modules` of fact gathering, loop `results`) up to `depth` levels.
fn first_stderr(v: &serde_json::Value, depth: u32) -> Option<String> {
    for key in ["stderr", "module_stderr"] {
        if let Some(text) = v.get(key).and_then(|m| m.as_str()).map(str::trim).filter(|t| !t.is_empty()) {
            return Some(text.to_owned());
        }
    }
    if depth == 0 {
        return None;
    }
    match v {
        serde_json::Value::Object(map) => map.values().find_map(|x| first_stderr(x, depth - 1)),
        serde_json::Value::Array(items) => items.iter().find_map(|x| first_stderr(x, depth - 1)),
        _ => None,
    }
}

/// Record the baseline of every overlay workspace that has none (`refresh`: of every one);
/// the hosts recorded.
fn record_baselines(profile: &Profile, state_dir: &Path, refresh: bool) -> Result<Vec<PathBuf>, VmError> {
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let mut out = Vec::new();
    for ws in profile.workspaces.iter().filter(|w| w.mode == crate::profile::WorkspaceMode::Overlay) {
        if !refresh && crate::sync::store::load_baseline(state_dir, &ws.host)?.is_some() {
            continue;
        }
        let manifest = crate::sync::manifest::record(&ws.host, threads)?;
        crate::sync::store::save_baseline(state_dir, &manifest)?;
        out.push(ws.host.clone());
    }
    Ok(out)
}

/// The checks `up` ends with: every overlay mounted, the audit, the proxy, the tool containers'
/// engine (the service user's Podman socket), the gateway and the firewall active, the gateway answering its health endpoint, and the network policy in force.
fn health(profile: &Profile, state_dir: &Path) -> Result<Vec<(String, String)>, VmError> {
    let st = status(profile, state_dir)?;
    let mut checks: Vec<(String, String)> = Vec::new();
    let mut failed = Vec::new();
    let overlays = profile.workspaces.iter().any(|w| w.mode == crate::profile::WorkspaceMode::Overlay);
    for (unit, state) in &st.units {
        if unit == AUDIT_UNIT && !overlays {
            continue;
        }
        if state != "active" {
            failed.push(format!("{unit} is {state}"));
        }
        checks.push((unit.clone(), state.clone()));
    }
    let firewall = st.firewall.clone().unwrap_or_else(|| "unknown".into());
    if firewall != "active" {
        failed.push(format!("the firewall is {firewall}"));
    }
    checks.push(("firewall".into(), firewall));
    let gateway = st.gateway.clone().unwrap_or_else(|| "unknown".into());
    if gateway != "ok" {
        failed.push(format!("the gateway's health endpoint is {gateway}"));
    }
    checks.push(("gateway health".into(), gateway));
    // What `up` just installed must be what runs: a difference means something in the VM
    // rewrote the proxy's or the firewall's files.
    if let Some(egress) = &st.egress {
        if egress.stale.is_empty() {
            checks.push(("egress policy".into(), "in force".into()));
        } else {
            failed.push(format!("the VM's {} differ from the profile's policy", egress.stale.join(", ")));
        }
    }
    if failed.is_empty() { Ok(checks) } else { Err(VmError::Unhealthy { failed }) }
}

/// Discards, as root in the VM, everything the agent wrote: stops the gateway and the audit,
/// unmounts each overlay, empties its upper and work directories, mounts it again and restarts
/// what ran. Arguments: the gateway and audit units, then `unit guest upper work` per overlay.
/// Whatever happens, the mounts and the services that ran are started again on the way out.
/// An empty `$audit` means there is no overlay, hence no audit unit.
const RESET_SCRIPT: &str = r#"set -eu
gateway=$1 audit=$2; shift 2
was=$(systemctl is-active "$gateway" 2>/dev/null || true)
units=
for a in "$@"; do units="$units $a"; done
restore() {
  set +e
  i=0
  for a in $units; do
    [ $((i % 4)) = 0 ] && systemctl start "$a"
    i=$((i + 1))
  done
  [ -n "$audit" ] && systemctl start "$audit"
  case "$was" in active|activating|reloading) systemctl start "$gateway" ;; esac
}
trap restore EXIT
systemctl stop "$gateway" 2>/dev/null || true
[ -n "$audit" ] && { systemctl stop "$audit" 2>/dev/null || true; }
while [ $# -ge 4 ]; do
  unit=$1 guest=$2 upper=$3 work=$4; shift 4
  systemctl stop "$unit"
  if mountpoint -q "$guest"; then echo "sandbox-reset: $guest is still mounted; something holds it open" >&2; exit 3; fi
  find "$upper" -mindepth 1 -delete
  find "$work" -mindepth 1 -delete
done
"#;

/// Lists, as root, the first entries of each upper (what `reset` would discard), as full paths
/// each ended by NUL (an agent's file name may hold a newline). `$1`: how many per upper.
const LIST_SCRIPT: &str = r#"set -eu
n=$1; shift
for u in "$@"; do
  [ -d "$u" ] || continue
  find "$u" -mindepth 1 -print0 | head -z -n "$n"
done
"#;

/// How many entries per workspace the reset confirmation names.
const RESET_SHOWN: usize = 20;

/// What `reset` discards in one workspace.
#[derive(Debug)]
pub(crate) struct Discard {
    pub(crate) host: PathBuf,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    pub(crate) first: Vec<String>,
}

/// Discard the overlay writes of every workspace after `confirm` (unless `force`), then refresh
/// the baselines. `Ok(None)`: the person said no.
pub(crate) fn reset(
    profile: &Profile,
    state_dir: &Path,
    force: bool,
    confirm: &mut dyn FnMut(&[Discard]) -> Option<bool>,
) -> Result<Option<Vec<Discard>>, VmError> {
    let _held = lock_instance(&instance_dir(state_dir, &profile.name), &profile.name)?;
    let st = status(profile, state_dir)?;
    if st.state != "running" && st.state != "reachable" {
        return Err(VmError::NotRunning { name: profile.name.clone(), status: st.state });
    }
    let overlays = crate::render::context::Context::new(profile).overlays;
    let uppers: Vec<String> = overlays.iter().map(|w| w.upper.clone()).collect();
    let args = std::iter::once(RESET_SHOWN.to_string()).chain(uppers.iter().cloned());
    let listed = ssh_with(profile, state_dir, &["BatchMode=yes"], &as_root(LIST_SCRIPT, args))?.checked()?;
    let listed = listed.stdout_text();
    let mut discards = Vec::new();
    let mut unknown = false;
    for ws in &overlays {
        let pending = st.workspaces.iter().find(|p| p.upper == ws.upper);
        let prefix = format!("{}/", ws.upper);
        let first = listed.split('\0').filter_map(|l| l.strip_prefix(&prefix)).map(str::to_owned).collect();
        let (entries, bytes) = match pending {
            Some(p) => (p.entries, p.bytes),
            None => (None, None),
        };
        unknown |= entries.is_none();
        discards.push(Discard {
            host: PathBuf::from(&ws.host),
            entries: entries.unwrap_or(0),
            bytes: bytes.unwrap_or(0),
            first,
        });
    }
    // Counts that could not be read are treated as something to lose.
    let anything = unknown || discards.iter().any(|d| d.entries > 0);
    if anything && !force {
        match confirm(&discards) {
            None => return Err(VmError::ResetNeedsConfirmation { name: profile.name.clone() }),
            Some(false) => return Ok(None),
            Some(true) => {}
        }
    }
    let audit = if overlays.is_empty() { String::new() } else { AUDIT_UNIT.to_owned() };
    let args = [GATEWAY_UNIT.to_owned(), audit]
        .into_iter()
        .chain(overlays.iter().flat_map(|w| [w.mount_unit.clone(), w.guest.clone(), w.upper.clone(), w.work.clone()]));
    ssh_with(profile, state_dir, &["BatchMode=yes"], &as_root(RESET_SCRIPT, args))?.checked()?;
    record_baselines(profile, state_dir, true)?;
    Ok(Some(discards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansible_lines() {
        assert_eq!(
            task_name("TASK [base : Install the base packages] ******"),
            Some("base : Install the base packages")
        );
        assert_eq!(
            task_name("RUNNING HANDLER [firewall : Reload the firewall] ***"),
            Some("firewall : Reload the firewall")
        );
        assert_eq!(task_name("TASK [Gathering Facts] *****"), Some("Gathering Facts"));
        assert_eq!(task_name("ok: [vm]"), None);
        assert_eq!(
            recap_counts("vm                         : ok=33   changed=19   unreachable=0    failed=0    skipped=3"),
            Some((33, 19))
        );
        assert_eq!(recap_counts("PLAY RECAP ****"), None);
        let (host, message) =
            failed_line(r#"fatal: [vm]: FAILED! => {"changed": false, "msg": "Missing sudo password"}"#).unwrap();
        assert_eq!((host.as_str(), message.as_str()), ("vm", "Missing sudo password"));
        let (host, message) = failed_line(r#"failed: [vm] (item=x) => {"msg": "chown failed", "item": "x"}"#).unwrap();
        assert_eq!((host.as_str(), message.as_str()), ("vm", "chown failed"));
        assert_eq!(failed_line("ok: [vm]"), None);
    }

    #[test]
    fn changed_lima_keys() {
        let a = "cpus: 2\nmemory: 4GiB\nimages: [{location: a}]\n";
        let b = "cpus: 4\nmemory: 4GiB\nimages: [{location: b}]\nssh: {}\n";
        let changes = changed_keys(a, b);
        assert_eq!(changes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["cpus", "images", "ssh"]);
        assert!(changed_keys(a, a).is_empty());
        let dropped = changed_keys(b, "cpus: 4\nmemory: 4GiB\nimages: [{location: b}]\n");
        assert_eq!(set_expression(&changes[..1]), ".cpus = 4");
        assert_eq!(set_expression(&dropped), "del(.ssh)");
    }

    #[test]
    fn the_playbook_is_embedded_and_hashed() {
        let files = playbook_files();
        assert!(files.iter().any(|f| f.path() == Path::new("site.yml")));
        assert!(files.iter().any(|f| f.path() == Path::new("roles/base/tasks/main.yml")));
        let one = [Rendered { rel_path: "a".into(), mode: 0o644, bytes: b"x".to_vec() }];
        let two = [Rendered { rel_path: "a".into(), mode: 0o644, bytes: b"y".to_vec() }];
        assert_eq!(content_hash(&one), content_hash(&one));
        assert_ne!(content_hash(&one), content_hash(&two));
    }
}
