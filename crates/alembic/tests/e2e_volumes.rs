//! End-to-end: a stateful droplet workload keeps its named volume's data. The same real sshd +
//! Docker engine "droplet" as `e2e_droplet.rs` (`support/droplet.rs`), plus a second FROM-scratch
//! image holding a static busybox next to the static caddy: the `data` workload seeds its volume
//! on first start (a random UUID written only when the file is absent) and serves it with
//! `caddy file-server` through the edge. The content must be the same after a redeploy that
//! recreates the container, after a failed release (rolled back), after `alembic rollback` and
//! after old releases are pruned; the volume still exists at the end and the ledger names it.
//!
//! Cleanup: the world's guard removes the compose project's containers, networks and volumes;
//! this test's own guard (declared first, so dropped last) removes its image and the volume by
//! its unique name (`vol<pid>_store`), even when an assertion failed.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::droplet::{code, ok, run, text, world};

/// Removes what this test created beyond the world: the busybox image and the named volume.
struct Guard {
    image: String,
    volume: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.volume])
            .output();
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

/// The static busybox (Debian `busybox-static`), or None.
fn busybox() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new("/bin/busybox");
    let o = Command::new(p).arg("true").output().ok()?;
    o.status.success().then(|| p.to_owned())
}

/// The `data` workload appended after `web`: its volume, a tmpfs it writes to (the root is
/// read-only), and `REV` in its environment so each release recreates its container.
fn data_workload(image: &str, rev: u32) -> String {
    format!(
        r#"
[[workload]]
name     = "data"
plane    = "droplet"
exposure = "public"
image    = "{image}"
command  = ["/bin/busybox", "sh", "-c", "/bin/busybox test -s /srv/data/index.html || /bin/busybox cat /proc/sys/kernel/random/uuid > /srv/data/index.html; /bin/busybox date > /run/data/started && exec /usr/bin/caddy file-server --root /srv/data --listen :8082"]
port     = 8082
route    = "data.e2e.test"
volumes  = ["store:/srv/data"]
tmpfs    = ["/run/data"]
env      = {{ REV = "{rev}" }}
"#
    )
}

#[test]
fn a_named_volume_survives_redeploys_failures_rollbacks_and_pruning() {
    let test = "e2e_volumes";
    let pid = std::process::id();
    let Some(bb) = busybox() else {
        support::droplet::skip(
            test,
            "no static /bin/busybox (Debian busybox-static; run scripts/install-tools.sh)",
        );
        return;
    };
    let guard = Guard {
        image: format!("alembic-e2e/busybox-caddy:vol{pid}"),
        volume: format!("vol{pid}_store"),
    };
    let Some(mut w) = world(test, "vol") else {
        return;
    };
    w.own_image(&guard.image);
    w.own_volume(&guard.volume);
    assert_eq!(w.project, format!("vol{pid}"));

    // The image: FROM scratch, static busybox + static caddy, imported like the world's.
    let root = w.path("bb-image");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::copy(&bb, root.join("bin/busybox")).unwrap();
    let caddy = ok(Command::new("docker").args([
        "create",
        "--name",
        &format!("vol{pid}-extract"),
        &w.image,
        "caddy",
    ]));
    let extract = caddy.trim().to_owned();
    let cp = run(Command::new("docker")
        .args(["cp", &format!("{extract}:/usr/bin/caddy")])
        .arg(root.join("usr/bin/caddy")));
    let _ = Command::new("docker").args(["rm", "-f", &extract]).output();
    assert!(cp.status.success(), "docker cp caddy: {}", text(&cp));
    let tar = run(Command::new("tar").arg("-C").arg(&root).args(["-c", "."]));
    assert!(tar.status.success());
    let mut import = Command::new("docker")
        .args([
            "import",
            "--change",
            "ENV XDG_DATA_HOME=/tmp/data",
            "--change",
            "ENV XDG_CONFIG_HOME=/tmp/config",
        ])
        .args(w.record.image_labels())
        .args(["-", &guard.image])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success(), "docker import failed");

    let deploy = |w: &mut support::droplet::World, body: &str, status: u16, rev: u32| {
        let tail = data_workload(&guard.image, rev);
        w.write_config_with(&w.image.clone(), body, status, &tail);
        w.alembic_run(&["apply", "--plane", "droplet", "--yes"])
    };

    // First deploy: the workload seeds its volume and serves the seed through the edge.
    let o = deploy(&mut w, "body v1", 200, 1);
    assert_eq!(code(&o), 0, "first apply\n{}", text(&o));
    w.fetch_ca();
    let seed = w.get("data.e2e.test").expect("the seed is served");
    assert_eq!(seed.trim().len(), 36, "a UUID: {seed:?}");
    let data = w.container("data");
    let ro =
        ok(Command::new("docker").args(["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", &data]));
    assert_eq!(ro.trim(), "true", "the root stays read-only");
    let mounts = ok(Command::new("docker").args([
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}}={{.Name}}:{{.Destination}} {{end}}",
        &data,
    ]));
    assert!(
        mounts.contains(&format!("volume={}:/srv/data", guard.volume)),
        "{mounts}"
    );

    // Redeploy: a new container, the same data.
    let o = deploy(&mut w, "body v2", 200, 2);
    assert_eq!(code(&o), 0, "redeploy\n{}", text(&o));
    assert_ne!(w.container("data"), data, "the redeploy recreated data");
    assert_eq!(w.get("data.e2e.test").unwrap(), seed, "after a redeploy");

    // A failed release (api answers 500) that also recreates data: rolled back, same data.
    let o = deploy(&mut w, "body v3 broken", 500, 3);
    assert_eq!(code(&o), 3, "failing release\n{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rolled back to release 2"),
        "{}",
        text(&o)
    );
    assert_eq!(w.current(), 2);
    assert_eq!(
        w.get("data.e2e.test").unwrap(),
        seed,
        "after a failed release"
    );

    // Two more releases, then `alembic rollback`: same data.
    for (body, rev) in [("body v4", 4), ("body v5", 5)] {
        let o = deploy(&mut w, body, 200, rev);
        assert_eq!(code(&o), 0, "{body}\n{}", text(&o));
    }
    let o = w.alembic_run(&["rollback", "--yes"]);
    assert_eq!(code(&o), 0, "rollback\n{}", text(&o));
    assert_eq!(w.current(), 4);
    assert_eq!(w.get("data.e2e.test").unwrap(), seed, "after a rollback");

    // Pruning (keep_releases = 3) has removed the oldest release dirs by now; one more apply
    // prunes again. The data is still there.
    let o = deploy(&mut w, "body v6", 200, 6);
    assert_eq!(code(&o), 0, "apply after rollback\n{}", text(&o));
    // keep_releases = 3: current (6) and the two newest healthy releases before it (5, 4); the
    // failed 3 and the older 1 and 2 are gone.
    assert_eq!(w.release_dirs(), [4, 5, 6], "what pruning left");
    assert_eq!(w.get("data.e2e.test").unwrap(), seed, "after pruning");

    // The volume still exists under its stable name; the ledger names it for every release.
    let vols = ok(Command::new("docker").args([
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name={}", guard.volume),
    ]));
    assert!(
        vols.lines().any(|l| l.trim() == guard.volume),
        "volume {} is gone: {vols}",
        guard.volume
    );
    let ledger = w.ledger();
    let entries = ledger["releases"].as_array().unwrap();
    // The ledger is append-only: pruning removed dirs, never entries.
    let got: Vec<(u64, &str)> = entries
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
            (1, "deployed"),
            (2, "deployed"),
            (3, "failed"),
            (4, "deployed"),
            (5, "deployed"),
            (4, "rolled_back"),
            (6, "deployed"),
        ],
        "{ledger}"
    );
    assert_eq!(ledger["current"], 6);
    for e in entries {
        assert_eq!(
            e["volumes"],
            serde_json::json!([guard.volume]),
            "ledger entry {e}"
        );
    }
    w.assert_no_leaks();
    drop(w);
    drop(guard);
}
