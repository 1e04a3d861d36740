//! `ZstdFrames`: every frame of a zstd stream (`zstd` writes one per file, `cat a.zst b.zst` and
//! pzstd several, with skippable frames between), decoded one after the other by ruzstd.
//!
//! ruzstd reserves the window a frame declares, up to its default limit of 128 MiB (a larger
//! one is an error, so unscannable); the output is bounded by the caller.

use std::io::{self, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use crate::scan::container::format::skip_skippable_frames;

const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A zstd stream being decoded.
pub(crate) struct ZstdFrames<'a> {
    /// The input after the current frame's start (or after the last frame).
    rest: &'a [u8],
    frame: Option<StreamingDecoder<&'a [u8], FrameDecoder>>,
}

impl<'a> ZstdFrames<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        ZstdFrames { rest: data, frame: None }
    }
}

impl Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if let Some(done) = self.frame.take() {
                    self.rest = done.into_inner();
                }
            }
            self.rest = &self.rest[skip_skippable_frames(self.rest)..];
            if self.rest.is_empty() {
                return Ok(0);
            }
            if !self.rest.starts_with(&MAGIC) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "data after a zstd frame is not a zstd frame"));
            }
            let frame = StreamingDecoder::new(self.rest).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.frame = Some(frame);
        }
    }
}
