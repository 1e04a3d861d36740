//! `Format`: which container a buffer is, by its magic number at offset 0 (and a zip's end of
//! central directory at its end). Formats the scanner cannot decode are named by the
//! `UNDECODABLE` table, so they can be reported as unscannable instead of passing as raw bytes.
//!
//! Invariant: a short magic number is never trusted alone. Each one is checked together with the
//! header fields after it (a version, a reserved bit, a size that must be a power of two...), so
//! an ordinary file that happens to start with the same two bytes is not taken for a container.

use memchr::memmem;

/// A container the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Zip,
    /// A zip that does not start with a local header (a self-extracting program, a zip appended
    /// to another file), found by its end of central directory: opened if it opens, else the
    /// bytes are only scanned as they are.
    ZipAtEnd,
    Gzip,
    Tar,
    Xz,
    Bzip2,
    Zstd,
    Lzip,
    /// The legacy `.lzma` format (LZMA-alone, as `xz --format=lzma` and 7-Zip's SDK write it).
    Lzma,
    /// A raw zlib stream: two header bytes, so it is taken as zlib only if it inflates.
    Zlib,
    Png,
    Pdf,
    /// `ar` (`.a`, `.deb`, Rust's `.rlib`): members are stored as they are.
    Ar,
    /// Recognisably compressed or archived, and not decodable here: the format's name.
    Undecodable(&'static str),
}

/// The format of `data`, if it is a container the scanner knows.
pub(crate) fn sniff(data: &[u8]) -> Option<Format> {
    let format = if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        Format::Zip
    } else if data.starts_with(&[0x1f, 0x8b, 0x08]) {
        Format::Gzip
    } else if data.starts_with(b"\xfd7zXZ\x00") {
        Format::Xz
    } else if is_bzip2(data) {
        Format::Bzip2
    } else if let Some(format) = zstd_or_lz4(data) {
        format
    } else if data.starts_with(b"LZIP\x01") {
        Format::Lzip
    } else if is_lzma_alone(data) {
        Format::Lzma
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if data.starts_with(b"%PDF-") {
        Format::Pdf
    } else if data.starts_with(b"!<arch>\n") {
        Format::Ar
    } else if data.len() >= 262 && &data[257..262] == b"ustar" {
        Format::Tar
    } else if let Some(magic) = UNDECODABLE.iter().find(|m| data.starts_with(m.magic) && (m.plausible)(data)) {
        Format::Undecodable(magic.name)
    } else if is_zlib_header(data) {
        Format::Zlib
    } else if has_zip_end(data) {
        Format::ZipAtEnd
    } else {
        return None;
    };
    Some(format)
}

/// A format the scanner recognises and cannot decode.
struct Magic {
    name: &'static str,
    /// At offset 0.
    magic: &'static [u8],
    /// The header fields after the magic number make sense.
    plausible: fn(&[u8]) -> bool,
}

fn any(_: &[u8]) -> bool {
    true
}

/// Brotli has no magic number, so it cannot be recognised (and is scanned as bytes).
const UNDECODABLE: &[Magic] = &[
    Magic { name: "7z archive", magic: b"7z\xbc\xaf\x27\x1c", plausible: any },
    // RAR 1.5 to 4 (`Rar!\x1a\x07\x00`) and RAR 5 (`Rar!\x1a\x07\x01\x00`).
    Magic {
        name: "RAR archive",
        magic: b"Rar!\x1a\x07",
        plausible: |d| d.get(6) == Some(&0) || d.get(6..8) == Some(&[1, 0]),
    },
    // The frame descriptor's version bits are 01.
    Magic { name: "lz4 frame", magic: b"\x04\x22\x4d\x18", plausible: |d| d.get(4).is_some_and(|f| f >> 6 == 1) },
    Magic { name: "lz4 legacy frame", magic: b"\x02\x21\x4c\x18", plausible: any },
    Magic { name: "lzop file", magic: b"\x89LZO\x00\r\n\x1a\n", plausible: any },
    Magic { name: "lzo file", magic: b"\x00\xe9LZO\xff\x1a", plausible: any },
    // The third byte: block mode bit, two reserved bits clear, 9 to 16 bits per code.
    Magic {
        name: "Unix compress (.Z) file",
        magic: b"\x1f\x9d",
        plausible: |d| d.get(2).is_some_and(|f| f & 0x60 == 0 && (9..=16).contains(&(f & 0x1f))),
    },
    Magic { name: "Microsoft cabinet (.cab)", magic: b"MSCF\0\0\0\0", plausible: any },
    // Header size (at least 28) and version 1, big-endian.
    Magic {
        name: "xar archive",
        magic: b"xar!",
        plausible: |d| d.len() >= 8 && u16::from_be_bytes([d[4], d[5]]) >= 28 && u16::from_be_bytes([d[6], d[7]]) == 1,
    },
    // Frame magic numbers 0xFD2FB51E to 0xFD2FB527 (zstd before 0.8), which the decoder does not read.
    Magic {
        name: "legacy zstd frame (zstd before 0.8)",
        magic: b"",
        plausible: |d| d.len() >= 4 && (0x1e..=0x27).contains(&d[0]) && d[1..4] == [0xb5, 0x2f, 0xfd],
    },
    Magic { name: "Windows imaging (.wim) file", magic: b"MSWIM\0\0\0", plausible: any },
    // Basic header size at most 2600, a known host OS and the main header's file type (2).
    Magic {
        name: "ARJ archive",
        magic: b"\x60\xea",
        plausible: |d| {
            d.len() >= 11 && (1..=2600).contains(&u16::from_le_bytes([d[2], d[3]])) && d[7] <= 11 && d[10] == 2
        },
    },
    // The 96-byte lead, format version 3 or 4.
    Magic { name: "RPM package", magic: b"\xed\xab\xee\xdb", plausible: |d| d.len() >= 96 && matches!(d[4], 3 | 4) },
    // The ASCII headers are all hexadecimal (newc) or octal (odc) digits.
    Magic { name: "cpio archive", magic: b"070701", plausible: |d| digits(d, 110, 16) },
    Magic { name: "cpio archive", magic: b"070702", plausible: |d| digits(d, 110, 16) },
    Magic { name: "cpio archive", magic: b"070707", plausible: |d| digits(d, 76, 8) },
    // Binary cpio, either byte order: the name's size, and its NUL, after the 26-byte header.
    Magic { name: "cpio archive", magic: b"\xc7\x71", plausible: |d| binary_cpio(d, u16::from_le_bytes) },
    Magic { name: "cpio archive", magic: b"\x71\xc7", plausible: |d| binary_cpio(d, u16::from_be_bytes) },
    // Major version 4 (little-endian, at offset 28).
    Magic { name: "squashfs image", magic: b"hsqs", plausible: |d| d.get(28..30) == Some(&[4, 0]) },
    Magic { name: "MS-DOS compress (SZDD) file", magic: b"SZDD\x88\xf0\x27\x33", plausible: any },
    Magic { name: "MS-DOS compress (KWAJ) file", magic: b"KWAJ\x88\xf0\x27\xd1", plausible: any },
    Magic { name: "StuffIt archive", magic: b"SIT!", plausible: |d| d.get(10..14) == Some(b"rLau") },
    Magic { name: "StuffIt X archive", magic: b"StuffIt!", plausible: any },
    // The method (`-lh5-`, `-lzs-`...) at offset 2, after the header's size and checksum.
    Magic {
        name: "LHA archive",
        magic: b"",
        plausible: |d| {
            d.len() >= 21
                && d[2..4] == *b"-l"
                && d[6] == b'-'
                && matches!(
                    &d[4..6],
                    b"h0" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"h7" | b"hd" | b"zs" | b"z4" | b"z5"
                )
        },
    },
    Magic { name: "zoo archive", magic: b"ZOO ", plausible: |d| d.get(20..24) == Some(b"\xdc\xa7\xc4\xfd") },
    Magic { name: "rzip file", magic: b"RZIP", plausible: |d| d.get(4).is_some_and(|v| (1..=2).contains(v)) },
    Magic { name: "lrzip file", magic: b"LRZI", plausible: |d| d.get(4) == Some(&0) },
];

/// A binary cpio header (26 bytes, 16-bit fields in `order`): a name of 1 to 4096 bytes that
/// ends in NUL right after it.
fn binary_cpio(data: &[u8], order: fn([u8; 2]) -> u16) -> bool {
    let Some(&[a, b]) = data.get(20..22) else { return false };
    let name = usize::from(order([a, b]));
    (1..=4096).contains(&name) && data.get(26 + name - 1) == Some(&0)
}

/// The first `len` bytes are digits of `radix`.
fn digits(data: &[u8], len: usize, radix: u32) -> bool {
    data.len() >= len && data[..len].iter().all(|&b| char::from(b).is_digit(radix))
}

/// `BZh1`..`BZh9`, then the first block's magic (pi) or the end of stream's (sqrt(pi)).
fn is_bzip2(data: &[u8]) -> bool {
    data.len() >= 10
        && data.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&data[3])
        && (data[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59] || data[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A zstd frame (its descriptor's reserved bit clear), or an lz4 frame, possibly after skippable
/// frames (`0x184D2A50`..`5F`, which both formats use and pzstd writes first).
fn zstd_or_lz4(data: &[u8]) -> Option<Format> {
    let start = skip_skippable_frames(data);
    let rest = &data[start..];
    if rest.starts_with(&ZSTD_MAGIC) && rest.get(4).is_some_and(|d| d & 0x08 == 0) {
        Some(Format::Zstd)
    } else if start > 0 && rest.starts_with(b"\x04\x22\x4d\x18") {
        Some(Format::Undecodable("lz4 frame"))
    } else {
        None
    }
}

/// Where the data starts after any leading skippable frames (magic, length, payload).
pub(crate) fn skip_skippable_frames(data: &[u8]) -> usize {
    let mut at = 0;
    while let Some(header) = data.get(at..at + 8) {
        if !((0x50..=0x5f).contains(&header[0]) && header[1..4] == [0x2a, 0x4d, 0x18]) {
            break;
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        match at.checked_add(8 + len) {
            Some(next) if next <= data.len() => at = next,
            _ => break,
        }
    }
    at
}

/// The 13-byte `.lzma` header as xz's own detection checks it: the usual properties byte
/// (lc=3, lp=0, pb=2), a dictionary size of 2^n or 2^n + 2^(n-1), and an uncompressed size
/// that is unknown (all ones) or below 256 GiB.
fn is_lzma_alone(data: &[u8]) -> bool {
    if data.len() < 13 || data[0] != 0x5d {
        return false;
    }
    let dict = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let size = u64::from_le_bytes(data[5..13].try_into().unwrap_or_default());
    let dict_ok = dict >= 4096 && {
        let low = dict.trailing_zeros();
        let rest = dict >> low;
        rest == 1 || rest == 3
    };
    dict_ok && (size == u64::MAX || size < 1 << 38)
}

/// The zlib header: deflate (CM 8) with a window of at most 32 KiB, no preset dictionary, and
/// the check bits (`(CMF * 256 + FLG) % 31 == 0`).
pub(crate) fn is_zlib_header(data: &[u8]) -> bool {
    let [cmf, flg, ..] = *data else { return false };
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && flg & 0x20 == 0 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
}

/// A zip's end of central directory record within the last 64 KiB (its comment's largest size).
pub(crate) fn has_zip_end(data: &[u8]) -> bool {
    const EOCD: usize = 22;
    if data.len() < EOCD {
        return false;
    }
    let from = data.len().saturating_sub(EOCD + usize::from(u16::MAX));
    memmem::rfind(&data[from..data.len() - EOCD + 4], b"PK\x05\x06").is_some()
}

#[cfg(test)]
mod tests {
    use super::{Format, sniff};

    #[test]
    fn magic_numbers_are_recognised_with_their_header_fields() {
        let cases: &[(&[u8], Option<Format>)] = &[
            (b"\xfd7zXZ\x00\x00\x04", Some(Format::Xz)),
            (b"BZh91AY&SYxxxx", Some(Format::Bzip2)),
            (b"BZh9 not bzip2 at all", None),
            (b"\x28\xb5\x2f\xfd\x24\x05", Some(Format::Zstd)),
            (b"\x28\xb5\x2f\xfd\x08\x05", None),
            (b"\x50\x2a\x4d\x18\x02\x00\x00\x00ab\x28\xb5\x2f\xfd\x24", Some(Format::Zstd)),
            (b"LZIP\x01\x0c", Some(Format::Lzip)),
            (b"\x5d\x00\x00\x80\x00\xff\xff\xff\xff\xff\xff\xff\xff", Some(Format::Lzma)),
            (b"\x5d\x00\x00\x81\x00\xff\xff\xff\xff\xff\xff\xff\xff", None),
            (b"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15", Some(Format::Zlib)),
            (b"x\x9d not zlib", None),
            (b"7z\xbc\xaf\x27\x1c\x00\x04", Some(Format::Undecodable("7z archive"))),
            (b"Rar!\x1a\x07\x01\x00", Some(Format::Undecodable("RAR archive"))),
            (b"Rar!\x1a\x07\x05", None),
            (b"\x04\x22\x4d\x18\x64\x40", Some(Format::Undecodable("lz4 frame"))),
            (b"\x1f\x9d\x90abc", Some(Format::Undecodable("Unix compress (.Z) file"))),
            (b"\x1f\x9d\x20abc", None),
            (b"\x1f\x8b\x07", None),
            (b"xar!\x00\x1c\x00\x01", Some(Format::Undecodable("xar archive"))),
            (b"xar! is a word", None),
            (b"070701 is a number", None),
            (b"\x1b\x00-lh5-\x8b\x00\x00\x00\xbf\x00\x00\x00\x30\x57\x5c\x54\x20\x02\x40", Some(Format::Undecodable("LHA archive"))),
            (b"\xc7\x71\x02\x08\x25\x80\xa4\x81\xf4\x01\xf4\x01\x01\x00\x00\x00\x71\x54\x5e\x78\x03\x00\x00\x00\xbf\x00ab\x00", Some(Format::Undecodable("cpio archive"))),
            (b"\xc7\x71 two bytes are not a cpio header", None),
            (b"hello, world\n", None),
        ];
        for (data, expect) in cases {
            assert_eq!(sniff(data), *expect, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn a_zip_is_found_by_its_end_of_central_directory() {
        let mut data = b"MZ a program, then a zip".to_vec();
        data.extend_from_slice(b"PK\x05\x06");
        data.extend_from_slice(&[0; 18]);
        assert_eq!(sniff(&data), Some(Format::ZipAtEnd));
        data.extend_from_slice(&[0; 70_000]);
        assert_eq!(sniff(&data), None, "past the largest comment");
    }
}
