//! `alembic apply --plane host` as a dry run, end to end through the binary: the plan shows the
//! project's own units and secrets file, the merge (names only) and the listen check of every
//! daemon with a port; a secret value in the environment appears nowhere in the output.

use assert_cmd::Command;

const CANARY: &str = "sk-canary-host-cli-5e0f";

const CONFIG: &str = r#"version = 1

[project]
name   = "demo"
domain = "demo.internal.test"

[host]
os = "linux"

[droplet]
name        = "demo-prod"
address     = "127.0.0.1"
ssh_user    = "deploy"
admin_cidrs = ["127.0.0.1/32"]
token_env   = "DIGITALOCEAN_TOKEN"
tls         = "internal"

[ci]
repository  = "example-org/demo"
secrets     = ["DEPLOY_SSH_KEY"]

[[workload]]
name    = "web"
plane   = "host"
command = ["python3", "-m", "http.server", "--bind", "{bind}", "{port}"]
port    = 8765
secrets = ["OPENAI_API_KEY"]
"#;

// Regression: host apply planned a shared `~/.config/alembic/secrets.env` rewrite and
// `alembic-web.service`, and never looked at where the daemon listens.
#[test]
fn host_dry_run_shows_merge_and_listen_check_and_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(dir.path().join("alembic.toml"), CONFIG).unwrap();
    let out = Command::cargo_bin("alembic")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("ALEMBIC_SECRETS_FILE")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env("HOME", &home)
        .env("OPENAI_API_KEY", CANARY)
        .args(["apply", "--plane", "host"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let home = home.display().to_string();
    for want in [
        format!("{home}/.config/alembic/demo/secrets.env"),
        "(env lines where set: OPENAI_API_KEY)".to_owned(),
        format!("{home}/.config/systemd/user/alembic-demo--web.service"),
        "systemctl --user enable --now alembic-demo--web.service".to_owned(),
        "systemctl --user show -p MainPID --value alembic-demo--web.service".to_owned(),
        "ss -Hltnp".to_owned(),
    ] {
        assert!(stdout.contains(&want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains(&format!("{home}/.config/alembic/secrets.env")));
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
    // A dry run touches nothing under HOME.
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);
}
