//! A provisioned droplet (no `droplet.address`) through the CLI, with the real `terraform`:
//! before the infra plane is applied, `apply` (dry run) shows the droplet's ops with the
//! address marked unknown and `apply --plane droplet --yes` stops with exit 3 and a hint to
//! apply the infra plane first; once Terraform's state holds a `reserved_ip` output, the droplet
//! plane connects to that address (here 127.0.0.1 on a closed port: ssh is refused, exit 3,
//! naming it).

mod support;

use std::path::Path;

use assert_cmd::Command;
use support::shims;
use support::template::{deployable, DOMAIN};

const SECRETS: [&str; 7] = [
    "DATABASE_URL",
    "DEPLOY_SSH_KEY",
    "DIGITALOCEAN_TOKEN",
    "GATEWAY_SIGNING_KEY",
    "OPENAI_API_KEY",
    "SPACES_ACCESS_KEY_ID",
    "SPACES_SECRET_ACCESS_KEY",
];
const PLACEHOLDER: &str = "<reserved_ip: unknown until the infra plane is applied>";

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir)
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("CI")
        .env_remove("ALEMBIC_CONTEXT")
        .env_remove("GITHUB_ACTIONS")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null");
    for n in SECRETS {
        c.env_remove(n);
    }
    c
}

fn out(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn droplet_address_comes_from_the_infra_plane() {
    let Some(terraform) = alembic_testkit::tool("terraform") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = shims::closed_port();
    // Local Terraform state: the test stands in for the infra apply with a state file written
    // by the provider-free fixture (no Spaces bucket is reachable here).
    let config = deployable(alembic_config::DEFAULT_TOML)
        .replace("ssh_port    = 22\n", &format!("ssh_port    = {port}\n"))
        .replace("state_bucket = \"alembic-tfstate\"", "");
    assert_ne!(config, alembic_config::DEFAULT_TOML);
    std::fs::write(dir.join("alembic.toml"), config).unwrap();
    let o = alembic(dir).arg("render").output().unwrap();
    assert!(o.status.success(), "{:?}", out(&o));

    // Dry run of every plane: infra's ops, then the droplet's with the placeholder.
    let (code, stdout, stderr) = out(&alembic(dir).arg("apply").output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let droplet = &stdout[stdout.find("plane droplet").expect(&stdout)..];
    assert!(
        droplet.starts_with("plane droplet: release 1 (first release)\n"),
        "{droplet}"
    );
    assert!(
        droplet.contains(
            "note: the droplet's address is unknown until the infra plane is applied (the \
             Terraform state has no `reserved_ip` output: the infra plane has not been applied yet)"
        ),
        "{droplet}"
    );
    let tf_dir = dir.join("infra/terraform");
    // The config was found in the working directory: terraform gets the absolute path.
    let cwd = std::fs::canonicalize(dir).unwrap();
    assert!(
        droplet.contains(&format!(
            "     1. read the droplet address (terraform output): {} '-chdir={}/infra/terraform' output -json -no-color\n",
            terraform.display(),
            cwd.display(),
        )),
        "{droplet}"
    );
    let lease = droplet
        .lines()
        .find(|l| l.contains(". take lease: ssh "))
        .expect(droplet);
    assert!(
        lease.contains(&format!("-p {port} -- 'deploy@{PLACEHOLDER}' ")),
        "{lease}"
    );
    let probe = droplet
        .lines()
        .find(|l| l.contains(&format!(". probe api.{DOMAIN}/healthz: curl ")))
        .expect(droplet);
    assert!(
        probe.contains(&format!("--resolve 'api.{DOMAIN}:443:{PLACEHOLDER}'")),
        "{probe}"
    );

    // The same plan as JSON: the first droplet op is the read-only `terraform output`.
    let (code, stdout, _) = out(&alembic(dir)
        .args(["--json", "plan", "--plane", "droplet"])
        .output()
        .unwrap());
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let op0 = &v["planes"][0]["ops"][0];
    assert_eq!(op0["mutating"], false, "{op0}");
    assert_eq!(op0["args"][2], "-json");

    // Applying the droplet plane alone cannot work yet: exit 3, pointing at the infra plane,
    // and nothing was attempted over ssh.
    let (code, stdout, stderr) = out(&alembic(dir)
        .args(["apply", "--plane", "droplet", "--yes"])
        .output()
        .unwrap());
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(
        stderr.contains("error: the droplet's address is not known yet: the Terraform state has no `reserved_ip` output"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: apply the infra plane first (`alembic apply --plane infra --yes`"),
        "{stderr}"
    );
    assert!(!stderr.contains("ssh"), "no ssh was attempted: {stderr}");

    // Terraform state with the output (the provider-free fixture applied for real, standing in
    // for the DigitalOcean apply): the droplet plane now reaches 127.0.0.1 on the closed port.
    let fixture = tmp.path().join("fixture");
    std::fs::create_dir_all(&fixture).unwrap();
    std::fs::copy(
        alembic_testkit::workspace_root().join("tests/fixtures/terraform/provider-free/main.tf"),
        fixture.join("main.tf"),
    )
    .unwrap();
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"][..],
    ] {
        let o = std::process::Command::new(&terraform)
            .arg(format!("-chdir={}", fixture.display()))
            .args(args)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("TF_VAR_reserved_ip", "127.0.0.1")
            .output()
            .unwrap();
        assert!(o.status.success(), "terraform {args:?}: {:?}", out(&o));
    }
    std::fs::copy(
        fixture.join("terraform.tfstate"),
        tf_dir.join("terraform.tfstate"),
    )
    .unwrap();
    let (code, stdout, stderr) = out(&alembic(dir)
        .args(["plan", "--plane", "droplet"])
        .output()
        .unwrap());
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot reach the droplet over ssh")
            && stderr.contains(&format!("127.0.0.1 port {port}")),
        "{stderr}"
    );
    assert!(!stderr.contains(PLACEHOLDER));
}
