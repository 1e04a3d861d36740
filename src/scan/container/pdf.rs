//! The FlateDecode streams of a PDF document, found by their `stream` keyword and the object
//! dictionary before it, without a PDF parser: the cross-reference table and `/Length` are not
//! trusted (an agent writes the file), and the inflater finds the end of each stream itself.
//!
//! A stream is decoded when its `/Filter` chain holds `FlateDecode`, after the text filters
//! `ASCIIHexDecode` and `ASCII85Decode` that may come before it. Image filters (DCT, JPX, CCITT,
//! JBIG2), LZW and run-length streams are left as bytes. Names are read with their `#xx`
//! escapes decoded, so `/Fl#61teDecode` is FlateDecode too.

use memchr::memmem;

/// A PDF stream filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    Flate,
    AsciiHex,
    Ascii85,
    /// Any other, by name (`indirect` for a filter given by reference).
    Other(String),
}

/// One stream whose filters include FlateDecode.
#[derive(Debug)]
pub(crate) struct Stream<'a> {
    /// `obj-N`, or `stream@OFFSET` when the object header was not found.
    pub(crate) label: String,
    pub(crate) filters: Vec<Filter>,
    /// From the first byte of the stream to the end of the file.
    pub(crate) data: &'a [u8],
    /// Offset of `data` in the file.
    pub(crate) offset: usize,
}

/// A cursor over the streams of a document.
pub(crate) struct Streams<'a> {
    data: &'a [u8],
    at: usize,
    /// Where the previous stream's data ended: no dictionary is looked for before it.
    floor: usize,
}

/// How far before `stream` its object header is looked for.
const DICTIONARY_WINDOW: usize = 64 << 10;

impl<'a> Streams<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Streams { data, at: 0, floor: 0 }
    }

    /// The previous stream's data ended at `end` (an offset in the file): search on from there.
    pub(crate) fn skip_to(&mut self, end: usize) {
        self.at = self.at.max(end);
        self.floor = self.floor.max(end);
    }
}

impl<'a> Iterator for Streams<'a> {
    type Item = Stream<'a>;

    fn next(&mut self) -> Option<Stream<'a>> {
        let data = self.data;
        while let Some(found) = memmem::find(&data[self.at..], b"stream") {
            let keyword = self.at + found;
            self.at = keyword + b"stream".len();
            // `>>` (spaces allowed) before, an end of line after: not `endstream`, not text.
            let before = data[self.floor..keyword].trim_ascii_end();
            if !before.ends_with(b">>") {
                continue;
            }
            let start = match &data[self.at..] {
                [b'\r', b'\n', ..] => self.at + 2,
                [b'\n' | b'\r', ..] => self.at + 1,
                _ => continue,
            };
            let window_start = self.floor.max(keyword.saturating_sub(DICTIONARY_WINDOW));
            let (label, dictionary) = match object_header(&data[window_start..keyword]) {
                Some((number, dict_start)) => (format!("obj-{number}"), &data[window_start + dict_start..keyword]),
                None => (format!("stream@{start}"), &data[window_start..keyword]),
            };
            let filters = filters(dictionary);
            if !filters.contains(&Filter::Flate) {
                continue;
            }
            self.at = start;
            self.floor = start;
            return Some(Stream { label, filters, data: &data[start..], offset: start });
        }
        self.at = data.len();
        None
    }
}

/// Whether the document is encrypted (its trailer names an `/Encrypt` dictionary): its streams
/// cannot be read without the key.
pub(crate) fn is_encrypted(data: &[u8]) -> bool {
    let mut at = 0;
    while let Some(found) = memmem::find(&data[at..], b"/Encrypt") {
        at += found + b"/Encrypt".len();
        if data.get(at).is_none_or(|&b| is_delimiter(b)) {
            return true;
        }
    }
    false
}

/// The object number and the end of the last `N G obj` in `text`.
fn object_header(text: &[u8]) -> Option<(u64, usize)> {
    let mut end = text.len();
    while let Some(found) = memmem::rfind(&text[..end], b"obj") {
        end = found;
        let after = found + 3;
        // A token of its own: not `endobj`, not part of a longer name.
        let token = text.get(after).is_none_or(|&b| is_delimiter(b))
            && text[..found].last().is_some_and(u8::is_ascii_whitespace);
        if !token {
            continue;
        }
        let Some((_generation, head)) = split_last_number(text[..found].trim_ascii_end()) else { continue };
        if !head.last().is_some_and(u8::is_ascii_whitespace) {
            continue;
        }
        let Some((number, _)) = split_last_number(head.trim_ascii_end()) else { continue };
        if let Some(number) = std::str::from_utf8(number).ok().and_then(|n| n.parse().ok()) {
            return Some((number, after));
        }
    }
    None
}

/// The trailing run of ASCII digits of `text` and what is before it.
fn split_last_number(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let digits = text.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then(|| (&text[text.len() - digits..], &text[..text.len() - digits]))
}

/// The `/Filter` of an object dictionary: one name or an array of names.
fn filters(dictionary: &[u8]) -> Vec<Filter> {
    let mut at = 0;
    while let Some(found) = memmem::find(&dictionary[at..], b"/Filter") {
        at += found + b"/Filter".len();
        if dictionary.get(at).is_some_and(|&b| !is_delimiter(b)) {
            continue;
        }
        let rest = dictionary[at..].trim_ascii_start();
        return match rest.first() {
            Some(b'[') => {
                let end = memchr::memchr(b']', rest).unwrap_or(rest.len());
                names(&rest[1..end])
            }
            Some(b'/') => names(rest).into_iter().take(1).collect(),
            _ => vec![Filter::Other("indirect".into())],
        };
    }
    Vec::new()
}

/// The names in `text` (`/A /B`), as filters.
fn names(text: &[u8]) -> Vec<Filter> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(slash) = memchr::memchr(b'/', &text[at..]) {
        let start = at + slash + 1;
        let len = text[start..].iter().take_while(|&&b| !is_delimiter(b)).count();
        at = start + len;
        let name = unescape(&text[start..at]);
        out.push(match name.as_slice() {
            b"FlateDecode" | b"Fl" => Filter::Flate,
            b"ASCIIHexDecode" | b"AHx" => Filter::AsciiHex,
            b"ASCII85Decode" | b"A85" => Filter::Ascii85,
            other => Filter::Other(String::from_utf8_lossy(other).into_owned()),
        });
    }
    out
}

/// A name with its `#xx` escapes decoded.
fn unescape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let hex = name
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (name[i], hex) {
            (b'#', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0 || b"/[]<>(){}%".contains(&b)
}

/// `ASCIIHexDecode`: hex digit pairs up to `>`, white space ignored, an odd last digit padded
/// with 0. Returns the bytes and how much input was read.
pub(crate) fn ascii_hex(input: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut high: Option<u8> = None;
    for (i, &b) in input.iter().enumerate() {
        let digit = match b {
            b'>' => {
                out.extend(high);
                return Ok((out, i + 1));
            }
            _ if b.is_ascii_whitespace() || b == 0 => continue,
            _ => char::from(b).to_digit(16).ok_or("a byte that is not a hex digit in ASCIIHexDecode data")?,
        };
        let digit = u8::try_from(digit).unwrap_or_default();
        match high.take() {
            Some(h) => out.push(h | digit),
            None => high = Some(digit << 4),
        }
    }
    out.extend(high);
    Ok((out, input.len()))
}

/// `ASCII85Decode`: groups of five characters `!`..`u` for four bytes, `z` for four zeros, up to
/// `~>`; at most `cap` + 1 bytes are produced. Returns the bytes and how much input was read.
pub(crate) fn ascii85(input: &[u8], cap: usize) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut group = [0u8; 5];
    let mut len = 0;
    let mut end = input.len();
    for (i, &b) in input.iter().enumerate() {
        match b {
            b'~' => {
                end = i + 2;
                break;
            }
            b'z' if len == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[len] = b - b'!';
                len += 1;
                if len == 5 {
                    out.extend_from_slice(&base85(&group)?);
                    len = 0;
                }
            }
            _ if b.is_ascii_whitespace() || b == 0 => {}
            _ => return Err(format!("the byte {b:#04x} is not ASCII85Decode data")),
        }
        if out.len() > cap {
            return Ok((out, i + 1));
        }
    }
    if len == 1 {
        return Err("ASCII85Decode data ends with a lone character".into());
    }
    if len > 1 {
        // A partial group is padded with `u` (84); its first len - 1 bytes are kept.
        group[len..].fill(84);
        out.extend_from_slice(&base85(&group)?[..len - 1]);
    }
    Ok((out, end.min(input.len())))
}

fn base85(group: &[u8; 5]) -> Result<[u8; 4], String> {
    let value = group.iter().fold(0u64, |acc, &d| acc * 85 + u64::from(d));
    u32::try_from(value).map(u32::to_be_bytes).map_err(|_| "an ASCII85Decode group is out of range".into())
}

#[cfg(test)]
mod tests {
    use super::{Filter, Streams, ascii_hex, ascii85, is_encrypted};

    #[test]
    fn finds_flate_streams_by_their_dictionary() {
        let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n\
            4 0 obj\n<< /Length 3 /Filter /FlateDecode >>\nstream\r\nAAA\nendstream\nendobj\n\
            5 0 obj <</Filter [/ASCII85Decode /Fl#61teDecode] /DecodeParms <</Predictor 12>> >>stream\nBBB\nendstream\n\
            6 0 obj\n<< /Filter /DCTDecode >>\nstream\nCCC\nendstream\n\
            (a string with >> stream\n in it)\n";
        let found: Vec<_> = Streams::new(pdf).map(|s| (s.label, s.filters, s.data[..3].to_vec())).collect();
        assert_eq!(
            found,
            [
                ("obj-4".to_owned(), vec![Filter::Flate], b"AAA".to_vec()),
                ("obj-5".to_owned(), vec![Filter::Ascii85, Filter::Flate], b"BBB".to_vec()),
            ]
        );
        assert!(!is_encrypted(pdf));
        assert!(is_encrypted(b"trailer << /Root 1 0 R /Encrypt 9 0 R >>"));
        assert!(!is_encrypted(b"/EncryptMetadata false"));
    }

    #[test]
    fn text_filters_decode() {
        assert_eq!(ascii_hex(b"68 65 6C6C6f7>rest").expect("hex"), (b"hellop".to_vec(), 14));
        assert_eq!(ascii85(b"87cURD]i,\"Ebo80~>", 100).expect("a85").0, b"Hello World!");
        assert_eq!(ascii85(b"z~>", 100).expect("a85").0, [0; 4]);
        assert!(ascii85(b"\x7f", 100).is_err());
    }
}
