//! `Inflate`: a deflate stream (zlib-wrapped or raw) over a byte slice, as a `Read` that hands
//! out every byte it inflated before an error, then the error. A stream corrupted right after a
//! secret must not hide the secret: `flate2::read` drops the output of the call that failed.
//!
//! It stops at the end of the deflate stream, so the slice may run past it (a PDF stream is
//! inflated up to the end of the file: its `/Length` is not trusted).

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// A deflate stream being inflated.
pub(crate) struct Inflate<'a> {
    input: &'a [u8],
    state: Decompress,
    /// The error met after the output last handed out.
    error: Option<String>,
    done: bool,
}

impl<'a> Inflate<'a> {
    /// A zlib stream (`zlib_header`: two header bytes first, an Adler-32 last) or raw deflate.
    pub(crate) fn new(input: &'a [u8], zlib_header: bool) -> Self {
        Inflate { input, state: Decompress::new(zlib_header), error: None, done: false }
    }

    /// Input bytes consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.state.total_in()
    }

    /// Whether the stream's end was reached.
    pub(crate) fn finished(&self) -> bool {
        self.done
    }
}

impl Read for Inflate<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if let Some(error) = self.error.take() {
            self.done = true;
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        loop {
            let (in_before, out_before) = (self.state.total_in(), self.state.total_out());
            let result = self.state.decompress(self.input, buf, FlushDecompress::None);
            let consumed = usize::try_from(self.state.total_in() - in_before).unwrap_or(usize::MAX);
            self.input = &self.input[consumed.min(self.input.len())..];
            let produced = usize::try_from(self.state.total_out() - out_before).unwrap_or(usize::MAX);
            let error = match result {
                Ok(Status::StreamEnd) => {
                    self.done = true;
                    return Ok(produced);
                }
                Ok(_) if produced > 0 => return Ok(produced),
                Ok(_) if consumed > 0 => continue,
                Ok(_) => "the deflate stream ends early".to_owned(),
                Err(e) => format!("corrupt deflate stream: {e}"),
            };
            if produced > 0 {
                self.error = Some(error);
                return Ok(produced);
            }
            self.done = true;
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
    }
}

/// Whether `data` inflates as a zlib stream: to its end, or to 4 KiB without an error. Random
/// bytes that pass the two-byte header check fail long before that.
pub(crate) fn inflates(data: &[u8]) -> bool {
    let mut buf = [0u8; 4096];
    let mut filled = 0;
    let mut inflate = Inflate::new(data, true);
    loop {
        match inflate.read(&mut buf[filled..]) {
            Ok(0) => return inflate.finished(),
            Ok(n) => {
                filled += n;
                if filled == buf.len() {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::Inflate;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("write");
        enc.finish().expect("finish")
    }

    #[test]
    fn inflates_and_stops_at_the_end_of_the_stream() {
        let mut data = zlib(b"hello hello hello");
        data.extend_from_slice(b"\nendstream\nendobj\n");
        let mut out = Vec::new();
        let mut inflate = Inflate::new(&data, true);
        inflate.read_to_end(&mut out).expect("inflates");
        assert_eq!(out, b"hello hello hello");
        assert!(inflate.finished());
        assert_eq!(inflate.consumed(), data.len() as u64 - 18);
    }

    #[test]
    fn output_before_an_error_is_kept() {
        let mut data = zlib(b"the secret is in here");
        let last = data.len() - 1;
        data[last] ^= 0xff; // a wrong Adler-32
        let mut out = Vec::new();
        let err = Inflate::new(&data, true).read_to_end(&mut out).expect_err("checksum");
        assert_eq!(out, b"the secret is in here", "{err}");
        let truncated = &zlib(b"abcdefgh")[..6];
        let mut out = Vec::new();
        assert!(Inflate::new(truncated, true).read_to_end(&mut out).is_err());
        let mut out = Vec::new();
        assert!(Inflate::new(b"\x78\x9c\xff\xff\xff", true).read_to_end(&mut out).is_err());
        assert!(out.is_empty());
    }
}
