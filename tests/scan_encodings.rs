//! Encodings an agent, a tool or an OS really writes (issue 20), each made by the real tool
//! where one exists (`iconv`, Python's codecs, `json`, `urllib.parse`, `py_compile` and
//! `base64`), with a token inside: `sandbox scan` must report it (exit 5, the rule, the path,
//! and the decoder in its tags), and the sync gate must refuse the file (exit 3, `S_SECRET`).
//!
//! A test whose tool is missing says so on one line and passes, except under `CI=true`, where
//! it fails.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

// Split so the repository's own self-scan does not see a token in this file. `TOKEN` is the
// fixtures' look-alike (its last 6 characters are not its checksum), so only a decoder can find
// it where a byte is glued to it; `VALID` has a valid checksum (see `src/scan/checksum.rs`).
const TOKEN: &str = concat!("gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI");
const VALID: &str = concat!("gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1e0fJ2gE");
const RULE: &str = "github-pat-classic";

/// Run a Python script with `$SECRET` set to `secret` (never in the script) and `$OUT` as the
/// file to write; returns the file's bytes.
#[track_caller]
fn python(script: &str, secret: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let out_path = dir.path().join("out");
    let out = Command::new("python3")
        .args(["-c", script])
        .env("SECRET", secret)
        .env("OUT", &out_path)
        .current_dir(dir.path())
        .output()
        .expect("python3");
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&out_path).expect("python wrote its file")
}

/// What one `sandbox scan --format json` of a folder holding `files` reported.
struct Scanned {
    code: i32,
    /// `(rule_id, path relative to the folder, tags)`.
    findings: Vec<(String, String, Vec<String>)>,
    stderr: String,
}

impl std::fmt::Debug for Scanned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n{:#?}\n{}", self.code, self.findings, self.stderr)
    }
}

impl Scanned {
    /// Findings (exit 5), one of `rule` at `path`, tagged `tag` when given.
    #[track_caller]
    fn has(&self, rule: &str, path: &str, tag: Option<&str>) {
        assert_eq!(self.code, 5, "findings, exit 5: {self:?}");
        let found = self
            .findings
            .iter()
            .any(|(r, p, tags)| r == rule && p == path && tag.is_none_or(|t| tags.iter().any(|have| have == t)));
        assert!(found, "no {rule} at {path} tagged {tag:?}: {self:?}");
    }

    #[track_caller]
    fn clean(&self) {
        assert_eq!((self.code, self.findings.len()), (0, 0), "nothing found, exit 0: {self:?}");
    }
}

#[track_caller]
fn scan(files: &[(&str, &[u8])]) -> Scanned {
    let dir = tempfile::tempdir().expect("tmp");
    for (rel, bytes) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
    let root = dir.path().display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["scan", "--no-ignore-files", "--format", "json", &root])
        .env("NO_COLOR", "1")
        .output()
        .expect("run sandbox");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON findings ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    let prefix = format!("{root}/");
    let findings = json
        .as_array()
        .expect("an array of findings")
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap_or_default();
            let tags = f["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned));
            (
                f["rule_id"].as_str().unwrap_or_default().to_owned(),
                path.strip_prefix(&prefix).unwrap_or(path).to_owned(),
                tags.collect(),
            )
        })
        .collect();
    Scanned { code: out.status.code().unwrap_or(-1), findings, stderr }
}

/// `sandbox sync --from-dir` of an upper holding `files` into a baselined workspace: refused
/// (exit 3) with `S_SECRET` at `path`, nothing written, the secret never printed.
#[track_caller]
fn refused_by_the_gate(files: &[(&str, &[u8])], path: &str, secret: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path().join("home");
    let upper: PathBuf = dir.path().join("upper");
    for d in ["ws", ".local/state", ".config/sandbox/profiles"] {
        std::fs::create_dir_all(home.join(d)).expect("mkdir");
    }
    std::fs::write(home.join("ws/README"), "hello\n").expect("write");
    std::fs::write(
        home.join(".config/sandbox/profiles/t.yaml"),
        "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\n",
    )
    .expect("write");
    let out = crate::test::sandbox_in(&home, &home, &["baseline", "ws"], &[]);
    assert!(out.status.success(), "baseline: {}", String::from_utf8_lossy(&out.stderr));
    for (rel, bytes) in files {
        let file = upper.join(rel);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, bytes).expect("write");
    }
    let upper_arg = upper.display().to_string();
    let args = ["--profile", "t", "sync", "--from-dir", &upper_arg, "--to", "ws", "--yes", "--json"];
    let out = crate::test::sandbox_in(&home, &home, &args, &[]);
    let output = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "refused by the gate, exit 3\n{output}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("a JSON report ({e})\n{output}"));
    let found = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["code"].as_str() == Some("S_SECRET") && f["path"].as_str() == Some(path));
    assert!(found, "no S_SECRET at {path}\n{output}");
    assert_eq!(std::fs::read_dir(home.join("ws")).expect("ws").count(), 1, "nothing was written\n{output}");
    assert!(!output.contains(secret), "the secret was printed\n{output}");
    // The preview's diff redacts the secret's own bytes (for UTF-16, its code units: shown with
    // their NULs escaped, which are dropped here before looking for it).
    let preview =
        crate::test::sandbox_in(&home, &home, &args[..7].iter().copied().chain(["--dry-run"]).collect::<Vec<_>>(), &[]);
    let shown = String::from_utf8_lossy(&preview.stdout).replace("\\u{0}", "");
    let leaked = secret.as_bytes().windows(8).find(|w| shown.contains(std::str::from_utf8(w).unwrap_or_default()));
    assert!(shown.contains("[REDACTED]") && leaked.is_none(), "the preview shows the secret\n{shown}");
}

#[test]
fn utf16le_without_a_bom_from_iconv() {
    if !crate::test::have("iconv", "utf16le_without_a_bom_from_iconv") {
        return;
    }
    let mut child = Command::new("iconv")
        .args(["-f", "UTF-8", "-t", "UTF-16LE"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("iconv");
    let text = format!("$env:GITHUB_TOKEN = \"{TOKEN}\"\r\n");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("iconv");
    assert!(out.status.success());
    let bytes = out.stdout;
    assert_eq!(&bytes[..4], b"$\0e\0", "UTF-16LE without a byte-order mark");
    scan(&[("profile.ps1", &bytes)]).has(RULE, "profile.ps1", Some("decoded:utf-16le"));
    refused_by_the_gate(&[("profile.ps1", &bytes)], "profile.ps1", TOKEN);
}

#[test]
fn utf16_with_a_bom_from_python() {
    if !crate::test::have("python3", "utf16_with_a_bom_from_python") {
        return;
    }
    // Python's `utf-16` codec writes a byte-order mark and the machine's order (as PowerShell
    // 5's `>` writes UTF-16LE with one); `utf-16-be` after an explicit U+FEFF is the other order.
    let le = python(
        "import os; open(os.environ['OUT'], 'w', encoding='utf-16').write('token: ' + os.environ['SECRET'] + '\\n')",
        TOKEN,
    );
    let be = python(
        "import os; open(os.environ['OUT'], 'w', encoding='utf-16-be').write('\\ufefftoken: ' + os.environ['SECRET'] + '\\n')",
        TOKEN,
    );
    assert_eq!((&le[..2], &be[..2]), (&[0xFF, 0xFE][..], &[0xFE, 0xFF][..]), "byte-order marks");
    let found = scan(&[("out-le.txt", &le), ("out-be.txt", &be)]);
    found.has(RULE, "out-le.txt", Some("decoded:utf-16le"));
    found.has(RULE, "out-be.txt", Some("decoded:utf-16be"));
    refused_by_the_gate(&[("out-be.txt", &be)], "out-be.txt", TOKEN);
}

#[test]
fn json_escapes_from_python() {
    if !crate::test::have("python3", "json_escapes_from_python") {
        return;
    }
    // `ensure_ascii` escapes the non-ASCII text glued to the token: the escape's last hex digit
    // then stands where the rule wants a word boundary.
    let glued = python(
        "import json, os\nopen(os.environ['OUT'], 'w').write(json.dumps({'note': 'caf\\u00e9' + os.environ['SECRET'] + '\\u2014'}, ensure_ascii=True))",
        TOKEN,
    );
    let text = String::from_utf8_lossy(&glued).into_owned();
    assert!(text.contains("caf\\u00e9gh"), "{text}");
    // Every character of the token escaped, checked to be the JSON of the token.
    let escaped = python(
        "import json, os\ns = os.environ['SECRET']\ntext = '{\"token\": \"' + ''.join('\\\\u%04x' % ord(c) for c in s) + '\"}'\nassert json.loads(text)['token'] == s\nopen(os.environ['OUT'], 'w').write(text)",
        TOKEN,
    );
    assert!(String::from_utf8_lossy(&escaped).starts_with("{\"token\": \"\\u0067\\u0068\\u0070\\u005f"));
    let found = scan(&[("glued.json", &glued), ("escaped.json", &escaped)]);
    found.has(RULE, "glued.json", Some("decoded:escape"));
    found.has(RULE, "escaped.json", Some("decoded:escape"));
    refused_by_the_gate(&[("escaped.json", &escaped)], "escaped.json", TOKEN);
}

#[test]
fn percent_encoding_from_urllib() {
    if !crate::test::have("python3", "percent_encoding_from_urllib") {
        return;
    }
    // A Slack webhook passed as a query parameter: `quote` encodes its `:` and `/`.
    let webhook = concat!("https://hooks.sl", "ack.com/services/T04ABCD1234/B05EFGH5678/Qm7Rk3Vx9Lp1Zs5Nc8Wb4Fd6");
    let quoted = python(
        "import os, urllib.parse\nopen(os.environ['OUT'], 'w').write('GET /connect?redirect=' + urllib.parse.quote(os.environ['SECRET'], safe='') + ' HTTP/1.1\\n')",
        webhook,
    );
    assert!(String::from_utf8_lossy(&quoted).contains("https%3A%2F%2Fhooks."));
    // Every byte encoded, and only the underscore (`%67%68%70_...` and `ghp%5F...`), each
    // checked to unquote to the token.
    let encoded = python(
        "import os, urllib.parse\ns = os.environ['SECRET']\nfull = ''.join('%%%02X' % b for b in s.encode())\nmixed = urllib.parse.quote(s, safe='').replace('_', '%5F')\nassert urllib.parse.unquote(full) == s == urllib.parse.unquote(mixed) != mixed\nopen(os.environ['OUT'], 'w').write('a=' + full + '\\nb=' + mixed + '\\n')",
        TOKEN,
    );
    let found = scan(&[("access.log", &quoted), ("query.txt", &encoded)]);
    found.has("slack-webhook-url", "access.log", Some("decoded:percent"));
    found.has(RULE, "query.txt", Some("decoded:percent"));
    let lines: Vec<_> = found.findings.iter().filter(|(r, p, _)| r == RULE && p == "query.txt").collect();
    assert_eq!(lines.len(), 2, "both spellings: {found:?}");
    refused_by_the_gate(&[("access.log", &quoted)], "access.log", webhook);
}

/// A module holding `secret`, compiled by `py_compile`: the `.pyc` bytes.
fn compiled_module(secret: &str) -> Vec<u8> {
    python(
        "import os, py_compile\nopen('settings.py', 'w').write('TOKEN = %r\\nTIMEOUT = None\\nNAME = \"deploy\"\\n' % os.environ['SECRET'])\npy_compile.compile('settings.py', cfile=os.environ['OUT'], doraise=True)",
        secret,
    )
}

#[test]
fn compiled_python_from_py_compile() {
    if !crate::test::have("python3", "compiled_python_from_py_compile") {
        return;
    }
    let pyc = compiled_module(VALID);
    let at = pyc.windows(VALID.len()).position(|w| w == VALID.as_bytes()).expect("the token is in the .pyc");
    let after = pyc[at + VALID.len()];
    assert!(after.is_ascii_alphanumeric() || after == b'_', "marshal glues the next constant: {after:#x}");
    let path = "__pycache__/settings.cpython-311.pyc";
    scan(&[(path, &pyc)]).has(RULE, path, None);
    // The same module with the look-alike: the right word boundary fails, and without a valid
    // checksum nothing else proves a token, so this finds nothing (as before): it is the
    // checksum that finds the one above.
    scan(&[(path, &compiled_module(TOKEN))]).clean();
    refused_by_the_gate(&[(path, &pyc)], path, VALID);
}

#[test]
fn compiled_python_with_a_pypi_token() {
    if !crate::test::have("python3", "compiled_python_with_a_pypi_token") {
        return;
    }
    // A version 2 macaroon laid out as PyPI's (location, identifier, two caveats, signature),
    // unpadded base64url after `pypi-`, as PyPI issues them. Here the byte after it is a word
    // (`N`) but the one after that is not, so the rule's pattern finds it too, with that byte;
    // where bytes of a word precede it, only its structure does (the built-in rule cases).
    let token = python(
        "import base64, os\nm = bytes([2, 1, 8]) + b'pypi.org' + bytes([2, 36]) + b'3c9e1f7a-2b4d-4e8f-9a6c-1d2e3f4a5b6c' + b'\\0'\nfor c in [b'[1,[\"acme-widgets\"]]', b'[2,[\"7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d\"]]']:\n    m += bytes([2, len(c)]) + c + b'\\0'\nm += b'\\0' + bytes([6, 32]) + bytes((i * 91 + 17) % 256 for i in range(32))\nopen(os.environ['OUT'], 'w').write('py' + 'pi-' + base64.urlsafe_b64encode(m).decode().rstrip('='))",
        "",
    );
    let token = String::from_utf8(token).expect("ASCII");
    let pyc = compiled_module(&token);
    let path = "__pycache__/release.cpython-311.pyc";
    scan(&[(path, &pyc)]).has("pypi-upload-token", path, None);
    refused_by_the_gate(&[(path, &pyc)], path, &token);
}

#[test]
fn powershell_encoded_command_is_base64_of_utf16le() {
    if !crate::test::have("python3", "powershell_encoded_command_is_base64_of_utf16le") {
        return;
    }
    // `powershell -EncodedCommand` takes base64 of UTF-16LE text.
    let script = python(
        "import base64, os\ncmd = '$env:GH_TOKEN = \"' + os.environ['SECRET'] + '\"; gh auth status'\nopen(os.environ['OUT'], 'w').write('powershell.exe -NoProfile -EncodedCommand ' + base64.b64encode(cmd.encode('utf-16-le')).decode() + '\\n')",
        TOKEN,
    );
    scan(&[("run.cmd", &script)]).has(RULE, "run.cmd", Some("decoded:base64"));
    refused_by_the_gate(&[("run.cmd", &script)], "run.cmd", TOKEN);
}

#[test]
fn discord_bot_token_outside_an_assignment() {
    // The first part is the base64 of the bot's id (1187362478953447424).
    let token = concat!("MTE4NzM2MjQ3ODk1MzQ0NzQyNA", ".GxK9bq.Rk2fW8hPq3ZtLm7VnXc1YsJd9AeBg5Ho0uTiKl");
    let bot = format!("import bot\n\nbot.client.run(\"{token}\")\n");
    let notes = format!("works with {token} for now\n");
    let found = scan(&[("bot.py", bot.as_bytes()), ("NOTES", notes.as_bytes())]);
    found.has("discord-bot-token-bare", "bot.py", None);
    found.has("discord-bot-token-bare", "NOTES", None);
    refused_by_the_gate(&[("bot.py", bot.as_bytes())], "bot.py", token);
    // Discord's documented example and dotted look-alikes are not tokens.
    let docs = concat!(
        "Authorization: Bot MTk4NjIyNDgzNDcxOTI1MjQ4",
        ".Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs\nversion MPjFPHdfHhMM7zCWX6XtY5Vtm2.kCnPqg.xHDx4VuxJGu6j00BRxSoRzV6bfb98o\n"
    );
    scan(&[("docs.md", docs.as_bytes())]).clean();
}
