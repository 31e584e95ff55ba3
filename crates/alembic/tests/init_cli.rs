//! `alembic init`: the starting template it writes is valid, commented, under 100 columns,
//! and points editors at the schema it writes next to it (checked by the real taplo); the
//! embedded default topology stays what `alembic topology` shows without a config.

use std::path::Path;

use assert_cmd::Command;

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir).env_remove("ALEMBIC_CONFIG");
    c
}

fn init(dir: &Path) -> String {
    let out = alembic(dir).arg("init").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("alembic.toml")).unwrap()
}

// The template must pass `validate` and `check` with no error (placeholders may warn).
#[test]
fn the_template_validates_and_checks_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let out = alembic(dir.path()).arg("validate").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = alembic(dir.path())
        .args(["check", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["errors"], 0, "{v:#}");
    let out = alembic(dir.path())
        .args(["topology", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["\"api\"", "\"worker\"", "\"nightly-backup\""] {
        assert!(text.contains(name), "{name} in {text}");
    }
}

// Editors read the first line; every line fits in 100 columns; every field says what it is.
#[test]
fn the_template_has_a_schema_line_short_lines_and_a_comment_for_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = init(dir.path());
    assert_eq!(text.lines().next(), Some("#:schema ./alembic.schema.json"));
    let mut prev_comment = false;
    for (i, line) in text.lines().enumerate() {
        assert!(
            line.chars().count() < 100,
            "line {} is too long: {line}",
            i + 1
        );
        let t = line.trim_start();
        let is_field = !t.starts_with('#') && !t.starts_with('[') && t.contains(" = ");
        if is_field {
            assert!(
                line.contains(" # ") || prev_comment,
                "line {} sets a field without a comment: {line}",
                i + 1
            );
        }
        prev_comment = t.starts_with('#');
    }
    let schema = std::fs::read_to_string(dir.path().join("alembic.schema.json")).unwrap();
    assert_eq!(schema, alembic_config::schema::schema_json());
}

// The real taplo (what Even Better TOML runs) follows the `#:schema` line to the written schema
// file: the template passes, and a misspelt key in it is reported against the schema.
#[test]
fn taplo_checks_the_template_against_the_schema_it_names() {
    let Some(taplo) = alembic_testkit::tool("taplo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = init(dir.path());
    let lint = |file: &str| {
        std::process::Command::new(&taplo)
            .current_dir(dir.path())
            .args(["lint", "--no-auto-config", file])
            .env("RUST_LOG", "error")
            .output()
            .expect("taplo runs")
    };
    let ok = lint("alembic.toml");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        text.replace("health   = ", "helth    = "),
    )
    .unwrap();
    let bad = lint("bad.toml");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success(),
        "a misspelt key passes taplo: {stderr}"
    );
    assert!(stderr.contains("helth"), "{stderr}");
}

// `init` writes its own template; without a config, `topology` still shows the embedded default.
#[test]
fn topology_without_a_config_is_still_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = alembic(dir.path())
        .args(["topology", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("council-api") && text.contains("local-models"),
        "{text}"
    );
    let template = init(dir.path());
    assert_ne!(template, alembic_config::DEFAULT_TOML);
}

// An existing alembic.toml is kept without --force; --dir naming a file is a usage error.
#[test]
fn init_keeps_an_existing_config_and_refuses_a_file_as_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alembic.toml"), "mine").unwrap();
    let out = alembic(dir.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("alembic.toml")).unwrap(),
        "mine"
    );
    let out = alembic(dir.path())
        .args(["init", "--dir", "alembic.toml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("alembic.toml")).unwrap(),
        "mine"
    );
}

/// The template's fields whose placeholder would break or endanger a real deploy: `check` warns
/// (CFG007) about exactly these (DESIGN.md), and about nothing else. Other placeholders (the
/// example image, a command) are the user's to replace but are not deploy hazards.
const WARNED: [&str; 5] = [
    "domain",
    "ssh_keys",
    "admin_cidrs",
    "acme_email",
    "repository",
];

// `--force` replaces an existing alembic.toml with exactly the template a fresh `init` writes,
// and that template passes `check` (exit 0) with one CFG007 warning per placeholder line and no
// other diagnostic.
#[test]
fn init_force_writes_the_template_which_checks_with_only_placeholder_warnings() {
    let fresh = tempfile::tempdir().unwrap();
    let template = init(fresh.path());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alembic.toml"), "mine").unwrap();
    let out = alembic(dir.path())
        .args(["init", "--force"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(dir.path().join("alembic.toml")).unwrap();
    assert_eq!(written, template, "--force wrote something else than init");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("alembic.schema.json")).unwrap(),
        alembic_config::schema::schema_json()
    );

    let out = alembic(dir.path())
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    let lines: Vec<&str> = written.lines().collect();
    let mut warned = std::collections::BTreeSet::new();
    for d in diags {
        assert_eq!(
            (d["code"].as_str(), d["severity"].as_str()),
            (Some("CFG007"), Some("warning")),
            "only placeholder warnings: {d}"
        );
        let line = d["line"].as_u64().unwrap() as usize;
        let text = lines[line - 1];
        assert!(
            text.contains("# placeholder"),
            "CFG007 on a line the template does not mark as a placeholder: {text}"
        );
        let key = text.split('=').next().unwrap().trim();
        assert!(warned.insert(key), "{key} warned twice");
    }
    assert_eq!(
        warned,
        WARNED.into_iter().collect(),
        "the placeholder warnings"
    );
    assert_eq!(
        v["summary"],
        serde_json::json!({"errors": 0, "warnings": diags.len()})
    );
}
