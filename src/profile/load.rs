//! Finding profiles, reading them, following `extends` and merging the chain into one document.
//!
//! Merge rule (documented in docs/profile.md): mappings merge key by key, everything else (lists,
//! scalars) in the extending profile replaces the base's value; an explicit `null` resets a key to
//! its default. Positions are merged the same way so diagnostics point into the file that set the
//! value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::Value;

use crate::environment::Environment;
use crate::profile::error::ProfileError;
use crate::profile::source::{Location, Origin, SourceDoc, SpanIndex, index_spans, join_key};

/// Profiles compiled into the binary, by name. `default` is what every command uses when no
/// profile is named and none is configured.
pub(crate) const EMBEDDED: [(&str, &str); 3] = [
    ("default", include_str!("../../profiles/default.yaml")),
    ("minimal", include_str!("../../profiles/minimal.yaml")),
    ("strict-offline", include_str!("../../profiles/strict-offline.yaml")),
];

const MAX_EXTENDS_DEPTH: usize = 16;

/// How the user asked for a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProfileSpec {
    Path(PathBuf),
    Name(String),
}

impl ProfileSpec {
    /// `--profile VALUE` (and `$SANDBOX_PROFILE`, `extends:`): a path when it looks like one (has
    /// a `/`, ends in `.yaml`/`.yml`, or starts with `.`, `~` or `$HOME`), otherwise a profile
    /// name. Never decided by what exists on disk: a file named `default` in the current folder
    /// (which an agent can write) must not shadow the built-in profile of that name.
    pub(crate) fn parse(value: &str) -> Self {
        let looks_like_path = value.contains('/')
            || value.ends_with(".yaml")
            || value.ends_with(".yml")
            || value.starts_with('.')
            || value.starts_with('~')
            || value.starts_with("$HOME")
            || value.starts_with("${HOME}");
        if looks_like_path { ProfileSpec::Path(PathBuf::from(value)) } else { ProfileSpec::Name(value.to_owned()) }
    }

    /// The profile to use when `--profile` is absent: `$SANDBOX_PROFILE`, else `default`.
    pub(crate) fn from_environment(env: &Environment) -> Self {
        env.profile.as_deref().map_or_else(|| ProfileSpec::Name("default".into()), ProfileSpec::parse)
    }
}

/// The merged document of a profile and everything it extends.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) value: Value,
    pub(crate) spans: SpanIndex,
    /// The chain, the requested profile first.
    pub(crate) chain: Vec<Arc<Origin>>,
    /// Whether the requested profile itself sets `name` (names are not inherited).
    pub(crate) top_has_name: bool,
}

/// Read a profile and its `extends` chain, and merge them.
pub(crate) fn load(spec: &ProfileSpec, env: &Environment) -> Result<Loaded, ProfileError> {
    let first = read(spec, &env.cwd, env)?;
    merge_with_parents(first, env)
}

/// Follow `extends` from an already parsed document and merge the chain.
pub(crate) fn merge_with_parents(first: SourceDoc, env: &Environment) -> Result<Loaded, ProfileError> {
    let mut docs: Vec<SourceDoc> = Vec::new();
    let mut pending = Some(first);
    let mut next: Option<(ProfileSpec, PathBuf, Option<Location>)> = None;
    loop {
        let (doc, requested_at) = match pending.take() {
            Some(doc) => (doc, None),
            None => match next.take() {
                Some((spec, base, at)) => (read(&spec, &base, env)?, at),
                None => break,
            },
        };
        if docs.iter().any(|d| d.origin == doc.origin) {
            let mut chain: Vec<String> = docs.iter().map(|d| d.origin.to_string()).collect();
            chain.push(doc.origin.to_string());
            return Err(ProfileError::Cycle { location: describe(requested_at.as_ref(), &doc), chain });
        }
        if docs.len() == MAX_EXTENDS_DEPTH {
            return Err(ProfileError::TooDeep {
                location: describe(requested_at.as_ref(), &doc),
                limit: MAX_EXTENDS_DEPTH,
            });
        }
        if let Some(parent) = extends_of(&doc)? {
            let at = doc.spans.get("extends").cloned();
            let parent_spec = match ProfileSpec::parse(&parent) {
                ProfileSpec::Path(p) => ProfileSpec::Path(env.expand(&p.to_string_lossy(), &doc.base_dir(&env.cwd))),
                name @ ProfileSpec::Name(_) => name,
            };
            next = Some((parent_spec, doc.base_dir(&env.cwd), at));
        }
        docs.push(doc);
    }
    let chain = docs.iter().map(|d| Arc::clone(&d.origin)).collect();
    let top_has_name = docs.first().is_some_and(|d| d.value.get("name").is_some_and(|n| !n.is_null()));
    let mut merged_value = Value::Mapping(serde_yaml::Mapping::new());
    let mut merged_spans = SpanIndex::new();
    for doc in docs.into_iter().rev() {
        let mut value = doc.value;
        if let Value::Mapping(map) = &mut value {
            map.remove("extends");
        }
        merge(&mut merged_value, value, &mut merged_spans, &doc.spans, "");
    }
    Ok(Loaded { value: merged_value, spans: merged_spans, chain, top_has_name })
}

fn describe(at: Option<&Location>, doc: &SourceDoc) -> String {
    at.map_or_else(|| doc.origin.to_string(), ToString::to_string)
}

fn extends_of(doc: &SourceDoc) -> Result<Option<String>, ProfileError> {
    match doc.value.get("extends") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(_) => {
            let location = doc.spans.get("extends").map_or_else(|| doc.origin.to_string(), ToString::to_string);
            Err(ProfileError::Syntax {
                location,
                message: "`extends` must be a profile name or a path to a profile file".into(),
            })
        }
    }
}

/// Where a named profile would be on disk.
pub(crate) fn named_path(name: &str, env: &Environment) -> PathBuf {
    env.profiles_dir().join(format!("{name}.yaml"))
}

fn read(spec: &ProfileSpec, base: &Path, env: &Environment) -> Result<SourceDoc, ProfileError> {
    match spec {
        ProfileSpec::Path(path) => {
            let path = env.expand(&path.to_string_lossy(), base);
            let text = read_profile_file(&path).map_err(|source| ProfileError::Read { path: path.clone(), source })?;
            let canonical = std::fs::canonicalize(&path).unwrap_or(path);
            parse(&text, Origin::File(canonical))
        }
        ProfileSpec::Name(name) => {
            let path = named_path(name, env);
            if path.is_file() {
                return read(&ProfileSpec::Path(path), base, env);
            }
            if let Some((embedded, text)) = EMBEDDED.iter().find(|(n, _)| n == name) {
                return parse(text, Origin::Embedded(embedded));
            }
            Err(ProfileError::NotFound { name: name.clone(), searched: vec![path] })
        }
    }
}

/// A profile is a small text file: larger ones are refused.
const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Read a profile file. A path from `extends:` or `--profile` can name anything: a FIFO must not
/// block the open (`O_NONBLOCK`, then the opened file must be a regular one) and `/dev/zero`
/// must not be read until memory runs out.
fn read_profile_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 1 MiB; a profile is a small YAML file",
        ));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Parse one document's text.
pub(crate) fn parse(text: &str, origin: Origin) -> Result<SourceDoc, ProfileError> {
    let origin = Arc::new(origin);
    let value: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => Value::Mapping(serde_yaml::Mapping::new()),
        Ok(value @ Value::Mapping(_)) => value,
        Ok(_) => {
            return Err(ProfileError::Syntax {
                location: format!("{origin}:1:1"),
                message: "a profile must be a YAML mapping of keys such as `name`, `vm`, `workspaces`".into(),
            });
        }
        Err(e) => {
            let location =
                e.location().map_or_else(|| origin.to_string(), |l| format!("{origin}:{}:{}", l.line(), l.column()));
            return Err(ProfileError::Syntax { location, message: strip_position(&e.to_string()) });
        }
    };
    let spans = index_spans(text, &origin);
    Ok(SourceDoc { origin, value, spans })
}

/// serde_yaml appends " at line L column C" to its messages; the location is printed separately.
fn strip_position(message: &str) -> String {
    message.find(" at line ").map_or_else(|| message.to_owned(), |i| message[..i].to_owned())
}

fn drop_spans_under(spans: &mut SpanIndex, path: &str) {
    spans.retain(|key, _| {
        !(key == path || key.strip_prefix(path).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('[')))
    });
}

fn copy_spans_under(into: &mut SpanIndex, from: &SpanIndex, path: &str) {
    for (key, location) in from {
        let under = path.is_empty()
            || key == path
            || key.strip_prefix(path).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['));
        if under {
            into.insert(key.clone(), location.clone());
        }
    }
}

fn merge(base: &mut Value, over: Value, spans: &mut SpanIndex, over_spans: &SpanIndex, path: &str) {
    match (base, over) {
        (Value::Mapping(base_map), Value::Mapping(over_map)) => {
            if let Some(location) = over_spans.get(path) {
                spans.insert(path.to_owned(), location.clone());
            }
            for (key, value) in over_map {
                let key_str = match &key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).unwrap_or_default().trim().to_owned(),
                };
                let child = join_key(path, &key_str);
                if value.is_null() {
                    base_map.remove(&key);
                    drop_spans_under(spans, &child);
                    continue;
                }
                match base_map.get_mut(&key) {
                    Some(existing) => merge(existing, value, spans, over_spans, &child),
                    None => {
                        drop_spans_under(spans, &child);
                        copy_spans_under(spans, over_spans, &child);
                        base_map.insert(key, value);
                    }
                }
            }
        }
        (base, over) => {
            drop_spans_under(spans, path);
            copy_spans_under(spans, over_spans, path);
            *base = over;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str, name: &'static str) -> SourceDoc {
        parse(text, Origin::Embedded(name)).unwrap()
    }

    #[test]
    fn maps_merge_and_lists_replace() {
        let base = doc("vm:\n  cpus: 2\n  memory: 4GiB\nsync:\n  deny: [a, b]\n", "base");
        let over = doc("vm:\n  cpus: 8\nsync:\n  deny: [c]\n", "over");
        let mut value = Value::Mapping(serde_yaml::Mapping::new());
        let mut spans = SpanIndex::new();
        merge(&mut value, base.value, &mut spans, &base.spans, "");
        merge(&mut value, over.value, &mut spans, &over.spans, "");
        assert_eq!(value["vm"]["cpus"], Value::from(8));
        assert_eq!(value["vm"]["memory"], Value::from("4GiB"));
        assert_eq!(value["sync"]["deny"], serde_yaml::from_str::<Value>("[c]").unwrap());
        assert_eq!(spans["vm.cpus"].origin.to_string(), "<embedded>/profiles/over.yaml");
        assert_eq!(spans["vm.memory"].origin.to_string(), "<embedded>/profiles/base.yaml");
        assert!(!spans.contains_key("sync.deny[1]"));
    }

    #[test]
    fn null_resets_a_key() {
        let base = doc("gateway:\n  port: 1\n", "b");
        let over = doc("gateway:\n  port: null\n", "o");
        let mut value = Value::Mapping(serde_yaml::Mapping::new());
        let mut spans = SpanIndex::new();
        merge(&mut value, base.value, &mut spans, &base.spans, "");
        merge(&mut value, over.value, &mut spans, &over.spans, "");
        assert!(value["gateway"].get("port").is_none());
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("vm:\n  cpus: [1,\n", Origin::File("/p.yaml".into())).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/p.yaml:"), "{text}");
        assert!(text.contains("invalid YAML"), "{text}");
    }

    #[test]
    fn a_fifo_or_an_endless_file_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.yaml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        // Found by fuzzing (issue 19): `extends: /some/fifo` blocked forever, `/dev/zero` ran
        // out of memory.
        assert_eq!(read_profile_file(&fifo).unwrap_err().to_string(), "not a regular file");
        assert_eq!(read_profile_file(Path::new("/dev/zero")).unwrap_err().to_string(), "not a regular file");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; (MAX_PROFILE_BYTES + 1) as usize]).unwrap();
        assert!(read_profile_file(&big).unwrap_err().to_string().starts_with("larger than 1 MiB"));
    }

    #[test]
    fn spec_parsing() {
        assert_eq!(ProfileSpec::parse("work"), ProfileSpec::Name("work".into()));
        assert_eq!(ProfileSpec::parse("./work"), ProfileSpec::Path("./work".into()));
        assert_eq!(ProfileSpec::parse("work.yaml"), ProfileSpec::Path("work.yaml".into()));
        assert_eq!(ProfileSpec::parse("~/p"), ProfileSpec::Path("~/p".into()));
        assert_eq!(ProfileSpec::parse(".p"), ProfileSpec::Path(".p".into()));
        // A name stays a name whatever the current folder holds (issue 19, profile hijack).
        assert_eq!(ProfileSpec::parse("default"), ProfileSpec::Name("default".into()));
    }
}
