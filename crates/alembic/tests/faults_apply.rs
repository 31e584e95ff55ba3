//! Faults in `alembic apply --plane droplet`, on the same real droplet as `e2e_droplet.rs`
//! (sshd on 127.0.0.1, the Docker engine, a `docker import`ed caddy; `support/droplet.rs`):
//!
//! - **docker compose failing**: after a good release, a release whose `up` fails because its
//!   image is neither local nor pullable (its registry is a closed loopback port, so the pull
//!   fails at once, here and on any machine). Exit 3, "rolled back to release N" with the why,
//!   the previous release still serves, the ledger records the failure, the lease is released.
//! - **disk full on the droplet**: `root` is a small tmpfs. A release too big for it fails
//!   mid-upload; a release whose `.env` no longer fits fails at the `.env` write; a disk with
//!   no room left at all fails at the lease. Each time: exit 3 with the kernel's "No space
//!   left on device", `current` and `active` still on the complete previous release, which
//!   still serves, no partial release dir or temp file left, the lease released; once room is
//!   made, the next apply succeeds at once.
//!
//! - **a stalled holder**: a first apply with a 3 s lease is stopped (SIGSTOP) after uploading
//!   its release; once its lease has expired by the droplet's clock a second apply takes it over
//!   (next fencing token) and is stopped in turn. The first one, resumed, exits 3 naming the
//!   new holder and changes nothing (no `current`, no ledger, the lease still the other's); the
//!   second one finishes, and the ledger records its release alone.
//!
//! Every case checks that the canary secret values appear in no output and no file but the
//! releases' `.env`. Skipped (printing why) without docker, sshd, ssh, curl, caddy or the
//! right to mount a tmpfs, unless `ALEMBIC_REQUIRE_E2E=1`, which turns the skip into a failure.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::droplet::{code, free_port, run_bounded, skip, text, world, World};

/// The output says no panic happened and names no Rust internals.
fn assert_clean_failure(o: &Output) {
    let all = text(o);
    assert!(
        !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
        "{all}"
    );
}

fn lease_released(w: &World) {
    assert!(
        !w.root().join("lease.json").exists(),
        "the lease was left behind: {}",
        std::fs::read_to_string(w.root().join("lease.json")).unwrap_or_default()
    );
}

/// Temp files (`.x.tmp`, `.lease-*.json`) anywhere under the droplet's root.
fn temp_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    support::droplet::files_under(root, &mut files);
    files
        .into_iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_str()?.to_owned();
            (name.ends_with(".tmp") || name.starts_with(".lease-")).then(|| f.display().to_string())
        })
        .collect()
}

/// Longest an apply may run here before the test fails (a hang, e.g. an unbounded pull).
const APPLY_LIMIT: Duration = Duration::from_secs(300);

/// Apply, bounded by [`APPLY_LIMIT`]; the time it took is printed by callers, never asserted.
fn apply(w: &mut World) -> (Output, Duration) {
    let t = Instant::now();
    let o = run_bounded(
        w.alembic().args(["apply", "--plane", "droplet", "--yes"]),
        APPLY_LIMIT,
    );
    w.record(&o);
    (o, t.elapsed())
}

#[test]
fn compose_up_failing_rolls_back_to_the_previous_release() {
    let Some(mut w) = world("faults_apply compose", "fc") else {
        return;
    };
    let started = Instant::now();

    // Release 1: good.
    w.write_config("body v1", 200);
    let (o, took) = apply(&mut w);
    assert_eq!(code(&o), 0, "first apply\n{}", text(&o));
    eprintln!(
        "faults_apply: release 1 deployed in {:.1}s",
        took.as_secs_f64()
    );
    w.fetch_ca();
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1");

    // Release 2: the api image is not local, and its registry is a loopback port nothing
    // listens on, so the pull inside `up` is refused at once.
    let image = format!(
        "127.0.0.1:{}/alembic-missing/api:{}",
        free_port(),
        w.project
    );
    w.write_config_with(&image, "body v2", 200, "");
    let (o, took) = apply(&mut w);
    eprintln!(
        "faults_apply: failing compose up rolled back in {:.1}s\n{}",
        took.as_secs_f64(),
        text(&o)
    );
    assert_eq!(code(&o), 3, "failing compose up\n{}", text(&o));
    assert_clean_failure(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("release 2 failed; rolled back to release 1"),
        "{err}"
    );
    assert!(
        err.contains("why: docker compose up --wait failed"),
        "the why is shown: {err}"
    );
    // The progress view once reported the failed `up` as `ok`.
    assert!(
        err.lines()
            .any(|l| l.starts_with("FAIL docker compose up --wait")),
        "progress marks the failed step: {err}"
    );
    assert!(
        err.contains("alembic-missing/api"),
        "compose's own error names the image: {err}"
    );
    assert_eq!(w.current(), 1);
    assert_eq!(w.link("active"), 1, "compose runs release 1 again");
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1");
    assert_eq!(w.get("web.e2e.test").unwrap(), "web v1");
    let ledger = w.ledger();
    assert_eq!(ledger["current"], 1);
    let last = ledger["releases"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["number"].as_u64(), last["outcome"].as_str()),
        (Some(2), Some("failed")),
        "{last}"
    );
    let note = last["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("docker compose up --wait failed")
            && note.contains("rolled back to release 1"),
        "{note}"
    );
    lease_released(&w);

    // The lease was released, not left to expire (default TTL 900 s): the next apply runs now.
    w.write_config("body v3", 200);
    let (o, took) = apply(&mut w);
    assert_eq!(code(&o), 0, "apply after the failure\n{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("expired lease"),
        "{}",
        text(&o)
    );
    assert_eq!(w.current(), 3);
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v3");
    eprintln!(
        "faults_apply: next release deployed in {:.1}s",
        took.as_secs_f64()
    );

    w.assert_no_leaks();
    eprintln!(
        "faults_apply: compose case done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Free bytes and block size of the filesystem holding `dir` (`stat -f`).
fn fs_free(dir: &Path) -> (u64, u64) {
    let out = support::droplet::ok(Command::new("stat").args(["-f", "-c", "%a %S"]).arg(dir));
    let mut it = out.split_whitespace().map(|s| s.parse::<u64>().unwrap());
    let (avail, bsize) = (it.next().unwrap(), it.next().unwrap());
    (avail * bsize, bsize)
}

/// Fill the filesystem holding `dir` until `keep` bytes are free, with a file named `name`.
fn fill(dir: &Path, name: &str, keep: u64) {
    let (free, _) = fs_free(dir);
    assert!(free >= keep, "only {free} bytes free, wanted {keep} kept");
    std::fs::write(dir.join(name), vec![b'f'; (free - keep) as usize]).unwrap();
    assert_eq!(
        fs_free(dir).0,
        keep,
        "the filler left a different amount free"
    );
}

/// Everything the release-1 state promises after a failed apply; `says` is the error text the
/// droplet's shell gave for the full disk.
fn still_on_release_1(w: &World, o: &Output, at: &str, says: &str) {
    assert_eq!(code(o), 3, "{at}\n{}", text(o));
    assert_clean_failure(o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(says), "{at}: {err}");
    assert_eq!(w.current(), 1, "{at}: current moved");
    assert_eq!(w.link("active"), 1, "{at}: active moved");
    assert_eq!(
        w.release_dirs(),
        vec![1],
        "{at}: a partial release dir is left"
    );
    for f in ["compose.yaml", "Caddyfile", ".env"] {
        assert!(
            w.root().join(format!("releases/1/{f}")).is_file(),
            "{at}: release 1 lacks {f}"
        );
    }
    assert_eq!(temp_files(&w.root()), Vec::<String>::new(), "{at}");
    lease_released(w);
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1", "{at}");
}

#[test]
fn disk_full_on_the_droplet_keeps_the_complete_release() {
    let Some(mut w) = world("faults_apply disk", "df") else {
        return;
    };
    let started = Instant::now();
    // 256 KiB: release 1 (a few KiB) fits with room to spare; the padded release does not.
    let root = w.root();
    if let Err(why) = w.mount_tmpfs(&root, "256k") {
        skip(
            "faults_apply disk",
            &format!("cannot mount a tmpfs as the droplet root: {why}"),
        );
        return;
    }

    w.write_config("body v1", 200);
    let (o, took) = apply(&mut w);
    assert_eq!(code(&o), 0, "first apply\n{}", text(&o));
    eprintln!(
        "faults_apply: release 1 on tmpfs in {:.1}s",
        took.as_secs_f64()
    );
    w.fetch_ca();
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1");

    // (a) A release bigger than the disk: 80 plain env values of 4000 bytes (the per-value
    // limit) make compose.yaml ~320 KB. Low-entropy padding, not secret-shaped.
    let mut pad = String::from("[workload.env]\n");
    for i in 0..80 {
        pad.push_str(&format!("PAD_{i:02} = \"{}\"\n", "p".repeat(4000)));
    }
    w.write_config_with(&w.image.clone(), "body v1", 200, &pad);
    let (o, took) = apply(&mut w);
    eprintln!(
        "faults_apply: oversized upload failed in {:.1}s\n{}",
        took.as_secs_f64(),
        String::from_utf8_lossy(&o.stderr)
    );
    still_on_release_1(&w, &o, "oversized upload", "No space left on device");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("upload release 2: upload compose.yaml failed"),
        "{err}"
    );
    assert!(
        err.contains("the incomplete release 2 was removed")
            && err.contains("release 1 is still current"),
        "{err}"
    );

    // (b) The `.env` write is the step that hits the full disk: leave exactly the pages the
    // lease, Caddyfile and compose.yaml take (tmpfs counts whole pages), none for `.env`.
    w.write_config("body v2", 200);
    let (_, page) = fs_free(&root);
    let pages = |f: &str| -> u64 {
        let len = std::fs::metadata(root.join("releases/1").join(f))
            .unwrap()
            .len();
        len.div_ceil(page).max(1)
    };
    // Release 2 differs from release 1 only in "v1" -> "v2": same sizes.
    let need = 1 + pages("Caddyfile") + pages("compose.yaml");
    fill(&root, "filler-a", need * page);
    let (o, took) = apply(&mut w);
    eprintln!(
        "faults_apply: .env write failed in {:.1}s\n{}",
        took.as_secs_f64(),
        String::from_utf8_lossy(&o.stderr)
    );
    still_on_release_1(&w, &o, ".env write", "No space left on device");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("write .env (0600) failed"), "{err}");

    // (c) No room at all: the lease itself cannot be written.
    fill(&root, "filler-b", 0);
    let (o, took) = apply(&mut w);
    eprintln!(
        "faults_apply: lease on a full disk failed in {:.1}s\n{}",
        took.as_secs_f64(),
        String::from_utf8_lossy(&o.stderr)
    );
    // The lease script writes with the shell's `printf` builtin, which (dash) reports any
    // write error as "I/O error"; the step is still named and nothing else was touched.
    // lease.rs's ACQUIRE once exited under `set -e` before removing its temp record, leaving
    // an empty `.lease-<id>.json` on a full disk; it now removes it on a failed write.
    let leftover: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".lease-"))
        })
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    still_on_release_1(&w, &o, "full disk at the lease", "take lease failed");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("I/O error"),
        "{}",
        text(&o)
    );

    // Room made: the next apply runs at once (no lease to wait for) and deploys.
    for f in ["filler-a", "filler-b"] {
        std::fs::remove_file(root.join(f)).unwrap();
    }
    let (o, took) = apply(&mut w);
    assert_eq!(code(&o), 0, "apply after making room\n{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("expired lease"),
        "{}",
        text(&o)
    );
    assert_eq!(w.current(), 2);
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v2");
    eprintln!(
        "faults_apply: release 2 after making room in {:.1}s",
        took.as_secs_f64()
    );

    w.assert_no_leaks();
    eprintln!(
        "faults_apply: disk case done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// A child process that is resumed and killed if the test fails while it is stopped.
struct Stoppable(Option<std::process::Child>);

impl Stoppable {
    fn signal(&self, sig: &str) {
        if let Some(c) = &self.0 {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, |c| c.id())
    }

    /// Wait (bounded) for the exit and the output.
    fn finish(&mut self, what: &str) -> Output {
        let mut c = self.0.take().expect("still running");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if c.try_wait().unwrap().is_some() {
                return c.wait_with_output().unwrap();
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                panic!("{what} did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stoppable {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_apply(w: &World, ttl: Option<&str>) -> Stoppable {
    let mut c = w.alembic();
    if let Some(t) = ttl {
        c.env("ALEMBIC_LEASE_TTL", t);
    }
    let child = c
        .args(["apply", "--plane", "droplet", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    Stoppable(Some(child))
}

/// The lease record on the droplet, if any.
fn lease_record(w: &World) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(w.root().join("lease.json")).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The lease was never renewed, its expiry was judged by the challenger's clock and it carried
/// no fencing token: an apply that stalled past its TTL was taken over, then woke up and
/// switched `current` and wrote its ledger over the one the other apply had written.
#[test]
fn a_stalled_holder_is_taken_over_and_changes_nothing_after() {
    let Some(mut w) = world("faults_apply lease", "fl") else {
        return;
    };
    let started = Instant::now();

    // A: release 1 with a 3 s lease, stopped (SIGSTOP: its renewals stop too, as on a
    // suspended laptop) once its release is uploaded.
    w.write_config("body v1", 200);
    let mut a = spawn_apply(&w, Some("3"));
    // A renews its lease while it works (every TTL/3): `expires` moves past started + TTL.
    let env1 = w.root().join("releases/1/.env");
    wait_for("A to upload release 1 and renew its lease", || {
        let renewed = lease_record(&w).is_some_and(|l| {
            let (s, e) = (l["started"].as_u64(), l["expires"].as_u64());
            s.zip(e).is_some_and(|(s, e)| e > s + 3)
        });
        env1.exists() && renewed
    });
    a.signal("-STOP");
    let a_token = lease_record(&w).expect("A holds the lease")["token"]
        .as_u64()
        .unwrap();
    // Until A's lease has expired by the droplet's clock (this machine's, here) and no step of
    // A's still holds the lease lock (a compose step renews the lease as it ends).
    let lock = w.root().join(".lease.lock");
    wait_for("A's lease to expire", || {
        let free = Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .arg("true")
            .status()
            .is_ok_and(|s| s.success());
        let expires = lease_record(&w).and_then(|l| l["expires"].as_u64());
        free && expires.is_some_and(|e| epoch() > e + 1)
    });

    // B: release 2 with the default TTL takes over; it is stopped in turn once it holds the
    // lease, so A wakes up while B holds it.
    w.write_config("body v2", 200);
    let mut b = spawn_apply(&w, None);
    wait_for("B to take the lease over", || {
        lease_record(&w).is_some_and(|l| l["token"].as_u64() == Some(a_token + 1))
    });
    b.signal("-STOP");
    let b_pid = b.id();
    a.signal("-CONT");
    let oa = a.finish("the stalled apply");
    w.record(&oa);
    eprintln!("faults_apply: stalled apply A:\n{}", text(&oa));
    assert_eq!(code(&oa), 3, "A\n{}", text(&oa));
    assert_clean_failure(&oa);
    let err = String::from_utf8_lossy(&oa.stderr);
    assert!(
        err.contains("lost the deploy lease")
            && err.contains("now held by root@")
            && err.contains(&format!("(pid {b_pid}, token {}", a_token + 1)),
        "A names who holds the lease now: {err}"
    );
    // A changed nothing after losing the lease: no `current`, no ledger, as before it.
    assert!(!w.root().join("current").exists(), "A switched `current`");
    assert!(
        !w.root().join("ledger.json").exists(),
        "A wrote the ledger after losing the lease"
    );
    assert!(
        lease_record(&w).is_some_and(|l| l["token"].as_u64() == Some(a_token + 1)),
        "A released B's lease"
    );

    b.signal("-CONT");
    let ob = b.finish("the apply that took over");
    w.record(&ob);
    eprintln!("faults_apply: apply B:\n{}", text(&ob));
    assert_eq!(code(&ob), 0, "B\n{}", text(&ob));
    assert!(
        String::from_utf8_lossy(&ob.stderr).contains("took over an expired lease held by root@"),
        "{}",
        text(&ob)
    );
    assert_eq!(w.current(), 2);
    assert_eq!(w.link("active"), 2);
    w.fetch_ca();
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v2");
    w.assert_hostile_secret_intact("after the takeover");
    // Append-only: B's release 2 recorded once, A's release 1 never.
    let ledger = w.ledger();
    let recorded = support::ledger::outcomes(&ledger);
    assert_eq!(recorded, [(2, "deployed".to_owned())]);
    assert_eq!(ledger["current"], 2);
    lease_released(&w);
    w.assert_no_leaks();
    eprintln!(
        "faults_apply: lease takeover case done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
