//! Strict, typed serde model of Lima's instance YAML (`lima.yaml`).
//!
//! Owns the shape of the file the sandbox renders into a Lima instance directory and the
//! parser that checks it. Modelled on `LimaYAML` in `pkg/limatype/lima_yaml.go` and on the
//! documented `templates/default.yaml` at lima-vm/lima 183a60d7 (v2.2.0+); see
//! the design notes `lima.md` §1.1–1.4 (shared design docs, outside this repo).
//!
//! Why strict: `limactl` decodes non-strictly and only *warns* on unknown keys, so a typo such
//! as `writeable: true` or `portForward:` would be silently ignored and a hardening setting
//! lost. Here every struct has `deny_unknown_fields`, and closed value sets are enums.
//!
//! Why everything is `Option`: Lima uses nullable pointers, so an explicit `null` means "use
//! the default" (from `_config/default.yaml`, else builtin), which is different from a value.
//! Serialization skips `None`, so a rendered instance round-trips.
//!
//! Exception: what Lima marks REQUIRED (`location` of mounts/images/files, `url` of a locator
//! object, `name` of a disk object) is a plain `String`, so a missing one is a parse error.
//!
//! Deliberate deviations from Lima's decoder are documented on the types: scalars are read as
//! text for string fields (`scalar`), `vmType` keeps unknown (external driver) names, and
//! `vmOpts`/`osOpts` accept only the documented keys.

// The renderer (not written yet) consumes this model; until then most items are unused.
#![allow(dead_code)]

mod enums;
mod guest;
mod locator;
mod scalar;
mod vm;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

// The model's API: every type is nameable as `lima::X`, whether or not a consumer uses it yet.
#[allow(unused_imports)]
pub(crate) use enums::{Arch, DiskImageFormat, MountType, Os, ProbeMode, Proto, ProvisionMode, SftpDriver, VmType};
#[allow(unused_imports)]
pub(crate) use guest::{Containerd, CopyToHost, Mount, NineP, Probe, Provision, Sshfs, User, Virtiofs};
#[allow(unused_imports)]
pub(crate) use locator::{
    BaseTemplates, Disk, DiskSpec, File, FirmwareImage, Image, Kernel, LocatorWithDigest, UrlDigest,
};
#[allow(unused_imports)]
pub(crate) use vm::{
    Audio, CaCerts, Firmware, HostResolver, Network, OsOpts, PortForward, QemuOpts, Rosetta, Ssh, Video, VmOpts, Vnc,
    VzOpts, WindowsOpts,
};

/// A whole `lima.yaml` (Lima's `LimaYAML`), also usable for template fragments such as
/// `_images/*.yaml` and `_default/mounts.yaml`, which are partial instances.
///
/// Fields are in Lima's struct order. Sections that are plain structs in Go (`ssh`,
/// `containerd`, ...) are `Option` here too, so that `ssh: null` and an absent `ssh` both
/// parse and absent sections are not rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct LimaYaml {
    /// EXPERIMENTAL base templates merged at create time. The sandbox renders without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) base: Option<BaseTemplates>,
    /// Semver; Lima refuses the file when older.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) minimum_lima_version: Option<String>,
    /// Driver, fixed at create time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vm_type: Option<VmType>,
    /// Per-driver options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vm_opts: Option<VmOpts>,
    /// Guest OS (Lima default `Linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) os: Option<Os>,
    /// EXPERIMENTAL per-guest-OS options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) os_opts: Option<OsOpts>,
    /// Guest arch (Lima default: host arch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) arch: Option<Arch>,
    /// Candidate disk images; the first matching the arch (and variant filters) is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) images: Option<Vec<Image>>,
    /// DEPRECATED: use `vmOpts.qemu.cpuType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_type: Option<BTreeMap<Arch, String>>,
    /// vCPUs (Lima default min(4, host cores)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpus: Option<u32>,
    /// go-units size, e.g. `8GiB`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) memory: Option<String>,
    /// go-units size of the primary disk (Lima default `100GiB`; cannot shrink).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) disk: Option<String>,
    /// Extra Lima disks, mounted at `/mnt/lima-NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) additional_disks: Option<Vec<Disk>>,
    /// Host directories exposed to the guest. `Some(vec![])` renders `mounts: []`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mounts: Option<Vec<Mount>>,
    /// Mount types the image's kernel cannot do (distro hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mount_types_unsupported: Option<Vec<MountType>>,
    /// Lima default: `virtiofs` for vz, `9p` for qemu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mount_type: Option<MountType>,
    /// EXPERIMENTAL inotify forwarding for writable mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mount_inotify: Option<bool>,
    /// ssh settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ssh: Option<Ssh>,
    /// Firmware settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) firmware: Option<Firmware>,
    /// EXPERIMENTAL audio device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audio: Option<Audio>,
    /// Display settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) video: Option<Video>,
    /// Boot-time scripts, data files and yq edits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provision: Option<Vec<Provision>>,
    /// Upgrade packages on boot (Lima default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upgrade_packages: Option<bool>,
    /// Lima's bundled containerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) containerd: Option<Containerd>,
    /// Guest prefix for the guest agent and containerd (Lima default `/usr/local`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) guest_install_prefix: Option<String>,
    /// Readiness probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) probes: Option<Vec<Probe>>,
    /// Port forwarding rules (Lima adds its own ssh ignore rules and a fallback rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) port_forwards: Option<Vec<PortForward>>,
    /// Guest files copied to the host after provisioning. Never rendered by the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) copy_to_host: Option<Vec<CopyToHost>>,
    /// Go template shown after start.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    /// Extra NICs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) networks: Option<Vec<Network>>,
    /// Guest `/etc/environment` additions. Stored on host and guest: no secrets.
    #[serde(default, deserialize_with = "scalar::opt_string_map", skip_serializing_if = "Option::is_none")]
    pub(crate) env: Option<BTreeMap<String, String>>,
    /// Template parameters (`{{.Param.X}}`, `$PARAM_X`). No secrets.
    #[serde(default, deserialize_with = "scalar::opt_string_map", skip_serializing_if = "Option::is_none")]
    pub(crate) param: Option<BTreeMap<String, String>>,
    /// Nameservers; only used when `hostResolver.enabled` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dns: Option<Vec<IpAddr>>,
    /// Host-agent DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host_resolver: Option<HostResolver>,
    /// Copy host `*_proxy` variables into the guest (Lima default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) propagate_proxy_env: Option<bool>,
    /// Extra trusted CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_certs: Option<CaCerts>,
    /// DEPRECATED: use `vmOpts.vz.rosetta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rosetta: Option<Rosetta>,
    /// Plain mode: no mounts, guest agent, dynamic port forwards or containerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plain: Option<bool>,
    /// zoneinfo name; `""` sets none (Lima default: the host's).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) timezone: Option<String>,
    /// Allow VMs inside the guest (vz on M3+, krunkit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nested_virtualization: Option<bool>,
    /// Guest user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<User>,
    /// EXPERIMENTAL emulated TPM 2.0 via swtpm (qemu only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tpm: Option<bool>,
}

/// Parses `yaml` as a `lima.yaml`, rejecting unknown keys, duplicate keys and values outside
/// the closed sets.
///
/// A document with no content (empty or comments only) is an empty config for Lima, so it
/// parses to [`LimaYaml::default`].
pub(crate) fn parse_strict(yaml: &str) -> Result<LimaYaml, serde_yaml::Error> {
    // serde_yaml reads an empty document as `null`, which a struct would reject.
    match serde_yaml::from_str::<Option<LimaYaml>>(yaml)? {
        Some(parsed) => Ok(parsed),
        None => Ok(LimaYaml::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// Lima's own files (Apache-2.0), kept outside the repo; read at test time only.
    const LIMA_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/lima");

    /// Parses, re-renders and re-parses; returns a description of the first problem.
    fn check_round_trip(yaml: &str) -> Result<LimaYaml, String> {
        let parsed = parse_strict(yaml).map_err(|e| format!("parse: {e}"))?;
        let rendered = serde_yaml::to_string(&parsed).map_err(|e| format!("render: {e}"))?;
        let reparsed = parse_strict(&rendered).map_err(|e| format!("re-parse: {e}"))?;
        if reparsed != parsed {
            return Err(format!("round trip changed the model:\n{rendered}"));
        }
        Ok(parsed)
    }

    /// The stored templates are Lima's `templates/` tree flattened (`_images/ubuntu.yaml` is
    /// `_images_ubuntu.yaml`), and Lima's symlinks (`_images/ubuntu.yaml` -> `ubuntu-26.04.yaml`)
    /// became files holding just the target name. Follow those, first inside the same flattened
    /// directory prefix, so the real template is tested instead of a bare string.
    fn read_template(path: &Path) -> String {
        let mut path = path.to_path_buf();
        for _ in 0..8 {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let target = text.trim();
            let is_link = !target.contains(char::is_whitespace) && !target.contains(':') && target.ends_with(".yaml");
            if !is_link {
                return text;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let prefix = name.rfind('_').map_or("", |i| &name[..=i]);
            let sibling = path.with_file_name(format!("{prefix}{target}"));
            path = if sibling.exists() { sibling } else { path.with_file_name(target) };
        }
        panic!("symlink chain too long at {}", path.display());
    }

    fn yaml_files(dir: &Path, recursive: bool) -> Vec<PathBuf> {
        let walker = walkdir::WalkDir::new(dir).max_depth(if recursive { usize::MAX } else { 1 });
        let mut files: Vec<PathBuf> = walker
            .into_iter()
            .map(|entry| entry.unwrap_or_else(|e| panic!("walk {}: {e}", dir.display())))
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "yaml"))
            .map(walkdir::DirEntry::into_path)
            .collect();
        files.sort();
        files
    }

    fn assert_all_parse(files: &[PathBuf]) {
        let failures: Vec<String> = files
            .iter()
            .filter_map(|path| {
                let problem = check_round_trip(&read_template(path)).err()?;
                Some(format!("{}: {problem}", path.display()))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn lima_reference_files_parse_and_round_trip() {
        let files = yaml_files(Path::new(LIMA_DATA), false);
        // default.yaml, _default-mounts.yaml and two image lists at the time of writing.
        assert!(files.len() >= 4, "expected Lima's reference files in {LIMA_DATA}");
        assert_all_parse(&files);
    }

    #[test]
    fn lima_templates_parse_and_round_trip() {
        let files = yaml_files(&Path::new(LIMA_DATA).join("templates"), true);
        assert!(files.len() >= 100, "expected Lima's templates in {LIMA_DATA}/templates");
        assert_all_parse(&files);
    }

    #[test]
    fn default_template_nulls_are_none_and_documented_values_kept() {
        let text = std::fs::read_to_string(Path::new(LIMA_DATA).join("default.yaml")).expect("read default.yaml");
        let parsed = parse_strict(&text).expect("default.yaml parses");
        assert_eq!(parsed.vm_type, None);
        assert_eq!(parsed.images, Some(vec![]));
        assert_eq!(parsed.minimum_lima_version.as_deref(), Some("2.0.0"));
        let ssh = parsed.ssh.expect("ssh section");
        assert_eq!(ssh, Ssh::default());
        assert!(matches!(parsed.base, Some(BaseTemplates::List(ref l)) if l.len() == 2));
    }

    #[test]
    fn unknown_keys_are_rejected_at_every_level() {
        for (yaml, key) in [
            ("portForward: []\n", "portForward"),
            ("mounts: [{location: \"~\", writeable: true}]\n", "writeable"),
            ("mounts: [{location: /x, 9p: {msizee: 1}}]\n", "msizee"),
            ("ssh: {localport: 0}\n", "localport"),
            ("vmOpts: {krunkit: {}}\n", "krunkit"),
            ("images: [{location: /i, kernel: {location: /k, cmdLine: x}}]\n", "cmdLine"),
            ("provision: [{mode: data, path: /p, contents: x}]\n", "contents"),
            ("provision: [{file: {url: ./a.sh, digets: x}}]\n", "digets"),
            ("additionalDisks: [{name: data, fstype: ext4}]\n", "fstype"),
            ("base: [{url: ./b.yaml, sha: x}]\n", "sha"),
        ] {
            let err = parse_strict(yaml).expect_err(yaml).to_string();
            assert!(err.contains(key), "{yaml}: error does not name `{key}`: {err}");
        }
    }

    #[test]
    fn values_outside_closed_sets_are_rejected() {
        for yaml in [
            "portForwards: [{guestPort: 80, proto: TCP}]\n",
            "mountType: nfs\n",
            "os: linux\n",
            "arch: amd64\n",
            "provision: [{mode: root, script: x}]\n",
            "probes: [{mode: liveness, script: x}]\n",
            "vmOpts: {vz: {diskImageFormat: qcow2}}\n",
            "portForwards: [{guestPort: 70000}]\n",
            "dns: [not-an-ip]\n",
            "cpus: four\n",
            "base: {url: ./b.yaml}\n",
            "additionalDisks: [[data, true]]\n",
            "probes: [{file: [./p.sh]}]\n",
        ] {
            assert!(parse_strict(yaml).is_err(), "accepted: {yaml}");
        }
    }

    #[test]
    fn port_forward_guest_ip_must_be_zero_false_round_trips() {
        let yaml = "portForwards:\n\
                    - guestIP: \"0.0.0.0\"\n  guestIPMustBeZero: false\n  proto: any\n  ignore: true\n\
                    - guestSocket: /run/user/{{.UID}}/my.sock\n  hostSocket: mysocket\n\
                    - guestPortRange: [4000, 4999]\n  hostIP: \"::1\"\n  static: true\n";
        let parsed = check_round_trip(yaml).expect("port forwards");
        let rules = parsed.port_forwards.expect("rules");
        assert_eq!(rules[0].guest_ip_must_be_zero, Some(false));
        assert_eq!(rules[0].guest_ip, Some(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(rules[0].proto, Some(Proto::Any));
        assert_eq!(rules[2].guest_port_range, Some([4000, 4999]));
        assert_eq!(rules[2].static_, Some(true));
        let rendered = serde_yaml::to_string(&rules[0]).expect("render");
        assert!(rendered.contains("guestIPMustBeZero: false"), "{rendered}");
        assert!(!rendered.contains("hostIP"), "None must not render: {rendered}");
    }

    #[test]
    fn polymorphic_fields_take_both_forms() {
        let yaml = "base: template:_default/mounts\n\
                    additionalDisks: [data, {name: scratch, format: true, fsType: ext4, fsArgs: [-m, 0]}]\n\
                    provision:\n- file: user.sh\n- file: {url: ./sys.sh, digest: deadbeef}\n\
                    mounts: [{location: /src, mountPoint: /mnt/src, 9p: {msize: 128KiB, cache: mmap}}]\n";
        let parsed = check_round_trip(yaml).expect("polymorphic");
        assert_eq!(parsed.base, Some(BaseTemplates::One("template:_default/mounts".into())));
        let disks = parsed.additional_disks.expect("disks");
        assert_eq!(disks[0], Disk::Name("data".into()));
        let Disk::Spec(spec) = &disks[1] else { panic!("long form: {disks:?}") };
        assert_eq!(spec.fs_args.as_deref(), Some(&["-m".to_owned(), "0".to_owned()][..]));
        let provision = parsed.provision.expect("provision");
        assert_eq!(provision[0].file, Some(LocatorWithDigest::Url("user.sh".into())));
        assert!(matches!(&provision[1].file,
            Some(LocatorWithDigest::WithDigest(u)) if u.digest.as_deref() == Some("deadbeef")));
        let nine_p = parsed.mounts.expect("mounts")[0].nine_p.clone().expect("9p");
        assert_eq!(nine_p.msize.as_deref(), Some("128KiB"));
    }

    #[test]
    fn scalars_in_string_fields_are_read_as_text_like_lima() {
        let yaml = "param: {snapshotter: true, port: 8080, empty: null}\n\
                    provision: [{mode: data, path: /p, content: x, permissions: 755}]\n";
        let parsed = check_round_trip(yaml).expect("lenient scalars");
        let param = parsed.param.expect("param");
        assert_eq!(param["snapshotter"], "true");
        assert_eq!(param["port"], "8080");
        assert_eq!(param["empty"], "");
        let provision = parsed.provision.expect("provision");
        assert_eq!(provision[0].permissions.as_deref(), Some("755"));
        assert!(parse_strict("memory: {size: 4}\n").is_err(), "mappings stay errors");
    }

    #[test]
    fn vm_type_keeps_external_driver_names() {
        assert_eq!(parse_strict("vmType: vz\n").unwrap().vm_type, Some(VmType::Vz));
        assert_eq!(parse_strict("vmType: krunkit\n").unwrap().vm_type, Some(VmType::Krunkit));
        let ext = check_round_trip("vmType: my-driver\n").expect("external").vm_type;
        assert_eq!(ext, Some(VmType::External("my-driver".into())));
    }

    #[test]
    fn empty_documents_are_empty_configs() {
        assert_eq!(parse_strict("").unwrap(), LimaYaml::default());
        assert_eq!(parse_strict("# only a comment\n").unwrap(), LimaYaml::default());
        assert!(parse_strict("just a string\n").is_err());
    }

    /// Hand-written equivalent of lima.md Appendix A (profile "strict").
    const HARDENED: &str = r#"
minimumLimaVersion: "2.2.0"
vmType: vz
os: Linux
arch: aarch64
images:
- location: "https://example.invalid/noble-server-cloudimg-arm64.img"
  arch: aarch64
  digest: "sha256:0000000000000000000000000000000000000000000000000000000000000001"
- location: "https://example.invalid/noble-server-cloudimg-amd64.img"
  arch: x86_64
  digest: "sha256:0000000000000000000000000000000000000000000000000000000000000002"
cpus: 4
memory: "8GiB"
disk: "40GiB"
plain: true
mounts: []
ssh:
  localPort: 0
  loadDotSSHPubKeys: false
  forwardAgent: false
  forwardX11: false
  forwardX11Trusted: false
user:
  passwordlessSudo: false
containerd: {system: false, user: false}
vmOpts:
  vz:
    rosetta: {enabled: false, binfmt: false}
upgradePackages: false
propagateProxyEnv: false
hostResolver: {enabled: true, ipv6: false}
provision:
- mode: system
  script: |
    #!/bin/bash
    passwd -l "{{.User}}"
    rm -f "{{.Home}}/password"
probes:
- mode: readiness
  description: sandbox hardening applied
  script: |
    #!/bin/bash
    ! sudo -n true 2>/dev/null
  hint: Hardening provisioning did not finish.
"#;

    #[test]
    fn hardened_appendix_a_instance_parses_and_round_trips() {
        let parsed = check_round_trip(HARDENED).expect("hardened instance");
        assert_eq!(parsed.plain, Some(true));
        assert_eq!(parsed.mounts, Some(vec![]));
        assert_eq!(parsed.os, Some(Os::Linux));
        assert_eq!(parsed.arch, Some(Arch::Aarch64));
        assert_eq!(parsed.ssh.as_ref().and_then(|s| s.load_dot_ssh_pub_keys), Some(false));
        assert_eq!(parsed.user.as_ref().and_then(|u| u.passwordless_sudo), Some(false));
        let vz = parsed.vm_opts.as_ref().and_then(|o| o.vz.as_ref()).expect("vz opts");
        assert_eq!(vz.rosetta.as_ref().and_then(|r| r.enabled), Some(false));
        assert_eq!(parsed.provision.as_ref().map(Vec::len), Some(1));
        assert_eq!(parsed.probes.as_ref().expect("probes")[0].mode, Some(ProbeMode::Readiness));
        let rendered = serde_yaml::to_string(&parsed).expect("render");
        assert!(rendered.contains("mounts: []"), "explicit empty mounts kept:\n{rendered}");
    }
}
