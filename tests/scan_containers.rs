//! Containers and compressed streams (issue 20), each made by the real tool where one exists
//! (`xz`, `bzip2`, `zstd`, `tar`, `dpkg-deb`; Python's zlib, zipfile and hand-built PNG and PDF
//! files where the tool is a library), with a GitHub token inside: `sandbox scan` must report the
//! token at the member's path (exit 5), and the sync gate must refuse the file (exit 3,
//! `S_SECRET`). Formats the scanner recognises but cannot decode, bombs and containers nested
//! too deep are unscannable: exit 5, and `S_UNSCANNABLE` in the gate.
//!
//! A test whose tool is missing says so on one line and passes, except under `CI=true`, where
//! it fails: CI installs every tool these tests use.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

// Split so the repository's own self-scan does not see a token in this file.
const TOKEN: &str = concat!("gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI");
const RULE: &str = "github-pat-classic";
const UNSCANNABLE: &str = "sandbox-unscannable";

fn secret_text() -> String {
    format!("# deploy settings\nGITHUB_TOKEN = \"{TOKEN}\"\n")
}

/// `tool ARGS` with `input` on stdin: its stdout.
#[track_caller]
fn pipe(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write to the tool");
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Run a Python script with the token in `$TOKEN` (never in the script) and `$OUT` as the file to
/// write; returns the file's bytes.
#[track_caller]
fn python(script: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let out_path = dir.path().join("out");
    let out = Command::new("python3")
        .args(["-c", script])
        .env("TOKEN", TOKEN)
        .env("OUT", &out_path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&out_path).expect("python wrote its file")
}

/// Files in a temporary folder, scanned by `sandbox scan --format json`.
struct Tree {
    dir: tempfile::TempDir,
}

/// What one `sandbox scan` reported.
struct Scanned {
    code: i32,
    /// `(rule_id, path relative to the folder, description)`.
    findings: Vec<(String, String, String)>,
    stderr: String,
}

impl Scanned {
    #[track_caller]
    fn has(&self, rule: &str, path: &str) {
        assert_eq!(self.code, 5, "findings, exit 5: {self:?}");
        assert!(self.findings.iter().any(|(r, p, _)| r == rule && p == path), "no {rule} at {path}: {self:?}");
    }

    /// The description of the unscannable finding at `path`.
    #[track_caller]
    fn unscannable(&self, path: &str) -> &str {
        self.has(UNSCANNABLE, path);
        let found = self.findings.iter().find(|(r, p, _)| r == UNSCANNABLE && p == path);
        found.map(|(_, _, d)| d.as_str()).unwrap_or_default()
    }
}

impl std::fmt::Debug for Scanned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n{:#?}\n{}", self.code, self.findings, self.stderr)
    }
}

impl Tree {
    fn new(files: &[(&str, &[u8])]) -> Tree {
        let tree = Tree { dir: tempfile::tempdir().expect("tmp") };
        for (rel, bytes) in files {
            let path = tree.dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
        tree
    }

    fn scan(&self, extra: &[&str]) -> Scanned {
        let dir = self.dir.path().display().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(["scan", "--no-ignore-files", "--format", "json"])
            .args(extra)
            .arg(&dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run sandbox");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("JSON findings ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
        let prefix = format!("{dir}/");
        let findings = json
            .as_array()
            .expect("an array of findings")
            .iter()
            .map(|f| {
                let field = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
                let path = field("path");
                (field("rule_id"), path.strip_prefix(&prefix).unwrap_or(&path).to_owned(), field("description"))
            })
            .collect();
        Scanned { code: out.status.code().unwrap_or(-1), findings, stderr }
    }
}

/// A home with a baselined workspace `ws`, the profile `t`, and an upper directory whose files
/// `sandbox sync --from-dir` brings to it.
struct Gate {
    dir: tempfile::TempDir,
}

/// What one `sandbox sync --yes --json` reported.
struct Synced {
    code: i32,
    /// `(code, path)` of each finding.
    findings: Vec<(String, String)>,
    output: String,
}

impl Synced {
    /// Refused (exit 3) with a finding of `code` at `path`.
    #[track_caller]
    fn refused(&self, code: &str, path: &str) {
        assert_eq!(self.code, 3, "refused by the gate, exit 3\n{}", self.output);
        let found = self.findings.iter().any(|(c, p)| c == code && p == path);
        assert!(found, "no {code} at {path} in {:?}\n{}", self.findings, self.output);
        assert!(!self.output.contains(TOKEN), "the token was printed\n{}", self.output);
    }
}

impl Gate {
    fn new(files: &[(&str, &[u8])]) -> Gate {
        let gate = Gate { dir: tempfile::tempdir().expect("tmp") };
        for d in ["home/ws", "home/.local/state", "home/.config/sandbox/profiles", "upper"] {
            std::fs::create_dir_all(gate.dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(gate.home().join("ws/README"), "hello\n").expect("write");
        std::fs::write(
            gate.home().join(".config/sandbox/profiles/t.yaml"),
            "name: t\nextends: default\nworkspaces: [{host: ~/ws}]\n",
        )
        .expect("write");
        let out = crate::test::sandbox_in(&gate.home(), &gate.home(), &["baseline", "ws"], &[]);
        assert!(out.status.success(), "baseline: {}", String::from_utf8_lossy(&out.stderr));
        for (rel, bytes) in files {
            let path = gate.upper().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
        gate
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }

    fn sync(&self) -> Synced {
        let upper = self.upper().display().to_string();
        let args = ["--profile", "t", "sync", "--from-dir", &upper, "--to", "ws", "--yes", "--json"];
        let out = crate::test::sandbox_in(&self.home(), &self.home(), &args, &[]);
        let output = format!(
            "--- stdout\n{}--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("a JSON report ({e})\n{output}"));
        let findings = report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (f["code"].as_str().unwrap_or_default().to_owned(), f["path"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let written = std::fs::read_dir(self.home().join("ws")).expect("ws").count();
        assert_eq!(written, 1, "nothing was written to the workspace\n{output}");
        Synced { code: out.status.code().unwrap_or(-1), findings, output }
    }
}

/// `file` (holding the token) is reported at `member` by `sandbox scan`, and refused by the gate.
#[track_caller]
fn found_and_refused(file: &str, bytes: &[u8], member: &str) {
    Tree::new(&[(file, bytes)]).scan(&[]).has(RULE, member);
    Gate::new(&[(file, bytes)]).sync().refused("S_SECRET", member);
}

#[test]
fn xz_made_by_xz_is_decoded() {
    if !crate::test::have("xz", "xz_made_by_xz_is_decoded") {
        return;
    }
    let xz = pipe("xz", &["-c"], secret_text().as_bytes());
    assert!(xz.starts_with(b"\xfd7zXZ\x00"));
    found_and_refused("deploy.env.xz", &xz, "deploy.env.xz!deploy.env");
    // The legacy .lzma format, made by the same tool.
    let lzma = pipe("xz", &["-c", "--format=lzma"], secret_text().as_bytes());
    found_and_refused("deploy.env.lzma", &lzma, "deploy.env.lzma!deploy.env");
}

#[test]
fn bzip2_made_by_bzip2_is_decoded() {
    if !crate::test::have("bzip2", "bzip2_made_by_bzip2_is_decoded") {
        return;
    }
    let bz2 = pipe("bzip2", &["-c"], secret_text().as_bytes());
    found_and_refused("settings.bz2", &bz2, "settings.bz2!settings");
}

#[test]
fn zstd_made_by_zstd_is_decoded() {
    if !crate::test::have("zstd", "zstd_made_by_zstd_is_decoded") {
        return;
    }
    let zst = pipe("zstd", &["-c", "-q"], secret_text().as_bytes());
    found_and_refused("config.json.zst", &zst, "config.json.zst!config.json");
    // Two frames one after the other (`cat a.zst b.zst`): the token is in the second.
    let two = [pipe("zstd", &["-c", "-q"], b"nothing here\n"), zst].concat();
    Tree::new(&[("two.zst", &two)]).scan(&[]).has(RULE, "two.zst!two");
}

#[test]
fn raw_zlib_stream_made_by_python_is_decoded() {
    if !crate::test::have("python3", "raw_zlib_stream_made_by_python_is_decoded") {
        return;
    }
    let script = "import os, zlib\n\
        text = ('# deploy settings\\nGITHUB_TOKEN = \"' + os.environ['TOKEN'] + '\"\\n').encode()\n\
        open(os.environ['OUT'], 'wb').write(zlib.compress(text, 9))\n";
    let zlib = python(script);
    assert!(zlib.starts_with(b"\x78\xda"), "a zlib header");
    found_and_refused("cache.bin", &zlib, "cache.bin!data");
}

/// A PNG image (1x1, one IDAT) with the token in a zTXt chunk and in a compressed iTXt chunk,
/// built by Python's zlib and struct as a PNG writer does.
const PNG_SCRIPT: &str = r#"import os, struct, zlib
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
text = ('GITHUB_TOKEN=' + os.environ['TOKEN']).encode()
png = b'\x89PNG\r\n\x1a\n'
png += chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))
png += chunk(b'tEXt', b'Title\x00a picture')
png += chunk(b'zTXt', b'Comment\x00\x00' + zlib.compress(text))
png += chunk(b'iTXt', b'Description\x00\x01\x00en\x00\x00' + zlib.compress(text))
png += chunk(b'IDAT', zlib.compress(b'\x00\xff\x00\x00'))
png += chunk(b'IEND', b'')
open(os.environ['OUT'], 'wb').write(png)
"#;

#[test]
fn png_compressed_text_chunks_are_inflated() {
    if !crate::test::have("python3", "png_compressed_text_chunks_are_inflated") {
        return;
    }
    let png = python(PNG_SCRIPT);
    found_and_refused("img/shot.png", &png, "img/shot.png!zTXt:Comment");
    Tree::new(&[("shot.png", &png)]).scan(&[]).has(RULE, "shot.png!iTXt:Description");
}

/// A one-page PDF whose content stream and a metadata stream are FlateDecode, with an
/// `/Length` given by reference, as PDF writers do.
const PDF_SCRIPT: &str = r#"import os, zlib
content = b'BT /F1 12 Tf 72 720 Td (Hello) Tj ET'
meta = ('<x:xmpmeta>token: ' + os.environ['TOKEN'] + '</x:xmpmeta>').encode()
objs = [
    b'<< /Type /Catalog /Pages 2 0 R /Metadata 5 0 R >>',
    b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>',
]
def stream(data, length_ref=None):
    z = zlib.compress(data)
    length = (b'%d 0 R' % length_ref) if length_ref else str(len(z)).encode()
    return b'<< /Length ' + length + b' /Filter /FlateDecode >>\nstream\n' + z + b'\nendstream'
objs.append(stream(content))
objs.append(stream(meta, length_ref=6))
objs.append(str(len(zlib.compress(meta))).encode())
out = b'%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'
offsets = []
for i, body in enumerate(objs, 1):
    offsets.append(len(out))
    out += b'%d 0 obj\n' % i + body + b'\nendobj\n'
xref = len(out)
out += b'xref\n0 %d\n0000000000 65535 f \n' % (len(objs) + 1)
out += b''.join(b'%010d 00000 n \n' % o for o in offsets)
out += b'trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' % (len(objs) + 1, xref)
open(os.environ['OUT'], 'wb').write(out)
"#;

#[test]
fn pdf_flate_streams_are_inflated() {
    if !crate::test::have("python3", "pdf_flate_streams_are_inflated") {
        return;
    }
    let pdf = python(PDF_SCRIPT);
    assert!(!pdf.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()), "the token is compressed");
    found_and_refused("docs/report.pdf", &pdf, "docs/report.pdf!obj-5");
    // A broken stream is unscannable only if nothing inflates: cut one after its first bytes.
    let at = pdf.windows(7).position(|w| w == b"stream\n").expect("a stream") + 7;
    let mut broken = pdf[..at].to_vec();
    broken.extend_from_slice(b"\x78\x9c\xff\xff\xff garbage\nendstream\nendobj\n");
    let scanned = Tree::new(&[("broken.pdf", &broken)]).scan(&[]);
    assert!(scanned.unscannable("broken.pdf!obj-4").contains("nothing could be inflated"), "{scanned:?}");
}

#[test]
fn zip_entries_compressed_with_bzip2_lzma_or_an_unknown_method() {
    if !crate::test::have("python3", "zip_entries_compressed_with_bzip2_lzma_or_an_unknown_method") {
        return;
    }
    let script = "import os, zipfile\n\
        text = 'GITHUB_TOKEN = \"' + os.environ['TOKEN'] + '\"\\n'\n\
        with zipfile.ZipFile(os.environ['OUT'], 'w') as z:\n\
        \x20   z.writestr(zipfile.ZipInfo('b.env'), text, compress_type=zipfile.ZIP_BZIP2)\n\
        \x20   z.writestr(zipfile.ZipInfo('l.env'), text, compress_type=zipfile.ZIP_LZMA)\n\
        \x20   z.writestr(zipfile.ZipInfo('s.env'), text, compress_type=zipfile.ZIP_STORED)\n";
    let zip = python(script);
    let scanned = Tree::new(&[("bundle.zip", &zip)]).scan(&[]);
    scanned.has(RULE, "bundle.zip!b.env");
    scanned.has(RULE, "bundle.zip!l.env");
    Gate::new(&[("bundle.zip", &zip)]).sync().refused("S_SECRET", "bundle.zip!l.env");
    // The stored entry's method (local and central headers) rewritten to Deflate64 (9).
    let mut odd = zip.clone();
    let name = odd.windows(5).position(|w| w == b"s.env").expect("name");
    let local = odd[..name].windows(4).rposition(|w| w == b"PK\x03\x04").expect("local header");
    odd[local + 8] = 9;
    let central = odd.windows(4).rposition(|w| w == b"PK\x01\x02").expect("central header");
    odd[central + 10] = 9;
    let scanned = Tree::new(&[("odd.zip", &odd)]).scan(&[]);
    assert!(scanned.unscannable("odd.zip!s.env").contains("cannot decode"), "{scanned:?}");
    scanned.has(RULE, "odd.zip!b.env");
}

#[test]
fn zip_appended_to_another_file_is_opened() {
    if !crate::test::have("python3", "zip_appended_to_another_file_is_opened") {
        return;
    }
    // Python's zipfile in mode 'a' appends a zip to a file that is not one (how self-extracting
    // programs are made); here to a program stub and to a PNG image without text.
    let script = "import os, zipfile\n\
        with zipfile.ZipFile(os.environ['OUT'], 'a', zipfile.ZIP_DEFLATED) as z:\n\
        \x20   z.writestr('secret.env', 'GITHUB_TOKEN = \"' + os.environ['TOKEN'] + '\"\\n')\n";
    let make = |head: &[u8]| {
        let dir = tempfile::tempdir().expect("tmp");
        let out_path = dir.path().join("out");
        std::fs::write(&out_path, head).expect("write");
        let out = Command::new("python3")
            .args(["-c", script])
            .env("TOKEN", TOKEN)
            .env("OUT", &out_path)
            .output()
            .expect("python3");
        assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(&out_path).expect("python wrote its file")
    };
    let program = make(b"MZ\x90\x00\x03\x00 a program stub, then its payload\n");
    let png = make(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00IEND\xaeB`\x82");
    assert!(png.starts_with(b"\x89PNG") && program.starts_with(b"MZ"));
    let scanned = Tree::new(&[("setup.exe", &program), ("cat.png", &png)]).scan(&[]);
    scanned.has(RULE, "setup.exe!secret.env");
    scanned.has(RULE, "cat.png!secret.env");
    Gate::new(&[("cat.png", &png)]).sync().refused("S_SECRET", "cat.png!secret.env");
}

#[test]
fn formats_it_cannot_decode_are_unscannable() {
    let seven = b"7z\xbc\xaf\x27\x1c\x00\x04\x8d\x9b\xd5\x0f\x00\x00\x00\x00packed";
    let rar = b"Rar!\x1a\x07\x01\x00\x33\x92\xb5\xe5\x0a\x01\x05\x06\x00\x05\x01\x01\x80\x80\x00";
    let lz4 = b"\x04\x22\x4d\x18\x64\x40\xa7\x05\x00\x00\x80hello";
    let scanned = Tree::new(&[("a.7z", seven), ("b.rar", rar), ("c.lz4", lz4)]).scan(&[]);
    assert_eq!(
        scanned.unscannable("a.7z"),
        "7z archive: this scanner cannot decode it, so nothing inside it was scanned"
    );
    assert!(scanned.unscannable("b.rar").starts_with("RAR archive: "), "{scanned:?}");
    assert!(scanned.unscannable("c.lz4").starts_with("lz4 frame: "), "{scanned:?}");
    Gate::new(&[("backup.7z", seven)]).sync().refused("S_UNSCANNABLE", "backup.7z");
}

#[test]
fn ordinary_files_are_not_taken_for_containers() {
    let files: &[(&str, &[u8])] = &[
        ("notes.txt", b"x^2 + y^2 = z^2, a short note\n"),
        ("data.bin", b"\x1f\x9d\x20 not compressed at all"),
        ("numbers.txt", b"070701 is a number, not a cpio header\n"),
        ("rar.txt", b"Rar! said the lion\n"),
        ("xar.txt", b"xar! is not a word\n"),
        ("plain.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"),
        ("empty.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00IEND\xaeB`\x82"),
    ];
    let scanned = Tree::new(files).scan(&[]);
    assert_eq!(scanned.code, 0, "{scanned:?}");
}

#[test]
fn xz_bomb_over_the_budget_is_unscannable_and_finishes() {
    if !crate::test::have("xz", "xz_bomb_over_the_budget_is_unscannable_and_finishes") {
        return;
    }
    // 256 MiB of zeros in about 40 KB; `--max-file-size` is the limit of one member.
    let bomb = pipe("xz", &["-c", "-1"], &vec![0u8; 256 << 20]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let tree = Tree::new(&[("zeros.xz", &bomb)]);
    let start = Instant::now();
    let scanned = tree.scan(&["--max-file-size", "4MiB"]);
    let reason = scanned.unscannable("zeros.xz");
    assert!(reason.contains("decompresses to more than 4MiB"), "{reason}");
    assert!(start.elapsed() < Duration::from_secs(60), "stops at the limit: {:?}", start.elapsed());
    // The gate's limit for one member is 100 MiB.
    Gate::new(&[("zeros.xz", &bomb)]).sync().refused("S_UNSCANNABLE", "zeros.xz");
}

#[test]
fn zstd_inside_tar_inside_xz_is_found() {
    for tool in ["zstd", "tar", "xz"] {
        if !crate::test::have(tool, "zstd_inside_tar_inside_xz_is_found") {
            return;
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("pkg")).expect("mkdir");
    std::fs::write(dir.path().join("pkg/creds.env.zst"), pipe("zstd", &["-c", "-q"], secret_text().as_bytes()))
        .expect("write");
    let tar = tar_of(dir.path(), "pkg");
    let txz = pipe("xz", &["-c"], &tar);
    let member = "release.tar.xz!release.tar!pkg/creds.env.zst!creds.env";
    found_and_refused("release.tar.xz", &txz, member);
    // Five containers deep is past the depth limit (4): unscannable.
    let deeper = pipe("xz", &["-c"], &pipe("xz", &["-c"], &txz));
    let scanned = Tree::new(&[("deep.xz", &deeper)]).scan(&[]);
    let path = "deep.xz!deep!data!data!pkg/creds.env.zst";
    assert!(scanned.unscannable(path).contains("nested deeper than 4 levels"), "{scanned:?}");
}

/// `tar -cf - NAME` in `dir`.
fn tar_of(dir: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("tar").args(["-cf", "-", name]).current_dir(dir).output().expect("tar");
    assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn deb_package_members_are_opened() {
    for tool in ["dpkg-deb", "xz"] {
        if !crate::test::have(tool, "deb_package_members_are_opened") {
            return;
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc/app")).expect("mkdir");
    let control = "Package: app\nVersion: 1.0\nArchitecture: all\nMaintainer: A <a@example.com>\nDescription: x\n";
    std::fs::write(root.join("DEBIAN/control"), control).expect("write");
    std::fs::write(root.join("etc/app/app.conf"), secret_text()).expect("write");
    let deb = dir.path().join("app.deb");
    let out = Command::new("dpkg-deb")
        .args(["-Zxz", "--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "dpkg-deb: {}", String::from_utf8_lossy(&out.stderr));
    let deb = std::fs::read(deb).expect("read");
    found_and_refused("app.deb", &deb, "app.deb!data.tar.xz!data.tar!./etc/app/app.conf");
}
