//! The CI workflows through the real binary: what `alembic render` writes for every toolchain
//! and image fixture (and this repository's own release workflow) passes alembic's own
//! workflow rules, and the rendered "verify alembic" step accepts exactly the alembic it pinned.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use serde_json::Value;

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").expect("binary builds");
    c.current_dir(dir).env_remove("ALEMBIC_CONFIG");
    c
}

fn ci_fixtures() -> Vec<PathBuf> {
    let dir = alembic_testkit::workspace_root().join("crates/alembic-render/tests/fixtures/ci");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    all.sort();
    assert!(all.len() >= 10, "{all:?}");
    all
}

/// Render `config` into a fresh directory (config copied in as alembic.toml).
fn render(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alembic.toml"), config).unwrap();
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Every fixture's rendered workflows, and release.yml, get no finding from `alembic scan`
/// (CI001 pins, CI002 permissions, CI003 injection, CI004 deploy jobs, and any rule added later).
#[test]
fn rendered_and_release_workflows_pass_alembic_scan() {
    let release = alembic_testkit::workspace_root().join(".github/workflows/release.yml");
    assert!(release.is_file());
    for fixture in ci_fixtures() {
        let dir = render(&std::fs::read_to_string(&fixture).unwrap());
        let out = alembic(dir.path())
            .args(["scan", ".github/workflows", "--format", "json"])
            .arg(&release)
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: {}",
                fixture.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            doc["diagnostics"],
            Value::Array(Vec::new()),
            "{}",
            fixture.display()
        );
        assert_eq!(out.status.code(), Some(0), "{}", fixture.display());
        // The same scan does look at these files: an unpinned checkout is reported.
        let ci = dir.path().join(".github/workflows/ci.yml");
        let text = std::fs::read_to_string(&ci).unwrap();
        std::fs::write(
            &ci,
            text.replace(
                "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
                "actions/checkout@v4",
            ),
        )
        .unwrap();
        let out = alembic(dir.path())
            .args(["scan", ".github/workflows", "--format", "json"])
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            doc["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["code"] == "CI001"),
            "{doc}"
        );
        assert_eq!(out.status.code(), Some(1));
    }
}

/// The run script of the deploy job's step whose name starts with `prefix`, as rendered for
/// the config in `dir` (read back from the typed workflow, and checked to be in the file
/// `render` wrote, line for line).
fn deploy_step_script(dir: &Path, prefix: &str) -> String {
    let config = std::fs::read_to_string(dir.join("alembic.toml")).unwrap();
    let t = alembic_config::load_str("alembic.toml", &config)
        .topology
        .expect("valid config");
    let wf = alembic_render::github::deploy_workflow(&t);
    let (_, deploy) = wf.jobs.0.iter().find(|(id, _)| id == "deploy").unwrap();
    let script = deploy
        .steps
        .iter()
        .find(|s| s.name.starts_with(prefix))
        .and_then(|s| s.run.clone())
        .unwrap_or_else(|| panic!("no step `{prefix}`"));
    let text = std::fs::read_to_string(dir.join(".github/workflows/deploy.yml")).unwrap();
    for line in script.lines() {
        assert!(text.contains(line), "{line:?} is not in the rendered file");
    }
    script
}

/// Run a step's script the way the runner does (`bash -e`), with this build's `alembic` first
/// on PATH.
fn run_step(script: &str) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("alembic");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Process::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .env("PATH", path)
        .output()
        .unwrap()
}

/// The verify step after the install passes for the alembic it pinned (by default, the one that
/// rendered it), and stops the job, saying why, for any other version.
#[test]
fn verify_step_accepts_the_pinned_alembic_and_refuses_another() {
    let version = env!("CARGO_PKG_VERSION");
    let base = std::fs::read_to_string(
        alembic_testkit::workspace_root().join("crates/alembic-render/tests/fixtures/ci/npm.toml"),
    )
    .unwrap();

    let dir = render(&base);
    let install = deploy_step_script(dir.path(), "install alembic");
    assert_eq!(
        install.trim(),
        format!("cargo install --locked alembic-infra --version ={version}")
    );
    let ok = run_step(&deploy_step_script(dir.path(), "verify alembic"));
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );

    let pinned = base.replace(
        "toolchain  = \"npm\"",
        "toolchain  = \"npm\"\nalembic_version = \"9.9.9\"",
    );
    assert_ne!(pinned, base);
    let dir = render(&pinned);
    assert_eq!(
        deploy_step_script(dir.path(), "install alembic").trim(),
        "cargo install --locked alembic-infra --version =9.9.9"
    );
    let refused = run_step(&deploy_step_script(dir.path(), "verify alembic"));
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(
        said.contains(&format!(
            "::error::expected alembic 9.9.9, found: alembic {version}"
        )),
        "{said}"
    );
}

/// A droplet workload built from a context shows as such in `topology` (it once read "ci job",
/// the fallback for a workload with neither image nor schedule).
#[test]
fn topology_shows_a_build_workload_as_built() {
    let config = std::fs::read_to_string(
        alembic_testkit::workspace_root()
            .join("crates/alembic-render/tests/fixtures/ci/images.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alembic.toml"), config).unwrap();
    let out = alembic(dir.path()).arg("topology").output().unwrap();
    assert!(out.status.success());
    let human = String::from_utf8_lossy(&out.stdout);
    let api = human.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(api.contains("build services/api"), "{human}");
    let out = alembic(dir.path())
        .args(["topology", "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let api = doc["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "api")
        .unwrap();
    assert_eq!(api["build"], "services/api");
    assert_eq!(api["image"], Value::Null);
}
