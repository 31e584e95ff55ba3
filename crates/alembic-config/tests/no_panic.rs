//! Never a panic: every corpus file and thousands of mutants of the default topology go through
//! `load_bytes`/`load_str`, which must return, with a topology exactly when no error was found,
//! and with every diagnostic located inside the file. Hostile sizes (100k-deep nesting, a 10 MB
//! value, 100k keys, a 20 MB file) must come back quickly with a located CFG001/CFG004.

use std::time::Duration;

/// Bound on one load: far above any real run, so only a hang trips it.
const HANG: Duration = Duration::from_secs(120);

use alembic_config::{load_bytes, load_str, Code, Loaded, DEFAULT_TOML};
use proptest::prelude::*;

/// The invariants every load must keep, whatever the input.
#[track_caller]
fn check(what: &str, bytes: &[u8]) -> Loaded {
    let loaded = load_bytes("alembic.toml", bytes);
    let errors = loaded.has_errors();
    assert_eq!(
        loaded.topology.is_some(),
        !errors,
        "{what}: a topology must come back exactly when there is no error: {:#?}",
        loaded.diagnostics
    );
    let lines = loaded.source.text.lines().count() + 1;
    for d in &loaded.diagnostics {
        assert!(
            d.line >= 1 && d.line <= lines && d.column >= 1,
            "{what}: {}:{} outside the file ({lines} lines): {}",
            d.line,
            d.column,
            d.message
        );
        assert!(!d.message.is_empty(), "{what}: empty message");
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let again = load_str("alembic.toml", text);
        assert_eq!(
            again.diagnostics, loaded.diagnostics,
            "{what}: str and bytes differ"
        );
    }
    loaded
}

#[test]
fn every_corpus_file_loads_without_panic_and_with_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let bytes = std::fs::read(&path).expect("read");
            let loaded = check(&path.display().to_string(), &bytes);
            assert!(loaded.has_errors(), "{} has no error", path.display());
            n += 1;
        }
    }
    assert_eq!(
        n,
        alembic_testkit::CONFIG_CORPUS_FILES,
        "every corpus file must be read"
    );
}

#[test]
fn default_is_valid_and_clean() {
    let loaded = check("default", DEFAULT_TOML.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
}

#[test]
fn default_truncated_at_every_line_boundary() {
    let mut cut = 0;
    for (i, _) in DEFAULT_TOML.match_indices('\n') {
        check(
            &format!("truncated at byte {i}"),
            &DEFAULT_TOML.as_bytes()[..i],
        );
        check(
            &format!("truncated after byte {i}"),
            &DEFAULT_TOML.as_bytes()[..=i],
        );
        cut += 1;
    }
    assert!(cut > 50);
}

#[test]
fn default_truncated_at_every_char_boundary() {
    // Mid-token cuts: inside strings, keys, headers and numbers.
    for i in (0..DEFAULT_TOML.len()).filter(|i| DEFAULT_TOML.is_char_boundary(*i)) {
        check(&format!("cut at {i}"), &DEFAULT_TOML.as_bytes()[..i]);
    }
}

#[test]
fn default_with_each_line_duplicated_or_deleted() {
    let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
    for i in 0..lines.len() {
        let mut dup = lines.clone();
        dup.insert(i, lines[i]);
        check(&format!("line {} twice", i + 1), dup.join("\n").as_bytes());
        let mut del = lines.clone();
        del.remove(i);
        check(
            &format!("line {} deleted", i + 1),
            del.join("\n").as_bytes(),
        );
    }
}

#[test]
fn default_with_quotes_swapped_or_dropped_per_line() {
    let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
    for i in 0..lines.len() {
        for (from, to) in [
            ("\"", "'"),
            ("\"", ""),
            ("\"", "\"\"\""),
            ("=", ""),
            ("[", ""),
        ] {
            if !lines[i].contains(from) {
                continue;
            }
            let mut m = lines.clone();
            let changed = lines[i].replace(from, to);
            m[i] = &changed;
            check(
                &format!("line {} with {from:?} -> {to:?}", i + 1),
                m.join("\n").as_bytes(),
            );
        }
    }
}

/// Load `bytes` and require `code` on `line`. The load runs on its own thread under a generous
/// bound that only catches a hang (quadratic blow-ups are measured by the benchmarks, not here).
#[track_caller]
fn refused_quickly(what: &str, bytes: &[u8], code: Code, line: usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = bytes.to_vec();
    let label = what.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(check(&label, &owned));
    });
    let loaded = rx
        .recv_timeout(HANG)
        .unwrap_or_else(|e| panic!("{what}: no answer within {HANG:?} ({e})"));
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.code == code && d.line == line),
        "{what}: expected {code} on line {line}: {:#?}",
        loaded.diagnostics.iter().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn hundred_thousand_deep_arrays() {
    let n = 100_000;
    let text = format!("{DEFAULT_TOML}a = {}{}\n", "[".repeat(n), "]".repeat(n));
    let line = DEFAULT_TOML.lines().count() + 1;
    refused_quickly("deep arrays", text.as_bytes(), Code::Cfg001, line);
}

#[test]
fn hundred_thousand_deep_inline_tables() {
    let n = 100_000;
    let text = format!(
        "x = {}1{}\n{DEFAULT_TOML}",
        "{ a = ".repeat(n),
        " }".repeat(n)
    );
    refused_quickly("deep inline tables", text.as_bytes(), Code::Cfg001, 1);
}

#[test]
fn deep_nesting_hidden_in_strings_and_comments_is_fine() {
    // The pre-pass skips strings and comments: brackets there are not nesting.
    let text = DEFAULT_TOML.replacen(
        "version = 1",
        &format!("version = 1 # {}\n", "[".repeat(500)),
        1,
    ) + &format!(
        "\n[[workload]]\nname = \"deep\"\nplane = \"host\"\ncommand = [\"/bin/x\", \"{}\", '{}', \"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g\"]\n",
        "[{".repeat(100),
        "{[".repeat(100)
    );
    let loaded = check("brackets in strings", text.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
}

#[test]
fn ten_megabyte_string_value() {
    let text = DEFAULT_TOML.replace(
        "name   = \"alembic\"",
        &format!("name   = \"{}\"", "a".repeat(10 * 1024 * 1024)),
    );
    let line = 1 + DEFAULT_TOML
        .lines()
        .position(|l| l.starts_with("name   = \"alembic\""))
        .expect("project name line");
    refused_quickly("10 MB string", text.as_bytes(), Code::Cfg004, line);
}

// Regression: 100k unknown keys gave 100k diagnostics and took seconds to print.
#[test]
fn hundred_thousand_keys() {
    let keys: String = (0..100_000).map(|i| format!("k{i} = {i}\n")).collect();
    let text = format!("{keys}{DEFAULT_TOML}");
    refused_quickly("100k keys", text.as_bytes(), Code::Cfg004, 1025);
}

// Regression: only `load_bytes` had the size limit; `load_str` parsed 20 MB in full.
#[test]
fn twenty_megabyte_file() {
    let mut text = DEFAULT_TOML.to_owned();
    while text.len() < 20 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    refused_quickly("20 MB file", text.as_bytes(), Code::Cfg001, 1);
}

#[test]
fn invalid_utf8_anywhere_is_located() {
    for at in [0, 1, 100, DEFAULT_TOML.len() / 2, DEFAULT_TOML.len() - 1] {
        let mut bytes = DEFAULT_TOML.as_bytes().to_vec();
        bytes.insert(at, 0xc3); // a lead byte without its continuation (or a stray one)
        bytes.insert(at + 1, 0x28);
        let loaded = check(&format!("bad UTF-8 at {at}"), &bytes);
        assert_eq!(loaded.diagnostics.len(), 1);
        assert_eq!(loaded.diagnostics[0].code, Code::Cfg001);
        let line = 1 + DEFAULT_TOML.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        assert_eq!(loaded.diagnostics[0].line, line, "at byte {at}");
    }
}

/// Characters that matter to TOML or to the newtypes, to splice into the default.
const SPICE: &[&str] = &[
    "\"",
    "'",
    "\"\"\"",
    "[",
    "]",
    "[[",
    "{",
    "}",
    "=",
    ",",
    ".",
    "#",
    "\n",
    "\\",
    "\\u0000",
    "\\u202e",
    "\0",
    "\u{1b}",
    "\r",
    "\t",
    "é",
    "${{",
    "$(",
    "`",
    "../",
    "-1",
    "0",
    "1e400",
    "99999999999999999999",
    "true",
    "1979-05-27",
    "edge",
    "\u{2028}",
    "\u{feff}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn spliced_default_never_panics(edits in prop::collection::vec((0usize..DEFAULT_TOML.len(), 0usize..SPICE.len(), 0usize..4), 1..6)) {
        let mut bytes = DEFAULT_TOML.as_bytes().to_vec();
        for (at, spice, cut) in edits {
            let at = at.min(bytes.len());
            let end = (at + cut).min(bytes.len());
            bytes.splice(at..end, SPICE[spice].bytes());
        }
        check("spliced", &bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check("arbitrary", &bytes);
    }

    #[test]
    fn arbitrary_strings_as_every_value_never_panic(value in "\\PC{0,40}", line in 0usize..120) {
        // Replace the value on one `key = value` line with an arbitrary basic string.
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        let line = line % lines.len();
        let mut out = lines.clone();
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        let replaced;
        if let Some((k, _)) = lines[line].split_once('=') {
            replaced = format!("{k}= \"{escaped}\"");
            out[line] = &replaced;
        }
        check("arbitrary value", out.join("\n").as_bytes());
    }
}
