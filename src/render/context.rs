//! The data templates see: the profile plus every derived name and path, computed once here so
//! templates only place values and never compute them.

use std::net::IpAddr;

use serde::Serialize;

use crate::profile::{Backend, Bind, DomainPattern, GATEWAY_NETWORK_TOOLS, Install, Profile, VmType, WorkspaceMode};
use crate::render::filters::{docker_size, systemd_escape_path};

/// Where overlay lowers (the read-only host mounts) appear in the guest.
pub(crate) const LOWER_ROOT: &str = "/mnt/sandbox/lower";
/// Where each lower appears again, owned by the service user (a read-only bindfs view), so the
/// agent can edit files whose owner in the host mount is the Lima user or a host uid.
pub(crate) const VIEW_ROOT: &str = "/mnt/sandbox/view";
/// Where overlay upper and work directories live in the guest.
pub(crate) const OVERLAY_ROOT: &str = "/var/lib/sandbox/overlay";
/// The unprivileged user the gateway and agent tools run as (no sudo).
pub(crate) const SERVICE_USER: &str = "openclaw";
/// Root-owned install prefix of Node.js and OpenClaw.
pub(crate) const INSTALL_PREFIX: &str = "/opt/openclaw";
/// Root-owned configuration directory (gateway config, secrets file).
pub(crate) const CONFIG_DIR: &str = "/etc/openclaw";
/// The gateway's writable state (systemd `StateDirectory=openclaw`).
pub(crate) const STATE_DIR: &str = "/var/lib/openclaw";
/// The overlay audit log directory (systemd `LogsDirectory=sandbox`, root-owned).
pub(crate) const AUDIT_LOG: &str = "/var/log/sandbox/overlay-audit.log";
/// The egress proxy (squid) runs as Debian's and Ubuntu's `proxy` system user: the only user
/// the firewall lets out on ports 80 and 443.
pub(crate) const PROXY_USER: &str = "proxy";
/// The proxy's port for the agent, the gateway and the tool containers (domain allowlist).
pub(crate) const PROXY_PORT: u16 = 3128;
/// The proxy's port for provisioning (apt, npm, downloads): on 127.0.0.1, and the firewall lets
/// only root connect to it.
pub(crate) const PROVISION_PROXY_PORT: u16 = 3129;
/// The private network slirp4netns gives a rootless Podman container with `network: bridge`.
/// Its `.2` is slirp's gateway, which `allow_host_loopback` maps to the VM's 127.0.0.1, where
/// the proxy listens. Fixed, so that the containers' proxy URL is known when rendering.
pub(crate) const CONTAINER_CIDR: &str = "10.41.0.0/24";
pub(crate) const CONTAINER_HOST_LOOPBACK: &str = "10.41.0.2";
/// Lima's resolver on the user-mode network, used when the profile lists no DNS servers.
pub(crate) const LIMA_DNS: &str = "192.168.5.3";

#[derive(Debug, Serialize)]
pub(crate) struct Context {
    pub(crate) name: String,
    pub(crate) backend: &'static str,
    pub(crate) vm: VmContext,
    pub(crate) workspaces: Vec<WorkspaceContext>,
    pub(crate) overlays: Vec<WorkspaceContext>,
    pub(crate) gateway: GatewayContext,
    pub(crate) firewall: FirewallContext,
    pub(crate) proxy: ProxyContext,
    pub(crate) tool_sandbox: ToolSandboxContext,
    pub(crate) paths: PathsContext,
    pub(crate) egress_domains: Vec<String>,
    pub(crate) tailscale: bool,
    pub(crate) secret_names: Vec<String>,
    pub(crate) ssh: Option<SshContext>,
    pub(crate) extra_vars: serde_yaml::Value,
    pub(crate) roles_path: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct VmContext {
    pub(crate) cpus: u32,
    pub(crate) memory: String,
    pub(crate) disk: String,
    pub(crate) arch: Option<&'static str>,
    pub(crate) vm_type: &'static str,
    pub(crate) mount_type: &'static str,
    pub(crate) images: Vec<ImageContext>,
    pub(crate) dns: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ImageContext {
    pub(crate) arch: &'static str,
    pub(crate) location: String,
    pub(crate) digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkspaceContext {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) guest: String,
    pub(crate) mode: &'static str,
    /// Where Lima mounts the host folder in the guest.
    pub(crate) mount_point: String,
    pub(crate) writable: bool,
    pub(crate) upper: String,
    pub(crate) work: String,
    /// The lower as the overlay sees it: `mount_point` owned by the service user, read-only.
    pub(crate) view: String,
    /// systemd unit name of the view's mount.
    pub(crate) view_unit: String,
    /// systemd unit name of the overlay mount (`workspace.mount` for `/workspace`).
    pub(crate) mount_unit: String,
    pub(crate) exclude: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct GatewayContext {
    pub(crate) version: String,
    pub(crate) port: u16,
    pub(crate) host_port: u16,
    pub(crate) bind: &'static str,
    pub(crate) token_secret: String,
    pub(crate) install: &'static str,
    pub(crate) registry: String,
    pub(crate) node_version: String,
    pub(crate) node_archive: Option<String>,
    pub(crate) node_sha256: Option<String>,
    /// The script node runs (`openclaw.mjs` of the installed package).
    pub(crate) entry: String,
    pub(crate) working_directory: String,
    /// Guest paths the gateway may write besides its state directory.
    pub(crate) writable_paths: Vec<String>,
    pub(crate) source: Option<SourceContext>,
}

/// What `install: workspace` builds: the checkout as the host has it (the read-only share, never
/// the overlay's merged view, which the agent writes), and how.
#[derive(Debug, Serialize)]
pub(crate) struct SourceContext {
    /// The workspace's share: `dir` must stay inside it.
    pub(crate) root: String,
    pub(crate) dir: String,
    pub(crate) build: Vec<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FirewallRule {
    pub(crate) cidr: String,
    pub(crate) port: Option<u16>,
    pub(crate) proto: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct FirewallContext {
    pub(crate) ssh_port: u16,
    pub(crate) v4: Vec<FirewallRule>,
    pub(crate) v6: Vec<FirewallRule>,
    /// The DNS resolvers the VM may query (the profile's, else Lima's).
    pub(crate) resolvers: Vec<String>,
    /// The machine running the VM, by address family: every new connection to it is denied.
    pub(crate) host_v4: Option<String>,
    pub(crate) host_v6: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ProxyContext {
    pub(crate) user: &'static str,
    pub(crate) port: u16,
    pub(crate) provision_port: u16,
    /// The proxy's URL for tool containers with a network (slirp4netns's host loopback).
    pub(crate) container_url: String,
    /// One anchored, case-insensitive squid `dstdom_regex` per allowed domain pattern.
    pub(crate) domain_regexes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ToolSandboxContext {
    pub(crate) mode: String,
    pub(crate) scope: String,
    pub(crate) workspace_access: String,
    pub(crate) image: String,
    pub(crate) rootfs: Option<String>,
    pub(crate) mirror: String,
    /// The profile's `none` or `bridge`.
    pub(crate) network: String,
    /// What Podman is given for it: `bridge` is slirp4netns on CONTAINER_CIDR, whose
    /// connections leave from the gateway's user, so the firewall holds them as it holds that
    /// user (web only through the proxy).
    pub(crate) podman_network: String,
    pub(crate) bridge_tools: Vec<String>,
    /// OpenClaw's gateway-side network tools the profile does not list in `bridge_tools`.
    pub(crate) denied_tools: Vec<&'static str>,
    pub(crate) memory: String,
    pub(crate) cpus: f64,
    pub(crate) pids_limit: u32,
    pub(crate) read_only_root: bool,
    pub(crate) cap_drop: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PathsContext {
    pub(crate) service_user: &'static str,
    pub(crate) install_prefix: &'static str,
    pub(crate) config_dir: &'static str,
    pub(crate) state_dir: &'static str,
    pub(crate) audit_log: &'static str,
    pub(crate) overlay_root: &'static str,
    pub(crate) lower_root: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct SshContext {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) identity_file: Option<String>,
}

impl Context {
    pub(crate) fn new(profile: &Profile) -> Self {
        let workspaces: Vec<WorkspaceContext> = profile
            .workspaces
            .iter()
            .map(|w| {
                let overlay = w.mode == WorkspaceMode::Overlay;
                WorkspaceContext {
                    name: w.name.clone(),
                    host: w.host.display().to_string(),
                    guest: w.guest.clone(),
                    mode: match w.mode {
                        WorkspaceMode::Overlay => "overlay",
                        WorkspaceMode::Readonly => "readonly",
                        WorkspaceMode::Writable => "writable",
                    },
                    mount_point: if overlay { format!("{LOWER_ROOT}/{}", w.name) } else { w.guest.clone() },
                    writable: w.mode == WorkspaceMode::Writable,
                    upper: format!("{OVERLAY_ROOT}/{}/upper", w.name),
                    work: format!("{OVERLAY_ROOT}/{}/work", w.name),
                    view: format!("{VIEW_ROOT}/{}", w.name),
                    view_unit: format!("{}.mount", systemd_escape_path(&format!("{VIEW_ROOT}/{}", w.name))),
                    mount_unit: format!("{}.mount", systemd_escape_path(&w.guest)),
                    exclude: w.exclude.clone(),
                }
            })
            .collect();
        let overlays: Vec<WorkspaceContext> = workspaces.iter().filter(|w| w.mode == "overlay").cloned().collect();
        let gateway = &profile.gateway;
        // Both install the `openclaw` package into the same place: a checkout is packed first.
        let entry = format!("{INSTALL_PREFIX}/app/node_modules/openclaw/openclaw.mjs");
        let source = gateway.source.as_ref().and_then(|s| {
            let w = workspaces.iter().find(|w| w.name == s.workspace)?;
            let dir = if s.path.is_empty() { w.mount_point.clone() } else { format!("{}/{}", w.mount_point, s.path) };
            Some(SourceContext { root: w.mount_point.clone(), dir, build: s.build.clone() })
        });
        let writable_paths = workspaces.iter().filter(|w| w.mode != "readonly").map(|w| w.guest.clone()).collect();
        let dns: Vec<String> = profile.network.dns.iter().map(ToString::to_string).collect();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let resolvers: Vec<String> =
            if dns.is_empty() && profile.vm.backend == Backend::Lima { vec![LIMA_DNS.to_owned()] } else { dns.clone() };
        for resolver in &resolvers {
            let v6_addr = resolver.contains(':');
            for proto in ["udp", "tcp"] {
                let rule = FirewallRule {
                    cidr: format!("{resolver}/{}", if v6_addr { 128 } else { 32 }),
                    port: Some(53),
                    proto,
                };
                if v6_addr { v6.push(rule) } else { v4.push(rule) }
            }
        }
        for rule in &profile.network.egress.allow {
            let r = FirewallRule { cidr: rule.cidr.to_string(), port: rule.port, proto: rule.proto.as_str() };
            if rule.cidr.is_ipv6() { v6.push(r) } else { v4.push(r) }
        }
        let ts = &profile.tool_sandbox;
        Context {
            name: profile.name.clone(),
            backend: match profile.vm.backend {
                Backend::Lima => "lima",
                Backend::Ssh => "ssh",
            },
            vm: VmContext {
                cpus: profile.vm.cpus,
                memory: profile.vm.memory.to_string(),
                disk: profile.vm.disk.to_string(),
                arch: profile.vm.arch.map(crate::profile::Arch::as_str),
                vm_type: match profile.vm.vm_type {
                    VmType::Vz => "vz",
                    VmType::Qemu => "qemu",
                },
                // Read-only is enforced by the hypervisor only for vz+virtiofs and qemu+9p.
                mount_type: match profile.vm.vm_type {
                    VmType::Vz => "virtiofs",
                    VmType::Qemu => "9p",
                },
                images: profile
                    .vm
                    .images
                    .iter()
                    .map(|(arch, image)| ImageContext {
                        arch: arch.as_str(),
                        location: image.location.clone(),
                        digest: image.digest.clone(),
                    })
                    .collect(),
                dns,
            },
            gateway: GatewayContext {
                version: gateway.version.clone(),
                port: gateway.port,
                host_port: profile.network.gateway_port,
                bind: match gateway.bind {
                    Bind::Loopback => "loopback",
                    Bind::Lan => "lan",
                },
                token_secret: gateway.token_secret.clone(),
                install: match gateway.install {
                    Install::Npm => "npm",
                    Install::Workspace => "workspace",
                },
                registry: gateway.registry.clone(),
                node_version: gateway.node.version.clone(),
                node_archive: gateway.node.archive.as_ref().map(|p| p.display().to_string()),
                node_sha256: gateway.node.sha256.clone(),
                entry,
                working_directory: workspaces.first().map_or_else(|| STATE_DIR.to_owned(), |w| w.guest.clone()),
                writable_paths,
                source,
            },
            firewall: FirewallContext {
                ssh_port: profile.vm.ssh.as_ref().map_or(22, |s| s.guest_port),
                v4,
                v6,
                resolvers,
                host_v4: profile.network.host_address.filter(IpAddr::is_ipv4).map(|a| a.to_string()),
                host_v6: profile.network.host_address.filter(IpAddr::is_ipv6).map(|a| a.to_string()),
            },
            proxy: ProxyContext {
                user: PROXY_USER,
                port: PROXY_PORT,
                provision_port: PROVISION_PROXY_PORT,
                container_url: format!("http://{CONTAINER_HOST_LOOPBACK}:{PROXY_PORT}"),
                domain_regexes: profile.network.egress.allow_domains.iter().map(domain_regex).collect(),
            },
            tool_sandbox: ToolSandboxContext {
                mode: if ts.enabled { ts.mode.clone() } else { "off".to_owned() },
                scope: ts.scope.clone(),
                workspace_access: ts.workspace_access.clone(),
                image: ts.image.clone(),
                rootfs: ts.rootfs.as_ref().map(|p| p.display().to_string()),
                mirror: ts.mirror.clone(),
                network: ts.network.clone(),
                podman_network: if ts.network == "bridge" {
                    format!("slirp4netns:cidr={CONTAINER_CIDR},allow_host_loopback=true")
                } else {
                    ts.network.clone()
                },
                bridge_tools: ts.bridge_tools.clone(),
                denied_tools: GATEWAY_NETWORK_TOOLS
                    .into_iter()
                    .filter(|t| !ts.bridge_tools.iter().any(|b| b == t))
                    .collect(),
                memory: docker_size(ts.memory.bytes()),
                cpus: ts.cpus,
                pids_limit: ts.pids_limit,
                read_only_root: ts.read_only_root,
                cap_drop: ts.cap_drop.clone(),
            },
            paths: PathsContext {
                service_user: SERVICE_USER,
                install_prefix: INSTALL_PREFIX,
                config_dir: CONFIG_DIR,
                state_dir: STATE_DIR,
                audit_log: AUDIT_LOG,
                overlay_root: OVERLAY_ROOT,
                lower_root: LOWER_ROOT,
            },
            egress_domains: profile.network.egress.allow_domains.iter().map(ToString::to_string).collect(),
            tailscale: profile.network.tailscale,
            secret_names: crate::secrets::required(profile),
            ssh: profile.vm.ssh.as_ref().map(|s| SshContext {
                host: s.host.clone(),
                port: s.port,
                user: s.user.clone(),
                identity_file: s.identity_file.as_ref().map(|p| p.display().to_string()),
            }),
            extra_vars: serde_yaml::to_value(&profile.provision.vars).unwrap_or(serde_yaml::Value::Null),
            roles_path: profile.provision.roles_path.iter().map(|p| p.display().to_string()).collect(),
            workspaces,
            overlays,
        }
    }
}

/// The squid `dstdom_regex` for a domain pattern: `example.com` matches that host only,
/// `*.example.com` every name below it but not the apex (the profile's documented meaning;
/// squid's own `.example.com` would also match the apex). A trailing dot is the same name.
fn domain_regex(pattern: &DomainPattern) -> String {
    let escaped = pattern.domain.replace('.', r"\.");
    if pattern.wildcard { format!(r"\.{escaped}\.?$") } else { format!(r"^{escaped}\.?$") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// squid matches these as POSIX extended regexes, case-insensitively (`-i`); for these
    /// patterns (literals, `\.`, `^`, `$`, `?`) the regex crate has the same meaning.
    fn matches(pattern: &str, host: &str) -> bool {
        let re = regex::RegexBuilder::new(&domain_regex(&DomainPattern::parse(pattern).expect("pattern")))
            .case_insensitive(true)
            .build()
            .expect("regex");
        re.is_match(host)
    }

    #[test]
    fn exact_domains_match_that_host_only() {
        assert!(matches("api.example.com", "api.example.com"));
        assert!(matches("api.example.com", "API.Example.com."));
        for other in ["x.api.example.com", "api.example.com.evil.net", "apixexample.com", "evil-api.example.com"] {
            assert!(!matches("api.example.com", other), "{other}");
        }
    }

    #[test]
    fn wildcards_match_subdomains_but_not_the_apex() {
        assert!(matches("*.example.com", "a.example.com"));
        assert!(matches("*.example.com", "a.b.example.com"));
        for other in ["example.com", "evilexample.com", "a.example.com.evil.net", "10.0.0.1"] {
            assert!(!matches("*.example.com", other), "{other}");
        }
    }
}
