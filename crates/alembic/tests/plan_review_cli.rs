//! A plan a person can review: each stage ends with a summary line and the plan with
//! `Plan: X to add, Y to change, Z to destroy`; the ssh connection is described once; the
//! default droplet plan of the default topology fits on one screen, `--verbose` shows every
//! argv; the JSON plan carries the same summary. `rollback --plane` offers only `droplet`.
//!
//! The init template made deployable, provisioned with local state and not applied yet: the
//! droplet stage plans a first release with its address unknown (real terraform reads the
//! missing output; nothing is reached over ssh).

mod support;

use std::path::Path;

use assert_cmd::Command;
use support::template::deployable;

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir)
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("CI")
        .env_remove("ALEMBIC_CONTEXT")
        .env_remove("GITHUB_ACTIONS")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_default_droplet_plan_is_reviewable_and_summarised() {
    if alembic_testkit::tool("terraform").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config =
        deployable(alembic_config::DEFAULT_TOML).replace("state_bucket = \"alembic-tfstate\"", "");
    std::fs::write(dir.join("alembic.toml"), config).unwrap();
    let (code, _, stderr) = run(alembic(dir).arg("render"));
    assert_eq!(code, 0, "{stderr}");

    let (code, stdout, stderr) = run(alembic(dir).args(["plan", "--plane", "droplet"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() < 60, "{} lines:\n{stdout}", lines.len());
    assert!(
        lines.contains(&"  = droplet: release 1: 3 to add, 0 to change, 0 to remove"),
        "{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&"Plan: 3 to add, 0 to change, 0 to destroy")
    );
    // The connection once, as a header; no op repeats ssh's options.
    let headers = lines
        .iter()
        .filter(|l| l.contains("over ssh: deploy@"))
        .count();
    assert_eq!(headers, 1, "{stdout}");
    assert!(!stdout.contains("ControlMaster"), "{stdout}");
    assert!(lines.contains(&"  *  3. take lease"), "{stdout}");

    // --verbose: every argv, as apply's dry run shows them.
    let (code, verbose, _) = run(alembic(dir).args(["plan", "--plane", "droplet", "--verbose"]));
    assert_eq!(code, 0);
    assert!(
        verbose
            .lines()
            .any(|l| l.starts_with("  *  3. take lease: ssh ") && l.contains("ControlMaster")),
        "{verbose}"
    );

    // JSON: the same summary, per stage and for the whole plan.
    let (code, json, _) = run(alembic(dir).args(["--json", "plan", "--plane", "droplet"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["summary"],
        serde_json::json!({"add": 3, "change": 0, "destroy": 0,
            "line": "Plan: 3 to add, 0 to change, 0 to destroy"})
    );
    assert_eq!(
        v["planes"][0]["summary"]["line"],
        "droplet: release 1: 3 to add, 0 to change, 0 to remove"
    );
}

#[test]
fn rollback_offers_only_the_droplet_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(alembic(tmp.path()).args(["rollback", "--plane", "host"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("[possible values: droplet]"), "{stderr}");
}
