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

/// Decompressed bytes that all the files of one sync may expand to together: twenty small zip
/// bombs must not cost twenty times the limit of one (issue 19).
pub(crate) const SYNC_TOTAL_BYTES: u64 = 512 << 20;

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
    scan_shared(set, path, data, limits, opts, &std::sync::atomic::AtomicU64::new(u64::MAX))
}

/// [`scan`], drawing decompressed bytes from `shared` as well: a budget several files share
/// (one sync's, [`SYNC_TOTAL_BYTES`]). Files scanned in parallel may overdraw it by at most one
/// file's own limit each.
pub(crate) fn scan_shared(
    set: &RuleSet,
    path: &str,
    data: &[u8],
    limits: ArchiveLimits,
    opts: EngineOptions,
    shared: &std::sync::atomic::AtomicU64,
) -> Vec<Finding> {
    use std::sync::atomic::Ordering;
    let left = shared.load(Ordering::Relaxed);
    let bytes = limits.max_total_bytes.min(left);
    let budget = Budget { bytes, entries: limits.max_entries };
    let mut scan = Scan { set, limits, opts, budget, out: Vec::new(), shared_limit: left < limits.max_total_bytes };
    scan.nested(path, data, 0);
    let used = bytes - scan.budget.bytes;
    let _ = shared.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| Some(l.saturating_sub(used)));
    scan.out
}

/// One scanned file being opened: the rules, the limits, what is left of them, the findings.
struct Scan<'a> {
    set: &'a RuleSet,
    limits: ArchiveLimits,
    opts: EngineOptions,
    budget: Budget,
    out: Vec<Finding>,
    /// The budget was cut by what several files share, not by this file's own limit.
    shared_limit: bool,
}

impl Scan<'_> {
    fn bytes(&mut self, path: &str, data: &[u8]) {
        self.out.extend(engine::scan(self.set, path, data, self.opts));
    }

    fn nested(&mut self, path: &str, data: &[u8], depth: usize) {
        let kind = kind(data);
        // A tar stores its members as they are: scanning the container too would report every
        // secret twice. Compressed and unknown formats are scanned as bytes as well.
        if kind != Some(Kind::Tar) {
            self.bytes(path, data);
        }
        let Some(kind) = kind else { return };
        if depth >= self.limits.max_depth {
            self.out.push(Finding::unscannable(
                path,
                format!("archive nested deeper than {} levels; its contents were not scanned", self.limits.max_depth),
            ));
            return;
        }
        let result = match kind {
            Kind::Zip => self.zip_members(path, data, depth),
            Kind::Gzip => self.gzip_member(path, data, depth),
            Kind::Tar => self.tar_members(path, data, depth),
        };
        if let Err(reason) = result {
            self.out.push(Finding::unscannable(path, reason));
            if kind == Kind::Tar {
                self.bytes(path, data);
            }
        }
    }

    /// Read at most the member limit and the remaining budget; more is an error, not a
    /// truncation.
    fn read_bounded(&mut self, reader: &mut dyn Read, name: &str) -> Result<Vec<u8>, String> {
        if self.budget.entries == 0 {
            return Err(format!("more than {} archive entries; the rest was not scanned", self.limits.max_entries));
        }
        self.budget.entries -= 1;
        let cap = self.limits.max_member_bytes.min(self.budget.bytes);
        let mut buf = Vec::new();
        reader.take(cap + 1).read_to_end(&mut buf).map_err(|e| format!("cannot decode `{name}`: {e}"))?;
        if buf.len() as u64 > cap && self.shared_limit && cap < self.limits.max_member_bytes {
            return Err(format!(
                "`{name}` decompresses to more than the {} left of this sync's decompression budget ({}); not \
                 scanned: sync fewer archives at once, or exclude them",
                crate::profile::ByteSize(cap),
                crate::profile::ByteSize(SYNC_TOTAL_BYTES)
            ));
        }
        if buf.len() as u64 > cap {
            return Err(format!(
                "`{name}` decompresses to more than {} (the limit for one member or for the whole archive); not scanned",
                crate::profile::ByteSize(cap)
            ));
        }
        self.budget.bytes -= buf.len() as u64;
        Ok(buf)
    }

    /// Read one member within the budget and scan it (recursively); an over-limit member is a
    /// blocking finding. Returns false once the budget is spent: the rest is not read.
    fn member(&mut self, reader: &mut dyn Read, inner: &str, name: &str, depth: usize) -> bool {
        match self.read_bounded(reader, name) {
            Ok(bytes) => {
                self.nested(inner, &bytes, depth + 1);
                true
            }
            Err(reason) => {
                self.out.push(Finding::unscannable(inner, reason));
                self.budget.entries > 0 && self.budget.bytes > 0
            }
        }
    }

    fn zip_members(&mut self, path: &str, data: &[u8], depth: usize) -> Result<(), String> {
        let mut archive =
            zip::ZipArchive::new(Cursor::new(data)).map_err(|e| format!("cannot open zip archive: {e}"))?;
        for i in 0..archive.len() {
            let mut member = archive.by_index(i).map_err(|e| format!("cannot read zip entry {i}: {e}"))?;
            let name = member.name().map_or_else(|_| format!("entry-{i}"), |n| n.into_owned());
            let inner = format!("{path}!{name}");
            if member.is_dir() {
                continue;
            }
            if member.encrypted() {
                self.out
                    .push(Finding::unscannable(&inner, "encrypted zip entry; its contents cannot be scanned".into()));
                continue;
            }
            if !self.member(&mut member, &inner, &name, depth) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn gzip_member(&mut self, path: &str, data: &[u8], depth: usize) -> Result<(), String> {
        let mut decoder = flate2::read::MultiGzDecoder::new(data);
        let inner_name = path
            .rsplit(['/', '!'])
            .next()
            .unwrap_or(path)
            .strip_suffix(".gz")
            .or_else(|| path.strip_suffix(".tgz"))
            .unwrap_or("data")
            .to_owned();
        let bytes = self.read_bounded(&mut decoder, &inner_name)?;
        self.nested(&format!("{path}!{inner_name}"), &bytes, depth + 1);
        Ok(())
    }

    fn tar_members(&mut self, path: &str, data: &[u8], depth: usize) -> Result<(), String> {
        let mut archive = tar::Archive::new(data);
        let entries = archive.entries().map_err(|e| format!("cannot read tar archive: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("cannot read tar entry: {e}"))?;
            let name = entry.path().map(|p| p.display().to_string()).unwrap_or_else(|_| "?".into());
            let inner = format!("{path}!{name}");
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry.link_name_bytes().map(|b| b.into_owned()).unwrap_or_default();
                self.bytes(&inner, &target);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            if !self.member(&mut entry, &inner, &name, depth) {
                return Ok(());
            }
        }
        Ok(())
    }
}
