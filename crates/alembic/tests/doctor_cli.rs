//! `alembic doctor` end to end: on a fresh project with no secrets set it fails with one check
//! per missing secret (naming it, SEC003), exit 1; with them set (canary values) it is ok, exit
//! 0, and no value appears in any output. Tool checks run against the real tools on PATH (the
//! test needs terraform and ssh, as the planes do). Drift is detected against rendered files.

use assert_cmd::Command;
use serde_json::Value;

mod support;
use support::cli::{alembic, project};

/// Local-context secrets of the default topology: droplet + infra + host.
const LOCAL: [&str; 6] = [
    "DATABASE_URL",
    "DIGITALOCEAN_TOKEN",
    "GATEWAY_SIGNING_KEY",
    "OPENAI_API_KEY",
    "SPACES_ACCESS_KEY_ID",
    "SPACES_SECRET_ACCESS_KEY",
];
/// `ci.secrets` of the default topology.
const CI: [&str; 7] = [
    "DATABASE_URL",
    "DEPLOY_KNOWN_HOSTS",
    "DEPLOY_SSH_KEY",
    "DIGITALOCEAN_TOKEN",
    "GATEWAY_SIGNING_KEY",
    "SPACES_ACCESS_KEY_ID",
    "SPACES_SECRET_ACCESS_KEY",
];

fn canary(name: &str) -> String {
    format!("canary-{}-value-8c1d", name.to_lowercase())
}

fn doctor_json(c: &mut Command) -> (i32, Value, String) {
    let out = c.args(["doctor", "--json"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn checks(v: &Value) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn needs_tools() -> bool {
    alembic_testkit::tools(["terraform", "ssh"]).is_some()
}

#[test]
fn fresh_project_without_secrets_fails_once_per_missing_secret() {
    let dir = project();
    let (code, v, _) = doctor_json(&mut alembic(dir.path()));
    assert_eq!(code, 1);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["ok"], false);
    for c in v["checks"].as_array().unwrap() {
        for k in ["id", "status", "message", "hint"] {
            assert!(c[k].is_string(), "{k} in {c}");
        }
        assert!(["pass", "warn", "fail", "skip"].contains(&c["status"].as_str().unwrap()));
    }
    let failing_secrets: Vec<String> = checks(&v)
        .into_iter()
        .filter(|(id, s)| id.starts_with("secrets.") && s == "fail")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        failing_secrets,
        LOCAL.map(|n| format!("secrets.{n}")).to_vec()
    );
    for c in v["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        if let Some(name) = id.strip_prefix("secrets.") {
            let msg = c["message"].as_str().unwrap();
            assert!(msg.starts_with(&format!("SEC003: {name} ")), "{msg}");
        }
    }
    assert_eq!(
        checks(&v)
            .iter()
            .find(|(id, _)| id == "config.found")
            .unwrap()
            .1,
        "pass"
    );
}

#[test]
fn embedded_default_is_diagnosed_too() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v, stderr) = doctor_json(&mut alembic(dir.path()));
    assert_eq!(code, 1);
    assert_eq!(v["ok"], false);
    assert!(stderr.contains("embedded default"));
    assert_eq!(checks(&v)[0], ("config.found".into(), "warn".into()));
}

#[test]
fn with_secrets_set_doctor_is_ok_and_prints_no_value() {
    if !needs_tools() {
        return;
    }
    let dir = project();
    let mut c = alembic(dir.path());
    for n in LOCAL {
        c.env(n, canary(n));
    }
    let out = c.args(["doctor", "--json"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let failing: Vec<_> = checks(&v)
        .into_iter()
        .filter(|(_, s)| s == "fail")
        .collect();
    assert!(failing.is_empty(), "{failing:?}\n{stdout}");
    assert_eq!(v["ok"], true);
    assert_eq!(out.status.code(), Some(0));

    // Human output too; nothing anywhere holds a value.
    let mut c = alembic(dir.path());
    for n in LOCAL {
        c.env(n, canary(n));
    }
    let human = c.arg("doctor").output().unwrap();
    assert_eq!(human.status.code(), Some(0));
    let all = format!(
        "{stdout}{}{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&human.stdout),
        String::from_utf8_lossy(&human.stderr)
    );
    assert!(all.contains("secrets.OPENAI_API_KEY"));
    assert!(
        !all.contains("canary"),
        "a secret value was printed:\n{all}"
    );
}

#[test]
fn empty_value_counts_as_unset() {
    let dir = project();
    let mut c = alembic(dir.path());
    for n in LOCAL {
        c.env(n, canary(n));
    }
    c.env("DATABASE_URL", "");
    let (code, v, _) = doctor_json(&mut c);
    assert_eq!(code, 1);
    let failing: Vec<_> = checks(&v)
        .into_iter()
        .filter(|(id, s)| id.starts_with("secrets.") && s == "fail")
        .collect();
    assert_eq!(failing, [("secrets.DATABASE_URL".into(), "fail".into())]);
}

#[test]
fn ci_context_checks_the_ci_environment_secrets_and_skips_the_host_tool() {
    if !needs_tools() {
        return;
    }
    let dir = project();
    let mut c = alembic(dir.path());
    c.env("CI", "true").env("ALEMBIC_CONTEXT", "deploy");
    for n in CI {
        c.env(n, canary(n));
    }
    let (code, v, _) = doctor_json(&mut c);
    let ids = checks(&v);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(code, 0);
    let secret_ids: Vec<&str> = ids
        .iter()
        .filter(|(id, _)| id.starts_with("secrets."))
        .map(|(id, _)| id.as_str())
        .collect();
    // What `alembic apply` needs in the deploy job: the CI environment's secrets minus the
    // deploy key and known_hosts, which the workflow's ssh-agent step consumes.
    let apply_needs: Vec<String> = CI
        .iter()
        .filter(|n| !n.starts_with("DEPLOY_"))
        .map(|n| format!("secrets.{n}"))
        .collect();
    assert_eq!(secret_ids, apply_needs);
    assert!(ids.contains(&("tools.launchctl".into(), "skip".into())));
    assert!(!v.to_string().contains("canary"));
}

#[test]
fn drift_is_a_failure_and_in_sync_is_a_pass() {
    let dir = project();
    // The user's own .gitignore lines (alembic merges its block in) are not drift.
    std::fs::write(dir.path().join(".gitignore"), "node_modules/\n").unwrap();
    let render = alembic(dir.path()).arg("render").output().unwrap();
    assert!(
        render.status.success(),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    let (_, v, _) = doctor_json(&mut alembic(dir.path()));
    let drift = |v: &Value| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "artifacts.drift")
            .cloned()
            .unwrap()
    };
    assert_eq!(drift(&v)["status"], "pass", "{}", drift(&v));
    let caddyfile = dir.path().join("infra/caddy/Caddyfile");
    let mut text = std::fs::read_to_string(&caddyfile).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&caddyfile, text).unwrap();
    let (code, v, _) = doctor_json(&mut alembic(dir.path()));
    assert_eq!(code, 1);
    let d = drift(&v);
    assert_eq!(d["status"], "fail");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("infra/caddy/Caddyfile"),
        "{d}"
    );
}

#[test]
fn invalid_config_fails_config_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alembic.toml"),
        "version = 1\n[project]\nname = 3\n",
    )
    .unwrap();
    let (code, v, _) = doctor_json(&mut alembic(dir.path()));
    assert_eq!(code, 1);
    assert!(checks(&v).contains(&("config.valid".into(), "fail".into())));
}

// `alembic doctor --online` against loopback only: the config's droplet address is 127.0.0.1,
// the edge is a real Caddy (`tls internal`, local CA, admin off, storage in a temp dir) on high
// ports, a listener the test holds stands in for a workload port that must not answer, and the
// SSH port is closed. Every check targets 127.0.0.1 and nothing else.
mod online {

    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::process::{Child, Command as StdCommand, Stdio};
    use std::time::{Duration, Instant};

    use assert_cmd::Command;
    use serde_json::Value;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Kills the Caddy it holds when dropped, so a failing assertion does not leak it.
    struct Running(Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn wait_open(port: u16) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A loopback DNS server for the test (hand-written: a few lines of RFC 1035 instead of a
    /// DNS server crate): it answers an A query for `name` with 127.0.0.1 and every other query
    /// with no records, until the test ends. Returns its port.
    fn dns_server(name: &'static str) -> u16 {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            // Bounded: doctor asks A and AAAA for each route, once.
            for _ in 0..64 {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    return;
                };
                let q = &buf[..n];
                // The question: labels from byte 12 to the root label, then type and class.
                let mut i = 12;
                let mut labels = Vec::new();
                while i < n && q[i] != 0 {
                    let len = q[i] as usize;
                    labels.push(
                        String::from_utf8_lossy(&q[i + 1..(i + 1 + len).min(n)]).into_owned(),
                    );
                    i += 1 + len;
                }
                let end = (i + 5).min(n);
                let qtype = q
                    .get(i + 1..i + 3)
                    .map(|t| u16::from_be_bytes([t[0], t[1]]));
                let answer = labels.join(".") == name && qtype == Some(1);
                let mut r = Vec::with_capacity(64);
                r.extend_from_slice(&q[..2]); // id
                r.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available
                r.extend_from_slice(&[0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
                r.extend_from_slice(&q[12..end]); // the question, as asked
                if answer {
                    // A pointer to the question's name, type A, class IN, TTL 60, 127.0.0.1.
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
                }
                let _ = sock.send_to(&r, from);
            }
        });
        port
    }

    fn config(dir: &Path, http: u16, https: u16, ssh: u16, gateway: u16) {
        let src = alembic_config::DEFAULT_TOML
            .replace(
                "# address   = \"203.0.113.20\"",
                &format!("address = \"127.0.0.1\"\nhttp_port = {http}\nhttps_port = {https}\n#"),
            )
            .replace("tls         = \"acme\"", "tls         = \"internal\"")
            .replace("ssh_port    = 22", &format!("ssh_port    = {ssh}"))
            .replace("port     = 8787", &format!("port     = {gateway}"));
        assert!(src.contains("address = \"127.0.0.1\"") && src.contains(&gateway.to_string()));
        std::fs::write(dir.join("alembic.toml"), src).unwrap();
    }

    #[test]
    fn online_checks_against_a_loopback_edge() {
        let Some([caddy, _openssl]) = alembic_testkit::tools(["caddy", "openssl"]) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (http, https, ssh) = (free_port(), free_port(), free_port());
        // A port a droplet workload listens on: it must not answer from outside.
        let stray = TcpListener::bind("127.0.0.1:0").unwrap();
        let gateway = stray.local_addr().unwrap().port();
        config(dir.path(), http, https, ssh, gateway);

        let storage = dir.path().join("caddy-data");
        let caddyfile = dir.path().join("Caddyfile");
        std::fs::write(
        &caddyfile,
        format!(
            "{{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tstorage file_system {}\n\thttp_port {http}\n\thttps_port {https}\n}}\n\napi.alembic.example.com, gateway.alembic.example.com {{\n\tbind 127.0.0.1\n\ttls internal\n\trespond \"ok\"\n}}\n",
            storage.display()
        ),
    )
    .unwrap();
        let _edge = Running(
            StdCommand::new(&caddy)
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(&caddyfile)
                .env("HOME", dir.path())
                .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
                .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(wait_open(https), "caddy did not listen on {https}");
        assert!(wait_open(http), "caddy did not listen on {http}");

        // Records come from a DNS server on loopback: one route points at the droplet, the
        // other has no record.
        let dns = dns_server("api.alembic.example.com");
        let mut c = Command::cargo_bin("alembic").unwrap();
        c.current_dir(dir.path())
            .env_remove("ALEMBIC_CONFIG")
            .env_remove("CI")
            .env_remove("ALEMBIC_CONTEXT")
            .env_remove("GITHUB_ACTIONS")
            .env("ALEMBIC_DNS_SERVER", format!("127.0.0.1:{dns}"))
            .args(["doctor", "--online", "--json"])
            .timeout(Duration::from_secs(120));
        let out = c.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "ssh and DNS cannot pass here");
        let get = |id: &str| -> Value {
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("no check {id} in {v}"))
        };
        assert_eq!(
            get("online.ports.edge")["status"],
            "pass",
            "{}",
            get("online.ports.edge")
        );
        assert_eq!(
            get("online.ports.edge")["message"],
            format!("{http} and {https} are open")
        );
        let ssh_check = get("online.ssh");
        assert_eq!(ssh_check["status"], "fail");
        assert!(ssh_check["message"]
            .as_str()
            .unwrap()
            .contains(&format!("deploy@127.0.0.1 -p {ssh}")));
        // Caddy's internal CA: a real certificate was read, chained to an untrusted root, short-lived.
        for host in ["api.alembic.example.com", "gateway.alembic.example.com"] {
            let tls = get(&format!("online.tls.{host}"));
            assert_eq!(tls["status"], "warn", "{tls}");
            assert!(
                tls["message"].as_str().unwrap().contains("internal"),
                "{tls}"
            );
        }
        let api = get("online.dns.api.alembic.example.com");
        assert_eq!(api["status"], "pass", "{api}");
        assert_eq!(
            api["message"],
            "api.alembic.example.com resolves to 127.0.0.1"
        );
        let gw = get("online.dns.gateway.alembic.example.com");
        assert_eq!(gw["status"], "fail", "{gw}");
        assert_eq!(
            gw["message"],
            "gateway.alembic.example.com resolves to [], not the droplet 127.0.0.1"
        );
        let closed = get("online.ports.closed");
        assert_eq!(closed["status"], "fail", "{closed}");
        assert!(
            closed["message"]
                .as_str()
                .unwrap()
                .contains(&gateway.to_string()),
            "{closed}"
        );
        drop(stray);
    }
}

// The rendered ci.yml runs `alembic doctor --json` as a gate in a job without the deploy
// environment: it must pass there with no secrets and no apply tools.
#[test]
fn gates_job_in_ci_needs_no_secrets() {
    let dir = project();
    let mut c = alembic(dir.path());
    c.env("CI", "true");
    let (code, v, _) = doctor_json(&mut c);
    let failing: Vec<_> = checks(&v)
        .into_iter()
        .filter(|(_, s)| s == "fail")
        .collect();
    assert!(failing.is_empty(), "{failing:?}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(code, 0);
}
