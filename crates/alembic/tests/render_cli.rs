//! `alembic render` end to end: the files it writes and their modes, `--json`, `--check` diffs
//! and exit codes, stale-file removal, and atomicity (an injected failure leaves the previous
//! set whole; a journal left by a killed render is rolled forward, staging from before the
//! commit point is discarded).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use alembic_deploy::facade::{prepare_artifacts, JOURNAL, STAGING};
use assert_cmd::Command;

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir).env_remove("ALEMBIC_CONFIG");
    c
}

/// A temp project with the default topology as `alembic.toml`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alembic.toml"),
        alembic_config::DEFAULT_TOML,
    )
    .unwrap();
    dir
}

fn set_config(dir: &Path, f: impl FnOnce(&str) -> String) {
    let p = dir.join("alembic.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(&text)).unwrap();
}

/// Every file under `root` except alembic.toml, with its bytes and mode.
fn snapshot(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u32)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if rel != "alembic.toml" {
                    let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
                    out.insert(rel, (std::fs::read(&p).unwrap(), mode));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn render_json(dir: &Path) -> serde_json::Value {
    let out = alembic(dir).args(["render", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn render_writes_every_artifact_with_its_mode_next_to_the_config() {
    let dir = project();
    let v = render_json(dir.path());
    assert_eq!(v["format_version"], 1);
    let topology = alembic_config::default_topology();
    let set = alembic_render::render(&topology);
    let written: Vec<&str> = v["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let expected: Vec<&str> = set.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(written, expected);
    let files = snapshot(dir.path());
    for a in set.iter() {
        let (bytes, mode) = &files[&a.path];
        assert_eq!(bytes, &a.bytes, "{}", a.path);
        assert_eq!(*mode, a.mode, "{}", a.path);
    }
    assert_eq!(files["infra/host/bin/alembic-launch"].1, 0o755);
    assert_eq!(files.len(), set.len(), "nothing else is left behind");
    // A second render changes nothing.
    let again = render_json(dir.path());
    assert_eq!(again["written"], serde_json::json!([]));
    assert_eq!(again["unchanged"].as_array().unwrap().len(), set.len());
}

#[test]
fn out_flag_chooses_the_output_root() {
    let dir = project();
    let out = dir.path().join("elsewhere/deep");
    alembic(dir.path())
        .args(["render", "--out"])
        .arg(&out)
        .assert()
        .success();
    assert!(out.join("infra/MANIFEST.json").is_file());
    assert!(!dir.path().join("infra").exists());
}

#[test]
fn check_exits_0_in_sync_and_1_with_a_unified_diff_on_drift() {
    let dir = project();
    // Nothing rendered yet: everything is missing.
    alembic(dir.path())
        .args(["render", "--check"])
        .assert()
        .code(1);
    render_json(dir.path());
    alembic(dir.path())
        .args(["render", "--check"])
        .assert()
        .code(0)
        .stdout("");
    let ci = dir.path().join(".github/workflows/ci.yml");
    let text = std::fs::read_to_string(&ci).unwrap();
    std::fs::write(&ci, text.replace("pnpm build", "pnpm build --hand-edit")).unwrap();
    let before = snapshot(dir.path());
    let out = alembic(dir.path())
        .args(["render", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(diff.contains("--- disk/.github/workflows/ci.yml"), "{diff}");
    assert!(
        diff.contains("+++ render/.github/workflows/ci.yml"),
        "{diff}"
    );
    assert!(
        diff.contains("-    - name: pnpm build --hand-edit"),
        "{diff}"
    );
    assert!(diff.contains("+    - name: pnpm build"), "{diff}");
    assert_eq!(before, snapshot(dir.path()), "--check wrote something");
    // JSON names the drifted file and its status.
    let out = alembic(dir.path())
        .args(["render", "--check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["in_sync"], false);
    assert_eq!(v["drift"][0]["path"], ".github/workflows/ci.yml");
    assert_eq!(v["drift"][0]["status"], "changed");
}

#[test]
fn check_reports_mode_changes_and_extra_files() {
    let dir = project();
    render_json(dir.path());
    let launcher = dir.path().join("infra/host/bin/alembic-launch");
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o644)).unwrap();
    set_config(dir.path(), |t| {
        t.replace("os = \"macos\"", "os = \"linux\"")
    });
    let out = alembic(dir.path())
        .args(["render", "--check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status: BTreeMap<String, String> = v["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(status["infra/host/bin/alembic-launch"], "mode");
    assert_eq!(
        status["infra/host/launchd/com.alembic.alembic.local-models.plist"],
        "extra"
    );
    assert_eq!(
        status["infra/host/systemd/alembic-alembic--local-models.service"],
        "missing"
    );
}

#[test]
fn files_a_previous_render_wrote_but_the_new_set_lacks_are_removed() {
    let dir = project();
    render_json(dir.path());
    // A file alembic never wrote must survive any render.
    let mine = dir.path().join("infra/host/launchd/notes.txt");
    std::fs::write(&mine, "mine").unwrap();
    set_config(dir.path(), |t| {
        t.replace("os = \"macos\"", "os = \"linux\"")
    });
    let v = render_json(dir.path());
    let removed: Vec<&str> = v["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        [
            "infra/host/launchd/com.alembic.alembic.agent-browser.plist",
            "infra/host/launchd/com.alembic.alembic.local-models.plist",
            "infra/host/launchd/com.alembic.alembic.nightly-digest.plist",
        ]
    );
    for r in removed {
        assert!(!dir.path().join(r).exists());
    }
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    assert!(dir
        .path()
        .join("infra/host/systemd/alembic-alembic--nightly-digest.timer")
        .is_file());
    alembic(dir.path())
        .args(["render", "--check"])
        .assert()
        .code(0);
}

fn assert_no_leftovers(root: &Path) {
    assert!(!root.join(JOURNAL).exists());
    assert!(!root.join(STAGING).exists());
}

/// A directory where the new set needs a file: the render fails before its commit point and
/// the previous set is byte-for-byte what it was (nothing replaced, nothing removed).
#[test]
fn a_directory_in_the_way_leaves_the_previous_set_whole() {
    let dir = project();
    render_json(dir.path());
    let before = snapshot(dir.path());
    // Switch to linux (new units, plists to remove) and change a workflow too.
    set_config(dir.path(), |t| {
        t.replace("os = \"macos\"", "os = \"linux\"")
            .replace("\"pnpm test\"]", "\"pnpm test\", \"pnpm lint\"]")
    });
    let blocker = dir
        .path()
        .join("infra/host/systemd/alembic-alembic--nightly-digest.timer");
    std::fs::create_dir_all(&blocker).unwrap();
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert_eq!(before, snapshot(dir.path()));
    assert_no_leftovers(dir.path());
    // Once the obstacle is gone the same render succeeds.
    std::fs::remove_dir(&blocker).unwrap();
    render_json(dir.path());
    alembic(dir.path())
        .args(["render", "--check"])
        .assert()
        .code(0);
}

/// A file where the new set needs a directory fails the same way.
#[test]
fn a_file_in_the_way_of_a_directory_leaves_the_previous_set_whole() {
    let dir = project();
    render_json(dir.path());
    set_config(dir.path(), |t| {
        t.replace("os = \"macos\"", "os = \"linux\"")
    });
    std::fs::write(dir.path().join("infra/host/systemd"), "not a dir").unwrap();
    let before = snapshot(dir.path());
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(before, snapshot(dir.path()));
    assert_no_leftovers(dir.path());
}

/// A render killed after its commit point (journal written, nothing renamed yet): the next
/// render rolls the journal forward, so the disk holds the whole new set, never a mix.
#[test]
fn a_journal_left_by_a_killed_render_is_rolled_forward() {
    let dir = project();
    render_json(dir.path());
    set_config(dir.path(), |t| {
        t.replace("os = \"macos\"", "os = \"linux\"")
    });
    let text = std::fs::read_to_string(dir.path().join("alembic.toml")).unwrap();
    let linux = alembic_config::load_str("alembic.toml", &text)
        .topology
        .unwrap();
    let new_set = alembic_render::render(&linux);
    let committed = prepare_artifacts(dir.path(), &new_set)
        .unwrap()
        .commit()
        .unwrap();
    // The kill: the committed render never runs its renames.
    drop(committed);
    assert!(dir.path().join(JOURNAL).is_file());
    // --check only reads: it warns about the interrupted render.
    let out = alembic(dir.path())
        .args(["render", "--check"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted render"));
    let out = alembic(dir.path())
        .args(["render", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("finished an interrupted render"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["written"],
        serde_json::json!([]),
        "the roll-forward already wrote all"
    );
    assert_no_leftovers(dir.path());
    let files = snapshot(dir.path());
    assert_eq!(files.len(), new_set.len());
    for a in new_set.iter() {
        assert_eq!(files[&a.path].0, a.bytes, "{}", a.path);
    }
}

/// Staging from a render killed before its commit point (no journal, or a torn one) is
/// discarded: the old set is what stays.
#[test]
fn staging_without_a_complete_journal_is_discarded() {
    let dir = project();
    render_json(dir.path());
    let before = snapshot(dir.path());
    let linux_text = alembic_config::DEFAULT_TOML.replace("os = \"macos\"", "os = \"linux\"");
    let linux = alembic_config::load_str("x", &linux_text).topology.unwrap();
    let prepared = prepare_artifacts(dir.path(), &alembic_render::render(&linux)).unwrap();
    std::mem::forget(prepared);
    std::fs::write(dir.path().join(JOURNAL), "{\"format_version\":1,\"wri").unwrap();
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("discarded the staging"));
    assert_no_leftovers(dir.path());
    assert_eq!(before, snapshot(dir.path()));
}

#[test]
fn an_invalid_config_renders_nothing_and_exits_1() {
    let dir = project();
    set_config(dir.path(), |t| {
        t.replace("os = \"macos\"", "os = \"plan9\"")
    });
    alembic(dir.path()).arg("render").assert().code(1);
    assert!(!dir.path().join("infra").exists());
}

/// Secret values in the environment of `alembic render` never reach a file or stdout.
#[test]
fn canary_secret_values_never_reach_rendered_files() {
    let dir = project();
    let canaries = [
        ("DIGITALOCEAN_TOKEN", "dop_v1_canary_5e3f0a"),
        ("OPENAI_API_KEY", "sk-canary-render-91b2"),
        ("DATABASE_URL", "postgres://canary:pw@db/x"),
    ];
    let mut cmd = alembic(dir.path());
    for (k, v) in canaries {
        cmd.env(k, v);
    }
    let out = cmd.args(["render", "--json"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (path, (bytes, _)) in snapshot(dir.path()) {
        let text = String::from_utf8_lossy(&bytes);
        for (_, v) in canaries {
            assert!(!text.contains(v), "{path} holds a secret value");
            assert!(!stdout.contains(v));
        }
    }
}

/// A failure after the commit point, half way through the renames (a directory appears where a
/// file goes): the renames already done are undone from the backups, so the previous set is
/// whole again and no journal is left to roll a broken set forward.
#[test]
fn a_failure_during_the_renames_is_rolled_back() {
    let dir = project();
    render_json(dir.path());
    let before = snapshot(dir.path());
    let linux_text = alembic_config::DEFAULT_TOML
        .replace("os = \"macos\"", "os = \"linux\"")
        .replace("\"pnpm test\"]", "\"pnpm test\", \"pnpm lint\"]");
    let linux = alembic_config::load_str("x", &linux_text).topology.unwrap();
    let committed = prepare_artifacts(dir.path(), &alembic_render::render(&linux))
        .unwrap()
        .commit()
        .unwrap();
    // The last rename in path order; ci.yml and the manifest are replaced before it.
    let blocker = dir
        .path()
        .join("infra/host/systemd/alembic-alembic--nightly-digest.timer");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let err = committed.apply().unwrap_err();
    assert!(!err.to_string().is_empty());
    std::fs::remove_dir_all(&blocker).unwrap();
    assert_no_leftovers(dir.path());
    assert_eq!(before, snapshot(dir.path()));
}
