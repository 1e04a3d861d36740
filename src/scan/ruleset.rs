//! A compiled rule set: rules, global allowlists and the keyword prefilter.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::scan::config::{self, MergedConfig, RawConfig};
use crate::scan::error::ScanError;
use crate::scan::rule::{Allowlist, Rule};

/// Our own rules, compiled into the binary (gitleaks TOML format).
const BUILTIN: [(&str, &str); 3] = [
    ("builtin:core.toml", include_str!("rules/core.toml")),
    ("builtin:infra.toml", include_str!("rules/infra.toml")),
    ("builtin:saas.toml", include_str!("rules/saas.toml")),
];

#[derive(Debug)]
pub(crate) struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    /// Allowlists that apply to every rule.
    pub(crate) global: Vec<Allowlist>,
    /// All keywords of all rules (lower-case), in prefilter pattern order.
    keywords: Vec<String>,
    /// The keyword automaton, built on first use.
    prefilter: OnceLock<Option<AhoCorasick>>,
    /// For each prefilter pattern, the rules it enables: those of the keyword itself and of every
    /// keyword that is a prefix of it (the prefilter reports only the longest keyword starting at
    /// a position, so a shorter one starting there is implied).
    pub(crate) keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: they always run.
    pub(crate) always: Vec<usize>,
}

/// The built-in rules, not yet compiled (also what `[extend] useDefault = true` means).
pub(crate) fn builtin_config() -> Result<MergedConfig, ScanError> {
    let mut merged = MergedConfig::default();
    for (origin, text) in BUILTIN {
        let RawConfig { rules, allowlists, .. } = config::parse(text, origin)?;
        merged.rules.extend(rules);
        merged.allowlists.extend(allowlists);
    }
    Ok(merged)
}

impl RuleSet {
    /// The keyword automaton (ASCII case-insensitive, leftmost-longest). `None` when there are
    /// no keywords, or if it cannot be built; the engine then runs every rule on every buffer,
    /// which is slower but misses nothing.
    pub(crate) fn prefilter(&self) -> Option<&AhoCorasick> {
        self.prefilter
            .get_or_init(|| {
                if self.keywords.is_empty() {
                    return None;
                }
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostLongest)
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(&self.keywords)
                    .ok()
            })
            .as_ref()
    }

    /// The built-in rules, or those of a gitleaks-format file (where `[extend] useDefault =
    /// true` extends the built-in rules); `enable` keeps only the rules named.
    pub(crate) fn load(path: Option<&Path>, enable: &[String]) -> Result<Self, ScanError> {
        let (merged, origin) = match path {
            Some(p) => (config::load_file(p, &builtin_config)?, p.display().to_string()),
            None => (builtin_config()?, "builtin".to_owned()),
        };
        let merged = if enable.is_empty() { merged } else { Self::enable_only(merged, enable)? };
        Self::compile(merged, &origin)
    }

    /// Keep only the rules named (gitleaks' `--enable-rule`); unknown names are an error.
    pub(crate) fn enable_only(mut merged: MergedConfig, ids: &[String]) -> Result<MergedConfig, ScanError> {
        if let Some(missing) = ids.iter().find(|id| !merged.rules.iter().any(|r| &r.id == *id)) {
            return Err(ScanError::Config {
                origin: "--enable-rule".into(),
                message: format!("no rule `{missing}` in the rule set"),
            });
        }
        merged.rules.retain(|r| ids.contains(&r.id));
        Ok(merged)
    }

    pub(crate) fn compile(merged: MergedConfig, origin: &str) -> Result<Self, ScanError> {
        let mut targeted: Vec<(Vec<String>, crate::scan::config::RawAllowlist)> = Vec::new();
        let mut global = Vec::new();
        for a in merged.allowlists {
            if a.target_rules.is_empty() {
                global.push(Allowlist::compile(&a, origin, "<global>")?);
            } else {
                targeted.push((a.target_rules.clone(), a));
            }
        }
        let mut rules = Vec::with_capacity(merged.rules.len());
        for raw in merged.rules {
            let extra: Vec<Allowlist> = targeted
                .iter()
                .filter(|(ids, _)| ids.contains(&raw.id))
                .map(|(_, a)| Allowlist::compile(a, origin, &raw.id))
                .collect::<Result<_, _>>()?;
            let mut rule = Rule::compile(raw, origin)?;
            rule.allowlists.extend(extra);
            rules.push(rule);
        }
        // Hashed: a rule may have hundreds of keywords (the Discord id spellings).
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut always = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                always.push(i);
            }
            for k in &rule.keywords {
                let p = *index.entry(k).or_insert_with(|| {
                    keywords.push(k.clone());
                    keyword_rules.push(Vec::new());
                    keywords.len() - 1
                });
                keyword_rules[p].push(i);
            }
        }
        let keyword_rules: Vec<Vec<usize>> = keywords
            .iter()
            .map(|k| {
                // The rules of every keyword that is a prefix of `k` (itself included).
                let mut rules: Vec<usize> = (1..=k.len())
                    .filter(|&n| k.is_char_boundary(n))
                    .filter_map(|n| index.get(&k[..n]))
                    .flat_map(|&p| keyword_rules[p].iter().copied())
                    .collect();
                rules.sort_unstable();
                rules.dedup();
                rules
            })
            .collect();
        Ok(RuleSet { rules, global, keywords, prefilter: OnceLock::new(), keyword_rules, always })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile() {
        let set = RuleSet::load(None, &[]).unwrap();
        assert!(!set.global.is_empty());
    }

    #[test]
    fn the_gitleaks_default_config_compiles() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gitleaks/gitleaks.toml");
        let set = RuleSet::load(Some(&path), &[]).unwrap();
        assert_eq!(set.rules.len(), 222);
        let windowed = set.rules.iter().filter(|r| r.shape.windowed()).count();
        assert!(windowed > 150, "only {windowed} rules can be searched near their keywords");
    }

    #[test]
    fn rules_compile_only_when_triggered() {
        let set = RuleSet::load(None, &[]).unwrap();
        let compiled = |set: &RuleSet| set.rules.iter().filter(|r| r.is_compiled()).count();
        crate::scan::engine::scan(&set, "a.txt", b"nothing to see\n", crate::scan::engine::EngineOptions::default());
        assert_eq!(compiled(&set), 0, "a buffer with no keyword compiled rules");
        crate::scan::engine::scan(&set, "a.txt", b"api_key = 1\n", crate::scan::engine::EngineOptions::default());
        let n = compiled(&set);
        assert!(n > 0 && n < set.rules.len() / 4, "{n} rules compiled for one keyword");
    }
}
