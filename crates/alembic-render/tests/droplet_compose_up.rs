//! Live: the rendered compose.yaml and Caddyfile of the `tls-internal` fixture, run by the real
//! Docker engine as a release directory (compose.yaml, Caddyfile, mode-0600 .env side by side).
//! Proves the hardening options (read-only root, `cap_drop: ALL` + `NET_BIND_SERVICE`,
//! `no-new-privileges`, tmpfs /tmp) still let the edge bind 80/443 and serve, that the secret
//! reaches the container only through `.env`, and that the edge alone is reachable.
//!
//! No registry is reachable: the test builds a `FROM scratch` image holding the static `caddy`
//! binary, used both as the edge and as the workloads (`caddy respond`). Unique project name,
//! image tag and host ports per run; everything is removed afterwards.

mod droplet_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use droplet_support::*;

/// Removes the compose project (containers, networks, volumes) and the image on drop.
struct Cleanup {
    docker: PathBuf,
    dir: PathBuf,
    project: String,
    image: String,
    record: alembic_testkit::sweep::Record,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(&self.docker)
            .current_dir(&self.dir)
            .args([
                "compose",
                "-p",
                &self.project,
                "down",
                "-v",
                "--remove-orphans",
            ])
            .args(["--timeout", "5"])
            .output();
        let _ = Command::new(&self.docker)
            .args(["image", "rm", "-f", &self.image])
            .output();
        self.record.remove();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}

/// The image carries the run's labels (`alembic_testkit::sweep`), and so every container
/// compose starts from it: a killed run's leftovers are swept by the next E2E run.
fn build_image(docker: &Path, caddy: &Path, tag: &str, record: &alembic_testkit::sweep::Record) {
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::copy(caddy, ctx.path().join("caddy")).expect("copy caddy");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY caddy /usr/bin/caddy\nENV PATH=/usr/bin\n",
    )
    .expect("Dockerfile");
    run_ok(
        Command::new(docker)
            .args(["build", "-q", "-t", tag])
            .arg("--label")
            .arg(format!(
                "{}={}",
                alembic_testkit::sweep::LABEL,
                record.run_id
            ))
            .arg("--label")
            .arg(format!(
                "{}={}",
                alembic_testkit::sweep::OWNER_LABEL,
                alembic_testkit::sweep::this_owner()
            ))
            .arg(ctx.path()),
        "docker build (scratch caddy image)",
    );
}

#[test]
fn rendered_release_runs_under_docker_compose() {
    let Some([docker, caddy_bin, curl]) = alembic_testkit::tools(["docker", "caddy", "curl"])
    else {
        return;
    };
    // The caddy on PATH may be a symlink into a venv: copy the real binary into the image.
    let caddy_bin = std::fs::canonicalize(&caddy_bin).expect("caddy path");
    let pid = std::process::id();
    let image = format!("alembic-test/caddy-b1:{pid}");
    let project = format!("alembic-droplet-test-{pid}");
    let (http, https) = (free_port(), free_port());

    let text = std::fs::read_to_string(fixtures_dir().join("tls-internal.toml"))
        .expect("fixture")
        .replace("alembic-test/caddy:local", &image)
        .replacen("http_port   = 18080", &format!("http_port   = {http}"), 1)
        .replacen("https_port  = 18443", &format!("https_port  = {https}"), 1);
    let t = alembic_config::load_str("live.toml", &text)
        .topology
        .expect("adjusted fixture is valid");

    let release = tempfile::tempdir().expect("tempdir");
    let dir = release.path();
    write_release(dir, &t);
    let secret = canary("HELLO_TOKEN");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut env = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(dir.join(".env"))
            .expect(".env");
        // Compose reads a secret from `ALEMBIC_SECRET_<NAME>` (apply exports it; a plain
        // canary is the same through a dotenv file).
        writeln!(
            env,
            "{}={secret}",
            alembic_render::compose::secret_variable("HELLO_TOKEN")
        )
        .expect("write .env");
    }

    for gone in alembic_testkit::sweep::sweep_stale() {
        eprintln!("removed what a killed run left: {gone}");
    }
    let mut record = alembic_testkit::sweep::Record::new("compose-up");
    record.add("project", &project);
    record.add("image", &image);
    build_image(&docker, &caddy_bin, &image, &record);
    let _cleanup = Cleanup {
        docker: docker.clone(),
        dir: dir.to_owned(),
        project: project.clone(),
        image: image.clone(),
        record,
    };
    let compose = |args: &[&str]| {
        let mut c = Command::new(&docker);
        c.current_dir(dir)
            .args(["compose", "-p", &project])
            .args(args);
        c
    };
    run_ok(
        &mut compose(&["up", "-d", "--wait", "--wait-timeout", "60"]),
        "docker compose up --wait",
    );

    // Caddy creates its local CA on start; copy the root out of the data volume.
    let ca = dir.join("root.crt");
    let copied = (0..40).any(|_| {
        let ok = compose(&["cp", "edge:/data/caddy/pki/authorities/local/root.crt"])
            .arg(&ca)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            std::thread::sleep(Duration::from_millis(250));
        }
        ok
    });
    assert!(copied, "no local CA in the edge's data volume");

    let host = "hello.alembic.test";
    let fetch = |path: &str| {
        Command::new(&curl)
            .args(["-sS", "--max-time", "10", "-D", "-"])
            .arg("--resolve")
            .arg(format!("{host}:{https}:127.0.0.1"))
            .arg("--cacert")
            .arg(&ca)
            .arg(format!("https://{host}:{https}{path}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let mut last = None;
    for _ in 0..60 {
        last = fetch("/");
        if last
            .as_deref()
            .is_some_and(|r| r.contains("hello from alembic"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs = || {
        String::from_utf8_lossy(
            &compose(&["logs", "--no-color"])
                .output()
                .expect("logs")
                .stdout,
        )
        .into_owned()
    };
    let resp = last.unwrap_or_else(|| panic!("no response through the edge:\n{}", logs()));
    assert!(resp.starts_with("HTTP/2 200"), "{resp}\n{}", logs());
    assert!(resp.ends_with("hello from alembic"), "{resp}");
    let lower = resp.to_ascii_lowercase();
    assert!(lower.contains("x-frame-options: deny"), "{resp}");
    assert!(!lower.contains("\nserver:"), "{resp}");
    let echo = fetch("/echo/x").expect("path route");
    assert!(echo.ends_with("echo"), "{echo}");

    // The secret reached the workload from .env, and only the edge has host ports.
    let ps = run_ok(
        &mut compose(&["ps", "--format", "json"]),
        "docker compose ps",
    );
    let ps = String::from_utf8_lossy(&ps.stdout);
    for line in ps.lines().filter(|l| !l.trim().is_empty()) {
        let c: serde_json::Value = serde_json::from_str(line).expect("ps json");
        let publishers = c["Publishers"].as_array().cloned().unwrap_or_default();
        let published = publishers
            .iter()
            .any(|p| p["PublishedPort"].as_u64().unwrap_or(0) != 0);
        assert_eq!(
            published,
            c["Service"] == "edge",
            "only the edge may publish: {c}"
        );
    }
    let inspect = run_ok(
        &mut compose(&["exec", "-T", "hello", "caddy", "environ"]),
        "caddy environ in the workload",
    );
    let environ = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        environ.contains(&format!("HELLO_TOKEN={secret}")),
        "secret not delivered:\n{environ}"
    );
    assert!(environ.contains("GREETING=hello"), "{environ}");
}
