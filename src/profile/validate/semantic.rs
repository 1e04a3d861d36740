//! The meaning pass: checks and defaults that need more than the YAML shape.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::environment::Environment;
use crate::profile::diagnostic::Diagnostics;
use crate::profile::load::Loaded;
use crate::profile::raw::{RawGatewaySource, RawProfile, RawWorkspace};

/// A secrets source once its one key is known.
enum RawSecretSource {
    File(String),
    Env(Vec<String>),
    Exec(Vec<String>),
}
use crate::profile::{
    Arch, Backend, Bind, ByteSize, Cidr, DEFAULT_SOURCE_BUILD, DomainPattern, Egress, EgressRule, Gateway,
    GatewaySource, Image, Install, Network, NodeRuntime, Profile, Proto, Provision, SecretRules, SecretSource, Secrets,
    SshTarget, SyncPolicy, ToolSandbox, Vm, VmType, Workspace, WorkspaceMode,
};

/// The OpenClaw release the default profile pins. Not 2026.9.x: from 2026.9.1 on, every first
/// start after a config change runs a state migration whose lease worker must load within a
/// hard-coded 5 s (`LEASE_HEARTBEAT_START_TIMEOUT_MS`), and an emulated VM (qemu TCG: an x86_64
/// guest on Apple silicon, or CI without KVM) needs 6-9 s for it, so that gateway never starts
/// there (exit 78, "state lease heartbeat did not become ready"). 2026.8.2 has no such worker.
pub(crate) const DEFAULT_GATEWAY_VERSION: &str = "2026.8.2";
/// The Node.js release installed for the gateway (OpenClaw needs >= 24.16).
pub(crate) const DEFAULT_NODE_VERSION: &str = "24.19.0";
pub(crate) const DEFAULT_GATEWAY_PORT: u16 = 18789;
pub(crate) const DEFAULT_TOOL_IMAGE: &str = "openclaw-sandbox:bookworm-slim";
pub(crate) const DEFAULT_NPM_REGISTRY: &str = "https://registry.npmjs.org/";
/// Debian mirror the VM debootstraps the tool image from when the profile gives no `rootfs`.
/// `host.lima.internal` on Lima's user-mode network.
const LIMA_HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 168, 5, 2);
pub(crate) const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// Guest paths a workspace may not be mounted at or under: the guest OS needs them.
const SYSTEM_DIRS: [&str; 18] = [
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/mnt/sandbox",
];

/// Host folders (relative to `$HOME`) that hold credentials and may never be mounted, nor any
/// folder that contains them.
const CREDENTIAL_DIRS: [&str; 7] = [".ssh", ".aws", ".config", ".gnupg", ".kube", ".docker", ".azure"];

const KNOWN_BRIDGE_TOOLS: [&str; 4] = ["web_fetch", "web_search", "gh", "browser"];

pub(crate) fn check(raw: RawProfile, loaded: &Loaded, env: &Environment, d: &mut Diagnostics<'_>) -> Option<Profile> {
    let base_of = |path: &str| base_dir(d_locate_origin(loaded, path), env);
    let name = check_name(raw.name, loaded.top_has_name, d);
    let vm = check_vm(raw.vm.unwrap_or_default(), env, &base_of, d);
    let workspaces = check_workspaces(raw.workspaces.unwrap_or_default(), env, &base_of, d);
    let gateway = check_gateway(raw.gateway.unwrap_or_default(), env, &base_of, &workspaces, d);
    let network = check_network(raw.network.unwrap_or_default(), gateway.port, vm.backend, d);
    let secrets = check_secrets(raw.secrets.unwrap_or_default(), env, &base_of, &workspaces, d);
    let tool_sandbox = check_tool_sandbox(raw.tool_sandbox.unwrap_or_default(), env, &base_of, d);
    let sync = check_sync(raw.sync.unwrap_or_default(), env, &base_of, d);
    let provision = check_provision(raw.provision.unwrap_or_default(), env, &base_of, d);
    if d.has_errors() {
        return None;
    }
    Some(Profile {
        name,
        chain: loaded.chain.clone(),
        vm,
        workspaces,
        network,
        gateway,
        secrets,
        tool_sandbox,
        sync,
        provision,
        warnings: Vec::new(),
    })
}

/// The file a key came from (for resolving relative paths), by its recorded position.
fn d_locate_origin<'a>(loaded: &'a Loaded, path: &str) -> Option<&'a crate::profile::Origin> {
    let mut p = path;
    loop {
        if let Some(location) = loaded.spans.get(p) {
            return Some(&location.origin);
        }
        p = &p[..p.rfind(['.', '['])?];
    }
}

fn base_dir(origin: Option<&crate::profile::Origin>, env: &Environment) -> PathBuf {
    match origin {
        Some(crate::profile::Origin::File(file)) => file.parent().map_or_else(|| env.cwd.clone(), Path::to_path_buf),
        _ => env.cwd.clone(),
    }
}

/// Check `value` against a closed set of words; `None` gives the default.
fn one_of<'v>(
    d: &mut Diagnostics<'_>,
    path: &str,
    value: Option<&'v str>,
    allowed: &[&'v str],
    default: &'v str,
) -> &'v str {
    let Some(value) = value else { return default };
    if let Some(found) = allowed.iter().find(|a| **a == value) {
        return found;
    }
    let quoted: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    d.error(
        path,
        format!("`{value}` is not one of {}", quoted.join(", ")),
        format!("use one of {}", quoted.join(", ")),
    );
    default
}

fn size(d: &mut Diagnostics<'_>, path: &str, value: Option<&str>, default: u64) -> ByteSize {
    match value.map(ByteSize::parse) {
        None => ByteSize(default),
        Some(Ok(size)) => size,
        Some(Err(message)) => {
            d.error(path, message, "write a whole number and a unit, e.g. `8GiB`");
            ByteSize(default)
        }
    }
}

fn in_range(d: &mut Diagnostics<'_>, path: &str, value: ByteSize, min: u64, max: u64) {
    if value.bytes() < min || value.bytes() > max {
        d.error(
            path,
            format!("{value} is outside the supported range {} to {}", ByteSize(min), ByteSize(max)),
            "pick a value in that range",
        );
    }
}

pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_name(name: Option<String>, top_has_name: bool, d: &mut Diagnostics<'_>) -> String {
    let name = match name {
        // Inheriting a name would give two profiles the same VM.
        Some(_) if !top_has_name => None,
        other => other,
    };
    let Some(name) = name else {
        d.error(
            "",
            "the profile has no `name`",
            "add `name: my-sandbox` at the top (it names the VM; it is never inherited through `extends`)",
        );
        return String::new();
    };
    let valid = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        d.error(
            "name",
            format!("`{name}` is not a valid sandbox name"),
            "use 1 to 40 lower-case letters, digits and `-`, starting with a letter (it becomes the VM and host name)",
        );
    }
    name
}

fn check_vm(
    raw: crate::profile::raw::RawVm,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    d: &mut Diagnostics<'_>,
) -> Vm {
    let backend = match one_of(d, "vm.backend", raw.backend.as_deref(), &["lima", "ssh"], "lima") {
        "ssh" => Backend::Ssh,
        _ => Backend::Lima,
    };
    let cpus = raw.cpus.unwrap_or(4);
    if !(1..=64).contains(&cpus) {
        d.error("vm.cpus", format!("{cpus} CPUs is outside 1 to 64"), "pick a value from 1 to 64");
    }
    let memory = size(d, "vm.memory", raw.memory.as_deref(), 8 * ByteSize::GIB);
    in_range(d, "vm.memory", memory, ByteSize::GIB, 512 * ByteSize::GIB);
    let disk = size(d, "vm.disk", raw.disk.as_deref(), 50 * ByteSize::GIB);
    in_range(d, "vm.disk", disk, 10 * ByteSize::GIB, 4096 * ByteSize::GIB);
    let parse_arch = |s: &str| match s {
        "x86_64" => Some(Arch::X86_64),
        "aarch64" => Some(Arch::Aarch64),
        _ => None,
    };
    let arch = raw.arch.as_deref().and_then(|a| {
        let parsed = parse_arch(a);
        if parsed.is_none() {
            let hint = match a {
                "amd64" | "x64" => "did you mean `x86_64`?",
                "arm64" => "did you mean `aarch64`?",
                _ => "use `x86_64` or `aarch64`, or leave `arch` out to use the host's",
            };
            d.error("vm.arch", format!("`{a}` is not a supported architecture"), hint);
        }
        parsed
    });
    let vm_type = match one_of(d, "vm.vm_type", raw.vm_type.as_deref(), &["vz", "qemu"], "vz") {
        "qemu" => VmType::Qemu,
        _ => VmType::Vz,
    };
    let mut images = BTreeMap::new();
    for (key, image) in raw.image.unwrap_or_default() {
        let path = format!("vm.image.{key}");
        let Some(arch) = parse_arch(&key) else {
            d.error(&path, format!("`{key}` is not an architecture"), "key images by `x86_64` or `aarch64`");
            continue;
        };
        let location = match image.location {
            Some(l) if l.starts_with("https://") || l.starts_with("http://") => l,
            Some(l) if l.starts_with("file://") => l,
            Some(l) => {
                let local = env.expand(&l, &base_of(&path));
                if !local.is_file() {
                    d.error(
                        format!("{path}.location").as_str(),
                        format!("image file `{}` does not exist", local.display()),
                        "give an https:// URL or the path of a downloaded image",
                    );
                }
                local.display().to_string()
            }
            None => {
                d.error(&path, "the image has no `location`", "add `location: https://...` (a cloud image URL)");
                String::new()
            }
        };
        let digest = match image.digest {
            Some(digest) => {
                let digest = digest.to_ascii_lowercase();
                let ok = match digest.split_once(':') {
                    Some(("sha256", hex)) => hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
                    Some(("sha512", hex)) => hex.len() == 128 && hex.chars().all(|c| c.is_ascii_hexdigit()),
                    _ => false,
                };
                if !ok {
                    d.error(
                        &format!("{path}.digest"),
                        format!("`{digest}` is not a sha256 or sha512 digest"),
                        "write `sha256:` followed by 64 hex digits (or `sha512:` and 128); take it from the image's SHA256SUMS",
                    );
                }
                digest
            }
            None => {
                d.error(
                    &path,
                    "the image has no `digest`; an unpinned image can change under you",
                    "add `digest: sha256:...` from the image's SHA256SUMS file",
                );
                String::new()
            }
        };
        images.insert(arch, Image { location, digest });
    }
    if backend == Backend::Lima {
        if images.is_empty() {
            d.error(
                "vm.image",
                "no VM image is configured",
                "add `vm.image.aarch64` and/or `vm.image.x86_64` with `location` and `digest`",
            );
        } else if let Some(arch) = arch.filter(|a| !images.contains_key(a)) {
            d.error(
                "vm.image",
                format!("`vm.arch` is `{}` but no image is given for it", arch.as_str()),
                format!("add `vm.image.{}`", arch.as_str()),
            );
        }
    }
    let ssh = raw.ssh.map(|ssh| {
        let host = ssh.host.unwrap_or_default();
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            d.error("vm.ssh.host", "`vm.ssh.host` must be a host name or address", "set `host: my-vm.example.net`");
        }
        let user = ssh.user.unwrap_or_default();
        if user.is_empty()
            || user.starts_with('-')
            || !user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            d.error(
                "vm.ssh.user",
                "`vm.ssh.user` must be a user name",
                "set `user: admin` (a user with sudo on that host)",
            );
        }
        let identity_file = ssh.identity_file.map(|f| {
            existing_file(d, env, base_of, "vm.ssh.identity_file", &f, "", "point at an SSH private key file")
        });
        let port = ssh.port.unwrap_or(22);
        if port == 0 {
            d.error("vm.ssh.port", "port 0 is not a port", "use the host's SSH port, usually 22");
        }
        let guest_port = ssh.guest_port.unwrap_or(port);
        if guest_port == 0 {
            d.error(
                "vm.ssh.guest_port",
                "port 0 is not a port",
                "use the port sshd listens on in the guest, usually 22",
            );
        }
        SshTarget { host, port, guest_port, user, identity_file }
    });
    if backend == Backend::Ssh && ssh.is_none() {
        d.error(
            "vm.ssh",
            "`vm.backend: ssh` needs `vm.ssh` with `host` and `user`",
            "add `vm: {ssh: {host: ..., user: ...}}`",
        );
    }
    Vm { backend, cpus, memory, disk, arch, vm_type, images, ssh }
}

fn normalize_guest(guest: &str) -> Option<String> {
    if !guest.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = guest.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

fn is_under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')) || dir == "/"
}

fn check_workspaces(
    raws: Vec<RawWorkspace>,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    d: &mut Diagnostics<'_>,
) -> Vec<Workspace> {
    let home = std::fs::canonicalize(&env.home).unwrap_or_else(|_| env.home.clone());
    let mut out: Vec<Workspace> = Vec::new();
    for (i, raw) in raws.into_iter().enumerate() {
        let path = format!("workspaces[{i}]");
        let Some(host_text) = raw.host else {
            d.error(&path, "the workspace has no `host` folder", "add `host: ~/src/project`");
            continue;
        };
        let host = env.expand(&host_text, &base_of(&path));
        let host = match std::fs::canonicalize(&host) {
            Ok(h) if h.is_dir() => h,
            Ok(h) => {
                d.error(
                    &format!("{path}.host"),
                    format!("`{}` is not a directory", h.display()),
                    "mount a folder, not a file",
                );
                continue;
            }
            Err(e) => {
                d.error(
                    &format!("{path}.host"),
                    format!("`{}` cannot be used: {e}", host.display()),
                    "create the folder or fix the path",
                );
                continue;
            }
        };
        let host_path = format!("{path}.host");
        if host == Path::new("/") {
            d.error(&host_path, "mounting `/` would expose the whole host", "mount a project folder");
        } else if host == home {
            d.error(
                &host_path,
                format!("`{}` is your home directory; it holds your keys and credentials", host.display()),
                "mount a project folder inside it instead",
            );
        } else if home.starts_with(&host) {
            d.error(
                &host_path,
                format!("`{}` contains your home directory", host.display()),
                "mount a project folder inside your home instead",
            );
        }
        for dir in CREDENTIAL_DIRS {
            let cred = home.join(dir);
            if host.starts_with(&cred) {
                d.error(
                    &host_path,
                    format!("`{}` is inside `~/{dir}`, which holds credentials", host.display()),
                    "never mount credential folders into the sandbox",
                );
            }
        }
        let guest = match raw.guest.as_deref() {
            None => {
                if i == 0 {
                    "/workspace".to_owned()
                } else {
                    d.error(&path, "only the first workspace may leave out `guest`", "add `guest: /workspace-NAME`");
                    continue;
                }
            }
            Some(g) => match normalize_guest(g) {
                Some(g) => g,
                None => {
                    d.error(
                        &format!("{path}.guest"),
                        format!("`{g}` must be an absolute path without `.` or `..`"),
                        "write e.g. `/workspace`",
                    );
                    continue;
                }
            },
        };
        let guest_path = format!("{path}.guest");
        if guest == "/"
            || SYSTEM_DIRS.iter().any(|s| is_under(&guest, s))
            || SYSTEM_DIRS.iter().any(|s| is_under(s, &guest))
        {
            d.error(
                &guest_path,
                format!("`{guest}` is a system directory of the VM (or contains one)"),
                "use a path such as `/workspace` or `/srv/NAME`; system folders and `/mnt/sandbox` are reserved",
            );
        }
        for other in &out {
            if is_under(&guest, &other.guest) || is_under(&other.guest, &guest) {
                d.error(
                    &guest_path,
                    format!("`{guest}` overlaps workspace `{}` at `{}`", other.name, other.guest),
                    "give each workspace its own, non-nested guest path",
                );
            }
        }
        let mode = match one_of(
            d,
            &format!("{path}.mode"),
            raw.mode.as_deref(),
            &["overlay", "readonly", "writable"],
            "overlay",
        ) {
            "readonly" => WorkspaceMode::Readonly,
            "writable" => {
                d.warning(
                    &format!("{path}.mode"),
                    "`writable` lets the VM change host files directly, bypassing the sync gate",
                    "use `overlay` (the default) unless you accept that risk",
                );
                WorkspaceMode::Writable
            }
            _ => WorkspaceMode::Overlay,
        };
        let name = raw.name.unwrap_or_else(|| {
            let base = guest.rsplit('/').next().unwrap_or("workspace").to_ascii_lowercase();
            base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
        });
        if name.is_empty()
            || name.len() > 32
            || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            || name.starts_with('-')
        {
            d.error(
                &format!("{path}.name"),
                format!("`{name}` is not a valid workspace name"),
                "use up to 32 lower-case letters, digits, `-` and `_`",
            );
        }
        if out.iter().any(|o| o.name == name) {
            d.error(&path, format!("two workspaces are named `{name}`"), "set a distinct `name:` on one of them");
        }
        let exclude = raw.exclude.unwrap_or_default();
        for (j, glob) in exclude.iter().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                d.error(
                    &format!("{path}.exclude[{j}]"),
                    format!("invalid glob `{glob}`: {}", e.kind()),
                    "fix the pattern, e.g. `node_modules/**`",
                );
            }
        }
        out.push(Workspace { name, host, guest, mode, exclude });
    }
    out
}

fn check_network(
    raw: crate::profile::raw::RawNetwork,
    gateway_port: u16,
    backend: Backend,
    d: &mut Diagnostics<'_>,
) -> Network {
    let egress = raw.egress.unwrap_or_default();
    let mut allow_domains = Vec::new();
    for (i, domain) in egress.allow_domains.unwrap_or_default().iter().enumerate() {
        match DomainPattern::parse(domain) {
            Ok(p) if !allow_domains.contains(&p) => allow_domains.push(p),
            Ok(_) => d.warning(
                &format!("network.egress.allow_domains[{i}]"),
                format!("`{domain}` is listed twice"),
                "remove the duplicate",
            ),
            Err(message) => d.error(&format!("network.egress.allow_domains[{i}]"), message, ""),
        }
    }
    let mut allow = Vec::new();
    for (i, rule) in egress.allow.unwrap_or_default().into_iter().enumerate() {
        let path = format!("network.egress.allow[{i}]");
        let Some(cidr_text) = rule.cidr else {
            d.error(&path, "the rule has no `cidr`", "add `cidr: 10.0.0.0/8` (an address or network)");
            continue;
        };
        let cidr = match Cidr::parse(&cidr_text) {
            Ok(c) => c,
            Err(message) => {
                d.error(&format!("{path}.cidr"), message, "");
                continue;
            }
        };
        let proto = match one_of(d, &format!("{path}.proto"), rule.proto.as_deref(), &["tcp", "udp"], "tcp") {
            "udp" => Proto::Udp,
            _ => Proto::Tcp,
        };
        if rule.port == Some(0) {
            d.error(
                &format!("{path}.port"),
                "port 0 is not a port",
                "use 1 to 65535, or leave `port` out for every port",
            );
        }
        if cidr.is_wide() {
            d.warning(
                &path,
                format!("`{cidr}` allows a large part of the internet and bypasses the domain allowlist"),
                "narrow the CIDR to the hosts you need",
            );
        }
        match rule.port {
            None => d.warning(
                &path,
                format!("`{cidr}` is open on every port to every program in the VM, past the egress proxy"),
                "add `port:` for the one service you need",
            ),
            Some(port @ (80 | 443)) => d.warning(
                &path,
                format!("`{cidr}` port {port} lets every program in the VM reach it directly, without the proxy's domain check"),
                "list the host's name in `network.egress.allow_domains` instead",
            ),
            Some(_) => {}
        }
        allow.push(EgressRule { cidr, port: rule.port, proto });
    }
    let mut dns = Vec::new();
    for (i, resolver) in raw.dns.unwrap_or_default().iter().enumerate() {
        match resolver.parse::<IpAddr>() {
            Ok(ip) => dns.push(ip),
            Err(_) => d.error(
                &format!("network.dns[{i}]"),
                format!("`{resolver}` is not an IP address"),
                "list resolver addresses such as `1.1.1.1`",
            ),
        }
    }
    let gateway_port = raw.gateway_port.unwrap_or(gateway_port);
    if gateway_port < 1024 {
        d.error(
            "network.gateway_port",
            format!("host port {gateway_port} is privileged"),
            "use a port from 1024 to 65535",
        );
    }
    if dns.is_empty() && backend == Backend::Ssh && !allow_domains.is_empty() {
        d.warning(
            "network.dns",
            "with the ssh backend and no `dns`, the VM may query no DNS server, so the egress proxy cannot resolve `allow_domains`",
            "list the resolvers the VM should use, such as `dns: [192.0.2.53]`",
        );
    }
    let host_address = match raw.host_address.as_deref().map(str::parse::<IpAddr>) {
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => {
            d.error(
                "network.host_address",
                format!("`{}` is not an IP address", raw.host_address.as_deref().unwrap_or_default()),
                "give the address at which the VM reaches this machine, such as `192.168.5.2`",
            );
            None
        }
        None if backend == Backend::Lima => Some(IpAddr::V4(LIMA_HOST)),
        None => None,
    };
    Network {
        egress: Egress { allow_domains, allow },
        dns,
        tailscale: raw.tailscale.unwrap_or(false),
        gateway_port,
        host_address,
    }
}

fn check_gateway(
    raw: crate::profile::raw::RawGateway,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    workspaces: &[Workspace],
    d: &mut Diagnostics<'_>,
) -> Gateway {
    let version = raw.version.unwrap_or_else(|| DEFAULT_GATEWAY_VERSION.to_owned());
    if !is_exact_version(&version) {
        d.error(
            "gateway.version",
            format!("`{version}` is not an exact version"),
            format!("pin a released version such as `{DEFAULT_GATEWAY_VERSION}` (see `npm view openclaw versions`)"),
        );
    }
    let port = raw.port.unwrap_or(DEFAULT_GATEWAY_PORT);
    if port < 1024 {
        d.error("gateway.port", format!("port {port} is privileged"), "use a port from 1024 to 65535");
    }
    let bind = match one_of(d, "gateway.bind", raw.bind.as_deref(), &["loopback", "lan"], "loopback") {
        "lan" => {
            d.warning(
                "gateway.bind",
                "`lan` exposes the gateway on the VM's network interfaces",
                "keep `loopback`; the port is forwarded to the host's 127.0.0.1 anyway",
            );
            Bind::Lan
        }
        _ => Bind::Loopback,
    };
    let token_secret = raw.auth.and_then(|a| a.token_secret).unwrap_or_else(|| "OPENCLAW_GATEWAY_TOKEN".to_owned());
    if !is_env_name(&token_secret) {
        d.error(
            "gateway.auth.token_secret",
            format!("`{token_secret}` is not a secret name"),
            "use letters, digits and `_`, e.g. `OPENCLAW_GATEWAY_TOKEN`",
        );
    }
    let install = match one_of(d, "gateway.install", raw.install.as_deref(), &["npm", "workspace"], "npm") {
        "workspace" => Install::Workspace,
        _ => Install::Npm,
    };
    let source = check_gateway_source(raw.source, install, workspaces, d);
    let registry = raw.registry.unwrap_or_else(|| DEFAULT_NPM_REGISTRY.to_owned());
    check_url(d, "gateway.registry", &registry, "an npm registry URL, e.g. `https://registry.npmjs.org/`");
    if registry.starts_with("http://") {
        d.warning("gateway.registry", "the gateway's code would be downloaded without TLS", "use an https:// registry");
    }
    let node_raw = raw.node.unwrap_or_default();
    let node_version = node_raw.version.unwrap_or_else(|| DEFAULT_NODE_VERSION.to_owned());
    let numbers: Vec<u32> = node_version.split(['.', '-']).take(2).filter_map(|n| n.parse().ok()).collect();
    // OpenClaw's engines: >=24.16.0 <25 || >=26.1.0.
    let supported = match numbers[..] {
        [24, minor] => minor >= 16,
        [25, _] => false,
        [26, minor] => minor >= 1,
        [major, _] => major > 26,
        _ => false,
    };
    if !is_exact_version(&node_version) || !supported {
        d.error(
            "gateway.node.version",
            format!("`{node_version}` is not an exact Node.js version OpenClaw supports"),
            format!("OpenClaw needs Node.js 24.16+ (not 25) or 26.1+; use e.g. `{DEFAULT_NODE_VERSION}`"),
        );
    }
    let archive = node_raw.archive.map(|a| {
        existing_file(d, env, base_of, "gateway.node.archive", &a, "", "point at a node-vNN-linux-ARCH.tar.xz archive")
    });
    if let Some(sha) = node_raw.sha256.as_ref().filter(|s| s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit())) {
        d.error(
            "gateway.node.sha256",
            format!("`{sha}` is not a sha256 hex digest"),
            "64 hex digits, from SHASUMS256.txt",
        );
    }
    Gateway {
        version,
        port,
        bind,
        token_secret,
        install,
        registry,
        node: NodeRuntime { version: node_version, archive, sha256: node_raw.sha256.map(|s| s.to_ascii_lowercase()) },
        source,
    }
}

/// `gateway.source`: required by `install: workspace`, meaningless without it.
fn check_gateway_source(
    raw: Option<RawGatewaySource>,
    install: Install,
    workspaces: &[Workspace],
    d: &mut Diagnostics<'_>,
) -> Option<GatewaySource> {
    let raw = match (install, raw) {
        (Install::Npm, None) => return None,
        (Install::Npm, Some(_)) => {
            d.error(
                "gateway.source",
                "`source` is only used by `install: workspace`",
                "set `install: workspace` to build OpenClaw from it, or remove `source`",
            );
            return None;
        }
        (Install::Workspace, None) => {
            d.error(
                "gateway.install",
                "`install: workspace` needs `gateway.source` to say which checkout to build",
                "add `source: {workspace: NAME}`, NAME being the workspace that holds the OpenClaw checkout",
            );
            return None;
        }
        (Install::Workspace, Some(raw)) => raw,
    };
    let names: Vec<&str> = workspaces.iter().map(|w| w.name.as_str()).collect();
    let workspace = match raw.workspace {
        Some(name) if workspaces.iter().any(|w| w.name == name && w.mode == WorkspaceMode::Writable) => {
            // The gateway's code would then be whatever the agent last wrote there.
            d.error(
                "gateway.source.workspace",
                format!("workspace `{name}` is writable: the agent could change the gateway's code"),
                "build from an `overlay` or `readonly` workspace; the VM builds from the host's files only",
            );
            name
        }
        Some(name) if names.contains(&name.as_str()) => {
            let host = workspaces.iter().find(|w| w.name == name).map(|w| w.host.clone()).unwrap_or_default();
            let overlapping = workspaces.iter().find(|w| {
                w.mode == WorkspaceMode::Writable && (w.host.starts_with(&host) || host.starts_with(&w.host))
            });
            if let Some(w) = overlapping {
                d.error(
                    "gateway.source.workspace",
                    format!("workspace `{name}` shares host files with the writable workspace `{}`", w.name),
                    "the agent could change the gateway's code through it; keep the checkout out of writable workspaces",
                );
            }
            name
        }
        Some(name) => {
            d.error(
                "gateway.source.workspace",
                format!("no workspace is named `{name}`"),
                format!("use one of the profile's workspaces: {}", names.join(", ")),
            );
            name
        }
        None => {
            d.error(
                "gateway.source.workspace",
                "missing: the workspace that holds the OpenClaw checkout",
                format!("set it to one of the profile's workspaces: {}", names.join(", ")),
            );
            String::new()
        }
    };
    let raw_path = raw.path.unwrap_or_default();
    let parts: Vec<&str> = raw_path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if raw_path.starts_with('/') || parts.contains(&"..") {
        d.error(
            "gateway.source.path",
            format!("`{raw_path}` is not a folder inside the workspace"),
            "give a relative path without `..`, e.g. `openclaw`",
        );
    }
    let build = match raw.build {
        None => DEFAULT_SOURCE_BUILD.iter().map(|argv| argv.iter().map(|a| (*a).to_owned()).collect()).collect(),
        Some(build) => {
            for (i, argv) in build.iter().enumerate() {
                if argv.first().is_none_or(String::is_empty) {
                    d.error(
                        &format!("gateway.source.build[{i}]"),
                        "an empty command",
                        "give each command as a list, program first, e.g. `[pnpm, build]`",
                    );
                }
            }
            build
        }
    };
    Some(GatewaySource { workspace, path: parts.join("/"), build })
}

/// `raw` expanded (`~`, `$VAR`, relative to the file that set `key`), with an error when no
/// regular file is there. `noun` starts the message, e.g. "rules file ".
fn existing_file(
    d: &mut Diagnostics<'_>,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    key: &str,
    raw: &str,
    noun: &str,
    help: &str,
) -> PathBuf {
    let path = env.expand(raw, &base_of(key));
    if !path.is_file() {
        d.error(key, format!("{noun}`{}` does not exist", path.display()), help.to_owned());
    }
    path
}

/// An http(s) URL without whitespace or credentials: it is written into rendered files, and a
/// password there would be a secret outside the secrets pipeline.
fn check_url(d: &mut Diagnostics<'_>, path: &str, url: &str, example: &str) {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or(""));
    match host {
        Some(h) if h.contains('@') => d.error(
            path,
            "the URL carries credentials",
            "give the URL without `user:password@`; credentials do not belong in a profile",
        ),
        Some(h) if !h.is_empty() && !url.contains(char::is_whitespace) => {}
        _ => d.error(path, format!("`{url}` is not an http(s) URL"), example.to_owned()),
    }
}

pub(crate) fn is_exact_version(v: &str) -> bool {
    let (core, pre) = v.split_once('-').map_or((v, None), |(c, p)| (c, Some(p)));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && pre.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
}

fn check_secrets(
    raw: crate::profile::raw::RawSecrets,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    workspaces: &[Workspace],
    d: &mut Diagnostics<'_>,
) -> Secrets {
    let mut sources = Vec::new();
    for (i, source) in raw.sources.unwrap_or_default().into_iter().enumerate() {
        let path = format!("secrets.sources[{i}]");
        let source = match (source.file, source.env, source.exec) {
            (Some(f), None, None) => RawSecretSource::File(f),
            (None, Some(names), None) => RawSecretSource::Env(names),
            (None, None, Some(argv)) => RawSecretSource::Exec(argv),
            _ if d.has_error_under(&path) => continue,
            _ => {
                d.error(&path, "a secrets source needs exactly one of `file`, `env` or `exec`", "write `- file: PATH`, `- env: [NAME, ...]` or `- exec: [PROGRAM, ARG, ...]` as separate list items");
                continue;
            }
        };
        match source {
            RawSecretSource::File(f) => {
                let file = env.expand(&f, &base_of(&path));
                let file = std::fs::canonicalize(&file).unwrap_or(file);
                match std::fs::metadata(&file) {
                    Err(e) => d.error(
                        &format!("{path}.file"),
                        format!("cannot read secrets file `{}`: {e}", file.display()),
                        "create it (dotenv format, mode 0600) or fix the path",
                    ),
                    Ok(meta) if !meta.is_file() => d.error(
                        &format!("{path}.file"),
                        format!("`{}` is not a file", file.display()),
                        "point at a dotenv file",
                    ),
                    Ok(meta) => {
                        use std::os::unix::fs::PermissionsExt;
                        if meta.permissions().mode() & 0o077 != 0 {
                            d.warning(
                                &format!("{path}.file"),
                                format!(
                                    "secrets file `{}` is readable by other users (mode {:o})",
                                    file.display(),
                                    meta.permissions().mode() & 0o777
                                ),
                                format!("run `chmod 600 {}`", file.display()),
                            );
                        }
                    }
                }
                if let Some(ws) = file.parent().and_then(|dir| workspaces.iter().find(|w| dir.starts_with(&w.host))) {
                    d.error(
                        &format!("{path}.file"),
                        format!(
                            "workspace `{}` mounts the folder that holds secrets file `{}`, so the VM could read it",
                            ws.name,
                            file.display()
                        ),
                        "move the secrets file to a folder that no workspace mounts",
                    );
                }
                sources.push(SecretSource::File(file));
            }
            RawSecretSource::Env(names) => {
                for (j, name) in names.iter().enumerate() {
                    if !is_env_name(name) {
                        d.error(
                            &format!("{path}.env[{j}]"),
                            format!("`{name}` is not a variable name"),
                            "use letters, digits and `_`",
                        );
                    }
                }
                sources.push(SecretSource::Env(names));
            }
            RawSecretSource::Exec(argv) => {
                if argv.first().is_none_or(String::is_empty) {
                    d.error(
                        &format!("{path}.exec"),
                        "the command is empty",
                        "give the program and its arguments, e.g. `[op, inject, -i, tpl.env]`",
                    );
                }
                sources.push(SecretSource::Exec(argv));
            }
        }
    }
    let required = raw.required.unwrap_or_default();
    for (i, name) in required.iter().enumerate() {
        if !is_env_name(name) {
            d.error(
                &format!("secrets.required[{i}]"),
                format!("`{name}` is not a secret name"),
                "use letters, digits and `_`",
            );
        }
    }
    if !required.is_empty() && sources.is_empty() {
        d.error(
            "secrets.required",
            "secrets are required but no source is configured",
            "add `secrets.sources`, e.g. `- file: ~/.config/sandbox/secrets.env`",
        );
    }
    Secrets { sources, required }
}

fn check_tool_sandbox(
    raw: crate::profile::raw::RawToolSandbox,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    d: &mut Diagnostics<'_>,
) -> ToolSandbox {
    let mode = one_of(d, "tool_sandbox.mode", raw.mode.as_deref(), &["off", "non-main", "all"], "all").to_owned();
    if mode != "all" {
        d.warning(
            "tool_sandbox.mode",
            format!("mode `{mode}` runs some agent tools outside the container"),
            "use `all`",
        );
    }
    let scope =
        one_of(d, "tool_sandbox.scope", raw.scope.as_deref(), &["session", "agent", "shared"], "session").to_owned();
    let workspace_access =
        one_of(d, "tool_sandbox.workspace_access", raw.workspace_access.as_deref(), &["none", "ro", "rw"], "rw")
            .to_owned();
    let network = one_of(d, "tool_sandbox.network", raw.network.as_deref(), &["none", "bridge"], "none").to_owned();
    if network == "bridge" {
        d.warning(
            "tool_sandbox.network",
            "every tool container gets network access",
            "keep `none` and list the tools that need the network in `bridge_tools`",
        );
    }
    let bridge_tools = raw.bridge_tools.unwrap_or_default();
    for (i, tool) in bridge_tools.iter().enumerate() {
        if !KNOWN_BRIDGE_TOOLS.contains(&tool.as_str()) {
            d.error(
                &format!("tool_sandbox.bridge_tools[{i}]"),
                format!("`{tool}` is not a known network tool"),
                format!("use one of {}", KNOWN_BRIDGE_TOOLS.join(", ")),
            );
        }
    }
    // `gh` is a command the agent runs with `exec`, in its tool container: it reaches the
    // network only if that container has one.
    if bridge_tools.iter().any(|t| t == "gh") && network != "bridge" {
        d.error(
            "tool_sandbox.bridge_tools",
            "`gh` runs inside the tool container, which has no network with `network: none`",
            "set `tool_sandbox.network: bridge` (every tool container then reaches the proxy), or drop `gh`",
        );
    }
    if bridge_tools.iter().any(|t| t == "browser") {
        d.warning(
            "tool_sandbox.bridge_tools",
            "`browser` has no effect: OpenClaw's browser drives a browser outside the tool container, so it is always off",
            "drop `browser`",
        );
    }
    if !bridge_tools.is_empty() {
        d.warning(
            "tool_sandbox.bridge_tools",
            format!("{} get network access (through the egress proxy)", bridge_tools.join(", ")),
            "list only the tools you need",
        );
    }
    let image = raw.image.unwrap_or_else(|| DEFAULT_TOOL_IMAGE.to_owned());
    if image.is_empty() || image.contains(char::is_whitespace) {
        d.error(
            "tool_sandbox.image",
            format!("`{image}` is not an image reference"),
            "e.g. `openclaw-sandbox:bookworm-slim`",
        );
    }
    let rootfs = raw.rootfs.map(|a| {
        let help =
            "point at a root filesystem archive (.tar, .tar.gz or .tar.xz), e.g. made with `debootstrap` and `tar`";
        existing_file(d, env, base_of, "tool_sandbox.rootfs", &a, "", help)
    });
    let mirror = raw.mirror.unwrap_or_else(|| DEFAULT_DEBIAN_MIRROR.to_owned());
    check_url(d, "tool_sandbox.mirror", &mirror, "a Debian mirror, e.g. `http://deb.debian.org/debian`");
    let memory = size(d, "tool_sandbox.memory", raw.memory.as_deref(), 2 * ByteSize::GIB);
    in_range(d, "tool_sandbox.memory", memory, 64 * ByteSize::MIB, 256 * ByteSize::GIB);
    let cpus = raw.cpus.unwrap_or(2.0);
    if !(cpus > 0.0 && cpus <= 64.0) {
        d.error("tool_sandbox.cpus", format!("{cpus} is outside (0, 64]"), "e.g. `2` or `0.5`");
    }
    let pids_limit = raw.pids_limit.unwrap_or(256);
    if !(16..=65536).contains(&pids_limit) {
        d.error("tool_sandbox.pids_limit", format!("{pids_limit} is outside 16 to 65536"), "e.g. `256`");
    }
    let read_only_root = raw.read_only_root.unwrap_or(true);
    if !read_only_root {
        d.warning("tool_sandbox.read_only_root", "tool containers get a writable root filesystem", "keep `true`");
    }
    let cap_drop: Vec<String> =
        raw.cap_drop.unwrap_or_else(|| vec!["ALL".to_owned()]).into_iter().map(|c| c.to_ascii_uppercase()).collect();
    if !cap_drop.iter().any(|c| c == "ALL") {
        d.warning("tool_sandbox.cap_drop", "tool containers keep some Linux capabilities", "use `cap_drop: [ALL]`");
    }
    let enabled = raw.enabled.unwrap_or(true);
    if !enabled {
        d.warning(
            "tool_sandbox.enabled",
            "agent tools run directly in the gateway's process, not in containers",
            "keep the tool sandbox enabled",
        );
    }
    ToolSandbox {
        enabled,
        mode,
        scope,
        workspace_access,
        image,
        rootfs,
        mirror,
        network,
        bridge_tools,
        memory,
        cpus,
        pids_limit,
        read_only_root,
        cap_drop,
    }
}

fn check_globs(d: &mut Diagnostics<'_>, path: &str, globs: &[String]) {
    for (i, glob) in globs.iter().enumerate() {
        if let Err(e) = globset::Glob::new(glob) {
            d.error(
                &format!("{path}[{i}]"),
                format!("invalid glob `{glob}`: {}", e.kind()),
                "fix the pattern, e.g. `docs/**`",
            );
        }
    }
}

fn check_sync(
    raw: crate::profile::raw::RawSync,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    d: &mut Diagnostics<'_>,
) -> SyncPolicy {
    let allow = raw.allow.unwrap_or_else(|| vec!["**".to_owned()]);
    let deny = raw.deny.unwrap_or_default();
    let review = raw.review.unwrap_or_default();
    check_globs(d, "sync.allow", &allow);
    check_globs(d, "sync.deny", &deny);
    check_globs(d, "sync.review", &review);
    let max_file_size = size(d, "sync.max_file_size", raw.max_file_size.as_deref(), 10 * ByteSize::MIB);
    let max_total_size = size(d, "sync.max_total_size", raw.max_total_size.as_deref(), 500 * ByteSize::MIB);
    if max_file_size.bytes() == 0 || max_total_size.bytes() == 0 {
        d.error("sync", "size limits must be above zero", "raise `max_file_size` / `max_total_size`");
    }
    if max_file_size > max_total_size {
        d.error(
            "sync.max_file_size",
            format!("{max_file_size} is more than `max_total_size` ({max_total_size})"),
            "make `max_total_size` at least `max_file_size`",
        );
    }
    let max_files = raw.max_files.unwrap_or(10_000);
    if max_files == 0 {
        d.error("sync.max_files", "must be at least 1", "e.g. `10000`");
    }
    let secret_rules = match raw.secret_rules.as_deref() {
        None | Some("builtin") => SecretRules::Builtin,
        Some(path) => {
            let help = "use `builtin` or the path of a gitleaks-format TOML file";
            SecretRules::File(existing_file(d, env, base_of, "sync.secret_rules", path, "rules file ", help))
        }
    };
    let confirm = raw.confirm.unwrap_or(true);
    SyncPolicy {
        allow,
        deny,
        review,
        max_file_size,
        max_total_size,
        max_files,
        secret_rules,
        confirm,
        userxattr: raw.userxattr.unwrap_or(false),
    }
}

fn check_provision(
    raw: crate::profile::raw::RawProvision,
    env: &Environment,
    base_of: &dyn Fn(&str) -> PathBuf,
    d: &mut Diagnostics<'_>,
) -> Provision {
    let vars = raw.vars.unwrap_or_default();
    for key in vars.keys() {
        let path = format!("provision.vars.{key}");
        if !is_env_name(key) {
            d.error(&path, format!("`{key}` is not a valid Ansible variable name"), "use letters, digits and `_`");
        } else if key.starts_with("sandbox_") || key.starts_with("ansible_") {
            d.error(
                &path,
                format!("`{key}` is reserved (the `sandbox_` and `ansible_` prefixes belong to the provisioner)"),
                "rename the variable",
            );
        }
    }
    let mut roles_path = Vec::new();
    for (i, p) in raw.roles_path.unwrap_or_default().iter().enumerate() {
        let path = format!("provision.roles_path[{i}]");
        let dir = env.expand(p, &base_of(&path));
        if !dir.is_dir() {
            d.error(&path, format!("`{}` is not a directory", dir.display()), "point at a folder of Ansible roles");
        }
        roles_path.push(dir);
    }
    Provision { vars, roles_path }
}
