//! Escapes decoded in place: backslash escapes (`\u0067`, `\U00000067`, `\x67`, `\/`, as JSON
//! with `ensure_ascii`, JavaScript, Python and PHP's `json_encode` write them) and URL
//! percent-encoding (`%67`, as `urllib.parse.quote` and browsers write it). A token spelled
//! with them, wholly or in part (`%67%68%70_...`, `\u0067\u0068\u0070_...`), or glued to an
//! escaped non-ASCII character (`caf\u00e9ghp_...`, where the escape's last digit breaks the
//! rule's word boundary) is found in the decoded text.
//!
//! Only the text around escapes that can matter is decoded: an escape that decodes to a
//! printable ASCII character, or to a non-ASCII one next to a letter or digit. The window around
//! each is its line, cut at [`CONTEXT`] bytes either side, so rules that need what precedes the
//! value (`"token": "...`) still see it; neighbouring windows are merged, so the decoded text is
//! never longer than the buffer. Positions in the decoded text map back to the original bytes.

/// Bytes of context kept on either side of an escape (less when its line is shorter).
pub(crate) const CONTEXT: usize = 512;

/// Which escapes a window decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Backslash,
    Percent,
}

impl Kind {
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Kind::Backslash => "escape",
            Kind::Percent => "percent",
        }
    }
}

/// One escape: `orig_len` bytes at `orig_at` in the buffer became `text_len` bytes at
/// `text_at` in the decoded text.
#[derive(Debug, Clone, Copy)]
struct Piece {
    text_at: usize,
    text_len: usize,
    orig_at: usize,
    orig_len: usize,
}

/// A window of the buffer with its escapes decoded.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) kind: Kind,
    /// Where the window starts in the buffer.
    start: usize,
    pub(crate) text: Vec<u8>,
    pieces: Vec<Piece>,
}

impl Decoded {
    /// The buffer offset of offset `at` of the decoded text. An offset inside a decoded
    /// character maps to the start of its escape, or to its end when `end` is set (for the
    /// exclusive end of a range).
    pub(crate) fn original(&self, at: usize, end: bool) -> usize {
        let i = self.pieces.partition_point(|p| p.text_at <= at);
        let Some(p) = i.checked_sub(1).map(|i| self.pieces[i]) else { return self.start + at };
        if at < p.text_at + p.text_len {
            if end && at > p.text_at { p.orig_at + p.orig_len } else { p.orig_at }
        } else {
            p.orig_at + p.orig_len + (at - p.text_at - p.text_len)
        }
    }
}

fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &b| Some(acc << 4 | hex(b)?))
}

/// What one escape at the start of `rest` decodes to, and its length.
enum Escape {
    /// A code point (a surrogate pair already combined; a lone surrogate is U+FFFD).
    Char(char),
    /// A raw byte (percent-encoding).
    Byte(u8),
}

fn backslash_at(rest: &[u8]) -> Option<(Escape, usize)> {
    let (code, len) = match rest.get(1)? {
        b'u' => (hex_value(rest.get(2..6)?)?, 6),
        b'U' => (hex_value(rest.get(2..10)?)?, 10),
        b'x' => (hex_value(rest.get(2..4)?)?, 4),
        b'/' => return Some((Escape::Char('/'), 2)),
        b'\\' => return Some((Escape::Char('\\'), 2)),
        _ => return None,
    };
    if (0xD800..0xDC00).contains(&code) && len == 6 {
        // A high surrogate: combined with a low one that follows, as JSON writes non-BMP text.
        if let Some((low, 6)) =
            rest.get(6..).filter(|r| r.starts_with(b"\\u")).and_then(|r| Some((hex_value(r.get(2..6)?)?, 6)))
            && (0xDC00..0xE000).contains(&low)
        {
            let c = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            return Some((Escape::Char(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER)), 12));
        }
    }
    Some((Escape::Char(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)), len))
}

fn percent_at(rest: &[u8]) -> Option<(Escape, usize)> {
    let value = hex_value(rest.get(1..3)?)?;
    Some((Escape::Byte(u8::try_from(value).ok()?), 3))
}

fn escape_at(kind: Kind, rest: &[u8]) -> Option<(Escape, usize)> {
    match kind {
        Kind::Backslash => backslash_at(rest),
        Kind::Percent => percent_at(rest),
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether decoding the escape at `at` (of `len` bytes) can change what the rules find.
fn matters(data: &[u8], at: usize, len: usize, escape: &Escape) -> bool {
    let non_ascii = match *escape {
        Escape::Char(c) if c.is_ascii() => return (c as u8).is_ascii_graphic() && c != '\\',
        Escape::Byte(b) if b.is_ascii() => return b.is_ascii_graphic(),
        _ => true,
    };
    non_ascii
        && (data.get(at + len).copied().is_some_and(is_word) || at.checked_sub(1).is_some_and(|p| is_word(data[p])))
}

/// The decoded windows of `data` around escapes that matter, backslash escapes and percent
/// escapes apart (each window decodes one kind).
pub(crate) fn windows(data: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    // (kind, window) pairs, built in one pass over both escape characters.
    let mut spans: [Vec<(usize, usize)>; 2] = [Vec::new(), Vec::new()];
    for at in memchr::memchr2_iter(b'\\', b'%', data) {
        let kind = if data[at] == b'\\' { Kind::Backslash } else { Kind::Percent };
        let Some((escape, len)) = escape_at(kind, &data[at..]) else { continue };
        if !matters(data, at, len, &escape) {
            continue;
        }
        let list = &mut spans[kind as usize];
        if list.last().is_some_and(|&(_, end)| at + len <= end) {
            continue;
        }
        let from = at.saturating_sub(CONTEXT);
        let start = memchr::memrchr(b'\n', &data[from..at]).map_or(from, |n| from + n + 1);
        let to = (at + len + CONTEXT).min(data.len());
        let end = memchr::memchr(b'\n', &data[at + len..to]).map_or(to, |n| at + len + n + 1);
        match list.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => list.push((start, end)),
        }
    }
    for (kind, list) in [(Kind::Backslash, &spans[0]), (Kind::Percent, &spans[1])] {
        for &(start, end) in list {
            out.push(decode(kind, data, start, end));
        }
    }
    out
}

/// `data[start..end]` with every escape of `kind` decoded.
fn decode(kind: Kind, data: &[u8], start: usize, end: usize) -> Decoded {
    let window = &data[start..end];
    let mut text = Vec::with_capacity(window.len());
    let mut pieces = Vec::new();
    let mut copied = 0;
    let needle = if kind == Kind::Backslash { b'\\' } else { b'%' };
    let mut at = 0;
    while let Some(found) = memchr::memchr(needle, &window[at..]) {
        let pos = at + found;
        let Some((escape, len)) = escape_at(kind, &window[pos..]) else {
            at = pos + 1;
            continue;
        };
        text.extend_from_slice(&window[copied..pos]);
        let text_at = text.len();
        match escape {
            Escape::Char(c) => text.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Escape::Byte(b) => text.push(b),
        }
        pieces.push(Piece { text_at, text_len: text.len() - text_at, orig_at: start + pos, orig_len: len });
        copied = pos + len;
        at = copied;
    }
    text.extend_from_slice(&window[copied..]);
    Decoded { kind, start, text, pieces }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(data: &str) -> Vec<(Kind, String)> {
        windows(data.as_bytes()).into_iter().map(|d| (d.kind, String::from_utf8_lossy(&d.text).into_owned())).collect()
    }

    #[test]
    fn decodes_json_and_percent_escapes() {
        let json = r#"{"token": "\u0067\u0068\u0070_abc", "x": "caf\u00e9ok"}"#;
        assert_eq!(decoded(json), [(Kind::Backslash, r#"{"token": "ghp_abc", "x": "caféok"}"#.to_owned())]);
        let url = "GET /cb?t=%67%68%70_abc%2Fdef HTTP/1.1\nnext line\n";
        assert_eq!(decoded(url), [(Kind::Percent, "GET /cb?t=ghp_abc/def HTTP/1.1\n".to_owned())]);
        // Surrogate pairs, `\x`, `\U`, `\/`, and `\\` that is not an escape of what follows.
        let js = r#"a = "\ud83d\ude00\x41\U00000042\/\\u0043""#;
        assert_eq!(decoded(js), [(Kind::Backslash, r#"a = "😀AB/\u0043""#.to_owned())]);
        // UTF-8 percent-encoded next to a word.
        assert_eq!(decoded("q=caf%C3%A9x"), [(Kind::Percent, "q=caféx".to_owned())]);
    }

    #[test]
    fn ignores_escapes_that_cannot_matter() {
        // Control characters, escaped non-ASCII between quotes or spaces, `%20`, `\n`, `\\`.
        let text = "b'\\x00\\x1b' '\\u20ac'  # EURO SIGN\nprintf(\"%02d %s\\n\", x); a%20b C:\\\\dir\n";
        assert!(windows(text.as_bytes()).is_empty(), "{:?}", decoded(text));
        assert!(windows(b"no escapes at all").is_empty());
    }

    #[test]
    fn windows_are_lines_cut_at_the_context() {
        let long = format!("{}\\u0041{}\nshort \\u0042 line\n", "x".repeat(2000), "y".repeat(2000));
        let found = windows(long.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].text.len(), 2 * CONTEXT + 1);
        assert_eq!(found[1].text, b"short B line\n");
        // Escapes on neighbouring lines share one window.
        assert_eq!(windows(b"\\u0041\n\\u0042\n\\u0043").len(), 1);
    }

    #[test]
    fn offsets_map_back() {
        let data = br#"k = "\u0067\u0068p_x" tail"#;
        let d = &windows(data)[0];
        assert_eq!(d.text, br#"k = "ghp_x" tail"#);
        // `g` (offset 5) is the first escape, `h` the second, `p` the byte after them.
        assert_eq!(d.original(5, false), 5);
        assert_eq!(d.original(6, false), 11);
        assert_eq!(d.original(7, false), 17);
        assert_eq!(d.original(6, true), 11);
        assert_eq!(d.original(7, true), 17);
        assert_eq!(d.original(0, false), 0);
        assert_eq!(d.original(d.text.len(), true), data.len());
        let utf8 = windows("x=caf%C3%A9z".as_bytes());
        let d = &utf8[0];
        // Inside the two-byte `é`: its start maps to the first escape, its end past the second.
        assert_eq!((d.original(5, false), d.original(6, false), d.original(7, true)), (5, 8, 11));
    }
}
