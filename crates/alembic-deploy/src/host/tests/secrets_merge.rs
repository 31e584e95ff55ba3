//! The host secrets file is per project and updated by merge, run for real through the
//! executor into a temporary home: lines the project does not manage stay verbatim, a managed
//! value the environment does not set is kept from the file (with a warning naming it, never
//! its value), a managed name set nowhere is an error naming it, and a symlinked file or one
//! of another mode is refused and left untouched.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::exec::{Executor, Goal, SecretSource};
use crate::host::{self, secrets_file, HostEnv, HostError, HostReport, Step};
use alembic_config::Topology;

const OPENAI: &str = "sk-canary-merge-new $HOME #x 'q' \"d\" \\b ${OTHER} ";
const ANTHROPIC_OLD: &str = "sk-ant-canary-old-77a1";

struct Map(HashMap<String, String>);
impl SecretSource for Map {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}

fn env_with(pairs: &[(&str, &str)]) -> Map {
    Map(pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect())
}

/// The default topology with a second host secret, under project `name`.
fn topology(name: &str) -> Topology {
    let src = alembic_config::DEFAULT_TOML
        .replace(
            "secrets  = [\"OPENAI_API_KEY\"]",
            "secrets  = [\"OPENAI_API_KEY\", \"ANTHROPIC_API_KEY\"]",
        )
        .replacen("name   = \"alembic\"", &format!("name   = \"{name}\""), 1);
    let t = alembic_config::load_str("t.toml", &src)
        .topology
        .expect("valid");
    assert_eq!(t.project.name.as_str(), name);
    t
}

fn uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The steps of host apply that install the merger and merge (and the directories first).
fn merge_steps(t: &Topology, env: &HostEnv) -> Vec<Step> {
    let set = alembic_render::render(t);
    let steps: Vec<Step> = host::install_steps(t, &set, env)
        .unwrap()
        .into_iter()
        .filter(|s| match s {
            Step::MergeSecrets { .. } => true,
            Step::Run(op) => op.program == "mkdir" || op.step == "install secrets merger",
            Step::Listen { .. } => false,
        })
        .collect();
    assert_eq!(steps.len(), 3);
    steps
}

/// Run only the merge steps of host apply for real.
fn merge(t: &Topology, env: &HostEnv, secrets: &Map) -> Result<HostReport, HostError> {
    let steps = merge_steps(t, env);
    let mut ex = Executor::new(Goal::Apply, secrets);
    let r = host::run_steps(&mut ex, &steps, env);
    let shown = format!(
        "{:?}{}",
        ex.transcript,
        serde_json::to_string(&ex.transcript).unwrap()
    );
    assert!(!shown.contains("canary"), "a value reached the transcript");
    r
}

fn write(p: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn project_file(home: &Path, project: &str) -> PathBuf {
    home.join(format!(".config/alembic/{project}/secrets.env"))
}

// Regression: apply rewrote the shared secrets file whole: foreign lines were lost and every
// secret had to be in the environment on every apply.
#[test]
fn merge_keeps_foreign_lines_and_values_the_environment_lacks() {
    let home = tempfile::tempdir().unwrap();
    let env = HostEnv::for_home(home.path(), uid());
    let t = topology("proj-a");
    let file = project_file(home.path(), "proj-a");
    let before = format!(
        "# kept by hand\n\nOTHER_TOOL_TOKEN=  spaced value #not-a-comment\n\
         OPENAI_API_KEY=sk-canary-old-openai\nANTHROPIC_API_KEY={ANTHROPIC_OLD}\nexport X=1\n"
    );
    write(&file, &before, 0o600);
    let secrets = env_with(&[("OPENAI_API_KEY", OPENAI)]);
    let report = merge(&t, &env, &secrets).unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "# kept by hand\n\nOTHER_TOOL_TOKEN=  spaced value #not-a-comment\n\
             OPENAI_API_KEY={OPENAI}\nANTHROPIC_API_KEY={ANTHROPIC_OLD}\nexport X=1\n"
        )
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("ANTHROPIC_API_KEY"));
    assert!(!report.warnings[0].contains("canary"));
    // No temp file is left next to it.
    let mut names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["bin", "secrets.env"]);
}

// Regression: two projects shared one secrets file; now each has its own.
#[test]
fn two_projects_write_two_files_and_a_new_file_is_private() {
    let home = tempfile::tempdir().unwrap();
    let env = HostEnv::for_home(home.path(), uid());
    let both = env_with(&[
        ("OPENAI_API_KEY", OPENAI),
        ("ANTHROPIC_API_KEY", "sk-canary-b"),
    ]);
    merge(&topology("proj-a"), &env, &both).unwrap();
    let only = env_with(&[
        ("OPENAI_API_KEY", "sk-canary-other"),
        ("ANTHROPIC_API_KEY", "x"),
    ]);
    merge(&topology("proj-b"), &env, &only).unwrap();
    let a = project_file(home.path(), "proj-a");
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        format!("ANTHROPIC_API_KEY=sk-canary-b\nOPENAI_API_KEY={OPENAI}\n")
    );
    assert_eq!(mode(&a), 0o600);
    assert!(std::fs::read_to_string(project_file(home.path(), "proj-b"))
        .unwrap()
        .ends_with("OPENAI_API_KEY=sk-canary-other\n"));
}

#[test]
fn a_secret_in_neither_place_is_an_error_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let env = HostEnv::for_home(home.path(), uid());
    let t = topology("proj-a");
    let file = project_file(home.path(), "proj-a");
    let before = "OPENAI_API_KEY=sk-canary-old\n";
    write(&file, before, 0o600);
    let err = merge(&t, &env, &env_with(&[("OPENAI_API_KEY", OPENAI)])).unwrap_err();
    assert!(
        matches!(&err, HostError::SecretsMissing { names, .. } if names == &["ANTHROPIC_API_KEY"])
    );
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("ANTHROPIC_API_KEY") && !msg.contains("canary"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "untouched");
}

#[test]
fn a_symlink_or_a_file_of_another_mode_is_refused_and_untouched() {
    let home = tempfile::tempdir().unwrap();
    let env = HostEnv::for_home(home.path(), uid());
    let t = topology("proj-a");
    let file = project_file(home.path(), "proj-a");
    let both = env_with(&[
        ("OPENAI_API_KEY", OPENAI),
        ("ANTHROPIC_API_KEY", "sk-canary-b"),
    ]);
    // A symlink to a file elsewhere: neither the link nor its target changes.
    let elsewhere = home.path().join("elsewhere.env");
    write(&elsewhere, "SOMETHING=else\n", 0o600);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    let err = merge(&t, &env, &both).unwrap_err();
    assert!(matches!(err, HostError::SecretsFileRefused { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(err.exit_code(), 1);
    assert!(std::fs::symlink_metadata(&file)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        "SOMETHING=else\n"
    );
    // A readable-by-others file.
    std::fs::remove_file(&file).unwrap();
    write(&file, "OPENAI_API_KEY=old\n", 0o644);
    let err = merge(&t, &env, &both).unwrap_err();
    assert!(err.to_string().contains("mode 0600"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "OPENAI_API_KEY=old\n"
    );
    assert_eq!(mode(&file), 0o644);
    // A file of another owner (only root can make one).
    if uid() == 0 {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let err = merge(&t, &env, &both).unwrap_err();
        assert!(err.to_string().contains("owned by uid 0"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "OPENAI_API_KEY=old\n"
        );
    }
    // A directory where the file should be.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let err = merge(&t, &env, &both).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

// ALEMBIC_SECRETS_FILE still overrides where the file is written.
#[test]
fn the_override_path_is_written_instead() {
    let home = tempfile::tempdir().unwrap();
    let other = home.path().join("custom/private.env");
    let env = HostEnv {
        secrets_file: Some(other.clone()),
        ..HostEnv::for_home(home.path(), uid())
    };
    let both = env_with(&[
        ("OPENAI_API_KEY", OPENAI),
        ("ANTHROPIC_API_KEY", "sk-canary-b"),
    ]);
    merge(&topology("proj-a"), &env, &both).unwrap();
    assert_eq!(mode(&other), 0o600);
    assert!(!project_file(home.path(), "proj-a").exists());
}

#[test]
fn merger_is_shellcheck_clean() {
    let Some(shellcheck) = alembic_testkit::tool("shellcheck") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("merge.sh");
    std::fs::write(&p, secrets_file::MERGER).unwrap();
    let out = Command::new(shellcheck)
        .args(["--shell=sh", "--severity=style"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck findings:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// A name repeated in the file: replaced once when the environment sets it (a later line would
// override the new value in the launcher), kept as it was otherwise; a last line without a
// newline is read too.
#[test]
fn repeated_names_and_a_missing_final_newline() {
    let home = tempfile::tempdir().unwrap();
    let env = HostEnv::for_home(home.path(), uid());
    let t = topology("proj-a");
    let file = project_file(home.path(), "proj-a");
    write(
        &file,
        "OPENAI_API_KEY=one\nANTHROPIC_API_KEY=a1\nOPENAI_API_KEY=two\nANTHROPIC_API_KEY=a2",
        0o600,
    );
    let report = merge(&t, &env, &env_with(&[("OPENAI_API_KEY", "sk-canary-n")])).unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "OPENAI_API_KEY=sk-canary-n\nANTHROPIC_API_KEY=a1\nANTHROPIC_API_KEY=a2\n"
    );
    assert_eq!(report.warnings.len(), 1);
}

// A step failing after the merge does not swallow the merge's warning.
#[test]
fn the_warning_survives_a_later_failure() {
    let home = tempfile::tempdir().unwrap();
    let env = HostEnv::for_home(home.path(), uid());
    let t = topology("proj-a");
    write(
        &project_file(home.path(), "proj-a"),
        "ANTHROPIC_API_KEY=sk-canary-kept\n",
        0o600,
    );
    let mut steps = merge_steps(&t, &env);
    steps.push(Step::Run(crate::ops::Op::new(
        crate::stage::Stage::Host,
        "fail",
        "false",
        vec![],
    )));
    let secrets = env_with(&[("OPENAI_API_KEY", OPENAI)]);
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let mut report = HostReport::default();
    let err = host::run_steps_into(&mut ex, &steps, &env, &mut report).unwrap_err();
    assert!(err.to_string().starts_with("fail failed"), "{err}");
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("ANTHROPIC_API_KEY"));
}
