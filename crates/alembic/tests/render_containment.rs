//! `alembic render` never reaches outside its output root: the tree under the root (its
//! manifest, a render journal, directories) is data from a checkout anyone could have written.
//! Planted links, manifest entries and journals are refused or ignored; a file outside the root
//! is never written, truncated or removed. And `.gitignore` is merged into, never replaced.

use std::path::Path;

use alembic_deploy::facade::{JOURNAL, PROBE, STAGING};
use assert_cmd::Command;

fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir).env_remove("ALEMBIC_CONFIG");
    c
}

/// A temp project (the default topology, on Linux when `linux`) and a separate "outside"
/// directory holding one file, `victim`, that no render may touch.
fn project_and_outside(linux: bool) -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = if linux {
        alembic_config::DEFAULT_TOML.replace("os = \"macos\"", "os = \"linux\"")
    } else {
        alembic_config::DEFAULT_TOML.to_owned()
    };
    std::fs::write(dir.path().join("alembic.toml"), text).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), "outside, keep me\n").unwrap();
    (dir, outside)
}

fn assert_outside_untouched(outside: &Path) {
    let names: Vec<String> = std::fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["victim"], "nothing appears outside the root");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "outside, keep me\n"
    );
}

fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn manifest_listing(paths: &[&str]) -> String {
    let files: Vec<serde_json::Value> = paths
        .iter()
        .map(|p| {
            serde_json::json!({"path": p, "sha256": "00", "mode": "0644", "plane": "host",
                "kind": "launchd_plist"})
        })
        .collect();
    serde_json::json!({"format_version": 1, "generator": "alembic 0.0.0", "files": files})
        .to_string()
}

// Red-team repro: a manifest entry through a symlinked directory deleted a file outside the
// repository (a Linux render removes every launchd plist the previous manifest lists).
#[test]
fn a_planted_manifest_entry_through_a_symlinked_dir_touches_nothing_outside() {
    let (dir, outside) = project_and_outside(true);
    link(outside.path(), &dir.path().join("infra/host/launchd"));
    // `victim` has no .plist extension, so it is not even a known path; a plist is.
    std::fs::copy(
        outside.path().join("victim"),
        outside.path().join("x.plist"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("infra/MANIFEST.json"),
        manifest_listing(&["infra/host/launchd/victim", "infra/host/launchd/x.plist"]),
    )
    .unwrap();
    let out = alembic(dir.path()).arg("render").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("infra/host/launchd") && stderr.contains("symbolic link"),
        "the error names the link: {stderr}"
    );
    assert!(outside.path().join("x.plist").is_file(), "{stderr}");
    std::fs::remove_file(outside.path().join("x.plist")).unwrap();
    assert_outside_untouched(outside.path());
    assert!(
        !dir.path().join("infra/terraform").exists(),
        "nothing written"
    );
    assert!(!dir.path().join(STAGING).exists());
}

// A manifest entry naming a file alembic never renders (here the user's README) is ignored
// with a note; it used to be removed as "stale".
#[test]
fn a_planted_manifest_entry_outside_the_known_set_is_ignored() {
    let (dir, _outside) = project_and_outside(false);
    std::fs::write(dir.path().join("README.md"), "mine\n").unwrap();
    std::fs::create_dir_all(dir.path().join("infra")).unwrap();
    std::fs::write(
        dir.path().join("infra/MANIFEST.json"),
        manifest_listing(&["README.md"]),
    )
    .unwrap();
    let out = alembic(dir.path())
        .args(["render", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ignored") && stderr.contains("README.md"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["ignored"][0].as_str().unwrap().contains("README.md"),
        "{v}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "mine\n"
    );
}

fn plant_journal(root: &Path, write: &str) {
    let staged = root.join(STAGING).join("new").join(write);
    std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
    std::fs::write(&staged, "planted\n").unwrap();
    std::fs::write(
        root.join(JOURNAL),
        serde_json::json!({"format_version": 1,
            "writes": [{"path": write, "replaces": false}], "removes": []})
        .to_string(),
    )
    .unwrap();
}

// Red-team repro: a planted journal overwrote a file outside the repository (its write path
// ran through a symlinked directory). A path outside the known set: ignored, with a note.
#[test]
fn a_planted_journal_outside_the_known_set_is_ignored() {
    let (dir, outside) = project_and_outside(false);
    link(outside.path(), &dir.path().join("elsewhere"));
    plant_journal(dir.path(), "elsewhere/victim");
    let out = alembic(dir.path()).arg("render").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ignored the render journal") && stderr.contains("elsewhere/victim"),
        "{stderr}"
    );
    assert_outside_untouched(outside.path());
    assert!(!dir.path().join(JOURNAL).exists() && !dir.path().join(STAGING).exists());
}

// The same with a known artifact path whose directory is a link: refused, exit 1, nothing
// written through the link.
#[test]
fn a_planted_journal_through_a_symlinked_dir_is_refused() {
    let (dir, outside) = project_and_outside(false);
    link(outside.path(), &dir.path().join("infra/caddy"));
    plant_journal(dir.path(), "infra/caddy/Caddyfile");
    let out = alembic(dir.path()).arg("render").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("infra/caddy") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_outside_untouched(outside.path());
}

// Red-team repro: render wrote its workflows through a symlinked `.github`.
#[test]
fn a_symlinked_github_dir_is_refused_and_nothing_is_written() {
    let (dir, outside) = project_and_outside(false);
    link(outside.path(), &dir.path().join(".github"));
    let out = alembic(dir.path())
        .args(["render", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(".github is a symbolic link"),
        "the error names the link: {stderr}"
    );
    assert_outside_untouched(outside.path());
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(
        left,
        [".github", "alembic.toml"],
        "nothing written: {left:?}"
    );
}

// A link as the artifact itself: `render --check` used to print the linked file's contents
// (outside the root) in its diff.
#[test]
fn check_never_reads_through_a_link() {
    let (dir, outside) = project_and_outside(false);
    assert!(alembic(dir.path())
        .arg("render")
        .output()
        .unwrap()
        .status
        .success());
    let caddyfile = dir.path().join("infra/caddy/Caddyfile");
    std::fs::remove_file(&caddyfile).unwrap();
    link(&outside.path().join("victim"), &caddyfile);
    let out = alembic(dir.path())
        .args(["render", "--check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Caddyfile") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("keep me"));
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(std::fs::symlink_metadata(&caddyfile)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_outside_untouched(outside.path());
}

// The writability probe used to be created with a plain create, which follows a planted link
// named like the probe and truncated the file it named.
#[test]
fn a_planted_probe_link_is_removed_not_followed() {
    let (dir, outside) = project_and_outside(false);
    link(
        &outside.path().join("victim"),
        &dir.path().join("infra/caddy").join(PROBE),
    );
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_outside_untouched(outside.path());
    assert!(dir.path().join("infra/caddy/Caddyfile").is_file());
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs")
}

// `render` writes a managed block into `.gitignore`: the user's lines are kept, a second render
// changes nothing, and the block ignores Terraform's working files and plan files (asked of the
// real git) but not its state.
#[test]
fn gitignore_block_is_merged_keeps_user_lines_and_is_idempotent() {
    let (dir, _outside) = project_and_outside(false);
    let user = "node_modules/\n# build output\ndist\n";
    std::fs::write(dir.path().join(".gitignore"), user).unwrap();
    let out = alembic(dir.path()).arg("render").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert!(merged.starts_with(user), "{merged}");
    assert_eq!(merged.matches(alembic_render::gitignore::BEGIN).count(), 1);

    let again = alembic(dir.path())
        .args(["render", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["written"], serde_json::json!([]), "{v}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        merged
    );

    // A line the user adds outside the block is theirs: still in sync, kept by a render.
    let edited = format!("{merged}coverage/\n");
    std::fs::write(dir.path().join(".gitignore"), &edited).unwrap();
    let check = alembic(dir.path())
        .args(["render", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // An edit inside the block is drift, and a render restores the block around the user lines.
    std::fs::write(
        dir.path().join(".gitignore"),
        edited.replace("*.tfplan\n", ""),
    )
    .unwrap();
    let check = alembic(dir.path())
        .args(["render", "--check"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("+*.tfplan"));
    assert!(alembic(dir.path())
        .arg("render")
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        edited
    );

    assert!(git(dir.path(), &["init", "-q"]).status.success());
    let ignored = |p: &str| {
        git(dir.path(), &["check-ignore", "-q", "--no-index", p])
            .status
            .success()
    };
    assert!(ignored("infra/terraform/.terraform/providers/x"));
    assert!(ignored("infra/terraform/alembic.tfplan"));
    assert!(ignored(".alembic-render.journal"));
    assert!(ignored("node_modules/x"), "the user's lines still apply");
    assert!(!ignored("infra/terraform/main.tf"));
    assert!(
        !ignored("infra/terraform/terraform.tfstate"),
        "state is never silently ignored"
    );
    assert!(!ignored("infra/terraform/.terraform.lock.hcl"));
}

// A planted manifest can never get `.gitignore` removed: it is only ever merged into.
#[test]
fn gitignore_is_never_removed_as_stale() {
    let (dir, _outside) = project_and_outside(false);
    std::fs::write(dir.path().join(".gitignore"), "mine\n").unwrap();
    std::fs::create_dir_all(dir.path().join(".alembic-render.staging/new")).unwrap();
    std::fs::write(
        dir.path().join(JOURNAL),
        serde_json::json!({"format_version": 1, "writes": [], "removes": [".gitignore"]})
            .to_string(),
    )
    .unwrap();
    let out = alembic(dir.path()).arg("render").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ignored the render journal"), "{stderr}");
    assert!(std::fs::read_to_string(dir.path().join(".gitignore"))
        .unwrap()
        .starts_with("mine\n"));
}
