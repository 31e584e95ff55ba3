//! Without an `alembic.toml` (no `-c`, no `$ALEMBIC_CONFIG`, none in the directory) alembic
//! falls back to the embedded default topology: fine to look at (`validate`, `check`,
//! `topology`, `render --check`'s answer), never something to deploy. `plan`, `plan --out`,
//! `apply` (dry run and `--yes`, every plane), `rollback` and `bootstrap` refuse it with exit 1
//! (DESIGN.md: the user's config has problems — its placeholders are CFG007 errors for a deploy)
//! before any ssh, terraform, launchctl or systemctl step, and write nothing: no plan file, no
//! rendered artifact, no state.
//!
//! Proving a program did NOT run needs a stand-in that records being called: recording shims
//! named like the real programs come first on PATH (as in `apply_gate.rs`); they are never used
//! for a positive result.

mod support;

use std::path::Path;

use assert_cmd::Command;
use support::shims;

const SHIMS: [&str; 7] = [
    "ssh",
    "scp",
    "terraform",
    "tofu",
    "launchctl",
    "systemctl",
    "docker",
];

/// A directory with no config, `bin/` holding recording shims, and `work/` to run in.
fn sandbox() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("work")).unwrap();
    shims::install(tmp.path(), &SHIMS);
    tmp
}

/// `alembic ARGS` in `work/`, shims first on PATH, HOME and TMPDIR inside the sandbox, every
/// secret of the default topology set (so no refusal is about a missing secret).
fn run(tmp: &Path, args: &[&str]) -> (Option<i32>, String) {
    let path = shims::path_with(&tmp.join("bin"));
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(tmp.join("work"))
        .env("PATH", path)
        .env("HOME", tmp)
        .env("TMPDIR", tmp)
        .env("XDG_RUNTIME_DIR", tmp)
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("CI")
        .env_remove("ALEMBIC_CONTEXT")
        .env_remove("GITHUB_ACTIONS")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null");
    for name in alembic_config::default_topology().secret_names().keys() {
        c.env(name.as_str(), "embedded-test-value-4c2d");
    }
    c.env(
        alembic_config::default_topology()
            .droplet
            .token_env
            .as_str(),
        "embedded-test-token-4c2d",
    );
    let o = c.args(args).output().unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_embedded_default_is_never_planned_applied_rolled_back_or_bootstrapped() {
    let tmp = sandbox();
    let before = entries(tmp.path());
    for args in [
        &["plan"][..],
        &["plan", "--plane", "droplet"],
        &["plan", "--plane", "infra"],
        &["plan", "--plane", "host"],
        &["plan", "--plane", "droplet", "--detailed-exitcode"],
        &["plan", "--plane", "droplet", "--out", "saved-plan.json"],
        &["apply"],
        &["apply", "--yes"],
        &["apply", "--plane", "droplet", "--yes"],
        &["apply", "--plane", "infra", "--yes"],
        &["apply", "--plane", "host", "--yes"],
        &["--json", "apply", "--plane", "droplet", "--yes"],
        &["rollback", "--yes"],
        &["rollback", "--to", "1", "--yes"],
        &["bootstrap", "--yes"],
    ] {
        let (code, out) = run(tmp.path(), args);
        assert_eq!(code, Some(1), "{args:?} on the embedded default:\n{out}");
        if args[0] != "bootstrap" && args[0] != "--json" {
            assert!(
                out.contains("CFG007"),
                "{args:?}: the refusal names the placeholder code:\n{out}"
            );
        }
        let calls = shims::calls(tmp.path());
        assert!(calls.is_empty(), "{args:?} ran programs:\n{calls}");
        assert!(
            entries(&tmp.path().join("work")).is_empty(),
            "{args:?} wrote into the directory: {:?}",
            entries(&tmp.path().join("work"))
        );
        assert_eq!(entries(tmp.path()), before, "{args:?} left files behind");
    }
}

// Looking at the default is fine: validate and check pass, topology shows it, and `render
// --check` reports the missing artifacts as drift (exit 1) without writing them.
#[test]
fn the_embedded_default_can_be_looked_at() {
    let tmp = sandbox();
    for args in [
        &["validate"][..],
        &["check"],
        &["topology", "--format", "json"],
    ] {
        let (code, out) = run(tmp.path(), args);
        assert_eq!(code, Some(0), "{args:?}:\n{out}");
    }
    let (_, out) = run(tmp.path(), &["topology", "--format", "json"]);
    let json = out.lines().find(|l| l.starts_with('{')).unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let names: Vec<&str> = v["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    for w in &alembic_config::default_topology().workloads {
        assert!(names.contains(&w.name.as_str()), "{} in {names:?}", w.name);
    }
    let (code, out) = run(tmp.path(), &["render", "--check"]);
    assert_eq!(code, Some(1), "render --check with nothing on disk:\n{out}");
    assert!(entries(&tmp.path().join("work")).is_empty());
    let calls = shims::calls(tmp.path());
    assert!(calls.is_empty(), "ran programs:\n{calls}");
}
