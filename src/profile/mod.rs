//! Profiles: the YAML description of one sandbox, and its validated model.
//!
//! `raw` holds the serde shapes; `load` finds files and merges `extends` chains; `validate` turns
//! the merged raw document into [`Profile`], collecting every problem before failing once. Only
//! `validate` constructs a `Profile`, so every other module can trust its fields.

pub(crate) mod diagnostic;
pub(crate) mod error;
pub(crate) mod load;
pub(crate) mod net;
pub(crate) mod raw;
pub(crate) mod size;
pub(crate) mod source;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

pub(crate) use diagnostic::Diagnostic;
pub(crate) use error::ProfileError;
pub(crate) use load::ProfileSpec;
pub(crate) use net::{Cidr, DomainPattern};
pub(crate) use size::ByteSize;
pub(crate) use source::Origin;

use crate::environment::Environment;

/// Load, merge and validate the profile `spec` names.
pub(crate) fn resolve(spec: &ProfileSpec, env: &Environment) -> Result<Profile, ProfileError> {
    let loaded = load::load(spec, env)?;
    validate::validate(&loaded, env)
}

/// A validated profile. Every path is absolute, every enum closed, every default applied.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Profile {
    pub(crate) name: String,
    /// The files (or embedded profiles) this profile was merged from, the requested one first.
    #[serde(skip)]
    pub(crate) chain: Vec<Arc<Origin>>,
    pub(crate) vm: Vm,
    pub(crate) workspaces: Vec<Workspace>,
    pub(crate) network: Network,
    pub(crate) gateway: Gateway,
    pub(crate) secrets: Secrets,
    pub(crate) tool_sandbox: ToolSandbox,
    pub(crate) sync: SyncPolicy,
    pub(crate) provision: Provision,
    /// Warnings found while validating; printed by commands that load the profile.
    #[serde(skip)]
    pub(crate) warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Backend {
    Lima,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VmType {
    Vz,
    Qemu,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Vm {
    pub(crate) backend: Backend,
    pub(crate) cpus: u32,
    pub(crate) memory: ByteSize,
    pub(crate) disk: ByteSize,
    /// `None`: Lima picks the host's architecture from the images listed.
    pub(crate) arch: Option<Arch>,
    pub(crate) vm_type: VmType,
    #[serde(rename = "image")]
    pub(crate) images: BTreeMap<Arch, Image>,
    pub(crate) ssh: Option<SshTarget>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Image {
    pub(crate) location: String,
    /// `sha256:<hex>` or `sha512:<hex>`, lower-case.
    pub(crate) digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SshTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The port sshd listens on inside the guest (differs from `port` behind a port forward).
    pub(crate) guest_port: u16,
    pub(crate) user: String,
    pub(crate) identity_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WorkspaceMode {
    /// Read-only host mount with an overlay on top; writes reach the host only through sync.
    Overlay,
    /// Read-only host mount, no writes at all.
    Readonly,
    /// The host folder is writable from the VM. Unsafe; must be spelled out.
    Writable,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Workspace {
    /// Short identifier used in unit names and state paths (`[a-z0-9_-]`).
    pub(crate) name: String,
    /// Absolute, canonical host directory.
    pub(crate) host: PathBuf,
    /// Absolute path inside the VM where the agent sees the workspace.
    pub(crate) guest: String,
    pub(crate) mode: WorkspaceMode,
    pub(crate) exclude: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EgressRule {
    pub(crate) cidr: Cidr,
    pub(crate) port: Option<u16>,
    pub(crate) proto: Proto,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Egress {
    pub(crate) allow_domains: Vec<DomainPattern>,
    pub(crate) allow: Vec<EgressRule>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Network {
    pub(crate) egress: Egress,
    pub(crate) dns: Vec<std::net::IpAddr>,
    pub(crate) tailscale: bool,
    /// Host port (on 127.0.0.1 only) the gateway is forwarded to.
    pub(crate) gateway_port: u16,
    /// Where the VM reaches the machine running it (Lima: `host.lima.internal`); the firewall
    /// denies the VM every new connection to it.
    pub(crate) host_address: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Bind {
    Loopback,
    Lan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Install {
    Npm,
    Workspace,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeRuntime {
    pub(crate) version: String,
    pub(crate) archive: Option<PathBuf>,
    pub(crate) sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Gateway {
    pub(crate) version: String,
    pub(crate) port: u16,
    pub(crate) bind: Bind,
    /// Name of the secret holding the gateway token (never the value).
    #[serde(rename = "auth", serialize_with = "serialize_token_secret")]
    pub(crate) token_secret: String,
    pub(crate) install: Install,
    /// npm registry OpenClaw (`install: npm`) or a checkout's dependencies (`install: workspace`)
    /// come from.
    pub(crate) registry: String,
    pub(crate) node: NodeRuntime,
    /// The checkout `install: workspace` builds; `None` with `install: npm`.
    pub(crate) source: Option<GatewaySource>,
}

/// An OpenClaw checkout in one of the profile's workspaces, built inside the VM.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GatewaySource {
    /// Name of the workspace holding the checkout.
    pub(crate) workspace: String,
    /// The checkout's folder inside that workspace, relative, normalised (`""` for its root).
    pub(crate) path: String,
    /// Build commands (argv lists), run in a copy of the checkout after its dependencies are in.
    pub(crate) build: Vec<Vec<String>>,
}

/// OpenClaw's own build from a checkout (its README: `pnpm ui:build`, `pnpm build`); the
/// dependencies are installed before, from the lockfile.
pub(crate) const DEFAULT_SOURCE_BUILD: [&[&str]; 2] = [&["pnpm", "ui:build"], &["pnpm", "build"]];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SecretSource {
    File(PathBuf),
    Env(Vec<String>),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Secrets {
    pub(crate) sources: Vec<SecretSource>,
    pub(crate) required: Vec<String>,
}

/// The network tools OpenClaw runs in the gateway's process (through the VM's proxy), not in a
/// tool container: denied unless `tool_sandbox.bridge_tools` lists them.
pub(crate) const GATEWAY_NETWORK_TOOLS: [&str; 2] = ["web_fetch", "web_search"];

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ToolSandbox {
    pub(crate) enabled: bool,
    pub(crate) mode: String,
    pub(crate) scope: String,
    pub(crate) workspace_access: String,
    pub(crate) image: String,
    /// A root filesystem archive imported as `image` when the VM has no such image; without
    /// one, the VM debootstraps it from `mirror`.
    pub(crate) rootfs: Option<PathBuf>,
    pub(crate) mirror: String,
    pub(crate) network: String,
    pub(crate) bridge_tools: Vec<String>,
    pub(crate) memory: ByteSize,
    pub(crate) cpus: f64,
    pub(crate) pids_limit: u32,
    pub(crate) read_only_root: bool,
    pub(crate) cap_drop: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum SecretRules {
    Builtin,
    File(PathBuf),
}

/// Written as in profiles: `builtin` or the rules file's path.
impl Serialize for SecretRules {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SecretRules::Builtin => s.serialize_str("builtin"),
            SecretRules::File(path) => path.serialize(s),
        }
    }
}

fn serialize_token_secret<S: serde::Serializer>(name: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("token_secret", name)?;
    map.end()
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SyncPolicy {
    pub(crate) allow: Vec<String>,
    pub(crate) deny: Vec<String>,
    pub(crate) review: Vec<String>,
    pub(crate) max_file_size: ByteSize,
    pub(crate) max_total_size: ByteSize,
    pub(crate) max_files: u64,
    pub(crate) secret_rules: SecretRules,
    pub(crate) confirm: bool,
    /// The overlay stores its metadata in `user.overlay.*` xattrs (`userxattr` mount option).
    pub(crate) userxattr: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Provision {
    pub(crate) vars: BTreeMap<String, serde_yaml::Value>,
    pub(crate) roles_path: Vec<PathBuf>,
}
