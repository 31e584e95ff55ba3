//! Shared helpers for the droplet-plane tests (Terraform, compose, Caddyfile): fixture loading,
//! the release-directory layout, and running real tools with bounded output checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alembic_config::Topology;
use alembic_render::{caddy, compose, terraform, Artifact};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Load one fixture; a fixture that does not validate fails the test with its diagnostics.
pub fn load(path: &Path) -> Topology {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let loaded = alembic_config::load_str(&path.display().to_string(), &text);
    match loaded.topology {
        Some(t) => t,
        None => panic!(
            "fixture {} does not validate: {:#?}",
            path.display(),
            loaded.diagnostics
        ),
    }
}

/// Every fixture (all `*.toml` in tests/fixtures, other planes' too), sorted by file name.
pub fn fixtures() -> Vec<(String, Topology)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            let t = load(&p);
            (name, t)
        })
        .collect()
}

pub fn fixture(name: &str) -> Topology {
    load(&fixtures_dir().join(format!("{name}.toml")))
}

/// The droplet-plane artifacts: Terraform, compose, Caddyfile.
pub fn droplet_artifacts(t: &Topology) -> Vec<Artifact> {
    let mut v = terraform::render(t);
    v.extend(compose::render(t));
    v.extend(caddy::render(t));
    v
}

/// Write artifacts under `root` at their rendered paths.
pub fn write_all(root: &Path, artifacts: &[Artifact]) {
    for a in artifacts {
        let p = root.join(&a.path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, &a.bytes).expect("write artifact");
    }
}

/// Lay out a release directory as the droplet holds it: compose.yaml and Caddyfile side by
/// side (the compose file bind-mounts `./Caddyfile`).
pub fn write_release(dir: &Path, t: &Topology) {
    std::fs::write(dir.join("compose.yaml"), &compose::render(t)[0].bytes).expect("write compose");
    std::fs::write(dir.join("Caddyfile"), &caddy::render(t)[0].bytes).expect("write Caddyfile");
}

/// Every secret name the topology references (workloads, CI, the Terraform token).
pub fn secret_names(t: &Topology) -> Vec<String> {
    let mut names: Vec<String> = t.secret_names().keys().map(|k| k.to_string()).collect();
    names.push(t.droplet.token_env.to_string());
    names.sort();
    names.dedup();
    names
}

/// A value no renderer could produce by accident.
pub fn canary(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("CANARY-{name}-{}-{nanos:09}", std::process::id())
}

/// Run a command; panic with its output when it fails.
#[track_caller]
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `terraform` with no CLI config and no network checkpoint.
pub fn terraform_cmd(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1");
    c
}

/// `caddy` with its data and config directories inside `home` (never the user's).
pub fn caddy_cmd(bin: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("HOME", home);
    c
}

pub mod tf_schema;
