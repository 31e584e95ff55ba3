//! Command-line snapshots of the deploy commands against the real sshd + Docker "droplet"
//! (`support/droplet.rs`): exit code, stdout and stderr of `plan`, `apply` (dry run and real),
//! `rollback` (dry run and real), `status`, `logs`, `exec`, `bootstrap` (dry run) and `doctor
//! --online`, human and `--json` side by side, in the states a person meets: a first release,
//! an unchanged one, a change, drift, a rollback, a secret in a container's log, ssh gone.
//!
//! What legitimately differs between runs is filtered ([`FILTERS`]: temp paths, ports, the
//! compose project and image names made unique per run, pids, durations, timestamps, container
//! and image IDs, digests, Docker's addresses, Go's map order in caddy's log lines) and so is
//! what differs between machines (the tool versions `doctor` reports, `user@host` of the lease
//! holder); everything else is exact, so a change to any deploy view is a reviewed diff
//! (`cargo insta review`). A missing or different snapshot fails the test (insta writes
//! `.snap.new` beside it, or nothing with `INSTA_UPDATE=no`, as CI runs it); it is never
//! accepted silently.
//!
//! One droplet for the whole walk (one test function): each apply takes seconds, and the
//! states build on each other. The world's guard removes everything it made, also on failure.

mod support;

use std::process::Command;
use std::time::Duration;

use support::droplet::{code, ok, run_bounded, world, World, CANARY};

/// Every alembic run is bounded: a hang fails the test instead of stalling the suite.
const LIMIT: Duration = Duration::from_secs(300);

struct Snap {
    w: World,
    settings: insta::Settings,
}

impl Snap {
    fn new(w: World) -> Snap {
        let mut s = insta::Settings::clone_current();
        s.set_prepend_module_to_snapshot(false);
        s.set_omit_expression(true);
        let tmp = w.dir.path().display().to_string();
        let canon = w
            .dir
            .path()
            .canonicalize()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| tmp.clone());
        let exact: Vec<(String, &str)> = vec![
            (regex_escape(&canon), "[TMP]"),
            (regex_escape(&tmp), "[TMP]"),
            (regex_escape(&w.image), "[IMAGE]"),
            (regex_escape(&w.project), "[PROJECT]"),
            (format!(r"\b{}\b", w.sshd_port), "[SSH_PORT]"),
            (format!(r"\b{}\b", w.https_port), "[HTTPS_PORT]"),
            (format!(r"\b{}\b", w.http_port), "[HTTP_PORT]"),
        ];
        // Who holds the lease and wrote the ledger: `user@host` of this machine.
        if let Some(host) = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
        {
            s.add_filter(
                &format!(r"[A-Za-z0-9_.-]+@{}\b", regex_escape(&host)),
                "[USER]@[HOST]",
            );
        }
        for (re, with) in exact {
            s.add_filter(&re, with);
        }
        for (re, with) in FILTERS {
            s.add_filter(re, *with);
        }
        Snap { w, settings: s }
    }

    /// `exit`, `stdout` and `stderr` of one run. A `--json` stdout is shown pretty-printed: one
    /// document (it must parse and carry `format_version`), or JSON lines (a streamed apply,
    /// rollback, `logs`, `exec`), each of which must parse; never nothing.
    fn run(&mut self, args: &[&str]) -> String {
        let out = run_bounded(self.w.alembic().args(args), LIMIT);
        self.w.record(&out);
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if args.contains(&"--json") {
            stdout = pretty(args, &stdout);
        }
        format!(
            "$ alembic {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            code(&out),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Human and JSON runs of the same command, side by side (`--json` first: after `exec`'s
    /// `--` it would be part of the command).
    fn both(&mut self, args: &[&str]) -> String {
        let mut json = vec!["--json"];
        json.extend_from_slice(args);
        format!("{}\n{}", self.run(args), self.run(&json))
    }

    fn snap(&self, name: &str, text: &str) {
        self.settings.bind(|| insta::assert_snapshot!(name, text));
    }
}

/// What varies between runs and machines, and nothing else.
const FILTERS: &[(&str, &str)] = &[
    // The per-process ssh control dir (`/tmp/alembic-ssh-<pid>`), the lease's holder pid and
    // id (`<pid>-<seconds>-<nanos>`).
    (r"/tmp/alembic-ssh-\d+", "/tmp/alembic-ssh-[PID]"),
    (r#"(\\*"pid\\*":)\d+"#, "${1}[PID]"),
    (r"\b\d+-\d{10}-\d{1,9}\b", "[LEASE_ID]"),
    // Step and probe durations: `(1.2s)`, `"elapsed_ms":123`, caddy's `"duration":0.00007`
    // (also inside a JSON string, its quotes escaped).
    (r"\(\d+(\.\d+)?m?s\)", "([DURATION])"),
    (
        r#"(\\*"(elapsed_ms|duration)\\*":\s*)[0-9.e-]+"#,
        "${1}[DURATION]",
    ),
    // Timestamps: RFC 3339, caddy's epoch `"ts"`, a certificate's notAfter.
    (
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
        "[TIME]",
    ),
    (r#"(\\*"ts\\*":\s*)[0-9.e+]+"#, "${1}[TIME]"),
    (
        r"notAfter [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4} GMT",
        "notAfter [TIME]",
    ),
    // The size of what an op sends on stdin: it holds the unique names and the ledger's time.
    (r"< \(\d+ bytes\)", "< ([N] bytes)"),
    // Image digests and IDs, file digests.
    (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
    (r"\b[0-9a-f]{64}\b", "[HASH]"),
    // Container IDs as docker prints them (12 hex digits).
    (r"\b[0-9a-f]{12}\b", "[CONTAINER]"),
    // Addresses Docker hands out on its bridge networks, a client's source port.
    (
        r"\b(10|172|192)\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
        "[DOCKER_IP]",
    ),
    (r#"(\\*"remote_port\\*":\s*\\*")\d+"#, "${1}[PORT]"),
    // Header maps in caddy's access log, in Go's map order (a different one each time).
    (r#"(\\*"(resp_)?headers\\*":)\{[^{}]*\}"#, "${1}{[HEADERS]}"),
    // What this machine has installed: each tool check's version, whatever it is.
    (r"(?m)^(pass  tools\.\S+\s+).*$", "${1}[TOOL VERSION]"),
    (
        r#"("id": "tools\.[^"]+",\n\s+"status": "pass",\n\s+"message": )"[^"]*""#,
        r#"${1}"[TOOL VERSION]""#,
    ),
];

/// Escape `s` for a regex (temp paths hold `.`; hand-written, four lines, rather than a
/// dependency for one call).
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn pretty(args: &[&str], stdout: &str) -> String {
    assert!(!stdout.trim().is_empty(), "{args:?}: no JSON on stdout");
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(stdout) {
        assert_eq!(v["format_version"], 1, "{args:?}: {v}");
        return format!("{}\n", serde_json::to_string_pretty(&v).unwrap());
    }
    let mut out = String::new();
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{args:?}: a stdout line is not JSON ({e}):\n{line}"));
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    out
}

/// One request through the edge to `path` on `host` (its answer does not matter: the api logs
/// it), with a fixed user agent so the logged line does not depend on curl's version.
fn request(w: &World, host: &str, path: &str) {
    let _ = Command::new("curl")
        .args(["--silent", "--max-time", "5", "--output", "/dev/null"])
        .args(["--user-agent", "snapshot"])
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", w.https_port))
        .arg("--cacert")
        .arg(w.ca())
        .arg(format!("https://{host}:{}{path}", w.https_port))
        .status();
}

/// Wait (bounded: 10 s) until the last line `service`'s container logged holds `needle`: a
/// request's access-log line is written just after its answer.
fn wait_for_log_line(w: &World, service: &str, needle: &str) {
    let id = w.container(service);
    for _ in 0..100 {
        let o = run_bounded(
            Command::new("docker").args(["logs", "--tail", "1", &id]),
            Duration::from_secs(30),
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if all.contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{service} never logged {needle}");
}

/// The api stub answering `body`, logging every request (its path included).
fn api(body: &str) -> [&str; 7] {
    [
        "caddy",
        "respond",
        "--listen",
        ":8080",
        "--access-log",
        "--body",
        body,
    ]
}

#[test]
fn deploy_commands_human_and_json() {
    let Some(w) = world("snapshots_deploy", "snp") else {
        return;
    };
    let mut s = Snap::new(w);
    // The api without an active health check: the edge would log a request to it every 5 s,
    // and the log line shown must be the test's own request.
    let config = |s: &Snap, body: &str| {
        let text = s.w.config(&api(body));
        let health = "health   = \"/healthz\"\n";
        assert!(text.contains(health));
        std::fs::write(s.w.path("alembic.toml"), text.replace(health, "")).unwrap();
    };

    // A first release: the plan, the dry run, the real apply.
    config(&s, "v1");
    let t = s.both(&["plan", "--plane", "droplet"]);
    s.snap("deploy_plan_first", &t);
    let t = s.both(&["apply", "--plane", "droplet"]);
    s.snap("deploy_apply_dry_run_first", &t);
    let t = s.run(&["apply", "--plane", "droplet", "--yes"]);
    s.snap("deploy_apply_first", &t);
    assert_eq!(s.w.current(), 1, "{t}");
    s.w.fetch_ca();

    // Unchanged: the plan says so, the apply changes nothing.
    let t = s.both(&["plan", "--plane", "droplet"]);
    s.snap("deploy_plan_unchanged", &t);
    let t = s.both(&["apply", "--plane", "droplet", "--yes"]);
    s.snap("deploy_apply_unchanged", &t);

    // A change to one workload: the plan, then the real apply's JSON event stream.
    config(&s, "v2");
    let t = s.both(&["plan", "--plane", "droplet"]);
    s.snap("deploy_plan_change", &t);
    let t = s.run(&["--json", "apply", "--plane", "droplet", "--yes"]);
    s.snap("deploy_apply_change_json", &t);
    assert_eq!(s.w.current(), 2, "{t}");

    // Status in step with the ledger.
    let t = s.both(&["status"]);
    s.snap("deploy_status", &t);

    // A secret value in the api's log (the access log holds the request's path): redacted.
    request(&s.w, "api.e2e.test", &format!("/snap/{CANARY}"));
    wait_for_log_line(&s.w, "api", "/snap/");
    let t = s.both(&["logs", "api", "--tail", "1"]);
    s.snap("deploy_logs_secret_redacted", &t);
    let t = s.both(&["logs", "nosuch"]);
    s.snap("deploy_logs_unknown_workload", &t);

    // exec: a command's output; a failing command's own status, with a secret value in its
    // error redacted; an unknown workload; no command at all.
    let t = s.both(&["exec", "edge", "--", "caddy", "fmt", "/etc/caddy/Caddyfile"]);
    s.snap("deploy_exec_output", &t);
    let missing = format!("/srv/{CANARY}");
    let t = s.both(&["exec", "api", "--", "caddy", "fmt", &missing]);
    s.snap("deploy_exec_failing_command", &t);
    let t = s.both(&["exec", "nosuch", "--", "caddy", "version"]);
    s.snap("deploy_exec_unknown_workload", &t);
    let t = s.both(&["exec", "api"]);
    s.snap("deploy_exec_no_command", &t);

    // Rollback: the dry run, then for real (back to release 1).
    let t = s.both(&["rollback"]);
    s.snap("deploy_rollback_dry_run", &t);
    let t = s.run(&["rollback", "--yes"]);
    s.snap("deploy_rollback", &t);
    assert_eq!(s.w.current(), 1, "{t}");

    // Drift: a workload's container removed behind the ledger's back.
    let web = s.w.container("web");
    ok(Command::new("docker").args(["rm", "-f", &web]));
    let t = s.both(&["status"]);
    s.snap("deploy_status_drift", &t);

    // doctor --online against the live droplet.
    let t = s.both(&["doctor", "--online"]);
    s.snap("deploy_doctor_online", &t);

    // A new release over the drift, then a rollback in JSON; with nothing before release 1
    // left to restore after it, a second one is refused.
    let t = s.run(&["apply", "--plane", "droplet", "--yes"]);
    s.snap("deploy_apply_over_drift", &t);
    assert_eq!(s.w.current(), 3, "{t}");
    let t = s.run(&["--json", "rollback", "--yes"]);
    s.snap("deploy_rollback_json", &t);
    let t = s.both(&["rollback", "--to", "9", "--yes"]);
    s.snap("deploy_rollback_unknown_release", &t);

    // bootstrap: refused without a key to install, then its dry run (the real one installs
    // packages: tests/vm_bootstrap.rs).
    let t = s.both(&["bootstrap"]);
    s.snap("deploy_bootstrap_no_keys", &t);
    let keyed = s.w.config(&api("v2")).replace(
        "keep_releases = 3\n",
        "keep_releases = 3\nauthorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f deploy@laptop\"]\n",
    );
    std::fs::write(s.w.path("alembic.toml"), keyed).unwrap();
    let t = s.both(&["bootstrap"]);
    s.snap("deploy_bootstrap_dry_run", &t);
    config(&s, "v2");

    // ssh unreachable: every command that needs the droplet says so.
    s.w.kill_sshd();
    let mut t = String::new();
    for args in [
        &["status"][..],
        &["plan", "--plane", "droplet"],
        &["apply", "--plane", "droplet", "--yes"],
        &["rollback", "--yes"],
        &["logs", "api"],
        &["exec", "api", "--", "caddy", "version"],
    ] {
        t.push_str(&s.both(args));
        t.push('\n');
    }
    s.snap("deploy_ssh_unreachable", &t);

    s.w.assert_no_leaks();
}
