//! The deploy commands on the view layer: with `--json`, every outcome is JSON on stdout,
//! failures included (`{"format_version":1,"error":{...}}`), with DESIGN's exit codes; for
//! humans the same failure is `error:` on stderr and stdout stays empty.
//!
//! No droplet is needed: the config points at 127.0.0.1 on a port nothing listens on, so the
//! real ssh fails to connect (exit 255), and the refusals are made before any step. Loopback
//! only; HOME is the temp dir so ssh writes nothing of the user's.

mod support;

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use support::shims;

/// A config `check` accepts, whose droplet is 127.0.0.1 on a closed ssh port.
fn loopback_config(port: u16, keys: bool) -> String {
    let keys = if keys {
        r#"authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGkS2bq3c8vQ2m1P1kq1dQ0H2rZ2e0tY7Yc8m9v4pHh9 me@laptop"]"#
    } else {
        ""
    };
    format!(
        r#"version = 1

[project]
name   = "loop"
domain = "loop.test"

[host]
os = "linux"

[droplet]
name        = "loop-droplet"
ssh_user    = "deploy"
ssh_port    = {port}
admin_cidrs = ["127.0.0.1/32"]
token_env   = "DIGITALOCEAN_TOKEN"
tls         = "internal"
root        = "/srv/loop"
address     = "127.0.0.1"
{keys}

[ci]
repository  = "loop/site"
environment = "production"

[[workload]]
name     = "api"
plane    = "droplet"
exposure = "public"
image    = "caddy:2"
port     = 8080
route    = "api.loop.test"
"#
    )
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("alembic")
        .unwrap()
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("ALEMBIC_CONTEXT")
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn project(keys: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alembic.toml"),
        loopback_config(shims::closed_port(), keys),
    )
    .unwrap();
    dir
}

/// The error envelope on stdout's last line (apply streams its progress events before it),
/// checked for its shape; gives back the `error` object.
fn envelope(r: &Run, args: &[&str]) -> Value {
    let last = r.stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "{args:?}: nothing on stdout (exit {}); stderr:\n{}",
            r.code, r.stderr
        )
    });
    let v: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{}", r.stdout));
    assert_eq!(v["format_version"], 1, "{args:?}: {v}");
    let e = v["error"].clone();
    assert!(e.is_object(), "{args:?}: no error object: {v}");
    assert_eq!(e["exit_code"], r.code, "{args:?}: {v}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{args:?}: {v}"
    );
    e
}

// Every deploy command that needs the droplet fails at run time (exit 3) when ssh cannot
// connect, and says so as JSON on stdout, naming what failed.
#[test]
fn unreachable_droplet_is_a_json_error_for_every_deploy_command() {
    let p = project(true);
    let cases: [(&[&str], &str); 8] = [
        (&["status", "--json"], "ssh_unreachable"),
        (&["logs", "api", "--json"], "ssh_unreachable"),
        (&["exec", "api", "--json", "--", "true"], "ssh_unreachable"),
        (&["rollback", "--json"], "rollback_failed"),
        (&["rollback", "--yes", "--json"], "rollback_failed"),
        (&["plan", "--plane", "droplet", "--json"], "plan_failed"),
        (&["apply", "--plane", "droplet", "--json"], "plan_failed"),
        (&["bootstrap", "--yes", "--json"], "ssh_unreachable"),
    ];
    for (args, code) in cases {
        let r = run(p.path(), args);
        assert_eq!(r.code, 3, "{args:?}: {}\n{}", r.stdout, r.stderr);
        let e = envelope(&r, args);
        assert_eq!(e["kind"], "runtime", "{args:?}: {e}");
        assert_eq!(e["code"], code, "{args:?}: {e}");
        let m = e["message"].as_str().unwrap();
        assert!(
            m.contains("cannot reach") || m.contains("ssh"),
            "{args:?}: {m}"
        );
        // The log reader sees the failure too.
        assert!(r.stderr.contains("error: "), "{args:?}: {}", r.stderr);
    }
}

// Bootstrap's envelope keeps what it learned beside the error: host, user, the (empty) steps
// and the outcome the script reported.
#[test]
fn bootstrap_failure_keeps_its_steps_in_the_envelope() {
    let p = project(true);
    let args = ["bootstrap", "--yes", "--json"];
    let r = run(p.path(), &args);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["error"]["code"], "ssh_unreachable", "{v}");
    assert_eq!(v["host"], "127.0.0.1", "{v}");
    assert_eq!(v["user"], "root", "{v}");
    assert_eq!(v["steps"], serde_json::json!([]), "{v}");
    assert_eq!(v["outcome"]["result"], "unreachable", "{v}");
    assert_eq!(
        v["error"]["hint"], "after a first bootstrap root logins are refused; use --user deploy",
        "{v}"
    );
}

// Refusals and usage errors are decided before any step, and are JSON too, with exit 1 or 2.
#[test]
fn refusals_and_usage_errors_are_json_errors() {
    let p = project(true);
    let no_keys = project(false);
    let empty = tempfile::tempdir().unwrap();
    let missing = p.path().join("no-such-plan.json");
    let missing = missing.to_str().unwrap();
    let cases: [(&Path, Vec<&str>, i32, &str, &str); 7] = [
        (
            empty.path(),
            vec!["apply", "--json"],
            1,
            "refused",
            "check_failed",
        ),
        (
            empty.path(),
            vec!["bootstrap", "--json"],
            1,
            "refused",
            "embedded_default_refused",
        ),
        (
            no_keys.path(),
            vec!["bootstrap", "--json"],
            1,
            "refused",
            "no_authorized_keys",
        ),
        (
            p.path(),
            vec!["apply", missing, "--json"],
            1,
            "refused",
            "saved_plan_unreadable",
        ),
        (
            p.path(),
            vec!["logs", "nope", "--json"],
            1,
            "not_found",
            "unknown_workload",
        ),
        (
            p.path(),
            vec!["rollback", "--plane", "host", "--json"],
            2,
            "usage",
            "invalid_value",
        ),
        (
            p.path(),
            vec!["bootstrap", "--user", "Bad User", "--json"],
            2,
            "usage",
            "bad_user",
        ),
    ];
    for (dir, args, exit, kind, code) in cases {
        let r = run(dir, &args);
        assert_eq!(r.code, exit, "{args:?}: {}\n{}", r.stdout, r.stderr);
        let v: Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: one JSON document ({e}):\n{}", r.stdout));
        assert_eq!(v["error"]["kind"], kind, "{args:?}: {v}");
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        assert_eq!(v["error"]["exit_code"], exit, "{args:?}: {v}");
    }
    // The gate's refusal keeps the findings document's fields beside the error.
    let r = run(empty.path(), &["apply", "--json"]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["summary"]["errors"], 5, "{v}");
    assert!(v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["code"] == "CFG007"));
    assert_eq!(v["error"]["location"]["line"], 13, "{v}");
}

// For humans the same failure is talk: `error:` and the hint on stderr, nothing on stdout.
#[test]
fn human_failures_stay_on_stderr() {
    let p = project(true);
    for args in [
        &["status"][..],
        &["logs", "api"],
        &["rollback"],
        &["plan", "--plane", "droplet"],
    ] {
        let r = run(p.path(), args);
        assert_eq!(r.code, 3, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(
            r.stderr.contains("error: cannot reach"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

// Under `plan --detailed-exitcode` (2 means changes) a failure exits 1, and the envelope says
// the exit code the process really ends with.
#[test]
fn detailed_exitcode_failure_exits_one_and_says_so() {
    let p = project(true);
    let args = [
        "plan",
        "--plane",
        "droplet",
        "--detailed-exitcode",
        "--json",
    ];
    let r = run(p.path(), &args);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let e = envelope(&r, &args);
    assert_eq!(e["code"], "plan_failed", "{e}");
}
