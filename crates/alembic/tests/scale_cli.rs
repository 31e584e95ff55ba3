//! The scaled-out droplet plane through the binary: `topology` shows the droplets, the load
//! balancer and the engine (text, JSON, DOT); `check` finds nothing on any engine's rendered
//! artifacts (only the edge is public); `render` writes each engine's files.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

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
