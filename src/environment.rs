//! The parts of the process environment that change behaviour, read once at start-up so the rest
//! of the program is a function of explicit inputs (and tests can set them).

use std::path::{Path, PathBuf};

/// Directories and variables the program depends on.
#[derive(Debug, Clone)]
pub(crate) struct Environment {
    pub(crate) home: PathBuf,
    pub(crate) cwd: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config` (on macOS too: dotfiles keep profiles there).
    pub(crate) config_dir: PathBuf,
    /// `$XDG_STATE_HOME`, else `~/.local/state`: baselines, journals, audit log.
    pub(crate) state_dir: PathBuf,
    /// `$SANDBOX_PROFILE`.
    pub(crate) profile: Option<String>,
}

impl Environment {
    /// Read the real environment.
    pub(crate) fn from_process() -> std::io::Result<Self> {
        let cwd = std::env::current_dir()?;
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let xdg = |var: &str, fallback: &str| {
            std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute()).unwrap_or_else(|| home.join(fallback))
        };
        Ok(Environment {
            config_dir: xdg("XDG_CONFIG_HOME", ".config"),
            state_dir: xdg("XDG_STATE_HOME", ".local/state"),
            profile: std::env::var("SANDBOX_PROFILE").ok().filter(|s| !s.is_empty()),
            home,
            cwd,
        })
    }

    /// A variable an `env:` secrets source allowlists, read when needed (never stored here).
    pub(crate) fn secret_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    /// Where named profiles live.
    pub(crate) fn profiles_dir(&self) -> PathBuf {
        self.config_dir.join("sandbox").join("profiles")
    }

    /// Expand a leading `~` or `$HOME`, then make the path absolute against `base`.
    pub(crate) fn expand(&self, path: &str, base: &Path) -> PathBuf {
        let expanded = if path == "~" || path == "$HOME" || path == "${HOME}" {
            self.home.clone()
        } else if let Some(rest) =
            path.strip_prefix("~/").or_else(|| path.strip_prefix("$HOME/")).or_else(|| path.strip_prefix("${HOME}/"))
        {
            self.home.join(rest)
        } else {
            PathBuf::from(path)
        };
        if expanded.is_absolute() { expanded } else { base.join(expanded) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            home: "/home/u".into(),
            cwd: "/cwd".into(),
            config_dir: "/home/u/.config".into(),
            state_dir: "/home/u/.local/state".into(),
            profile: None,
        }
    }

    #[test]
    fn expands_home_forms_and_relative_paths() {
        let e = env();
        let base = Path::new("/base");
        assert_eq!(e.expand("~", base), PathBuf::from("/home/u"));
        assert_eq!(e.expand("~/src", base), PathBuf::from("/home/u/src"));
        assert_eq!(e.expand("$HOME/src", base), PathBuf::from("/home/u/src"));
        assert_eq!(e.expand("${HOME}/src", base), PathBuf::from("/home/u/src"));
        assert_eq!(e.expand("src", base), PathBuf::from("/base/src"));
        assert_eq!(e.expand("/abs", base), PathBuf::from("/abs"));
        assert_eq!(e.expand("~other/x", base), PathBuf::from("/base/~other/x"));
    }
}
