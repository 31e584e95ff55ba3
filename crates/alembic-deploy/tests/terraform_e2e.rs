//! The Terraform runner end to end with the real `terraform` (or `tofu`) binary on the
//! provider-free fixture (`tests/fixtures/terraform/provider-free`): init -> plan -> show -json
//! parsed -> apply of that plan file -> a second plan with no changes; then a change that forces
//! replacement is reported (and refused when the type is protected). The sensitive token reaches
//! Terraform only by env (`TF_VAR_do_token` from a differently named variable) and no output of
//! ours contains it.

use std::collections::HashMap;
use std::path::Path;

use alembic_deploy::exec::{ExecError, Executor, Goal, SecretSource};
use alembic_deploy::terraform::{self, Action, Runner, TfError};

const CANARY: &str = "dop_v1_canary_4f1e9b0c7d2a";

struct Secrets(HashMap<String, String>);

impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}

fn terraform_program() -> Option<std::path::PathBuf> {
    if let Some(p) = alembic_deploy::terraform::find_program() {
        return Some(p);
    }
    alembic_testkit::tool("terraform")
}

fn runner(program: &Path, dir: &Path, generation: &str) -> Runner {
    Runner {
        program: program.display().to_string(),
        dir: dir.to_path_buf(),
        plan_file: dir.join("alembic.tfplan"),
        env: vec![
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_CLI_CONFIG_FILE".into(), "/dev/null".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            (
                "TF_DATA_DIR".into(),
                dir.join(".tfdata").display().to_string(),
            ),
            ("TF_VAR_generation".into(), generation.into()),
        ],
        secret_env: vec![("TF_VAR_do_token".into(), "ALEMBIC_TEST_DO_TOKEN".into())],
        backend_env: Vec::new(),
    }
}

fn copy_fixture(to: &Path) {
    let from = alembic_testkit::workspace_root().join("tests/fixtures/terraform/provider-free");
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn init_plan_show_apply_then_no_changes_then_replacement() {
    let Some(program) = terraform_program() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("infra/terraform");
    copy_fixture(&dir);
    let secrets = Secrets(HashMap::from([(
        "ALEMBIC_TEST_DO_TOKEN".to_owned(),
        CANARY.to_owned(),
    )]));
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let mut said = String::new();

    // First plan: everything is new.
    let tf = runner(&program, &dir, "1");
    let s = terraform::plan(&mut ex, &tf)
        .unwrap()
        .expect("a real run summarises");
    assert_eq!((s.add, s.change, s.destroy), (2, 0, 0), "{s}");
    let addresses: Vec<&str> = s.resources.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        addresses,
        ["terraform_data.droplet", "terraform_data.record_api"]
    );
    assert!(s.resources.iter().all(|r| r.action == Action::Create));
    assert_eq!(
        s.outputs_changed,
        ["droplet_name", "reserved_ip", "token_hash"]
    );
    said.push_str(&s.to_string());
    said.push_str(&serde_json::to_string(&s).unwrap());
    assert!(s
        .to_string()
        .ends_with("Plan: 2 to add, 0 to change, 0 to destroy.\n"));

    terraform::apply(&mut ex, &tf, Some(&s), false).unwrap();
    assert!(dir.join("terraform.tfstate").is_file(), "apply wrote state");

    // Second plan: nothing to do, and apply of an empty plan runs nothing.
    let again = terraform::plan(&mut ex, &tf).unwrap().unwrap();
    assert!(!again.has_changes(), "{again}");
    assert_eq!(
        again.to_string(),
        "No changes. Infrastructure matches the configuration.\n"
    );
    let before = ex.transcript.len();
    terraform::apply(&mut ex, &tf, Some(&again), false).unwrap();
    assert_eq!(ex.transcript.len(), before, "no apply op for an empty plan");

    // A new generation forces the stand-in droplet to be replaced.
    let tf2 = runner(&program, &dir, "2");
    let r = terraform::plan(&mut ex, &tf2).unwrap().unwrap();
    assert_eq!((r.add, r.change, r.destroy), (1, 0, 1), "{r}");
    let rep: Vec<_> = r.replacements().collect();
    assert_eq!(rep.len(), 1);
    assert_eq!(rep[0].address, "terraform_data.droplet");
    assert_eq!(rep[0].action, Action::DeleteThenCreate);
    assert_eq!(rep[0].replace_because, ["triggers_replace"]);
    assert!(r.to_string().contains(
        "-/+ terraform_data.droplet (replace (destroy, then create)) forced by triggers_replace"
    ));
    said.push_str(&r.to_string());

    // Were terraform_data a protected type, apply would refuse without --allow-replace.
    let err = r
        .check_replacements(&["terraform_data"], false)
        .unwrap_err();
    assert!(matches!(err, TfError::ReplaceRefused(_)));
    let msg = err.to_string();
    assert!(msg.contains("terraform_data.droplet"), "{msg}");
    assert!(msg.contains("--allow-replace"), "{msg}");
    said.push_str(&msg);

    // It is not protected (only the droplet and reserved IP are): apply that exact plan file.
    terraform::apply(&mut ex, &tf2, Some(&r), false).unwrap();
    let last = terraform::plan(&mut ex, &tf2).unwrap().unwrap();
    assert!(!last.has_changes(), "{last}");

    // The token was passed by env var name only.
    said.push_str(&format!("{:?}", ex.transcript));
    for op in &ex.transcript {
        said.push_str(&op.to_string());
    }
    assert!(!said.contains(CANARY), "the token value leaked");
    let apply_ops = ex
        .transcript
        .iter()
        .filter(|o| o.args.iter().any(|a| a == "apply"))
        .count();
    assert_eq!(apply_ops, 2);
}

#[test]
fn a_missing_token_stops_before_terraform_plans() {
    let Some(program) = terraform_program() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("infra/terraform");
    copy_fixture(&dir);
    let secrets = Secrets(HashMap::from([(
        "ALEMBIC_TEST_DO_TOKEN".to_owned(),
        String::new(),
    )]));
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let err = terraform::plan(&mut ex, &runner(&program, &dir, "1")).unwrap_err();
    match err {
        TfError::Exec(ExecError::SecretUnset { name }) => assert_eq!(name, "ALEMBIC_TEST_DO_TOKEN"),
        other => panic!("unexpected: {other}"),
    }
}
