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

/// The fixture as a deploy command accepts it (its placeholders, CFG007 errors there,
/// replaced), with keys for bootstrap; `droplets` replaces `count = 3` when given.
fn deployable(droplets: Option<&str>) -> String {
    let text = std::fs::read_to_string(fixture("scale-compose"))
        .unwrap()
        .replace("fleet.example.com", "fleet-e2e.dev")
        .replace("203.0.113.10/32", "100.64.10.10/32")
        .replace(
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
            "5e:2a:90:11:c4:7d:3f:a8:06:b2:e9:51:7c:48:d0:1f",
        );
    let droplets = droplets.unwrap_or("count       = 3");
    text.replace(
        "count       = 3",
        &format!(
            "{droplets}\nauthorized_keys = [\"ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f deploy@laptop\"]"
        ),
    )
}

/// Runs `args` in `dir` with recording shims for every program a deploy runs: (exit code,
/// stderr).
fn run_shimmed(dir: &Path, bin: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = alembic(dir)
        .env("PATH", shims::path_with(bin))
        .env("HOME", dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FLEET: [&str; 3] = ["10.20.0.11", "10.20.0.12", "10.20.0.13"];

/// `logs`, `exec` and `bootstrap` act on one droplet: on several compose droplets without
/// `--droplet` they are refused (exit 1, naming the option and the droplets) before any ssh
/// or terraform runs. Provisioned droplets' addresses are Terraform's: the refusal says where
/// to read them instead of running terraform.
#[test]
fn one_droplet_commands_on_a_fleet_need_droplet_before_any_step() {
    for (droplets, names) in [
        (None, vec!["droplet_ips"]),
        (
            Some(format!(
                "addresses   = [{}]",
                FLEET.map(|a| format!("{a:?}")).join(", ")
            )),
            FLEET.to_vec(),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("alembic.toml"),
            deployable(droplets.as_deref()),
        )
        .unwrap();
        let bin = shims::install(dir.path(), &["ssh", "terraform", "tofu", "docker"]);
        for args in [
            &["logs", "api"][..],
            &["exec", "api", "--", "true"],
            &["bootstrap", "--yes"],
        ] {
            let (code, _, err) = run_shimmed(dir.path(), &bin, args);
            assert_eq!(code, Some(1), "{args:?}: {err}");
            assert!(
                err.contains("acts on one droplet, and this config has 3")
                    && err.contains(&format!(
                        "hint: name one with --droplet, e.g. `alembic {}",
                        args[0]
                    )),
                "{args:?}: {err}"
            );
            for n in &names {
                assert!(err.contains(n), "{args:?} names {n}: {err}");
            }
        }
        // The refusal in JSON: the error envelope, its hint apart.
        let (code, out, _) = run_shimmed(dir.path(), &bin, &["logs", "api", "--json"]);
        assert_eq!(code, Some(1));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["code"], "droplet_required", "{out}");
        assert!(v["error"]["hint"].as_str().unwrap().contains("--droplet"));
        assert_eq!(shims::calls(dir.path()), "", "nothing ran");
    }
}

/// `--droplet` must name one of the config's droplets: any other address is refused (exit 1,
/// naming the known ones) by every day-two command before any ssh runs, on several droplets
/// and on one; what is not an address at all is a usage error (exit 2).
#[test]
fn droplet_outside_the_config_is_refused_before_any_step() {
    let dir = tempfile::tempdir().unwrap();
    let addresses = format!(
        "addresses   = [{}]",
        FLEET.map(|a| format!("{a:?}")).join(", ")
    );
    std::fs::write(
        dir.path().join("alembic.toml"),
        deployable(Some(&addresses)),
    )
    .unwrap();
    let bin = shims::install(dir.path(), &["ssh", "terraform", "tofu", "docker"]);
    let commands: [&[&str]; 5] = [
        &["status"],
        &["logs", "api"],
        &["exec", "api"],
        &["rollback", "--yes"],
        &["bootstrap", "--yes"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.extend(["--droplet", "10.20.0.99"]);
        if cmd[0] == "exec" {
            args.extend(["--", "true"]);
        }
        let (code, _, err) = run_shimmed(dir.path(), &bin, &args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("--droplet 10.20.0.99: this config has no droplet at that address")
                && err.contains(&format!("droplets: {}", FLEET.join(", "))),
            "{args:?}: {err}"
        );
    }
    let (code, _, err) = run_shimmed(dir.path(), &bin, &["status", "--droplet", "api-1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--droplet"), "{err}");

    // One droplet: `--droplet` may only name it.
    let one = deployable(Some("address     = \"10.20.0.11\""));
    std::fs::write(dir.path().join("alembic.toml"), one).unwrap();
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.extend(["--droplet", "10.20.0.12"]);
        if cmd[0] == "exec" {
            args.extend(["--", "true"]);
        }
        let (code, _, err) = run_shimmed(dir.path(), &bin, &args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("--droplet 10.20.0.12: this config")
                && err.contains("one droplet, at 10.20.0.11"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(shims::calls(dir.path()), "", "nothing ran");
}
