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
const TEMPLATES: [(&str, &str); 15] = [
    ("lima/instance.yaml", include_str!("../../templates/lima/instance.yaml.j2")),
    ("systemd/workspace.mount", include_str!("../../templates/systemd/workspace.mount.j2")),
    ("systemd/view.mount", include_str!("../../templates/systemd/view.mount.j2")),
    ("systemd/openclaw-gateway.service", include_str!("../../templates/systemd/openclaw-gateway.service.j2")),
    ("systemd/sandbox-overlay-audit.service", include_str!("../../templates/systemd/sandbox-overlay-audit.service.j2")),
    ("ansible/inventory.yml", include_str!("../../templates/ansible/inventory.yml.j2")),
    ("ansible/group_vars.yml", include_str!("../../templates/ansible/group_vars.yml.j2")),
    ("gateway/openclaw.json", include_str!("../../templates/gateway/openclaw.json.j2")),
    ("firewall/default-ufw", include_str!("../../firewall/default-ufw.j2")),
    ("firewall/ufw.conf", include_str!("../../firewall/ufw.conf.j2")),
    ("firewall/user.rules", include_str!("../../firewall/user.rules.j2")),
    ("firewall/before.rules", include_str!("../../firewall/before.rules.j2")),
    ("firewall/after.rules", include_str!("../../firewall/after.rules.j2")),
    ("firewall/squid.conf", include_str!("../../firewall/squid.conf.j2")),
    ("audit/sandbox.rules", include_str!("../../templates/audit/sandbox.rules.j2")),
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
        push(format!("systemd/{}", ws.view_unit), 0o644, run("systemd/view.mount", extra.clone())?);
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
    for (suffix, v6, host) in [("", false, &ctx.firewall.host_v4), ("6", true, &ctx.firewall.host_v6)] {
        let family = minijinja::context! { suffix, v6, host };
        push(format!("firewall/ufw/before{suffix}.rules"), 0o640, run("firewall/before.rules", family.clone())?);
        push(format!("firewall/ufw/after{suffix}.rules"), 0o640, run("firewall/after.rules", family)?);
    }
    push("firewall/squid/squid.conf".into(), 0o644, run("firewall/squid.conf", none.clone())?);
    push("audit/sandbox.rules".into(), 0o640, run("audit/sandbox.rules", none.clone())?);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::environment::Environment;
    use crate::lima::{LimaYaml, MountType, parse_strict};
    use crate::profile::{ProfileSpec, load::EMBEDDED};

    /// Render a profile given as text, with a temporary home and project folder.
    fn render_text(yaml: Option<&str>, name: &str) -> (Vec<Rendered>, Profile) {
        let home = tempfile::tempdir().unwrap();
        let project = home.path().join("project");
        std::fs::create_dir_all(home.path().join("data")).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        let env = Environment {
            home: home.path().to_path_buf(),
            cwd: project.clone(),
            config_dir: home.path().join(".config"),
            state_dir: home.path().join(".local/state"),
            profile: None,
        };
        let spec = match yaml {
            Some(text) => {
                let path = project.join("p.yaml");
                std::fs::write(&path, text).unwrap();
                ProfileSpec::Path(path)
            }
            None => ProfileSpec::Name(name.to_owned()),
        };
        let profile = crate::profile::resolve(&spec, &env).unwrap();
        (render(&profile).unwrap(), profile)
    }

    fn lima(files: &[Rendered]) -> LimaYaml {
        let file = files.iter().find(|f| f.rel_path.starts_with("lima")).expect("a Lima file");
        parse_strict(std::str::from_utf8(&file.bytes).unwrap()).expect("strict Lima model accepts the render")
    }

    /// The hardening every rendered Lima instance must have (lima.md §0, §5).
    fn assert_hardened(l: &LimaYaml, profile: &Profile) {
        let mounts = l.mounts.as_ref().unwrap();
        assert_eq!(mounts.len(), profile.workspaces.len(), "only declared workspaces are mounted");
        for (mount, ws) in mounts.iter().zip(&profile.workspaces) {
            assert_eq!(Path::new(&mount.location), ws.host);
            assert_ne!(Path::new(&mount.location), Path::new("~"));
            let writable = ws.mode == crate::profile::WorkspaceMode::Writable;
            assert_eq!(mount.writable, Some(writable), "{}", ws.name);
        }
        let expected_type = match profile.vm.vm_type {
            crate::profile::VmType::Vz => MountType::Virtiofs,
            crate::profile::VmType::Qemu => MountType::NineP,
        };
        assert_eq!(l.mount_type, Some(expected_type), "never reverse-sshfs");
        let ssh = l.ssh.as_ref().unwrap();
        assert_eq!(ssh.forward_agent, Some(false));
        assert_eq!(ssh.load_dot_ssh_pub_keys, Some(false));
        assert!(l.copy_to_host.is_none());
        assert!(l.networks.is_none() && l.env.is_none() && l.param.is_none() && l.base.is_none());
        let containerd = l.containerd.as_ref().unwrap();
        assert_eq!((containerd.system, containerd.user), (Some(false), Some(false)));
        assert_eq!(l.propagate_proxy_env, Some(false));
        for image in l.images.as_ref().unwrap() {
            assert!(image.digest.as_ref().is_some_and(|d| d.starts_with("sha256:") || d.starts_with("sha512:")));
        }
        let forwards = l.port_forwards.as_ref().unwrap();
        let last = forwards.last().unwrap();
        assert_eq!(last.ignore, Some(true));
        assert_eq!(last.guest_ip_must_be_zero, Some(false), "the ignore-all rule must not default to exact 0.0.0.0");
        assert_eq!(last.guest_ip, Some("0.0.0.0".parse().unwrap()));
        for rule in &forwards[..forwards.len() - 1] {
            assert_eq!(rule.host_ip, Some("127.0.0.1".parse().unwrap()), "forwards only to the host's loopback");
            assert_eq!(rule.guest_port, Some(profile.gateway.port));
        }
        let scripts: String = l.provision.as_ref().unwrap().iter().filter_map(|p| p.script.clone()).collect();
        assert!(scripts.contains("rm -f \"{{.Home}}/password\""));
    }

    #[test]
    fn every_embedded_profile_renders_a_hardened_strict_lima_instance() {
        for (name, _) in EMBEDDED {
            let (files, profile) = render_text(None, name);
            assert_hardened(&lima(&files), &profile);
        }
    }

    #[test]
    fn qemu_and_writable_workspaces_keep_the_hardening() {
        let yaml = "name: q\nextends: default\nvm: {vm_type: qemu}\nworkspaces:\n  - host: .\n  - {host: ../data, guest: /data, mode: writable}\n";
        let (files, profile) = render_text(Some(yaml), "");
        let l = lima(&files);
        assert_hardened(&l, &profile);
        assert!(l.vm_opts.is_none(), "no vz options for qemu");
    }

    #[test]
    fn ssh_backend_renders_no_lima_file() {
        let yaml = "name: s\nextends: default\nvm: {backend: ssh, ssh: {host: h.example, user: u}}\n";
        let (files, _) = render_text(Some(yaml), "");
        assert!(files.iter().all(|f| !f.rel_path.starts_with("lima")));
        assert!(files.iter().any(|f| f.rel_path == Path::new("ansible/inventory.yml")));
    }

    #[test]
    fn every_template_compiles() {
        let env = environment();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }
}
