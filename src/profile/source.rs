//! One profile document as read from disk (or compiled in): its text, its YAML value and where
//! every key path sits in the text, so that diagnostics can name `file:line:column`.
//!
//! serde_yaml gives values but no positions, so positions come from a second, event-level parse
//! (yaml-rust2). The two parsers agree on structure for every document serde_yaml accepts; a key
//! path that the index lacks simply gets no line number rather than a wrong one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Where a profile document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// A profile compiled into the binary (`profiles/NAME.yaml`).
    Embedded(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Embedded(name) => write!(f, "<embedded>/profiles/{name}.yaml"),
        }
    }
}

/// A position in a profile document (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) origin: Arc<Origin>,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Key path → position of the key (for mapping entries) or of the item (for sequence items).
pub(crate) type SpanIndex = BTreeMap<String, Location>;

/// Index every key path of `text`. Paths look like `vm.cpus` and `workspaces[0].host`.
pub(crate) fn index_spans(text: &str, origin: &Arc<Origin>) -> SpanIndex {
    let mut builder = SpanBuilder { origin: Arc::clone(origin), stack: Vec::new(), spans: SpanIndex::new() };
    let mut parser = Parser::new_from_str(text);
    // A syntax error here is reported by serde_yaml with its own position; the index just stops.
    let _ = parser.load(&mut builder, false);
    builder.spans
}

/// Join a child key onto a parent path.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// Join a sequence index onto a parent path.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

enum Frame {
    /// Inside a mapping: the path of the mapping, the pending key once read, and whether the
    /// next key is the first (a sequence item's position is that of its first key: the parser
    /// marks a block mapping's start after that key).
    Map { path: String, key: Option<String>, first: bool },
    /// Inside a sequence: the path of the sequence and the index of the next item.
    Seq { path: String, next: usize },
}

struct SpanBuilder {
    origin: Arc<Origin>,
    stack: Vec<Frame>,
    spans: SpanIndex,
}

impl SpanBuilder {
    fn location(&self, mark: Marker) -> Location {
        Location { origin: Arc::clone(&self.origin), line: mark.line(), column: mark.col() + 1 }
    }

    /// Called for a node that is a value: returns the node's path, or `None` when the node is
    /// a mapping key (recorded, and the caller skips it).
    fn value_path(&mut self, ev_scalar: Option<&str>, mark: Marker) -> Option<String> {
        let location = self.location(mark);
        match self.stack.last_mut() {
            None => {
                // The document itself, for diagnostics about the whole profile.
                self.spans.insert(String::new(), location);
                Some(String::new())
            }
            Some(Frame::Seq { path, next }) => {
                let item = join_index(path, *next);
                *next += 1;
                self.spans.insert(item.clone(), location);
                Some(item)
            }
            Some(Frame::Map { path, key, first }) => match key.take() {
                Some(k) => Some(join_key(path, &k)),
                None => {
                    // A key. Complex (non-scalar) keys are not used in profiles.
                    let k = ev_scalar.unwrap_or("?").to_owned();
                    if std::mem::take(first) && (path.is_empty() || path.ends_with(']')) {
                        self.spans.insert(path.clone(), location.clone());
                    }
                    self.spans.insert(join_key(path, &k), location);
                    *key = Some(k);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for SpanBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                self.value_path(Some(&value), mark);
            }
            Event::Alias(_) => {
                self.value_path(None, mark);
            }
            Event::MappingStart(..) => {
                if let Some(path) = self.value_path(None, mark) {
                    self.stack.push(Frame::Map { path, key: None, first: true });
                } else {
                    // A mapping used as a key: track it so nesting stays balanced.
                    self.stack.push(Frame::Map { path: "?".into(), key: None, first: false });
                }
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(None, mark).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// A parsed profile document.
#[derive(Debug, Clone)]
pub(crate) struct SourceDoc {
    pub(crate) origin: Arc<Origin>,
    pub(crate) value: serde_yaml::Value,
    pub(crate) spans: SpanIndex,
}

impl SourceDoc {
    /// The directory relative host paths in this document resolve against.
    pub(crate) fn base_dir(&self, cwd: &Path) -> PathBuf {
        match &*self.origin {
            Origin::File(path) => path.parent().map_or_else(|| cwd.to_path_buf(), Path::to_path_buf),
            Origin::Embedded(_) => cwd.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_keys_and_items() {
        let origin = Arc::new(Origin::File("p.yaml".into()));
        let text = "name: x\nvm:\n  cpus: 4\nworkspaces:\n  - host: .\n    guest: /w\n  - host: b\n";
        let spans = index_spans(text, &origin);
        let at = |p: &str| {
            let l = &spans[p];
            (l.line, l.column)
        };
        assert_eq!(at("name"), (1, 1));
        assert_eq!(at("vm.cpus"), (3, 3));
        assert_eq!(at("workspaces[0]"), (5, 5));
        assert_eq!(at("workspaces[0].guest"), (6, 5));
        assert_eq!(at("workspaces[1].host"), (7, 5));
        assert_eq!(spans["vm.cpus"].to_string(), "p.yaml:3:3");
    }

    #[test]
    fn flow_style_is_indexed() {
        let origin = Arc::new(Origin::Embedded("t"));
        let spans = index_spans("sync: {deny: [a, b]}\n", &origin);
        assert_eq!(spans["sync.deny[1]"].column, 18);
    }
}
