//! The "droplet" the deploy tests apply to: a real `sshd` on 127.0.0.1 (temp host key, key
//! auth) and this machine's Docker engine, with the static caddy binary `docker import`ed as
//! both the edge and the stub upstreams (`caddy respond`). Shared by `e2e_droplet.rs` and
//! `faults_apply.rs`.
//!
//! [`world`] builds everything or, when a part is missing, prints `SKIPPED <test>: why` and
//! returns None — unless `ALEMBIC_REQUIRE_E2E=1` (set by scripts/test.sh and CI), which turns
//! the skip into a failure. [`World`]'s `Drop` tears down sshd, the compose project's
//! containers, networks and volumes, the image and any tmpfs it mounted, even when an
//! assertion failed. A killed run never gets to `Drop`: everything a world creates is also
//! listed in its run record and its image (so its containers) carries the run's owner label
//! (`alembic_testkit::sweep`); the first world of the next test process removes what runs whose
//! owner process is gone left behind, and never what a live run owns.
//!
//! Knobs the tests set on alembic: `ALEMBIC_SSH_CONFIG` (the world's own ssh_config and
//! known_hosts; host keys are still checked) and `ALEMBIC_PROBE_TIMEOUT`.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CANARY: &str = "canary-5f1d2c9e-DO-NOT-LEAK";
pub const CANARY2: &str = "canary2-a7b3e044-secret";
/// `E2E_SECOND_SECRET`'s value (it holds [`CANARY2`]): every shape compose's dotenv reader used
/// to change on the way to the container (`$$`, `$HOME`, ` #x`, quotes single and double,
/// backslashes, `${OTHER}`, `$(...)`, `=`, unicode, a newline, a tab, leading and trailing
/// spaces). It must reach the `web` container byte for byte.
pub const HOSTILE: &str = "  Pa$$w0rd$HOME #x 'single' \"double\" back\\slash\\\\ ${E2E_CANARY_TOKEN} $(id) `id` a=b é ✓\ncanary2-a7b3e044-secret\t trailing  ";

pub fn require_e2e() -> bool {
    std::env::var("ALEMBIC_REQUIRE_E2E").is_ok_and(|v| v == "1")
}

pub fn skip(test: &str, why: &str) {
    assert!(
        !require_e2e(),
        "{test} cannot run (ALEMBIC_REQUIRE_E2E=1): {why}"
    );
    alembic_testkit::report_skip(&format!("SKIPPED {test}: {why}"));
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

/// A loopback port free right now, drawn from below the kernel's ephemeral range: a port the
/// kernel hands out (`bind :0`, every outgoing connection's local port) could be taken again
/// by another process before docker binds it, which failed an edge's `up` with "address already
/// in use" while several worlds ran at once. Bounded: 200 draws, then the kernel's choice.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(11000, 65535);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16)
        | 1;
    for _ in 0..200 {
        // xorshift: spread draws over [10000, low).
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let port = 10000 + seed % (low - 10000);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return l.local_addr().unwrap().port();
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run `cmd` to completion within `limit`: a process still running then is killed and the
/// test fails saying so (a hang fails the test instead of stalling the suite; how long a run
/// took is never asserted).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain both pipes while waiting, so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} was still running after {limit:?} and was killed:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

pub fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Everything a test started; torn down on drop, even when an assertion fails.
pub struct World {
    pub dir: tempfile::TempDir,
    pub project: String,
    pub image: String,
    pub sshd: Option<Child>,
    pub sshd_port: u16,
    pub https_port: u16,
    pub http_port: u16,
    /// Every byte alembic printed, for the leak check.
    pub transcript: Vec<u8>,
    /// tmpfs mounted by the test, unmounted on drop (after the containers using them are gone).
    pub mounts: Vec<PathBuf>,
    /// What this world created, for the next run's sweep should this one be killed.
    pub record: alembic_testkit::sweep::Record,
}

impl World {
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `droplet.root`.
    pub fn root(&self) -> PathBuf {
        self.path("droplet")
    }

    /// A Docker volume the test creates by name beyond the compose project's: swept with the
    /// run should it be killed (the test's own guard removes it otherwise).
    pub fn own_volume(&mut self, name: &str) {
        self.record.add("volume", name);
    }

    /// An image the test creates beyond the world's: swept with the run should it be killed.
    pub fn own_image(&mut self, name: &str) {
        self.record.add("image", name);
    }

    /// An image repository whose every tag the test's applies create (`alembic` builds them):
    /// swept with the run should it be killed.
    pub fn own_image_repo(&mut self, repo: &str) {
        self.record.add("repo", repo);
    }

    pub fn start_sshd(&mut self) {
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.path("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let pid = child.id();
        if let Some(start) = alembic_testkit::sweep::process_start(pid) {
            self.record.add("process", &format!("{pid}:{start}"));
        }
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
    pub fn kill_sshd(&mut self) {
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

    /// Mount a tmpfs of `size` (mount(8) syntax: `128k`) at `dir`, created if needed; the
    /// guard unmounts it. Needs root; returns why not when the mount fails.
    pub fn mount_tmpfs(&mut self, dir: &Path, size: &str) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        self.record.add("mount", &dir.display().to_string());
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_owned());
        }
        self.mounts.push(dir.to_owned());
        Ok(())
    }

    /// The config with the `api` workload answering `api_cmd` from `api_image`; `tail` is TOML
    /// appended at the end (it extends the last workload, `web`, e.g. with `[workload.env]`).
    pub fn config_with(&self, api_image: &str, api_cmd: &[&str], tail: &str) -> String {
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
secrets      = ["E2E_CANARY_TOKEN", "E2E_SECOND_SECRET"]

[[workload]]
name     = "api"
plane    = "droplet"
exposure = "public"
image    = "{api_image}"
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
{tail}"#,
            project = self.project,
            ssh = self.sshd_port,
            root = self.root().display(),
            image = self.image,
            http = self.http_port,
            https = self.https_port,
            cmd = cmd.join(", "),
        )
    }

    pub fn config(&self, api_cmd: &[&str]) -> String {
        self.config_with(&self.image, api_cmd, "")
    }

    /// The api stub's command: answer `status` with `body`.
    pub fn api_cmd(body: &str, status: u16) -> Vec<String> {
        [
            "caddy",
            "respond",
            "--listen",
            ":8080",
            "--status",
            &status.to_string(),
            "--body",
            body,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub fn write_config(&self, body: &str, status: u16) {
        self.write_config_with(&self.image, body, status, "");
    }

    pub fn write_config_with(&self, api_image: &str, body: &str, status: u16, tail: &str) {
        let cmd = Self::api_cmd(body, status);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let text = self.config_with(api_image, &cmd, tail);
        std::fs::write(self.path("alembic.toml"), text).unwrap();
    }

    pub fn alembic(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_alembic"));
        c.current_dir(self.dir.path())
            .arg("-c")
            .arg(self.path("alembic.toml"))
            .env("ALEMBIC_SSH_CONFIG", self.path("ssh_config"))
            .env("ALEMBIC_PROBE_TIMEOUT", "15")
            .env("E2E_CANARY_TOKEN", CANARY)
            .env("E2E_SECOND_SECRET", HOSTILE)
            .env_remove("ALEMBIC_LEASE_TTL")
            // The same answers on a laptop and in CI: no CI markers (they change doctor's and
            // apply's context).
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("ALEMBIC_CONTEXT")
            // DNS answers (doctor's record checks) come from a loopback port where nothing
            // listens, never the machine's resolver: no lookup leaves loopback.
            .env(
                "ALEMBIC_DNS_SERVER",
                format!("127.0.0.1:{}", unused_udp_port()),
            )
            .stdin(Stdio::null());
        c
    }

    pub fn alembic_run(&mut self, args: &[&str]) -> Output {
        let o = run(self.alembic().args(args));
        self.record(&o);
        o
    }

    pub fn record(&mut self, o: &Output) {
        self.transcript.extend_from_slice(&o.stdout);
        self.transcript.extend_from_slice(&o.stderr);
    }

    /// The environment of the running container of `service`, as docker stores it (what a
    /// `docker restart` or a reboot starts it with again): `docker inspect` works for any
    /// image, FROM scratch included.
    pub fn container_env(&self, service: &str) -> Vec<String> {
        let id = self.container(service);
        assert!(!id.is_empty(), "no running {service} container");
        let out =
            ok(Command::new("docker").args(["inspect", "--format", "{{json .Config.Env}}", &id]));
        serde_json::from_str(out.trim()).unwrap()
    }

    /// `E2E_SECOND_SECRET` reached `web` as [`HOSTILE`], byte for byte (`when` names the moment).
    pub fn assert_hostile_secret_intact(&self, when: &str) {
        let env = self.container_env("web");
        let got: Vec<&String> = env
            .iter()
            .filter(|e| e.starts_with("E2E_SECOND_SECRET="))
            .collect();
        // Compared without printing the value on failure: only whether and how it differs.
        let want = format!("E2E_SECOND_SECRET={HOSTILE}");
        assert_eq!(
            got.len(),
            1,
            "{when}: E2E_SECOND_SECRET set {} times",
            got.len()
        );
        assert!(
            *got[0] == want,
            "{when}: E2E_SECOND_SECRET changed in transit ({} bytes, expected {})",
            got[0].len(),
            want.len()
        );
    }

    pub fn ca(&self) -> PathBuf {
        self.path("edge-root.crt")
    }

    /// Copy the edge's local CA root out of the running edge container (for [`World::get`]).
    pub fn fetch_ca(&self) {
        let edge = self.container("edge");
        ok(Command::new("docker")
            .args([
                "cp",
                &format!("{edge}:/data/caddy/pki/authorities/local/root.crt"),
            ])
            .arg(self.ca()));
    }

    /// GET a route through the edge over HTTPS, trusting only the edge's local CA.
    pub fn get(&self, host: &str) -> Result<String, String> {
        curl(host, self.https_port, &self.ca())
    }

    pub fn container(&self, service: &str) -> String {
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

    /// The release `<root>/<name>` (`current` or `active`) points at.
    pub fn link(&self, name: &str) -> u64 {
        let link = std::fs::read_link(self.root().join(name))
            .unwrap_or_else(|e| panic!("{name} link: {e}"));
        link.file_name().unwrap().to_str().unwrap().parse().unwrap()
    }

    pub fn current(&self) -> u64 {
        self.link("current")
    }

    pub fn ledger(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.root().join("ledger.json")).unwrap())
            .unwrap()
    }

    /// The release dirs present under `<root>/releases`, sorted.
    pub fn release_dirs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = std::fs::read_dir(self.root().join("releases"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect();
        v.sort_unstable();
        v
    }

    /// The canaries appear nowhere but where they must: not in anything alembic printed, not
    /// in any file under the test's dir except the releases' `.env` files.
    pub fn assert_no_leaks(&self) {
        let all = String::from_utf8_lossy(&self.transcript).into_owned();
        for c in [CANARY, CANARY2] {
            assert!(
                !all.contains(c),
                "a secret value leaked into alembic's output"
            );
        }
        let mut files = Vec::new();
        files_under(self.dir.path(), &mut files);
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
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_sshd();
        alembic_testkit::sweep::remove_compose_project(&self.project);
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
        // After the containers (their bind mounts came from here); lazily if still busy, so
        // the temp dir's own cleanup never deletes through a live mount.
        for m in self.mounts.drain(..).rev() {
            alembic_testkit::sweep::unmount(&m);
        }
        // The temp dir goes with the TempDir field after this; the record is done.
        self.record.remove();
    }
}

pub fn curl(host: &str, port: u16, ca: &Path) -> Result<String, String> {
    curl_within(host, port, ca, 5)
}

/// [`curl`] with the request bounded by `max_secs` instead of 5 s: a request the edge holds
/// while an upstream restarts (up to caddy's `lb_try_duration`, 30 s) is slow, not failed.
pub fn curl_within(host: &str, port: u16, ca: &Path, max_secs: u32) -> Result<String, String> {
    let o = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time"])
        .arg(max_secs.to_string())
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

/// Build everything: keys, sshd, the image. `test` names the test in SKIPPED lines; `tag`
/// prefixes the compose project and image tag, so several worlds (parallel tests, or two test
/// binaries at once) never share one. None (after printing why) when a part is missing.
pub fn world(test: &str, tag: &str) -> Option<World> {
    for tool in ["ssh", "ssh-keygen", "curl", "docker", "tar"] {
        if alembic_testkit::which(tool).is_none() {
            skip(test, &format!("`{tool}` is not on PATH"));
            return None;
        }
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        skip(test, "/usr/sbin/sshd is missing (Debian openssh-server)");
        return None;
    }
    let Some(caddy) = caddy_binary() else {
        skip(
            test,
            "no caddy binary (.tools/bin/caddy; run scripts/install-tools.sh)",
        );
        return None;
    };
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        _ => {
            skip(test, "no Docker engine answers `docker info`");
            return None;
        }
    }
    if run(Command::new("docker").args(["compose", "version"]))
        .status
        .code()
        != Some(0)
    {
        skip(test, "`docker compose` (the v2 plugin) is missing");
        return None;
    }
    // What killed runs left behind (their owner process is gone), once per test process.
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        for gone in alembic_testkit::sweep::sweep_stale() {
            eprintln!("e2e: removed what a killed run left: {gone}");
        }
    });
    let pid = std::process::id();
    let mut record = alembic_testkit::sweep::Record::new(tag);
    let dir = tempfile::Builder::new()
        .prefix("alembic-e2e-")
        .tempdir()
        .unwrap();
    record.add("dir", &dir.path().display().to_string());
    record.add("project", &format!("{tag}{pid}"));
    record.add("image", &format!("alembic-e2e/caddy:{tag}{pid}"));
    let mut w = World {
        dir,
        project: format!("{tag}{pid}"),
        image: format!("alembic-e2e/caddy:{tag}{pid}"),
        sshd: None,
        sshd_port: free_port(),
        https_port: free_port(),
        http_port: free_port(),
        transcript: Vec::new(),
        mounts: Vec::new(),
        record,
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
        ])
        .args(w.record.image_labels())
        .args(["-", &w.image])
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
    // The droplet's sessions get a home of their own (empty), like a fresh server's user, not
    // the invoking user's: sshd runs every command through the login shell, and bash started
    // by sshd reads `~/.bashrc` even when not interactive, so whatever the developer's rc does
    // (here root's runs `pyenv init`, whose rehash can wait 60 s on a stale shim lock) would
    // run in every session. `HOME` set by `SetEnv` is the one bash expands `~` with; the
    // Docker CLI keeps finding its compose plugin through `DOCKER_CONFIG` (where
    // scripts/install-tools.sh put it).
    std::fs::create_dir_all(w.path("home")).unwrap();
    let docker_config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"));
    let sshd_config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nStrictModes no\n\
         PidFile {pidf}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         PermitRootLogin prohibit-password\nMaxSessions 64\nMaxStartups 64\n\
         SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME={home} \
         DOCKER_CONFIG={dc}\n",
        port = w.sshd_port,
        hk = w.path("host_key").display(),
        ak = w.path("authorized_keys").display(),
        pidf = w.path("sshd.pid").display(),
        home = w.path("home").display(),
        dc = docker_config.display(),
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

/// Every process descended from `root`, by parent pid.
pub fn descendants(root: u32) -> Vec<u32> {
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

pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
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

/// A loopback UDP port nothing listens on (bound, read, released).
pub fn unused_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}
