//! The secrets pipeline: values come from the profile's sources (dotenv files, allowlisted
//! environment variables, a command printing dotenv), are checked against the names the VM
//! needs, and reach the VM only as the body of a root-only `EnvironmentFile` sent over SSH stdin.
//! A value is never in argv, a rendered file, a log or a message: errors name the source, the
//! line and the variable, never the value; `Debug` redacts.

pub(crate) mod dotenv;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::exec::{ExecError, Invocation, Tool};
use crate::profile::{Profile, SecretSource};

/// The command of an `exec` source (the program is the profile's; the hint says where it is set).
const SECRETS_EXEC: Tool =
    Tool { program: "secrets.sources[].exec", install: "install it, or fix `secrets.sources[].exec` in the profile" };

#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretsError {
    #[error("cannot read the secrets file `{}`: {source}\n  help: fix `secrets.sources[].file` in the profile", path.display())]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{origin}:{line}: {message}\n  help: fix that line (values are never shown)")]
    Parse { origin: String, line: usize, message: String },

    #[error("`{name}` is set by two secrets sources: {first} and {second}\n  help: keep it in one of them")]
    Duplicate { name: String, first: String, second: String },

    #[error(
        "the secrets command `{command}` failed{}\n  help: run it yourself to see why (its output is not shown: it may hold secrets)",
        status.map_or_else(|| " (killed by a signal)".to_owned(), |c| format!(" (exit status {c})"))
    )]
    ExecFailed { command: String, status: Option<i32> },

    #[error(transparent)]
    Exec(#[from] ExecError),

    #[error(
        "cannot run the secrets command `{command}`: {source}\n  help: fix `secrets.sources[].exec` in the profile"
    )]
    ExecStart { command: String, source: std::io::Error },

    #[error(
        "required secrets are missing: {}\n  help: add them to a source in `secrets.sources` (a dotenv file, `env: [NAME]`, or an `exec` command); `sandbox secrets check` lists them",
        names.join(", ")
    )]
    Missing { names: Vec<String> },

    #[error(
        "the value of `{name}` (from {origin}) holds a control character other than tab\n  help: systemd's EnvironmentFile cannot carry it; store such a value base64-encoded"
    )]
    Unsafe { name: String, origin: String },
}

/// A value and where it came from.
#[derive(Clone)]
struct Value {
    value: String,
    origin: String,
}

/// Every secret the sources provide, by name. `Debug` shows names only.
#[derive(Clone, Default)]
pub(crate) struct SecretSet {
    values: BTreeMap<String, Value>,
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl SecretSet {
    fn add(&mut self, name: String, value: String, origin: String) -> Result<(), SecretsError> {
        if let Some(first) = self.values.get(&name) {
            return Err(SecretsError::Duplicate { name, first: first.origin.clone(), second: origin });
        }
        self.values.insert(name, Value { value, origin });
        Ok(())
    }

    /// Where `name` comes from, if any source sets it.
    pub(crate) fn origin(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.origin.as_str())
    }

    /// `text` with every secret value of 4 or more characters replaced by `[NAME redacted]`, for
    /// output from the VM (a service's journal) that could echo one. Shorter values are left:
    /// replacing every `1` would garble the text and hide nothing worth hiding.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let mut values: Vec<(&String, &Value)> = self.values.iter().filter(|(_, v)| v.value.len() >= 4).collect();
        // Longest first, so a value containing another is replaced whole.
        values.sort_by_key(|(_, v)| std::cmp::Reverse(v.value.len()));
        for (name, v) in values {
            out = out.replace(&v.value, &format!("[{name} redacted]"));
        }
        out
    }

    /// The body of `/etc/openclaw/secrets.env` in systemd's `EnvironmentFile` syntax: each value
    /// double-quoted, with `\`, `"`, `$` and `` ` `` escaped so systemd reads it back as is.
    pub(crate) fn env_file(&self) -> Result<Vec<u8>, SecretsError> {
        let mut out = String::from("# Written by `sandbox up`; root-only; read by systemd for the gateway.\n");
        for (name, v) in &self.values {
            if v.value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(SecretsError::Unsafe { name: name.clone(), origin: v.origin.clone() });
            }
            out.push_str(name);
            out.push_str("=\"");
            for c in v.value.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push_str("\"\n");
        }
        Ok(out.into_bytes())
    }
}

/// The names the VM needs: the gateway token's, then `secrets.required`.
pub(crate) fn required(profile: &Profile) -> Vec<String> {
    let mut names = vec![profile.gateway.token_secret.clone()];
    for name in &profile.secrets.required {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Read every source of the profile, in order. `env` looks a name up in sandbox's environment.
pub(crate) fn collect(profile: &Profile, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretSet, SecretsError> {
    let mut set = SecretSet::default();
    for source in &profile.secrets.sources {
        match source {
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| SecretsError::Read { path: path.clone(), source })?;
                let origin = path.display().to_string();
                add_dotenv(&mut set, &text, &origin)?;
            }
            SecretSource::Env(names) => {
                for name in names {
                    if let Some(value) = env(name) {
                        set.add(name.clone(), value, format!("the environment variable {name}"))?;
                    }
                }
            }
            SecretSource::Exec(argv) => {
                let Some((program, args)) = argv.split_first() else { continue };
                let inv = Invocation::new(SECRETS_EXEC).program(Some(std::path::Path::new(program))).args(args);
                // Only the program is named in messages: its arguments could hold a secret.
                let command = if args.is_empty() { program.clone() } else { format!("{program} …") };
                let out = inv.output().map_err(|e| match e {
                    ExecError::Spawn { source, .. } => SecretsError::ExecStart { command: command.clone(), source },
                    other => SecretsError::Exec(other),
                })?;
                if !out.success() {
                    return Err(SecretsError::ExecFailed { command, status: out.status });
                }
                let text = String::from_utf8_lossy(&out.stdout);
                add_dotenv(&mut set, &text, &format!("the output of `{command}`"))?;
            }
        }
    }
    Ok(set)
}

fn add_dotenv(set: &mut SecretSet, text: &str, origin: &str) -> Result<(), SecretsError> {
    let entries = dotenv::parse(text).map_err(|e| SecretsError::Parse {
        origin: origin.to_owned(),
        line: e.line,
        message: e.message,
    })?;
    for e in entries {
        set.add(e.name, e.value, format!("{origin}:{}", e.line))?;
    }
    Ok(())
}

/// The required names with where each comes from (`None`: missing).
pub(crate) fn check(profile: &Profile, set: &SecretSet) -> Vec<(String, Option<String>)> {
    required(profile).into_iter().map(|n| (n.clone(), set.origin(&n).map(str::to_owned))).collect()
}

/// The secrets to deliver, all required ones present; else [`SecretsError::Missing`].
pub(crate) fn for_delivery(profile: &Profile, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretSet, SecretsError> {
    let set = collect(profile, env)?;
    let missing: Vec<String> = check(profile, &set).into_iter().filter(|(_, o)| o.is_none()).map(|(n, _)| n).collect();
    if missing.is_empty() { Ok(set) } else { Err(SecretsError::Missing { names: missing }) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A set holding `pairs`, for tests elsewhere.
    pub(crate) fn set(pairs: &[(&str, &str)]) -> SecretSet {
        let mut set = SecretSet::default();
        for (name, value) in pairs {
            set.add((*name).to_owned(), (*value).to_owned(), "test".to_owned()).expect("add");
        }
        set
    }

    #[test]
    fn redact_replaces_every_value_longest_first() {
        let set = set(&[("PART", "abcd"), ("TOKEN", "abcd1234"), ("PIN", "42")]);
        let text = "auth abcd1234 failed; prefix abcd; port 42";
        assert_eq!(set.redact(text), "auth [TOKEN redacted] failed; prefix [PART redacted]; port 42");
    }

    #[test]
    fn env_file_escapes_what_systemd_would_interpret() {
        let mut set = SecretSet::default();
        set.add("A".into(), r#"p"a$s\s`w"#.into(), "t".into()).expect("add");
        set.add("B".into(), "tab\there".into(), "t".into()).expect("add");
        let text = String::from_utf8(set.env_file().expect("file")).expect("utf8");
        assert!(text.ends_with("A=\"p\\\"a\\$s\\\\s\\`w\"\nB=\"tab\there\"\n"), "{text}");
        set.add("C".into(), "two\nlines".into(), "t".into()).expect("add");
        assert!(matches!(set.env_file(), Err(SecretsError::Unsafe { name, .. }) if name == "C"));
        assert_eq!(format!("{set:?}"), r#"{"A", "B", "C"}"#, "Debug shows names only");
    }

    #[test]
    fn a_name_from_two_sources_is_an_error() {
        let mut set = SecretSet::default();
        set.add("T".into(), "1".into(), "a.env:1".into()).expect("add");
        let e = set.add("T".into(), "2".into(), "the environment variable T".into()).unwrap_err();
        assert!(e.to_string().contains("a.env:1 and the environment variable T"), "{e}");
    }
}
