//! Values with characters special to YAML, HCL, Caddyfile and shell: free text (plain env
//! values, command arguments) is read back unchanged by the real parsers; fields that reach
//! Terraform or the Caddyfile unquoted (names, hosts, paths, slugs) are rejected by validation.

mod droplet_support;

use std::collections::BTreeMap;
use std::process::Command;

use alembic_config::Plane;
use alembic_render::compose;
use droplet_support::*;

/// What the workload declared: (command, env) with `$` as the user wrote it.
fn declared(t: &alembic_config::Topology, svc: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let w = t.workload(svc).expect("workload");
    (
        w.command.iter().map(|c| c.to_string()).collect(),
        w.env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn serde_yaml_reads_free_text_back_unchanged() {
    let t = fixture("special-chars");
    let yaml: yaml_serde::Value =
        yaml_serde::from_slice(&compose::render(&t)[0].bytes).expect("compose parses");
    let (command, env) = declared(&t, "odd");
    let svc = &yaml["services"]["odd"];
    // In the file every `$` is doubled (compose's literal dollar); undo only that.
    let got: Vec<String> = svc["command"]
        .as_sequence()
        .expect("command")
        .iter()
        .map(|v| v.as_str().expect("string").replace("$$", "$"))
        .collect();
    assert_eq!(got, command);
    for (k, v) in &env {
        let got = svc["environment"][k.as_str()]
            .as_str()
            .expect("string value");
        assert_eq!(&got.replace("$$", "$"), v, "{k}");
    }
}

#[test]
fn docker_compose_resolves_free_text_unchanged() {
    let Some(docker) = alembic_testkit::tool("docker") else {
        return;
    };
    let t = fixture("special-chars");
    let dir = tempfile::tempdir().expect("tempdir");
    write_release(dir.path(), &t);
    let secret = "s3cr3t $NOT {x} \"q\"";
    let out = run_ok(
        Command::new(&docker)
            .current_dir(dir.path())
            .args([
                "compose",
                "-f",
                "compose.yaml",
                "config",
                "--format",
                "json",
            ])
            .env(compose::secret_variable("ODD_SECRET"), secret),
        "docker compose config --format json",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let svc = &json["services"]["odd"];
    // `config` prints a compose file again, so it re-escapes each literal `$` as `$$`; undoing
    // that gives the value compose resolved (and would hand to the container).
    let resolved = |v: &serde_json::Value| v.as_str().map(|s| s.replace("$$", "$"));
    let (command, env) = declared(&t, "odd");
    let got: Vec<String> = svc["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|v| resolved(v).expect("string"))
        .collect();
    assert_eq!(
        got, command,
        "compose must not interpolate or retype arguments"
    );
    for (k, v) in &env {
        assert_eq!(
            resolved(&svc["environment"][k.as_str()]).as_deref(),
            Some(v.as_str()),
            "{k}"
        );
    }
    // The secret arrives through interpolation, exactly, and only there.
    assert_eq!(
        resolved(&svc["environment"]["ODD_SECRET"]).as_deref(),
        Some(secret)
    );
    let text = String::from_utf8_lossy(&compose::render(&t)[0].bytes).into_owned();
    assert!(!text.contains(secret));
}

#[test]
fn unquotable_fields_reject_special_characters() {
    let base = std::fs::read_to_string(fixtures_dir().join("tls-internal.toml")).expect("fixture");
    // Each replacement puts a hostile value into a field that reaches HCL labels/strings,
    // Caddyfile tokens or compose keys without free-text quoting.
    let cases = [
        (
            "name        = \"local-edge\"",
            "name        = \"edge\\\"; rm\"",
        ),
        ("region      = \"nyc3\"", "region      = \"nyc3 ${x}\""),
        (
            "route    = \"hello.alembic.test\"",
            "route    = \"hello.alembic.test {\"",
        ),
        (
            "route    = \"hello.alembic.test/echo\"",
            "route    = \"hello.alembic.test/e cho#\"",
        ),
        ("health   = \"/\"\nenv", "health   = \"/{$HOME}\"\nenv"),
        ("name     = \"hello\"", "name     = \"hello:80\""),
        (
            "image    = \"alembic-test/caddy:local\"",
            "image    = \"caddy local\"",
        ),
        ("domain = \"alembic.test\"", "domain = \"alembic.test\\\"\""),
        (
            "secrets  = [\"HELLO_TOKEN\"]",
            "secrets  = [\"HELLO TOKEN\"]",
        ),
        (
            "env      = { GREETING = \"hello\" }",
            "env      = { \"GREET-ING\" = \"hello\" }",
        ),
        (
            "env      = { GREETING = \"hello\" }",
            "env      = { GREETING = \"multi\\nline\" }",
        ),
    ];
    for (from, to) in cases {
        assert!(base.contains(from), "fixture lacks {from:?}");
        let text = base.replacen(from, to, 1);
        let loaded = alembic_config::load_str("hostile.toml", &text);
        assert!(
            loaded.topology.is_none(),
            "{to:?} was accepted: the renderers would have to quote it"
        );
        assert!(
            !loaded.diagnostics.is_empty(),
            "{to:?}: rejected without a diagnostic"
        );
    }
    // Sanity: the unmodified fixture is valid, so each rejection above is the hostile value's.
    let t = alembic_config::load_str("ok.toml", &base)
        .topology
        .expect("valid");
    assert!(t.on_plane(Plane::Droplet).count() > 0);
}
