//! The compressed text chunks of a PNG image: `zTXt`, and `iTXt` with its compression flag set.
//! Uncompressed text (`tEXt`, plain `iTXt`) is in the file's own bytes, which are scanned as
//! they are; pixel data (`IDAT`) is not text and is not inflated.
//!
//! A chunk whose length runs past the end of the file is taken up to the end: a truncated image
//! still has its text inflated as far as it goes.

/// One compressed text chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TextChunk<'a> {
    /// `zTXt:keyword` or `iTXt:keyword`.
    pub(crate) label: String,
    /// PNG defines one method, 0 (zlib); any other cannot be decoded.
    pub(crate) method: u8,
    /// The zlib stream.
    pub(crate) compressed: &'a [u8],
}

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The compressed text chunks of `data`, in file order.
pub(crate) fn text_chunks(data: &[u8]) -> Vec<TextChunk<'_>> {
    let mut out = Vec::new();
    let mut at = SIGNATURE.len();
    while let Some(header) = data.get(at..at + 8) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        let body_start = at + 8;
        let body = &data[body_start..body_start.saturating_add(len).min(data.len())];
        if let Some(chunk) = text_chunk(kind, body) {
            out.push(chunk);
        }
        if kind == b"IEND" {
            break;
        }
        // Length, type, data, CRC.
        at = body_start.saturating_add(len).saturating_add(4);
    }
    out
}

fn text_chunk<'a>(kind: &[u8], body: &'a [u8]) -> Option<TextChunk<'a>> {
    let keyword_end = memchr::memchr(0, body)?;
    let keyword: String = body[..keyword_end].iter().map(|&b| char::from(b)).collect();
    let rest = &body[keyword_end + 1..];
    match kind {
        b"zTXt" => {
            let (&method, compressed) = rest.split_first()?;
            Some(TextChunk { label: format!("zTXt:{keyword}"), method, compressed })
        }
        b"iTXt" => {
            let [flag, method, ref after @ ..] = *rest else { return None };
            if flag == 0 {
                return None;
            }
            // Language tag, then the translated keyword, each NUL-terminated.
            let language_end = memchr::memchr(0, after)?;
            let after = &after[language_end + 1..];
            let translated_end = memchr::memchr(0, after)?;
            Some(TextChunk { label: format!("iTXt:{keyword}"), method, compressed: &after[translated_end + 1..] })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{TextChunk, text_chunks};

    fn chunk(kind: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len()).expect("small").to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out.extend_from_slice(&[0; 4]);
        out
    }

    #[test]
    fn finds_compressed_text_chunks_only() {
        let mut png = super::SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        png.extend(chunk(b"tEXt", b"Title\0plain"));
        png.extend(chunk(b"zTXt", b"Comment\0\0ZZ"));
        png.extend(chunk(b"iTXt", b"Plain\0\0\0en\0\0text"));
        png.extend(chunk(b"iTXt", b"Key\0\x01\0en\0Schl\xc3\xbcssel\0YY"));
        png.extend(chunk(b"IEND", b""));
        png.extend(chunk(b"zTXt", b"After\0\0XX"));
        assert_eq!(
            text_chunks(&png),
            [
                TextChunk { label: "zTXt:Comment".into(), method: 0, compressed: b"ZZ" },
                TextChunk { label: "iTXt:Key".into(), method: 0, compressed: b"YY" },
            ]
        );
        // Truncated: the chunk is taken to the end of the file.
        let mut cut = super::SIGNATURE.to_vec();
        cut.extend(chunk(b"zTXt", b"C\0\0abcdef"));
        cut.truncate(cut.len() - 7);
        assert_eq!(text_chunks(&cut)[0].compressed, b"abc");
    }
}
