//! Opening containers to scan what is inside, within limits: zip (entries stored, deflated,
//! bzip2, LZMA, zstd or xz), tar, gzip, xz, bzip2, zstd, lzip, `.lzma`, raw zlib streams, the
//! compressed text chunks of PNG images, the FlateDecode streams of PDF documents and the
//! members of `ar` archives, each decoded into the same chain again (issue 20). What the formats
//! look like is in `container/`; this file holds the limits and turns what it met into findings.
//!
//! Anything over a limit, undecodable, or of a format recognised but not decoded (7z, RAR, lz4...,
//! see `container::format`) becomes a blocking finding: a container can never smuggle a secret
//! past the scanner by being large, deep, broken or exotic (zip bombs included).

use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::scan::container::format::{self, Format};
use crate::scan::container::inflate::{self, Inflate};
use crate::scan::container::{ar, pdf, png, stream};
use crate::scan::engine::{self, EngineOptions};
use crate::scan::finding::Finding;
use crate::scan::ruleset::RuleSet;

/// Bounds on decoding one scanned file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArchiveLimits {
    /// How many containers deep to open (an archive inside an archive is depth 2).
    pub(crate) max_depth: usize,
    /// Decompressed bytes across everything inside one scanned file.
    pub(crate) max_total_bytes: u64,
    /// Entries (members, streams, chunks) across everything inside one scanned file.
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

/// Scan `data` as bytes and, when it is a container, everything inside within the limits.
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

/// The bytes a part decoded to, and the decoder's error if it stopped part-way.
type Decoded = (Vec<u8>, Option<String>);

impl Scan<'_> {
    fn bytes(&mut self, path: &str, data: &[u8]) {
        self.out.extend(engine::scan(self.set, path, data, self.opts));
    }

    fn unscannable(&mut self, path: &str, reason: String) {
        self.out.push(Finding::unscannable(path, reason));
    }

    fn nested(&mut self, path: &str, data: &[u8], depth: usize) {
        let format = format::sniff(data);
        // A tar stores its members as they are: scanning the container too would report every
        // secret twice. Every other format is scanned as bytes as well.
        if format != Some(Format::Tar) {
            self.bytes(path, data);
        }
        if let Some(format) = format {
            self.open(path, data, format, depth);
            // A zip appended to an image or a document (a polyglot) is opened too.
            if matches!(format, Format::Png | Format::Pdf) && format::has_zip_end(data) {
                self.open(path, data, Format::ZipAtEnd, depth);
            }
        }
    }

    /// Open a container of `format` whose own bytes were scanned.
    fn open(&mut self, path: &str, data: &[u8], format: Format, depth: usize) {
        let result = match format {
            Format::Undecodable(name) => {
                Err(format!("{name}: this scanner cannot decode it, so nothing inside it was scanned"))
            }
            Format::Zip => self.zip_members(path, data, depth, true),
            Format::ZipAtEnd => self.zip_members(path, data, depth, false),
            Format::Tar => self.tar_members(path, data, depth),
            Format::Png => {
                self.png_text(path, data, depth);
                Ok(())
            }
            Format::Pdf => self.pdf_streams(path, data, depth),
            Format::Ar => {
                self.ar_members(path, data, depth);
                Ok(())
            }
            Format::Zlib => {
                self.zlib(path, data, depth);
                Ok(())
            }
            Format::Gzip | Format::Xz | Format::Bzip2 | Format::Zstd | Format::Lzip | Format::Lzma => {
                self.stream(path, data, format, depth)
            }
        };
        if let Err(reason) = result {
            self.unscannable(path, reason);
            if format == Format::Tar {
                self.bytes(path, data);
            }
        }
    }

    /// At the depth limit, a finding for `path` and true: its contents are not opened.
    fn too_deep(&mut self, path: &str, depth: usize) -> bool {
        if depth < self.limits.max_depth {
            return false;
        }
        let reason =
            format!("archive nested deeper than {} levels; its contents were not scanned", self.limits.max_depth);
        self.unscannable(path, reason);
        true
    }

    /// Why `name` was not decoded when it decompresses past `cap`.
    fn over_limit(&self, name: &str, cap: u64) -> String {
        if self.shared_limit && cap < self.limits.max_member_bytes {
            format!(
                "`{name}` decompresses to more than the {} left of this sync's decompression budget ({}); not \
                 scanned: sync fewer archives at once, or exclude them",
                crate::profile::ByteSize(cap),
                crate::profile::ByteSize(SYNC_TOTAL_BYTES)
            )
        } else {
            format!(
                "`{name}` decompresses to more than {} (the limit for one member or for the whole archive); not scanned",
                crate::profile::ByteSize(cap)
            )
        }
    }

    /// The most one more part may decode to, counting it as an entry.
    fn next_part(&mut self) -> Result<u64, String> {
        if self.budget.entries == 0 {
            return Err(format!("more than {} archive entries; the rest was not scanned", self.limits.max_entries));
        }
        self.budget.entries -= 1;
        Ok(self.limits.max_member_bytes.min(self.budget.bytes))
    }

    /// Decode one part, reading at most the member limit and the remaining budget (plus one byte
    /// to tell): more is an error, not a truncation. A decoder that fails part-way keeps what it
    /// decoded before, with its error; one that panics on hostile input is an error too.
    fn read_part(&mut self, reader: &mut dyn Read, name: &str) -> Result<Decoded, String> {
        let cap = self.next_part()?;
        let mut buf = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| reader.take(cap + 1).read_to_end(&mut buf)));
        let error = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("cannot decode `{name}`: {e}")),
            Err(_) => {
                buf = Vec::new();
                Some(format!("cannot decode `{name}`: its decoder failed on this data"))
            }
        };
        if buf.len() as u64 > cap {
            return Err(self.over_limit(name, cap));
        }
        self.budget.bytes -= buf.len() as u64;
        Ok((buf, error))
    }

    /// Whether the budget still allows decoding more.
    fn budget_left(&self) -> bool {
        self.budget.entries > 0 && self.budget.bytes > 0
    }

    /// Read one member within the budget and scan it (recursively); an over-limit or broken
    /// member is a blocking finding. Returns false once the budget is spent: the rest is not read.
    fn member(&mut self, reader: &mut dyn Read, inner: &str, name: &str, depth: usize) -> bool {
        match self.read_part(reader, name) {
            Ok((bytes, error)) => {
                self.nested(inner, &bytes, depth + 1);
                if let Some(reason) = error {
                    self.unscannable(inner, reason);
                }
                true
            }
            Err(reason) => {
                self.unscannable(inner, reason);
                self.budget_left()
            }
        }
    }

    /// Inflate a part that declares itself compressed (a PNG text chunk, a PDF stream) and scan
    /// it: a broken one is unscannable only if nothing at all inflates, since what did is scanned.
    /// Returns false once the budget is spent.
    fn inflated(&mut self, reader: &mut dyn Read, inner: &str, name: &str, depth: usize) -> bool {
        match self.read_part(reader, name) {
            Ok((bytes, Some(reason))) if bytes.is_empty() => {
                self.unscannable(inner, format!("{reason}; nothing could be inflated"));
                true
            }
            Ok((bytes, _)) => {
                self.nested(inner, &bytes, depth + 1);
                true
            }
            Err(reason) => {
                self.unscannable(inner, reason);
                self.budget_left()
            }
        }
    }

    /// One compressed stream (gzip, xz, bzip2, zstd, lzip, `.lzma`): what it holds is scanned as
    /// `path!name`, even when the stream breaks part-way (which is an error for `path`).
    fn stream(&mut self, path: &str, data: &[u8], format: Format, depth: usize) -> Result<(), String> {
        if self.too_deep(path, depth) {
            return Ok(());
        }
        let name = stream::inner_name(path, format);
        let mut reader = match stream::decoder(format, data) {
            Some(Ok(reader)) => reader,
            Some(Err(reason)) => return Err(reason),
            None => return Ok(()),
        };
        let (bytes, error) = self.read_part(&mut reader, &name)?;
        self.nested(&format!("{path}!{name}"), &bytes, depth + 1);
        error.map_or(Ok(()), Err)
    }

    /// A raw zlib stream, known only by two header bytes: taken as zlib if it inflates. What
    /// inflated before an error is scanned (nothing else could be); a stream past the limits is
    /// a finding.
    fn zlib(&mut self, path: &str, data: &[u8], depth: usize) {
        if depth >= self.limits.max_depth {
            if inflate::inflates(data) {
                self.too_deep(path, depth);
            }
            return;
        }
        let name = stream::inner_name(path, Format::Zlib);
        match self.read_part(&mut Inflate::new(data, true), &name) {
            Ok((bytes, _)) if !bytes.is_empty() => self.nested(&format!("{path}!{name}"), &bytes, depth + 1),
            Ok(_) => {}
            Err(reason) => self.unscannable(path, reason),
        }
    }

    /// The compressed text chunks of a PNG image, as `image.png!zTXt:keyword`.
    fn png_text(&mut self, path: &str, data: &[u8], depth: usize) {
        let chunks = png::text_chunks(data);
        if chunks.is_empty() || self.too_deep(path, depth) {
            return;
        }
        for chunk in chunks {
            let inner = format!("{path}!{}", chunk.label);
            if chunk.method != 0 {
                let reason = format!(
                    "PNG {} chunk compressed with method {}, which PNG does not define: this scanner cannot decode it",
                    chunk.label, chunk.method
                );
                self.unscannable(&inner, reason);
                continue;
            }
            if !self.inflated(&mut Inflate::new(chunk.compressed, true), &inner, &chunk.label, depth) {
                return;
            }
        }
    }

    /// The FlateDecode streams of a PDF document, as `doc.pdf!obj-N`.
    fn pdf_streams(&mut self, path: &str, data: &[u8], depth: usize) -> Result<(), String> {
        let mut streams = pdf::Streams::new(data);
        let mut first = true;
        while let Some(stream) = streams.next() {
            if std::mem::take(&mut first) {
                if pdf::is_encrypted(data) {
                    return Err(
                        "encrypted PDF: this scanner cannot decrypt its streams, so they were not scanned".into()
                    );
                }
                if self.too_deep(path, depth) {
                    return Ok(());
                }
            }
            let inner = format!("{path}!{}", stream.label);
            let Some(end) = self.pdf_stream(&stream, &inner, depth) else { return Ok(()) };
            streams.skip_to(end);
        }
        Ok(())
    }

    /// Decode one PDF stream through its text filters and FlateDecode. Returns where its data
    /// ended in the file, or `None` once the budget is spent.
    fn pdf_stream(&mut self, stream: &pdf::Stream<'_>, inner: &str, depth: usize) -> Option<usize> {
        let mut input = std::borrow::Cow::Borrowed(stream.data);
        let mut text_end = None;
        for filter in &stream.filters {
            let decoded = match filter {
                pdf::Filter::Flate => break,
                pdf::Filter::AsciiHex => pdf::ascii_hex(&input),
                pdf::Filter::Ascii85 => pdf::ascii85(&input, usize::try_from(self.budget.bytes).unwrap_or(usize::MAX)),
                pdf::Filter::Other(name) => Err(format!("the filter {name} before FlateDecode is not supported")),
            };
            let decoded = decoded.and_then(|(bytes, used)| match self.next_part() {
                Ok(cap) if bytes.len() as u64 <= cap => Ok((bytes, used)),
                Ok(cap) => Err(self.over_limit(&stream.label, cap)),
                Err(reason) => Err(reason),
            });
            match decoded {
                Ok((bytes, used)) => {
                    self.budget.bytes -= bytes.len() as u64;
                    text_end.get_or_insert(stream.offset + used);
                    input = std::borrow::Cow::Owned(bytes);
                }
                Err(reason) => {
                    self.unscannable(inner, format!("cannot decode PDF stream {}: {reason}", stream.label));
                    return self.budget_left().then_some(stream.offset);
                }
            }
        }
        let mut inflate = Inflate::new(&input, format::is_zlib_header(&input));
        let go_on = self.inflated(&mut inflate, inner, &stream.label, depth);
        let end = text_end.unwrap_or(stream.offset + usize::try_from(inflate.consumed()).unwrap_or(0));
        go_on.then_some(end)
    }

    /// The members of an `ar` archive that are containers themselves (the rest of its bytes are
    /// scanned with the archive's), opened in place: nothing is decompressed to reach them.
    fn ar_members(&mut self, path: &str, data: &[u8], depth: usize) {
        let members: Vec<_> =
            ar::members(data).into_iter().filter_map(|m| format::sniff(m.data).map(|f| (m, f))).collect();
        if members.is_empty() || self.too_deep(path, depth) {
            return;
        }
        for (member, format) in members {
            if self.next_part().is_err() {
                let reason = format!("more than {} archive entries; the rest was not scanned", self.limits.max_entries);
                self.unscannable(path, reason);
                return;
            }
            self.open(&format!("{path}!{}", member.name), member.data, format, depth + 1);
        }
    }

    /// `at_start`: the file starts with a zip header, so a zip that does not open is a finding;
    /// one found only by its end record that does not open is not a zip.
    fn zip_members(&mut self, path: &str, data: &[u8], depth: usize, at_start: bool) -> Result<(), String> {
        if at_start && self.too_deep(path, depth) {
            return Ok(());
        }
        let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
            Ok(archive) => archive,
            Err(e) if at_start => return Err(format!("cannot open zip archive: {e}")),
            Err(_) => return Ok(()),
        };
        if !at_start && self.too_deep(path, depth) {
            return Ok(());
        }
        for i in 0..archive.len() {
            let mut member = archive.by_index_raw(i).map_err(|e| format!("cannot read zip entry {i}: {e}"))?;
            let name = member.name().map_or_else(|_| format!("entry-{i}"), |n| n.into_owned());
            let inner = format!("{path}!{name}");
            let (method, size) = (member.compression(), member.size());
            if member.is_dir() {
                continue;
            }
            if member.encrypted() {
                self.unscannable(&inner, "encrypted zip entry; its contents cannot be scanned".into());
                continue;
            }
            let go_on = if method == zip::CompressionMethod::STORE || method == zip::CompressionMethod::DEFLATE {
                drop(member);
                match archive.by_index(i) {
                    Ok(mut member) => self.member(&mut member, &inner, &name, depth),
                    Err(e) => {
                        self.unscannable(&inner, format!("cannot read zip entry `{name}`: {e}"));
                        true
                    }
                }
            } else {
                // Decoded here, from the raw entry (no larger than the file): the zip crate is
                // built with deflate only.
                let mut compressed = Vec::new();
                let format = zip_method_format(method);
                let decodable = format.is_some() || method == zip::CompressionMethod::LZMA;
                let read = if decodable {
                    member.by_ref().take(data.len() as u64).read_to_end(&mut compressed).map(drop)
                } else {
                    Ok(())
                };
                let decoder = match (read, format) {
                    (Err(e), _) => Some(Err(format!("cannot read zip entry `{name}`: {e}"))),
                    (Ok(()), Some(format)) => stream::decoder(format, &compressed),
                    (Ok(()), None) if decodable => Some(stream::zip_lzma(&compressed, size)),
                    (Ok(()), None) => None,
                };
                match decoder {
                    Some(Ok(mut reader)) => self.member(&mut reader, &inner, &name, depth),
                    Some(Err(reason)) => {
                        self.unscannable(&inner, reason);
                        true
                    }
                    None => {
                        let reason = format!(
                            "zip entry compressed with {method}: this scanner cannot decode it, so it was not scanned"
                        );
                        self.unscannable(&inner, reason);
                        true
                    }
                }
            };
            if !go_on {
                return Ok(());
            }
        }
        Ok(())
    }

    fn tar_members(&mut self, path: &str, data: &[u8], depth: usize) -> Result<(), String> {
        if self.too_deep(path, depth) {
            return Ok(());
        }
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

/// The stream format of a zip compression method this scanner decodes itself.
fn zip_method_format(method: zip::CompressionMethod) -> Option<Format> {
    if method == zip::CompressionMethod::BZIP2 {
        Some(Format::Bzip2)
    } else if method == zip::CompressionMethod::ZSTD {
        Some(Format::Zstd)
    } else if method == zip::CompressionMethod::XZ {
        Some(Format::Xz)
    } else {
        None
    }
}
