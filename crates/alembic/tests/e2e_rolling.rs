//! End to end: a rolling deploy over three "droplets" behind a load balancer, on the real sshd
//! and the real Docker engine (`support/droplet.rs`).
//!
//! The three droplets are ONE sshd listening on 127.0.0.2, 127.0.0.3 and 127.0.0.4
//! (`ListenAddress` three times), named in `droplet.addresses`. Each droplet keeps its own
//! root (`<root>/<address>`), runs its own compose project (`<project>-<address>`) and binds
//! its edge to its own loopback address; they share one Docker engine and one kernel, so this
//! proves the rollout's order, drain, health gate, ledgers and rollback, not isolation between
//! machines. A Caddy on 127.0.0.1 with active health checks on `droplet.lb.health` (the same
//! interval and thresholds as `[droplet.lb]`, no retries) stands in for DigitalOcean's load
//! balancer, which forwards plain HTTP to the edges (`tls = "terminate"`).
//!
//! - `plan` shows one header per droplet, each with its drain and undrain; a dry run (`apply`
//!   without `--yes`) walks the same rollout and changes nothing; `max_unavailable
//!   = 2` is refused (exit 1) before anything reaches a droplet.
//! - A bounded request loop through the balancer sees 0 failed requests while release 2 rolls
//!   over the three droplets (served/failed counts and the rollout's wall time are printed).
//! - Release 3 fails on the second droplet only (its api serves `/healthz` from a volume that
//!   only the first and third droplets have the file in): with `on_failure = "rollback-all"`
//!   apply exits 3 naming that droplet, and afterwards every droplet's ledger and `current`
//!   say release 2 (the first was rolled back, the third never switched and its upload was
//!   removed), and the balancer still serves release 2. With `rollback-host` only the
//!   failing droplet goes back; with `pause` it stays as it failed, out of the balancer.
//!
//! Unique names (the world's tag and pid), owner labels and run records for the sweep, and a
//! guard that removes the three compose projects and stops the balancer even on failure. The
//! three droplets' setup is `support/fleet.rs` (shared with `e2e_fleet_daytwo.rs`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::droplet::{code, free_port, ok, run_bounded, text, World};
use support::fleet::{
    apply, config, current_link, fleet_world, ledger, project_of, respond, root_of, write_config,
    DROPLETS,
};
use support::ledger::outcomes;

/// The stand-in balancer: Caddy on 127.0.0.1 proxying plain HTTP to the three edges, with
/// active health checks as `[droplet.lb]` configures them and no retries, so a request sent
/// to a droplet that is not serving fails instead of being hidden.
fn start_balancer(w: &mut World, port: u16) -> Child {
    let ups: Vec<String> = DROPLETS
        .iter()
        .map(|a| format!("{a}:{}", w.http_port))
        .collect();
    let cfg = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {data}\n}}\n\n\
         http://:{port} {{\n\tbind 127.0.0.1\n\treverse_proxy {ups} {{\n\t\tlb_policy round_robin\n\
         \t\thealth_uri /healthz\n\t\thealth_interval 3s\n\t\thealth_timeout 3s\n\
         \t\thealth_fails 2\n\t\thealth_passes 2\n\t}}\n}}\n",
        data = w.path("lb-data").display(),
        ups = ups.join(" "),
    );
    std::fs::write(w.path("lb.Caddyfile"), cfg).unwrap();
    let caddy = alembic_testkit::workspace_root().join(".tools/bin/caddy");
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(w.path("lb.Caddyfile"))
        .env("HOME", w.path("home"))
        .env("XDG_DATA_HOME", w.path("lb-data"))
        .env("XDG_CONFIG_HOME", w.path("lb-data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stand-in balancer");
    if let Some(start) = alembic_testkit::sweep::process_start(child.id()) {
        w.record.add("process", &format!("{}:{start}", child.id()));
    }
    child
}

/// One request for `api.e2e.test` through the balancer: the body of a 200, else why not.
fn get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: api.e2e.test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(text.lines().next().unwrap_or("no answer").to_owned()),
    }
}

/// Wait (bounded) until the balancer answers `want` 30 times in a row.
fn wait_serving(port: u16, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut streak = 0;
    while streak < 30 {
        match get(port) {
            Ok(b) if b.contains(want) => streak += 1,
            _ => streak = 0,
        }
        assert!(
            Instant::now() < deadline,
            "the balancer did not serve {want:?} steadily within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Put `healthz` into droplet `ip`'s `store` volume (a created, never started container of
/// the world's image mounts it; `docker cp` writes through it).
fn seed_health_file(w: &World, ip: &str) {
    let volume = format!("{}_store", project_of(w, ip));
    let id = ok(Command::new("docker").args([
        "create",
        "-v",
        &format!("{volume}:/srv/store"),
        &w.image,
        "caddy",
        "version",
    ]));
    let id = id.trim().to_owned();
    let file = w.path("healthz");
    std::fs::write(&file, "ok\n").unwrap();
    let cp = Command::new("docker")
        .arg("cp")
        .arg(&file)
        .arg(format!("{id}:/srv/store/healthz"))
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    assert!(
        cp.status.success(),
        "docker cp: {}",
        String::from_utf8_lossy(&cp.stderr)
    );
}

#[test]
fn rolling_deploy_over_three_droplets_behind_a_balancer() {
    let Some((mut w, mut guard)) = fleet_world(
        "rolling_deploy_over_three_droplets_behind_a_balancer",
        "roll",
    ) else {
        return;
    };

    // Release 1 everywhere (a first release: nothing served before it).
    let v1 = respond("api v1");
    write_config(&w, &v1.iter().map(String::as_str).collect::<Vec<_>>());
    let o = apply(&mut w);
    assert_eq!(code(&o), 0, "release 1:\n{}", text(&o));
    for a in DROPLETS {
        assert_eq!(ledger(&w, a)["current"], 1, "{a}");
        assert_eq!(current_link(&w, a), 1, "{a}");
    }

    let lb_port = free_port();
    guard.lb = Some(start_balancer(&mut w, lb_port));
    wait_serving(lb_port, "api v1");

    // Release 2 rolls over the three droplets under a bounded request loop.
    let v2 = respond("api v2");
    write_config(&w, &v2.iter().map(String::as_str).collect::<Vec<_>>());
    // The plan: one header per droplet, each with its own drain and undrain.
    let o = run_bounded(w.alembic().arg("plan"), Duration::from_secs(120));
    w.record(&o);
    assert_eq!(code(&o), 0, "plan:\n{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout).into_owned();
    for a in DROPLETS {
        assert!(
            plan.contains(&format!(
                "plane droplet {a}: release 2 (replacing release 1)"
            )),
            "{plan}"
        );
    }
    assert_eq!(
        plan.matches("take the droplet out of the balancer").count(),
        3,
        "{plan}"
    );
    // A dry run walks the same rollout and changes nothing on any droplet.
    let before: Vec<Vec<u8>> = DROPLETS
        .iter()
        .map(|a| std::fs::read(root_of(&w, a).join("ledger.json")).unwrap())
        .collect();
    let o = run_bounded(w.alembic().arg("apply"), Duration::from_secs(120));
    w.record(&o);
    assert_eq!(code(&o), 0, "dry run:\n{}", text(&o));
    for (a, b) in DROPLETS.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(root_of(&w, a).join("ledger.json")).unwrap(),
            b,
            "{a}"
        );
        assert!(!root_of(&w, a).join("lease.json").exists(), "{a}");
        assert!(!root_of(&w, a).join("releases/2").exists(), "{a}");
        assert!(!root_of(&w, a).join("drain/drained").exists(), "{a}");
    }
    // Rolling several droplets at once is refused before anything reaches a droplet.
    let two = config(&w, &v2.iter().map(String::as_str).collect::<Vec<_>>())
        .replace("max_unavailable = 1", "max_unavailable = 2");
    std::fs::write(w.path("alembic.toml"), two).unwrap();
    let o = run_bounded(w.alembic().arg("plan"), Duration::from_secs(120));
    w.record(&o);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("droplet.rollout.max_unavailable = 2"),
        "{}",
        text(&o)
    );
    write_config(&w, &v2.iter().map(String::as_str).collect::<Vec<_>>());

    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut served, mut failed) = (0u64, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(600);
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                match get(lb_port) {
                    Ok(_) => served += 1,
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (served, failed)
        })
    };
    let started = Instant::now();
    let o = apply(&mut w);
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (served, failed) = looper.join().unwrap();
    println!(
        "rolling deploy of release 2 over 3 droplets: {:.1} s wall time; {served} requests \
         served, {} failed through the balancer",
        wall.as_secs_f64(),
        failed.len()
    );
    assert_eq!(code(&o), 0, "release 2:\n{}", text(&o));
    assert!(served > 0, "the request loop sent nothing");
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    for a in DROPLETS {
        assert_eq!(ledger(&w, a)["current"], 2, "{a}");
        assert_eq!(current_link(&w, a), 2, "{a}");
    }
    wait_serving(lb_port, "api v2");
    // Each droplet's ledger names the volume its own compose project owns.
    let vols = &ledger(&w, DROPLETS[0])["releases"][1]["volumes"];
    assert_eq!(
        vols,
        &serde_json::json!([format!("{}_store", project_of(&w, DROPLETS[0]))])
    );

    // Release 3 serves /healthz from the `store` volume: only the first and third droplets
    // have the file, so it fails on the second one.
    for a in [DROPLETS[0], DROPLETS[2]] {
        seed_health_file(&w, a);
    }
    let v3 = [
        "caddy",
        "file-server",
        "--root",
        "/srv/store",
        "--listen",
        ":8080",
    ];
    write_config(&w, &v3);
    let o = apply(&mut w);
    assert_eq!(code(&o), 3, "release 3 must fail:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("droplet {} failed", DROPLETS[1])),
        "the failing droplet is named:\n{err}"
    );
    for a in DROPLETS {
        let l = ledger(&w, a);
        assert_eq!(l["current"], 2, "{a}: {l}");
        assert_eq!(current_link(&w, a), 2, "{a}");
    }
    let first = outcomes(&ledger(&w, DROPLETS[0]));
    assert_eq!(
        &first[first.len() - 2..],
        [(3, "deployed".to_owned()), (2, "rolled_back".to_owned())],
        "the first droplet took release 3, then was rolled back to 2"
    );
    let second = outcomes(&ledger(&w, DROPLETS[1]));
    assert_eq!(second.last(), Some(&(3, "failed".to_owned())));
    let third = outcomes(&ledger(&w, DROPLETS[2]));
    assert!(third.iter().all(|(n, _)| *n != 3), "{third:?}");
    assert!(
        !Path::new(&root_of(&w, DROPLETS[2]).join("releases/3")).exists(),
        "the unused upload was removed from the third droplet"
    );
    wait_serving(lb_port, "api v2");

    // The same release with `rollback-host`: the first droplet keeps it (release 4 there), the
    // second is rolled back alone, the third is not reached.
    let host = config(&w, &v3).replace("rollback-all", "rollback-host");
    std::fs::write(w.path("alembic.toml"), &host).unwrap();
    let o = apply(&mut w);
    assert_eq!(code(&o), 3, "rollback-host:\n{}", text(&o));
    assert_eq!(ledger(&w, DROPLETS[0])["current"], 4);
    assert_eq!(current_link(&w, DROPLETS[0]), 4);
    assert_eq!(ledger(&w, DROPLETS[1])["current"], 2);
    let second = outcomes(&ledger(&w, DROPLETS[1]));
    assert_eq!(second.last(), Some(&(4, "failed".to_owned())));
    assert_eq!(ledger(&w, DROPLETS[2])["current"], 2);
    assert!(!root_of(&w, DROPLETS[2]).join("releases/3").exists());

    // And with `pause`: the first droplet has nothing to do, the second fails and stays as
    // it is (the failed release active, out of the balancer), the third keeps its upload.
    std::fs::write(
        w.path("alembic.toml"),
        host.replace("rollback-host", "pause"),
    )
    .unwrap();
    let o = apply(&mut w);
    assert_eq!(code(&o), 3, "pause:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("droplet {} failed", DROPLETS[1])) && err.contains("pause"),
        "{err}"
    );
    let paused = root_of(&w, DROPLETS[1]);
    assert_eq!(ledger(&w, DROPLETS[1])["current"], 2);
    let active = std::fs::read_link(paused.join("active")).unwrap();
    assert_eq!(active, Path::new("releases/5"));
    assert!(
        paused.join("drain/drained").exists(),
        "left out of the balancer"
    );
    assert_eq!(ledger(&w, DROPLETS[2])["current"], 2);
    assert!(root_of(&w, DROPLETS[2]).join("releases/3").exists());
    w.assert_no_leaks();
}
