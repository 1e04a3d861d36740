//! A dotenv parser that keys on the start of a line. The prior art matched `KEY=` anywhere with an
//! unanchored regex, so a commented-out `# KEY=old` could win over the real line; here a comment
//! is a comment, and a name set twice is an error.
//!
//! Accepted: blank lines, `#` comments, an optional `export ` prefix, `NAME=value` with optional
//! spaces around `=`, unquoted values (trailing ` # comment` removed, spaces trimmed),
//! `'single quoted'` (literal) and `"double quoted"` values (escapes `\n \t \r \" \\ \$`, may span
//! lines). Errors give the line and the name, never the value or the line's text.

/// One assignment: its name, value and the line it starts on (1-based).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) line: usize,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry {{ name: {:?}, value: <redacted>, line: {} }}", self.name, self.line)
    }
}

/// What is wrong, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parse a whole dotenv text.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut out: Vec<Entry> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let err = |message: String| ParseError { line: number, message };
        let mut rest = lines[i].trim_start();
        i += 1;
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            rest = after.trim_start();
        }
        let name_len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() || !name.starts_with(is_name_start) {
            return Err(err(
                "expected `NAME=value` (a name of letters, digits and `_`, not starting with a digit)".into()
            ));
        }
        let Some(after) = rest[name_len..].trim_start().strip_prefix('=') else {
            return Err(err(format!("`{name}` is not followed by `=`")));
        };
        let raw = after.trim_start();
        let value = if let Some(body) = raw.strip_prefix('\'') {
            let Some(end) = body.find('\'') else {
                return Err(err(format!("the single-quoted value of `{name}` does not end on its line")));
            };
            trailing(&body[end + 1..]).map_err(|m| err(format!("`{name}`: {m}")))?;
            body[..end].to_owned()
        } else if let Some(body) = raw.strip_prefix('"') {
            let mut value = String::new();
            let mut current = body;
            loop {
                match double_quoted(current, &mut value) {
                    Some(end) => {
                        trailing(&current[end..]).map_err(|m| err(format!("`{name}`: {m}")))?;
                        break;
                    }
                    None if i < lines.len() => {
                        value.push('\n');
                        current = lines[i];
                        i += 1;
                    }
                    None => return Err(err(format!("the double-quoted value of `{name}` never ends"))),
                }
            }
            value
        } else {
            let cut = raw.find(" #").or_else(|| raw.find("\t#")).unwrap_or(raw.len());
            raw[..cut].trim_end().to_owned()
        };
        if let Some(first) = out.iter().find(|e| e.name == name) {
            return Err(err(format!("`{name}` is set twice (first on line {})", first.line)));
        }
        out.push(Entry { name: name.to_owned(), value, line: number });
    }
    Ok(out)
}

/// Append the double-quoted part of `text` to `value`; the index just after the closing quote,
/// or `None` if the line ends first.
fn double_quoted(text: &str, value: &mut String) -> Option<usize> {
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some(at + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, other @ ('"' | '\\' | '$' | '`'))) => value.push(other),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            },
            other => value.push(other),
        }
    }
    None
}

/// After a quoted value only spaces and a comment may follow.
fn trailing(rest: &str) -> Result<(), String> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err("unexpected text after the closing quote".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).expect("parses").into_iter().map(|e| (e.name, e.value)).collect()
    }

    #[test]
    fn the_forms_people_write() {
        let text = "# comment\n\nA=1\nexport B = two words  # note\nC='lit $X # not a comment'\n\
                    D=\"q \\\"x\\\" \\n end\"\nE=\nF=a#b\n  G=indented\r\n";
        assert_eq!(
            pairs(text),
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "lit $X # not a comment"),
                ("D", "q \"x\" \n end"),
                ("E", ""),
                ("F", "a#b"),
                ("G", "indented"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn a_commented_line_never_wins() {
        // The prior art's unanchored regex took `old` from the comment.
        assert_eq!(pairs("# TOKEN=old\nTOKEN=new\n"), [("TOKEN".to_owned(), "new".to_owned())]);
        assert_eq!(pairs("#TOKEN=old\n"), []);
    }

    #[test]
    fn multi_line_double_quotes() {
        let text = "KEY=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\n";
        assert_eq!(pairs(text)[0].1, "-----BEGIN-----\nabc\n-----END-----");
        assert_eq!(parse(text).expect("parses")[1].line, 4);
    }

    #[test]
    fn errors_name_the_line_and_never_the_value() {
        let e = parse("A=1\nA=2\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "`A` is set twice (first on line 1)"));
        let e = parse("ok=1\n1BAD=sekrit\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.message.contains("sekrit"));
        let e = parse("T='sekrit\n").unwrap_err();
        assert!(e.message.contains("does not end") && !e.message.contains("sekrit"));
        let e = parse("T=\"sekrit\n").unwrap_err();
        assert!(e.message.contains("never ends") && !e.message.contains("sekrit"));
        let e = parse("T='a' b\n").unwrap_err();
        assert!(e.message.contains("after the closing quote"));
        let e = parse("JUSTANAME\n").unwrap_err();
        assert!(e.message.contains("not followed by `=`"));
        assert!(!format!("{:?}", parse("K=sekrit").expect("parses")).contains("sekrit"), "Debug redacts");
    }
}
