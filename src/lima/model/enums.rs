//! Closed value sets of `lima.yaml` (Lima declares them as Go string constants).
//!
//! Spellings are exactly what Lima compares against (case-sensitive). Where Lima's resolver
//! also accepts `"default"` (documented in `templates/default.yaml` for `vmType`, `arch`,
//! `mountType`), a `Default` variant keeps such files parseable.

use serde::{Deserialize, Serialize};

/// `vmType`: the VM driver, fixed when the instance is created.
///
/// Built-in drivers are an enum; anything else is kept as [`VmType::External`] because Lima
/// also loads external driver plugins (e.g. `krunkit`) whose names it cannot know statically.
/// That means a misspelt driver name still parses; `limactl` rejects it at create time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VmType {
    /// QEMU (default on non-macOS hosts).
    Qemu,
    /// Apple Virtualization.framework (default on macOS >= 13.5).
    Vz,
    /// Windows Subsystem for Linux 2.
    Wsl2,
    /// libkrun-based driver, shipped as an external driver.
    Krunkit,
    /// Let Lima pick the host default (same as leaving the field unset).
    Default,
    /// Any other (external) driver name, verbatim.
    #[serde(untagged)]
    External(String),
}

/// `os`: guest operating system. Non-Linux guests are experimental in Lima.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Os {
    /// Linux guest (Lima's default).
    Linux,
    /// macOS guest (vz only).
    Darwin,
    /// FreeBSD guest.
    #[serde(rename = "FreeBSD")]
    FreeBsd,
    /// Windows guest (qemu only, requires `plain: true`).
    Windows,
    /// Same as unset (Linux).
    #[serde(rename = "default")]
    Default,
}

/// `arch` (top level, images, files, `cpuType` keys): Lima's `ArchTypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Arch {
    /// x86-64 (`amd64`).
    #[serde(rename = "x86_64")]
    X86_64,
    /// 64-bit ARM (`arm64`).
    #[serde(rename = "aarch64")]
    Aarch64,
    /// 32-bit `ARMv7` hard-float.
    #[serde(rename = "armv7l")]
    Armv7l,
    /// 64-bit little-endian POWER.
    #[serde(rename = "ppc64le")]
    Ppc64le,
    /// 64-bit RISC-V.
    #[serde(rename = "riscv64")]
    Riscv64,
    /// IBM Z.
    #[serde(rename = "s390x")]
    S390x,
    /// The host architecture (same as unset).
    #[serde(rename = "default")]
    Default,
}

/// `mountType` and `mountTypesUnsupported[]` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum MountType {
    /// sshfs driven from the host over the ssh connection (no chroot on the host side).
    #[serde(rename = "reverse-sshfs")]
    ReverseSshfs,
    /// virtio-9p (QEMU `-virtfs`), read-only enforced on the host side.
    #[serde(rename = "9p")]
    NineP,
    /// virtio-fs (vz, or qemu with virtiofsd on Linux hosts).
    #[serde(rename = "virtiofs")]
    Virtiofs,
    /// WSL2's own file sharing.
    #[serde(rename = "wsl2")]
    Wsl2,
    /// Let Lima resolve it from the driver (same as unset).
    #[serde(rename = "default")]
    Default,
}

/// `portForwards[].proto`. Lima compares these lower-case and case-sensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Proto {
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
    /// TCP and UDP (Lima's default since it fills unset `proto`).
    Any,
}

/// `provision[].mode` (Lima's default when unset: `system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProvisionMode {
    /// Script run as root on every boot.
    System,
    /// Script run as the guest user on every boot.
    User,
    /// cloud-init `bootcmd`, run by `/bin/sh` early in boot.
    Boot,
    /// Script run before Lima installs its own dependency packages.
    Dependency,
    /// DEPRECATED: run an ansible playbook (`playbook`).
    Ansible,
    /// Write `content` to `path` (not executed).
    Data,
    /// Edit `path` with a yq `expression`.
    Yq,
}

/// `probes[].mode`: only readiness probes exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProbeMode {
    /// Must succeed before `limactl start` reports the instance as running.
    Readiness,
}

/// `mounts[].sshfs.sftpDriver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SftpDriver {
    /// Lima's built-in Go sftp server.
    Builtin,
    /// The host's `sftp-server` binary (recommended by Lima).
    OpensshSftpServer,
}

/// `vmOpts.vz.diskImageFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DiskImageFormat {
    /// Raw disk image (default).
    Raw,
    /// Apple Sparse Image Format (macOS 26+, one-way conversion).
    Asif,
}
