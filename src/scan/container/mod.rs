//! Recognising and taking apart the containers the scanner opens (issue 20): which format a
//! buffer is (`format`, a magic-number table checked at offset 0 only), and pure parsers and
//! decoders for each that `archive.rs` drives within its size and depth budgets.
//!
//! Invariants: nothing here allocates a size a header declares; every decoder is a `Read` that
//! the caller bounds with `take`, so a bomb costs at most the budget. Nothing here decides what
//! is a finding: parsers report what they saw, `archive.rs` turns it into findings.

pub(crate) mod ar;
pub(crate) mod format;
pub(crate) mod inflate;
pub(crate) mod pdf;
pub(crate) mod png;
pub(crate) mod stream;
pub(crate) mod zstd;
