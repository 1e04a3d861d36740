//! The interactive questions of `sandbox init` (dialoguer). Each answer is checked as it is
//! typed, so the user fixes a bad path or size on the spot rather than after the last question.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};

use crate::environment::Environment;
use crate::init::{
    Answers, InitError, InitRequest, WorkspaceAnswer, check_name, default_domains, default_name, display_path,
    host_answer,
};
use crate::profile::load::named_path;
use crate::profile::{ByteSize, DomainPattern};

fn cancelled(e: dialoguer::Error) -> InitError {
    InitError::Prompt(e.to_string())
}

pub(crate) fn ask(request: &InitRequest, env: &Environment) -> Result<Answers, InitError> {
    let theme = ColorfulTheme::default();
    let name: String = Input::with_theme(&theme)
        .with_prompt("Sandbox name")
        .default(request.name.clone().unwrap_or_else(|| default_name(&env.cwd)))
        .validate_with(|n: &String| -> Result<(), String> {
            check_name(n)?;
            // Say so now rather than after the last question.
            if !request.force && named_path(n, env).exists() {
                return Err(format!("profile `{n}` already exists; choose another name, or run again with `--force`"));
            }
            Ok(())
        })
        .interact_text()
        .map_err(cancelled)?;

    let mut workspaces = Vec::new();
    loop {
        let index = workspaces.len();
        let mut host_input =
            Input::<String>::with_theme(&theme).with_prompt(format!("Host folder for workspace {}", index + 1));
        // Only the first workspace has a default (the current folder); an empty answer for a later
        // one must not silently mount the current folder a second time.
        if index == 0 {
            host_input = host_input.default(display_path(&env.cwd, env));
        }
        let host: String = host_input
            .validate_with(|h: &String| -> Result<(), String> {
                let path = env.expand(h, &env.cwd);
                if path.is_dir() { Ok(()) } else { Err(format!("`{}` is not a folder", path.display())) }
            })
            .interact_text()
            .map_err(cancelled)?;
        let default_guest = if index == 0 { "/workspace".to_owned() } else { format!("/workspace-{}", index + 1) };
        let guest: String = Input::with_theme(&theme)
            .with_prompt("Path inside the VM")
            .default(default_guest)
            .validate_with(|g: &String| -> Result<(), &str> {
                if g.starts_with('/') { Ok(()) } else { Err("an absolute path, like /workspace") }
            })
            .interact_text()
            .map_err(cancelled)?;
        // A plain folder, not a `HOST:GUEST` spec: a `:` in it is part of the folder name.
        workspaces.push(WorkspaceAnswer { host: host_answer(&host, env), guest });
        let more = Confirm::with_theme(&theme)
            .with_prompt("Add another workspace?")
            .default(false)
            .interact()
            .map_err(cancelled)?;
        if !more {
            break;
        }
    }

    let cpus: u32 = Input::with_theme(&theme)
        .with_prompt("CPUs")
        .default(request.cpus.unwrap_or(4))
        .validate_with(|c: &u32| -> Result<(), &str> {
            if (1..=64).contains(c) { Ok(()) } else { Err("1 to 64") }
        })
        .interact_text()
        .map_err(cancelled)?;
    let size_prompt = |prompt: &str, default: String| -> Result<String, InitError> {
        Input::with_theme(&theme)
            .with_prompt(prompt)
            .default(default)
            .validate_with(|s: &String| ByteSize::parse(s).map(|_| ()))
            .interact_text()
            .map_err(cancelled)
    };
    let memory = size_prompt("Memory", request.memory.clone().unwrap_or_else(|| "8GiB".into()))?;
    let disk = size_prompt("Disk", request.disk.clone().unwrap_or_else(|| "50GiB".into()))?;

    let domains_default =
        if request.allow_domains.is_empty() { default_domains() } else { request.allow_domains.clone() };
    let domains: String = Input::with_theme(&theme)
        .with_prompt("Domains the VM may reach (comma-separated)")
        .default(domains_default.join(", "))
        .allow_empty(true)
        .validate_with(|s: &String| -> Result<(), String> {
            split_list(s).iter().try_for_each(|d| DomainPattern::parse(d).map(|_| ()))
        })
        .interact_text()
        .map_err(cancelled)?;

    let choice = Select::with_theme(&theme)
        .with_prompt("Where do secrets (API keys) come from?")
        .items(["Nowhere for now", "A dotenv file on this machine", "Environment variables"])
        .default(0)
        .interact()
        .map_err(cancelled)?;
    let (mut secrets_file, mut secrets_env) = (None, Vec::new());
    match choice {
        1 => {
            let file: String = Input::with_theme(&theme)
                .with_prompt("Secrets file (dotenv, mode 0600, outside every workspace)")
                .default("~/.config/sandbox/secrets.env".to_owned())
                .validate_with(|f: &String| -> Result<(), String> {
                    let path = env.expand(f, &env.cwd);
                    if path.is_file() {
                        Ok(())
                    } else {
                        Err(format!("`{}` does not exist yet; create it first", path.display()))
                    }
                })
                .interact_text()
                .map_err(cancelled)?;
            secrets_file = Some(display_path(&env.expand(&file, &env.cwd), env));
        }
        2 => {
            let names: String = Input::with_theme(&theme)
                .with_prompt("Variable names (comma-separated)")
                .default("ANTHROPIC_API_KEY, OPENCLAW_GATEWAY_TOKEN".to_owned())
                .validate_with(|s: &String| -> Result<(), String> {
                    match split_list(s).into_iter().find(|n| !crate::profile::validate::is_env_name(n)) {
                        Some(bad) => Err(format!("`{bad}` is not a variable name (letters, digits, `_`)")),
                        None => Ok(()),
                    }
                })
                .interact_text()
                .map_err(cancelled)?;
            secrets_env = split_list(&names);
        }
        _ => {}
    }

    let gateway_version: String = Input::with_theme(&theme)
        .with_prompt("OpenClaw gateway version")
        .default(
            request.gateway_version.clone().unwrap_or_else(|| crate::profile::validate::DEFAULT_GATEWAY_VERSION.into()),
        )
        .validate_with(|v: &String| -> Result<(), &str> {
            if crate::profile::validate::is_exact_version(v) {
                Ok(())
            } else {
                Err("an exact version such as 2026.8.2")
            }
        })
        .interact_text()
        .map_err(cancelled)?;

    Ok(Answers {
        name,
        workspaces,
        cpus,
        memory,
        disk,
        allow_domains: split_list(&domains),
        secrets_file,
        secrets_env,
        gateway_version,
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}
