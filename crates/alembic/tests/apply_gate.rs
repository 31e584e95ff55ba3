//! `plan`, `apply` and `rollback` run exactly what `check` proved (issue 9, items 1, 2, 4):
//!
//! - a config `check` rejects (EXP001, EXP004, EXP005) is refused with exit 1 naming the codes
//!   before any ssh, terraform, launchctl or systemctl step;
//! - the Terraform directory must hold exactly the fresh render: a hand-added `zz-extra.tf` or
//!   an edited `main.tf` is refused with a diff, and terraform never runs on it;
//! - the untouched `alembic init` template checks with CFG007 warnings and is refused by
//!   `plan`/`apply` with CFG007 errors;
//! - `-c ./alembic.toml` and `-c alembic.toml` hand terraform absolute paths.
//!
//! Proving that a program did NOT run needs a stand-in that records being called: recording
//! shims named `ssh`, `terraform`, `tofu`, `launchctl` and `systemctl` come first on PATH and
//! append their argv to a log (they are never used for a positive result). The positive path
//! with the real terraform is `relative_config_paths_reach_the_real_terraform` here and the
//! runner tests in `alembic-deploy/tests/terraform_*.rs`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use support::shims;
use support::template::deployable;

const SHIMS: [&str; 5] = ["ssh", "terraform", "tofu", "launchctl", "systemctl"];

/// A project dir with a `bin/` of recording shims and the log they write to.
struct Project {
    tmp: tempfile::TempDir,
}

impl Project {
    fn new(config: &str) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        shims::install(tmp.path(), &SHIMS);
        std::fs::write(tmp.path().join("alembic.toml"), config).unwrap();
        Project { tmp }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `alembic ARGS` in the project, shims first on PATH, no CI markers, every secret of the
    /// config set (so a refusal is never about a missing secret).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let path = shims::path_with(&self.dir().join("bin"));
        let mut c = Command::cargo_bin("alembic").unwrap();
        c.current_dir(self.dir())
            .env("PATH", path)
            .env("TMPDIR", self.dir())
            .env("XDG_RUNTIME_DIR", self.dir())
            .env("HOME", self.dir())
            .env_remove("ALEMBIC_CONFIG")
            .env_remove("CI")
            .env_remove("ALEMBIC_CONTEXT")
            .env_remove("GITHUB_ACTIONS")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null");
        let text = std::fs::read_to_string(self.dir().join("alembic.toml")).unwrap_or_default();
        if let Some(t) = alembic_config::load_str("alembic.toml", &text).topology {
            for name in t.secret_names().keys() {
                c.env(name.as_str(), "gate-test-value-0d1e");
            }
        }
        let o: Output = c.args(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// What the shims recorded: every call of ssh, terraform, tofu, launchctl, systemctl.
    fn calls(&self) -> String {
        shims::calls(self.dir())
    }
}

/// An existing server on 127.0.0.1 (a closed port), loopback test shape, with three policy
/// errors: a public host workload (EXP001), a route outside the zone (EXP004), SSH open to
/// the internet (EXP005).
fn failing_config(port: u16) -> String {
    format!(
        r#"version = 1

[project]
name   = "gate"
domain = "gate.test"

[host]
os = "linux"

[droplet]
name        = "gate-droplet"
ssh_user    = "root"
ssh_port    = {port}
admin_cidrs = ["0.0.0.0/0"]
token_env   = "DIGITALOCEAN_TOKEN"
tls         = "internal"
root        = "/srv/gate"
address     = "127.0.0.1"

[ci]
repository  = "gate/site"
environment = "production"

[[workload]]
name     = "api"
plane    = "droplet"
exposure = "public"
image    = "caddy:2"
port     = 8080
route    = "api.elsewhere.example.org"

[[workload]]
name     = "models"
plane    = "host"
exposure = "public"
command  = ["/usr/bin/ollama", "serve"]
port     = 11434
bind     = "127.0.0.1"
"#
    )
}

// A config `check` rejects deployed anyway: a route on a foreign domain reached the live edge.
#[test]
fn a_config_check_rejects_is_refused_before_any_step() {
    let p = Project::new(&failing_config(shims::closed_port()));
    let (code, _, stderr) = p.run(&["check"]);
    assert_eq!(code, 1, "{stderr}");
    for args in [
        &["plan"][..],
        &["plan", "--plane", "droplet", "--detailed-exitcode"],
        &["apply", "--yes"],
        &["apply", "--plane", "droplet", "--yes"],
        &["apply", "--plane", "host", "--yes"],
        &["apply"],
        &["rollback", "--yes"],
    ] {
        let (code, stdout, stderr) = p.run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        for c in ["error[EXP001]", "error[EXP004]", "error[EXP005]"] {
            assert!(stderr.contains(c), "{args:?} names {c}: {stderr}");
        }
        let verb = args[0];
        assert!(
            stderr.contains(&format!(
                "error: {verb} refused: `alembic check` found 3 error(s) (EXP001, EXP004, EXP005); nothing was run"
            )),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("cannot reach"), "{args:?}: {stderr}");
        assert_eq!(p.calls(), "", "{args:?} ran a program");
    }
    // The same refusal as JSON: the findings document on stdout.
    let (code, stdout, _) = p.run(&["--json", "apply", "--yes"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["summary"]["errors"], 3, "{v}");
    assert_eq!(p.calls(), "");
}

/// The init template made deployable, provisioned with local state, rendered on disk.
fn rendered_provisioned() -> Project {
    let config =
        deployable(alembic_config::DEFAULT_TOML).replace("state_bucket = \"alembic-tfstate\"", "");
    let p = Project::new(&config);
    let (code, _, stderr) = p.run(&["render"]);
    assert_eq!(code, 0, "{stderr}");
    p
}

// A hand-added `zz-extra.tf` opening 1-65535 to 0.0.0.0/0 was planned and applied.
#[test]
fn an_unknown_terraform_file_is_refused_with_its_text() {
    let p = rendered_provisioned();
    let extra = "resource \"digitalocean_firewall\" \"wide_open\" {\n  name = \"all\"\n  inbound_rule {\n    protocol         = \"tcp\"\n    port_range       = \"1-65535\"\n    source_addresses = [\"0.0.0.0/0\"]\n  }\n}\n";
    std::fs::write(p.dir().join("infra/terraform/zz-extra.tf"), extra).unwrap();
    for args in [
        &["plan"][..],
        &["apply", "--yes"],
        &["apply", "--plane", "infra", "--yes"],
        &["apply", "--plane", "droplet", "--yes"],
        &["rollback", "--yes"],
    ] {
        let (code, stdout, stderr) = p.run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(
                "is not what alembic renders from this config; terraform was not run on it"
            ),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(
                "unknown file zz-extra.tf: Terraform would load it, alembic did not render it"
            ),
            "{stderr}"
        );
        assert!(stderr.contains("+++ zz-extra.tf (on disk)"), "{stderr}");
        assert!(
            stderr.contains("+    source_addresses = [\"0.0.0.0/0\"]"),
            "{stderr}"
        );
        assert_eq!(p.calls(), "", "{args:?} ran a program");
    }
}

// An in-place edit of the rendered `main.tf` was planned and applied too.
#[test]
fn an_edited_main_tf_is_refused_with_a_diff_until_rendered_again() {
    let p = rendered_provisioned();
    let main = p.dir().join("infra/terraform/main.tf");
    let text = std::fs::read_to_string(&main).unwrap();

    // An edit a policy rule sees (SSH opened to the internet) is already check's EXP005.
    let open = text.replacen("\"100.64.10.10/32\"", "\"0.0.0.0/0\"", 1);
    assert_ne!(open, text, "the SSH rule moved: update this test");
    std::fs::write(&main, &open).unwrap();
    let (code, stdout, stderr) = p.run(&["apply", "--plane", "infra", "--yes"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("error[EXP005]"), "{stderr}");
    assert!(stderr.contains("--> infra/terraform/main.tf:"), "{stderr}");
    assert_eq!(p.calls(), "");

    // An edit no rule knows about (a bigger droplet) is still not what was rendered.
    let bigger = text.replacen("\"s-1vcpu-2gb\"", "\"s-8vcpu-16gb\"", 1);
    assert_ne!(bigger, text, "the droplet size moved: update this test");
    std::fs::write(&main, &bigger).unwrap();
    for args in [&["plan"][..], &["apply", "--plane", "infra", "--yes"]] {
        let (code, stdout, stderr) = p.run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("main.tf differs from the fresh render"),
            "{stderr}"
        );
        assert!(
            stderr.contains("--- main.tf (rendered by alembic)"),
            "{stderr}"
        );
        assert!(stderr.contains("+++ main.tf (on disk)"), "{stderr}");
        assert!(
            stderr.contains("-  size       = \"s-1vcpu-2gb\""),
            "{stderr}"
        );
        assert!(
            stderr.contains("+  size       = \"s-8vcpu-16gb\""),
            "{stderr}"
        );
        assert_eq!(p.calls(), "", "{args:?} ran a program");
    }

    // Rendered again, the gate opens: the dry run shows terraform's ops (nothing runs).
    let (code, _, stderr) = p.run(&["render"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = p.run(&["apply", "--plane", "infra"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("terraform plan: "), "{stdout}");
    assert_eq!(p.calls(), "");
}

// The untouched template passed `check`, and `apply --yes` went on to run Terraform.
#[test]
fn the_init_template_warns_in_check_and_is_refused_by_plan_and_apply() {
    let p = Project::new("");
    std::fs::remove_file(p.dir().join("alembic.toml")).unwrap();
    let (code, _, stderr) = p.run(&["init"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, stdout, stderr) = p.run(&["check", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["summary"]["errors"], 0, "{v}");
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CFG007"; 5], "{v}");
    assert!(v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["severity"] == "warning"));

    for args in [
        &["plan"][..],
        &["apply", "--yes"],
        &["apply", "--plane", "infra", "--yes"],
    ] {
        let (code, stdout, stderr) = p.run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.matches("error[CFG007]").count(), 5, "{stderr}");
        assert!(
            stderr.contains("found 5 error(s) (CFG007); nothing was run"),
            "{stderr}"
        );
        assert_eq!(p.calls(), "", "{args:?} ran a program");
    }
}

/// Every file name under `dir`, recursively.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out
}

// With `-c ./alembic.toml` (the CI case) terraform got `-chdir=./infra/terraform` plus a
// relative `-out` that resolved inside the chdir: "Failed to write plan file".
#[test]
fn relative_config_paths_reach_the_real_terraform() {
    let Some(terraform) = alembic_testkit::tool("terraform") else {
        return;
    };
    let p = rendered_provisioned();
    let real_bin = terraform.parent().unwrap().display().to_string();
    let cwd = std::fs::canonicalize(p.dir()).unwrap();
    for config in ["./alembic.toml", "alembic.toml"] {
        // The plan shows the exact commands: every path absolute.
        let (code, stdout, stderr) = p.run(&["-c", config, "apply", "--plane", "infra"]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("'-chdir={}/infra/terraform' init", cwd.display())),
            "{config}: {stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "'-out={}/alembic-tfplan-XXXXXX/alembic.tfplan'",
                cwd.display()
            )),
            "{config}: {stdout}"
        );
        assert!(!stdout.contains("./infra"), "{config}: {stdout}");

        // The real terraform (its directory before the shims on PATH) is reached and reads
        // the rendered configuration in the right directory: here it stops at the provider
        // download (no registry is reachable), exit 3, and leaves no plan directory behind.
        let mut c = Command::cargo_bin("alembic").unwrap();
        let o = c
            .current_dir(p.dir())
            .env(
                "PATH",
                format!("{real_bin}:{}", std::env::var("PATH").unwrap_or_default()),
            )
            .env("TMPDIR", p.dir())
            .env("DIGITALOCEAN_TOKEN", "dop_v1_relative_path_canary")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env_remove("ALEMBIC_CONFIG")
            .args(["-c", config, "apply", "--plane", "infra", "--yes"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{config}: {stderr}");
        assert!(
            stderr.contains("terraform init failed"),
            "{config}: {stderr}"
        );
        assert!(
            stderr.contains("digitalocean/digitalocean"),
            "{config}: {stderr}"
        );
        assert!(!stderr.contains("No configuration files"), "{stderr}");
        assert!(!stderr.contains("dop_v1_relative_path_canary"), "{stderr}");
        let leftovers: Vec<PathBuf> = tree(p.dir())
            .into_iter()
            .filter(|f| f.to_string_lossy().contains("alembic-tfplan-"))
            .collect();
        assert_eq!(leftovers, Vec::<PathBuf>::new(), "{config}");
    }
}

// An apply interrupted while terraform ran died at once and left its plan directory behind.
#[cfg(unix)]
#[test]
fn interrupting_terraform_removes_the_plan_directory() {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    let Some(terraform) = alembic_testkit::tool("terraform") else {
        return;
    };
    let p = rendered_provisioned();
    // A provider mirror on loopback that accepts and never answers: the real `terraform init`
    // waits on it, which is the moment to interrupt.
    let mirror = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    mirror.set_nonblocking(true).unwrap();
    let rc = p.dir().join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  network_mirror {{\n    url = \"https://{}/\"\n  }}\n}}\n",
            mirror.local_addr().unwrap()
        ),
    )
    .unwrap();
    let tmp = p.dir().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let real_bin = terraform.parent().unwrap().display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_alembic"))
        .current_dir(p.dir())
        .env(
            "PATH",
            format!("{real_bin}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .env("TMPDIR", &tmp)
        .env("TF_CLI_CONFIG_FILE", &rc)
        .env("CHECKPOINT_DISABLE", "1")
        .env("DIGITALOCEAN_TOKEN", "dop_v1_interrupt_canary")
        .env_remove("ALEMBIC_CONFIG")
        .args(["apply", "--plane", "infra", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group, like a shell job: Ctrl-C reaches alembic and terraform.
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = Vec::new();
    while held.is_empty() && Instant::now() < deadline {
        match mirror.accept() {
            Ok((conn, _)) => held.push(conn),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    assert!(!held.is_empty(), "terraform init never asked the mirror");
    let plan_dirs = || {
        std::fs::read_dir(&tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("alembic-tfplan-")
            })
            .count()
    };
    assert_eq!(
        plan_dirs(),
        1,
        "the plan directory exists while terraform runs"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    // Bounded wait: terraform stops on the interrupt, then alembic cleans up and exits.
    let started = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("alembic did not stop after the interrupt");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("infra: interrupted; the plan file was removed"),
        "{stderr}"
    );
    assert!(!stderr.contains("dop_v1_interrupt_canary"), "{stderr}");
    assert_eq!(
        plan_dirs(),
        0,
        "the plan directory is removed after the interrupt"
    );
}
