//! Every custom minijinja filter, in one place, each a pure function of its input.

use minijinja::{Environment, Error, ErrorKind, Value};

/// Register the filters on a template environment.
pub(crate) fn register(env: &mut Environment<'_>) {
    env.add_filter("quote", quote);
    env.add_filter("systemd_escape_path", |s: String| systemd_escape_path(&s));
    env.add_filter("systemd_quote", systemd_quote);
    env.add_filter("toyaml", toyaml);
}

/// Block-style YAML of a mapping, for splicing user variables into a vars file.
fn toyaml(value: &Value) -> Result<String, Error> {
    let text = serde_yaml::to_string(value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(text.trim_end().to_owned())
}

/// A double-quoted scalar valid in both YAML and JSON (JSON strings are YAML flow scalars).
fn quote(value: &Value) -> Result<String, Error> {
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    serde_json::to_string(&text).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// systemd's path escaping (`systemd-escape --path`): the unit name of a mount at that path.
pub(crate) fn systemd_escape_path(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::new();
    for (i, byte) in trimmed.bytes().enumerate() {
        match byte {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Quote one word for a systemd `ExecStart=` line; `%` is doubled so specifiers stay literal.
fn systemd_quote(word: &str) -> String {
    let escaped = word.replace('%', "%%");
    if escaped.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@".contains(c)) && !escaped.is_empty() {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A Docker size string (`2g`, `512m`) for a byte count.
pub(crate) fn docker_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)];
    for (unit, factor) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_paths_like_systemd() {
        assert_eq!(systemd_escape_path("/workspace"), "workspace");
        assert_eq!(systemd_escape_path("/srv/my-app"), "srv-my\\x2dapp");
        assert_eq!(systemd_escape_path("/w/.hidden"), "w-.hidden");
        assert_eq!(systemd_escape_path("/"), "-");
    }

    #[test]
    fn quotes_for_yaml_and_exec() {
        assert_eq!(quote(&Value::from("a \"b\"\n")).unwrap(), r#""a \"b\"\n""#);
        assert_eq!(systemd_quote("/opt/x"), "/opt/x");
        assert_eq!(systemd_quote("%T a"), "\"%%T a\"");
    }

    #[test]
    fn docker_sizes() {
        assert_eq!(docker_size(2 << 30), "2g");
        assert_eq!(docker_size(1536 << 20), "1536m");
        assert_eq!(docker_size(100), "100");
    }
}
