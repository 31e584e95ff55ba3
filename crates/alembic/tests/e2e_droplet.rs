//! End-to-end: the droplet plane deployed for real. A real `sshd` on 127.0.0.1 (temp host key,
//! key auth) and this machine's Docker engine play the droplet; the static caddy binary,
//! `docker import`ed, is both the edge and the stub upstreams (`caddy respond`). It starts
//! with a first release that fails its probe (brought down, nothing to roll back to), then
//! deploys, redeploys under load, rolls back a failing release, races two applies, cuts ssh
//! mid-apply and rolls back by hand.
//!
//! Skipped (printing why) without docker, sshd, ssh, curl or caddy, unless
//! `ALEMBIC_REQUIRE_E2E=1` (set by scripts/test.sh), which turns the skip into a failure.
//!
//! Knobs the test sets: `ALEMBIC_SSH_CONFIG` (its own ssh_config + known_hosts; host keys are
//! still checked), `ALEMBIC_PROBE_TIMEOUT` (short, so the failing release rolls back quickly)
//! and, for the apply killed mid-way, `ALEMBIC_LEASE_TTL=3` so its leftover lease expires.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CANARY: &str = "canary-5f1d2c9e-DO-NOT-LEAK";
const CANARY2: &str = "canary2-a7b3e044-secret";

fn require_e2e() -> bool {
    std::env::var("ALEMBIC_REQUIRE_E2E").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(
        !require_e2e(),
        "e2e cannot run (ALEMBIC_REQUIRE_E2E=1): {why}"
    );
    eprintln!("SKIPPED e2e_droplet: {why}");
}

fn caddy_binary() -> Option<PathBuf> {
    let local = alembic_testkit::workspace_root().join(".tools/bin/caddy");
    let p = if local.exists() {
        local
    } else {
        alembic_testkit::which("caddy")?
    };
    std::fs::canonicalize(p).ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything the test started; torn down on drop, even when an assertion fails.
struct World {
    dir: tempfile::TempDir,
    project: String,
    image: String,
    sshd: Option<Child>,
    sshd_port: u16,
    https_port: u16,
    http_port: u16,
    /// Every byte alembic printed, for the leak check.
    transcript: Vec<u8>,
}

impl World {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn root(&self) -> PathBuf {
        self.path("droplet")
    }

    fn start_sshd(&mut self) {
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.path("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.sshd_port)).is_err() {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("sshd exited at start: {s}");
            }
            assert!(Instant::now() < deadline, "sshd did not listen within 10s");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.sshd = Some(child);
    }

    /// Kill sshd and every session process it forked (the ControlMaster's server side too),
    /// by pid: a dropped network, as seen from the applying side.
    fn kill_sshd(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let root = c.id();
            // Freeze the listener (no new session starts, its children stay its children),
            // kill every descendant (found by parent pid in /proc), then the listener.
            let _ = Command::new("kill")
                .args(["-STOP", &root.to_string()])
                .status();
            for _ in 0..2 {
                let pids = descendants(root);
                if !pids.is_empty() {
                    eprintln!("e2e: killing sshd sessions {pids:?}");
                    let _ = Command::new("kill")
                        .arg("-9")
                        .args(pids.iter().map(u32::to_string))
                        .status();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-9", &root.to_string()])
                .status();
            let _ = c.wait();
        }
    }

    fn config(&self, api_cmd: &[&str]) -> String {
        let cmd: Vec<String> = api_cmd.iter().map(|s| format!("{s:?}")).collect();
        format!(
            r#"version = 1

[project]
name   = "{project}"
domain = "e2e.test"

[host]
os = "linux"

[droplet]
name        = "e2e-droplet"
ssh_user    = "root"
ssh_port    = {ssh}
admin_cidrs = ["127.0.0.1/32"]
token_env   = "DIGITALOCEAN_TOKEN"
tls         = "internal"
root        = "{root}"
edge_image  = "{image}"
edge_bind   = "127.0.0.1"
http_port   = {http}
https_port  = {https}
address     = "127.0.0.1"
keep_releases = 3

[ci]
repository   = "acme/e2e"
branch       = "main"
runner       = "ubuntu-24.04"
node_version = "22"
checks       = ["true"]
gates        = ["true"]
environment  = "production"
secrets      = []

[[workload]]
name     = "api"
plane    = "droplet"
exposure = "public"
image    = "{image}"
command  = [{cmd}]
port     = 8080
route    = "api.e2e.test"
health   = "/healthz"
secrets  = ["E2E_CANARY_TOKEN"]

[[workload]]
name     = "web"
plane    = "droplet"
exposure = "public"
image    = "{image}"
command  = ["caddy", "respond", "--listen", ":8081", "--body", "web v1"]
port     = 8081
route    = "web.e2e.test"
secrets  = ["E2E_SECOND_SECRET"]
"#,
            project = self.project,
            ssh = self.sshd_port,
            root = self.root().display(),
            image = self.image,
            http = self.http_port,
            https = self.https_port,
            cmd = cmd.join(", "),
        )
    }

    fn write_config(&self, body: &str, status: u16) {
        let status = status.to_string();
        let text = self.config(&[
            "caddy", "respond", "--listen", ":8080", "--status", &status, "--body", body,
        ]);
        std::fs::write(self.path("alembic.toml"), text).unwrap();
    }

    fn alembic(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_alembic"));
        c.current_dir(self.dir.path())
            .arg("-c")
            .arg(self.path("alembic.toml"))
            .env("ALEMBIC_SSH_CONFIG", self.path("ssh_config"))
            .env("ALEMBIC_PROBE_TIMEOUT", "15")
            .env("E2E_CANARY_TOKEN", CANARY)
            .env("E2E_SECOND_SECRET", CANARY2)
            .env_remove("ALEMBIC_LEASE_TTL")
            .stdin(Stdio::null());
        c
    }

    fn alembic_run(&mut self, args: &[&str]) -> Output {
        let o = run(self.alembic().args(args));
        self.record(&o);
        o
    }

    fn record(&mut self, o: &Output) {
        self.transcript.extend_from_slice(&o.stdout);
        self.transcript.extend_from_slice(&o.stderr);
    }

    fn ca(&self) -> PathBuf {
        self.path("edge-root.crt")
    }

    /// GET a route through the edge over HTTPS, trusting only the edge's local CA.
    fn get(&self, host: &str) -> Result<String, String> {
        curl(host, self.https_port, &self.ca())
    }

    fn container(&self, service: &str) -> String {
        let id = ok(Command::new("docker").args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]));
        id.lines().next().unwrap_or_default().trim().to_owned()
    }

    fn current(&self) -> u64 {
        let link = std::fs::read_link(self.root().join("current")).expect("current link");
        link.file_name().unwrap().to_str().unwrap().parse().unwrap()
    }

    fn ledger(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.root().join("ledger.json")).unwrap())
            .unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_sshd();
        let label = format!("label=com.docker.compose.project={}", self.project);
        let ids = |kind: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(kind)
                .args(["-q", "--filter", &label])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = ids(&["ps", "-a"]);
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&containers)
                .output();
        }
        for (list, rm) in [
            (&["network", "ls"][..], &["network", "rm"][..]),
            (&["volume", "ls"][..], &["volume", "rm", "-f"][..]),
        ] {
            let found = ids(list);
            if !found.is_empty() {
                let _ = Command::new("docker").args(rm).args(&found).output();
            }
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn curl(host: &str, port: u16, ca: &Path) -> Result<String, String> {
    let o = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5", "--fail"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Build everything: keys, sshd, the image. None (after printing why) when a part is missing.
fn world() -> Option<World> {
    for tool in ["ssh", "ssh-keygen", "curl", "docker", "tar"] {
        if alembic_testkit::which(tool).is_none() {
            skip(&format!("`{tool}` is not on PATH"));
            return None;
        }
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        skip("/usr/sbin/sshd is missing (Debian openssh-server)");
        return None;
    }
    let Some(caddy) = caddy_binary() else {
        skip("no caddy binary (.tools/bin/caddy; run scripts/install-tools.sh)");
        return None;
    };
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        _ => {
            skip("no Docker engine answers `docker info`");
            return None;
        }
    }
    if run(Command::new("docker").args(["compose", "version"]))
        .status
        .code()
        != Some(0)
    {
        skip("`docker compose` (the v2 plugin) is missing");
        return None;
    }
    let pid = std::process::id();
    let dir = tempfile::Builder::new()
        .prefix("alembic-e2e-")
        .tempdir()
        .unwrap();
    let mut w = World {
        dir,
        project: format!("e2e{pid}"),
        image: format!("alembic-e2e/caddy:{pid}"),
        sshd: None,
        sshd_port: free_port(),
        https_port: free_port(),
        http_port: free_port(),
        transcript: Vec::new(),
    };
    // The image: the static caddy binary alone, with the official image's XDG layout.
    let img = w.path("image/usr/bin");
    std::fs::create_dir_all(&img).unwrap();
    std::fs::copy(&caddy, img.join("caddy")).unwrap();
    let tar = run(Command::new("tar")
        .arg("-C")
        .arg(w.path("image"))
        .args(["-c", "."]));
    assert!(tar.status.success());
    let mut import = Command::new("docker")
        .args([
            "import",
            "--change",
            "ENV XDG_DATA_HOME=/data",
            "--change",
            "ENV XDG_CONFIG_HOME=/config",
            "-",
            &w.image,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success(), "docker import failed");

    // Keys, sshd config, client config with a known_hosts holding the temp host key.
    for k in ["host_key", "client_key"] {
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(w.path(k)));
    }
    std::fs::copy(w.path("client_key.pub"), w.path("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd_config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nStrictModes no\n\
         PidFile {pidf}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         PermitRootLogin prohibit-password\nMaxSessions 64\nMaxStartups 64\n\
         SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        port = w.sshd_port,
        hk = w.path("host_key").display(),
        ak = w.path("authorized_keys").display(),
        pidf = w.path("sshd.pid").display(),
    );
    std::fs::write(w.path("sshd_config"), sshd_config).unwrap();
    let host_pub = std::fs::read_to_string(w.path("host_key.pub")).unwrap();
    let mut parts = host_pub.split_whitespace();
    let known = format!(
        "[127.0.0.1]:{} {} {}\n",
        w.sshd_port,
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    std::fs::write(w.path("known_hosts"), known).unwrap();
    let ssh_config = format!(
        "Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
         StrictHostKeyChecking yes\n",
        key = w.path("client_key").display(),
        kh = w.path("known_hosts").display(),
    );
    std::fs::write(w.path("ssh_config"), ssh_config).unwrap();
    w.start_sshd();
    Some(w)
}

/// Bounded request loop against a route: counts failed requests until told to stop.
fn request_loop(
    host: String,
    port: u16,
    ca: PathBuf,
    stop: Arc<AtomicBool>,
) -> (u32, u32, Vec<String>) {
    let (mut total, mut failed, mut errors) = (0u32, 0u32, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && total < 2000 && Instant::now() < deadline {
        total += 1;
        if let Err(e) = curl(&host, port, &ca) {
            failed += 1;
            if errors.len() < 5 {
                errors.push(e);
            }
        }
    }
    (total, failed, errors)
}

/// Every process descended from `root`, by parent pid.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name: state, ppid, ...
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent.insert(pid, ppid);
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&child, &pp) in &parent {
            if pp == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
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
fn droplet_apply_end_to_end() {
    let Some(mut w) = world() else { return };
    let started = Instant::now();

    // (0) The very first release fails its probe: nothing was serving before, so there is
    // nothing to roll back to; the failed release is brought down and the ledger says so.
    w.write_config("body v0 broken", 500);
    let o = run(w
        .alembic()
        .env("ALEMBIC_PROBE_TIMEOUT", "6")
        .args(["apply", "--plane", "droplet", "--yes"]));
    w.record(&o);
    assert_eq!(code(&o), 3, "failing first release\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("release 1 failed; nothing was serving before it")
            && err.contains("the failed release was stopped"),
        "{err}"
    );
    assert!(
        err.contains("api.e2e.test/healthz"),
        "the failing route is named: {err}"
    );
    assert!(
        err.contains("log lines of api"),
        "the container's logs are shown: {err}"
    );
    let running = ok(Command::new("docker").args([
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", w.project),
    ]));
    assert_eq!(
        running.trim(),
        "",
        "the failed first release is still running"
    );
    assert!(!w.root().join("current").exists(), "nothing became current");
    let ledger = w.ledger();
    assert_eq!(ledger["current"], serde_json::Value::Null);
    let first = &ledger["releases"][0];
    assert_eq!(
        (first["number"].as_u64(), first["outcome"].as_str()),
        (Some(1), Some("failed"))
    );
    assert!(
        first["note"]
            .as_str()
            .unwrap()
            .contains("the failed release was stopped"),
        "{first}"
    );
    eprintln!(
        "e2e: failed first release stopped after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // (a) First deploy that works: release 2, still a first release (nothing current).
    w.write_config("body v1", 200);
    let o = w.alembic_run(&["plan", "--plane", "droplet", "--detailed-exitcode"]);
    assert_eq!(code(&o), 2, "a first release is a change\n{}", text(&o));
    let o = w.alembic_run(&["apply", "--plane", "droplet"]);
    assert_eq!(code(&o), 0, "dry run\n{}", text(&o));
    assert!(
        !w.root().join("current").exists(),
        "a dry run must run nothing"
    );
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 0, "first apply\n{}", text(&o));
    assert_eq!(w.current(), 2);
    let edge = w.container("edge");
    ok(Command::new("docker")
        .args([
            "cp",
            &format!("{edge}:/data/caddy/pki/authorities/local/root.crt"),
        ])
        .arg(w.ca()));
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1");
    assert_eq!(w.get("web.e2e.test").unwrap(), "web v1");
    // Only the edge publishes ports.
    for svc in ["edge", "api", "web"] {
        let id = w.container(svc);
        let ports = ok(Command::new("docker").args([
            "inspect",
            "-f",
            "{{json .HostConfig.PortBindings}}",
            &id,
        ]));
        let v: serde_json::Value = serde_json::from_str(ports.trim()).unwrap();
        let published = v.as_object().is_some_and(|m| !m.is_empty());
        assert_eq!(published, svc == "edge", "{svc} port bindings: {ports}");
    }

    // (f) The canaries reach the container and the 0600 .env.
    let api = w.container("api");
    let env = ok(Command::new("docker").args(["inspect", "-f", "{{json .Config.Env}}", &api]));
    assert!(env.contains(&format!("E2E_CANARY_TOKEN={CANARY}")), "{env}");
    let dotenv = w.root().join("releases/2/.env");
    let meta = std::fs::metadata(&dotenv).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&dotenv).unwrap().contains(CANARY));

    // (g) Unchanged: plan says no changes; apply runs no mutating remote command.
    let o = w.alembic_run(&["plan", "--plane", "droplet", "--detailed-exitcode"]);
    assert_eq!(code(&o), 0, "unchanged plan\n{}", text(&o));
    let o = w.alembic_run(&["--json", "apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 0, "unchanged apply\n{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert!(!events.is_empty());
    let mutating: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "op" && e["mutating"] == true)
        .collect();
    assert!(mutating.is_empty(), "unchanged release ran {mutating:?}");
    assert_eq!(w.current(), 2);

    // (b) A changed upstream under a bounded request loop: zero failed requests.
    w.write_config("body v2", 200);
    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let (stop, ca, port) = (stop.clone(), w.ca(), w.https_port);
        std::thread::spawn(move || request_loop("api.e2e.test".into(), port, ca, stop))
    };
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (total, failed, errors) = looper.join().unwrap();
    assert_eq!(code(&o), 0, "redeploy\n{}", text(&o));
    assert!(total > 10, "the request loop ran only {total} requests");
    assert_eq!(
        failed, 0,
        "{failed}/{total} requests failed during the redeploy: {errors:?}"
    );
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v2");
    assert_eq!(edge, w.container("edge"), "the edge must not be recreated");
    eprintln!("e2e: redeploy under load: {total} requests, 0 failed");

    // (c) A release whose health check fails is rolled back.
    w.write_config("body v3 broken", 500);
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 3, "failing release\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rolled back to release 3"), "{err}");
    assert!(
        err.contains("api.e2e.test/healthz"),
        "the failing route is named: {err}"
    );
    assert!(
        err.contains("log lines of api"),
        "the container's logs are shown: {err}"
    );
    assert_eq!(w.current(), 3);
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v2");
    let ledger = w.ledger();
    let last = ledger["releases"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["number"], 4);
    assert_eq!(last["outcome"], "failed");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .contains("rolled back to release 3"),
        "{last}"
    );
    assert_eq!(ledger["current"], 3);

    // (d) Two concurrent applies: exactly one runs, the other names the lease holder.
    w.write_config("body v4", 200);
    let a = w
        .alembic()
        .args(["apply", "--plane", "droplet", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = w
        .alembic()
        .args(["apply", "--plane", "droplet", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    w.record(&oa);
    w.record(&ob);
    let mut codes = [code(&oa), code(&ob)];
    codes.sort_unstable();
    assert_eq!(codes, [0, 3], "A:\n{}\nB:\n{}", text(&oa), text(&ob));
    eprintln!("e2e: concurrent A:\n{}\nB:\n{}", text(&oa), text(&ob));
    let loser = if code(&oa) == 3 { &oa } else { &ob };
    let msg = String::from_utf8_lossy(&loser.stderr);
    assert!(
        msg.contains("holds the lease") && msg.contains("root@"),
        "{msg}"
    );
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v4");

    // (e) sshd killed mid-apply: `current` stays on a complete release; the next apply works.
    w.write_config("body v5", 200);
    let before = w.current();
    let mut c = w
        .alembic()
        .env("ALEMBIC_LEASE_TTL", "3")
        .args(["apply", "--plane", "droplet", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cut the connection once the new release's upload has begun (the lease is held, the
    // release dir exists): the worst moment short of switching `current`.
    let next = w.ledger()["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["number"].as_u64())
        .max()
        .unwrap()
        + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(w.root().join("lease.json").exists()
        && w.root().join(format!("releases/{next}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "the apply never started uploading release {next}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "e2e: lease seen: {}",
        std::fs::read_to_string(w.root().join("lease.json")).unwrap_or_default()
    );
    w.kill_sshd();
    let killed = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(_s) = c.try_wait().unwrap() {
                break c.wait_with_output().unwrap();
            }
            assert!(Instant::now() < deadline, "apply hung after sshd died");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    w.record(&killed);
    eprintln!("e2e: interrupted apply:\n{}", text(&killed));
    assert_eq!(code(&killed), 3, "interrupted apply\n{}", text(&killed));
    let cur = w.current();
    assert_eq!(cur, before, "current moved during an interrupted apply");
    for f in ["compose.yaml", "Caddyfile", ".env"] {
        assert!(
            w.root().join(format!("releases/{cur}/{f}")).is_file(),
            "release {cur} lacks {f}"
        );
    }
    w.start_sshd();
    std::thread::sleep(Duration::from_secs(4)); // past the 3 s lease TTL
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 0, "apply after the interruption\n{}", text(&o));
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v5");

    // alembic rollback restores the previous release whole.
    let o = w.alembic_run(&["rollback", "--yes"]);
    assert_eq!(code(&o), 0, "rollback\n{}", text(&o));
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v4");
    assert_eq!(
        w.ledger()["releases"].as_array().unwrap().last().unwrap()["outcome"],
        "rolled_back"
    );

    // (f) The canaries appear nowhere else: not in anything alembic printed, not in any file
    // under the test's dir but the releases' .env files.
    let all = String::from_utf8_lossy(&w.transcript).into_owned();
    for c in [CANARY, CANARY2] {
        assert!(
            !all.contains(c),
            "a secret value leaked into alembic's output"
        );
    }
    let mut files = Vec::new();
    files_under(w.dir.path(), &mut files);
    for f in files {
        if f.file_name().is_some_and(|n| n == ".env") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        let s = String::from_utf8_lossy(&bytes);
        assert!(
            !s.contains(CANARY) && !s.contains(CANARY2),
            "secret value in {}",
            f.display()
        );
    }
    eprintln!("e2e: done in {:.1}s", started.elapsed().as_secs_f64());
}
