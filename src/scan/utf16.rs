//! Text in UTF-16, which rules written for ASCII never match (every other byte is a NUL):
//! PowerShell 5's `>` and `Out-File` write UTF-16LE with a byte-order mark, `iconv -t UTF-16LE`
//! writes it without one, Windows tools write both. A buffer is taken as UTF-16 when it starts
//! with a byte-order mark, or when most of its first bytes are NULs at alternate positions
//! (ASCII-range text); it is transcoded to UTF-8 and scanned as text.
//!
//! What is found is reported at its place in the original bytes (line and byte column of its
//! first code unit), so the gate's diff redacts the right bytes.

/// How many leading bytes decide whether a buffer without a byte-order mark is UTF-16.
const SAMPLE: usize = 1024;
/// Fewer code units than this are not worth a guess (without a byte-order mark).
const MIN_UNITS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Endian::Little => "utf-16le",
            Endian::Big => "utf-16be",
        }
    }
}

/// Whether `data` is UTF-16 text, and in which byte order: a byte-order mark, or at least 70%
/// of the first code units with a NUL high byte and at most 5% with a NUL low byte (text that
/// is mostly ASCII). Binary formats with many NULs fail the second condition.
pub(crate) fn detect(data: &[u8]) -> Option<Endian> {
    match data {
        [0xFF, 0xFE, ..] => return Some(Endian::Little),
        [0xFE, 0xFF, ..] => return Some(Endian::Big),
        _ => {}
    }
    let sample = &data[..data.len().min(SAMPLE) & !1];
    let units = sample.len() / 2;
    // Most buffers are text without a NUL: one vectorised search says no.
    if units < MIN_UNITS || memchr::memchr(0, sample).is_none() {
        return None;
    }
    let (mut even_nul, mut odd_nul) = (0, 0);
    for pair in sample.chunks_exact(2) {
        even_nul += usize::from(pair[0] == 0);
        odd_nul += usize::from(pair[1] == 0);
    }
    let mostly = |n: usize| n * 10 >= units * 7;
    let rarely = |n: usize| n * 20 <= units;
    if mostly(odd_nul) && rarely(even_nul) {
        Some(Endian::Little)
    } else if mostly(even_nul) && rarely(odd_nul) {
        Some(Endian::Big)
    } else {
        None
    }
}

/// The characters of `data` (UTF-16 in `endian` order, a byte-order mark skipped), each with
/// its offset in `data`; unpaired surrogates are U+FFFD, an odd last byte is dropped.
fn chars(data: &[u8], endian: Endian) -> impl Iterator<Item = (char, usize)> + '_ {
    let bom = match (endian, data) {
        (Endian::Little, [0xFF, 0xFE, ..]) | (Endian::Big, [0xFE, 0xFF, ..]) => 2,
        _ => 0,
    };
    let units = data[bom..].chunks_exact(2).map(move |p| match endian {
        Endian::Little => u16::from_le_bytes([p[0], p[1]]),
        Endian::Big => u16::from_be_bytes([p[0], p[1]]),
    });
    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).scan(bom, |at, c| {
        let start = *at;
        *at += 2 * c.len_utf16();
        Some((c, start))
    })
}

/// `data` as UTF-8 (see [`chars`]); at most 1.5 times as long.
pub(crate) fn transcode(data: &[u8], endian: Endian) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + data.len() / 8);
    let mut buf = [0u8; 4];
    for (c, _) in chars(data, endian) {
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out
}

/// For each offset of the transcoded text in `wanted` (ascending), its offset in `data`: where
/// the character starting there starts, or where the one it falls inside ends (so an exclusive
/// end maps to an exclusive end). One pass over `data`, whatever the number of offsets.
pub(crate) fn original_offsets(data: &[u8], endian: Endian, wanted: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut wanted = wanted.iter().copied().peekable();
    let mut text = 0;
    let mut end = data.len();
    for (c, at) in chars(data, endian) {
        let (text_len, orig_len) = (c.len_utf8(), 2 * c.len_utf16());
        while let Some(t) = wanted.next_if(|&t| t < text + text_len) {
            out.push(if t <= text { at } else { at + orig_len });
        }
        text += text_len;
        end = at + orig_len;
        if wanted.peek().is_none() {
            break;
        }
    }
    out.extend(wanted.map(|_| end));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, endian: Endian, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(match endian {
                Endian::Little => [0xFF, 0xFE],
                Endian::Big => [0xFE, 0xFF],
            });
        }
        for unit in text.encode_utf16() {
            out.extend(match endian {
                Endian::Little => unit.to_le_bytes(),
                Endian::Big => unit.to_be_bytes(),
            });
        }
        out
    }

    #[test]
    fn detects_and_transcodes_both_orders() {
        let text = "token = \"abc\"\r\nnaïve — 😀 done\n";
        for endian in [Endian::Little, Endian::Big] {
            for bom in [true, false] {
                let bytes = utf16(text, endian, bom);
                assert_eq!(detect(&bytes), Some(endian), "{endian:?} {bom}");
                assert_eq!(transcode(&bytes, endian), text.as_bytes(), "{endian:?} {bom}");
            }
        }
        // A BOM alone is enough, even for a short text.
        assert_eq!(detect(&utf16("x", Endian::Big, true)), Some(Endian::Big));
    }

    #[test]
    fn leaves_other_data_alone() {
        assert_eq!(detect(b"plain ASCII text, long enough to be sampled\n"), None);
        assert_eq!(detect("UTF-8 \u{e9}t\u{e9}, \u{20ac}\n".repeat(4).as_bytes()), None);
        // Binary data with NULs everywhere (an ELF header, a zeroed block).
        assert_eq!(detect(&[0u8; 256]), None);
        let elf: Vec<u8> = [&b"\x7fELF\x02\x01\x01\0"[..], &[0; 8], &[2, 0, 0x3e, 0, 1, 0, 0, 0]].concat();
        assert_eq!(detect(&elf.repeat(8)), None);
        // Too short to tell.
        assert_eq!(detect(&utf16("abc", Endian::Little, false)), None);
        // Unpaired surrogates and an odd byte do not fail.
        assert_eq!(transcode(&[0x00, 0xD8, b'a', 0, 7], Endian::Little), "\u{fffd}a".as_bytes());
    }

    #[test]
    fn offsets_map_back_to_code_units() {
        // BOM, `a` (1 unit), `é` (1 unit, 2 UTF-8 bytes), 😀 (2 units, 4 bytes), `b`.
        let bytes = utf16("aé😀b", Endian::Little, true);
        // Text offsets: a 0, é 1..3, 😀 3..7, b 7, end 8.
        let got = original_offsets(&bytes, Endian::Little, &[0, 1, 2, 3, 5, 7, 8, 9]);
        assert_eq!(got, [2, 4, 6, 6, 10, 10, 12, 12]);
        assert_eq!(original_offsets(&utf16("ab", Endian::Big, false), Endian::Big, &[1]), [2]);
    }
}
