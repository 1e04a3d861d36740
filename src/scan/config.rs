//! gitleaks' TOML configuration format, loaded unchanged: `[[rules]]` with their allowlists,
//! global `[allowlist]` / `[[allowlists]]` (with `targetRules`), and `[extend]` (`useDefault`
//! meaning our built-in rules, `path`, `disabledRules`).
//!
//! Unknown keys are errors naming the rule, so a typo never silently weakens a rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::scan::error::ScanError;

/// gitleaks allows two levels of `[extend]`; one more is room for our built-in base.
const MAX_EXTEND_DEPTH: usize = 3;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawAllowlist {
    /// Documentation only; accepted so gitleaks configurations load unchanged.
    #[allow(dead_code)]
    pub(crate) description: Option<String>,
    pub(crate) condition: Option<String>,
    #[serde(default)]
    pub(crate) commits: Vec<String>,
    #[serde(default)]
    pub(crate) paths: Vec<String>,
    #[serde(default)]
    pub(crate) regexes: Vec<String>,
    pub(crate) regex_target: Option<String>,
    #[serde(default)]
    pub(crate) stopwords: Vec<String>,
    /// Only on global allowlists: apply to these rules instead of to all.
    #[serde(default)]
    pub(crate) target_rules: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRequired {
    pub(crate) id: String,
    pub(crate) within_lines: Option<u32>,
    pub(crate) within_columns: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRule {
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) regex: Option<String>,
    pub(crate) secret_group: Option<usize>,
    pub(crate) entropy: Option<f64>,
    #[serde(default)]
    pub(crate) keywords: Vec<String>,
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    /// Legacy single allowlist.
    pub(crate) allowlist: Option<RawAllowlist>,
    #[serde(default)]
    pub(crate) allowlists: Vec<RawAllowlist>,
    /// Composite rules (gitleaks 8.28): accepted, and every required rule must also match.
    #[serde(default)]
    pub(crate) required: Vec<RawRequired>,
    #[serde(default)]
    pub(crate) skip_report: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawExtend {
    #[serde(default)]
    pub(crate) use_default: bool,
    pub(crate) path: Option<String>,
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) disabled_rules: Vec<String>,
}

/// One configuration file, rules not yet compiled.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub(crate) origin: String,
    pub(crate) extend: Option<RawExtend>,
    pub(crate) rules: Vec<RawRule>,
    pub(crate) allowlists: Vec<RawAllowlist>,
}

/// A configuration with its `[extend]` chain resolved: rules in order, global allowlists.
#[derive(Debug, Default)]
pub(crate) struct MergedConfig {
    pub(crate) rules: Vec<RawRule>,
    pub(crate) allowlists: Vec<RawAllowlist>,
}

/// Parse one TOML document. Every problem names where it is and, inside a rule, the rule id.
pub(crate) fn parse(text: &str, origin: &str) -> Result<RawConfig, ScanError> {
    let config_err = |message: String| ScanError::Config { origin: origin.to_owned(), message };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| line_col(text, s.start))
            .map(|(l, c)| format!(" at line {l} column {c}"))
            .unwrap_or_default();
        config_err(format!("invalid TOML{at}: {}", e.message()))
    })?;
    let mut config = RawConfig { origin: origin.to_owned(), ..RawConfig::default() };
    for (key, value) in table {
        match key.as_str() {
            "title" | "description" | "minVersion" => {}
            "extend" => {
                config.extend = Some(
                    value.try_into().map_err(|e: toml::de::Error| config_err(format!("[extend]: {}", e.message())))?,
                );
            }
            "rules" => {
                let toml::Value::Array(items) = value else {
                    return Err(config_err("`rules` must be an array of tables ([[rules]])".into()));
                };
                for (i, item) in items.into_iter().enumerate() {
                    let id = item
                        .get("id")
                        .and_then(toml::Value::as_str)
                        .map_or_else(|| format!("#{}", i + 1), |s| format!("`{s}`"));
                    let rule: RawRule = item
                        .try_into()
                        .map_err(|e: toml::de::Error| config_err(format!("rule {id}: {}", e.message())))?;
                    if rule.id.trim().is_empty() {
                        return Err(config_err(format!("rule {id} has no `id`")));
                    }
                    if rule.allowlist.is_some() && !rule.allowlists.is_empty() {
                        return Err(config_err(format!(
                            "rule {id}: use either [rules.allowlist] or [[rules.allowlists]], not both"
                        )));
                    }
                    config.rules.push(rule);
                }
            }
            "allowlist" => {
                let a: RawAllowlist = value
                    .try_into()
                    .map_err(|e: toml::de::Error| config_err(format!("[allowlist]: {}", e.message())))?;
                config.allowlists.push(a);
            }
            "allowlists" => {
                if !config.allowlists.is_empty() {
                    return Err(config_err("use either [allowlist] or [[allowlists]], not both".into()));
                }
                let items: Vec<RawAllowlist> = value
                    .try_into()
                    .map_err(|e: toml::de::Error| config_err(format!("[[allowlists]]: {}", e.message())))?;
                config.allowlists.extend(items);
            }
            other => {
                return Err(config_err(format!(
                    "unknown top-level key `{other}`; expected `title`, `description`, `minVersion`, `extend`, `rules`, `allowlist` or `allowlists`"
                )));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for rule in &config.rules {
        if !seen.insert(rule.id.as_str()) {
            return Err(config_err(format!("rule `{}` is defined twice", rule.id)));
        }
    }
    Ok(config)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, column)
}

/// Load a configuration file and resolve its `[extend]` chain. `builtin` supplies the rules that
/// `useDefault = true` extends (ours, not gitleaks' embedded ones).
pub(crate) fn load_file(
    path: &Path,
    builtin: &dyn Fn() -> Result<MergedConfig, ScanError>,
) -> Result<MergedConfig, ScanError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ScanError::ReadConfig { path: path.to_path_buf(), source })?;
    let raw = parse(&text, &path.display().to_string())?;
    resolve(raw, path.parent().unwrap_or(Path::new(".")), builtin, 0)
}

/// Resolve `[extend]`: the base first, then this config's rules merged over it.
pub(crate) fn resolve(
    raw: RawConfig,
    dir: &Path,
    builtin: &dyn Fn() -> Result<MergedConfig, ScanError>,
    depth: usize,
) -> Result<MergedConfig, ScanError> {
    let origin = raw.origin.clone();
    let err = |message: String| ScanError::Config { origin: origin.clone(), message };
    let Some(extend) = raw.extend else {
        return Ok(MergedConfig { rules: raw.rules, allowlists: raw.allowlists });
    };
    if depth >= MAX_EXTEND_DEPTH {
        return Err(err(format!("[extend] chain deeper than {MAX_EXTEND_DEPTH}")));
    }
    if extend.url.is_some() {
        return Err(err(
            "[extend] url is not supported (gitleaks does not implement it either); download the file and use `path`"
                .into(),
        ));
    }
    let mut base = match (extend.use_default, &extend.path) {
        (true, Some(_)) => return Err(err("[extend] takes `useDefault` or `path`, not both".into())),
        (true, None) => builtin()?,
        (false, Some(p)) => {
            let path: PathBuf = dir.join(p);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| ScanError::ReadConfig { path: path.clone(), source })?;
            let parent = parse(&text, &path.display().to_string())?;
            resolve(parent, path.parent().unwrap_or(dir), builtin, depth + 1)?
        }
        (false, None) => MergedConfig::default(),
    };
    for id in &extend.disabled_rules {
        base.rules.retain(|r| &r.id != id);
    }
    let mut index: BTreeMap<String, usize> = base.rules.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
    for rule in raw.rules {
        match index.get(&rule.id) {
            Some(&i) => merge_rule(&mut base.rules[i], rule),
            None => {
                index.insert(rule.id.clone(), base.rules.len());
                base.rules.push(rule);
            }
        }
    }
    base.allowlists.extend(raw.allowlists);
    Ok(base)
}

/// gitleaks' merge for a rule defined in both: scalar fields override when set, lists append.
fn merge_rule(base: &mut RawRule, over: RawRule) {
    if over.description.as_deref().is_some_and(|d| !d.is_empty()) {
        base.description = over.description;
    }
    if over.regex.is_some() {
        base.regex = over.regex;
    }
    if over.secret_group.is_some_and(|g| g != 0) {
        base.secret_group = over.secret_group;
    }
    if over.entropy.is_some_and(|e| e != 0.0) {
        base.entropy = over.entropy;
    }
    if over.path.is_some() {
        base.path = over.path;
    }
    base.keywords.extend(over.keywords);
    base.tags.extend(over.tags);
    if let Some(a) = base.allowlist.take() {
        base.allowlists.push(a);
    }
    base.allowlists.extend(over.allowlist);
    base.allowlists.extend(over.allowlists);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_rule_field_names_the_rule() {
        let err = parse("[[rules]]\nid = \"x\"\nregex = 'a'\nkeyword = ['a']\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("rule `x`") && err.contains("unknown field `keyword`"), "{err}");
    }

    #[test]
    fn bad_toml_has_a_position() {
        let err = parse("[[rules]]\nid = \n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("invalid TOML at line 2"), "{err}");
    }

    #[test]
    fn both_allowlist_forms_are_refused() {
        let text = "[[rules]]\nid = 'x'\nregex = 'a'\n[rules.allowlist]\nregexes = ['b']\n[[rules.allowlists]]\nregexes = ['c']\n";
        assert!(parse(text, "c").is_err());
    }

    #[test]
    fn extend_merges_rules() {
        let builtin = || {
            Ok(MergedConfig {
                rules: vec![
                    RawRule {
                        id: "a".into(),
                        regex: Some("a+".into()),
                        keywords: vec!["a".into()],
                        ..RawRule::default()
                    },
                    RawRule { id: "b".into(), regex: Some("b+".into()), ..RawRule::default() },
                ],
                allowlists: vec![],
            })
        };
        let raw = parse("[extend]\nuseDefault = true\ndisabledRules = ['b']\n[[rules]]\nid = 'a'\nkeywords = ['aa']\nentropy = 2.0\n", "c").unwrap();
        let merged = resolve(raw, Path::new("."), &builtin, 0).unwrap();
        assert_eq!(merged.rules.len(), 1);
        assert_eq!(merged.rules[0].keywords, ["a", "aa"]);
        assert_eq!(merged.rules[0].regex.as_deref(), Some("a+"));
        assert_eq!(merged.rules[0].entropy, Some(2.0));
    }
}
