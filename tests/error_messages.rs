//! Error text is part of the interface: the key messages, verbatim, and the exit codes.

use crate::test::Test;

#[test]
fn all_profile_problems_at_once_with_positions() {
    let profile = "\
name: Bad_Name
extends: default
vm:
  cpu: 4
  memory: 8 parsecs
  arch: arm64
workspaces:
  - host: /nonexistent
    guest: /w
    mod: overlay
network:
  egress:
    allow_domains: [\"*\", ok.example.com]
    allow: [{cidr: 10.0.0.1/8, port: 5432}]
gateway:
  version: latest
  bind: public
secrets:
  sources:
    - envv: [A]
";
    let run = Test::new().profile("bad", profile).args(["-p", "bad", "profile", "validate"]).run().status(1);
    insta::assert_snapshot!("invalid_profile", run.stderr());
}

#[test]
fn not_found_syntax_and_cycle() {
    Test::new().args(["-p", "nope", "render"]).run().status(1).stderr_contains(
        "error: profile `nope` not found (looked for `[HOME]/.config/sandbox/profiles/nope.yaml`)\n  help: create it with `sandbox init --name nope`, name a file by its path (`--profile ./nope`: a bare name is never a file), or list profiles with `sandbox profile list`",
    );
    Test::new().profile("syn", "vm:\n  cpus: [1,\n").args(["-p", "syn", "render"]).run().status(1).stderr_contains(
        "error: [HOME]/.config/sandbox/profiles/syn.yaml:3:1: invalid YAML: did not find expected node content",
    );
    Test::new()
        .profile("a", "name: a\nextends: b\n")
        .profile("b", "name: b\nextends: a\n")
        .args(["-p", "a", "render"])
        .run()
        .status(1)
        .stderr_contains("[HOME]/.config/sandbox/profiles/b.yaml:2:1: `extends` forms a cycle: [HOME]/.config/sandbox/profiles/a.yaml -> [HOME]/.config/sandbox/profiles/b.yaml -> [HOME]/.config/sandbox/profiles/a.yaml");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    Test::new().args(["render", "--frobnicate"]).run().status(2).stderr_contains("unexpected argument '--frobnicate'");
    Test::new().args(["render", "--out", "a", "--check", "b"]).run().status(2);
    for flag in ["--ssh-timeout", "--gateway-timeout"] {
        Test::new()
            .args(["up", flag, "0"])
            .run()
            .status(2)
            .stderr_contains(&format!("{flag} must be at least 1 second"));
    }
    Test::new().args(["--help"]).run().success().stdout_contains("Render every file the VM needs");
}

#[test]
fn no_backtrace_or_panic_text_on_errors() {
    let run = Test::new()
        .env("RUST_BACKTRACE", "1")
        .profile("bad", "vm: {cpus: many}\n")
        .args(["-p", "bad", "render"])
        .run()
        .status(1);
    let stderr = run.stderr();
    assert!(!stderr.contains("panicked") && !stderr.contains("stack backtrace"), "{stderr}");
}
