//! The infra stage with remote state (the default's Spaces bucket): the Spaces key pair reaches
//! `terraform` only through its environment, as `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//! taken from the configured names.
//! - Dry run: the exact transcript names the variables and never holds a value (canaries).
//! - Real `terraform init` on the provider-free fixture with the same `backend "s3"` block,
//!   pointed at a closed loopback port: with the runner's env it gets past credentials to a
//!   connection error; without the mapping it stops at "No valid credential sources"; with a
//!   name unset nothing runs. No canary value appears in any error.

use std::collections::HashMap;
use std::path::Path;

use crate::droplet::Redactor;
use crate::exec::{ExecError, Executor, Goal, SecretSource};
use crate::terraform::{self, Runner, TfError};

struct Secrets(HashMap<String, String>);

impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}

const TOKEN: &str = "dop_v1_canary_state_test_0b7c";
const ACCESS: &str = "DO00CANARYSTATEACCESS";
const SECRET: &str = "canary-state-secret-93e1f0";

fn secrets(with_state: bool) -> Secrets {
    let mut m = HashMap::from([("DIGITALOCEAN_TOKEN".to_owned(), TOKEN.to_owned())]);
    if with_state {
        m.insert("SPACES_ACCESS_KEY_ID".into(), ACCESS.into());
        m.insert("SPACES_SECRET_ACCESS_KEY".into(), SECRET.into());
    }
    Secrets(m)
}

#[track_caller]
fn assert_no_value(text: &str) {
    for v in [TOKEN, ACCESS, SECRET] {
        assert!(!text.contains(v), "a secret value leaked:\n{text}");
    }
    assert!(!text.to_lowercase().contains("canary"), "{text}");
}

#[test]
fn dry_run_transcript_names_the_state_credentials_and_holds_no_value() {
    let t = alembic_config::default_topology();
    let mut tf = Runner::for_topology("terraform", Path::new("/srv/site"), &t);
    tf.plan_parent = "/tmp".into();
    // Nothing rendered at /srv/site and nothing expected: the configuration check passes.
    tf.expected.clear();
    let s = secrets(true);
    let redact = Redactor::new(&[], &s);
    let mut ex = Executor::new(Goal::DryRun, &s);
    let p = terraform::plan(&mut ex, &tf, &redact).unwrap();
    assert_eq!(p.summary, None);
    terraform::apply(&mut ex, &tf, p, false, &redact).unwrap();
    let lines: Vec<String> = ex.transcript.iter().map(|o| o.to_string()).collect();
    let state =
        "AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY";
    let dir = "'-chdir=/srv/site/infra/terraform'";
    let plan = "/tmp/alembic-tfplan-XXXXXX/alembic.tfplan";
    assert_eq!(
        lines,
        [
            format!("[env: {state}] terraform {dir} init '-input=false' -no-color"),
            format!("[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN, {state}] terraform {dir} plan '-input=false' -no-color -detailed-exitcode '-out={plan}'"),
            format!("terraform {dir} show -json -no-color {plan}"),
            format!("[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN, {state}] terraform {dir} apply '-input=false' -no-color {plan}"),
        ]
    );
    let json = serde_json::to_string(&ex.transcript).unwrap();
    assert!(json.contains("SPACES_SECRET_ACCESS_KEY"));
    assert_no_value(&format!("{}\n{json}", lines.join("\n")));
    // Argv never carries a credential, only the env map does (by name).
    for op in &ex.transcript {
        assert!(!op.args.iter().any(|a| a.contains("AWS_")), "{op}");
    }
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `<root>/infra/terraform/main.tf`: the spaces-backend fixture pointed at `127.0.0.1:<port>`
/// (path-style so no `<bucket>.<host>` name is resolved, one attempt).
fn project(root: &Path, port: u16) {
    let src =
        alembic_testkit::workspace_root().join("tests/fixtures/terraform/spaces-backend/main.tf");
    let text = std::fs::read_to_string(src)
        .unwrap()
        .replacen(
            "https://nyc3.digitaloceanspaces.com",
            &format!("http://127.0.0.1:{port}"),
            1,
        )
        .replacen(
            "use_path_style              = false",
            "use_path_style              = true\n    max_retries                 = 1",
            1,
        );
    assert!(text.contains("max_retries"));
    let dir = root.join("infra/terraform");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), text).unwrap();
}

/// The runner alembic builds, plus non-secret knobs keeping Terraform and the AWS SDK away from
/// this machine's configuration and the network.
fn runner(program: &Path, root: &Path, t: &alembic_config::Topology) -> Runner {
    let mut tf = Runner::for_topology(&program.display().to_string(), root, t)
        .expecting_files_of(&root.join("infra/terraform"))
        .unwrap();
    tf.env = vec![
        ("CHECKPOINT_DISABLE".into(), "1".into()),
        ("TF_CLI_CONFIG_FILE".into(), "/dev/null".into()),
        ("TF_IN_AUTOMATION".into(), "1".into()),
        ("HOME".into(), root.display().to_string()),
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    tf
}

fn init_failure(r: Result<terraform::TfPlan, TfError>) -> String {
    match r {
        Err(TfError::Failed { step, stderr, .. }) => {
            assert_eq!(step, "terraform init");
            stderr
        }
        other => panic!("expected init to fail: {other:?}"),
    }
}

#[test]
fn real_init_gets_the_key_pair_from_the_env_and_no_further_than_the_closed_port() {
    let Some(program) = alembic_testkit::tool("terraform") else {
        return;
    };
    let t = alembic_config::default_topology();
    assert!(t.droplet.remote_state().is_some());
    let tmp = tempfile::tempdir().unwrap();
    let port = closed_port();
    project(tmp.path(), port);
    let tf = runner(&program, tmp.path(), &t);

    // Names unset: refused before anything runs, naming the variable (not a value).
    let s = secrets(false);
    let redact = Redactor::new(&[], &s);
    let mut ex = Executor::new(Goal::Apply, &s);
    match terraform::plan(&mut ex, &tf, &redact) {
        Err(TfError::Exec(ExecError::SecretUnset { name })) => {
            assert_eq!(name, "SPACES_ACCESS_KEY_ID")
        }
        other => panic!("expected SecretUnset: {other:?}"),
    }

    // With the key pair: terraform parsed the backend, took the credentials from its env and
    // tried the bucket: the only failure is the connection.
    let s = secrets(true);
    let mut ex = Executor::new(Goal::Apply, &s);
    let err = terraform::plan(&mut ex, &tf, &redact);
    let shown = match &err {
        Err(e) => e.to_string(),
        Ok(_) => String::new(),
    };
    let stderr = init_failure(err);
    assert!(
        stderr.contains("connection refused") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("credential"), "{stderr}");
    assert_no_value(&format!("{stderr}\n{shown}"));

    // Control: the same run without the runner's mapping has no credentials at all, so the
    // success above came from `AWS_*` set by the runner (the test process has none).
    assert!(std::env::var_os("AWS_ACCESS_KEY_ID").is_none());
    let mut bare = tf.clone();
    bare.backend_env.clear();
    let mut ex = Executor::new(Goal::Apply, &s);
    let stderr = init_failure(terraform::plan(&mut ex, &bare, &redact));
    assert!(
        stderr.contains("No valid credential sources found"),
        "{stderr}"
    );
    assert_no_value(&stderr);
}
