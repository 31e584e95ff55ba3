//! `alembic secrets` end to end: every name with its consumers and where to set it, `--plane`
//! filtering, `--check` exit codes (empty counts as unset, SEC003), and no value in any output.

use assert_cmd::Command;
use serde_json::Value;

mod support;
use support::cli::{alembic, project};

const ALL: [&str; 8] = [
    "DATABASE_URL",
    "DEPLOY_KNOWN_HOSTS",
    "DEPLOY_SSH_KEY",
    "DIGITALOCEAN_TOKEN",
    "GATEWAY_SIGNING_KEY",
    "OPENAI_API_KEY",
    "SPACES_ACCESS_KEY_ID",
    "SPACES_SECRET_ACCESS_KEY",
];

fn json(c: &mut Command) -> (i32, Value) {
    let out = c.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), v)
}

#[test]
fn lists_every_secret_with_consumers_and_places() {
    let dir = project();
    let (code, v) = json(alembic(dir.path()).args(["secrets", "--json"]));
    assert_eq!(code, 0, "without --check a listing succeeds");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["context"], "local");
    assert_eq!(v["ok"], false);
    let names: Vec<&str> = v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALL);
    let db = &v["secrets"][0];
    assert_eq!(db["set"], false);
    assert_eq!(db["needed"], true);
    assert_eq!(
        db["uses"],
        serde_json::json!([
            {"plane": "droplet", "consumer": "council-api"},
            {"plane": "ci", "consumer": "environment production"}
        ])
    );
    assert_eq!(
        db["set_in"],
        serde_json::json!([
            "droplet /opt/alembic/.env (mode 0600), written at apply from the applying environment",
            "GitHub environment `production` of acme/alembic"
        ])
    );
    // DEPLOY_SSH_KEY is only the CI environment's: not needed for a local apply.
    assert_eq!(v["secrets"][1]["needed"], false);
}

#[test]
fn check_exits_1_naming_unset_secrets_and_0_when_all_set() {
    let dir = project();
    let out = alembic(dir.path())
        .args(["secrets", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[SEC003]: secret OPENAI_API_KEY is unset or empty"));
    assert!(!stderr.contains("DEPLOY_SSH_KEY"), "not needed locally");

    let mut c = alembic(dir.path());
    for n in ALL {
        c.env(n, format!("canary-{n}-3b9e"));
    }
    let out = c.args(["secrets", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut c = alembic(dir.path());
    for n in ALL {
        c.env(n, format!("canary-{n}-3b9e"));
    }
    let js = c.args(["secrets", "--check", "--json"]).output().unwrap();
    let all = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&js.stdout),
        String::from_utf8_lossy(&js.stderr)
    );
    assert!(all.contains("OPENAI_API_KEY"));
    assert!(!all.contains("canary"), "a value was printed:\n{all}");
}

#[test]
fn plane_filter_and_empty_values() {
    let dir = project();
    let (code, v) = json(
        alembic(dir.path())
            .env("OPENAI_API_KEY", "")
            .args(["secrets", "--check", "--plane", "host", "--json"]),
    );
    assert_eq!(code, 1, "an empty value is unset");
    assert_eq!(v["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(v["secrets"][0]["name"], "OPENAI_API_KEY");

    let (code, v) = json(
        alembic(dir.path())
            .env("DIGITALOCEAN_TOKEN", "x")
            .env("SPACES_ACCESS_KEY_ID", "x")
            .env("SPACES_SECRET_ACCESS_KEY", "x")
            .args(["secrets", "--check", "--plane", "infra", "--json"]),
    );
    assert_eq!(code, 0);
    assert_eq!(v["secrets"][0]["name"], "DIGITALOCEAN_TOKEN");
    assert_eq!(v["secrets"][0]["set"], true);
    // The state backend's key pair is the infra plane's too.
    assert_eq!(v["secrets"][1]["name"], "SPACES_ACCESS_KEY_ID");
    assert_eq!(
        v["secrets"][1]["uses"][0],
        serde_json::json!({"plane": "infra", "consumer": "terraform state"})
    );
    assert_eq!(v["secrets"][2]["name"], "SPACES_SECRET_ACCESS_KEY");
    let (code, _) = json(
        alembic(dir.path())
            .env("DIGITALOCEAN_TOKEN", "x")
            .args(["secrets", "--check", "--plane", "infra", "--json"]),
    );
    assert_eq!(code, 1, "the state key pair is needed by the infra plane");

    // A CI job that does not deploy (checks, gates) holds and needs no secrets.
    let (code, v) = json(
        alembic(dir.path())
            .env("CI", "true")
            .args(["secrets", "--check", "--json"]),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["context"], "ci");

    // In the deploy job the CI environment's secrets are the needed ones.
    let (code, v) = json(
        alembic(dir.path())
            .env("CI", "true")
            .env("ALEMBIC_CONTEXT", "deploy")
            .args(["secrets", "--check", "--json"]),
    );
    assert_eq!(code, 1);
    assert_eq!(v["context"], "deploy");
    let needed: Vec<&str> = v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["needed"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // What `alembic apply` needs there (infra + droplet); the deploy key and known_hosts are
    // consumed by the workflow's ssh-agent step before alembic runs.
    assert_eq!(
        needed,
        [
            "DATABASE_URL",
            "DIGITALOCEAN_TOKEN",
            "GATEWAY_SIGNING_KEY",
            "SPACES_ACCESS_KEY_ID",
            "SPACES_SECRET_ACCESS_KEY"
        ]
    );
}
