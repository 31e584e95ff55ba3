//! End-to-end: a `build` workload deployed without a registry. The "droplet" is the real sshd
//! on loopback and this machine's Docker engine (`support/droplet.rs`); the `api` workload is
//! built from a `FROM scratch` Dockerfile holding the static caddy binary, shipped over ssh
//! (`docker save | ssh docker load`) and served through the edge. The droplet shares the engine
//! with the applying side, so the ship decision is made observable by the droplet's own name for
//! a delivered image (`<project>/<workload>:pinned-<id12>`, which the build never creates): the
//! first apply ships, a redeploy with the same build ships nothing, a changed build ships again,
//! and a rollback runs the pinned image ID of the restored release.
//!
//! Also day two against the same droplet: `status` (release, state, health, image, drift),
//! `logs` and `exec`.
//!
//! Skipped (printing why) without docker, sshd, ssh, curl or caddy, unless
//! `ALEMBIC_REQUIRE_E2E=1`, which turns the skip into a failure.

mod support;

use std::process::Command;
use std::time::Instant;

use support::droplet::{code, ok, text, world, World};

/// Removes the image tags this test's applies created (`<project>/api:*`, unique per run), even
/// when an assertion failed. Held after the world in [`Run`], so it runs after the world's own
/// cleanup removed the containers using them.
struct Tags(String);

/// Fields drop in order: the world (containers) first, then the image tags.
struct Run {
    w: World,
    _tags: Tags,
}

impl Drop for Tags {
    fn drop(&mut self) {
        let Ok(o) = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}", &self.0])
            .output()
        else {
            return;
        };
        let tags: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !tags.is_empty() {
            let _ = Command::new("docker").arg("rmi").args(&tags).output();
        }
    }
}

const MARKER: &str = "BUILT-BY-ALEMBIC";

/// The world's config with `api` built from `api-src` instead of an image; the api stub logs
/// every request (`--access-log`), which `alembic logs` must show.
fn write_build_config(w: &World, body: &str, web_body: &str) {
    let cmd = [
        "caddy",
        "respond",
        "--listen",
        ":8080",
        "--access-log",
        "--status",
        "200",
        "--body",
        body,
    ];
    let text = w
        .config_with(MARKER, &cmd, "")
        .replace(
            &format!("image    = \"{MARKER}\""),
            "build    = \"api-src\"",
        )
        .replace("\"web v1\"", &format!("{web_body:?}"));
    assert!(text.contains("build    = \"api-src\""));
    std::fs::write(w.path("alembic.toml"), text).unwrap();
}

/// `FROM scratch` with the static caddy binary the harness already uses; `extra` adds a file,
/// so the image ID changes.
fn write_context(w: &World, extra: Option<&str>) {
    let ctx = w.path("api-src");
    std::fs::create_dir_all(&ctx).unwrap();
    let caddy = std::fs::canonicalize(alembic_testkit::workspace_root().join(".tools/bin/caddy"))
        .or_else(|_| std::fs::canonicalize(alembic_testkit::which("caddy").expect("caddy on PATH")))
        .unwrap();
    std::fs::copy(caddy, ctx.join("caddy")).unwrap();
    let mut dockerfile = "FROM scratch\nCOPY caddy /usr/bin/caddy\n\
                          ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config\n"
        .to_owned();
    if let Some(e) = extra {
        std::fs::write(ctx.join("version.txt"), e).unwrap();
        dockerfile.push_str("COPY version.txt /version.txt\n");
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
}

fn container_image(w: &World, service: &str) -> String {
    let id = w.container(service);
    assert!(!id.is_empty(), "no running {service} container");
    ok(Command::new("docker").args(["inspect", "--format", "{{.Image}}", &id]))
        .trim()
        .to_owned()
}

/// The bytes an apply's progress reported for the api image, or None when it sent nothing.
fn bytes_sent(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains("image sent ("))?;
    let n = line.split(": ").last()?.split_whitespace().next()?;
    n.parse().ok()
}

#[test]
fn built_image_ships_over_ssh_and_is_pinned() {
    let Some(mut w) = world("e2e_images", "img") else {
        return;
    };
    let tags = Tags(format!("{}/api", w.project));
    w.own_image_repo(&tags.0);
    let mut run = Run { w, _tags: tags };
    let w = &mut run.w;
    write_context(w, None);
    write_build_config(w, "built v1", "web v1");

    // The rendered compose file names the image by reference; `plan` builds and shows it added.
    let o = w.alembic_run(&["plan", "--plane", "droplet"]);
    assert_eq!(code(&o), 0, "plan\n{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("image api: added sha256:"), "{out}");

    // (1) First apply: the droplet has no pinned copy, so the image goes over ssh.
    let t0 = Instant::now();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    let first = t0.elapsed();
    assert_eq!(code(&o), 0, "first apply\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let shipped_first = bytes_sent(&err).unwrap_or_else(|| panic!("nothing sent:\n{err}"));
    assert!(
        shipped_first > 1_000_000,
        "the caddy binary went over: {err}"
    );
    w.fetch_ca();
    assert_eq!(w.get("api.e2e.test").unwrap(), "built v1");
    let ledger = w.ledger();
    let pin1 = ledger["releases"][0]["pins"]["api"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pin1.starts_with("sha256:"), "{ledger}");
    assert_eq!(
        container_image(w, "api"),
        pin1,
        "compose runs the pinned ID"
    );
    let compose = std::fs::read_to_string(w.root().join("releases/1/compose.yaml")).unwrap();
    assert!(compose.contains(&format!("image: {pin1}")), "{compose}");

    // (2) Redeploy with the same build (only `web` changed): nothing is sent.
    write_build_config(w, "built v1", "web v2");
    let t0 = Instant::now();
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    let redeploy = t0.elapsed();
    assert_eq!(code(&o), 0, "redeploy\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("image unchanged ("), "{err}");
    assert!(err.contains("not sent"), "{err}");
    assert_eq!(bytes_sent(&err), None, "{err}");
    assert_eq!(w.current(), 2);
    assert_eq!(w.ledger()["releases"][1]["pins"]["api"], pin1.as_str());

    // (3) A changed build: the plan says so, and the new image is sent.
    write_context(w, Some("v2"));
    write_build_config(w, "built v2", "web v2");
    let o = w.alembic_run(&["plan", "--plane", "droplet"]);
    assert_eq!(code(&o), 0, "plan\n{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("image api: changed {pin1} -> sha256:")),
        "{out}"
    );
    let o = w.alembic_run(&["apply", "--plane", "droplet", "--yes"]);
    assert_eq!(code(&o), 0, "changed build\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let shipped_changed = bytes_sent(&err).unwrap_or_else(|| panic!("nothing sent:\n{err}"));
    assert_eq!(w.get("api.e2e.test").unwrap(), "built v2");
    let pin3 = w.ledger()["releases"][2]["pins"]["api"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(pin3, pin1);
    assert_eq!(container_image(w, "api"), pin3);

    // (4) The build's local tag is moved to the new image by hand: a rollback still runs the
    // restored release's pinned ID, not whatever a tag names now.
    let old_tag = format!("{}/api:{}", w.project, &pin1["sha256:".len()..][..12]);
    ok(Command::new("docker").args(["tag", &pin3, &old_tag]));
    let o = w.alembic_run(&["rollback", "--yes"]);
    assert_eq!(code(&o), 0, "rollback\n{}", text(&o));
    assert_eq!(w.current(), 2);
    assert_eq!(container_image(w, "api"), pin1, "the pinned bits are back");
    assert_eq!(w.get("api.e2e.test").unwrap(), "built v1");

    // (5) Day two. `status`: the current release, every workload running the image it pins.
    let o = w.alembic_run(&["status", "--json"]);
    assert_eq!(code(&o), 0, "status\n{}", text(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["release"], 2, "{st}");
    assert_eq!(st["drift"], false, "{st}");
    let api = &st["workloads"][1];
    assert_eq!(api["workload"], "api", "{st}");
    assert_eq!(api["state"], "running", "{st}");
    assert_eq!(api["image"], pin1.as_str(), "{st}");
    assert_eq!(api["pinned"], pin1.as_str(), "{st}");
    assert!(
        api["started_at"].as_str().unwrap().starts_with("20"),
        "{st}"
    );
    assert_eq!(st["workloads"][0]["workload"], "edge");

    // `logs`: the api stub logs every request it handled.
    let o = w.alembic_run(&["logs", "api", "--tail", "50"]);
    assert_eq!(code(&o), 0, "logs\n{}", text(&o));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(all.contains("handled request"), "{all}");

    // `exec`: the scratch image has only caddy. `caddy environ` prints the container's
    // environment, secret included: alembic prints it redacted.
    let o = w.alembic_run(&["exec", "api", "--", "caddy", "version"]);
    assert_eq!(code(&o), 0, "exec\n{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("v2."),
        "{}",
        text(&o)
    );
    let o = w.alembic_run(&["exec", "api", "--", "caddy", "environ"]);
    assert_eq!(code(&o), 0, "exec environ\n{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("E2E_CANARY_TOKEN=[E2E_CANARY_TOKEN: redacted]"),
        "{out}"
    );

    // A container stopped by hand is drift: exit 1, naming it.
    ok(Command::new("docker").args(["stop", "-t", "1", &w.container("api")]));
    let o = w.alembic_run(&["status"]);
    assert_eq!(code(&o), 1, "status after a stop\n{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("drift: container is exited"), "{out}");

    eprintln!(
        "e2e_images: first deploy {:.1}s ({shipped_first} bytes shipped), redeploy with an \
         unchanged build {:.1}s (0 bytes shipped), changed build {shipped_changed} bytes shipped",
        first.as_secs_f64(),
        redeploy.as_secs_f64()
    );
    w.assert_no_leaks();
}
