//! Command-line snapshots: exit code, stdout and stderr of each command, human and `--json`
//! side by side in one snapshot, so a change to any view shows up as a reviewed diff
//! (`cargo insta review`) instead of slipping past `contains` checks.
//!
//! Every run has a cleared environment (PATH is an empty directory, HOME the temp dir), so
//! `doctor` and `secrets` see no tools and no secrets wherever the suite runs; temp paths are
//! shown as `[TMP]`. The deploy commands (plan, apply, rollback, status, logs, exec, bootstrap,
//! doctor --online) need a droplet: their snapshots are `snapshots_deploy.rs`.

use std::path::Path;

use assert_cmd::Command;

struct Case {
    dir: tempfile::TempDir,
    empty_path: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
            empty_path: tempfile::tempdir().unwrap(),
        }
    }

    /// A case whose directory holds `alembic init`'s template.
    fn with_template() -> Case {
        let c = Case::new();
        c.write("alembic.toml", alembic::cmd::init_template());
        c
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) {
        let p = self.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `exit`, `stdout` and `stderr` of one run, temp paths replaced; a JSON stdout is shown
    /// pretty-printed (it must parse).
    fn run(&self, args: &[&str]) -> String {
        let out = Command::cargo_bin("alembic")
            .unwrap()
            .env_clear()
            .env("PATH", self.empty_path.path())
            .env("HOME", self.path())
            .current_dir(self.path())
            .args(args)
            .output()
            .unwrap();
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{stdout}"));
            assert_eq!(v["format_version"], 1, "{args:?}: {v}");
            stdout = format!("{}\n", serde_json::to_string_pretty(&v).unwrap());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let text = format!(
            "$ alembic {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            out.status.code().unwrap_or(-1),
            stdout,
            stderr
        );
        self.scrub(&text)
    }

    /// Human and JSON runs of the same command, side by side.
    fn both(&self, args: &[&str]) -> String {
        let mut json = args.to_vec();
        json.push("--json");
        format!("{}\n{}", self.run(args), self.run(&json))
    }

    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for d in [self.path(), self.empty_path.path()] {
            if let Ok(c) = d.canonicalize() {
                t = t.replace(&c.display().to_string(), "[TMP]");
            }
            t = t.replace(&d.display().to_string(), "[TMP]");
        }
        t
    }
}

macro_rules! snap {
    ($name:expr, $text:expr) => {
        insta::with_settings!({prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

#[test]
fn validate() {
    let c = Case::with_template();
    snap!("validate_ok", c.both(&["validate"]));
    c.write(
        "alembic.toml",
        "version = 1\nbogus = 1\n[project]\nname = \"Bad Name\"\ndomain = \"x.dev\"\n",
    );
    snap!("validate_invalid", c.both(&["validate"]));
}

#[test]
fn check() {
    let c = Case::with_template();
    snap!("check_template", c.both(&["check"]));
    snap!("check_sarif", c.run(&["check", "--format", "sarif"]));
}

#[test]
fn scan() {
    let c = Case::new();
    c.write(
        "compose.yaml",
        "services:\n  api:\n    image: ghcr.io/acme/api:1.0\n    ports: [\"8080:8080\"]\n",
    );
    c.write("clean/notes.txt", "nothing to see\n");
    snap!("scan_findings", c.both(&["scan", "compose.yaml"]));
    snap!("scan_clean", c.both(&["scan", "clean"]));
    snap!("scan_missing_path", c.both(&["scan", "nowhere"]));
}

#[test]
fn topology() {
    let c = Case::with_template();
    snap!("topology", c.both(&["topology"]));
    snap!("topology_dot", c.run(&["topology", "--format", "dot"]));
    snap!(
        "topology_mermaid",
        c.run(&["topology", "--format", "mermaid"])
    );
    c.write("alembic.toml", "version = 2\n");
    snap!("topology_invalid_config", c.both(&["topology"]));
}

#[test]
fn render() {
    let c = Case::with_template();
    snap!("render_fresh", c.run(&["render"]));
    snap!("render_again", c.run(&["render", "--json"]));
    snap!("render_check_in_sync", c.both(&["render", "--check"]));
    c.write("infra/caddy/Caddyfile", "# edited by hand\n");
    snap!("render_check_drift", c.both(&["render", "--check"]));
}

#[test]
fn init() {
    let c = Case::new();
    snap!("init_fresh", c.run(&["init"]));
    snap!("init_exists", c.both(&["init"]));
    let d = Case::new();
    snap!("init_fresh_json", d.run(&["init", "--json"]));
}

#[test]
fn schema_is_the_committed_file_in_both_modes() {
    let committed = include_str!("../../../alembic.schema.json");
    let out = |args: &[&str]| {
        let o = Command::cargo_bin("alembic")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(out(&["schema"]), committed);
    let v: serde_json::Value = serde_json::from_str(&out(&["schema", "--json"])).unwrap();
    assert_eq!(v["format_version"], 1);
    let schema: serde_json::Value = serde_json::from_str(committed).unwrap();
    assert_eq!(v["schema"], schema);
}

#[test]
fn man_and_completions() {
    let c = Case::new();
    let man = c.run(&["man"]);
    snap!(
        "man_head",
        man.lines().take(12).collect::<Vec<_>>().join("\n")
    );
    let raw = |args: &[&str]| {
        let out = Command::cargo_bin("alembic")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let man_json: serde_json::Value = serde_json::from_str(&raw(&["man", "--json"])).unwrap();
    assert_eq!(man_json["man"].as_str(), Some(raw(&["man"]).as_str()));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = c.run(&["completions", shell]);
        assert!(out.contains("exit: 0"), "{out}");
        for sub in ["explain", "completions", "topology"] {
            assert!(out.contains(sub), "{shell} completions lack {sub}");
        }
        snap!(
            format!("completions_{shell}_head"),
            out.lines().take(8).collect::<Vec<_>>().join("\n")
        );
        let js = c.run(&["completions", shell, "--json"]);
        assert!(js.contains(&format!("\"shell\": \"{shell}\"")), "{js}");
    }
}

#[test]
fn explain() {
    let c = Case::new();
    snap!("explain_exp003", c.both(&["explain", "EXP003"]));
    snap!("explain_exp009", c.both(&["explain", "exp009"]));
    snap!("explain_unknown", c.both(&["explain", "XYZ001"]));
}

#[test]
fn doctor_and_secrets_with_nothing_set() {
    let c = Case::with_template();
    snap!("doctor", c.both(&["doctor"]));
    snap!("secrets", c.both(&["secrets"]));
    snap!("secrets_check", c.both(&["secrets", "--check"]));
}

#[test]
fn errors_are_json_in_json_mode() {
    let c = Case::with_template();
    snap!(
        "conflicting_formats",
        format!(
            "{}\n{}\n{}",
            c.run(&["topology", "--format", "dot", "--json"]),
            c.run(&["check", "--json", "--format", "sarif"]),
            c.run(&["scan", ".", "--format", "human", "--json"]),
        )
    );
    snap!("unknown_subcommand", c.both(&["deploy"]));
    snap!("unknown_flag", c.both(&["check", "--fromat", "json"]));
    snap!(
        "config_unreadable",
        c.both(&["-c", "missing.toml", "validate"])
    );
}

#[test]
fn help_ends_with_examples() {
    let c = Case::new();
    snap!("help_check", c.run(&["check", "--help"]));
    snap!("help_rollback", c.run(&["rollback", "--help"]));
    snap!("help_json", c.run(&["--json", "explain", "--help"]));
}
