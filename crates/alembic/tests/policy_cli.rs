//! `alembic check` and `alembic scan` end to end through the real binary: exit codes, the
//! JSON and SARIF documents, the planted/clean fixture sets, artifacts on disk, and that no
//! secret value reaches any output.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").expect("binary builds");
    c.current_dir(dir).env_remove("ALEMBIC_CONFIG");
    c
}

fn fixtures() -> PathBuf {
    alembic_testkit::workspace_root().join("tests/fixtures/scan")
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("stdout is one JSON document")
}

/// `(code, file, line)` of every diagnostic in a DESIGN.md JSON document.
/// Every finding but the template's placeholder warnings (CFG007): these tests start from the
/// `alembic init` template, whose CFG007 warnings the placeholder tests cover.
fn findings(doc: &Value) -> Vec<(String, String, u64)> {
    doc["diagnostics"]
        .as_array()
        .expect("diagnostics array")
        .iter()
        .filter(|d| d["code"] != "CFG007")
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["file"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn check_on_the_embedded_default_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = alembic(dir.path()).arg("check").output().unwrap();
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
    assert_eq!(out.status.code(), Some(0));
    let doc = json_of(&out.stdout);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["summary"]["errors"], 0);
}

// The acceptance case of the issue: one host workload flipped to public is EXP001 at its line.
#[test]
fn flipping_a_host_workload_to_public_is_exp001_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "name       = \"local-models\"\nplane      = \"host\"\nexposure   = \"private\"";
    let text = alembic_config::DEFAULT_TOML;
    assert!(text.contains(marker), "default changed: update this test");
    let flipped = text.replacen(marker, &marker.replace("\"private\"", "\"public\""), 1);
    let at = flipped
        .find(marker.replace("\"private\"", "\"public\"").as_str())
        .unwrap();
    let line = flipped[..at].lines().count() as u64 + 3;
    std::fs::write(dir.path().join("alembic.toml"), &flipped).unwrap();

    let out = alembic(dir.path())
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out.stdout);
    assert_eq!(
        findings(&doc),
        [("EXP001".to_owned(), "alembic.toml".to_owned(), line)]
    );
    let exp001 = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "EXP001")
        .unwrap();
    assert_eq!(exp001["column"], 1);

    // Human view: the same finding on stderr, with the source line.
    let out = alembic(dir.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[EXP001]"), "{err}");
    assert!(err.contains(&format!("alembic.toml:{line}:1")), "{err}");
    assert!(err.contains("exposure   = \"public\""), "{err}");
}

#[test]
fn scan_flags_every_planted_problem_and_nothing_in_the_clean_twins() {
    let out = alembic(&fixtures())
        .args(["scan", "planted", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = |a: &str, b: &str, l: u64| (a.to_owned(), format!("planted/{b}"), l);
    assert_eq!(
        findings(&json_of(&out.stdout)),
        [
            s("CI002", ".github/workflows/ci.yml", 6),
            s("CI001", ".github/workflows/ci.yml", 11),
            s("CI003", ".github/workflows/ci.yml", 15),
            s("SEC001", "app/settings.yaml", 4),
            s("EXP003", "docker/compose.yaml", 10),
            s("EXP008", "docker/compose.yaml", 13),
            s("EXP005", "terraform/firewall.tf", 15),
        ]
    );
    let out = alembic(&fixtures())
        .args(["scan", "clean", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(findings(&json_of(&out.stdout)), []);
}

#[test]
fn scan_of_a_missing_path_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = alembic(dir.path()).args(["scan", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sarif_document_has_the_structure_code_scanning_requires() {
    let out = alembic(&fixtures())
        .args(["scan", "planted", "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out.stdout);
    assert!(doc["$schema"].as_str().unwrap().contains("sarif"));
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "alembic");
    assert!(driver["informationUri"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    assert!(!driver["version"].as_str().unwrap().is_empty());
    let levels = ["error", "warning", "note"];
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), alembic_config::Code::ALL.len());
    for r in rules {
        assert!(!r["id"].as_str().unwrap().is_empty());
        assert!(!r["shortDescription"]["text"].as_str().unwrap().is_empty());
        assert!(levels.contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert!(levels.contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(uri.starts_with("planted/"), "{uri}");
        assert!(!uri.contains('\\') && !uri.starts_with('/'));
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
    }
}

// Secret values must never reach any output: a canary token in the config is reported in every
// format, always redacted.
#[test]
fn no_output_format_echoes_a_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let body = "0123456789abcdef".repeat(4);
    let canary = format!("dop_v1_{body}");
    let text = alembic_config::DEFAULT_TOML.replacen(
        "env        = { LOG_LEVEL = \"info\" }",
        &format!("env        = {{ LOG_LEVEL = \"{canary}\" }}"),
        1,
    );
    assert!(text.contains(&canary), "default changed: update this test");
    std::fs::write(dir.path().join("alembic.toml"), &text).unwrap();
    for format in ["human", "json", "sarif"] {
        let out = alembic(dir.path())
            .args(["check", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("SEC001"), "{format}: {all}");
        assert!(!all.contains(&body), "{format} leaked the secret: {all}");
    }
}

// A hand edit to a rendered artifact on disk is judged too, under its on-disk path.
#[test]
fn check_scans_rendered_artifacts_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alembic.toml"),
        alembic_config::DEFAULT_TOML,
    )
    .unwrap();
    let out = alembic(dir.path())
        .args(["render", "--out", "."])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = alembic(dir.path()).arg("check").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let compose = dir.path().join("infra/docker/compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    let edited = text.replacen(
        "\n  council-api:\n",
        "\n  council-api:\n    privileged: true\n",
        1,
    );
    assert_ne!(edited, text, "rendered compose changed: update this test");
    std::fs::write(&compose, &edited).unwrap();
    let line = edited[..edited.find("privileged: true").unwrap()]
        .lines()
        .count() as u64;

    let out = alembic(dir.path())
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        findings(&json_of(&out.stdout)),
        [(
            "EXP008".to_owned(),
            "infra/docker/compose.yaml".to_owned(),
            line
        )]
    );
}
