//! `sandbox init`: ask for the few things that differ between sandboxes and write a commented
//! profile that extends `default`.
//!
//! Invariants: the written profile always validates (it is checked before it is written); an
//! existing profile is never overwritten without `force`, and then a numbered backup is kept.

pub(crate) mod error;
mod wizard;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::environment::Environment;
use crate::profile::{Origin, ProfileError};
pub(crate) use error::InitError;

/// What the user asked for on the command line (clap-free).
#[derive(Debug, Default)]
pub(crate) struct InitRequest {
    pub(crate) name: Option<String>,
    pub(crate) force: bool,
    pub(crate) non_interactive: bool,
    pub(crate) workspaces: Vec<String>,
    pub(crate) cpus: Option<u32>,
    pub(crate) memory: Option<String>,
    pub(crate) disk: Option<String>,
    pub(crate) allow_domains: Vec<String>,
    pub(crate) secrets_file: Option<PathBuf>,
    pub(crate) secrets_env: Vec<String>,
    pub(crate) gateway_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkspaceAnswer {
    pub(crate) host: String,
    pub(crate) guest: String,
}

/// Every answer the profile is written from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Answers {
    pub(crate) name: String,
    pub(crate) workspaces: Vec<WorkspaceAnswer>,
    pub(crate) cpus: u32,
    pub(crate) memory: String,
    pub(crate) disk: String,
    pub(crate) allow_domains: Vec<String>,
    pub(crate) secrets_file: Option<String>,
    pub(crate) secrets_env: Vec<String>,
    pub(crate) gateway_version: String,
}

/// What `init` did.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) path: PathBuf,
    pub(crate) backup: Option<PathBuf>,
}

/// Run `init`: gather answers (from flags, or interactively), render, validate, write.
pub(crate) fn run(request: &InitRequest, env: &Environment, interactive_terminal: bool) -> Result<Written, InitError> {
    let answers = if request.non_interactive {
        from_flags(request, env)
    } else if interactive_terminal {
        wizard::ask(request, env)?
    } else {
        return Err(InitError::NoTerminal);
    };
    check_name(&answers.name).map_err(|reason| InitError::Name { name: answers.name.clone(), reason })?;
    let path = crate::profile::load::named_path(&answers.name, env);
    let text = profile_text(&answers)?;
    check(&text, &path, env)?;
    write(&path, &text, request.force)
}

/// Sensible defaults for every answer, overridden by flags.
pub(crate) fn from_flags(request: &InitRequest, env: &Environment) -> Answers {
    let name = request.name.clone().unwrap_or_else(|| default_name(&env.cwd));
    let workspaces = if request.workspaces.is_empty() {
        vec![WorkspaceAnswer { host: display_path(&env.cwd, env), guest: "/workspace".into() }]
    } else {
        request.workspaces.iter().enumerate().map(|(i, spec)| parse_workspace(spec, i, env)).collect()
    };
    Answers {
        name,
        workspaces,
        cpus: request.cpus.unwrap_or(4),
        memory: request.memory.clone().unwrap_or_else(|| "8GiB".into()),
        disk: request.disk.clone().unwrap_or_else(|| "50GiB".into()),
        allow_domains: if request.allow_domains.is_empty() { default_domains() } else { request.allow_domains.clone() },
        secrets_file: request
            .secrets_file
            .as_ref()
            .map(|p| display_path(&env.expand(&p.to_string_lossy(), &env.cwd), env)),
        secrets_env: request.secrets_env.clone(),
        gateway_version: request
            .gateway_version
            .clone()
            .unwrap_or_else(|| crate::profile::validate::DEFAULT_GATEWAY_VERSION.into()),
    }
}

pub(crate) fn default_domains() -> Vec<String> {
    ["api.anthropic.com", "api.openai.com", "registry.npmjs.org", "github.com", "api.github.com"]
        .map(String::from)
        .to_vec()
}

/// A profile name from a folder name: lower-case letters, digits and `-`, starting with a letter.
pub(crate) fn default_name(cwd: &Path) -> String {
    let base = cwd.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let mut name: String = base.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    name = name.trim_matches('-').chars().take(40).collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name = format!("sandbox-{name}").trim_end_matches('-').chars().take(40).collect();
    }
    name
}

/// Why `name` cannot name a new profile, if it cannot. Checked before the name becomes a file
/// name: a `/`, `..` or YAML syntax in it would otherwise write outside the profiles directory
/// or make the file's `name:` differ from its file name.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err("use 1 to 40 lower-case letters, digits and `-`, starting with a letter".into());
    }
    // The written profile `extends: default`; a user `default.yaml` that does so would shadow the
    // built-in one and make every profile's `extends` chain a cycle.
    if name == "default" {
        return Err("`default` is the profile every `init` profile extends; choose another name".into());
    }
    Ok(())
}

/// `HOST[:GUEST]`; the first workspace defaults to `/workspace`, later ones to `/workspace-N`.
pub(crate) fn parse_workspace(spec: &str, index: usize, env: &Environment) -> WorkspaceAnswer {
    let (host, guest) = match spec.rsplit_once(':') {
        Some((h, g)) if g.starts_with('/') => (h, g.to_owned()),
        _ => (spec, if index == 0 { "/workspace".to_owned() } else { format!("/workspace-{}", index + 1) }),
    };
    WorkspaceAnswer { host: host_answer(host, env), guest }
}

/// A host folder as written into the profile: absolute, symlinks resolved, `~/` under home.
pub(crate) fn host_answer(host: &str, env: &Environment) -> String {
    let absolute = env.expand(host, &env.cwd);
    let absolute = std::fs::canonicalize(&absolute).unwrap_or(absolute);
    display_path(&absolute, env)
}

/// `~/...` for paths under the home directory, so the profile works from a dotfiles repo.
pub(crate) fn display_path(path: &Path, env: &Environment) -> String {
    match path.strip_prefix(&env.home) {
        Ok(rest) if !rest.as_os_str().is_empty() && env.home != Path::new("/") => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

pub(crate) fn profile_text(answers: &Answers) -> Result<String, InitError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    crate::render::configure_syntax(&mut env);
    crate::render::filters::register(&mut env);
    let text = env
        .render_str(include_str!("../../templates/init/profile.yaml.j2"), crate::render::to_value(answers))
        .map_err(|e| InitError::Template(e.to_string()))?;
    Ok(text)
}

/// Validate the text as if it were already at `path`, so relative paths resolve the same way.
fn check(text: &str, path: &Path, env: &Environment) -> Result<(), InitError> {
    let doc = crate::profile::load::parse(text, Origin::File(path.to_path_buf()))?;
    let loaded = crate::profile::load::merge_with_parents(doc, env)?;
    crate::profile::validate::validate(&loaded, env).map(|_| ()).map_err(|e| match e {
        ProfileError::Invalid { diagnostics } => InitError::Invalid { diagnostics },
        other => InitError::Profile(other),
    })
}

fn write(path: &Path, text: &str, force: bool) -> Result<Written, InitError> {
    let err = |source| InitError::Write { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut backup = None;
    if path.exists() {
        if !force {
            return Err(InitError::Exists { path: path.to_path_buf() });
        }
        let target = (1..)
            .map(|n| path.with_extension(format!("yaml.bak.{n}")))
            .find(|p| !p.exists())
            .expect("an unused backup name exists");
        std::fs::copy(path, &target).map_err(err)?;
        backup = Some(target);
    }
    let mut tmp = tempfile::Builder::new().prefix(".init-").tempfile_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(Written { path: path.to_path_buf(), backup })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_folders() {
        assert_eq!(default_name(Path::new("/src/My App")), "my-app");
        assert_eq!(default_name(Path::new("/src/42")), "sandbox-42");
        assert_eq!(default_name(Path::new("/")), "sandbox");
    }

    #[test]
    fn names_that_cannot_be_file_names_or_shadow_default_are_refused() {
        assert_eq!(check_name("web-2"), Ok(()));
        for bad in ["", "Web", "2web", "ok #/../../x", "../x", "a.b", &"a".repeat(41)] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            check_name("default"),
            Err("`default` is the profile every `init` profile extends; choose another name".into())
        );
    }
}
