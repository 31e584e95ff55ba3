//! End to end on a live single-node Docker Swarm (`droplet.engine = "swarm"`): the loopback
//! sshd "droplet" of `support/droplet.rs` in front of this machine's engine, put in swarm mode
//! by the test (`docker swarm init --advertise-addr 127.0.0.1`). This kernel has no IPVS, so
//! the stack uses host-mode ports and `endpoint_mode: dnsrr` (as rendered); swarm cannot bind
//! a host-mode port to one address, so the edge's high test ports listen on every interface
//! of this machine for the test's duration. The requests themselves stay on loopback.
//!
//! Proven, by what is served, exit codes and the droplet's ledger:
//! - refused with exit 1 before anything is touched: a droplet whose Docker is not in swarm
//!   mode, and one without docker;
//! - a first `apply --yes` deploys the stack and the edge serves it over HTTPS (its local CA);
//!   the secret reaches the task as a `docker secret` file byte for byte;
//! - a health-gated update (`start-first`, the workload's `healthcheck`) while a bounded
//!   request loop runs through the edge: 0 failed requests; planned once through the façade,
//!   its dry run recorded exactly the ops the real update then ran;
//! - an update whose new version fails its health check: swarm rolls it back by itself,
//!   alembic reads `UpdateStatus`, restores the previous release and exits 3 saying so; the
//!   previous version keeps serving and the ledger records the failure;
//! - `alembic rollback --yes` deploys an older release's stack file again.
//!
//! Swarm state is engine-wide: an engine already in swarm mode that this test did not make
//! fails the test without being touched. The guard always removes the stack, its secrets,
//! configs and volumes, leaves the swarm and removes the networks swarm mode created, even when
//! an assertion fails; a swarm left by a killed run of this test (its node label names a pid
//! that is gone) is swept at the start.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use alembic_deploy::facade::{self, Env, Goal, Op, Record, Selection, Stage};
use support::droplet::{code, curl_within, ok, run, text, world, World, CANARY, HOSTILE};

/// The node label naming the process whose test put the engine in swarm mode.
const OWNER_LABEL: &str = "alembic-e2e-swarm-owner";

fn docker(args: &[&str]) -> std::process::Output {
    run(Command::new("docker").args(args))
}

fn swarm_state() -> String {
    String::from_utf8_lossy(&docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout)
        .trim()
        .to_owned()
}

/// This engine's swarm node (`self` is not accepted by every daemon's `node update`).
fn node_id() -> String {
    String::from_utf8_lossy(&docker(&["info", "--format", "{{.Swarm.NodeID}}"]).stdout)
        .trim()
        .to_owned()
}

/// Everything this test makes engine-wide; removed on drop, panics included.
struct SwarmGuard {
    stack: String,
    /// `docker_gwbridge` did not exist before `swarm init`: it goes after `swarm leave`.
    gwbridge_ours: bool,
    images: Vec<String>,
}

impl SwarmGuard {
    fn teardown(stack: &str, gwbridge_ours: bool) {
        let _ = docker(&["stack", "rm", stack]);
        // The stack's containers go asynchronously; volumes and configs are busy until then.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let left = docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.docker.stack.namespace={stack}"),
            ]);
            if left.stdout.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let ids = |args: &[&str]| -> Vec<String> {
            String::from_utf8_lossy(&docker(args).stdout)
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        };
        for s in ids(&[
            "secret",
            "ls",
            "-q",
            "--filter",
            &format!("label=alembic.project={stack}"),
        ]) {
            let _ = docker(&["secret", "rm", &s]);
        }
        for c in ids(&[
            "config",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("name={stack}_"),
        ]) {
            let _ = docker(&["config", "rm", &c]);
        }
        let _ = docker(&["swarm", "leave", "--force"]);
        for v in ids(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
        ]) {
            let _ = docker(&["volume", "rm", "-f", &v]);
        }
        for n in [format!("{stack}_internal"), format!("{stack}_public")] {
            let _ = docker(&["network", "rm", &n]);
        }
        if gwbridge_ours {
            let _ = docker(&["network", "rm", "docker_gwbridge"]);
        }
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        SwarmGuard::teardown(&self.stack, self.gwbridge_ours);
        for i in &self.images {
            let _ = docker(&["rmi", "-f", i]);
        }
    }
}

/// A swarm a killed run of this test left (its owner pid is gone) is removed; any other swarm
/// is someone else's: the test fails rather than touch it.
fn claim_engine() -> Result<(), String> {
    if swarm_state() == "inactive" {
        return Ok(());
    }
    let label = String::from_utf8_lossy(
        &docker(&[
            "node",
            "inspect",
            &node_id(),
            "--format",
            &format!("{{{{index .Spec.Labels \"{OWNER_LABEL}\"}}}}"),
        ])
        .stdout,
    )
    .trim()
    .to_owned();
    let dead = label
        .split_once(':')
        .and_then(|(pid, stack)| Some((pid.parse::<u32>().ok()?, stack.to_owned())))
        .filter(|(pid, _)| !std::path::Path::new(&format!("/proc/{pid}")).exists());
    match dead {
        Some((pid, stack)) => {
            eprintln!("e2e_swarm: removing the swarm a killed run (pid {pid}) left");
            SwarmGuard::teardown(&stack, true);
            Ok(())
        }
        None => Err(format!(
            "this Docker engine is already in swarm mode ({}) and this test did not make it: \
             swarm state is engine-wide, so the test leaves it alone; run it on an engine not \
             in swarm mode",
            swarm_state()
        )),
    }
}

/// The world's caddy image with a static busybox at /bin/busybox: the workloads' health check
/// (`busybox wget`) needs a client inside the image.
fn image_with_busybox(w: &mut World) -> String {
    let name = format!("{}-bb", w.image);
    let dir = w.path("image-bb");
    std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(w.path("image/usr/bin/caddy"), dir.join("usr/bin/caddy")).unwrap();
    let busybox = alembic_testkit::which("busybox").expect("busybox (static) on PATH");
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let tar = run(Command::new("tar").arg("-C").arg(&dir).args(["-c", "."]));
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
        .args(["-", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success(), "docker import failed");
    w.own_image(&name);
    name
}

/// The config: `api` answers `body` with `status` on every path, health-checked from inside its
/// task by busybox wget (a 500 fails it).
fn config(w: &World, image: &str, body: &str, status: u16) -> String {
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
edge_image  = "{edge}"
edge_bind   = "127.0.0.1"
http_port   = {http}
https_port  = {https}
address     = "127.0.0.1"
keep_releases = 3
engine      = "swarm"

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
image    = "{image}"
command  = ["caddy", "respond", "--listen", ":8080", "--status", "{status}", "--body", "{body}"]
port     = 8080
route    = "api.e2e.test"
health   = "/healthz"
secrets  = ["E2E_CANARY_TOKEN", "E2E_SECOND_SECRET"]
healthcheck = ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
"#,
        project = w.project,
        ssh = w.sshd_port,
        root = w.root().display(),
        edge = w.image,
        http = w.http_port,
        https = w.https_port,
    )
}

fn write(w: &World, image: &str, body: &str, status: u16) {
    std::fs::write(w.path("alembic.toml"), config(w, image, body, status)).unwrap();
}

/// The running task container of `service` in the stack.
fn task(stack: &str, service: &str) -> String {
    let out = ok(Command::new("docker").args([
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={stack}_{service}"),
    ]));
    out.lines().next().unwrap_or_default().trim().to_owned()
}

fn fetch_ca(w: &World) -> PathBuf {
    let edge = task(&w.project, "edge");
    assert!(!edge.is_empty(), "no running edge task");
    ok(Command::new("docker")
        .args([
            "cp",
            &format!("{edge}:/data/caddy/pki/authorities/local/root.crt"),
        ])
        .arg(w.ca()));
    w.ca()
}

/// Requests through the edge in a loop until told to stop (bounded: at most 2000 requests, each
/// within 30 s): (served, failed, the first failures).
fn request_loop(
    w: &World,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u32, u32, Vec<String>)> {
    let (port, ca) = (w.https_port, w.ca());
    std::thread::spawn(move || {
        let (mut served, mut failed, mut errors) = (0, 0, Vec::new());
        for _ in 0..2000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match curl_within("api.e2e.test", port, &ca, 30) {
                Ok(_) => served += 1,
                Err(e) => {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(e);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (served, failed, errors)
    })
}

fn secret_in_task(stack: &str, name: &str) -> Vec<u8> {
    let c = task(stack, "api");
    let out = run(Command::new("docker").args([
        "exec",
        &c,
        "/bin/busybox",
        "cat",
        &format!("/run/secrets/{name}"),
    ]));
    assert!(out.status.success(), "cannot read /run/secrets/{name}");
    out.stdout
}

/// The applying environment for in-process applies: the world's ssh config and secrets.
fn env(w: &World) -> Env {
    let vars: BTreeMap<String, String> = [
        (
            "ALEMBIC_SSH_CONFIG",
            w.path("ssh_config").display().to_string(),
        ),
        ("ALEMBIC_PROBE_TIMEOUT", "15".to_owned()),
        ("E2E_CANARY_TOKEN", CANARY.to_owned()),
        ("E2E_SECOND_SECRET", HOSTILE.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Env::with_vars(w.dir.path(), vars)
}

/// The droplet stage's ops as the report lists them (each once, in the order first run).
fn droplet_ops(r: &facade::Report) -> Vec<Op> {
    r.stages
        .iter()
        .find(|(s, _)| *s == Stage::Droplet)
        .map(|(_, ops)| ops.clone())
        .unwrap_or_default()
}

/// Nothing on the droplet: no lease, no release, no ledger.
fn assert_untouched(w: &World) {
    for f in ["lease.json", "releases", "ledger.json"] {
        assert!(
            !w.root().join(f).exists(),
            "{f} exists after a refused apply"
        );
    }
}

/// Run `f` while the droplet's sessions find no `docker` (their PATH holds only the few tools
/// a plan's read-only scripts use); sshd is restarted with its own config after.
fn without_docker(w: &mut World, f: impl FnOnce(&mut World)) {
    let bin = w.path("nodocker-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["sh", "cat", "ls"] {
        let path = alembic_testkit::which(tool).unwrap_or_else(|| panic!("{tool} on PATH"));
        std::os::unix::fs::symlink(path, bin.join(tool)).unwrap();
    }
    let config = std::fs::read_to_string(w.path("sshd_config")).unwrap();
    let original = config
        .lines()
        .find_map(|l| l.split_whitespace().find(|x| x.starts_with("PATH=")))
        .expect("the world's sshd sets PATH")
        .to_owned();
    let changed = config.replace(&original, &format!("PATH={}", bin.display()));
    std::fs::write(w.path("sshd_config"), changed).unwrap();
    w.kill_sshd();
    w.start_sshd();
    f(w);
    std::fs::write(w.path("sshd_config"), config).unwrap();
    w.kill_sshd();
    w.start_sshd();
}

#[test]
fn swarm_deploy_update_and_automatic_rollback() {
    let Some(mut w) = world("swarm_deploy_update_and_automatic_rollback", "e2eswarm") else {
        return;
    };
    if let Err(why) = claim_engine() {
        panic!("{why}");
    }
    let gwbridge_ours = !docker(&["network", "inspect", "docker_gwbridge"])
        .status
        .success();
    let image = image_with_busybox(&mut w);
    let _guard = SwarmGuard {
        stack: w.project.clone(),
        gwbridge_ours,
        images: vec![image.clone()],
    };
    // 0. Refused before anything is touched (exit 1, naming the config key): a droplet whose
    // Docker is not in swarm mode, and one without docker at all.
    write(&w, &image, "api v1", 200);
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 1, "not in swarm mode:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("droplet.engine = \"swarm\": the droplet's Docker is not in swarm mode"),
        "{err}"
    );
    assert_untouched(&w);
    without_docker(&mut w, |w| {
        let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
        assert_eq!(code(&o), 1, "no docker:\n{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            err.contains("droplet.engine = \"swarm\": docker is not installed on the droplet"),
            "{err}"
        );
    });
    assert_untouched(&w);

    let init = docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    assert!(init.status.success(), "swarm init: {}", text(&init));
    let owner = format!("{OWNER_LABEL}={}:{}", std::process::id(), w.project);
    ok(Command::new("docker").args(["node", "update", "--label-add", &owner, &node_id()]));

    // 1. First deploy.
    write(&w, &image, "api v1", 200);
    let t0 = Instant::now();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    let first = t0.elapsed();
    assert_eq!(code(&o), 0, "first deploy:\n{}", text(&o));
    fetch_ca(&w);
    assert_eq!(
        curl_within("api.e2e.test", w.https_port, &w.ca(), 10).unwrap(),
        "api v1"
    );
    assert_eq!(w.current(), 1);
    // The secrets arrive as docker secret files, byte for byte.
    assert!(secret_in_task(&w.project, "E2E_CANARY_TOKEN") == CANARY.as_bytes());
    assert!(
        secret_in_task(&w.project, "E2E_SECOND_SECRET") == HOSTILE.as_bytes(),
        "E2E_SECOND_SECRET changed in transit"
    );

    // 2. A health-gated update under a bounded request loop: no request fails. Planned once
    // through the façade and walked twice by the same driver: the ops the real update runs
    // are exactly the ops its dry run recorded, and those are the plan's after its read-only
    // look at the manager.
    write(&w, &image, "api v2", 200);
    let text_now = std::fs::read_to_string(w.path("alembic.toml")).unwrap();
    let t = alembic_config::load_str("alembic.toml", &text_now)
        .topology
        .expect("the config validates");
    let set = alembic_render::render(&t);
    let plan = facade::plan(&t, &set, Selection::Only(Stage::Droplet), env(&w)).expect("plan");
    plan.close();
    let opts = facade::Options {
        allow_replace: false,
        interrupt: None,
    };
    let dry = facade::apply(&plan, Goal::DryRun, &mut Record::default(), &opts);
    assert!(dry.error.is_none(), "dry run: {:?}", dry.error);
    let stop = Arc::new(AtomicBool::new(false));
    let looping = request_loop(&w, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    let real = facade::apply(&plan, Goal::Apply, &mut Record::default(), &opts);
    let update = t0.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (served, failed, errors) = looping.join().unwrap();
    assert!(real.error.is_none(), "update: {:?}", real.error);
    let (dry_ops, real_ops) = (droplet_ops(&dry), droplet_ops(&real));
    assert!(
        dry_ops
            .iter()
            .any(|o| o.step == "docker stack deploy release 2"),
        "{dry_ops:?}"
    );
    assert_eq!(
        real_ops, dry_ops,
        "the update ran other ops than its dry run"
    );
    let planned = &plan.document().planes[0].ops;
    assert_eq!(planned[0].step, "check docker swarm on the manager");
    assert_eq!(
        planned[1..],
        dry_ops[..],
        "the dry run walked other steps than planned"
    );
    assert!(!format!("{:?}", real.ran).contains(CANARY));
    assert_eq!(
        curl_within("api.e2e.test", w.https_port, &w.ca(), 10).unwrap(),
        "api v2"
    );
    assert_eq!(w.current(), 2);
    assert!(served > 0, "the request loop was served nothing");
    assert_eq!(failed, 0, "requests failed during the update: {errors:?}");

    // 3. The new version fails its health check: swarm rolls it back, alembic says so (exit 3).
    write(&w, &image, "api v3 broken", 500);
    let t0 = Instant::now();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    let rollback = t0.elapsed();
    assert_eq!(code(&o), 3, "failing update:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let reported = err.lines().find(|l| l.contains("release 3 failed"));
    println!("swarm: the failed update as alembic reports it: {reported:?}");
    assert!(
        err.contains("release 3 failed") && err.contains("rollback_completed"),
        "{err}"
    );
    assert_eq!(
        curl_within("api.e2e.test", w.https_port, &w.ca(), 10).unwrap(),
        "api v2"
    );
    assert_eq!(w.current(), 2);
    let ledger = w.ledger();
    let last = ledger["releases"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["number"], 3);
    assert_eq!(last["outcome"], "failed");

    // 4. `alembic rollback` deploys release 1's stack file again.
    write(&w, &image, "api v2", 200);
    let t0 = Instant::now();
    let o = w.alembic_run(&["rollback", "--to", "1", "--yes"]);
    let back = t0.elapsed();
    assert_eq!(code(&o), 0, "rollback:\n{}", text(&o));
    assert_eq!(
        curl_within("api.e2e.test", w.https_port, &w.ca(), 10).unwrap(),
        "api v1"
    );
    assert_eq!(w.current(), 1);
    w.assert_no_leaks();
    println!(
        "swarm: first deploy {:.1} s; health-gated update {:.1} s ({served} requests served, \
         {failed} failed); update rolled back by swarm and reported in {:.1} s; \
         `alembic rollback` {:.1} s",
        first.as_secs_f64(),
        update.as_secs_f64(),
        rollback.as_secs_f64(),
        back.as_secs_f64()
    );
}
