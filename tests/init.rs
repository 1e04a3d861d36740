//! `sandbox init`: the profile it writes from flags and through a real terminal (tmux), and
//! what it refuses: no terminal without `--non-interactive`, replacing a profile without
//! `--force`, answers that do not make a valid profile, names that are not file names.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::test::{Test, Tmux, home_env, read_tree, redact_home};

const WEB_ARGS: [&str; 13] = [
    "init",
    "--non-interactive",
    "--name",
    "web",
    "--cpus",
    "2",
    "--memory",
    "4GiB",
    "--allow-domain",
    "api.anthropic.com",
    "--secrets-env",
    "ANTHROPIC_API_KEY",
    "--workspace",
];

/// The profile `WEB_ARGS` writes, except the `gateway.version` line (checked on its own so the
/// test does not pin the default release).
const WEB_PROFILE: &str = r#"# Sandbox profile "web", written by `sandbox init`.
# Every field and its default is documented in docs/profile.md; anything not written here
# comes from the built-in `default` profile (see `sandbox profile show --profile default`).
name: "web"
extends: default

vm:
  # Virtual CPUs, memory and disk of the VM.
  cpus: 2
  memory: "4GiB"
  disk: "50GiB"

# Host folders the agent can read. `overlay` (the default) mounts them read-only with a
# writable layer inside the VM: changes reach these folders only through `sandbox sync`.
workspaces:
  - host: "~/project"
    guest: "/workspace"
    mode: overlay

network:
  egress:
    # The only domains the VM may reach (`*.example.com` covers subdomains).
    allow_domains:
      - "api.anthropic.com"

gateway:
  # The OpenClaw release to install (pinned).
  version: [VERSION]

# Where secret values come from. Only names are ever written into the VM's config; values
# travel over SSH into a root-only file.
secrets:
  sources:
    - env: ["ANTHROPIC_API_KEY"]
"#;

fn profiles_dir(home: &Path) -> PathBuf {
    home.join(".config/sandbox/profiles")
}

#[track_caller]
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Run `sandbox ARGS` again in an existing fake home (cwd `home/project`).
fn sandbox_in(home: &Path, args: &[&str]) -> Output {
    crate::test::sandbox_in(home, &home.join("project"), args, &[])
}

#[track_caller]
fn expect_success(output: &Output, home: &Path) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "--- stdout\n{stdout}\n--- stderr\n{}",
        redact_home(&String::from_utf8_lossy(&output.stderr), home)
    );
    stdout
}

/// Replace the value of the `  version: "X.Y.Z"` line with `[VERSION]` after checking its shape.
#[track_caller]
fn mask_version(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("  version: ") {
            Some(v) => {
                let bare = v.trim_matches('"');
                assert!(
                    v.starts_with('"')
                        && bare.split('.').count() == 3
                        && bare.split('.').all(|p| p.parse::<u32>().is_ok()),
                    "gateway version {v:?} is not a quoted exact version"
                );
                "  version: [VERSION]".to_owned()
            }
            None => line.to_owned(),
        })
        .map(|line| line + "\n")
        .collect()
}

#[test]
fn non_interactive_writes_a_commented_profile_that_validates() {
    let t = Test::new();
    let project = t.project().display().to_string();
    let run = t.args(WEB_ARGS).args([&project]).run().success();
    assert_eq!(run.stdout(), "");
    assert_eq!(run.stderr(), "wrote [HOME]/.config/sandbox/profiles/web.yaml\n");

    let text = read(&profiles_dir(&run.home).join("web.yaml"));
    similar_asserts(&mask_version(&text), WEB_PROFILE);

    let validate = sandbox_in(&run.home, &["--profile", "web", "profile", "validate"]);
    expect_success(&validate, &run.home);
    let message = redact_home(&String::from_utf8_lossy(&validate.stderr), &run.home);
    assert!(message.starts_with("profile `web` is valid ([HOME]/.config/sandbox/profiles/web.yaml <- "), "{message}");

    let shown = expect_success(&sandbox_in(&run.home, &["--profile", "web", "profile", "show"]), &run.home);
    let shown = redact_home(&shown, &run.home);
    for needle in [
        "\nvm:\n  backend: lima\n  cpus: 2\n  memory: 4GiB\n  disk: 50GiB\n",
        "  host: [HOME]/project\n  guest: /workspace\n",
        // The list replaces the default one; it is not merged with it.
        "    allow_domains:\n    - api.anthropic.com\n    allow:",
        "ANTHROPIC_API_KEY",
    ] {
        assert!(shown.contains(needle), "`profile show` lacks {needle:?}:\n{shown}");
    }
}

#[test]
fn non_interactive_defaults_come_from_the_current_folder() {
    let run = Test::new().args(["init", "--non-interactive"]).run().success();
    assert_eq!(run.stderr(), "wrote [HOME]/.config/sandbox/profiles/project.yaml\n");
    let text = read(&profiles_dir(&run.home).join("project.yaml"));
    for needle in [
        "name: \"project\"\n",
        "  cpus: 4\n  memory: \"8GiB\"\n  disk: \"50GiB\"\n",
        "  - host: \"~/project\"\n    guest: \"/workspace\"\n",
        "      - \"api.anthropic.com\"\n      - \"api.openai.com\"\n      - \"registry.npmjs.org\"\n      - \"github.com\"\n      - \"api.github.com\"\n",
    ] {
        assert!(text.contains(needle), "profile lacks {needle:?}:\n{text}");
    }
    assert!(!text.contains("secrets:"), "no secrets were asked for:\n{text}");
    expect_success(&sandbox_in(&run.home, &["--profile", "project", "profile", "validate"]), &run.home);
}

#[test]
fn non_interactive_second_workspace_with_guest_path_and_secrets_file() {
    let t = Test::new().file("lib/README", "lib\n").file(".config/sandbox/secrets.env", "ANTHROPIC_API_KEY=x\n");
    let run = t
        .args(["init", "--non-interactive", "--name", "two", "--workspace", ".", "--workspace", "../lib:/code/lib"])
        .args(["--secrets-file", "~/.config/sandbox/secrets.env", "--gateway-version", "2026.1.2"])
        .run()
        .success();
    let text = read(&profiles_dir(&run.home).join("two.yaml"));
    for needle in [
        "workspaces:\n  - host: \"~/project\"\n    guest: \"/workspace\"\n    mode: overlay\n  - host: \"~/lib\"\n    guest: \"/code/lib\"\n    mode: overlay\n",
        "  version: \"2026.1.2\"\n",
        "secrets:\n  sources:\n    - file: \"~/.config/sandbox/secrets.env\"\n",
    ] {
        assert!(text.contains(needle), "profile lacks {needle:?}:\n{text}");
    }
    expect_success(&sandbox_in(&run.home, &["--profile", "two", "profile", "validate"]), &run.home);
}

#[test]
fn without_a_terminal_init_refuses_and_points_at_non_interactive() {
    // Test::run gives the binary pipes, not a terminal.
    let run = Test::new().args(["init", "--name", "web"]).stdin(b"web\n\n\n").run().status(1);
    assert_eq!(run.stdout(), "");
    assert_eq!(
        run.stderr(),
        "error: `sandbox init` needs a terminal to ask questions\n  help: run it in a terminal, or pass `--non-interactive` with `--name`, `--workspace`, ... (see `sandbox init --help`)\n"
    );
    assert_eq!(read_tree(&run.home), Default::default(), "nothing may be written");
}

#[test]
fn an_existing_profile_is_kept_without_force_and_backed_up_with_it() {
    const OLD: &str = "# hand-written, keep me\nname: web\nextends: default\n";
    let t = Test::new().profile("web", OLD);
    let project = t.project().display().to_string();
    let run = t.args(WEB_ARGS).args([&project]).run().status(1);
    assert_eq!(
        run.stderr(),
        "error: profile `[HOME]/.config/sandbox/profiles/web.yaml` already exists\n  help: pass `--force` to replace it (a backup is kept), or choose another `--name`\n"
    );
    let dir = profiles_dir(&run.home);
    assert_eq!(read(&dir.join("web.yaml")), OLD);
    assert_eq!(names_in(&dir), ["web.yaml"]);

    let mut args: Vec<&str> = WEB_ARGS.to_vec();
    args.extend([project.as_str(), "--force"]);
    let first = sandbox_in(&run.home, &args);
    expect_success(&first, &run.home);
    assert_eq!(
        redact_home(&String::from_utf8_lossy(&first.stderr), &run.home),
        "kept the previous profile as [HOME]/.config/sandbox/profiles/web.yaml.bak.1\nwrote [HOME]/.config/sandbox/profiles/web.yaml\n"
    );
    let replaced = read(&dir.join("web.yaml"));
    similar_asserts(&mask_version(&replaced), WEB_PROFILE);
    assert_eq!(read(&dir.join("web.yaml.bak.1")), OLD);

    // A second --force keeps the first backup and adds the next one.
    *args.iter_mut().find(|a| **a == "2").expect("--cpus 2") = "3";
    let second = sandbox_in(&run.home, &args);
    expect_success(&second, &run.home);
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("kept the previous profile as ")
            && String::from_utf8_lossy(&second.stderr).contains("web.yaml.bak.2\n"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(read(&dir.join("web.yaml.bak.1")), OLD);
    assert_eq!(read(&dir.join("web.yaml.bak.2")), replaced);
    assert!(read(&dir.join("web.yaml")).contains("  cpus: 3\n"));
    assert_eq!(names_in(&dir), ["web.yaml", "web.yaml.bak.1", "web.yaml.bak.2"], "no temporary files are left");
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read profiles dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_invalid_size_is_reported_and_nothing_is_written() {
    let run = Test::new().args(["init", "--non-interactive", "--name", "web", "--memory", "8parsecs"]).run().status(1);
    assert_eq!(
        run.stderr(),
        "error: the answers do not make a valid profile:\n\
         [HOME]/.config/sandbox/profiles/web.yaml:10:3: error: `vm.memory`: `8parsecs` has an unknown unit; use B, KiB, MiB, GiB or TiB\n  \
         help: write a whole number and a unit, e.g. `8GiB`\n  \
         help: run `sandbox init` again with corrected answers\n"
    );
    assert_eq!(read_tree(&run.home), Default::default(), "nothing may be written");
}

#[test]
fn a_missing_workspace_is_reported_and_nothing_is_written() {
    let run = Test::new()
        .args(["init", "--non-interactive", "--name", "web", "--workspace", "../missing"])
        .run()
        .status(1)
        .stderr_contains("error: the answers do not make a valid profile:\n")
        .stderr_contains(
            "error: `workspaces[0].host`: `[HOME]/project/../missing` cannot be used: No such file or directory",
        )
        .stderr_contains("help: create the folder or fix the path\n");
    assert_eq!(read_tree(&run.home), Default::default(), "nothing may be written");
}

#[test]
fn several_invalid_answers_are_reported_together() {
    let run = Test::new()
        .args(["init", "--non-interactive", "--name", "web", "--cpus", "0", "--allow-domain", "not a domain"])
        .args(["--secrets-env", "BAD NAME", "--gateway-version", "latest"])
        .run()
        .status(1);
    let stderr = run.stderr();
    for key in ["`vm.cpus`", "`network.egress.allow_domains[0]`", "`secrets.sources[0].env[0]`", "`gateway.version`"] {
        assert!(stderr.contains(key), "stderr lacks {key}:\n{stderr}");
    }
    assert_eq!(read_tree(&run.home), Default::default(), "nothing may be written");
}

/// The name becomes a file name: it must not reach outside the profiles directory (it used to,
/// via a YAML comment that hid the rest from validation), nor shadow the `default` it extends
/// (that made every profile's `extends` chain a cycle).
#[test]
fn names_that_are_not_plain_profile_names_are_refused() {
    for (name, shown, reason) in [
        (
            "ok #/../../../x",
            "ok #/../../../x",
            "use 1 to 40 lower-case letters, digits and `-`, starting with a letter",
        ),
        (
            "Web\nextends: x",
            "Web\\nextends: x",
            "use 1 to 40 lower-case letters, digits and `-`, starting with a letter",
        ),
        ("default", "default", "`default` is the profile every `init` profile extends; choose another name"),
    ] {
        let run = Test::new().args(["init", "--non-interactive", "--name", name]).run().status(1);
        assert_eq!(
            run.stderr(),
            format!("error: `{shown}` cannot be a sandbox name: {reason}\n  help: pass another `--name`\n")
        );
        assert_eq!(read_tree(&run.home), Default::default(), "nothing may be written for {name:?}");
    }
}

#[track_caller]
fn similar_asserts(actual: &str, expected: &str) {
    if actual != expected {
        let diff = similar::TextDiff::from_lines(expected, actual);
        panic!("text differs (- expected, + actual):\n{}", diff.unified_diff().context_radius(3));
    }
}

// ---------------------------------------------------------------------------------------------
// The wizard, through a real pseudo-terminal. CI installs tmux; without it these tests only
// print that they were skipped.

#[allow(clippy::print_stderr)] // the only way to say a test was skipped
fn skipped(test: &str) {
    eprintln!("skipped {test}: tmux is not installed (CI installs it)");
}

#[test]
fn wizard_asks_checks_each_answer_on_the_spot_and_writes_the_profile() {
    let t = Test::new().file("other/README", "other\n");
    let home = t.home();
    let Some(tmux) = Tmux::start(&home, &home.join("project"), &home_env(&home), "init") else {
        return skipped("wizard_asks_checks_each_answer_on_the_spot_and_writes_the_profile");
    };
    tmux.answer("Sandbox name (project)", "wiz");
    tmux.answer("Host folder for workspace 1 (~/project)", "");
    tmux.answer("Path inside the VM (/workspace)", "");
    tmux.wait_for("? Add another workspace?");
    tmux.key("y");

    // A later workspace has no default: an empty answer is not taken (it used to mean the
    // current folder), and a missing folder is refused on the spot.
    tmux.wait_for("? Host folder for workspace 2");
    tmux.key("Enter");
    tmux.answer("Host folder for workspace 2", "~/missing");
    tmux.wait_for("`[HOME]/missing` is not a folder");
    tmux.answer("Host folder for workspace 2", "~/other");
    tmux.answer("Path inside the VM (/workspace-2)", "");
    tmux.wait_for("? Add another workspace?");
    tmux.key("n");

    tmux.answer("CPUs (4)", "3");
    tmux.answer("Memory (8GiB)", "lots");
    tmux.wait_for("`lots` is not a size; write a whole number with a unit, like `8GiB`");
    tmux.answer("Memory (8GiB)", "6GiB");
    tmux.answer("Disk (50GiB)", "");
    tmux.answer("Domains the VM may reach (comma-separated)", "example.com, *.example.org");

    tmux.wait_for("? Where do secrets (API keys) come from?");
    tmux.key("Down");
    tmux.key("Down");
    tmux.key("Enter");
    tmux.answer("Variable names (comma-separated)", "ANTHROPIC_API_KEY");
    tmux.answer("OpenClaw gateway version", "");
    assert_eq!(tmux.exit_code(), 0, "{}", tmux.screen());
    tmux.wait_for("wrote [HOME]/.config/sandbox/profiles/wiz.yaml");

    let text = read(&profiles_dir(&home).join("wiz.yaml"));
    for needle in [
        "name: \"wiz\"\nextends: default\n",
        "  cpus: 3\n  memory: \"6GiB\"\n  disk: \"50GiB\"\n",
        "workspaces:\n  - host: \"~/project\"\n    guest: \"/workspace\"\n    mode: overlay\n  - host: \"~/other\"\n    guest: \"/workspace-2\"\n    mode: overlay\n\n",
        "    allow_domains:\n      - \"example.com\"\n      - \"*.example.org\"\n",
        "secrets:\n  sources:\n    - env: [\"ANTHROPIC_API_KEY\"]\n",
        "# Host folders the agent can read.",
    ] {
        assert!(text.contains(needle), "profile lacks {needle:?}:\n{text}");
    }
    expect_success(&sandbox_in(&home, &["--profile", "wiz", "profile", "validate"]), &home);
}

#[test]
fn wizard_refuses_an_existing_name_at_once_and_takes_the_defaults() {
    const OLD: &str = "name: web\nextends: default\n";
    let t = Test::new().profile("web", OLD);
    let home = t.home();
    let Some(tmux) = Tmux::start(&home, &home.join("project"), &home_env(&home), "init") else {
        return skipped("wizard_refuses_an_existing_name_at_once_and_takes_the_defaults");
    };
    // Said at the first question, not after the last one.
    tmux.answer("Sandbox name (project)", "web");
    tmux.wait_for("profile `web` already exists; choose another name, or run again with `--force`");
    tmux.answer("Sandbox name (project)", "Bad Name");
    tmux.wait_for("use 1 to 40 lower-case letters, digits and `-`, starting with a letter");
    tmux.answer("Sandbox name (project)", "");
    for prompt in [
        "Host folder for workspace 1 (~/project)",
        "Path inside the VM (/workspace)",
        "Add another workspace?",
        "CPUs (4)",
        "Memory (8GiB)",
        "Disk (50GiB)",
        "Domains the VM may reach (comma-separated) (api.anthropic.com, ",
        "Where do secrets (API keys) come from?",
        "OpenClaw gateway version",
    ] {
        tmux.answer(prompt, "");
    }
    assert_eq!(tmux.exit_code(), 0, "{}", tmux.screen());

    let dir = profiles_dir(&home);
    assert_eq!(read(&dir.join("web.yaml")), OLD);
    assert_eq!(names_in(&dir), ["project.yaml", "web.yaml"]);
    let text = read(&dir.join("project.yaml"));
    assert!(text.contains("name: \"project\"\n") && !text.contains("secrets:"), "{text}");
    expect_success(&sandbox_in(&home, &["--profile", "project", "profile", "validate"]), &home);
}

#[test]
fn wizard_with_force_replaces_and_backs_up() {
    const OLD: &str = "name: web\nextends: default\n";
    let t = Test::new().profile("web", OLD);
    let home = t.home();
    let Some(tmux) = Tmux::start(&home, &home.join("project"), &home_env(&home), "init --force --name web") else {
        return skipped("wizard_with_force_replaces_and_backs_up");
    };
    tmux.answer("Sandbox name (web)", "");
    for prompt in [
        "Host folder for workspace 1 (~/project)",
        "Path inside the VM (/workspace)",
        "Add another workspace?",
        "CPUs (4)",
        "Memory (8GiB)",
        "Disk (50GiB)",
        "Domains the VM may reach (comma-separated)",
        "Where do secrets (API keys) come from?",
        "OpenClaw gateway version",
    ] {
        tmux.answer(prompt, "");
    }
    assert_eq!(tmux.exit_code(), 0, "{}", tmux.screen());
    tmux.wait_for("kept the previous profile as [HOME]/.config/sandbox/profiles/web.yaml.bak.1");
    let dir = profiles_dir(&home);
    assert_eq!(read(&dir.join("web.yaml.bak.1")), OLD);
    assert!(read(&dir.join("web.yaml")).starts_with("# Sandbox profile \"web\", written by `sandbox init`.\n"));
}
