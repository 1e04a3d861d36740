//! `sandbox scan`: gitleaks compatibility on gitleaks' own labelled cases, the built-in rules'
//! recall and per-rule cases, every gitleaks gap of secret-scanning.md §1.9, archives, limits,
//! output formats and exit codes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

const FINDINGS: i32 = 5;

#[derive(Debug, Deserialize)]
struct Case {
    rule_id: String,
    kind: String,
    text: String,
    path: Option<String>,
}

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

fn read_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("case")).collect()
}

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox")).args(args).env("NO_COLOR", "1").output().expect("run sandbox")
}

#[derive(Debug, Deserialize)]
struct JsonFinding {
    rule_id: String,
    path: String,
    line: usize,
    column: usize,
    fingerprint: String,
    redacted: String,
}

fn findings(output: &Output) -> Vec<JsonFinding> {
    assert!(
        output.status.code() == Some(0) || output.status.code() == Some(FINDINGS),
        "scan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON findings")
}

/// Write each case to `dir/c<N>/<path or case.txt>`.
fn write_cases<'a>(dir: &Path, cases: impl Iterator<Item = (usize, &'a Case)>) {
    for (i, case) in cases {
        let path = dir.join(format!("c{i}")).join(case.path.as_deref().unwrap_or("case.txt"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, &case.text).expect("write case");
    }
}

/// Case index → rule ids found in it.
fn found_by_case(dir: &Path, found: &[JsonFinding]) -> HashMap<usize, Vec<String>> {
    let mut out: HashMap<usize, Vec<String>> = HashMap::new();
    let prefix = format!("{}/c", dir.display());
    for f in found {
        let rest = f.path.strip_prefix(&prefix).expect("finding under the case dir");
        let n: usize = rest.split('/').next().expect("case").parse().expect("case number");
        out.entry(n).or_default().push(f.rule_id.clone());
    }
    out
}

/// Check labelled cases rule by rule, as gitleaks' own validation does (`--enable-rule`).
fn check_cases(cases: &[Case], config: Option<&Path>) -> (usize, Vec<String>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut by_rule: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        by_rule.entry(&c.rule_id).or_default().push(i);
    }
    let mut misses = Vec::new();
    for (rule, indices) in by_rule {
        let dir = tmp.path().join(rule);
        write_cases(&dir, indices.iter().map(|&i| (i, &cases[i])));
        let dir_s = dir.display().to_string();
        let mut args = vec!["scan", "--no-ignore-files", "--format", "json", "--enable-rule", rule, &dir_s];
        let config_s = config.map(|c| c.display().to_string());
        if let Some(c) = &config_s {
            args.extend(["--config", c]);
        }
        let found = found_by_case(&dir, &findings(&sandbox(&args)));
        for i in indices {
            let hits = found.get(&i).map_or(0, |ids| ids.iter().filter(|id| *id == rule).count());
            let case = &cases[i];
            let ok = if case.kind == "tp" { hits >= 1 } else { hits == 0 };
            if !ok {
                let why = if case.kind == "tp" { "true positive not found" } else { "false positive reported" };
                misses.push(format!("{rule} case {i} ({why}): {:?}", case.text.chars().take(120).collect::<String>()));
            }
        }
    }
    (cases.len(), misses)
}

#[test]
#[allow(clippy::print_stderr, clippy::cast_precision_loss)]
fn gitleaks_compatibility_on_gitleaks_own_cases() {
    let cases = read_cases(&shared("gitleaks/cases.jsonl"));
    let (total, misses) = check_cases(&cases, Some(&shared("gitleaks/gitleaks.toml")));
    let agreement = 100.0 * (total - misses.len()) as f64 / total as f64;
    eprintln!("gitleaks compatibility: {}/{total} cases agree ({agreement:.2}%)", total - misses.len());
    for miss in &misses {
        eprintln!("  miss: {miss}");
    }
    assert!(agreement >= 99.5, "agreement {agreement:.2}% is below 99.5%");
}

#[test]
#[allow(clippy::print_stderr, clippy::cast_precision_loss)]
fn builtin_rules_find_gitleaks_true_positives() {
    let cases: Vec<Case> = read_cases(&shared("gitleaks/cases.jsonl")).into_iter().filter(|c| c.kind == "tp").collect();
    let tmp = tempfile::tempdir().expect("tmp");
    write_cases(tmp.path(), cases.iter().enumerate());
    let dir = tmp.path().display().to_string();
    let found =
        found_by_case(tmp.path(), &findings(&sandbox(&["scan", "--no-ignore-files", "--format", "json", &dir])));
    let mut missed_by_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let entry = missed_by_rule.entry(&case.rule_id).or_default();
        entry.1 += 1;
        if !found.contains_key(&i) {
            entry.0 += 1;
        }
    }
    let missed: usize = missed_by_rule.values().map(|(m, _)| m).sum();
    let recall = 100.0 * (cases.len() - missed) as f64 / cases.len() as f64;
    eprintln!(
        "built-in rules recall on gitleaks' true positives: {}/{} ({recall:.2}%)",
        cases.len() - missed,
        cases.len()
    );
    for (rule, (m, n)) in missed_by_rule.iter().filter(|(_, (m, _))| *m > 0) {
        eprintln!("  {rule}: {m} of {n} missed");
    }
    assert!(recall >= 90.0, "built-in recall {recall:.2}% is below 90%");
}

#[test]
#[allow(clippy::print_stderr)]
fn builtin_rules_pass_their_own_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/builtin");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("builtin cases") {
        cases.extend(read_cases(&entry.expect("entry").path()));
    }
    // Every built-in rule has at least one true and one false positive case.
    let rules = rule_ids(&[]);
    for id in &rules {
        for kind in ["tp", "fp"] {
            assert!(
                cases.iter().any(|c| &c.rule_id == id && c.kind == kind),
                "built-in rule `{id}` has no {kind} case"
            );
        }
    }
    let (total, misses) = check_cases(&cases, None);
    eprintln!("built-in rule cases: {} of {total} as labelled, {} rules", total - misses.len(), rules.len());
    assert!(misses.is_empty(), "{misses:#?}");
    assert!(rules.len() >= 120, "only {} built-in rules", rules.len());
}

/// Rule ids of the built-in set (from its SARIF description).
fn rule_ids(extra: &[&str]) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().display().to_string();
    let mut args = vec!["scan", "--format", "sarif", &dir];
    args.extend(extra);
    let out = sandbox(&args);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sarif");
    sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .filter(|id| id != "sandbox-unscannable")
        .collect()
}

// A synthetic GitHub token for the gap tests (not a real credential).
const TOKEN: &str = "ghp_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI";

/// A temp tree, scanned as the gate scans (no ignore files).
struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Self {
        Tree(tempfile::tempdir().expect("tmp"))
    }
    fn file(&self, rel: &str, bytes: &[u8]) -> &Self {
        let path = self.0.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
        self
    }
    fn scan(&self, extra: &[&str]) -> (Output, Vec<JsonFinding>) {
        let dir = self.0.path().display().to_string();
        let mut args = vec!["scan", "--format", "json"];
        args.extend(extra);
        args.push(&dir);
        let out = sandbox(&args);
        let found = findings(&out);
        (out, found)
    }
    fn rel(&self, f: &JsonFinding) -> String {
        f.path.strip_prefix(&format!("{}/", self.0.path().display())).unwrap_or(&f.path).to_owned()
    }
}

fn zip_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, data) in members {
            zip.start_file(
                *name,
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
            )
            .expect("zip entry");
            zip.write_all(data).expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
    buf.into_inner()
}

fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gz");
    enc.finish().expect("gz finish")
}

#[test]
fn gap_in_tree_gitleaksignore_and_config_cannot_hide_a_secret() {
    let t = Tree::new();
    t.file("t2/a.txt", format!("token = \"{TOKEN}\"\n").as_bytes());
    t.file(".gitleaksignore", b"t2/a.txt:github-pat-classic:1\n");
    t.file(".gitleaks.toml", b"[extend]\nuseDefault = true\n[[allowlists]]\npaths = ['''.*''']\n");
    let (out, found) = t.scan(&["--no-ignore-files"]);
    assert_eq!(out.status.code(), Some(FINDINGS));
    assert!(found.iter().any(|f| t.rel(f) == "t2/a.txt"), "{found:?}");
    // Scanning one's own repository honours .gitleaksignore fingerprints by default...
    let fingerprint = &found.iter().find(|f| t.rel(f) == "t2/a.txt").expect("finding").fingerprint;
    t.file(".gitleaksignore", format!("{fingerprint}\n").as_bytes());
    let (_, found) = t.scan(&[]);
    assert!(!found.iter().any(|f| t.rel(f) == "t2/a.txt"), "{found:?}");
    // ...but never the in-tree .gitleaks.toml.
    let (_, found) = t.scan(&["--no-ignore-files"]);
    assert!(found.iter().any(|f| t.rel(f) == "t2/a.txt"));
}

#[test]
fn gap_inline_gitleaks_allow_is_ignored_in_gate_mode() {
    let t = Tree::new();
    t.file("a.py", format!("token = \"{TOKEN}\"  # gitleaks:allow\n").as_bytes());
    assert_eq!(t.scan(&["--no-ignore-files"]).1.len(), 1);
    assert_eq!(t.scan(&[]).1.len(), 0, "honoured when scanning one's own files");
}

#[test]
fn gap_binary_magic_and_skipped_paths_are_scanned() {
    let t = Tree::new();
    let line = format!("token = \"{TOKEN}\"\n");
    t.file("doc.pdf", format!("%PDF-1.4\n{line}").as_bytes());
    t.file("bin.dat", &[b"\x00\x01\x02ELF\x00".as_slice(), line.as_bytes(), b"\xff\xfe\x00"].concat());
    for p in ["node_modules/a.js", "img/a.png", "sub/.git/config", "package-lock.json", "vendor/x.go"] {
        t.file(p, line.as_bytes());
    }
    let (_, found) = t.scan(&["--no-ignore-files"]);
    let mut paths: Vec<String> = found.iter().map(|f| t.rel(f)).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["bin.dat", "doc.pdf", "img/a.png", "node_modules/a.js", "package-lock.json", "sub/.git/config", "vendor/x.go"]
    );
}

#[test]
fn gap_archives_are_opened() {
    let t = Tree::new();
    let line = format!("token = \"{TOKEN}\"\n");
    t.file("x.zip", &zip_bytes(&[("dir/inner.txt", line.as_bytes())]));
    t.file("a.txt.gz", &gzip_bytes(line.as_bytes()));
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(line.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "pkg/config.env", line.as_bytes()).expect("tar");
    t.file("b.tar.gz", &gzip_bytes(&tar.into_inner().expect("tar")));
    let nested = zip_bytes(&[("inner.zip", &zip_bytes(&[("deep.txt", line.as_bytes())]))]);
    t.file("nested.zip", &nested);
    let (_, found) = t.scan(&["--no-ignore-files"]);
    let mut paths: Vec<String> = found.iter().map(|f| t.rel(f)).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["a.txt.gz!a.txt", "b.tar.gz!b.tar!pkg/config.env", "nested.zip!inner.zip!deep.txt", "x.zip!dir/inner.txt"]
    );
}

#[test]
fn zip_bombs_deep_nesting_and_corrupt_archives_block() {
    let t = Tree::new();
    t.file("bomb.zip", &zip_bytes(&[("zeros", &vec![0u8; 3 << 20])]));
    let mut deep = zip_bytes(&[("x.txt", b"hello")]);
    for _ in 0..5 {
        deep = zip_bytes(&[("inner.zip", &deep)]);
    }
    t.file("deep.zip", &deep);
    t.file("broken.zip", b"PK\x03\x04 this is not really a zip file");
    let (out, found) = t.scan(&["--no-ignore-files", "--max-file-size", "1MiB"]);
    assert_eq!(out.status.code(), Some(FINDINGS));
    let unscannable: Vec<String> =
        found.iter().filter(|f| f.rule_id == "sandbox-unscannable").map(|f| t.rel(f)).collect();
    assert!(unscannable.iter().any(|p| p == "bomb.zip!zeros"), "{unscannable:?}");
    assert!(unscannable.iter().any(|p| p.starts_with("deep.zip!inner.zip!inner.zip!inner.zip")), "{unscannable:?}");
    assert!(unscannable.iter().any(|p| p == "broken.zip"), "{unscannable:?}");
}

#[test]
fn oversized_and_special_files_block_instead_of_passing() {
    let t = Tree::new();
    t.file("big.txt", &vec![b'a'; 2 << 20]);
    let fifo = t.0.path().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let (out, found) = t.scan(&["--no-ignore-files", "--max-file-size", "1MiB"]);
    assert_eq!(out.status.code(), Some(FINDINGS), "gitleaks exits 0 here; we block");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 items could not be scanned"), "{stderr}");
    let rels: Vec<String> = found.iter().map(|f| t.rel(f)).collect();
    assert_eq!(rels, ["big.txt", "pipe"]);
}

#[test]
fn no_chunk_boundary_hides_a_secret() {
    // gitleaks #1651: 80-byte lines, no blank lines, token across its 125,000-byte boundary.
    for offset in [99_979usize, 124_989, 124_994, 125_009] {
        let mut text = Vec::new();
        while text.len() + 81 <= offset {
            text.extend_from_slice(&[b'x'; 79]);
            text.push(b'\n');
        }
        text.resize(offset, b'y');
        text.extend_from_slice(format!(" {TOKEN} ").as_bytes());
        text.extend_from_slice(&[b'z'; 200]);
        let t = Tree::new();
        t.file("long.txt", &text);
        let (_, found) = t.scan(&["--no-ignore-files"]);
        assert_eq!(found.len(), 1, "offset {offset}");
    }
}

#[test]
fn json_sarif_and_text_outputs_never_contain_the_secret() {
    let t = Tree::new();
    t.file("conf/app.env", format!("GITHUB_TOKEN={TOKEN}\n").as_bytes());
    let dir = t.0.path().display().to_string();
    let json = sandbox(&["scan", "--format", "json", &dir]);
    let found = findings(&json);
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!((f.rule_id.as_str(), f.line, f.column), ("github-pat-classic", 1, 14));
    assert_eq!(f.fingerprint, format!("{dir}/conf/app.env:github-pat-classic:1"));
    assert_eq!(f.redacted, "ghp_******(40 chars)");
    let sarif = sandbox(&["scan", "--format", "sarif", &dir]);
    let doc: serde_json::Value = serde_json::from_slice(&sarif.stdout).expect("sarif");
    assert_eq!(doc["version"], "2.1.0");
    let result = &doc["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "github-pat-classic");
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 1);
    let text = sandbox(&["scan", &dir]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("conf/app.env\n  1:14  github-pat-classic"), "{stdout}");
    for out in [&json, &sarif, &text] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&TOKEN[4..]));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&TOKEN[4..]));
    }
}

#[test]
fn exit_codes_and_config_errors() {
    let t = Tree::new();
    t.file("clean.txt", b"nothing to see\n");
    let dir = t.0.path().display().to_string();
    assert_eq!(sandbox(&["scan", &dir]).status.code(), Some(0));
    t.file("dirty.txt", format!("{TOKEN}\n").as_bytes());
    assert_eq!(sandbox(&["scan", &dir]).status.code(), Some(FINDINGS));
    let cases: [(&str, &str); 4] = [
        ("[[rules]]\nid = 'x'\nregex = '''(?=a)'''\n", "rule `x`: invalid regex"),
        ("[[rules]]\nid = 'y'\nregex = 'a'\nkeyword = ['a']\n", "rule `y`: unknown field `keyword`"),
        ("[[rules\n", "invalid TOML at line 1"),
        ("[[rules]]\nid = 'z'\nregex = '(a)'\nsecretGroup = 3\n", "rule `z`: secretGroup 3 but the regex has 1 groups"),
    ];
    for (config, message) in cases {
        t.file("bad.toml", config.as_bytes());
        let bad = format!("{dir}/bad.toml");
        let out = sandbox(&["scan", "--config", &bad, &dir]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let out = sandbox(&["scan", "/nonexistent/path"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot scan `/nonexistent/path`"));
}

#[test]
fn extend_use_default_adds_to_builtin_rules() {
    let t = Tree::new();
    t.file("rules.toml", b"[extend]\nuseDefault = true\n[[rules]]\nid = 'acme-key'\nregex = '''acme_[0-9a-f]{16}'''\nkeywords = ['acme_']\n");
    t.file("a.txt", format!("{TOKEN}\nacme_0123456789abcdef\n").as_bytes());
    let rules = format!("{}/rules.toml", t.0.path().display());
    let (_, found) = t.scan(&["--no-ignore-files", "--config", &rules]);
    let mut ids: Vec<&str> = found.iter().map(|f| f.rule_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["acme-key", "github-pat-classic"]);
}

#[test]
fn the_repository_itself_has_no_secrets() {
    // Synthetic secrets live only in the scanner's test data and the tests that plant them; the
    // shared gitleaks cases are read from ../shared and never copied here.
    let root = env!("CARGO_MANIFEST_DIR");
    let out = sandbox(&[
        "scan",
        "--no-ignore-files",
        "--format",
        "json",
        "--exclude",
        "target/**",
        "--exclude",
        "fuzz/target/**",
        "--exclude",
        "fuzz/out/**",
        "--exclude",
        ".git/**",
        "--exclude",
        "tests/fixtures/scan/**",
        "--exclude",
        "tests/scan.rs",
        "--exclude",
        "tests/render.rs",
        root,
    ]);
    let found = findings(&out);
    let listed: Vec<String> =
        found.iter().map(|f| format!("{}:{} {} {}", f.path, f.line, f.rule_id, f.redacted)).collect();
    assert!(found.is_empty(), "{listed:#?}");
}

#[test]
fn secrets_in_base64_and_hex_are_found() {
    use base64::Engine as _;
    let t = Tree::new();
    let line = format!("token = \"{TOKEN}\"");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&line);
    let double = base64::engine::general_purpose::STANDARD.encode(&b64);
    let hex: String = line.bytes().map(|b| format!("{b:02x}")).collect();
    t.file("one.sh", format!("echo {b64} | base64 -d\n").as_bytes());
    t.file("two.txt", format!("x\ny = {double}\n").as_bytes());
    t.file("hex.txt", format!("{hex}\n").as_bytes());
    let (_, found) = t.scan(&["--no-ignore-files"]);
    let mut got: Vec<(String, usize, usize)> = found.iter().map(|f| (t.rel(f), f.line, f.column)).collect();
    got.sort();
    assert_eq!(got, [("hex.txt".to_owned(), 1, 1), ("one.sh".to_owned(), 1, 6), ("two.txt".to_owned(), 2, 5)]);
}
