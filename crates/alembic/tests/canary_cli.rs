//! Secret values reach the `alembic` process (it reads the environment to say which secrets are
//! set) and must go nowhere from there: with every secret of a fixture set to a canary value in
//! the child's environment (never this test process's own: `std::env::set_var` is unsound in a
//! threaded test binary), `secrets` reports each one set — proof the values were read — and no
//! byte any command prints, nor any file `render` writes, holds a canary. Where a workload does
//! receive a value (the droplet's `.env`, the container) is checked byte for byte by the E2E
//! tests (`e2e_droplet.rs`, `e2e_releases.rs`).

mod support;

use std::path::{Path, PathBuf};

use support::cli::alembic;

fn fixtures() -> Vec<PathBuf> {
    let dir = alembic_testkit::workspace_root().join("crates/alembic-render/tests/fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("render fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// Every secret name the topology declares, and the DigitalOcean token's.
fn secret_names(t: &alembic_config::Topology) -> Vec<String> {
    let mut names: Vec<String> = t.secret_names().keys().map(|k| k.to_string()).collect();
    names.push(t.droplet.token_env.to_string());
    names.sort();
    names.dedup();
    names
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            files_under(&p, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

#[test]
fn canary_values_in_the_environment_reach_no_output_and_no_rendered_file() {
    let fixtures = fixtures();
    assert!(!fixtures.is_empty());
    for fixture in fixtures {
        let name = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&fixture).unwrap();
        let t = alembic_config::load_str("alembic.toml", &text)
            .topology
            .unwrap_or_else(|| panic!("{name} does not validate"));
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let project = dir.path().join("project");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("alembic.toml"), &text).unwrap();
        let canaries: Vec<(String, String)> = secret_names(&t)
            .into_iter()
            .map(|n| {
                let v = format!("canary-{n}-{}-7f3e1a", std::process::id());
                (n, v)
            })
            .collect();
        let cmd = |args: &[&str]| {
            let mut c = alembic(&project);
            c.env("HOME", &home).args(args);
            for (n, v) in &canaries {
                c.env(n, v);
            }
            c
        };

        // The process sees every value: `secrets --json` says each declared secret is set.
        let out = cmd(&["secrets", "--json"]).output().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: secrets --json: {e}"));
        let listed = doc["secrets"].as_array().expect("secrets array");
        assert!(!listed.is_empty(), "{name}: no secret listed");
        for s in listed {
            assert_eq!(s["set"], true, "{name}: the child did not see {s}");
        }
        assert_eq!(doc["ok"], true, "{name}: {doc}");

        let mut transcript = Vec::new();
        for args in [
            &["secrets"][..],
            &["secrets", "--json"],
            &["secrets", "--check"],
            &["validate"],
            &["validate", "--json"],
            &["check"],
            &["check", "--format", "json"],
            &["check", "--format", "sarif"],
            &["topology"],
            &["topology", "--format", "json"],
            &["render"],
            &["render", "--check"],
            &["doctor"],
            &["doctor", "--json"],
            &["plan", "--plane", "ci"],
            &["apply", "--plane", "host"],
        ] {
            let out = cmd(args).output().unwrap();
            let code = out.status.code();
            assert!(
                matches!(code, Some(0..=3)),
                "{name}: {args:?} ended with {code:?} (a panic or a signal)"
            );
            transcript.extend_from_slice(&out.stdout);
            transcript.extend_from_slice(&out.stderr);
        }
        let all = String::from_utf8_lossy(&transcript);
        let mut files = Vec::new();
        files_under(dir.path(), &mut files);
        let rendered = files
            .iter()
            .filter(|f| f.ends_with("infra/MANIFEST.json"))
            .count();
        assert_eq!(rendered, 1, "{name}: render wrote no manifest");
        for (n, v) in &canaries {
            // Compared without printing the value on failure.
            assert!(
                !all.contains(v.as_str()),
                "{name}: the value of {n} was printed"
            );
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(v.as_str()),
                    "{name}: the value of {n} is in {}",
                    f.display()
                );
            }
        }
    }
}
