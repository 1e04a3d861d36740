//! `sandbox baseline` (the first piece of the sync gate): recording, storage, refresh.

use crate::test::Test;

#[test]
fn baseline_is_recorded_privately_and_refreshed() {
    let t = Test::new().file("project/src/main.rs", "fn main() {}\n").file("project/README", "hi\n");
    let home = t.home();
    let run = t.args(["baseline", "."]).run().success();
    let stderr = run.stderr();
    assert!(stderr.contains("recorded the baseline of [HOME]/project: 3 entries, 2 files, 16B ("), "{stderr}");
    let dir = home.join(".local/state/sandbox/baselines");
    let files: Vec<_> = std::fs::read_dir(&dir).expect("baselines").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&files[0]).expect("meta").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777, 0o700);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
    assert_eq!(json["version"], 1);
    assert_eq!(json["entries"]["src/main.rs"]["kind"], "file");
    assert_eq!(json["entries"]["src/main.rs"]["size"], 13);

    // A second run compares with the first.
    std::fs::write(home.join("project/new.txt"), "n").expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["baseline", "project"])
        .current_dir(&home)
        .env_clear()
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .output()
        .expect("run");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 paths changed since the previous baseline"));
}

#[test]
fn baseline_errors_are_clear() {
    Test::new()
        .args(["baseline", "missing"])
        .run()
        .status(1)
        .stderr_contains("error: `[HOME]/project/missing`: No such file or directory");
    Test::new().file("project/f", "x").args(["baseline", "f"]).run().status(1).stderr_contains("is not a directory");
}
