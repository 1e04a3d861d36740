//! Secrets hidden in encodings: base64 (standard and URL-safe) and hex runs are decoded and the
//! decoded text scanned again, a bounded number of levels deep, as gitleaks does by default.
//! Without this, an agent could write `echo <base64 of a token>` and pass the gate. Base64 of
//! UTF-16 text is transcoded too. The other decoders of the chain are `utf16` (whole buffers)
//! and `escape` (backslash and percent escapes), driven with these by `engine`.

use base64::Engine as _;

/// Shortest run worth decoding: 20 base64 characters carry 15 bytes, less than any token.
const MIN_BASE64: usize = 20;
/// Shortest hex run worth decoding (16 bytes).
const MIN_HEX: usize = 32;

/// An encoded run and what it decodes to.
pub(crate) struct Segment {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) decoded: Vec<u8>,
    pub(crate) encoding: &'static str,
}

/// Mostly printable text: binary noise decoded from an identifier is not worth scanning.
fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        return false;
    }
    let printable = bytes.iter().filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t')).count();
    printable * 10 >= bytes.len() * 9
}

/// Decoded bytes worth scanning: text, or UTF-16 text transcoded to UTF-8 (PowerShell's
/// `-EncodedCommand` takes base64 of UTF-16LE).
fn text_or_utf16(bytes: Vec<u8>) -> Option<Vec<u8>> {
    if looks_like_text(&bytes) {
        return Some(bytes);
    }
    let text = crate::scan::utf16::transcode(&bytes, crate::scan::utf16::detect(&bytes)?);
    looks_like_text(&text).then_some(text)
}

fn decode_base64(run: &[u8]) -> Option<Vec<u8>> {
    let url = run.iter().any(|&b| b == b'-' || b == b'_');
    let standard = run.iter().any(|&b| b == b'+' || b == b'/');
    if url && standard {
        return None;
    }
    let trimmed: &[u8] = {
        let mut t = run;
        while let [rest @ .., b'='] = t {
            t = rest;
        }
        t
    };
    let engine = if url {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    // Tolerate a run whose length is off by the characters of a neighbouring word.
    for cut in 0..3 {
        let candidate = &trimmed[..trimmed.len().saturating_sub(cut)];
        if candidate.len() % 4 == 1 {
            continue;
        }
        if let Ok(bytes) = engine.decode(candidate) {
            return Some(bytes);
        }
    }
    None
}

/// Bytes of the base64 alphabets (standard and URL-safe).
const B64: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// Runs of at least `MIN_BASE64` alphabet bytes (plus up to two `=`). Boyer-Moore style: a run
/// starting at `i` needs the `MIN_BASE64` bytes from `i` all in the alphabet, checked from the
/// last one back; the first byte outside it moves `i` past itself, so ordinary text (words
/// shorter than a run) is mostly skipped, not read.
fn runs(data: &[u8]) -> Vec<(usize, usize)> {
    let in_alphabet = |i: usize| B64[usize::from(data[i])];
    let mut out = Vec::new();
    let mut i = 0;
    'next: while i + MIN_BASE64 <= data.len() {
        let mut k = i + MIN_BASE64;
        while k > i {
            k -= 1;
            if !in_alphabet(k) {
                i = k + 1;
                continue 'next;
            }
        }
        let mut end = i + MIN_BASE64;
        while end < data.len() && in_alphabet(end) {
            end += 1;
        }
        let mut padded = end;
        while padded < data.len() && padded - end < 2 && data[padded] == b'=' {
            padded += 1;
        }
        out.push((i, padded));
        i = padded;
    }
    out
}

/// What one pass over a run tells about it.
#[derive(Default)]
struct RunFacts {
    underscores: usize,
    /// Any byte other than `[A-Za-z0-9_]`.
    non_word: bool,
    hex: bool,
    digit: bool,
    upper: bool,
}

fn facts(run: &[u8]) -> RunFacts {
    let mut f = RunFacts { hex: true, ..RunFacts::default() };
    for &b in run {
        f.underscores += usize::from(b == b'_');
        f.non_word |= !(b.is_ascii_alphanumeric() || b == b'_');
        f.hex &= b.is_ascii_hexdigit();
        f.digit |= b.is_ascii_digit();
        f.upper |= b.is_ascii_uppercase();
    }
    f
}

/// Every base64 or hex run in `data` that decodes to text.
pub(crate) fn segments(data: &[u8]) -> Vec<Segment> {
    let mut out = Vec::new();
    for (start, end) in runs(data) {
        let run = &data[start..end];
        let f = facts(run);
        // `SOME_LONG_IDENTIFIER` and `__attribute__` are words, not encodings: base64 of text
        // seldom has two underscores.
        let identifier = f.underscores >= 2 && !f.non_word;
        if f.hex && run.len() >= MIN_HEX && run.len().is_multiple_of(2) {
            let decoded: Vec<u8> =
                run.chunks(2).filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok()).collect();
            if looks_like_text(&decoded) {
                out.push(Segment { start, end, decoded, encoding: "hex" });
            }
        } else if !identifier
            && (f.digit || f.upper)
            && let Some(decoded) = decode_base64(run).and_then(text_or_utf16)
        {
            out.push(Segment { start, end, decoded, encoding: "base64" });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_encoded_text() {
        // Split so the repository's own self-scan does not see a token here.
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(concat!("token = gh", "p_abcdefghijklmnopqrstuvwxyz0123456789"));
        let data = format!("echo {b64} | base64 -d");
        let segs = segments(data.as_bytes());
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].start, 5);
        assert!(segs[0].decoded.starts_with(b"token = ghp_"));
        let hex: String = b"password=hunter2hunter2".iter().map(|b| format!("{b:02x}")).collect();
        let segs = segments(hex.as_bytes());
        assert_eq!((segs.len(), segs[0].encoding), (1, "hex"));
    }

    #[test]
    fn runs_are_found_wherever_they_start() {
        for prefix in 0..25 {
            let text = format!("{}{}!{}", "a b ".repeat(prefix), "x".repeat(20), "y".repeat(19));
            assert_eq!(runs(text.as_bytes()), [(prefix * 4, prefix * 4 + 20)], "{prefix}");
        }
        assert_eq!(runs(b"abc=="), []);
        assert_eq!(runs(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ=="), [(0, 28)]);
    }

    #[test]
    fn ignores_identifiers_and_binary() {
        assert!(segments(b"some_long_identifier_name_here and moreIdentifiersHereToo").is_empty());
        let noise = base64::engine::general_purpose::STANDARD
            .encode([0u8, 1, 2, 250, 251, 252, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert!(segments(noise.as_bytes()).is_empty());
    }
}
