//! The scaled-out droplet plane through the binary: `topology` shows the droplets, the load
//! balancer and the engine (text, JSON, DOT); `check` finds nothing on any engine's rendered
//! artifacts (only the edge is public); `render` writes each engine's files.

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use support::shims;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../alembic-render/tests/fixtures")
        .join(format!("{name}.toml"))
}

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir).env_remove("ALEMBIC_CONFIG");
    c
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = alembic(dir).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn topology_shows_droplets_balancer_and_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fixture("scale-swarm");
    let cfg = cfg.to_str().unwrap();
    let (code, text, err) = run(dir.path(), &["topology", "-c", cfg]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("3 droplets swarmy-prod-1..3 provisioned by Terraform, engine swarm, behind a load balancer (TLS terminate, health /healthz)"),
        "{text}"
    );
    let (code, json, err) = run(dir.path(), &["topology", "--json", "-c", cfg]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["droplets"],
        serde_json::json!({"count": 3, "provisioned": true, "addresses": [], "engine": "swarm",
            "load_balancer": {"tls": "terminate", "health": "/healthz",
                "check_interval_seconds": 10, "response_timeout_seconds": 5,
                "unhealthy_threshold": 3, "healthy_threshold": 5}})
    );
    let (code, dot, err) = run(dir.path(), &["topology", "--format", "dot", "-c", cfg]);
    assert_eq!(code, Some(0), "{err}");
    assert!(dot.contains("\"internet\" -> \"load_balancer\""), "{dot}");
    assert!(
        dot.contains("\"load_balancer\" -> \"edge\" [label=\"3 x swarm\"]"),
        "{dot}"
    );
    assert!(!dot.contains("\"internet\" -> \"edge\""), "{dot}");

    // One droplet, no balancer: as before, plus the engine.
    let (_, json, _) = run(
        dir.path(),
        &[
            "topology",
            "--json",
            "-c",
            fixture("default").to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["droplets"]["count"], 1);
    assert_eq!(v["droplets"]["engine"], "compose");
    assert!(v["droplets"]["load_balancer"].is_null());
}

#[test]
fn check_and_render_on_every_engine() {
    for (name, engine_file) in [
        ("scale-compose", "infra/docker/compose.yaml"),
        ("scale-swarm", "infra/docker/stack.yaml"),
        ("scale-kubernetes", "infra/k8s/edge.yaml"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture(name), dir.path().join("alembic.toml")).unwrap();
        let (code, out, err) = run(dir.path(), &["check", "--json"]);
        assert_eq!(code, Some(0), "{name}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["summary"]["errors"], 0, "{name}: {out}");
        let (code, _, err) = run(dir.path(), &["render"]);
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(
            dir.path().join(engine_file).is_file(),
            "{name}: no {engine_file}"
        );
        assert!(
            dir.path().join("infra/terraform/main.tf").is_file(),
            "{name}"
        );
        // Re-rendering finds nothing to change.
        let (code, _, err) = run(dir.path(), &["render", "--check"]);
        assert_eq!(code, Some(0), "{name}: {err}");
    }
}

/// The day-two commands act on one droplet: with several compose droplets they are refused
/// (exit 1, saying so) before any ssh or terraform runs, while `plan` and `apply` roll out.
#[test]
fn one_droplet_commands_refuse_several_droplets_before_any_step() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture with its placeholders (CFG007 errors for a deploy command) replaced.
    let text = std::fs::read_to_string(fixture("scale-compose"))
        .unwrap()
        .replace("fleet.example.com", "fleet-e2e.dev")
        .replace("203.0.113.10/32", "100.64.10.10/32")
        .replace(
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
            "5e:2a:90:11:c4:7d:3f:a8:06:b2:e9:51:7c:48:d0:1f",
        )
        .replace(
            "count       = 3",
            "count       = 3\nauthorized_keys = [\"ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f deploy@laptop\"]",
        );
    std::fs::write(dir.path().join("alembic.toml"), text).unwrap();
    let bin = shims::install(dir.path(), &["ssh", "terraform", "tofu", "docker"]);
    for args in [
        &["status"][..],
        &["logs", "api"],
        &["exec", "api", "--", "true"],
        &["rollback", "--yes"],
        &["bootstrap", "--yes"],
    ] {
        let out = alembic(dir.path())
            .env("PATH", shims::path_with(&bin))
            .env("HOME", dir.path())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("works on one droplet, and this config has 3")
                && err.contains("not available for several droplets yet"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(shims::calls(dir.path()), "", "nothing ran");
}
