//! Render every file the VM needs from a [`Profile`]: Lima instance, overlay mount units, systemd
//! services, UFW rules, Ansible inventory and vars, the gateway's config.
//!
//! Invariants: rendering is a pure function of the profile (byte-identical output for the same
//! profile: every collection is ordered, no time or host lookups), it does no I/O beyond the
//! templates compiled into the binary, and it never sees a secret value (profiles hold secret
//! names only).

pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod filters;
pub(crate) mod output;
pub(crate) mod rendered;

use std::path::PathBuf;

use minijinja::{Environment, UndefinedBehavior};

pub(crate) use error::RenderError;
pub(crate) use rendered::Rendered;

use crate::profile::Profile;
use context::Context;

/// Templates compiled into the binary, by name.
const TEMPLATES: [(&str, &str); 10] = [
    ("lima/instance.yaml", include_str!("../../templates/lima/instance.yaml.j2")),
    ("systemd/workspace.mount", include_str!("../../templates/systemd/workspace.mount.j2")),
    ("systemd/openclaw-gateway.service", include_str!("../../templates/systemd/openclaw-gateway.service.j2")),
    ("systemd/sandbox-overlay-audit.service", include_str!("../../templates/systemd/sandbox-overlay-audit.service.j2")),
    ("ansible/inventory.yml", include_str!("../../templates/ansible/inventory.yml.j2")),
    ("ansible/group_vars.yml", include_str!("../../templates/ansible/group_vars.yml.j2")),
    ("gateway/openclaw.json", include_str!("../../templates/gateway/openclaw.json.j2")),
    ("firewall/default-ufw", include_str!("../../firewall/default-ufw.j2")),
    ("firewall/ufw.conf", include_str!("../../firewall/ufw.conf.j2")),
    ("firewall/user.rules", include_str!("../../firewall/user.rules.j2")),
];

/// A template value from any serialisable Rust value.
pub(crate) fn to_value<T: serde::Serialize>(value: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

/// Rendered files end with the newline their template ends with, and nothing is auto-escaped:
/// minijinja would JSON-escape every value in `.yaml`/`.json` templates, and quoting is done
/// explicitly with the `quote`/`tojson` filters instead.
pub(crate) fn configure_syntax(env: &mut Environment<'_>) {
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default syntax with keep_trailing_newline is valid");
    env.set_syntax(syntax);
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    crate::render::configure_syntax(&mut env);
    filters::register(&mut env);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).expect("templates compiled into the binary parse (checked by tests)");
    }
    env
}

/// Render every artefact of `profile`, in a fixed order.
pub(crate) fn render(profile: &Profile) -> Result<Vec<Rendered>, RenderError> {
    let env = environment();
    let ctx = Context::new(profile);
    let base = crate::render::to_value(&ctx);
    let run = |template: &str, extra: minijinja::Value| -> Result<Vec<u8>, RenderError> {
        let tmpl = env.get_template(template).map_err(|e| template_error(template, &e))?;
        let merged = minijinja::context! { ..extra, ..base.clone() };
        tmpl.render(merged).map(String::into_bytes).map_err(|e| template_error(template, &e))
    };
    let none = minijinja::Value::UNDEFINED;
    let mut out = Vec::new();
    let mut push =
        |path: String, mode: u32, bytes: Vec<u8>| out.push(Rendered { rel_path: PathBuf::from(path), mode, bytes });

    if profile.vm.backend == crate::profile::Backend::Lima {
        let path = format!("lima/{}.yaml", ctx.name);
        let bytes = run("lima/instance.yaml", none.clone())?;
        check_lima(&path, &bytes)?;
        push(path, 0o644, bytes);
    }
    for ws in &ctx.overlays {
        let extra = minijinja::context! { ws => crate::render::to_value(ws), userxattr => profile.sync.userxattr };
        push(format!("systemd/{}", ws.mount_unit), 0o644, run("systemd/workspace.mount", extra)?);
    }
    push("systemd/openclaw-gateway.service".into(), 0o644, run("systemd/openclaw-gateway.service", none.clone())?);
    if !ctx.overlays.is_empty() {
        push(
            "systemd/sandbox-overlay-audit.service".into(),
            0o644,
            run("systemd/sandbox-overlay-audit.service", none.clone())?,
        );
    }
    push("firewall/ufw/default-ufw".into(), 0o644, run("firewall/default-ufw", none.clone())?);
    push("firewall/ufw/ufw.conf".into(), 0o644, run("firewall/ufw.conf", none.clone())?);
    let v4 = minijinja::context! { suffix => "", family_rules => crate::render::to_value(&ctx.firewall.v4), any_net => "0.0.0.0/0" };
    push("firewall/ufw/user.rules".into(), 0o640, run("firewall/user.rules", v4)?);
    let v6 = minijinja::context! { suffix => "6", family_rules => crate::render::to_value(&ctx.firewall.v6), any_net => "::/0" };
    push("firewall/ufw/user6.rules".into(), 0o640, run("firewall/user.rules", v6)?);
    push("ansible/inventory.yml".into(), 0o644, run("ansible/inventory.yml", none.clone())?);
    push("ansible/group_vars/sandbox.yml".into(), 0o644, run("ansible/group_vars.yml", none.clone())?);
    push("gateway/openclaw.json".into(), 0o640, run("gateway/openclaw.json", none)?);
    Ok(out)
}

fn template_error(template: &str, e: &minijinja::Error) -> RenderError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    RenderError::Template { template: template.to_owned(), message }
}

/// Every rendered Lima file must pass the strict model: Lima itself only warns on unknown keys.
fn check_lima(path: &str, bytes: &[u8]) -> Result<(), RenderError> {
    let text = String::from_utf8_lossy(bytes);
    crate::lima::parse_strict(&text)
        .map(|_| ())
        .map_err(|e| RenderError::InvalidLima { path: path.to_owned(), message: e.to_string() })
}
