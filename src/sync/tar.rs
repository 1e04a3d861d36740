//! Reading an overlay upper that the VM exported as a PAX tar stream
//! (`tar --xattrs --xattrs-include='*' --numeric-owner -C UPPER -cf - .`) into the same [`Upper`]
//! that `upper::read` gives for the directory itself (overlay-sync-semantics.md §1.11, §4 phase 0
//! and the transport attacks of §5 C).
//!
//! The stream is parsed block by block here (the `tar` crate only decodes header fields), so every
//! ambiguity is seen and refused instead of resolved: PAX `x` and GNU `L`/`K` extension headers are
//! interpreted by this module alone, strictly, and never mixed; the end-of-archive marker (two zero
//! blocks) is required, and nothing but zeros may follow it. Entry `xattrs` come from PAX
//! `SCHILY.xattr.*` records and go through the same §1.8 table (`upper::check_xattrs`).
//!
//! Invariants: nothing is extracted. The only writes are content-addressed: each regular file is
//! streamed (never held whole in memory) into a temporary file in `stage` while being hashed, then
//! renamed to `stage/<sha256>` (mode 0600). Every problem is a [`Refusal`](crate::sync::upper::Refusal)
//! with a stable code, and a stream that ends early always carries one, so a partial upper is never
//! mistaken for a complete one:
//!
//! | code | cause |
//! |---|---|
//! | `E_PATH` | absolute, `..`, empty or `.` components (a single leading `./` is the export's own prefix), non-UTF-8 or NUL in a name, a member listed twice, below a symlink or non-directory member, a non-directory root |
//! | `E_ARCHIVE` | bad checksum or magic, malformed, duplicate, unknown or conflicting PAX records, two extension headers for one member, GNU long names mixed with PAX, global headers, sparse and other unsupported member types, data on a non-file member, anything but zeros after the end marker |
//! | `E_HARDLINK` | a hardlink member whose target is not an earlier regular-file member |
//! | `E_SPECIAL` | block or character devices other than the 0:0 whiteout, FIFOs |
//! | `E_INCOMPLETE_TRANSPORT` | the stream ends or fails before the end marker, or does not match the VM's [`Completeness`] |
//! | `E_LIMIT` | over [`TarLimits`], or an extension header over 1 MiB |
//!
//! Structural problems (all but `E_PATH`, `E_HARDLINK`, `E_SPECIAL` and the §1.8 codes) stop the
//! parse at once: what follows cannot be trusted to mean anything.
//!
//! Unlike `upper::read`, this reader cannot refuse a file whose other links are outside the upper
//! (overlay's `work/index`, §5 F7) by its link count: a member carries none, and GNU tar lists such
//! a file as a plain regular member. Its `<ns>.overlay.nlink` attribute, when the kernel set one,
//! is refused as from a directory (`E_INDEX`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::sync::manifest::hex;
use crate::sync::upper::{Namespace, Upper, UpperEntry, UpperKind, check_xattrs, refuse};

const BLOCK: usize = 512;
/// Largest PAX or GNU long-name header read into memory.
const MAX_EXTENSION_BYTES: u64 = 1 << 20;
/// Largest run of zero padding accepted after the end-of-archive marker (GNU tar pads to 10 KiB records).
const MAX_TRAILING_BYTES: u64 = 1 << 20;

const E_PATH: &str = "E_PATH";
const E_ARCHIVE: &str = "E_ARCHIVE";
const E_HARDLINK: &str = "E_HARDLINK";
const E_SPECIAL: &str = "E_SPECIAL";
const E_INCOMPLETE: &str = "E_INCOMPLETE_TRANSPORT";
const E_LIMIT: &str = "E_LIMIT";

/// What the VM counted in its upper before exporting it, to prove the stream arrived whole.
///
/// `entries` is the number of tar members other than extension headers (PAX `x`, GNU `L`/`K`) and
/// the root directory member (`./`): every other member counts once, whatever its type, hardlink
/// members included. For an honest stream this is `find UPPER -mindepth 1 -printf . | wc -c` (each
/// hardlink name is listed; `-printf .` rather than `| wc -l` survives newlines in names).
///
/// `bytes` is the sum of the sizes of regular-file members, a hardlink member counting the size of
/// the file it names: `find UPPER -mindepth 1 -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Completeness {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
}

/// Resource limits, counted as in [`Completeness`]; exceeding one is `E_LIMIT` and stops the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TarLimits {
    pub(crate) max_entries: u64,
    pub(crate) max_total_bytes: u64,
    pub(crate) max_file_bytes: u64,
}

/// Parse the VM's tar export of an overlay upper. File contents are staged in `stage` (which must
/// exist, on the host, private) and `UpperEntry::source` points there; other entries have an empty
/// `source`. `Err` is only for host-side failures (writing the staging directory): everything wrong
/// with the stream, including read errors, is a refusal in `Upper::refusals`.
pub(crate) fn read_tar<R: Read>(
    reader: R,
    ns: Namespace,
    expect: Option<Completeness>,
    stage: &Path,
    limits: TarLimits,
) -> std::io::Result<Upper> {
    let mut parser = Parser {
        input: Input { inner: reader, pos: 0 },
        buf: vec![0; 64 << 10],
        ns,
        stage,
        limits,
        out: Upper::default(),
        seen: BTreeMap::new(),
        root_seen: false,
        counted: Completeness::default(),
    };
    match parser.run() {
        Ok(()) => {
            if let Some(expect) = expect.filter(|e| *e != parser.counted) {
                let got = parser.counted;
                refuse(
                    &mut parser.out,
                    "",
                    E_INCOMPLETE,
                    format!(
                        "the VM listed {} entries and {} bytes of files, the stream held {} and {}",
                        expect.entries, expect.bytes, got.entries, got.bytes
                    ),
                );
            }
        }
        Err(Stop::Refused) => {}
        Err(Stop::Host(e)) => return Err(e),
    }
    let mut out = parser.out;
    out.entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    let mut missing = BTreeSet::new();
    for e in &out.entries {
        let mut p = e.path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if !parser.seen.contains_key(p) {
                missing.insert(p.to_owned());
            }
        }
    }
    for p in missing {
        out.warnings.push(format!("{p}: directory not listed in the stream"));
    }
    Ok(out)
}

/// Why the parse stopped: a refusal was recorded, or the host side failed.
enum Stop {
    Refused,
    Host(std::io::Error),
}

type Step<T> = Result<T, Stop>;

struct Input<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Input<R> {
    /// Fill `buf` as far as the stream goes; fewer bytes only at its end.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// What a member path already names, for duplicate and below-a-non-directory checks.
#[derive(Clone)]
enum Seen {
    Dir,
    Symlink,
    File(Staged),
    /// Whiteouts, refused specials and hardlinks.
    Other,
}

#[derive(Clone)]
struct Staged {
    size: u64,
    sha256: String,
    source: PathBuf,
    mode: u32,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// The extension headers read for the next member.
#[derive(Default)]
struct Extensions {
    pax: Option<Pax>,
    gnu_name: Option<Vec<u8>>,
    gnu_link: Option<Vec<u8>>,
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    xattrs: Vec<(String, Vec<u8>)>,
    non_utf8_xattr: bool,
}

struct Parser<'a, R> {
    input: Input<R>,
    buf: Vec<u8>,
    ns: Namespace,
    stage: &'a Path,
    limits: TarLimits,
    out: Upper,
    seen: BTreeMap<String, Seen>,
    root_seen: bool,
    counted: Completeness,
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

impl<R: Read> Parser<'_, R> {
    fn fatal(&mut self, path: &str, code: &'static str, message: impl Into<String>) -> Stop {
        refuse(&mut self.out, path, code, message);
        Stop::Refused
    }

    fn fill_buf(&mut self, len: usize) -> Step<usize> {
        self.input
            .fill(&mut self.buf[..len])
            .map_err(|e| self.fatal("", E_INCOMPLETE, format!("reading the stream failed: {e}")))
    }

    /// Read `size` bytes of member data (then its padding to the block size) into `sink`.
    fn data(&mut self, path: &str, size: u64, mut sink: impl FnMut(&[u8]) -> std::io::Result<()>) -> Step<()> {
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(self.buf.len());
            let n = self.fill_buf(want)?;
            sink(&self.buf[..n]).map_err(Stop::Host)?;
            if n < want {
                return Err(self.fatal(
                    path,
                    E_INCOMPLETE,
                    format!("the stream ends inside this member's {size} bytes"),
                ));
            }
            left -= n as u64;
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        if self.fill_buf(pad)? < pad {
            return Err(self.fatal(path, E_INCOMPLETE, "the stream ends inside a member's padding"));
        }
        Ok(())
    }

    fn skip(&mut self, path: &str, size: u64) -> Step<()> {
        self.data(path, size, |_| Ok(()))
    }

    fn small(&mut self, what: &str, size: u64) -> Step<Vec<u8>> {
        if size > MAX_EXTENSION_BYTES {
            return Err(self.fatal("", E_LIMIT, format!("a {what} of {size} bytes (at most {MAX_EXTENSION_BYTES})")));
        }
        let mut bytes = Vec::new();
        self.data("", size, |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(bytes)
    }

    /// Stream a file's content into `stage/<sha256>`.
    fn stage(&mut self, path: &str, size: u64) -> Step<(String, PathBuf)> {
        let mut tmp = tempfile::Builder::new().prefix(".incoming-").tempfile_in(self.stage).map_err(Stop::Host)?;
        let mut hasher = Sha256::new();
        self.data(path, size, |chunk| {
            hasher.update(chunk);
            tmp.write_all(chunk)
        })?;
        let sha256 = hex(&hasher.finalize());
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(Stop::Host)?;
        let source = self.stage.join(&sha256);
        tmp.persist(&source).map_err(|e| Stop::Host(e.error))?;
        Ok((sha256, source))
    }

    fn run(&mut self) -> Step<()> {
        let mut ext = Extensions::default();
        loop {
            let at = self.input.pos;
            let n = self.fill_buf(BLOCK)?;
            if n == 0 {
                return Err(self.fatal("", E_INCOMPLETE, "the stream ends without the end-of-archive marker"));
            }
            if n < BLOCK {
                return Err(self.fatal("", E_INCOMPLETE, "the stream ends inside a header"));
            }
            if is_zero(&self.buf[..BLOCK]) {
                return self.finish(&ext);
            }
            let mut header = Header::new_old();
            header.as_mut_bytes().copy_from_slice(&self.buf[..BLOCK]);
            let name = lossy(&header.path_bytes());
            let sum: u32 = header
                .as_bytes()
                .iter()
                .enumerate()
                .map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) })
                .sum();
            if header.cksum().ok() != Some(sum) {
                return Err(self.fatal(&name, E_ARCHIVE, format!("header checksum mismatch at byte {at}")));
            }
            if header.as_ustar().is_none() && header.as_gnu().is_none() {
                return Err(self.fatal(&name, E_ARCHIVE, format!("not a ustar/PAX header at byte {at}")));
            }
            let size = match header.entry_size() {
                Ok(size) => size,
                Err(e) => return Err(self.fatal(&name, E_ARCHIVE, format!("unreadable size at byte {at}: {e}"))),
            };
            match header.entry_type() {
                EntryType::XHeader => {
                    if ext.pax.is_some() || ext.gnu_name.is_some() || ext.gnu_link.is_some() {
                        return Err(self.fatal(
                            &name,
                            E_ARCHIVE,
                            "two extension headers (PAX, or PAX and GNU) for one member",
                        ));
                    }
                    let bytes = self.small("PAX header", size)?;
                    ext.pax = Some(parse_pax(&bytes).map_err(|m| self.fatal(&name, E_ARCHIVE, m))?);
                }
                ty @ (EntryType::GNULongName | EntryType::GNULongLink) => {
                    let slot = if ty == EntryType::GNULongName { &ext.gnu_name } else { &ext.gnu_link };
                    if ext.pax.is_some() || slot.is_some() {
                        return Err(self.fatal(&name, E_ARCHIVE, "GNU long names mixed with PAX, or given twice"));
                    }
                    let mut bytes = self.small("GNU long name", size)?;
                    bytes.truncate(bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len()));
                    *(if ty == EntryType::GNULongName { &mut ext.gnu_name } else { &mut ext.gnu_link }) = Some(bytes);
                }
                EntryType::XGlobalHeader => {
                    return Err(self.fatal(&name, E_ARCHIVE, "a PAX global header (changes every later member)"));
                }
                _ => self.member(&header, size, std::mem::take(&mut ext))?,
            }
        }
    }

    /// After the first zero block: the second, then nothing but zero padding.
    fn finish(&mut self, ext: &Extensions) -> Step<()> {
        if ext.pax.is_some() || ext.gnu_name.is_some() || ext.gnu_link.is_some() {
            return Err(self.fatal("", E_ARCHIVE, "an extension header describes no member"));
        }
        if self.fill_buf(BLOCK)? < BLOCK {
            return Err(self.fatal("", E_INCOMPLETE, "the stream ends inside the end-of-archive marker"));
        }
        if !is_zero(&self.buf[..BLOCK]) {
            return Err(self.fatal("", E_ARCHIVE, "a lone zero block followed by more members"));
        }
        let mut trailing = 0u64;
        loop {
            let n = self.fill_buf(self.buf.len())?;
            if !is_zero(&self.buf[..n]) {
                return Err(self.fatal("", E_ARCHIVE, "data after the end-of-archive marker"));
            }
            trailing += n as u64;
            if trailing > MAX_TRAILING_BYTES {
                return Err(self.fatal("", E_ARCHIVE, "too much padding after the end-of-archive marker"));
            }
            if n < self.buf.len() {
                return Ok(());
            }
        }
    }

    fn count_bytes(&mut self, path: &str, size: u64) -> Step<()> {
        if size > self.limits.max_file_bytes {
            return Err(self.fatal(
                path,
                E_LIMIT,
                format!("a file of {size} bytes (limit {})", self.limits.max_file_bytes),
            ));
        }
        self.counted.bytes = self.counted.bytes.saturating_add(size);
        if self.counted.bytes > self.limits.max_total_bytes {
            return Err(self.fatal(path, E_LIMIT, format!("more than {} bytes of files", self.limits.max_total_bytes)));
        }
        Ok(())
    }

    /// Why `path` cannot be placed: listed before, below a symlink or non-directory, or (for a
    /// non-directory) above members already listed.
    fn misplaced(&self, path: &str, is_dir: bool) -> Option<String> {
        if self.seen.contains_key(path) {
            return Some("the member is listed twice".into());
        }
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            match self.seen.get(p) {
                None | Some(Seen::Dir) => {}
                Some(Seen::Symlink) => return Some(format!("below the symlink member `{p}`")),
                Some(_) => return Some(format!("below the non-directory member `{p}`")),
            }
        }
        let prefix = format!("{path}/");
        if !is_dir && self.seen.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix)) {
            return Some("members listed earlier are below this non-directory".into());
        }
        None
    }

    fn push(&mut self, path: String, kind: UpperKind, mode: u32, source: PathBuf, seen: Seen) {
        self.seen.insert(path.clone(), seen);
        self.out.entries.push(UpperEntry { path, kind, mode, source });
    }

    fn member(&mut self, header: &Header, size: u64, ext: Extensions) -> Step<()> {
        let ty = header.entry_type();
        let pax = ext.pax.unwrap_or_default();
        let raw = pax.path.or(ext.gnu_name).unwrap_or_else(|| header.path_bytes().into_owned());
        let shown = lossy(&raw);
        if !matches!(
            ty,
            EntryType::Regular
                | EntryType::Directory
                | EntryType::Symlink
                | EntryType::Link
                | EntryType::Char
                | EntryType::Block
                | EntryType::Fifo
        ) {
            let t = char::from(ty.as_byte());
            return Err(self.fatal(&shown, E_ARCHIVE, format!("unsupported member type `{}`", t.escape_default())));
        }
        if pax.size.is_some_and(|s| s != size) {
            return Err(self.fatal(&shown, E_ARCHIVE, "the PAX size conflicts with the header size"));
        }
        if size != 0 && ty != EntryType::Regular {
            return Err(self.fatal(&shown, E_ARCHIVE, "a member that is not a regular file carries data"));
        }
        let link = pax.linkpath.or(ext.gnu_link).or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let is_link = matches!(ty, EntryType::Link | EntryType::Symlink);
        if link.is_some() != is_link {
            return Err(self.fatal(&shown, E_ARCHIVE, "a link member without a target, or a target on another member"));
        }
        let mode = match header.mode() {
            Ok(mode) => mode & 0o7777,
            Err(e) => return Err(self.fatal(&shown, E_ARCHIVE, format!("unreadable mode: {e}"))),
        };
        let is_dir = ty == EntryType::Directory;
        let path = normalize(&raw, is_dir);
        let is_root = path.as_deref() == Ok("");
        if !is_root {
            self.counted.entries += 1;
            if self.counted.entries > self.limits.max_entries {
                return Err(self.fatal(&shown, E_LIMIT, format!("more than {} entries", self.limits.max_entries)));
            }
        }
        if ty == EntryType::Regular {
            self.count_bytes(&shown, size)?;
        }
        let path = match path {
            Ok(path) => path,
            Err(message) => {
                refuse(&mut self.out, &shown, E_PATH, message);
                return self.skip(&shown, size);
            }
        };
        if is_root {
            if !is_dir {
                refuse(&mut self.out, &shown, E_PATH, "the root member is not a directory");
                return self.skip(&shown, size);
            }
            if std::mem::replace(&mut self.root_seen, true) {
                refuse(&mut self.out, &shown, E_PATH, "the root directory is listed twice");
            }
            check_xattrs(&mut self.out, &pax.xattrs, "", true, true, self.ns);
            return Ok(());
        }
        if let Some(message) = self.misplaced(&path, is_dir) {
            refuse(&mut self.out, &path, E_PATH, message);
            return self.skip(&path, size);
        }
        if pax.non_utf8_xattr {
            refuse(&mut self.out, &path, "E_XATTR", "an extended attribute name is not UTF-8");
        }
        let xattrs = pax.xattrs;
        let ns = self.ns;
        match ty {
            EntryType::Directory => {
                let opaque = check_xattrs(&mut self.out, &xattrs, &path, true, false, ns);
                self.push(path, UpperKind::Dir { opaque }, mode, PathBuf::new(), Seen::Dir);
            }
            EntryType::Regular => {
                let (sha256, source) = self.stage(&path, size)?;
                check_xattrs(&mut self.out, &xattrs, &path, false, false, ns);
                let staged = Staged { size, sha256: sha256.clone(), source: source.clone(), mode, xattrs };
                self.push(path, UpperKind::File { size, sha256 }, mode, source, Seen::File(staged));
            }
            EntryType::Symlink => {
                check_xattrs(&mut self.out, &xattrs, &path, false, false, ns);
                let target = link.unwrap_or_default();
                match String::from_utf8(target) {
                    Ok(target) if !target.contains('\0') => {
                        self.push(path, UpperKind::Symlink { target }, mode, PathBuf::new(), Seen::Symlink);
                    }
                    _ => {
                        refuse(&mut self.out, &path, "E_NAME", "the symlink target is not valid UTF-8");
                        self.seen.insert(path, Seen::Symlink);
                    }
                }
            }
            EntryType::Char => {
                let (major, minor) = match (header.device_major(), header.device_minor()) {
                    (Ok(Some(major)), Ok(Some(minor))) => (major, minor),
                    _ => return Err(self.fatal(&path, E_ARCHIVE, "unreadable device numbers")),
                };
                if (major, minor) == (0, 0) {
                    check_xattrs(&mut self.out, &xattrs, &path, false, false, ns);
                    self.push(path, UpperKind::Whiteout, mode, PathBuf::new(), Seen::Other);
                } else {
                    refuse(&mut self.out, &path, E_SPECIAL, "a device, FIFO or socket cannot be synced");
                    self.seen.insert(path, Seen::Other);
                }
            }
            EntryType::Link => self.hardlink(path, &link.unwrap_or_default(), xattrs)?,
            _ => {
                refuse(&mut self.out, &path, E_SPECIAL, "a device, FIFO or socket cannot be synced");
                self.seen.insert(path, Seen::Other);
            }
        }
        Ok(())
    }

    /// A hardlink member naming an earlier regular-file member is an independent copy of it.
    fn hardlink(&mut self, path: String, target: &[u8], xattrs: Vec<(String, Vec<u8>)>) -> Step<()> {
        let file = match normalize(target, false) {
            Ok(t) => match self.seen.get(&t) {
                Some(Seen::File(file)) => Some(file.clone()),
                _ => None,
            },
            Err(_) => None,
        };
        let Some(file) = file else {
            refuse(
                &mut self.out,
                &path,
                E_HARDLINK,
                format!("a hardlink to `{}`, which is not an earlier regular file member", lossy(target)),
            );
            self.seen.insert(path, Seen::Other);
            return Ok(());
        };
        self.count_bytes(&path, file.size)?;
        // The same inode: its attributes (GNU tar lists them only on the first name) apply here too.
        let all: Vec<(String, Vec<u8>)> = file.xattrs.iter().cloned().chain(xattrs).collect();
        check_xattrs(&mut self.out, &all, &path, false, false, self.ns);
        let kind = UpperKind::File { size: file.size, sha256: file.sha256.clone() };
        let (mode, source) = (file.mode, file.source.clone());
        self.push(path, kind, mode, source, Seen::File(file));
        Ok(())
    }
}

/// A member name as a relative `/`-separated path (`""` is the root): one leading `./` (the
/// export's own prefix) and, for directories, one trailing `/` are dropped; anything else that
/// is not a plain component is refused.
fn normalize(raw: &[u8], is_dir: bool) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "the name is not valid UTF-8".to_owned())?;
    if text.contains('\0') {
        return Err("the name contains a NUL byte".into());
    }
    if text.starts_with('/') {
        return Err("an absolute path".into());
    }
    let text = if is_dir { text.strip_suffix('/').unwrap_or(text) } else { text };
    if text == "." {
        return Ok(String::new());
    }
    let text = text.strip_prefix("./").unwrap_or(text);
    for component in text.split('/') {
        match component {
            "" => return Err("an empty path component (empty name, `//` or a trailing `/`)".into()),
            "." => return Err("a `.` component inside the path".into()),
            ".." => return Err("a `..` component".into()),
            _ => {}
        }
    }
    Ok(text.to_owned())
}

/// Parse PAX records (`"<len> <key>=<value>\n"`) strictly: every byte must belong to a
/// well-formed record, no key may repeat, and only keys GNU tar writes for an upper are accepted.
fn parse_pax(mut data: &[u8]) -> Result<Pax, String> {
    let mut pax = Pax::default();
    let mut keys: HashSet<Vec<u8>> = HashSet::new();
    let mut names: HashSet<String> = HashSet::new();
    while !data.is_empty() {
        let malformed = || "a malformed PAX record".to_owned();
        let space = data.iter().position(|b| *b == b' ').ok_or_else(malformed)?;
        let digits = &data[..space];
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
            return Err(malformed());
        }
        let len: usize = std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or_else(malformed)?;
        if len < space + 3 || len > data.len() || data[len - 1] != b'\n' {
            return Err(malformed());
        }
        let record = &data[space + 1..len - 1];
        data = &data[len..];
        let eq = record.iter().position(|b| *b == b'=').ok_or_else(malformed)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let shown = lossy(key);
        if key.is_empty() || !keys.insert(key.to_vec()) {
            return Err(format!("a duplicate or empty PAX key `{shown}`"));
        }
        match key {
            b"path" | b"linkpath" if value.is_empty() => return Err(format!("an empty PAX `{shown}`")),
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value).ok().filter(|v| v.bytes().all(|b| b.is_ascii_digit()));
                pax.size = Some(size.and_then(|v| v.parse().ok()).ok_or_else(|| "a malformed PAX size".to_owned())?);
            }
            b"uid" | b"gid" | b"uname" | b"gname" | b"mtime" | b"atime" | b"ctime" | b"comment" => {}
            _ => {
                let Some(encoded) = key.strip_prefix(b"SCHILY.xattr.") else {
                    return Err(format!("an unsupported PAX record `{shown}`"));
                };
                // GNU tar escapes `%` and `=` in attribute names.
                let name = lossy(encoded).replace("%3D", "=").replace("%25", "%");
                if name.is_empty() {
                    return Err("an empty attribute name".into());
                }
                if std::str::from_utf8(encoded).is_err() {
                    pax.non_utf8_xattr = true;
                } else if !names.insert(name.clone()) {
                    return Err(format!("the attribute `{name}` is given twice"));
                } else {
                    pax.xattrs.push((name, value.to_vec()));
                }
            }
        }
    }
    Ok(pax)
}

#[cfg(test)]
mod tests {
    //! overlay-sync-semantics.md §5 C (transport and copy-out integrity) on streams built with the
    //! `tar` crate (raw headers where it refuses to write the attack), checked against
    //! `upper::read` on the same tree on disk, and against a real GNU tar export.
    #![allow(clippy::disallowed_methods)] // GNU tar: the real producer of the stream.

    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::sync::upper::read;

    const BIG: TarLimits = TarLimits { max_entries: 1000, max_total_bytes: 1 << 30, max_file_bytes: 1 << 30 };

    /// A tar stream built member by member, with names written verbatim.
    struct T(tar::Builder<Vec<u8>>);

    impl T {
        fn new() -> Self {
            T(tar::Builder::new(Vec::new()))
        }
        fn add(&mut self, ty: EntryType, path: &[u8], link: &[u8], data: &[u8], mode: u32) -> &mut Self {
            let mut h = Header::new_ustar();
            h.as_old_mut().name[..path.len()].copy_from_slice(path);
            h.set_link_name_literal(link).unwrap();
            h.set_entry_type(ty);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_device_major(0).unwrap();
            h.set_device_minor(0).unwrap();
            self.raw(h, data)
        }
        fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }
        fn dir(&mut self, path: &str) -> &mut Self {
            self.add(EntryType::Directory, path.as_bytes(), b"", b"", 0o755)
        }
        fn file(&mut self, path: &str, data: &str) -> &mut Self {
            self.add(EntryType::Regular, path.as_bytes(), b"", data.as_bytes(), 0o644)
        }
        fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
            self.add(EntryType::Symlink, path.as_bytes(), target.as_bytes(), b"", 0o777)
        }
        fn whiteout(&mut self, path: &str) -> &mut Self {
            self.add(EntryType::Char, path.as_bytes(), b"", b"", 0)
        }
        fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
            self.add(EntryType::Link, path.as_bytes(), target.as_bytes(), b"", 0o644)
        }
        fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            self.0.append_pax_extensions(records.iter().copied()).unwrap();
            self
        }
        fn bytes(&mut self) -> Vec<u8> {
            std::mem::replace(&mut self.0, tar::Builder::new(Vec::new())).into_inner().unwrap()
        }
    }

    fn parse_with(bytes: &[u8], expect: Option<Completeness>, limits: TarLimits) -> (Upper, tempfile::TempDir) {
        let stage = tempfile::tempdir().unwrap();
        let upper = read_tar(bytes, Namespace::Trusted, expect, stage.path(), limits).unwrap();
        (upper, stage)
    }

    fn parse(bytes: &[u8]) -> Upper {
        parse_with(bytes, None, BIG).0
    }

    fn codes(upper: &Upper) -> Vec<&'static str> {
        upper.refusals.iter().map(|r| r.code).collect()
    }

    /// What `upper::read` and `read_tar` must agree on (`source` differs by design).
    fn summary(upper: &Upper) -> Vec<(String, UpperKind, u32)> {
        upper.entries.iter().map(|e| (e.path.clone(), e.kind.clone(), e.mode)).collect()
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The realistic upper of the round trip, on disk: returns its root.
    fn upper_on_disk(dir: &Path) -> PathBuf {
        let root = dir.join("upper");
        for d in ["new", "new/deep", "op", "op/sub"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            set_mode(&root.join(d), 0o755);
        }
        for (p, c) in [("a.txt", "a\nmore\n"), ("new/deep/file.txt", "new\n"), ("op/sub/x", "x"), ("origin.rs", "o")] {
            std::fs::write(root.join(p), c).unwrap();
            set_mode(&root.join(p), 0o644);
        }
        set_mode(&root.join("new/deep"), 0o700);
        for w in ["gone", "new/gone2"] {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                root.join(w),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::empty(),
                0,
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
        xattr::set(root.join("op"), "trusted.overlay.opaque", b"y").unwrap();
        xattr::set(root.join("origin.rs"), "trusted.overlay.origin", b"\x00\xfb\x21").unwrap();
        xattr::set(&root, "trusted.overlay.uuid", b"1234").unwrap();
        root
    }

    #[test]
    fn round_trip_equals_the_directory_reader() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = read(&upper_on_disk(dir.path()), Namespace::Trusted).unwrap();
        assert!(on_disk.refusals.is_empty() && on_disk.warnings.is_empty(), "{on_disk:?}");
        // Listed in readdir-like order, not sorted, as GNU tar does.
        let bytes = T::new()
            .pax(&[("SCHILY.xattr.trusted.overlay.uuid", b"1234")])
            .dir("./")
            .pax(&[("mtime", b"1.5"), ("atime", b"1"), ("SCHILY.xattr.trusted.overlay.opaque", b"y")])
            .dir("./op/")
            .dir("./op/sub/")
            .file("./op/sub/x", "x")
            .whiteout("./gone")
            .pax(&[("SCHILY.xattr.trusted.overlay.origin", b"\x00\xfb\x21")])
            .file("./origin.rs", "o")
            .symlink("./link", "a.txt")
            .dir("./new/")
            .whiteout("./new/gone2")
            .add(EntryType::Directory, b"./new/deep/", b"", b"", 0o700)
            .file("./new/deep/file.txt", "new\n")
            .file("./a.txt", "a\nmore\n")
            .bytes();
        let expect = Completeness { entries: 11, bytes: 7 + 4 + 1 + 1 };
        let (from_tar, stage) = parse_with(&bytes, Some(expect), BIG);
        assert!(from_tar.refusals.is_empty() && from_tar.warnings.is_empty(), "{from_tar:?}");
        assert_eq!(summary(&from_tar), summary(&on_disk));
        for e in &from_tar.entries {
            if let UpperKind::File { sha256, .. } = &e.kind {
                assert_eq!(e.source, stage.path().join(sha256));
                assert_eq!(&sha256_of(&e.source), sha256);
                assert_eq!(std::fs::metadata(&e.source).unwrap().mode() & 0o777, 0o600);
            } else {
                assert_eq!(e.source, PathBuf::new());
            }
        }
        let staged = std::fs::read_dir(stage.path()).unwrap().count();
        assert_eq!(staged, 4, "only content-addressed files, no temporaries left");
    }

    fn sha256_of(path: &Path) -> String {
        crate::sync::manifest::sha256_file(path).unwrap()
    }

    #[test]
    fn real_gnu_tar_export_equals_the_directory_reader() {
        let dir = tempfile::tempdir().unwrap();
        let root = upper_on_disk(dir.path());
        // Shared whiteouts (one inode, as overlayfs makes them) and a hardlinked file.
        std::fs::hard_link(root.join("gone"), root.join("new/gone3")).unwrap();
        std::fs::hard_link(root.join("a.txt"), root.join("new/a-link")).unwrap();
        let on_disk = read(&root, Namespace::Trusted).unwrap();
        let out = std::process::Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
            .arg(&root)
            .args(["-cf", "-", "."])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut expect = Completeness::default();
        for e in walkdir::WalkDir::new(&root).min_depth(1) {
            let meta = e.unwrap().path().symlink_metadata().unwrap();
            expect.entries += 1;
            expect.bytes += if meta.is_file() { meta.len() } else { 0 };
        }
        let (from_tar, _stage) = parse_with(&out.stdout, Some(expect), BIG);
        assert!(from_tar.refusals.is_empty() && from_tar.warnings.is_empty(), "{from_tar:?}");
        assert_eq!(summary(&from_tar), summary(&on_disk));
        let wrong = Completeness { entries: expect.entries + 1, ..expect };
        assert_eq!(codes(&parse_with(&out.stdout, Some(wrong), BIG).0), [E_INCOMPLETE]);
    }

    #[test]
    fn c1_c2_trailer_expecting_more_than_the_stream_holds() {
        // rsync as non-root drops the whiteout; the VM counted it.
        let bytes = T::new().dir("./").file("./a", "abc").bytes();
        let (ok, _s) = parse_with(&bytes, Some(Completeness { entries: 1, bytes: 3 }), BIG);
        assert!(ok.refusals.is_empty());
        for expect in [Completeness { entries: 2, bytes: 3 }, Completeness { entries: 1, bytes: 4 }] {
            assert_eq!(codes(&parse_with(&bytes, Some(expect), BIG).0), [E_INCOMPLETE], "{expect:?}");
        }
    }

    #[test]
    fn c3_every_traversal_form_is_refused() {
        let names: [&[u8]; 12] = [
            b"../x",
            b"/etc/passwd",
            b"a/../../x",
            b"a//b",
            b"./a/./b",
            b"a/.",
            b"././a",
            b"",
            b"a/",
            b"..",
            b"\xff\xfe",
            b"./a\\..\\..",
        ];
        for name in names {
            let bytes = T::new().dir("./").add(EntryType::Regular, name, b"", b"x", 0o644).bytes();
            let expected: &[&str] = if name == b"./a\\..\\.." { &[] } else { &[E_PATH] };
            assert_eq!(codes(&parse(&bytes)), expected, "{}", lossy(name));
        }
        let pax_paths: [&[u8]; 4] = [b"./a/../../x", b"/abs", b"\xff\xfe", b"a\0b"];
        for path in pax_paths {
            let bytes = T::new().pax(&[("path", path)]).file("./harmless", "x").bytes();
            assert_eq!(codes(&parse(&bytes)), [E_PATH], "PAX path {}", lossy(path));
        }
        // A PAX path is honoured over the header name, and the export's `./` prefix is optional.
        let bytes = T::new().pax(&[("path", b"./real/name")]).file("./decoy", "x").file("b", "y").bytes();
        let upper = parse(&bytes);
        assert!(upper.refusals.is_empty());
        let paths: Vec<&str> = upper.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["b", "real/name"]);
        assert_eq!(upper.warnings, ["real: directory not listed in the stream"]);
    }

    #[test]
    fn c4_duplicate_members_are_refused() {
        let cases = [
            T::new().file("./a", "1").symlink("./a", "x").bytes(),
            T::new().file("./a", "1").file("a", "2").bytes(),
            T::new().dir("./d/").dir("./d").bytes(),
            T::new().dir("./").dir(".").bytes(),
        ];
        for bytes in cases {
            assert_eq!(codes(&parse(&bytes)), [E_PATH]);
        }
    }

    #[test]
    fn c5_members_below_a_symlink_or_non_directory_are_refused() {
        let cases = [
            T::new().symlink("./lnk", "/tmp").file("./lnk/f", "x").bytes(),
            T::new().symlink("./lnk", "/tmp").dir("./lnk/d/").bytes(),
            T::new().symlink("./lnk", "/tmp").file("./lnk/missing/f", "x").bytes(),
            T::new().file("./lnk/f", "x").symlink("./lnk", "/tmp").bytes(),
            T::new().file("./f", "x").file("./f/g", "y").bytes(),
            T::new().whiteout("./w").dir("./w/sub/").bytes(),
            T::new().whiteout("./w").file("./w/x", "x").bytes(),
        ];
        for bytes in cases {
            assert_eq!(codes(&parse(&bytes)), [E_PATH]);
        }
    }

    #[test]
    fn c6_hardlinks_only_to_an_earlier_regular_member_and_copied() {
        let bytes = T::new().file("./a", "content").hardlink("./b", "./a").hardlink("./c", "b").bytes();
        let (upper, stage) = parse_with(&bytes, Some(Completeness { entries: 3, bytes: 21 }), BIG);
        assert!(upper.refusals.is_empty(), "{:?}", upper.refusals);
        let kinds: Vec<&UpperKind> = upper.entries.iter().map(|e| &e.kind).collect();
        assert!(kinds.iter().all(|k| *k == kinds[0] && matches!(k, UpperKind::File { size: 7, .. })));
        assert!(
            upper.entries.iter().all(|e| e.source == upper.entries[0].source && e.source.starts_with(stage.path()))
        );
        let cases = [
            T::new().hardlink("./h", "../../etc/passwd").bytes(),
            T::new().hardlink("./h", "/etc/passwd").bytes(),
            T::new().hardlink("./h", "./later").file("./later", "x").bytes(),
            T::new().hardlink("./h", "./nowhere").bytes(),
            T::new().hardlink("./h", "./h").bytes(),
            T::new().whiteout("./w").hardlink("./h", "./w").bytes(),
            T::new().dir("./d/").hardlink("./h", "./d").bytes(),
            T::new().symlink("./s", "a").hardlink("./h", "./s").bytes(),
            T::new().add(EntryType::Fifo, b"./p", b"", b"", 0o644).hardlink("./h", "./p").bytes(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let got = codes(&parse(bytes));
            assert_eq!(got.last(), Some(&E_HARDLINK), "case {i}: {got:?}");
        }
        let bytes = T::new().file("./a", "x").add(EntryType::Link, b"./h", b"./a", b"data", 0o644).bytes();
        assert_eq!(codes(&parse(&bytes)), [E_ARCHIVE], "a hardlink carrying data");
    }

    #[test]
    fn c7_pax_abuse_is_refused() {
        let mut long_name = Header::new_gnu();
        long_name.set_entry_type(EntryType::GNULongName);
        long_name.set_size(6);
        long_name.set_mode(0o644);
        let mut global = Header::new_ustar();
        global.set_entry_type(EntryType::XGlobalHeader);
        global.set_size(12);
        global.set_mode(0o644);
        let pax_raw = |records: &[u8]| {
            let mut h = Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            h.set_size(records.len() as u64);
            h.set_mode(0o644);
            T::new().raw(h, records).file("./a", "x").bytes()
        };
        let cases = [
            ("duplicate path", T::new().pax(&[("path", b"a"), ("path", b"b")]).file("./a", "x").bytes()),
            ("duplicate size", T::new().pax(&[("size", b"1"), ("size", b"1")]).file("./a", "x").bytes()),
            ("conflicting size", T::new().pax(&[("size", b"5")]).file("./a", "xyz").bytes()),
            ("size not a number", T::new().pax(&[("size", b"-1")]).file("./a", "x").bytes()),
            ("two PAX headers", T::new().pax(&[("mtime", b"1")]).pax(&[("path", b"b")]).file("./a", "x").bytes()),
            ("linkpath on a file", T::new().pax(&[("linkpath", b"/etc")]).file("./a", "x").bytes()),
            ("duplicate xattr", {
                let x = "SCHILY.xattr.user.a";
                T::new().pax(&[(x, b"1"), ("SCHILY.xattr.user.%61", b"2"), (x, b"3")]).file("./a", "x").bytes()
            }),
            ("unknown key", T::new().pax(&[("GNU.sparse.size", b"9")]).file("./a", "x").bytes()),
            ("bsdtar xattr", T::new().pax(&[("LIBARCHIVE.xattr.trusted.overlay.opaque", b"eQ==")]).dir("./d/").bytes()),
            ("dangling PAX", T::new().file("./a", "x").pax(&[("path", b"b")]).bytes()),
            ("global header", T::new().raw(global, b"9 path=a\n\0\0\0").file("./a", "x").bytes()),
            (
                "GNU long name then PAX",
                T::new().raw(long_name.clone(), b"./lng\0").pax(&[("path", b"b")]).file("./a", "x").bytes(),
            ),
            (
                "PAX then GNU long name",
                T::new().pax(&[("path", b"b")]).raw(long_name, b"./lng\0").file("./a", "x").bytes(),
            ),
            ("no length", pax_raw(b"garbage\n")),
            ("length too long", pax_raw(b"99 path=a\n")),
            ("length too short", pax_raw(b"5 path=a\n")),
            ("leading zero", pax_raw(b"010 path=a\n")),
            ("no newline", pax_raw(b"10 path=ab")),
            ("no equals", pax_raw(b"9 pathab\n")),
            ("trailing bytes", pax_raw(b"9 path=a\nx")),
            ("empty path", pax_raw(b"8 path=\n")),
        ];
        for (what, bytes) in cases {
            assert_eq!(codes(&parse(&bytes)), [E_ARCHIVE], "{what}");
        }
        let mut bad_sum = T::new().file("./a", "x").bytes();
        bad_sum[0] ^= 1;
        assert_eq!(codes(&parse(&bad_sum)), [E_ARCHIVE], "checksum");
        assert_eq!(codes(&parse(&[0x41; 2048])), [E_ARCHIVE], "not a tar stream");
        let sparse = T::new().add(EntryType::GNUSparse, b"./s", b"", b"", 0o644).bytes();
        assert_eq!(codes(&parse(&sparse)), [E_ARCHIVE], "sparse");
        let dir_with_data = T::new().add(EntryType::Directory, b"./d/", b"", b"data", 0o755).bytes();
        assert_eq!(codes(&parse(&dir_with_data)), [E_ARCHIVE], "data on a directory");
        let mut appended = T::new().file("./a", "x").bytes();
        appended.extend(T::new().file("./b", "y").bytes());
        assert_eq!(codes(&parse(&appended)), [E_ARCHIVE], "a second archive after the end marker");
        // GNU tar's escapes in attribute names, and records it writes on every member, are fine.
        let bytes = T::new()
            .pax(&[("atime", b"1.2"), ("SCHILY.xattr.user.a%3Db%25", b"v"), ("uname", b"root")])
            .file("./a", "x")
            .bytes();
        assert!(parse(&bytes).refusals.is_empty());
    }

    #[test]
    fn c8_a_truncated_stream_is_always_refused() {
        let content = "0123456789".repeat(200);
        let full = T::new().dir("./").pax(&[("mtime", b"1")]).file("./big", &content).whiteout("./w").bytes();
        let (ok, _s) = parse_with(&full, Some(Completeness { entries: 2, bytes: 2000 }), BIG);
        assert!(ok.refusals.is_empty());
        for cut in (0..full.len()).step_by(61).chain((0..full.len()).step_by(BLOCK)) {
            let upper = parse(&full[..cut]);
            assert_eq!(codes(&upper), [E_INCOMPLETE], "cut at {cut}");
        }
        let mut zero_blocks = full.clone();
        zero_blocks.truncate(full.len() - BLOCK);
        assert_eq!(codes(&parse(&zero_blocks)), [E_INCOMPLETE], "one zero block");
        let mut padded = full.clone();
        padded.extend([0; 10240]);
        assert!(parse(&padded).refusals.is_empty(), "record padding after the marker");

        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("connection reset"));
                }
                let n = self.0.read(buf)?;
                Ok(n)
            }
        }
        let stage = tempfile::tempdir().unwrap();
        let upper = read_tar(Failing(&full[..2500]), Namespace::Trusted, None, stage.path(), BIG).unwrap();
        assert_eq!(codes(&upper), [E_INCOMPLETE]);
        assert_eq!(std::fs::read_dir(stage.path()).unwrap().count(), 0, "no partial file staged");
    }

    #[test]
    fn limits_are_enforced() {
        let bytes = T::new().dir("./").file("./a", "12345").file("./b", "123456").dir("./c/").bytes();
        let at = |max_entries, max_total_bytes, max_file_bytes| {
            codes(&parse_with(&bytes, None, TarLimits { max_entries, max_total_bytes, max_file_bytes }).0)
        };
        assert!(at(3, 11, 6).is_empty(), "the root is not counted; limits are inclusive");
        assert_eq!(at(2, 11, 6), [E_LIMIT]);
        assert_eq!(at(3, 10, 6), [E_LIMIT]);
        assert_eq!(at(3, 11, 5), [E_LIMIT]);
        let huge = vec![b'x'; (MAX_EXTENSION_BYTES + 1) as usize];
        let bytes = T::new().pax(&[("comment", &huge)]).file("./a", "x").bytes();
        assert_eq!(codes(&parse(&bytes)), [E_LIMIT]);
    }

    #[test]
    fn specials_are_refused() {
        let mut dev = Header::new_ustar();
        dev.as_old_mut().name[..6].copy_from_slice(b"./null");
        dev.set_entry_type(EntryType::Char);
        dev.set_mode(0o666);
        dev.set_size(0);
        dev.set_device_major(1).unwrap();
        dev.set_device_minor(3).unwrap();
        let cases = [
            T::new().raw(dev, b"").bytes(),
            T::new().add(EntryType::Fifo, b"./p", b"", b"", 0o644).bytes(),
            T::new().add(EntryType::Block, b"./b", b"", b"", 0o644).bytes(),
        ];
        for bytes in cases {
            assert_eq!(codes(&parse(&bytes)), [E_SPECIAL]);
        }
    }

    #[test]
    fn overlay_xattrs_in_the_stream_refuse_as_from_a_directory() {
        let cases: [(&str, &[u8]); 10] = [
            ("trusted.overlay.redirect", b"/d4"),
            ("trusted.overlay.metacopy", b""),
            ("trusted.overlay.whiteout", b"y"),
            ("trusted.overlay.nlink", b"1"),
            ("trusted.overlay.upper", b"x"),
            ("trusted.overlay.frobnicate", b"1"),
            ("user.overlay.opaque", b"y"),
            ("trusted.overlay.opaque", b"yes"),
            ("trusted.overlay.opaque", b"x"),
            ("trusted.overlay.overlay.opaque", b"y"),
        ];
        for (name, value) in cases {
            for is_dir in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                let root = dir.path().join("upper");
                std::fs::create_dir_all(&root).unwrap();
                let mut t = T::new();
                t.pax(&[(&format!("SCHILY.xattr.{name}"), value)]);
                if is_dir {
                    std::fs::create_dir(root.join("d")).unwrap();
                    t.dir("./d/");
                } else {
                    std::fs::write(root.join("d"), "").unwrap();
                    t.file("./d", "");
                }
                xattr::set(root.join("d"), name, value).unwrap();
                let (on_disk, from_tar) = (read(&root, Namespace::Trusted).unwrap(), parse(&t.bytes()));
                assert_eq!(codes(&from_tar), codes(&on_disk), "{name} dir={is_dir}");
                assert_eq!(from_tar.warnings, on_disk.warnings, "{name} dir={is_dir}");
                assert!(!codes(&from_tar).is_empty() || name.contains("overlay.overlay"), "{name}");
            }
        }
        let bytes = T::new().pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")]).dir("./").bytes();
        assert_eq!(codes(&parse(&bytes)), ["E_OPAQUE_ANOMALY"], "opaque on the root");
        let bytes = T::new().pax(&[("SCHILY.xattr.trusted.overlay.uuid", b"u")]).dir("./d/").bytes();
        assert_eq!(codes(&parse(&bytes)), ["E_OVL_UNKNOWN"], "uuid off the root");
        let stage = tempfile::tempdir().unwrap();
        let bytes = T::new().pax(&[("SCHILY.xattr.user.overlay.opaque", b"y")]).dir("./d/").bytes();
        let user = read_tar(&bytes[..], Namespace::User, None, stage.path(), BIG).unwrap();
        assert_eq!(user.entries[0].kind, UpperKind::Dir { opaque: true }, "userxattr mode");
    }
}
