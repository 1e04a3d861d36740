//! Decoders for the formats that hold one compressed stream (gzip, xz, bzip2, zstd, lzip,
//! `.lzma`, zlib), as a `Read` over the compressed bytes, and the name of what they hold.
//!
//! All are pure Rust: flate2 (zlib-rs), lzma-rust2 (without its SIMD `unsafe`), the bzip2 crate
//! on libbz2-rs-sys, ruzstd. None allocates the uncompressed size a header declares: lzma-rust2
//! grows its dictionary with the output, and every reader here is bounded by the caller.

use std::io::Read;

use crate::scan::container::format::Format;
use crate::scan::container::inflate::Inflate;
use crate::scan::container::zstd::ZstdFrames;

/// A decoder for `data`, a stream of `format`; `None` for formats that are not one stream.
pub(crate) fn decoder(format: Format, data: &[u8]) -> Option<Result<Box<dyn Read + '_>, String>> {
    let reader: Box<dyn Read + '_> = match format {
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Format::Xz => Box::new(lzma_rust2::XzReader::new(data, true)),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(data)),
        Format::Zstd => Box::new(ZstdFrames::new(data)),
        Format::Lzip => Box::new(lzma_rust2::LzipReader::new(data)),
        Format::Lzma => match lzma_rust2::LzmaReader::new_mem_limit(data, u32::MAX, None) {
            Ok(reader) => Box::new(reader),
            Err(e) => return Some(Err(format!("cannot decode the lzma stream: {e}"))),
        },
        Format::Zlib => Box::new(Inflate::new(data, true)),
        _ => return None,
    };
    Some(Ok(reader))
}

/// A decoder for a zip entry compressed with LZMA (method 14): a 4-byte LZMA SDK header (version,
/// properties size), the 5-byte properties (lc/lp/pb, dictionary size), then raw LZMA data with
/// `size` bytes or an end marker.
pub(crate) fn zip_lzma(data: &[u8], size: u64) -> Result<Box<dyn Read + '_>, String> {
    let Some(&[_, _, 5, 0, props, d0, d1, d2, d3]) = data.first_chunk::<9>() else {
        return Err("the zip entry's LZMA header is malformed".into());
    };
    let dict = u32::from_le_bytes([d0, d1, d2, d3]);
    lzma_rust2::LzmaReader::new_with_props(&data[9..], size, props, dict, None)
        .map(|reader| Box::new(reader) as Box<dyn Read + '_>)
        .map_err(|e| format!("cannot decode the zip entry's LZMA data: {e}"))
}

/// What a compressed file at `path` holds, named as its tool would name it: `a.txt.xz` holds
/// `a.txt`, `b.tgz` holds `b.tar`; `data` when the name says nothing.
pub(crate) fn inner_name(path: &str, format: Format) -> String {
    let file = path.rsplit(['/', '!']).next().unwrap_or(path);
    let suffixes: &[(&str, &str)] = match format {
        Format::Gzip => &[(".tgz", ".tar"), (".taz", ".tar"), (".gz", ""), (".z", "")],
        Format::Xz => &[(".txz", ".tar"), (".xz", "")],
        Format::Bzip2 => &[(".tbz2", ".tar"), (".tbz", ".tar"), (".tb2", ".tar"), (".bz2", ""), (".bz", "")],
        Format::Zstd => &[(".tzst", ".tar"), (".zst", ""), (".zstd", "")],
        Format::Lzip => &[(".tlz", ".tar"), (".lz", "")],
        Format::Lzma => &[(".tlz", ".tar"), (".lzma", "")],
        Format::Zlib => &[(".zz", ""), (".zlib", ""), (".z", "")],
        _ => &[],
    };
    for (suffix, replacement) in suffixes {
        if let Some(stem) = file.strip_suffix(suffix).filter(|s| !s.is_empty()) {
            return format!("{stem}{replacement}");
        }
    }
    "data".to_owned()
}

#[cfg(test)]
mod tests {
    use super::{Format, inner_name};

    #[test]
    fn inner_names_follow_the_tools() {
        assert_eq!(inner_name("dir/a.txt.gz", Format::Gzip), "a.txt");
        assert_eq!(inner_name("b.tgz", Format::Gzip), "b.tar");
        assert_eq!(inner_name("x.zip!c.tar.xz", Format::Xz), "c.tar");
        assert_eq!(inner_name("d.tbz2", Format::Bzip2), "d.tar");
        assert_eq!(inner_name("e.json.zst", Format::Zstd), "e.json");
        assert_eq!(inner_name("blob", Format::Zlib), "data");
        assert_eq!(inner_name(".xz", Format::Xz), "data");
    }
}
