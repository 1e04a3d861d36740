//! The profile exactly as written in YAML: serde shapes only, no meaning.
//!
//! Every struct denies unknown fields so a typo is an error, never a silently ignored key (the prior
//! art's Pydantic models ignored unknown keys). Everything optional is `Option` so that `extends`
//! can tell "not said" from "said"; defaults are applied in `validate`, never here.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    pub(crate) name: Option<String>,
    /// Consumed by the loader before deserialisation; kept here so the key is known.
    #[allow(dead_code)]
    pub(crate) extends: Option<String>,
    pub(crate) vm: Option<RawVm>,
    pub(crate) workspaces: Option<Vec<RawWorkspace>>,
    pub(crate) network: Option<RawNetwork>,
    pub(crate) gateway: Option<RawGateway>,
    pub(crate) secrets: Option<RawSecrets>,
    pub(crate) tool_sandbox: Option<RawToolSandbox>,
    pub(crate) sync: Option<RawSync>,
    pub(crate) provision: Option<RawProvision>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVm {
    pub(crate) backend: Option<String>,
    pub(crate) cpus: Option<u32>,
    pub(crate) memory: Option<String>,
    pub(crate) disk: Option<String>,
    pub(crate) arch: Option<String>,
    pub(crate) vm_type: Option<String>,
    pub(crate) image: Option<BTreeMap<String, RawImage>>,
    pub(crate) ssh: Option<RawSsh>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImage {
    pub(crate) location: Option<String>,
    pub(crate) digest: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsh {
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) guest_port: Option<u16>,
    pub(crate) user: Option<String>,
    pub(crate) identity_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkspace {
    pub(crate) name: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) guest: Option<String>,
    pub(crate) mode: Option<String>,
    pub(crate) exclude: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub(crate) egress: Option<RawEgress>,
    pub(crate) dns: Option<Vec<String>>,
    pub(crate) tailscale: Option<bool>,
    pub(crate) gateway_port: Option<u16>,
    pub(crate) host_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgress {
    pub(crate) allow_domains: Option<Vec<String>>,
    pub(crate) allow: Option<Vec<RawEgressRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgressRule {
    pub(crate) cidr: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) proto: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub(crate) version: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) bind: Option<String>,
    pub(crate) auth: Option<RawGatewayAuth>,
    pub(crate) install: Option<String>,
    pub(crate) registry: Option<String>,
    pub(crate) node: Option<RawNode>,
    pub(crate) source: Option<RawGatewaySource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGatewaySource {
    pub(crate) workspace: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) build: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGatewayAuth {
    pub(crate) token_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub(crate) version: Option<String>,
    pub(crate) archive: Option<String>,
    pub(crate) sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecrets {
    pub(crate) sources: Option<Vec<RawSecretSource>>,
    pub(crate) required: Option<Vec<String>>,
}

/// One secrets source, written as a single-key map: `- file: PATH`, `- env: [NAMES]`,
/// `- exec: [ARGV]`. A struct rather than an enum so that a typo gets "did you mean"; `validate`
/// checks that exactly one key is set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretSource {
    pub(crate) file: Option<String>,
    pub(crate) env: Option<Vec<String>>,
    pub(crate) exec: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToolSandbox {
    pub(crate) enabled: Option<bool>,
    pub(crate) mode: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) workspace_access: Option<String>,
    pub(crate) image: Option<String>,
    pub(crate) rootfs: Option<String>,
    pub(crate) mirror: Option<String>,
    pub(crate) network: Option<String>,
    pub(crate) bridge_tools: Option<Vec<String>>,
    pub(crate) memory: Option<String>,
    pub(crate) cpus: Option<f64>,
    pub(crate) pids_limit: Option<u32>,
    pub(crate) read_only_root: Option<bool>,
    pub(crate) cap_drop: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSync {
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) deny: Option<Vec<String>>,
    pub(crate) review: Option<Vec<String>>,
    pub(crate) max_file_size: Option<String>,
    pub(crate) max_total_size: Option<String>,
    pub(crate) max_files: Option<u64>,
    pub(crate) secret_rules: Option<String>,
    pub(crate) confirm: Option<bool>,
    pub(crate) userxattr: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvision {
    pub(crate) vars: Option<BTreeMap<String, serde_yaml::Value>>,
    pub(crate) roles_path: Option<Vec<String>>,
}
