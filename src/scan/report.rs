//! Rendering findings: text for people (grouped by file), JSON, and SARIF 2.1.0.

use serde_json::json;

use crate::scan::finding::{Finding, UNSCANNABLE};
use crate::scan::ruleset::RuleSet;

/// Text grouped by file; `color` adds ANSI colours (only on a terminal).
pub(crate) fn text(findings: &[Finding], color: bool) -> String {
    let paint = |code: &str, s: &str| crate::ui::paint(color, code, s);
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for f in findings {
        if current != Some(f.path.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            out.push_str(&paint("1", &crate::ui::sanitize(&f.path)));
            out.push('\n');
            current = Some(&f.path);
        }
        if f.is_unscannable() {
            out.push_str(&format!("  {}  {}\n", paint("1;31", "not scanned"), crate::ui::sanitize(&f.description)));
        } else {
            out.push_str(&format!(
                "  {}:{}  {}  {}\n      {}\n",
                f.line,
                f.column,
                paint("1;31", &f.rule_id),
                f.description,
                crate::ui::sanitize(&f.redacted)
            ));
        }
    }
    out
}

/// One-line summary for stderr.
pub(crate) fn summary(findings: &[Finding]) -> String {
    let files: std::collections::BTreeSet<&str> = findings.iter().map(|f| f.path.as_str()).collect();
    let unscannable = findings.iter().filter(|f| f.is_unscannable()).count();
    let secrets = findings.len() - unscannable;
    let mut s = format!("{secrets} secret{} found in {} file{}", plural(secrets), files.len(), plural(files.len()));
    if unscannable > 0 {
        s.push_str(&format!("; {unscannable} item{} could not be scanned (treated as findings)", plural(unscannable)));
    }
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).expect("findings serialise") + "\n"
}

/// SARIF 2.1.0 with every configured rule described, one result per finding.
pub(crate) fn sarif(findings: &[Finding], set: &RuleSet) -> String {
    let mut rules: Vec<serde_json::Value> = set
        .rules
        .iter()
        .map(|r| json!({ "id": r.id, "name": r.id, "shortDescription": { "text": if r.description.is_empty() { &r.id } else { &r.description } } }))
        .collect();
    rules.push(json!({ "id": UNSCANNABLE, "name": UNSCANNABLE, "shortDescription": { "text": "Content that could not be scanned (blocks, fail closed)" } }));
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut location = json!({ "physicalLocation": { "artifactLocation": { "uri": f.path } } });
            if f.line > 0 {
                location["physicalLocation"]["region"] = json!({
                    "startLine": f.line, "startColumn": f.column, "endLine": f.end_line, "endColumn": f.end_column + 1,
                    "snippet": { "text": f.redacted }
                });
            }
            let message =
                if f.is_unscannable() { f.description.clone() } else { format!("{}: {}", f.rule_id, f.description) };
            json!({
                "ruleId": f.rule_id,
                "level": "error",
                "message": { "text": message },
                "locations": [location],
                "partialFingerprints": { "sandbox/v1": f.fingerprint },
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "sandbox", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).expect("SARIF serialises") + "\n"
}
