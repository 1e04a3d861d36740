//! Compiled rules and allowlists, with gitleaks' semantics.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex_syntax::hir::Hir;

use crate::scan::checksum::{self, Checksummed};
use crate::scan::config::{RawAllowlist, RawRule};
use crate::scan::error::ScanError;
use crate::scan::pattern::{self, LazyRegex, Shape};

/// What an allowlist regex is tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegexTarget {
    Secret,
    Match,
    Line,
}

#[derive(Debug)]
pub(crate) struct Allowlist {
    pub(crate) and: bool,
    pub(crate) paths: Option<LazyRegex>,
    pub(crate) regexes: Option<LazyRegex>,
    pub(crate) target: RegexTarget,
    pub(crate) stopwords: Option<AhoCorasick>,
    /// `commits` only make sense for git history; a non-empty list never matches a file.
    pub(crate) has_commits: bool,
}

/// The text a finding offers to allowlists.
pub(crate) struct Candidate<'a> {
    pub(crate) path: &'a str,
    pub(crate) secret: &'a [u8],
    pub(crate) matched: &'a [u8],
    pub(crate) line: &'a [u8],
}

impl Allowlist {
    pub(crate) fn compile(raw: &RawAllowlist, origin: &str, rule: &str) -> Result<Self, ScanError> {
        let join = |patterns: &[String], what: &'static str| -> Result<Option<LazyRegex>, ScanError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let joined =
                patterns.iter().map(|p| format!("(?:{})", pattern::translate(p))).collect::<Vec<_>>().join("|");
            LazyRegex::new(&joined).map(Some).map_err(|message| ScanError::Regex {
                origin: origin.to_owned(),
                rule: rule.to_owned(),
                what,
                pattern: patterns.join(" | "),
                message,
            })
        };
        let config_err = |message: String| ScanError::Config {
            origin: origin.to_owned(),
            message: format!("rule `{rule}` allowlist: {message}"),
        };
        let and = match raw.condition.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("OR" | "||") => false,
            Some("AND" | "&&") => true,
            Some(other) => return Err(config_err(format!("condition `{other}` is not OR or AND"))),
        };
        let target = match raw.regex_target.as_deref() {
            None | Some("secret" | "") => RegexTarget::Secret,
            Some("match") => RegexTarget::Match,
            Some("line") => RegexTarget::Line,
            Some(other) => return Err(config_err(format!("regexTarget `{other}` is not secret, match or line"))),
        };
        if raw.paths.is_empty() && raw.regexes.is_empty() && raw.stopwords.is_empty() && raw.commits.is_empty() {
            return Err(config_err("an allowlist needs at least one of commits, paths, regexes or stopwords".into()));
        }
        let stopwords = if raw.stopwords.is_empty() {
            None
        } else {
            let words: Vec<String> = raw.stopwords.iter().map(|w| w.to_lowercase()).collect();
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&words)
                    .map_err(|e| config_err(e.to_string()))?,
            )
        };
        Ok(Allowlist {
            and,
            paths: join(&raw.paths, "allowlist path")?,
            regexes: join(&raw.regexes, "allowlist regex")?,
            target,
            stopwords,
            has_commits: !raw.commits.is_empty(),
        })
    }

    /// Whether the file at `path` is allowlisted whatever it contains (OR condition, paths only).
    pub(crate) fn allows_path(&self, path: &str) -> bool {
        // An allowlist that cannot be compiled allows nothing.
        !self.and && self.paths.as_ref().is_some_and(|p| p.is_match_or(path.as_bytes(), false))
    }

    /// gitleaks' check: OR over the criteria present, or AND over them.
    pub(crate) fn allows(&self, c: &Candidate<'_>) -> bool {
        let path = self.paths.as_ref().map(|p| p.is_match_or(c.path.as_bytes(), false));
        let regex = self.regexes.as_ref().map(|r| {
            let target = match self.target {
                RegexTarget::Secret => c.secret,
                RegexTarget::Match => c.matched,
                RegexTarget::Line => c.line,
            };
            r.is_match_or(target, false)
        });
        let stop = self.stopwords.as_ref().map(|s| s.is_match(c.secret));
        let commit = self.has_commits.then_some(false);
        let checks = [commit, path, regex, stop];
        if self.and {
            checks.iter().flatten().all(|&b| b) && checks.iter().any(Option::is_some)
        } else {
            checks.iter().flatten().any(|&b| b)
        }
    }
}

/// The expensive parts of a rule, built on first use: a scan that never triggers a rule never
/// pays for compiling it (start-up stays in milliseconds with hundreds of rules).
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) regex: regex_automata::meta::Regex,
    /// Present when matches can be found by anchored checks at keyword occurrences.
    pub(crate) anchor: Option<pattern::Anchor>,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) description: String,
    /// The Go pattern and its parsed form (validated at load).
    pub(crate) pattern: Option<(String, Hir)>,
    compiled: OnceLock<Result<Compiled, String>>,
    pub(crate) secret_group: usize,
    pub(crate) entropy: Option<f64>,
    pub(crate) keywords: Vec<String>,
    pub(crate) path: Option<LazyRegex>,
    pub(crate) tags: Vec<String>,
    pub(crate) allowlists: Vec<Allowlist>,
    pub(crate) shape: Shape,
    /// gitleaks drops a "generic" finding when a specific rule found the same secret on the line.
    pub(crate) generic: bool,
    pub(crate) skip_report: bool,
    /// Composite rule: each (rule id, within lines, within columns) must also match nearby.
    pub(crate) required: Vec<(String, Option<u32>, Option<u32>)>,
    /// A built-in rule whose token carries a checksum: a valid token is found without the
    /// pattern's word boundaries (see `checksum`).
    pub(crate) checksummed: Option<Checksummed>,
}

impl Rule {
    #[cfg(test)]
    pub(crate) fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }

    pub(crate) fn compile(raw: RawRule, origin: &str) -> Result<Self, ScanError> {
        let regex_err = |what: &'static str, p: &str, message: String| ScanError::Regex {
            origin: origin.to_owned(),
            rule: raw.id.clone(),
            what,
            pattern: p.to_owned(),
            message,
        };
        let pattern = match &raw.regex {
            Some(p) if !p.is_empty() => Some((p.clone(), pattern::parse(p).map_err(|m| regex_err("regex", p, m))?)),
            _ => None,
        };
        let path = match &raw.path {
            Some(p) if !p.is_empty() => Some(LazyRegex::new(p).map_err(|m| regex_err("path", p, m))?),
            _ => None,
        };
        if pattern.is_none() && path.is_none() {
            return Err(ScanError::Config {
                origin: origin.to_owned(),
                message: format!("rule `{}` has neither `regex` nor `path`", raw.id),
            });
        }
        let secret_group = raw.secret_group.unwrap_or(0);
        if let Some((_, hir)) = &pattern {
            let groups = hir.properties().explicit_captures_len();
            if secret_group > groups {
                return Err(ScanError::Config {
                    origin: origin.to_owned(),
                    message: format!("rule `{}`: secretGroup {secret_group} but the regex has {groups} groups", raw.id),
                });
            }
        }
        let keywords: Vec<String> = raw.keywords.iter().map(|k| k.to_lowercase()).filter(|k| !k.is_empty()).collect();
        let shape =
            pattern.as_ref().map_or(Shape { max_len: None, max_newlines: None, keyword_bound: false }, |(_, hir)| {
                pattern::shape(hir, &keywords)
            });
        let mut allowlists = Vec::new();
        for a in raw.allowlist.iter().chain(&raw.allowlists) {
            allowlists.push(Allowlist::compile(a, origin, &raw.id)?);
        }
        Ok(Rule {
            checksummed: checksum::for_rule(&raw.id),
            generic: raw.id.contains("generic"),
            description: raw.description.unwrap_or_default(),
            entropy: raw.entropy.filter(|e| *e != 0.0),
            id: raw.id,
            pattern,
            compiled: OnceLock::new(),
            secret_group,
            keywords,
            path,
            tags: raw.tags,
            allowlists,
            shape,
            skip_report: raw.skip_report,
            required: raw.required.into_iter().map(|r| (r.id, r.within_lines, r.within_columns)).collect(),
        })
    }
}

impl Rule {
    /// The compiled regex and anchor (`None` for a path-only rule); an error when the pattern,
    /// though valid, cannot be compiled within the size limits.
    pub(crate) fn compiled(&self) -> Option<Result<&Compiled, &str>> {
        let (_, hir) = self.pattern.as_ref()?;
        let compiled = self.compiled.get_or_init(|| {
            let regex = pattern::build(hir)?;
            let anchor = if self.shape.windowed() { pattern::anchor(hir, &self.keywords) } else { None };
            Ok(Compiled { regex, anchor })
        });
        Some(compiled.as_ref().map_err(String::as_str))
    }
}

/// Shannon entropy in bits per symbol, exactly as gitleaks computes it: counts per character
/// (rune), divided by the length in bytes.
pub(crate) fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let text = String::from_utf8_lossy(data);
    // Ordered, so the floating-point sum (and the reported entropy) is the same on every run.
    let mut counts: std::collections::BTreeMap<char, usize> = std::collections::BTreeMap::new();
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let len = data.len() as f64;
    counts
        .values()
        .map(|&n| {
            #[allow(clippy::cast_precision_loss)]
            let p = n as f64 / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_matches_gitleaks() {
        assert!((shannon_entropy(b"aaaa") - 0.0).abs() < 1e-9);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!((shannon_entropy(b"aabb") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn entropy_is_bit_for_bit_repeatable() {
        // Summed in a fixed order: with a hash map the last digit changed from run to run.
        let text = b"Zx9-Qw3_Lp0+Rt7/Mn2=Kb5.Hv8~Jc1";
        let first = shannon_entropy(text).to_bits();
        assert!((0..200).all(|_| shannon_entropy(text).to_bits() == first));
    }

    #[test]
    fn and_or_allowlists() {
        let raw = RawAllowlist {
            regexes: vec!["^x".into()],
            stopwords: vec!["EXAMPLE".into()],
            condition: Some("AND".into()),
            ..RawAllowlist::default()
        };
        let a = Allowlist::compile(&raw, "t", "r").unwrap();
        let c = |secret: &'static [u8]| Candidate { path: "p", secret, matched: secret, line: secret };
        assert!(a.allows(&c(b"xexample")));
        assert!(!a.allows(&c(b"xabc")));
        let raw = RawAllowlist { condition: None, ..raw };
        let a = Allowlist::compile(&raw, "t", "r").unwrap();
        assert!(a.allows(&c(b"xabc")) && a.allows(&c(b"an-example")) && !a.allows(&c(b"abc")));
    }
}
