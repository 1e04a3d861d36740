//! Profiles: lookup order, `extends`, validation rules, `profile list|show|validate`.

use crate::test::Test;

#[test]
fn default_profile_works_with_no_profile_file() {
    Test::new()
        .args(["profile", "validate"])
        .run()
        .success()
        .stderr_contains("profile `default` is valid (<embedded>/profiles/default.yaml)");
}

#[test]
fn default_profile_refuses_to_mount_the_home_directory() {
    Test::new().cwd("").args(["profile", "validate"]).run().status(1).stderr_contains(
        "<embedded>/profiles/default.yaml:25:5: error: `workspaces[0].host`: `[HOME]` is your home directory",
    );
}

#[test]
fn named_profile_from_flag_env_and_config_dir() {
    let yaml = "name: work\nextends: default\nvm: {cpus: 3}\n";
    Test::new()
        .profile("work", yaml)
        .args(["-p", "work", "profile", "show"])
        .run()
        .success()
        .stdout_contains("cpus: 3");
    Test::new()
        .profile("work", yaml)
        .env("SANDBOX_PROFILE", "work")
        .args(["profile", "show"])
        .run()
        .success()
        .stdout_contains("cpus: 3");
    // --profile wins over the environment.
    Test::new()
        .profile("work", yaml)
        .env("SANDBOX_PROFILE", "work")
        .args(["-p", "minimal", "profile", "show"])
        .run()
        .success()
        .stdout_contains("cpus: 2");
    // A file in the config dir shadows a built-in profile of the same name.
    Test::new()
        .profile("minimal", "name: minimal\nextends: default\nvm: {cpus: 7}\n")
        .args(["-p", "minimal", "profile", "show"])
        .run()
        .success()
        .stdout_contains("cpus: 7");
}

#[test]
fn profile_list_shows_files_and_builtins() {
    let run = Test::new().profile("alpha", "name: alpha\n").args(["profile", "list"]).run().success();
    let stdout = run.stdout();
    assert!(stdout.starts_with("alpha\t"), "{stdout}");
    for builtin in ["default\t(built in)", "minimal\t(built in)", "strict-offline\t(built in)"] {
        assert!(stdout.contains(builtin), "{stdout}");
    }
}

#[test]
fn extends_merges_maps_and_replaces_lists() {
    let base = "name: base\nextends: default\nvm: {cpus: 6, memory: 16GiB}\nnetwork:\n  egress:\n    allow_domains: [a.example.com, b.example.com]\n";
    let child = "name: child\nextends: base\nvm: {cpus: 2}\nnetwork:\n  egress:\n    allow_domains: [c.example.com]\n";
    let run = Test::new()
        .profile("base", base)
        .profile("child", child)
        .args(["-p", "child", "profile", "show", "--format", "json"])
        .run()
        .success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(json["name"], "child");
    assert_eq!(json["vm"]["cpus"], 2);
    assert_eq!(json["vm"]["memory"], "16GiB", "maps merge");
    assert_eq!(json["network"]["egress"]["allow_domains"], serde_json::json!(["c.example.com"]), "lists replace");
    assert!(
        json["vm"]["image"]["x86_64"]["digest"].as_str().expect("digest").starts_with("sha256:"),
        "inherited from default"
    );
}

#[test]
fn extends_path_is_relative_to_the_extending_file_and_null_resets() {
    Test::new()
        .file("dotfiles/base.yaml", "name: base\nextends: default\ngateway: {port: 20000}\n")
        .file("project/sandbox.yaml", "name: proj\nextends: ../dotfiles/base.yaml\ngateway: {port: null}\n")
        .args(["-p", "sandbox.yaml", "profile", "show"])
        .run()
        .success()
        .stdout_contains("port: 18789");
}

#[test]
fn show_output_is_itself_a_valid_profile() {
    let t = Test::new();
    let home = t.home();
    let run = t.args(["-p", "strict-offline", "profile", "show"]).run().success();
    std::fs::write(home.join("project/resolved.yaml"), run.stdout()).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["-p", "resolved.yaml", "profile", "show"])
        .current_dir(home.join("project"))
        .env_clear()
        .env("HOME", &home)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), run.stdout(), "show is a fixed point");
}

#[test]
fn credential_folders_and_home_ancestors_are_never_mounted() {
    for (host, needle) in [
        ("~/.ssh", "inside `~/.ssh`"),
        ("~/.aws/sub", "inside `~/.aws`"),
        ("~/.config", "inside `~/.config`"),
        ("~/..", "contains your home directory"),
        ("/", "would expose the whole host"),
    ] {
        let t = Test::new().file(".ssh/id", "k").file(".aws/sub/c", "k");
        let yaml = format!("name: x\nextends: default\nworkspaces:\n  - host: {host}\n");
        t.profile("x", &yaml).args(["-p", "x", "profile", "validate"]).run().status(1).stderr_contains(needle);
    }
}

#[test]
fn secrets_file_rules() {
    // Readable by others: a warning, still valid.
    let t = Test::new()
        .file("secrets/app.env", "A=1\n")
        .profile("s", "name: s\nextends: default\nsecrets:\n  sources: [{file: ~/secrets/app.env}]\n");
    std::fs::set_permissions(t.home().join("secrets/app.env"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    t.args(["-p", "s", "profile", "validate"]).run().success().stderr_contains("warning: `secrets.sources[0].file`: secrets file `[HOME]/secrets/app.env` is readable by other users (mode 644)").stderr_contains("chmod 600");
    // Inside a mounted workspace: an error.
    Test::new()
        .file("project/.env", "A=1\n")
        .profile("s", "name: s\nextends: default\nworkspaces: [{host: ~/project}]\nsecrets:\n  sources: [{file: ~/project/.env}]\n")
        .args(["-p", "s", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("workspace `workspace` mounts the folder that holds secrets file");
    // Two keys in one source item.
    Test::new()
        .profile("s", "name: s\nextends: default\nsecrets:\n  sources: [{env: [A], exec: [op]}]\n")
        .args(["-p", "s", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("exactly one of `file`, `env` or `exec`");
}

#[test]
fn guest_paths_must_not_overlap_or_hit_system_dirs() {
    Test::new()
        .file("data/x", "")
        .profile("g", "name: g\nextends: default\nworkspaces:\n  - {host: ~/project, guest: /work}\n  - {host: ~/data, guest: /work/data}\n  - {host: ~/data, guest: /usr/local/x}\n")
        .args(["-p", "g", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("`/work/data` overlaps workspace `work` at `/work`")
        .stderr_contains("`/usr/local/x` is a system directory of the VM");
}

#[test]
fn writable_workspace_and_bridge_tools_warn() {
    Test::new()
        .profile("w", "name: w\nextends: default\nworkspaces: [{host: ~/project, mode: writable}]\ntool_sandbox: {bridge_tools: [web_fetch]}\n")
        .args(["-p", "w", "profile", "validate"])
        .run()
        .success()
        .stderr_contains("warning: `workspaces[0].mode`: `writable` lets the VM change host files directly")
        .stderr_contains("warning: `tool_sandbox.bridge_tools`: web_fetch get network access");
}

#[test]
fn gh_needs_a_container_network_and_browser_has_no_effect() {
    Test::new()
        .profile("g", "name: g\nextends: default\ntool_sandbox: {bridge_tools: [gh, browser]}\n")
        .args(["-p", "g", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains(
            "error: `tool_sandbox.bridge_tools`: `gh` runs inside the tool container, which has no network",
        )
        .stderr_contains("help: set `tool_sandbox.network: bridge`")
        .stderr_contains("warning: `tool_sandbox.bridge_tools`: `browser` has no effect");
    Test::new()
        .profile("g", "name: g\nextends: default\ntool_sandbox: {network: bridge, bridge_tools: [gh]}\n")
        .args(["-p", "g", "profile", "validate"])
        .run()
        .success();
}

#[test]
fn ranges_are_checked() {
    Test::new()
        .profile("r", "name: r\nextends: default\nvm: {cpus: 0, memory: 100MiB, disk: 1TiB}\nsync: {max_file_size: 1GiB, max_total_size: 10MiB}\n")
        .args(["-p", "r", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("`vm.cpus`: 0 CPUs is outside 1 to 64")
        .stderr_contains("`vm.memory`: 100MiB is outside the supported range 1GiB to 512GiB")
        .stderr_contains("`sync.max_file_size`: 1GiB is more than `max_total_size` (10MiB)");
}

#[test]
fn egress_rules_that_bypass_the_proxy_warn_and_the_host_address_is_checked() {
    let profile = "name: n\nextends: default\nnetwork:\n  host_address: 10.0.2.2\n  egress:\n    allow:\n      - {cidr: 10.1.0.0/16}\n      - {cidr: 10.2.0.0/16, port: 443}\n      - {cidr: 10.3.0.0/16, port: 5432}\n";
    let run = Test::new().profile("n", profile).args(["-p", "n", "profile", "validate"]).run().success();
    let stderr = run.stderr();
    assert!(stderr.contains("`network.egress.allow[0]`: `10.1.0.0/16` is open on every port to every program in the VM, past the egress proxy"), "{stderr}");
    assert!(
        stderr.contains(
            "`network.egress.allow[1]`: `10.2.0.0/16` port 443 lets every program in the VM reach it directly"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("allow[2]"), "{stderr}");
    let no_dns = "name: s\nextends: default\nvm: {backend: ssh, ssh: {host: box.example.net, user: admin}}\nnetwork: {dns: []}\n";
    Test::new()
        .profile("s", no_dns)
        .args(["-p", "s", "profile", "validate"])
        .run()
        .success()
        .stderr_contains("the VM may query no DNS server, so the egress proxy cannot resolve `allow_domains`");
    let doctor = Test::new().profile("n", profile).args(["-p", "n", "doctor"]).run();
    assert!(doctor.stdout().contains("is open on every port to every program in the VM"), "{}", doctor.stdout());
    Test::new()
        .profile("h", "name: h\nextends: default\nnetwork: {host_address: host.lima.internal}\n")
        .args(["-p", "h", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("`network.host_address`: `host.lima.internal` is not an IP address");
}

#[test]
fn unreadable_and_malformed_files_are_clear_errors() {
    Test::new()
        .args(["-p", "./missing.yaml", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("error: cannot read profile `[HOME]/project/./missing.yaml`: No such file or directory");
    Test::new()
        .file("project/dir.yaml/x", "")
        .args(["-p", "dir.yaml", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("cannot read profile");
    Test::new()
        .file("project/list.yaml", "- a\n- b\n")
        .args(["-p", "list.yaml", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("list.yaml:1:1: invalid YAML: a profile must be a YAML mapping");
    Test::new()
        .file("project/bin.yaml", "name: \u{0}\n")
        .args(["-p", "bin.yaml", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("invalid YAML");
    Test::new()
        .file("project/ext.yaml", "name: e\nextends: [a]\n")
        .args(["-p", "ext.yaml", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("`extends` must be a profile name or a path");
}

#[test]
fn gateway_source_is_checked() {
    let t = Test::new().file("proj/.keep", "").file("scratch/.keep", "");
    t.profile(
        "src",
        "name: src\nextends: default\n\
         workspaces: [{host: ~/proj, name: proj}, {host: ~/scratch, name: scratch, guest: /scratch, mode: writable}]\n\
         gateway: {install: workspace, source: {workspace: nope, path: ../up, build: [[pnpm, build], []]}}\n",
    )
    .args(["-p", "src", "profile", "validate"])
    .run()
    .status(1)
    .stderr_contains("`gateway.source.workspace`: no workspace is named `nope`")
    .stderr_contains("use one of the profile's workspaces: proj, scratch")
    .stderr_contains("`gateway.source.path`: `../up` is not a folder inside the workspace")
    .stderr_contains("`gateway.source.build[1]`: an empty command");
    let t = Test::new().file("proj/.keep", "").file("scratch/.keep", "");
    t.profile(
        "w",
        "name: w\nextends: default\n\
         workspaces: [{host: ~/proj, name: proj}, {host: ~/scratch, name: scratch, guest: /scratch, mode: writable}]\n\
         gateway: {install: workspace, source: {workspace: scratch}}\n",
    )
    .args(["-p", "w", "profile", "validate"])
    .run()
    .status(1)
    .stderr_contains(
        "`gateway.source.workspace`: workspace `scratch` is writable: the agent could change the gateway's code",
    );
    let t = Test::new().file("proj/sub/.keep", "");
    t.profile(
        "nested",
        "name: nested\nextends: default\n\
         workspaces: [{host: ~/proj, name: proj}, {host: ~/proj/sub, name: sub, guest: /sub, mode: writable}]\n\
         gateway: {install: workspace, source: {workspace: proj}}\n",
    )
    .args(["-p", "nested", "profile", "validate"])
    .run()
    .status(1)
    .stderr_contains(
        "`gateway.source.workspace`: workspace `proj` shares host files with the writable workspace `sub`",
    );
    Test::new()
        .profile("n", "name: n\nextends: default\ngateway: {source: {workspace: workspace}}\n")
        .args(["-p", "n", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains("`gateway.source`: `source` is only used by `install: workspace`");
    let t = Test::new().file("proj/.keep", "");
    t.profile(
        "ok",
        "name: ok\nextends: default\nworkspaces: [{host: ~/proj, name: proj}]\n\
         gateway: {install: workspace, source: {workspace: proj}}\n",
    )
    .args(["-p", "ok", "profile", "validate"])
    .run()
    .success();
}

#[test]
fn gateway_install_source_and_tool_image_are_checked() {
    Test::new()
        .profile(
            "g",
            "name: g\nextends: default\ngateway: {install: workspace, registry: \"https://me:pw@npm.example.com/\"}\n\
             tool_sandbox: {rootfs: ~/missing.tar.gz, mirror: ftp.example.com}\n",
        )
        .args(["-p", "g", "profile", "validate"])
        .run()
        .status(1)
        .stderr_contains(
            "`gateway.install`: `install: workspace` needs `gateway.source` to say which checkout to build",
        )
        .stderr_contains("`gateway.registry`: the URL carries credentials")
        .stderr_contains("`tool_sandbox.rootfs`: `[HOME]/missing.tar.gz` does not exist")
        .stderr_contains("`tool_sandbox.mirror`: `ftp.example.com` is not an http(s) URL");
    Test::new()
        .file("rootfs.tar.gz", "not really an archive; validate only checks it is a file")
        .profile(
            "ok",
            "name: ok\nextends: default\ngateway: {registry: \"https://npm.example.com/\"}\ntool_sandbox: {rootfs: ~/rootfs.tar.gz}\n",
        )
        .args(["-p", "ok", "profile", "validate"])
        .run()
        .success();
}
