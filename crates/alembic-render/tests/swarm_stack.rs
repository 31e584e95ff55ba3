//! `infra/docker/stack.yaml` (engine = "swarm"): accepted by the real `docker stack config -c`,
//! run with no reachable daemon (DOCKER_HOST at a socket that does not exist) to prove the
//! check is offline and needs no `docker swarm init`; and the shape the stack promises, read
//! back from the rendered YAML.

mod droplet_support;

use std::process::Command;

use alembic_render::{caddy, swarm};
use droplet_support::fixture;

/// `docker stack config -c stack.yaml` in a directory holding `stack` and the Caddyfile.
fn stack_config(
    docker: &std::path::Path,
    t: &alembic_config::Topology,
    stack: &str,
) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), stack).unwrap();
    std::fs::write(dir.path().join("Caddyfile"), &caddy::render(t)[0].bytes).unwrap();
    let mut cmd = Command::new(docker);
    cmd.current_dir(dir.path())
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-daemon.sock", dir.path().display()),
        )
        .env("DOCKER_CONFIG", dir.path())
        .args(["stack", "config", "-c", "stack.yaml"]);
    cmd.output().expect("run docker stack config")
}

fn rendered(name: &str) -> (alembic_config::Topology, String) {
    let t = fixture(name);
    let set = alembic_render::render(&t);
    let stack = set
        .get(swarm::PATH)
        .expect("stack.yaml rendered")
        .text()
        .to_owned();
    assert!(
        set.get(alembic_render::compose::PATH).is_none(),
        "a swarm topology renders no compose.yaml"
    );
    (t, stack)
}

#[test]
fn docker_stack_config_accepts_the_stack_offline() {
    let Some(docker) = alembic_testkit::tool("docker") else {
        return;
    };
    let (t, stack) = rendered("scale-swarm");
    let out = stack_config(&docker, &t, &stack);
    assert!(
        out.status.success(),
        "docker stack config refused stack.yaml:\n{}\n{stack}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What docker resolved: the Caddyfile config and the external secret survived.
    let resolved = String::from_utf8_lossy(&out.stdout);
    assert!(
        resolved.contains(&swarm::caddyfile_config_name(&t)),
        "{resolved}"
    );
    assert!(resolved.contains("external: true"), "{resolved}");

    // The checker is real: a misspelled deploy key is refused.
    let bad = stack.replacen("update_config:", "update_configs:", 1);
    let out = stack_config(&docker, &t, &bad);
    assert!(
        !out.status.success(),
        "docker stack config accepted update_configs"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("update_configs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_stack_has_the_swarm_shape() {
    let (t, stack) = rendered("scale-swarm");
    let doc: serde_json::Value = yaml_serde::from_str(&stack).expect("stack.yaml parses");
    let services = doc["services"].as_object().expect("services");
    for (name, s) in services {
        for key in ["build", "container_name", "restart"] {
            assert!(s.get(key).is_none(), "{name} has {key}");
        }
        let deploy = &s["deploy"];
        assert_eq!(deploy["restart_policy"]["condition"], "any", "{name}");
        let update = &deploy["update_config"];
        assert_eq!(update["failure_action"], "rollback", "{name}");
        assert_eq!(update["monitor"], swarm::MONITOR, "{name}");
        assert_eq!(deploy["endpoint_mode"], "dnsrr", "{name}");
        if name == "edge" {
            assert_eq!(deploy["mode"], "global");
            // Host ports cannot be held by two tasks on one node.
            assert_eq!(update["order"], "stop-first");
            let ports = s["ports"].as_array().expect("edge ports");
            assert_eq!(ports.len(), 2);
            assert!(ports.iter().all(|p| p["mode"] == "host"), "{ports:?}");
        } else {
            assert_eq!(update["order"], "start-first", "{name}");
            assert_eq!(deploy["replicas"], 3, "{name}");
            assert!(s.get("ports").is_none(), "{name} publishes a port");
            assert_eq!(s["networks"], serde_json::json!(["internal"]), "{name}");
        }
    }
    // List-form depends_on.
    assert_eq!(services["api"]["depends_on"], serde_json::json!(["worker"]));
    // Secrets: external docker secrets mounted as files, never values.
    assert_eq!(
        doc["secrets"]["DATABASE_URL"],
        serde_json::json!({"name": swarm::secret_name(&t, "DATABASE_URL"), "external": true})
    );
    assert_eq!(
        services["api"]["environment"]["DATABASE_URL_FILE"],
        "/run/secrets/DATABASE_URL"
    );
    assert!(services["api"]["environment"].get("DATABASE_URL").is_none());
    assert_eq!(services["api"]["user"], "1000:1000");
}

#[test]
fn a_changed_caddyfile_is_a_new_config() {
    let a = fixture("scale-swarm");
    let text = std::fs::read_to_string(droplet_support::fixtures_dir().join("scale-swarm.toml"))
        .unwrap()
        .replace("health   = \"/\"", "health   = \"/up\"");
    let b = alembic_config::load_str("b.toml", &text)
        .topology
        .expect("valid");
    assert_ne!(
        swarm::caddyfile_config_name(&a),
        swarm::caddyfile_config_name(&b)
    );
}
