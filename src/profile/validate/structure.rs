//! The shape pass: YAML value → raw serde types, reporting every shape error, not just the first.

use serde_path_to_error::Segment;
use serde_yaml::Value;

use crate::profile::diagnostic::Diagnostics;
use crate::profile::raw::RawProfile;
use crate::profile::source::{join_index, join_key};

/// More errors than this in one document means something else is wrong; stop there.
const MAX_SHAPE_ERRORS: usize = 64;

/// Deserialise, recording each error and removing the node it names, until the rest parses.
pub(crate) fn deserialize(mut value: Value, diags: &mut Diagnostics<'_>) -> RawProfile {
    // Sequence items removed so far: (path of the sequence, original index), to report later
    // errors at their original index.
    let mut removed: Vec<(String, usize)> = Vec::new();
    for _ in 0..MAX_SHAPE_ERRORS {
        let err = match serde_path_to_error::deserialize::<_, RawProfile>(value.clone()) {
            Ok(raw) => return raw,
            Err(err) => err,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let message = clean_message(&err.inner().to_string());
        let mut path = original_path(&segments, &removed);
        let unknown = unknown_name(&message);
        if let Some(name) = &unknown {
            // serde reports an unknown key at the map that holds it; point at the key itself.
            if !path.ends_with(&format!(".{name}")) && path != *name {
                path = join_key(&path, name);
            }
        }
        let help = suggestion(&message).map_or_else(|| help_for(&message), |s| format!("did you mean `{s}`?"));
        diags.error(&path, message.clone(), help);
        if !remove(&mut value, &segments, unknown.as_deref(), &mut removed) {
            return RawProfile::default();
        }
    }
    diags.error("", "too many errors; fix the ones above first", "");
    RawProfile::default()
}

fn help_for(message: &str) -> String {
    if message.starts_with("invalid type") {
        "give this key a value of the expected type (see docs/profile.md)".into()
    } else {
        "see docs/profile.md for the profile format".into()
    }
}

/// serde_yaml sometimes appends a position that refers to the re-serialised value, not the file.
fn clean_message(message: &str) -> String {
    message.find(" at line ").map_or_else(|| message.to_owned(), |i| message[..i].to_owned())
}

/// The name in "unknown field `x`" / "unknown variant `x`".
fn unknown_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// The closest expected name to the unknown one, when it is close enough to be a typo.
fn suggestion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))?;
    let given = &rest[..rest.find('`')?];
    let expected = &rest[rest.find("expected")?..];
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(2))
        .min()
        .map(|(_, c)| c.to_owned())
}

fn original_path(segments: &[Segment], removed: &[(String, usize)]) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => {
                let mut index = *index;
                // Each earlier removal at or below this index shifted it down by one.
                for (seq, at) in removed {
                    if *seq == path && *at <= index {
                        index += 1;
                    }
                }
                path = join_index(&path, index);
            }
            Segment::Map { key } => path = join_key(&path, key),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    path
}

/// Remove the node an error names. Returns false when nothing could be removed.
fn remove(value: &mut Value, segments: &[Segment], unknown: Option<&str>, removed: &mut Vec<(String, usize)>) -> bool {
    let mut segments: Vec<&Segment> =
        segments.iter().filter(|s| matches!(s, Segment::Seq { .. } | Segment::Map { .. })).collect();
    if let Some(name) = unknown {
        // The path may stop at the holding map; remove just the unknown key.
        if !matches!(segments.last(), Some(Segment::Map { key }) if key == name) {
            let Some(map) = walk(value, &segments).and_then(Value::as_mapping_mut) else { return false };
            return map.remove(name).is_some();
        }
    }
    let Some(last) = segments.pop() else { return false };
    let path_to_parent = original_path(&segments.iter().map(|s| (*s).clone()).collect::<Vec<_>>(), removed);
    let Some(parent) = walk(value, &segments) else { return false };
    match (last, parent) {
        (Segment::Map { key }, Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
        (Segment::Seq { index }, Value::Sequence(seq)) if *index < seq.len() => {
            seq.remove(*index);
            let mut at = *index;
            for (seq_path, r) in removed.iter() {
                if *seq_path == path_to_parent && *r <= at {
                    at += 1;
                }
            }
            removed.push((path_to_parent, at));
            true
        }
        _ => false,
    }
}

fn walk<'v>(value: &'v mut Value, segments: &[&Segment]) -> Option<&'v mut Value> {
    let mut node = value;
    for segment in segments {
        node = match segment {
            Segment::Map { key } => node.as_mapping_mut()?.get_mut(key.as_str())?,
            Segment::Seq { index } => node.as_sequence_mut()?.get_mut(*index)?,
            _ => node,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::source::SpanIndex;

    fn errors(yaml: &str) -> Vec<String> {
        let spans = SpanIndex::new();
        let mut diags = Diagnostics::new(&spans);
        let _ = deserialize(serde_yaml::from_str(yaml).unwrap(), &mut diags);
        diags.items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reports_every_unknown_key_with_suggestion() {
        let errs = errors("nmae: x\nvm:\n  cpu: 4\nworkspaces:\n  - host: .\n    mod: overlay\n");
        assert_eq!(errs.len(), 3, "{errs:#?}");
        for (path, fix) in [("`nmae`", "`name`"), ("`vm.cpu`", "`cpus`"), ("`workspaces[0].mod`", "`mode`")] {
            let hint = format!("did you mean {fix}?");
            assert!(errs.iter().any(|e| e.contains(path) && e.contains(&hint)), "{path}: {errs:#?}");
        }
    }

    #[test]
    fn reports_type_errors_and_keeps_going() {
        let errs = errors("vm:\n  cpus: four\n  memory: [1]\ngateway:\n  port: 99999\n");
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].contains("`vm.cpus`: invalid type"), "{}", errs[0]);
    }

    #[test]
    fn sequence_indices_stay_original_after_removal() {
        let errs = errors("secrets:\n  sources:\n    - files: a\n    - file: b\n    - envv: [X]\n");
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].contains("secrets.sources[0]"), "{}", errs[0]);
        assert!(errs[1].contains("secrets.sources[2]"), "{}", errs[1]);
        assert!(errs[1].contains("did you mean `env`?"), "{}", errs[1]);
    }
}
