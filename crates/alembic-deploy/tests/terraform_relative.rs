//! The runner built from a relative project root, as `alembic -c ./alembic.toml` and
//! `alembic -c alembic.toml` build it from the config's directory (`.`), drives the real
//! `terraform` through init, plan (the plan file written into its private directory) and apply
//! of that plan on the provider-free fixture.
//!
//! This binary holds one test on purpose: it changes the process's working directory, which
//! no other test may share.

use std::collections::HashMap;
use std::path::Path;

use alembic_deploy::droplet::Redactor;
use alembic_deploy::exec::{Executor, Goal, SecretSource};
use alembic_deploy::terraform::{self, Runner};

struct Secrets(HashMap<String, String>);

impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

// With `-c ./alembic.toml` (the CI case) terraform got `-chdir=./infra/terraform` plus a
// relative `-out` that resolved inside the chdir: "Failed to write plan file".
#[test]
fn a_relative_root_plans_and_applies_with_the_real_terraform() {
    let Some(program) = terraform::find_program().or_else(|| alembic_testkit::tool("terraform"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("infra/terraform");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        alembic_testkit::workspace_root().join("tests/fixtures/terraform/provider-free/main.tf"),
        dir.join("main.tf"),
    )
    .unwrap();
    std::env::set_current_dir(tmp.path()).unwrap();

    let t = alembic_config::default_topology();
    let secrets = Secrets(HashMap::from([
        (
            "DIGITALOCEAN_TOKEN".to_owned(),
            "dop_v1_relative_canary".to_owned(),
        ),
        (
            "SPACES_ACCESS_KEY_ID".to_owned(),
            "relative-access".to_owned(),
        ),
        (
            "SPACES_SECRET_ACCESS_KEY".to_owned(),
            "relative-secret".to_owned(),
        ),
    ]));
    let redact = Redactor::new(&[], &secrets);
    // What `Origin::base_dir` gives for both spellings of a config in the working directory.
    for root in [".", "./"] {
        let mut tf = Runner::for_topology(&program.display().to_string(), Path::new(root), &t)
            .expecting_files_of(Path::new("infra/terraform"))
            .unwrap();
        tf.env = vec![
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_CLI_CONFIG_FILE".into(), "/dev/null".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_VAR_generation".into(), root.len().to_string()),
        ];
        assert!(tf.dir.is_absolute(), "{tf:?}");
        let mut ex = Executor::new(Goal::Apply, &secrets);
        let p = terraform::plan(&mut ex, &tf, &redact).unwrap_or_else(|e| panic!("{root}: {e}"));
        assert!(p.plan_file().is_absolute() && p.plan_file().is_file());
        let summary = p.summary.clone().unwrap();
        assert!(summary.has_changes(), "{root}: {summary}");
        terraform::apply(&mut ex, &tf, p, false, &redact).unwrap_or_else(|e| panic!("{root}: {e}"));
        for op in &ex.transcript {
            for a in &op.args {
                if let Some(p) = a.strip_prefix("-chdir=").or(a.strip_prefix("-out=")) {
                    assert!(Path::new(p).is_absolute(), "{op}");
                }
            }
        }
    }
    assert!(dir.join("terraform.tfstate").is_file());
    // Leave the temp dir before it is removed.
    std::env::set_current_dir("/").unwrap();
}
