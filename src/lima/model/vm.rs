//! Sections about the VM and its links to the host: ssh, devices, networking, port
//! forwarding, DNS, CA certificates and driver/OS specific options.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::enums::{Arch, DiskImageFormat, Proto};
use super::locator::{File, FirmwareImage};
use super::scalar;

/// `ssh`: how Lima (and the sandbox) reach the guest's sshd.
///
/// Lima's older `ssh.address` is not part of the 183a60d7 template and is rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Ssh {
    /// Host port forwarded to guest port 22; 0 = pick a free port (Lima default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) local_port: Option<u16>,
    /// Also authorize `~/.ssh/*.pub` (Lima default: false). Keep false in a sandbox.
    #[serde(rename = "loadDotSSHPubKeys", default, skip_serializing_if = "Option::is_none")]
    pub(crate) load_dot_ssh_pub_keys: Option<bool>,
    /// Forward the host ssh agent (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) forward_agent: Option<bool>,
    /// Forward X11 (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) forward_x11: Option<bool>,
    /// Trust forwarded X11 clients (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) forward_x11_trusted: Option<bool>,
    /// ssh over vsock (Lima default: true for vz with Linux guests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) over_vsock: Option<bool>,
}

/// `firmware`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Firmware {
    /// Use legacy BIOS instead of UEFI (ignored for aarch64 and vz).
    #[serde(rename = "legacyBIOS", default, skip_serializing_if = "Option::is_none")]
    pub(crate) legacy_bios: Option<bool>,
    /// Override UEFI images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) images: Option<Vec<FirmwareImage>>,
}

/// `audio` (EXPERIMENTAL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Audio {
    /// QEMU audiodev (`none`, `coreaudio`, ...) or `vz`; Lima default `""` (off).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<String>,
    /// QEMU sound hardware: `hda` or `virtio`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) interface: Option<String>,
}

/// `video`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Video {
    /// QEMU display (`none` is Lima's default, `vnc`, `default`, ...).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) display: Option<String>,
    /// VNC server options for `display: vnc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vnc: Option<Vnc>,
}

/// `video.vnc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Vnc {
    /// QEMU VNC display (Lima default `127.0.0.1:0,to=9`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) display: Option<String>,
}

/// `networks[]`: an extra NIC besides Lima's user-mode network.
///
/// `lima` names a network from `$LIMA_HOME/_config/networks.yaml` (user-defined names), so it
/// stays a string. `lima` and `socket` are mutually exclusive (Lima validation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Network {
    /// Managed network name (`shared`, `bridged`, `host`, `user-v2`, ...).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) lima: Option<String>,
    /// Unmanaged QEMU-compatible socket (`socket_vmnet`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) socket: Option<String>,
    /// vz NAT attachment: the guest IP becomes reachable from the host.
    #[serde(rename = "vzNAT", default, skip_serializing_if = "Option::is_none")]
    pub(crate) vz_nat: Option<bool>,
    /// Guest MAC address (Lima derives one from the instance name).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) mac_address: Option<String>,
    /// Guest interface name (Lima default `lima0`, `lima1`, ...).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) interface: Option<String>,
    /// Route metric (Lima default 100; the user-mode network uses 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metric: Option<u32>,
}

/// `portForwards[]`: one rule; the first matching rule wins.
///
/// Ports are `u16` because Lima rejects anything outside 1–65535 anyway; 0/unset means "not
/// given". `guestIPMustBeZero` defaults to `guestIP == 0.0.0.0` (since Lima 2.0), so a wide
/// rule that should also catch loopback binds must say `false` explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PortForward {
    /// With `guestIP: 0.0.0.0`: match only sockets bound to 0.0.0.0 itself.
    #[serde(rename = "guestIPMustBeZero", default, skip_serializing_if = "Option::is_none")]
    pub(crate) guest_ip_must_be_zero: Option<bool>,
    /// Guest bind address to match (Lima default 127.0.0.1).
    #[serde(rename = "guestIP", default, skip_serializing_if = "Option::is_none")]
    pub(crate) guest_ip: Option<IpAddr>,
    /// Single guest port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) guest_port: Option<u16>,
    /// Inclusive guest port range `[first, last]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) guest_port_range: Option<[u16; 2]>,
    /// Guest unix socket path (Go template).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) guest_socket: Option<String>,
    /// Host address to bind (Lima default 127.0.0.1).
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub(crate) host_ip: Option<IpAddr>,
    /// Single host port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host_port: Option<u16>,
    /// Inclusive host port range, same length as `guestPortRange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host_port_range: Option<[u16; 2]>,
    /// Host unix socket path; relative paths go under `{{.Dir}}/sock/`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) host_socket: Option<String>,
    /// Lima default: `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) proto: Option<Proto>,
    /// Forward host socket into the guest (sockets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reverse: Option<bool>,
    /// Matching ports are not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ignore: Option<bool>,
    /// Set up at start even without the guest agent; the only rules honoured in plain mode.
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub(crate) static_: Option<bool>,
}

/// `hostResolver`: DNS for the guest answered by the host agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HostResolver {
    /// Lima default: true. `dns` is only honoured when this is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) enabled: Option<bool>,
    /// Return AAAA records too (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ipv6: Option<bool>,
    /// Static names: hostname -> IP or other hostname.
    #[serde(default, deserialize_with = "scalar::opt_string_map", skip_serializing_if = "Option::is_none")]
    pub(crate) hosts: Option<BTreeMap<String, String>>,
}

/// `caCerts`: extra trusted CAs passed to cloud-init.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CaCerts {
    /// Drop the OS's default CA bundle (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remove_defaults: Option<bool>,
    /// Host files read at start.
    #[serde(default, deserialize_with = "scalar::opt_string_list", skip_serializing_if = "Option::is_none")]
    pub(crate) files: Option<Vec<String>>,
    /// PEM certificates inline.
    #[serde(default, deserialize_with = "scalar::opt_string_list", skip_serializing_if = "Option::is_none")]
    pub(crate) certs: Option<Vec<String>>,
}

/// Rosetta settings (`vmOpts.vz.rosetta`, and the DEPRECATED top-level `rosetta`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Rosetta {
    /// Enable Rosetta in the VM (vz only; Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) enabled: Option<bool>,
    /// Register Rosetta in `binfmt_misc` (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) binfmt: Option<bool>,
}

/// `vmOpts`: per-driver options.
///
/// Lima types this as `map[VMType]any` and decodes only the entry of the active driver. The
/// model is strict: only `qemu` and `vz` (the keys documented in `templates/default.yaml`) are
/// accepted, so options for an external driver would need a new field here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct VmOpts {
    /// Used when `vmType: qemu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) qemu: Option<QemuOpts>,
    /// Used when `vmType: vz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vz: Option<VzOpts>,
}

/// `vmOpts.qemu`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct QemuOpts {
    /// Minimum QEMU version required to create the instance.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) minimum_version: Option<String>,
    /// QEMU `-cpu` per guest arch (e.g. `x86_64: Haswell-v4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_type: Option<BTreeMap<Arch, String>>,
}

/// `vmOpts.vz`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct VzOpts {
    /// Primary disk format (Lima default `raw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) disk_image_format: Option<DiskImageFormat>,
    /// Rosetta (Apple silicon hosts, Linux guests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rosetta: Option<Rosetta>,
}

/// `osOpts` (EXPERIMENTAL): per-guest-OS options, keyed by the `os` value.
///
/// Lima types this as `map[OS]any`; only Windows uses it, so only `Windows` is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OsOpts {
    /// Options for `os: Windows` (the key is capitalised like the `os` value).
    #[serde(rename = "Windows", default, skip_serializing_if = "Option::is_none")]
    pub(crate) windows: Option<WindowsOpts>,
}

/// `osOpts.Windows`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct WindowsOpts {
    /// virtio-win driver ISOs per arch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) virtio_win: Option<Vec<File>>,
}
