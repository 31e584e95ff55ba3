//! End-to-end: the droplet plane deployed for real. A real `sshd` on 127.0.0.1 (temp host key,
//! key auth) and this machine's Docker engine play the droplet; the static caddy binary,
//! `docker import`ed, is both the edge and the stub upstreams (`caddy respond`). It starts
//! with a first release that fails its probe (brought down, nothing to roll back to), then
//! deploys, redeploys under load, rolls back a failing release, races two applies, cuts ssh
//! mid-apply and rolls back by hand. A hostile secret value is read back from the running
//! container after `up`, after a `docker restart` and after the rollback.
//!
//! Skipped (printing why) without docker, sshd, ssh, curl or caddy, unless
//! `ALEMBIC_REQUIRE_E2E=1` (set by scripts/test.sh), which turns the skip into a failure.
//!
//! The droplet itself (sshd, image, config, cleanup guard) is `support/droplet.rs`.
//!
//! Knobs the test sets: `ALEMBIC_SSH_CONFIG` (its own ssh_config + known_hosts; host keys are
//! still checked), `ALEMBIC_PROBE_TIMEOUT` (short, so a release that never comes up is given up
//! on quickly; the release answering 500 is rolled back after the settle window instead) and, for the apply killed mid-way, `ALEMBIC_LEASE_TTL=3` so its leftover lease expires.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::droplet::{code, curl_within, ok, run, text, world, CANARY};

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
        // Bounded beyond the edge's 30 s lb_try_duration: a request held across the upstream's
        // restart is slow on a busy machine, not a failed one; an error answer still counts.
        if let Err(e) = curl_within(&host, port, &ca, 45) {
            failed += 1;
            if errors.len() < 5 {
                errors.push(e);
            }
        }
    }
    (total, failed, errors)
}

/// Seconds from the start of the `docker compose up` step to the end of the apply, summed
/// from the step lines (`✓ step (1.2s)`) apply prints: for the figure printed, never asserted.
fn since_up(stderr: &str) -> f64 {
    let mut started = false;
    let mut total = 0.0;
    for line in stderr.lines() {
        if line.contains("docker compose up") {
            started = true;
        }
        if !started {
            continue;
        }
        if let Some(secs) = line
            .split_once(" (")
            .and_then(|(_, r)| r.split_once("s)"))
            .and_then(|(n, _)| n.parse::<f64>().ok())
        {
            total += secs;
        }
    }
    total
}

#[test]
fn droplet_apply_end_to_end() {
    let Some(mut w) = world("e2e_droplet", "e2e") else {
        return;
    };
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
    let t0 = Instant::now();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 0, "first apply\n{}", text(&o));
    eprintln!("e2e: first deploy {:.1}s", t0.elapsed().as_secs_f64());
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

    // (h) A hostile secret value (`$`, `#`, quotes, backslashes, `${OTHER}`, spaces, a
    // newline) reaches the container unchanged: the droplet's `.env` once went through
    // compose's dotenv reader, which turned `Pa$$w0rd$HOME #x` into `Pa$w0rd/root`. Docker
    // keeps the container's env: a `docker restart` (as a droplet reboot does) starts it with
    // the same bytes.
    w.assert_hostile_secret_intact("after up");
    let web = w.container("web");
    ok(Command::new("docker").args(["restart", "--time", "1", &web]));
    assert_eq!(w.container("web"), web, "restart keeps the container");
    w.assert_hostile_secret_intact("after docker restart");

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
    let t0 = Instant::now();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    let redeploy = t0.elapsed();
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
    eprintln!(
        "e2e: redeploy under load in {:.1}s: {total} requests, 0 failed",
        redeploy.as_secs_f64()
    );

    // (c) A release whose health check fails is rolled back. It answers 500 itself (up and
    // failing, not "not up yet"), so it is rolled back after the settle window rather than the
    // whole probe timeout (60 s here, the default): once it took 67 s to roll back.
    w.write_config("body v3 broken", 500);
    let t0 = Instant::now();
    let o = run(w
        .alembic()
        .env("ALEMBIC_PROBE_TIMEOUT", "60")
        .args(["apply", "--plane", "droplet", "--yes"]));
    let wall = t0.elapsed();
    w.record(&o);
    assert_eq!(code(&o), 3, "failing release\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rolled back to release 3"), "{err}");
    assert!(
        err.contains("answered 500 for 10 s") && err.contains("settle window"),
        "the fast path names its reason: {err}"
    );
    assert!(
        !err.contains("got HTTP 500"),
        "not the probe-timeout path: {err}"
    );
    eprintln!(
        "e2e: failing release rolled back: apply {:.1}s; from `up` to traffic back on the \
         previous release {:.1}s\n{}",
        wall.as_secs_f64(),
        since_up(&err),
        err.lines()
            .take_while(|l| !l.starts_with("---"))
            .collect::<Vec<_>>()
            .join("\n")
    );
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

    // alembic rollback restores the previous release whole. `web` is removed first, so the
    // rollback's `up` creates it again from the restored release's own `.env`.
    let web = w.container("web");
    ok(Command::new("docker").args(["rm", "-f", &web]));
    let o = w.alembic_run(&["rollback", "--yes"]);
    assert_eq!(code(&o), 0, "rollback\n{}", text(&o));
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v4");
    assert_eq!(
        w.ledger()["releases"].as_array().unwrap().last().unwrap()["outcome"],
        "rolled_back"
    );
    // The restored release's own `.env` gives the new `web` the same bytes again.
    assert_ne!(w.container("web"), web, "the rollback created web again");
    w.assert_hostile_secret_intact("after rollback");

    // keep_releases = 3: what is left on the droplet and in the ledger. The first release and
    // 4 failed; the interrupted apply's 6 never reached the ledger (its dir made 7 the next
    // number); the last apply (7) pruned all but itself and the two newest healthy releases
    // before it (5, 3); the rollback pruned nothing. The ledger keeps every entry.
    assert_eq!(w.release_dirs(), [3, 5, 7], "what pruning left");
    let ledger = w.ledger();
    let got: Vec<(u64, &str)> = ledger["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["number"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "failed"),
            (2, "deployed"),
            (3, "deployed"),
            (4, "failed"),
            (5, "deployed"),
            (7, "deployed"),
            (5, "rolled_back"),
        ],
        "{ledger}"
    );
    assert_eq!(ledger["current"], 5);

    // (f) The canaries appear nowhere else: not in anything alembic printed, not in any file
    // under the test's dir but the releases' .env files.
    w.assert_no_leaks();
    eprintln!("e2e: done in {:.1}s", started.elapsed().as_secs_f64());
}

/// `alembic logs api --follow` streams lines the container writes after it started, with the
/// droplet's secret values redacted, until it is killed. The api stub logs every request
/// (`--access-log`, the request's URI included): a request whose path holds the api's secret
/// value puts that value in the container's log. Bounded: requests are sent once a second,
/// at most 60 times, until a line they caused is printed; then the follower is killed.
#[test]
fn logs_follow_streams_new_lines_redacted() {
    use std::io::BufRead;
    let Some(mut w) = world("e2e_droplet::logs_follow", "flw") else {
        return;
    };
    let cmd = [
        "caddy",
        "respond",
        "--listen",
        ":8080",
        "--access-log",
        "--body",
        "follow me",
    ];
    std::fs::write(w.path("alembic.toml"), w.config(&cmd)).unwrap();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 0, "apply\n{}", text(&o));
    w.fetch_ca();
    // One request through the edge to `path` (its answer does not matter: the api logs it).
    let request = |path: &str| {
        let _ = Command::new("curl")
            .args(["--silent", "--max-time", "5", "--output", "/dev/null"])
            .arg("--resolve")
            .arg(format!("api.e2e.test:{}:127.0.0.1", w.https_port))
            .arg("--cacert")
            .arg(w.ca())
            .arg(format!("https://api.e2e.test:{}{path}", w.https_port))
            .status();
    };
    // A line written before the follower starts: `--tail 0` must not print it.
    request("/before-start");

    let mut follower = w
        .alembic()
        .args(["logs", "api", "--follow", "--tail", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both streams, line by line, into one channel: the container's stderr (where caddy
    // logs) arrives on alembic's stderr, its stdout on stdout.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let pipe = |r: Box<dyn std::io::Read + Send>, tx: std::sync::mpsc::Sender<String>| {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    };
    let readers = [
        pipe(Box::new(follower.stdout.take().unwrap()), tx.clone()),
        pipe(Box::new(follower.stderr.take().unwrap()), tx),
    ];

    let mut seen: Vec<String> = Vec::new();
    let mut hit = None;
    'outer: for i in 0..60 {
        request(&format!("/after-start-{i}-{CANARY}"));
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains("after-start-");
                    seen.push(line);
                    if done {
                        hit = Some(i);
                        break 'outer;
                    }
                }
                Err(_) => break,
            }
        }
    }
    // Still following (it never ends by itself), then killed.
    let running = follower.try_wait().unwrap().is_none();
    let _ = follower.kill();
    let _ = follower.wait();
    for r in readers {
        let _ = r.join();
    }
    seen.extend(rx.try_iter());
    let printed = seen.join("\n");
    w.transcript.extend_from_slice(printed.as_bytes());
    assert!(
        hit.is_some(),
        "no line written after the follower started was printed within 60 requests\n\
         --- printed\n{printed}"
    );
    assert!(running, "`logs --follow` ended by itself\n{printed}");
    assert!(
        !printed.contains("before-start"),
        "--tail 0 printed an older line: {printed}"
    );
    assert!(
        printed.contains("after-start-") && printed.contains("[E2E_CANARY_TOKEN: redacted]"),
        "the secret in the logged path is shown redacted: {printed}"
    );
    w.assert_no_leaks();
}
