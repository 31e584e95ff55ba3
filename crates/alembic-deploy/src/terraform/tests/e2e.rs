//! The Terraform runner end to end with the real `terraform` (or `tofu`) binary on the
//! provider-free fixtures (`tests/fixtures/terraform/`): init -> plan -> show -json parsed ->
//! apply of that plan file -> a second plan with no changes; then a change that forces
//! replacement is reported (and refused when the type is protected). The token reaches
//! Terraform only by env (`DIGITALOCEAN_TOKEN` from a differently named variable), is in no
//! file of the project after a real plan and apply, plan files live in a private directory that
//! is gone afterwards, and whatever terraform prints is redacted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::droplet::Redactor;
use crate::exec::{ExecError, Executor, Goal, SecretSource};
use crate::terraform::{self, Action, Runner, TfError};

const CANARY: &str = "dop_v1_canary_4f1e9b0c7d2a";
const TOKEN_NAME: &str = "ALEMBIC_TEST_DO_TOKEN";

struct Secrets(HashMap<String, String>);

impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}

fn secrets(token: &str) -> Secrets {
    Secrets(HashMap::from([(TOKEN_NAME.to_owned(), token.to_owned())]))
}

fn redactor(s: &Secrets) -> Redactor {
    Redactor::new(&[TOKEN_NAME.to_owned()], s)
}

fn terraform_program() -> Option<std::path::PathBuf> {
    if let Some(p) = crate::terraform::find_program() {
        return Some(p);
    }
    alembic_testkit::tool("terraform")
}

/// The runner for the project at `root` (config in `root/infra/terraform`, plan directories
/// under `root/plans`, so a search of `root` covers them), expecting the fixture's files.
fn runner(program: &Path, root: &Path, generation: &str) -> Runner {
    let dir = root.join("infra/terraform");
    let plans = root.join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    Runner {
        program: program.display().to_string(),
        dir: dir.clone(),
        plan_parent: plans,
        expected: Default::default(),
        env: vec![
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_CLI_CONFIG_FILE".into(), "/dev/null".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_VAR_generation".into(), generation.into()),
        ],
        secret_env: vec![("DIGITALOCEAN_TOKEN".into(), TOKEN_NAME.into())],
        backend_env: Vec::new(),
    }
    .expecting_files_of(&dir)
    .unwrap()
}

fn copy_fixture(name: &str, root: &Path) -> PathBuf {
    let from = alembic_testkit::workspace_root()
        .join("tests/fixtures/terraform")
        .join(name);
    let to = root.join("infra/terraform");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to
}

/// Every regular file under `dir` (symlinks not followed) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(e.path());
                }
            }
        }
    }
    hits
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_plan_show_apply_then_no_changes_then_replacement() {
    let Some(program) = terraform_program() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("provider-free", tmp.path());
    let secrets = secrets(CANARY);
    let redact = redactor(&secrets);
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let mut said = String::new();

    // First plan: everything is new.
    let tf = runner(&program, tmp.path(), "1");
    let p = terraform::plan(&mut ex, &tf, &redact).unwrap();
    let s = p.summary.clone().expect("a real run summarises");
    assert_eq!((s.add, s.change, s.destroy), (2, 0, 0), "{s}");
    let addresses: Vec<&str> = s.resources.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        addresses,
        ["terraform_data.droplet", "terraform_data.record_api"]
    );
    assert!(s.resources.iter().all(|r| r.action == Action::Create));
    assert_eq!(s.outputs_changed, ["droplet_name", "reserved_ip"]);
    said.push_str(&s.to_string());
    said.push_str(&serde_json::to_string(&s).unwrap());
    assert!(s
        .to_string()
        .ends_with("Plan: 2 to add, 0 to change, 0 to destroy.\n"));

    terraform::apply(&mut ex, &tf, p, false, &redact).unwrap();
    assert!(dir.join("terraform.tfstate").is_file(), "apply wrote state");

    // Second plan: nothing to do, and apply of an empty plan runs nothing.
    let p = terraform::plan(&mut ex, &tf, &redact).unwrap();
    let again = p.summary.clone().unwrap();
    assert!(!again.has_changes(), "{again}");
    assert_eq!(
        again.to_string(),
        "No changes. Infrastructure matches the configuration.\n"
    );
    let before = ex.transcript.len();
    terraform::apply(&mut ex, &tf, p, false, &redact).unwrap();
    assert_eq!(ex.transcript.len(), before, "no apply op for an empty plan");

    // A new generation forces the stand-in droplet to be replaced.
    let tf2 = runner(&program, tmp.path(), "2");
    let p = terraform::plan(&mut ex, &tf2, &redact).unwrap();
    let r = p.summary.clone().unwrap();
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
    terraform::apply(&mut ex, &tf2, p, false, &redact).unwrap();
    let last = terraform::plan(&mut ex, &tf2, &redact).unwrap();
    assert!(!last.summary.as_ref().unwrap().has_changes());
    drop(last);
    // Every plan directory is gone: applied, empty or dropped unused.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("plans")).unwrap().count(),
        0
    );

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
    copy_fixture("provider-free", tmp.path());
    let secrets = secrets("");
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let tf = runner(&program, tmp.path(), "1");
    let err = terraform::plan(&mut ex, &tf, &redactor(&secrets)).unwrap_err();
    match err {
        TfError::Exec(ExecError::SecretUnset { name }) => assert_eq!(name, TOKEN_NAME),
        other => panic!("unexpected: {other}"),
    }
    // The plan directory made for that plan is gone with the failure.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("plans")).unwrap().count(),
        0
    );
}

// The token was passed as TF_VAR_do_token, so `plan -out` stored it in clear text in a 0644
// plan file inside the project that was never deleted; terraform's stderr was not redacted.
#[test]
fn the_token_reaches_the_provider_by_env_and_no_file_and_no_output() {
    let Some(program) = terraform_program() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("token-echo", tmp.path());
    let secrets = secrets(CANARY);
    let redact = redactor(&secrets);
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let tf = runner(&program, tmp.path(), "1");

    let p = terraform::plan(&mut ex, &tf, &redact).unwrap();
    let plan_dir = p
        .plan_dir()
        .expect("a real plan has its directory")
        .to_path_buf();
    assert!(plan_dir.starts_with(tmp.path().join("plans")));
    #[cfg(unix)]
    {
        assert_eq!(mode(&plan_dir), 0o700, "the plan directory is private");
        assert_eq!(mode(p.plan_file()), 0o600, "the plan file is private");
    }
    assert!(p.plan_file().is_file());
    // The whole project, the plan file and .terraform included, holds no token.
    assert_eq!(
        files_containing(tmp.path(), CANARY.as_bytes()),
        Vec::<PathBuf>::new()
    );

    terraform::apply(&mut ex, &tf, p, false, &redact).unwrap();
    assert!(
        !plan_dir.exists(),
        "the plan directory is removed after apply"
    );
    assert!(tf.dir.join("terraform.tfstate").is_file());
    assert_eq!(
        files_containing(tmp.path(), CANARY.as_bytes()),
        Vec::<PathBuf>::new()
    );

    // The stand-in provider now fails with the token in its error: what alembic shows is
    // redacted, and the plan directory is gone after the failure too.
    let mut failing = tf.clone();
    failing.env.push(("TF_VAR_fail".into(), "true".into()));
    let p = terraform::plan(&mut ex, &failing, &redact).unwrap();
    let plan_dir = p.plan_dir().unwrap().to_path_buf();
    let err = terraform::apply(&mut ex, &failing, p, false, &redact).unwrap_err();
    assert!(
        !plan_dir.exists(),
        "the plan directory is removed after a failure"
    );
    let shown = err.to_string();
    assert!(matches!(err, TfError::Failed { .. }), "{shown}");
    assert!(
        shown.contains("provider rejected token [ALEMBIC_TEST_DO_TOKEN: redacted]"),
        "terraform saw the token by env, and the value is redacted: {shown}"
    );
    assert!(!shown.contains(CANARY), "{shown}");
    assert_eq!(
        files_containing(tmp.path(), CANARY.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        std::fs::read_dir(tmp.path().join("plans")).unwrap().count(),
        0
    );
}

// A hand-added `zz-extra.tf` was planned and applied: the real terraform never runs on it.
#[test]
fn a_file_added_to_the_configuration_stops_the_stage_before_init() {
    let Some(program) = terraform_program() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("provider-free", tmp.path());
    let tf = runner(&program, tmp.path(), "1");
    std::fs::write(
        dir.join("zz-extra.tf"),
        "resource \"terraform_data\" \"extra\" {\n  input = \"0.0.0.0/0\"\n}\n",
    )
    .unwrap();
    let secrets = secrets(CANARY);
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let err = terraform::plan(&mut ex, &tf, &redactor(&secrets)).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string().contains("unknown file zz-extra.tf"),
        "{err}"
    );
    assert!(ex.transcript.is_empty(), "nothing ran: {:?}", ex.transcript);
    assert!(!dir.join(".terraform").exists(), "init never ran");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("plans")).unwrap().count(),
        0
    );
}
