//! One rendered artefact: where it goes (relative to the output directory), its mode, its bytes.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) rel_path: PathBuf,
    /// Unix permission bits for the written file.
    pub(crate) mode: u32,
    pub(crate) bytes: Vec<u8>,
}
