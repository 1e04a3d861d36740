//! Things `lima.yaml` points at: base templates, script files, images, kernels, firmware,
//! containerd archives and additional disks.
//!
//! Lima's `File` embeds into several Go structs with `yaml:",inline"`. serde cannot combine
//! `flatten` with `deny_unknown_fields`, so each Rust struct spells out the inlined fields.
//!
//! The "string or object" fields serialize like serde's untagged enums but deserialize through
//! [`StrOr`], because an untagged enum reports only "did not match any variant" and would hide
//! the precise error (e.g. the misspelt key) of the object form.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::enums::{Arch, VmType};
use super::scalar;

/// Lima's `LocatorWithDigest`: a URL/path string, or `{url, digest}`.
///
/// Used by `base` items and by `provision[].file` / `probes[].file`. Relative locators are
/// resolved against the template's own location; `digest` is not verified by Lima yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum LocatorWithDigest {
    /// Bare URL or path (`template:_images/ubuntu`, `./base.yaml`, `https://...`).
    Url(String),
    /// Object form with an optional (currently unused) digest.
    WithDigest(UrlDigest),
}

/// Object form of [`LocatorWithDigest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UrlDigest {
    /// REQUIRED by Lima.
    pub(crate) url: String,
    /// Accepted but not verified by Lima (TODO upstream).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
}

/// `base`: one locator string or a list of locators (Lima's `BaseTemplates`).
///
/// EXPERIMENTAL in Lima and merged at create time; the sandbox renders fully embedded YAML and
/// only models it so that Lima's own templates parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum BaseTemplates {
    /// `base: template:_default/mounts`.
    One(String),
    /// `base: [a, {url: b, digest: c}]`.
    List(Vec<LocatorWithDigest>),
}

/// Lima's `File`: a downloadable file pinned to an arch (containerd archives,
/// `osOpts.Windows.virtioWin`, `images[].initrd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct File {
    /// URL or local path. REQUIRED by Lima.
    pub(crate) location: String,
    /// Architecture this file is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) arch: Option<Arch>,
    /// `sha256:...` / `sha512:...`; checked by Lima when present.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
}

/// `images[]`: a disk image (Lima's `Image` = inline `File` + variant fields + kernel/initrd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Image {
    /// URL or local path of the image. REQUIRED by Lima.
    pub(crate) location: String,
    /// Architecture of the image; the first image matching the instance arch is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) arch: Option<Arch>,
    /// Pin it: Lima only verifies the download when a digest is given.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// Image flavour (`server`, `minimal`, `genericcloud`, ...) for `--image-variant`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
    /// CPU micro-architecture level (e.g. `v3` for x86-64-v3) for `--arch-variant`.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) arch_variant: Option<String>,
    /// Custom kernel to boot instead of the image's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kernel: Option<Kernel>,
    /// Custom initial RAM disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) initrd: Option<File>,
}

/// `images[].kernel` (Lima's `Kernel` = inline `File` + `cmdline`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Kernel {
    /// URL or local path of the kernel. REQUIRED by Lima.
    pub(crate) location: String,
    /// Architecture of the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) arch: Option<Arch>,
    /// Digest checked when present.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// Kernel command line.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) cmdline: Option<String>,
}

/// `firmware.images[]` (Lima's `FileWithVMType` = inline `File` + `vmType`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct FirmwareImage {
    /// URL or local path of the UEFI image. REQUIRED by Lima.
    pub(crate) location: String,
    /// Architecture of the firmware.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) arch: Option<Arch>,
    /// Digest checked when present.
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// Driver this firmware applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vm_type: Option<VmType>,
}

/// `additionalDisks[]`: a disk name, or `{name, format, fsType, fsArgs}` (Lima's `Disk`).
///
/// Disks live in `$LIMA_HOME/_disks` (created with `limactl disk create`) and are mounted at
/// `/mnt/lima-NAME` in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum Disk {
    /// Short form: just the disk name.
    Name(String),
    /// Long form with formatting options.
    Spec(DiskSpec),
}

/// Long form of [`Disk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DiskSpec {
    /// Disk name under `$LIMA_HOME/_disks`. REQUIRED by Lima.
    pub(crate) name: String,
    /// Format the disk when it has no filesystem yet (Lima default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<bool>,
    /// Filesystem for `format` (Lima default: `ext4`).
    #[serde(default, deserialize_with = "scalar::opt_string", skip_serializing_if = "Option::is_none")]
    pub(crate) fs_type: Option<String>,
    /// Extra `mkfs` arguments.
    #[serde(default, deserialize_with = "scalar::opt_string_list", skip_serializing_if = "Option::is_none")]
    pub(crate) fs_args: Option<Vec<String>>,
}

/// Visitor for "a string, or else `Other`", where `Other` comes from a mapping (an object) or,
/// if `other_is_seq`, from a sequence (a list). Only that one shape is accepted: serde would
/// otherwise also build a struct from a sequence of its field values.
struct StrOr<T, Other> {
    from_str: fn(String) -> T,
    from_other: fn(Other) -> T,
    other_is_seq: bool,
    expecting: &'static str,
    other: PhantomData<Other>,
}

impl<T, Other> StrOr<T, Other> {
    const fn object(from_str: fn(String) -> T, from_other: fn(Other) -> T, expecting: &'static str) -> Self {
        Self { from_str, from_other, other_is_seq: false, expecting, other: PhantomData }
    }

    const fn list(from_str: fn(String) -> T, from_other: fn(Other) -> T, expecting: &'static str) -> Self {
        Self { from_str, from_other, other_is_seq: true, expecting, other: PhantomData }
    }
}

impl<'de, T, Other: Deserialize<'de>> Visitor<'de> for StrOr<T, Other> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.from_str)(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<T, E> {
        Ok((self.from_str)(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        if self.other_is_seq {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        Other::deserialize(MapAccessDeserializer::new(map)).map(self.from_other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        if !self.other_is_seq {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        Other::deserialize(SeqAccessDeserializer::new(seq)).map(self.from_other)
    }
}

impl<'de> Deserialize<'de> for LocatorWithDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOr::object(Self::Url, Self::WithDigest, "a URL string or {url, digest}"))
    }
}

impl<'de> Deserialize<'de> for BaseTemplates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOr::list(Self::One, Self::List, "a template URL string or a list of locators"))
    }
}

impl<'de> Deserialize<'de> for Disk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOr::object(Self::Name, Self::Spec, "a disk name or {name, format, fsType, fsArgs}"))
    }
}
