//! Sections about what runs and what is visible inside the guest: mounts, provisioning,
//! probes, containerd, the guest user, and files copied back to the host.

use serde::{Deserialize, Serialize};

use super::enums::{ProbeMode, ProvisionMode, SftpDriver};
use super::locator::{File, LocatorWithDigest};
use super::scalar;

/// `mounts[]`: a host directory exposed to the guest (Lima's `Mount`).
///
/// The mount "might be accessible from all UIDs in the guest", and Lima creates a missing
/// `location` on the host at start; see lima.md §1.4 for where read-only is enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Mount {
    /// Host path (absolute or `~...`, Go templates allowed). REQUIRED by Lima.
    pub(crate) location: String,
    /// Guest path (Lima default: same as `location`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) mount_point: Option<String>,
    /// Lima default: false (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) writable: Option<bool>,
    /// Options for `mountType: reverse-sshfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sshfs: Option<Sshfs>,
    /// Options for `mountType: 9p` (the YAML key is `9p`).
    #[serde(rename = "9p", default, skip_serializing_if = "Option::is_none")]
    pub(crate) nine_p: Option<NineP>,
    /// Options for `mountType: virtiofs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) virtiofs: Option<Virtiofs>,
}

/// `mounts[].sshfs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Sshfs {
    /// Lima default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cache: Option<bool>,
    /// Lima default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) follow_symlinks: Option<bool>,
    /// Lima default: `openssh-sftp-server` when found, else `builtin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sftp_driver: Option<SftpDriver>,
}

/// `mounts[].9p`. Values are passed through to QEMU/the guest kernel, so they stay strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct NineP {
    /// `passthrough`, `mapped-xattr`, `mapped-file` or `none` (Lima default).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) security_model: Option<String>,
    /// `9p2000`, `9p2000.u` or `9p2000.L` (Lima default).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) protocol_version: Option<String>,
    /// Packet payload size, go-units string (Lima default `128KiB`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) msize: Option<String>,
    /// `none`, `loose`, `fscache` or `mmap`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) cache: Option<String>,
}

/// `mounts[].virtiofs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Virtiofs {
    /// virtqueue size (qemu + virtiofsd only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) queue_size: Option<u32>,
}

/// `provision[]`: a boot-time script, data file or yq edit (Lima's `Provision` with
/// `ProvisionData` inlined).
///
/// Scripts re-run on every boot, so they must be idempotent. Which fields are allowed for
/// which `mode` is Lima's validation, not the parser's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Provision {
    /// Lima default: `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<ProvisionMode>,
    /// Only for `mode: dependency`: skip Lima's own package installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) skip_default_dependency_resolution: Option<bool>,
    /// Script text (Go template); must be empty when `file` is set.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) script: Option<String>,
    /// EXPERIMENTAL: read into `script`/`content` at create time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<LocatorWithDigest>,
    /// DEPRECATED (`mode: ansible`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) playbook: Option<String>,
    /// `mode: data`: file content.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    /// `mode: data`: rewrite on every boot (Lima default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) overwrite: Option<bool>,
    /// `data`/`yq`: any `chown` owner (Lima default `root:root` on Linux).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
    /// `data`/`yq`: guest file path.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    /// `data`/`yq`: octal mode; Lima's templates write it unquoted (`755`), hence lenient.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) permissions: Option<String>,
    /// `mode: yq`: the yq expression.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) expression: Option<String>,
    /// `mode: yq`: file format (`auto`, `ini`, `json`, `toml`, `yaml`, ...); passed to yq.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<String>,
}

/// `probes[]`: a readiness check run as the guest user (script must start with `#!`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Probe {
    /// Lima default: `readiness`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<ProbeMode>,
    /// Shown while waiting.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Probe script (Go template).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) script: Option<String>,
    /// EXPERIMENTAL: read into `script` at create time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<LocatorWithDigest>,
    /// Shown when the probe fails.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

/// `containerd`: Lima's bundled nerdctl-full installation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Containerd {
    /// Rootful containerd (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) system: Option<bool>,
    /// Rootless containerd (Lima default: true on Linux `x86_64`/`aarch64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<bool>,
    /// Override the nerdctl-full archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) archives: Option<Vec<File>>,
}

/// `user`: the guest account Lima creates and logs in as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct User {
    /// Lima default: the host user name if valid, else `lima`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// GECOS comment.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<String>,
    /// Guest home (Lima default `/home/{{.User}}.guest`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) home: Option<String>,
    /// Login shell (must exist in the image).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) shell: Option<String>,
    /// Lima default: the host user's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<u32>,
    /// EXPERIMENTAL (Lima >= 2.2): false gives the user a random password in `~/password`
    /// instead of passwordless sudo; on Linux guests it requires `plain: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) passwordless_sudo: Option<bool>,
}

/// `copyToHost[]`: a guest file copied to a host path after provisioning.
///
/// Guest-controlled content written on the host: the sandbox never renders it, but it must
/// parse so Lima's templates (k3s, k8s, ...) can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CopyToHost {
    /// Guest path (Go template).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) guest: Option<String>,
    /// Host path (Go template, e.g. under `{{.Dir}}`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// Do not fail when the guest file is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) skip_if_missing: Option<bool>,
    /// Delete the host copy when the instance stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delete_on_stop: Option<bool>,
}
