//! `alembic validate` as a process, over the bad-input corpus and over generated hostile files.
//!
//! The corpus lives in `crates/alembic-config/tests/corpus/*.toml`; each file states what it
//! must produce in leading comments:
//!
//! ```text
//! # expect: CFG004 21:8          one line per diagnostic: code, line:column (1-based, chars)
//! # expect-text: did you mean    a substring some message or help must contain
//! ```
//!
//! One runner checks every file: the exact multiset of (code, line, column), exit code 1, no
//! panic, the `--json` document in the DESIGN.md shape, and a human rendering with a caret.
//! Inputs whose bytes cannot live in a file of the repository (invalid UTF-8, raw NUL, 10 MB
//! values, 100k-deep nesting, a 20 MB file) are generated here into a temp dir.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    alembic_testkit::workspace_root().join("crates/alembic-config/tests/corpus")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory exists")
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// What a corpus file says it must produce.
#[derive(Debug, Default)]
struct Expect {
    diags: Vec<(String, usize, usize)>,
    texts: Vec<String>,
}

fn expectations(text: &str) -> Expect {
    let mut e = Expect::default();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# expect: ") {
            let (code, pos) = rest.trim().split_once(' ').expect("`# expect: CODE L:C`");
            let (l, c) = pos.split_once(':').expect("L:C");
            e.diags.push((
                code.to_owned(),
                l.parse().expect("line number"),
                c.parse().expect("column number"),
            ));
        } else if let Some(t) = line.strip_prefix("# expect-text: ") {
            e.texts.push(t.to_owned());
        }
    }
    e.diags.sort();
    e
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Longest one validate may run before the test fails: far above any real run (a debug build
/// on a busy machine), so only a hang or a blow-up trips it; durations are never asserted.
const HANG: Duration = Duration::from_secs(120);

fn validate(path: &Path, json: bool) -> Run {
    let mut cmd = Command::cargo_bin("alembic").expect("alembic binary");
    cmd.arg("-c").arg(path).arg("validate");
    if json {
        cmd.arg("--json");
    }
    cmd.env_remove("ALEMBIC_CONFIG")
        .env("RUST_BACKTRACE", "0")
        .timeout(HANG);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("alembic validate did not finish within {HANG:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Check the DESIGN.md diagnostics document and return its (code, line, column) multiset and
/// all message/help text. Problems are pushed to `errs`.
fn check_json_shape(
    doc: &Value,
    file: &str,
    errs: &mut Vec<String>,
) -> (Vec<(String, usize, usize)>, String) {
    let mut got = Vec::new();
    let mut text = String::new();
    if doc["format_version"] != 1 {
        errs.push("format_version is not 1".into());
    }
    let Some(diags) = doc["diagnostics"].as_array() else {
        errs.push("diagnostics is not an array".into());
        return (got, text);
    };
    let (mut errors, mut warnings) = (0, 0);
    for d in diags {
        let code = d["code"].as_str().unwrap_or_default();
        if alembic_config::Code::from_str_code(code).is_none() {
            errs.push(format!("unknown code {code:?}"));
        }
        match d["severity"].as_str() {
            Some("error") => errors += 1,
            Some("warning") => warnings += 1,
            other => errs.push(format!("bad severity {other:?}")),
        }
        if d["file"].as_str() != Some(file) {
            errs.push(format!("file is {}, expected {file:?}", d["file"]));
        }
        let (Some(line), Some(col)) = (d["line"].as_u64(), d["column"].as_u64()) else {
            errs.push(format!("line/column missing in {d}"));
            continue;
        };
        if line == 0 || col == 0 {
            errs.push(format!("positions are 1-based, got {line}:{col}"));
        }
        let message = d["message"].as_str().unwrap_or_default();
        if message.is_empty() {
            errs.push("empty message".into());
        }
        let help = match &d["help"] {
            Value::Null => "",
            Value::String(h) => h,
            other => {
                errs.push(format!("help is not a string: {other}"));
                ""
            }
        };
        // Messages quote the file; raw control characters would reach the terminal.
        if message.chars().chain(help.chars()).any(char::is_control) {
            errs.push(format!("control character in message {message:?}"));
        }
        text.push_str(message);
        text.push('\n');
        text.push_str(help);
        text.push('\n');
        got.push((code.to_owned(), line as usize, col as usize));
    }
    if doc["summary"]["errors"] != errors || doc["summary"]["warnings"] != warnings {
        errs.push(format!(
            "summary {} does not match the list",
            doc["summary"]
        ));
    }
    got.sort();
    (got, text)
}

fn check_no_panic(run: &Run, errs: &mut Vec<String>) {
    if run.stderr.contains("panicked") || run.code == Some(101) {
        errs.push(format!("panicked: {}", run.stderr));
    }
}

#[test]
fn every_corpus_file_reports_exactly_its_expectations() {
    let files = corpus_files();
    // Exactly the corpus on disk: a file that fails to be picked up (a renamed extension, a
    // moved dir) shows here. Adding a corpus file means raising this count.
    assert_eq!(
        files.len(),
        alembic_testkit::CONFIG_CORPUS_FILES,
        "the corpus holds {} configs",
        files.len()
    );
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read(path).expect("readable corpus file");
        let want = expectations(&String::from_utf8_lossy(&source));
        let mut errs = Vec::new();
        if want.diags.is_empty() {
            errs.push("no `# expect:` line".into());
        }

        let run = validate(path, true);
        check_no_panic(&run, &mut errs);
        if run.code != Some(1) {
            errs.push(format!("--json exit code {:?}, expected 1", run.code));
        }
        match serde_json::from_str::<Value>(&run.stdout) {
            Err(e) => errs.push(format!("--json output is not JSON ({e}): {}", run.stdout)),
            Ok(doc) => {
                let (got, text) = check_json_shape(&doc, &path.display().to_string(), &mut errs);
                if got != want.diags {
                    errs.push(format!("expected {:?}\n     got {:?}", want.diags, got));
                }
                for t in &want.texts {
                    if !text.contains(t.as_str()) {
                        errs.push(format!("no message or help contains {t:?}:\n{text}"));
                    }
                }
                covered.extend(got.into_iter().map(|(c, _, _)| c));
            }
        }

        let human = validate(path, false);
        check_no_panic(&human, &mut errs);
        if human.code != Some(1) {
            errs.push(format!("human exit code {:?}, expected 1", human.code));
        }
        for (code, line, col) in &want.diags {
            let head = format!("error[{code}]");
            let at = format!("{}:{line}:{col}", path.display());
            if !human.stderr.contains(&head) || !human.stderr.contains(&at) {
                errs.push(format!(
                    "human output lacks {head} at {at}:\n{}",
                    human.stderr
                ));
            }
        }
        if !human.stderr.lines().any(|l| l.trim_end().ends_with('^')) {
            errs.push("human output has no caret line".into());
        }
        if !errs.is_empty() {
            failures.push(format!("{name}:\n  {}", errs.join("\n  ")));
        }
    }
    for code in [
        "CFG001", "CFG002", "CFG003", "CFG004", "CFG005", "CFG006", "SEC002",
    ] {
        assert!(covered.contains(code), "no corpus file produces {code}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// A minimal valid config, for generated inputs that need a real file around the hostile part.
const BASE: &str = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\naddress = \"203.0.113.20\"\n\n[ci]\nrepository = \"acme/demo\"\n";

/// Write `bytes`, run validate (JSON and human), and require exit 1, no panic, a prompt answer
/// and a diagnostic `code` at `line`.
fn hostile(name: &str, bytes: &[u8], code: &str, line: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, bytes).expect("write generated config");
    let mut errs = Vec::new();
    let run = validate(&path, true);
    check_no_panic(&run, &mut errs);
    assert_eq!(
        run.code,
        Some(1),
        "{name}: exit code; stderr: {}",
        run.stderr
    );
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{name}: --json output is not JSON ({e})"));
    let (got, _) = check_json_shape(&doc, &path.display().to_string(), &mut errs);
    assert!(
        got.iter().any(|(c, l, _)| c == code && *l == line),
        "{name}: expected {code} on line {line}, got {got:?}"
    );
    let human = validate(&path, false);
    check_no_panic(&human, &mut errs);
    assert_eq!(human.code, Some(1), "{name}: human exit code");
    // The caret view shortens long lines: a 10 MB value must not be echoed back.
    assert!(
        human.stderr.len() < 64 * 1024,
        "{name}: human output is {} bytes",
        human.stderr.len()
    );
    assert!(errs.is_empty(), "{name}: {errs:?}");
}

#[test]
fn invalid_utf8_is_cfg001_at_the_bad_byte() {
    let mut bytes = BASE.as_bytes().to_vec();
    bytes.extend_from_slice(b"branch = \"ma\xffin\"\n");
    hostile("invalid-utf8", &bytes, "CFG001", 13);
}

#[test]
fn raw_nul_byte_is_cfg001() {
    let mut bytes = BASE.as_bytes().to_vec();
    bytes.extend_from_slice(b"branch = \"ma\0in\"\n");
    hostile("raw-nul", &bytes, "CFG001", 13);
}

#[test]
fn raw_escape_byte_in_a_string_is_cfg001() {
    let mut bytes = BASE.as_bytes().to_vec();
    bytes.extend_from_slice(b"branch = \"\x1b[2Jmain\"\n");
    hostile("raw-escape", &bytes, "CFG001", 13);
}

#[test]
fn ten_megabyte_string_is_cfg004() {
    let text = format!("{BASE}branch = \"{}\"\n", "a".repeat(10 * 1024 * 1024));
    hostile("ten-mb-string", text.as_bytes(), "CFG004", 13);
}

#[test]
fn hundred_thousand_deep_array_is_cfg001() {
    let n = 100_000;
    let text = format!("{BASE}x = {}{}\n", "[".repeat(n), "]".repeat(n));
    hostile("deep-array", text.as_bytes(), "CFG001", 13);
}

#[test]
fn hundred_thousand_deep_inline_table_is_cfg001() {
    let n = 100_000;
    let text = format!("{BASE}x = {}1{}\n", "{a = ".repeat(n), "}".repeat(n));
    hostile("deep-inline-table", text.as_bytes(), "CFG001", 13);
}

#[test]
fn hundred_thousand_part_dotted_key_is_cfg001() {
    let text = format!("{BASE}a{} = 1\n", ".a".repeat(100_000));
    hostile("deep-dotted-key", text.as_bytes(), "CFG001", 13);
}

#[test]
fn thousands_of_deep_headers_are_cfg001() {
    let mut text = BASE.to_owned();
    for i in 1..3000 {
        text.push_str(&format!("[[x{}]]\n", ".x".repeat(i)));
    }
    // The first header with more than 32 parts (32 dots) is the 32nd: line 12 + 32.
    hostile("deep-headers", text.as_bytes(), "CFG001", 44);
}

#[test]
fn hundred_thousand_keys_is_one_cfg004() {
    let mut text = BASE.to_owned();
    text.push_str("[host]\n");
    for i in 0..100_000 {
        text.push_str(&format!("k{i} = 1\n"));
    }
    // The key past the limit (1024) is on line 14 + 1024.
    hostile("many-keys", text.as_bytes(), "CFG004", 14 + 1024);
}

#[test]
fn hundred_thousand_list_entries_is_one_cfg004() {
    let list: Vec<String> = (0..100_000).map(|i| format!("\"S{i}\"")).collect();
    let text = format!("{BASE}secrets = [{}]\n", list.join(", "));
    hostile("long-list", text.as_bytes(), "CFG004", 13);
}

#[test]
fn twenty_megabyte_file_is_cfg001_at_the_top() {
    let mut text = BASE.to_owned();
    let line = format!("# {}\n", "x".repeat(1000));
    while text.len() < 20 * 1024 * 1024 {
        text.push_str(&line);
    }
    hostile("twenty-mb", text.as_bytes(), "CFG001", 1);
}

#[test]
fn empty_file_reports_every_missing_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.toml");
    std::fs::write(&path, "").expect("write");
    let run = validate(&path, true);
    assert_eq!(run.code, Some(1));
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let mut errs = Vec::new();
    let (got, text) = check_json_shape(&doc, &path.display().to_string(), &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(got.len(), 4, "version, [project], [droplet], [ci]: {got:?}");
    assert!(got
        .iter()
        .all(|(c, l, col)| c == "CFG003" && *l == 1 && *col == 1));
    for t in ["`version`", "[project]", "[droplet]", "[ci]"] {
        assert!(text.contains(t), "{t} not named in {text}");
    }
}

#[test]
fn json_output_survives_a_closed_pipe() {
    // `alembic validate --json | head -c 1` used to panic in println! on EPIPE.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("many.toml");
    let mut text = BASE.to_owned();
    for i in 0..2000 {
        text.push_str(&format!(
            "\n[[workload]]\nname = \"w{i}\"\nplane = \"cloud\"\n"
        ));
    }
    std::fs::write(&path, text).expect("write");
    let bin = assert_cmd::cargo::cargo_bin("alembic");
    let mut child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&path)
        .args(["validate", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn alembic");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("alembic exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1));
}
