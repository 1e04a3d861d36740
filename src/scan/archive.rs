//! Opening zip, gzip and tar content to scan what is inside, within limits. Anything over a limit
//! or undecodable becomes a blocking finding: an archive can never smuggle a secret past the
//! scanner by being large, deep or broken (zip bombs included).

use std::io::{Cursor, Read};

use crate::scan::engine::{self, EngineOptions};
use crate::scan::finding::Finding;
use crate::scan::ruleset::RuleSet;

/// Bounds on decoding one scanned file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArchiveLimits {
    /// How many archives deep to open (an archive inside an archive is depth 2).
    pub(crate) max_depth: usize,
    /// Decompressed bytes across everything inside one scanned file.
    pub(crate) max_total_bytes: u64,
    /// Entries across everything inside one scanned file.
    pub(crate) max_entries: usize,
    /// Largest single member.
    pub(crate) max_member_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits { max_depth: 4, max_total_bytes: 512 << 20, max_entries: 20_000, max_member_bytes: 100 << 20 }
    }
}

/// What is left of the limits while decoding one file.
struct Budget {
    bytes: u64,
    entries: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Zip,
    Gzip,
    Tar,
}

fn kind(data: &[u8]) -> Option<Kind> {
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        Some(Kind::Zip)
    } else if data.starts_with(&[0x1f, 0x8b]) {
        Some(Kind::Gzip)
    } else if data.len() >= 262 && &data[257..262] == b"ustar" {
        Some(Kind::Tar)
    } else {
        None
    }
}

/// Scan `data` as bytes and, when it is an archive, every member within the limits.
pub(crate) fn scan(set: &RuleSet, path: &str, data: &[u8], limits: ArchiveLimits, opts: EngineOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut budget = Budget { bytes: limits.max_total_bytes, entries: limits.max_entries };
    scan_nested(set, path, data, 0, limits, &mut budget, opts, &mut out);
    out
}

#[allow(clippy::too_many_arguments)]
fn scan_nested(
    set: &RuleSet,
    path: &str,
    data: &[u8],
    depth: usize,
    limits: ArchiveLimits,
    budget: &mut Budget,
    opts: EngineOptions,
    out: &mut Vec<Finding>,
) {
    let kind = kind(data);
    // A tar stores its members as they are: scanning the container too would report every
    // secret twice. Compressed and unknown formats are scanned as bytes as well.
    if kind != Some(Kind::Tar) {
        out.extend(engine::scan(set, path, data, opts));
    }
    let Some(kind) = kind else { return };
    if depth >= limits.max_depth {
        out.push(Finding::unscannable(
            path,
            format!("archive nested deeper than {} levels; its contents were not scanned", limits.max_depth),
        ));
        return;
    }
    let result = match kind {
        Kind::Zip => zip_members(set, path, data, depth, limits, budget, opts, out),
        Kind::Gzip => gzip_member(set, path, data, depth, limits, budget, opts, out),
        Kind::Tar => tar_members(set, path, data, depth, limits, budget, opts, out),
    };
    if let Err(reason) = result {
        out.push(Finding::unscannable(path, reason));
        if kind == Kind::Tar {
            out.extend(engine::scan(set, path, data, opts));
        }
    }
}

/// Read at most the member limit and the remaining budget; more is an error, not a truncation.
fn read_bounded(
    reader: &mut dyn Read,
    limits: ArchiveLimits,
    budget: &mut Budget,
    name: &str,
) -> Result<Vec<u8>, String> {
    if budget.entries == 0 {
        return Err(format!("more than {} archive entries; the rest was not scanned", limits.max_entries));
    }
    budget.entries -= 1;
    let cap = limits.max_member_bytes.min(budget.bytes);
    let mut buf = Vec::new();
    reader.take(cap + 1).read_to_end(&mut buf).map_err(|e| format!("cannot decode `{name}`: {e}"))?;
    if buf.len() as u64 > cap {
        return Err(format!(
            "`{name}` decompresses to more than {} (the limit for one member or for the whole archive); not scanned",
            crate::profile::ByteSize(cap)
        ));
    }
    budget.bytes -= buf.len() as u64;
    Ok(buf)
}

/// Read one member within the budget and scan it (recursively); an over-limit member is a
/// blocking finding. Returns false once the budget is spent: the rest is not read.
#[allow(clippy::too_many_arguments)]
fn scan_member(
    set: &RuleSet,
    reader: &mut dyn Read,
    inner: &str,
    name: &str,
    depth: usize,
    limits: ArchiveLimits,
    budget: &mut Budget,
    opts: EngineOptions,
    out: &mut Vec<Finding>,
) -> bool {
    match read_bounded(reader, limits, budget, name) {
        Ok(bytes) => {
            scan_nested(set, inner, &bytes, depth + 1, limits, budget, opts, out);
            true
        }
        Err(reason) => {
            out.push(Finding::unscannable(inner, reason));
            budget.entries > 0 && budget.bytes > 0
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn zip_members(
    set: &RuleSet,
    path: &str,
    data: &[u8],
    depth: usize,
    limits: ArchiveLimits,
    budget: &mut Budget,
    opts: EngineOptions,
    out: &mut Vec<Finding>,
) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(data)).map_err(|e| format!("cannot open zip archive: {e}"))?;
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|e| format!("cannot read zip entry {i}: {e}"))?;
        let name = member.name().map_or_else(|_| format!("entry-{i}"), |n| n.into_owned());
        let inner = format!("{path}!{name}");
        if member.is_dir() {
            continue;
        }
        if member.encrypted() {
            out.push(Finding::unscannable(&inner, "encrypted zip entry; its contents cannot be scanned".into()));
            continue;
        }
        if !scan_member(set, &mut member, &inner, &name, depth, limits, budget, opts, out) {
            return Ok(());
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn gzip_member(
    set: &RuleSet,
    path: &str,
    data: &[u8],
    depth: usize,
    limits: ArchiveLimits,
    budget: &mut Budget,
    opts: EngineOptions,
    out: &mut Vec<Finding>,
) -> Result<(), String> {
    let mut decoder = flate2::read::MultiGzDecoder::new(data);
    let inner_name = path
        .rsplit(['/', '!'])
        .next()
        .unwrap_or(path)
        .strip_suffix(".gz")
        .or_else(|| path.strip_suffix(".tgz"))
        .unwrap_or("data")
        .to_owned();
    let bytes = read_bounded(&mut decoder, limits, budget, &inner_name)?;
    scan_nested(set, &format!("{path}!{inner_name}"), &bytes, depth + 1, limits, budget, opts, out);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn tar_members(
    set: &RuleSet,
    path: &str,
    data: &[u8],
    depth: usize,
    limits: ArchiveLimits,
    budget: &mut Budget,
    opts: EngineOptions,
    out: &mut Vec<Finding>,
) -> Result<(), String> {
    let mut archive = tar::Archive::new(data);
    let entries = archive.entries().map_err(|e| format!("cannot read tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot read tar entry: {e}"))?;
        let name = entry.path().map(|p| p.display().to_string()).unwrap_or_else(|_| "?".into());
        let inner = format!("{path}!{name}");
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().map(|b| b.into_owned()).unwrap_or_default();
            out.extend(engine::scan(set, &inner, &target, opts));
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        if !scan_member(set, &mut entry, &inner, &name, depth, limits, budget, opts, out) {
            return Ok(());
        }
    }
    Ok(())
}
