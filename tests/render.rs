//! `sandbox render`: golden files for every example profile and fixture, determinism, `--check`,
//! and every rendered file checked by the real tool that will consume it (`systemd-analyze
//! verify`, `iptables-restore --test`, a JSON and YAML parser).

use std::path::{Path, PathBuf};

use crate::test::{HOME_PLACEHOLDER, Test, read_tree, redact_home};

/// A case: a name and how to point `sandbox` at its profile.
struct Case {
    name: String,
    /// A built-in profile name, or a fixture file copied into the profiles directory.
    profile: String,
    fixture: Option<PathBuf>,
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = ["default", "minimal", "strict-offline"]
        .into_iter()
        .map(|n| Case { name: n.into(), profile: n.into(), fixture: None })
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render");
    let mut fixtures: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("fixtures").map(|e| e.expect("entry").path()).collect();
    fixtures.sort();
    for case_dir in fixtures {
        let name = case_dir.file_name().expect("name").to_string_lossy().into_owned();
        cases.push(Case { profile: name.clone(), fixture: Some(case_dir.join("profile.yaml")), name });
    }
    cases
}

/// A test home with what the fixtures reference, and the case's profile installed.
fn setup(case: &Case) -> Test {
    let mut t = Test::new()
        .file("data/README", "reference data\n")
        .file("scratch/.keep", "")
        .file("roles/.keep", "")
        .file("keys/build_ed25519", "not a real key\n")
        .file("node-v24.19.0-linux-x64.tar.xz", "archive\n");
    if let Some(fixture) = &case.fixture {
        t = t.profile(&case.profile, &std::fs::read_to_string(fixture).expect("fixture"));
    }
    t
}

fn render_case(case: &Case) -> (std::collections::BTreeMap<String, Vec<u8>>, PathBuf, crate::test::Run) {
    let t = setup(case);
    let out = t.home().join("out");
    let run = t.args(["--profile", &case.profile, "render", "--out"]).args([out.display().to_string()]).run().success();
    let files = read_tree(&out);
    (files, out, run)
}

#[test]
fn golden_files_for_every_profile() {
    for case in cases() {
        let (files, _, run) = render_case(&case);
        assert!(files.contains_key(".sandbox-rendered"), "{}: no manifest", case.name);
        for (rel, bytes) in &files {
            let text = redact_home(&String::from_utf8(bytes.clone()).expect("utf-8"), &run.home);
            let snapshot = format!("{}__{}", case.name, rel.replace('/', "__"));
            insta::with_settings!({ snapshot_path => "snapshots/render", prepend_module_to_snapshot => false, omit_expression => true }, {
                insta::assert_snapshot!(snapshot, text);
            });
        }
    }
}

#[test]
fn output_is_byte_identical_across_runs() {
    for case in cases() {
        let (first, _, _) = render_case(&case);
        let (second, _, _) = render_case(&case);
        // The fake home differs between runs; compare with it redacted.
        let normalize = |files: std::collections::BTreeMap<String, Vec<u8>>| {
            files.into_iter().map(|(k, v)| (k, redact_paths(&String::from_utf8(v).expect("utf-8")))).collect::<Vec<_>>()
        };
        assert_eq!(normalize(first), normalize(second), "{}", case.name);
    }
}

fn redact_paths(text: &str) -> String {
    let re = regex::Regex::new(r"/tmp/sandbox-test-[A-Za-z0-9]+/home").expect("regex");
    re.replace_all(text, HOME_PLACEHOLDER).into_owned()
}

#[test]
fn modes_are_correct_and_nothing_is_world_readable_that_should_not_be() {
    use std::os::unix::fs::PermissionsExt;
    let case = &cases()[0];
    let (files, out, _run) = render_case(case);
    for rel in files.keys() {
        let mode = std::fs::metadata(out.join(rel)).expect("meta").permissions().mode() & 0o777;
        let expected = if rel.ends_with(".rules") || rel.ends_with("openclaw.json") { 0o640 } else { 0o644 };
        assert_eq!(mode, expected, "{rel}");
    }
}

#[test]
fn no_secret_value_is_ever_rendered() {
    let secret = "sk-ant-api03-THIS-IS-A-PLANTED-SECRET-VALUE-0123456789";
    let t = Test::new()
        .file(".config/sandbox/secrets.env", &format!("ANTHROPIC_API_KEY={secret}\nOPENCLAW_GATEWAY_TOKEN=tok-planted-123456\n"))
        .profile("s", "name: s\nextends: default\nsecrets:\n  sources:\n    - file: ~/.config/sandbox/secrets.env\n  required: [ANTHROPIC_API_KEY]\n");
    std::fs::set_permissions(
        t.home().join(".config/sandbox/secrets.env"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let out = t.home().join("out");
    let run = t
        .env("ANTHROPIC_API_KEY", secret)
        .args(["-p", "s", "render", "--out", &out.display().to_string()])
        .run()
        .success();
    for (rel, bytes) in read_tree(&out) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(secret) && !text.contains("tok-planted"), "{rel} contains a secret value");
    }
    let vars = std::fs::read_to_string(out.join("ansible/group_vars/sandbox.yml")).expect("vars");
    assert!(vars.contains(r#"sandbox_secret_names: ["OPENCLAW_GATEWAY_TOKEN", "ANTHROPIC_API_KEY"]"#), "{vars}");
    assert!(!run.stderr().contains(secret));
}

/// A filesystem root for `systemd-analyze verify --root`: the system's unit directory (for
/// targets like sysinit.target) and stand-ins for the executables the units name, which the
/// VM provides but this machine does not.
fn systemd_root(units: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("root");
    let r = root.path();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in walkdir::WalkDir::new(from).min_depth(1).max_depth(1) {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.path_is_symlink() {
                let link = std::fs::read_link(entry.path()).expect("link");
                std::os::unix::fs::symlink(link, target).expect("symlink");
            } else if entry.file_type().is_file() {
                std::fs::copy(entry.path(), target).expect("copy");
            }
        }
    };
    for system_dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        if Path::new(system_dir).is_dir() {
            copy(Path::new(system_dir), &r.join(system_dir.trim_start_matches('/')));
            break;
        }
    }
    copy(units, &r.join("etc/systemd/system"));
    for exe in ["opt/openclaw/node/bin/node", "usr/bin/inotifywait"] {
        let path = r.join(exe);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    root
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    for case in cases() {
        let (files, out, _run) = render_case(&case);
        let units: Vec<&String> = files.keys().filter(|k| k.starts_with("systemd/")).collect();
        assert!(units.iter().any(|u| u.ends_with("openclaw-gateway.service")), "{}", case.name);
        let root = systemd_root(&out.join("systemd"));
        let mut cmd = std::process::Command::new("systemd-analyze");
        cmd.arg("verify").arg(format!("--root={}", root.path().display()));
        for unit in &units {
            cmd.arg(format!("/etc/systemd/system/{}", unit.trim_start_matches("systemd/")));
        }
        let output = cmd.output().expect("systemd-analyze is installed (CI installs systemd)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // verify exits 0 on some problems it only warns about, so any output is a failure too.
        assert!(
            output.status.success() && stderr.trim().is_empty() && output.stdout.is_empty(),
            "{}: {units:?}\n{stderr}",
            case.name
        );
    }
}

#[test]
fn systemd_analyze_catches_a_broken_unit() {
    // Guards the test above: the same harness must fail on a bad unit.
    let (_, out, _run) = render_case(&cases()[0]);
    let unit = out.join("systemd/openclaw-gateway.service");
    let text = std::fs::read_to_string(&unit).expect("unit").replace("ProtectSystem=strict", "ProtectSystem=sideways");
    std::fs::write(&unit, text).expect("write");
    let root = systemd_root(&out.join("systemd"));
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("/etc/systemd/system/openclaw-gateway.service")
        .output()
        .expect("systemd-analyze");
    assert!(!String::from_utf8_lossy(&output.stderr).trim().is_empty());
}

#[test]
fn ufw_rules_load_in_iptables_restore() {
    for case in cases() {
        let (_, out, _run) = render_case(&case);
        for (tool, suffix) in [("iptables-restore", ""), ("ip6tables-restore", "6")] {
            // As ufw loads them: before, user, after, each with --noflush into one table, in a
            // network namespace of their own (after.rules jumps to a chain before.rules made).
            let files: Vec<String> = ["before", "user", "after"]
                .iter()
                .map(|f| out.join(format!("firewall/ufw/{f}{suffix}.rules")).display().to_string())
                .collect();
            let script = format!(
                "set -e; for f in {}; do {tool} --noflush \"$f\" || {{ echo \"in $f\" >&2; exit 1; }}; done; {} -S sandbox-deny",
                files.iter().map(|f| format!("'{f}'")).collect::<Vec<_>>().join(" "),
                tool.trim_end_matches("-restore"),
            );
            let output = std::process::Command::new("unshare")
                .args(["--net", "sh", "-c", &script])
                .output()
                .expect("unshare is installed (util-linux)");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{}: {suffix}: {}{stdout}",
                case.name,
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("--log-prefix \"[SANDBOX DENY] \""), "{}: {stdout}", case.name);
        }
    }
}

#[test]
fn proxy_config_parses_in_squid() {
    for case in cases() {
        let (_, out, _run) = render_case(&case);
        let conf = out.join("firewall/squid/squid.conf");
        let output = std::process::Command::new("squid")
            .args(["-k", "parse", "-f"])
            .arg(&conf)
            .output()
            .expect("squid is installed (CI installs it)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let problems: Vec<&str> =
            stderr.lines().filter(|l| ["ERROR", "WARNING", "FATAL", "Bungled"].iter().any(|w| l.contains(w))).collect();
        assert!(output.status.success() && problems.is_empty(), "{}: {stderr}", case.name);
    }
}

#[test]
fn web_egress_leaves_only_through_the_proxy() {
    let case = cases().into_iter().find(|c| c.name == "default").expect("case");
    let (_, out, _run) = render_case(&case);
    let before = std::fs::read_to_string(out.join("firewall/ufw/before.rules")).expect("before");
    let rules: Vec<&str> = before.lines().filter(|l| l.starts_with("-A")).collect();
    let position = |needle: &str| rules.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}"));
    // Only the proxy's user is let out on 80/443; the host comes after it, so even the proxy's
    // port is closed to everyone else; the provisioning port is closed before the loopback opens.
    assert!(
        rules
            .contains(&"-A ufw-before-output -p tcp -m multiport --dports 80,443 -m owner --uid-owner proxy -j ACCEPT")
    );
    assert!(position("--syn --dport 3129 -j sandbox-deny") < position("-o lo -j ACCEPT"));
    assert!(
        position("--syn --dport 3129 -m owner --uid-owner 0 -j ACCEPT")
            < position("--syn --dport 3129 -j sandbox-deny")
    );
    assert!(rules.contains(&"-A ufw-before-output -d 192.168.5.2 -j sandbox-deny"), "{before}");
    // The SSH session that enables the firewall comes from the host address, and connection
    // tracking picks it up mid-stream as NEW: sshd's replies pass before the host is denied.
    assert!(position("-p tcp --sport 22 ! --syn -j ACCEPT") < position("-d 192.168.5.2 -j sandbox-deny"));
    assert!(!before.contains("docker"), "the tool containers are rootless Podman's: {before}");
    let owners: Vec<&&str> = rules.iter().filter(|l| l.contains("--uid-owner") && l.ends_with("ACCEPT")).collect();
    assert_eq!(owners.len(), 3, "the proxy's user on the web, root and apt on the provisioning port: {owners:?}");
    assert!(owners.iter().all(|l| l.contains("--uid-owner proxy") || l.contains("--dport 3129")), "{owners:?}");
    let after = std::fs::read_to_string(out.join("firewall/ufw/after.rules")).expect("after");
    assert!(after.contains("-A ufw-after-output -j sandbox-deny"));
    let squid = std::fs::read_to_string(out.join("firewall/squid/squid.conf")).expect("squid");
    assert!(squid.contains(r"acl sandbox_allowed dstdom_regex -n -i ^api\.anthropic\.com\.?$"), "{squid}");
    let access: Vec<&str> = squid.lines().filter(|l| l.starts_with("http_access")).collect();
    assert_eq!(access.last(), Some(&"http_access deny all"));
    assert_eq!(access.iter().filter(|l| l.starts_with("http_access allow")).count(), 2, "{access:?}");
    // The proxy resolves names only at the resolvers the firewall lets DNS go to.
    assert!(squid.contains("\ndns_nameservers 1.1.1.1 9.9.9.9\n"), "{squid}");
}

#[test]
fn firewall_denies_by_default_and_allows_only_listed() {
    let case = cases().into_iter().find(|c| c.name == "ssh-backend").expect("case");
    let (_, out, _run) = render_case(&case);
    let defaults = std::fs::read_to_string(out.join("firewall/ufw/default-ufw")).expect("default");
    assert!(defaults.contains("DEFAULT_INPUT_POLICY=\"DROP\"") && defaults.contains("DEFAULT_OUTPUT_POLICY=\"DROP\""));
    let conf = std::fs::read_to_string(out.join("firewall/ufw/ufw.conf")).expect("conf");
    assert!(conf.contains("ENABLED=yes") && conf.contains("LOGLEVEL=low"));
    let v4 = std::fs::read_to_string(out.join("firewall/ufw/user.rules")).expect("v4");
    let accepts: Vec<&str> =
        v4.lines().filter(|l| l.starts_with("-A") && l.ends_with("-j ACCEPT") && !l.contains("limit-accept")).collect();
    assert_eq!(
        accepts,
        [
            // `vm.ssh.guest_port`, not the forwarded `port` 2222: the rule is read inside the guest.
            "-A ufw-user-input -p tcp --dport 22 -j ACCEPT",
            "-A ufw-user-output -p udp -d 10.20.0.2/32 --dport 53 -j ACCEPT",
            "-A ufw-user-output -p tcp -d 10.20.0.2/32 --dport 53 -j ACCEPT",
            "-A ufw-user-output -p tcp -d 10.20.0.0/16 --dport 5432 -j ACCEPT",
            "-A ufw-user-output -p udp -d 192.0.2.53/32 --dport 53 -j ACCEPT",
        ]
    );
    let v6 = std::fs::read_to_string(out.join("firewall/ufw/user6.rules")).expect("v6");
    assert!(v6.contains("-A ufw6-user-output -p tcp -d 2001:db8::/32 --dport 443 -j ACCEPT"), "{v6}");
}

#[test]
fn gateway_config_and_ansible_files_parse() {
    for case in cases() {
        let (files, _, _run) = render_case(&case);
        let json: serde_json::Value = serde_json::from_slice(&files["gateway/openclaw.json"]).expect("valid JSON");
        assert_eq!(json["gateway"]["bind"], "loopback", "{}", case.name);
        assert_eq!(json["gateway"]["auth"]["mode"], "token");
        assert!(
            json["gateway"]["auth"]["token"].as_str().expect("token").starts_with("${"),
            "token must reference a secret name"
        );
        // The gateway-side network tools, unless `bridge_tools` lists them (qemu-multi: web_fetch).
        let denied = if case.name == "qemu-multi" { vec!["web_search"] } else { vec!["web_fetch", "web_search"] };
        assert_eq!(json["tools"]["deny"], serde_json::json!(denied), "{}", case.name);
        let defaults = &json["agents"]["defaults"];
        // OpenClaw would seed AGENTS.md and friends into the workspace: the user's project.
        assert_eq!(defaults["skipBootstrap"], true, "{}", case.name);
        assert_eq!(defaults["sandbox"]["backend"], "podman", "{}", case.name);
        let docker = &defaults["sandbox"]["docker"];
        // OpenClaw refuses a tmpfs over Podman's init at /run/podman-init; its defaults skip /run.
        assert!(docker.get("tmpfs").is_none(), "{}", case.name);
        assert_eq!(docker["network"], "none", "{}", case.name);
        assert_eq!(docker["capDrop"], serde_json::json!(["ALL"]));
        assert_eq!(docker["readOnlyRoot"], true);
        let text = String::from_utf8_lossy(&files["gateway/openclaw.json"]);
        assert!(!text.contains("dangerously"), "{}", case.name);
        for yaml in ["ansible/inventory.yml", "ansible/group_vars/sandbox.yml"] {
            let _: serde_yaml::Value =
                serde_yaml::from_slice(&files[yaml]).unwrap_or_else(|e| panic!("{}: {yaml}: {e}", case.name));
        }
    }
}

#[test]
fn a_bridge_network_is_slirp4netns_with_the_proxy_on_its_host_loopback() {
    let t = Test::new().profile(
        "net",
        "name: net\nextends: default\ntool_sandbox:\n  network: bridge\n  bridge_tools: [gh, web_fetch]\n",
    );
    let out = t.home().join("out");
    let _run = t.args(["-p", "net", "render", "--out", &out.display().to_string()]).run().success();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("gateway/openclaw.json")).expect("config")).expect("JSON");
    let docker = &json["agents"]["defaults"]["sandbox"]["docker"];
    assert_eq!(docker["network"], "slirp4netns:cidr=10.41.0.0/24,allow_host_loopback=true");
    assert_eq!(docker["env"]["HTTPS_PROXY"], "http://10.41.0.2:3128");
    assert_eq!(json["tools"]["deny"], serde_json::json!(["web_search"]));
    let squid = std::fs::read_to_string(out.join("firewall/squid/squid.conf")).expect("squid");
    assert!(squid.contains("\nhttp_port 127.0.0.1:3128 name=agent\n"), "{squid}");
}

#[test]
fn check_reports_differences_and_stale_files() {
    let t = Test::new()
        .profile(
            "two",
            "name: two\nextends: default\nworkspaces:\n  - host: ~/project\n  - host: ~/data\n    guest: /data\n",
        )
        .file("data/x", "x");
    let home = t.home();
    let out = home.join("out");
    let out_s = out.display().to_string();
    let _run = t.args(["-p", "two", "render", "--out", &out_s]).run().success();
    assert!(out.join("systemd/data.mount").exists());

    // Unchanged: exit 0.
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"));
        cmd.args(args)
            .current_dir(home.join("project"))
            .env_clear()
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("NO_COLOR", "1");
        cmd.output().expect("run")
    };
    assert_eq!(run(&["-p", "two", "render", "--check", &out_s]).status.code(), Some(0));

    // A hand edit shows as a diff and exit 4.
    let unit = out.join("systemd/openclaw-gateway.service");
    let edited = std::fs::read_to_string(&unit).expect("unit").replace("RestartSec=5", "RestartSec=1");
    std::fs::write(&unit, edited).expect("write");
    let output = run(&["-p", "two", "render", "--check", &out_s]);
    assert_eq!(output.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("-RestartSec=1") && stdout.contains("+RestartSec=5"), "{stdout}");

    // Dropping the second workspace makes its unit stale; --out removes it.
    std::fs::write(
        home.join(".config/sandbox/profiles/two.yaml"),
        "name: two\nextends: default\nworkspaces:\n  - host: ~/project\n",
    )
    .expect("write");
    let output = run(&["-p", "two", "render", "--check", &out_s]);
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stdout).contains("stale: systemd/data.mount"));
    assert_eq!(run(&["-p", "two", "render", "--out", &out_s]).status.code(), Some(0));
    assert!(!out.join("systemd/data.mount").exists());
    assert_eq!(run(&["-p", "two", "render", "--check", &out_s]).status.code(), Some(0));
    // Files sandbox did not write are never touched.
    std::fs::write(out.join("mine.txt"), "keep").expect("write");
    assert_eq!(run(&["-p", "two", "render", "--out", &out_s]).status.code(), Some(0));
    assert!(out.join("mine.txt").exists());
}

#[test]
fn render_without_out_lists_files_and_writes_nothing() {
    let t = Test::new();
    let project = t.project();
    let run = t.args(["render"]).run().success().stdout_contains("lima/default.yaml").stdout_contains("0640");
    let run = run.stderr_contains("nothing written");
    assert_eq!(std::fs::read_dir(project).expect("dir").count(), 0);
    drop(run);
}

#[test]
fn out_pointing_at_a_file_is_a_clear_error() {
    let t = Test::new().file("project/out", "a file");
    t.args(["render", "--out", "out"]).run().status(1).stderr_contains("exists and is not a directory");
}
