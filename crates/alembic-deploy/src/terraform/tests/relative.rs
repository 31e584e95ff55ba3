//! The runner built from a relative project root, as `alembic -c ./alembic.toml` and
//! `alembic -c alembic.toml` build it from the config's directory (`.`), drives the real
//! `terraform` through init, plan (the plan file written into its private directory) and apply
//! of that plan on the provider-free fixture.
//!
//! The working directory is process-wide and the other tests of this binary run alongside, so
//! the test runs its body in a child process of this same test binary, started in the temporary
//! project (the child changes nothing the other tests share).

use std::collections::HashMap;
use std::path::Path;

use crate::droplet::Redactor;
use crate::exec::{Executor, Goal, SecretSource};
use crate::terraform::{self, Runner};

struct Secrets(HashMap<String, String>);

impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Set (to the `terraform` program) in the child process that runs the body.
const CHILD_ENV: &str = "ALEMBIC_TEST_RELATIVE_ROOT_TERRAFORM";

// With `-c ./alembic.toml` (the CI case) terraform got `-chdir=./infra/terraform` plus a
// relative `-out` that resolved inside the chdir: "Failed to write plan file".
#[test]
fn a_relative_root_plans_and_applies_with_the_real_terraform() {
    if let Some(program) = std::env::var_os(CHILD_ENV) {
        return plan_and_apply_from_the_working_directory(Path::new(&program));
    }
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
    // This test again, alone, in the temporary project as its working directory.
    let name = concat!(
        module_path!(),
        "::a_relative_root_plans_and_applies_with_the_real_terraform"
    );
    let name = name.split_once("::").map_or(name, |(_, rest)| rest);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .current_dir(tmp.path())
        .env(CHILD_ENV, &program)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // The child ran exactly this test (a filter matching nothing would pass vacuously).
    assert!(text.contains("test result: ok. 1 passed"), "{text}");
    assert!(dir.join("terraform.tfstate").is_file());
}

/// The body, run in the child whose working directory is the temporary project.
fn plan_and_apply_from_the_working_directory(program: &Path) {
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
}
