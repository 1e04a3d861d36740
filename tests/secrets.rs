//! `sandbox secrets check` and the sources it reads (dotenv file, allowlisted environment, a
//! command), through the real binary. No value may appear in any output.

use crate::test::Test;

const TOKEN: &str = "tok-7f3a9c2e5b1d";
const KEY: &str = "sk-ant-api03-e2e0123456789";

fn profile(sources: &str, required: &str) -> String {
    format!("name: box\nextends: default\nsecrets:\n  sources:\n{sources}  required: [{required}]\n")
}

#[test]
fn check_lists_names_and_origins_never_values() {
    let t = Test::new()
        .file(
            "secrets.env",
            &format!("# OPENCLAW_GATEWAY_TOKEN=old-commented\nexport OPENCLAW_GATEWAY_TOKEN=\"{TOKEN}\"\n"),
        )
        .env("ANTHROPIC_API_KEY", KEY);
    let file = t.home().join("secrets.env");
    let sources = format!("    - file: {}\n    - env: [ANTHROPIC_API_KEY, NOT_SET_ANYWHERE]\n", file.display());
    let run =
        t.profile("box", &profile(&sources, "ANTHROPIC_API_KEY")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = run.stdout();
    assert!(out.contains("present OPENCLAW_GATEWAY_TOKEN (") && out.contains("secrets.env:2)"), "{out}");
    assert!(out.contains("present ANTHROPIC_API_KEY (the environment variable ANTHROPIC_API_KEY)"), "{out}");
    for text in [out, run.stderr()] {
        assert!(!text.contains(TOKEN) && !text.contains(KEY) && !text.contains("old-commented"), "{text}");
    }
}

#[test]
fn a_missing_required_secret_fails_the_check() {
    let t = Test::new().file("secrets.env", "OTHER=1\n");
    let sources = format!("    - file: {}\n", t.home().join("secrets.env").display());
    let run =
        t.profile("box", &profile(&sources, "ANTHROPIC_API_KEY")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(run.stdout(), "missing OPENCLAW_GATEWAY_TOKEN\nmissing ANTHROPIC_API_KEY\n");
    assert!(
        run.stderr().contains("required secrets are missing: OPENCLAW_GATEWAY_TOKEN, ANTHROPIC_API_KEY"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_bad_line_is_named_by_file_and_line_without_its_value() {
    let t = Test::new().file("secrets.env", &format!("A=1\nOPENCLAW_GATEWAY_TOKEN='{TOKEN}\n"));
    let sources = format!("    - file: {}\n", t.home().join("secrets.env").display());
    let run = t.profile("box", &profile(&sources, "")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 1);
    let err = run.stderr();
    assert!(err.contains("secrets.env:2: the single-quoted value of `OPENCLAW_GATEWAY_TOKEN` does not end"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");

    let t = Test::new().file("secrets.env", "T=1\nT=2\n");
    let sources = format!("    - file: {}\n", t.home().join("secrets.env").display());
    let run = t.profile("box", &profile(&sources, "")).args(["--profile", "box", "secrets", "check"]).run();
    assert!(run.stderr().contains("secrets.env:2: `T` is set twice (first on line 1)"), "{}", run.stderr());
}

#[test]
fn an_exec_source_is_run_without_a_shell_and_its_failure_output_is_withheld() {
    let t = Test::new();
    let ok = format!("    - exec: [printf, 'OPENCLAW_GATEWAY_TOKEN=%s\\n', '{TOKEN}']\n");
    let run = t.profile("box", &profile(&ok, "")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stdout().contains("present OPENCLAW_GATEWAY_TOKEN (the output of `printf"), "{}", run.stdout());
    assert!(!run.stdout().contains(TOKEN) && !run.stderr().contains(TOKEN));

    // A failing command may print secrets on stderr: none of it is shown.
    let failing = format!("    - exec: [sh, -c, 'echo partial {TOKEN} >&2; exit 7']\n");
    let run = Test::new().profile("box", &profile(&failing, "")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 1);
    let err = run.stderr();
    assert!(err.contains("failed (exit status 7)") && err.contains("run it yourself"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");

    let missing = "    - exec: [no-such-password-manager, get]\n";
    let run = Test::new().profile("box", &profile(missing, "")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("secrets.sources[].exec"), "{}", run.stderr());
}

#[test]
fn the_same_name_from_two_sources_is_refused() {
    let t = Test::new()
        .file("secrets.env", &format!("OPENCLAW_GATEWAY_TOKEN={TOKEN}\n"))
        .env("OPENCLAW_GATEWAY_TOKEN", "x");
    let sources =
        format!("    - file: {}\n    - env: [OPENCLAW_GATEWAY_TOKEN]\n", t.home().join("secrets.env").display());
    let run = t.profile("box", &profile(&sources, "")).args(["--profile", "box", "secrets", "check"]).run();
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("is set by two secrets sources"), "{}", run.stderr());
    assert!(!run.stderr().contains(TOKEN));
}
