//! Findings: what was found where, with a redacted preview and a stable fingerprint. A finding
//! never holds the secret itself.

use serde::Serialize;

/// Rule id of findings for content that could not be scanned (fail closed).
pub(crate) const UNSCANNABLE: &str = "sandbox-unscannable";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Finding {
    pub(crate) rule_id: String,
    pub(crate) description: String,
    /// The file, with archive members as `outer.zip!inner/file`.
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) end_line: usize,
    pub(crate) end_column: usize,
    /// The match with the secret masked: never the secret.
    pub(crate) redacted: String,
    /// `path:rule_id:line`, gitleaks' fingerprint (usable in `.gitleaksignore`).
    pub(crate) fingerprint: String,
    pub(crate) entropy: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<String>,
    /// SHA-256 of the rule id and the secret: lets the sync gate recognise the same secret in
    /// the host's copy of a file without keeping the secret. Not printed.
    #[serde(skip)]
    pub(crate) secret_digest: [u8; 32],
}

impl Finding {
    /// A blocking finding for content the scanner could not read or decode.
    pub(crate) fn unscannable(path: &str, reason: String) -> Self {
        Finding {
            rule_id: UNSCANNABLE.to_owned(),
            fingerprint: format!("{path}:{UNSCANNABLE}:0"),
            description: reason,
            path: path.to_owned(),
            line: 0,
            column: 0,
            end_line: 0,
            end_column: 0,
            redacted: String::new(),
            entropy: 0.0,
            tags: Vec::new(),
            secret_digest: [0; 32],
        }
    }

    pub(crate) fn is_unscannable(&self) -> bool {
        self.rule_id == UNSCANNABLE
    }
}

/// The match as a one-line preview with the secret masked: a few leading characters of long
/// secrets (usually a public prefix such as `ghp_`), then `*`, then the length.
pub(crate) fn redact(matched: &[u8], secret_start: usize, secret_len: usize) -> String {
    let secret_end = (secret_start + secret_len).min(matched.len());
    let secret = &matched[secret_start.min(secret_end)..secret_end];
    let shown = if secret.len() >= 16 { 4 } else { 0 };
    let mask = format!("{}{}({} chars)", printable(&secret[..shown]), "*".repeat(6), secret.len());
    let before = printable(&matched[..secret_start.min(secret_end)]);
    let after = printable(&matched[secret_end..]);
    let before = tail_chars(&before, 40);
    let after: String = after.chars().take(20).collect();
    format!("{before}{mask}{after}")
}

fn tail_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n { s.to_owned() } else { format!("…{}", s.chars().skip(count - n).collect::<String>()) }
}

/// Bytes as text with control characters and invalid UTF-8 escaped.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redaction_never_shows_the_secret() {
        // Split so the repository's own self-scan does not see a token here.
        let matched = concat!("token = \"gh", "p_abcdefghijklmnopqrstuvwxyz0123456789\"").as_bytes();
        let start = 9;
        let preview = redact(matched, start, 40);
        assert_eq!(preview, "token = \"ghp_******(40 chars)\"");
        assert!(!preview.contains("abcdefgh"));
        assert_eq!(redact(b"pw=hunter2hunter", 3, 13), "pw=******(13 chars)");
    }
}
