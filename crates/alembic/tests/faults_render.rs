//! Faults in `alembic render`: the process SIGKILLed at many points while it replaces one
//! artifact set with another, and a disk that fills up mid-render.
//!
//! The promise checked: after a kill, the files on disk are exactly the old set or exactly the
//! new set (compared byte for byte, and through `infra/MANIFEST.json`'s sha256s); a kill after
//! the journal's commit point leaves the journal, and recovery (the next `alembic render`, or
//! `recover` directly) rolls it forward to the new set. Never a mix once recovery has run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alembic_deploy::facade::{recover_artifacts, Recovery, JOURNAL, PROBE, STAGING};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_alembic");

/// Old set: the default topology (macOS: launchd plists). New set: the same on Linux (systemd
/// units, so launchd files must be *removed*) with a changed image tag, so a render both
/// writes, replaces and removes files. Extra host daemons widen the window between renames.
fn configs() -> (String, String) {
    let mut extra = String::new();
    for i in 0..120 {
        extra.push_str(&format!(
            "\n[[workload]]\nname = \"daemon-{i}\"\nplane = \"host\"\ncommand = [\"/usr/local/bin/d\", \"{i}\"]\nport = {}\n",
            30000 + i
        ));
    }
    let old = format!("{}{extra}", alembic_config::DEFAULT_TOML);
    let new = old
        .replace("os = \"macos\"", "os = \"linux\"")
        .replace("council-api:1.4.2", "council-api:1.5.0");
    assert_ne!(old, new);
    (old, new)
}

/// The files a config renders to, path -> bytes.
fn expected(text: &str) -> BTreeMap<String, Vec<u8>> {
    let t = alembic_config::load_str("alembic.toml", text)
        .topology
        .expect("fault-test config is valid");
    alembic_render::render(&t)
        .iter()
        .map(|a| (a.path.clone(), a.bytes.clone()))
        .collect()
}

/// Every regular file under `root` except the render's own bookkeeping, path -> bytes.
fn on_disk(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            // The render's bookkeeping: staging, journal, and the empty writability probe a
            // kill can leave for an instant (the next render replaces and removes it).
            if rel == STAGING || rel == JOURNAL || rel.starts_with(&format!("{JOURNAL}.")) {
                continue;
            }
            if p.file_name().is_some_and(|n| n == PROBE) {
                assert_eq!(std::fs::metadata(&p).unwrap().len(), 0, "{rel}");
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).expect("read artifact"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The manifest on disk must list exactly the other files, each with its sha256: every file
/// on disk is listed under its own path with its own hash, and the manifest lists nothing that
/// is not on disk.
fn manifest_consistent(files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let m = files
        .get("infra/MANIFEST.json")
        .ok_or("no infra/MANIFEST.json on disk")?;
    let m: serde_json::Value = serde_json::from_slice(m).map_err(|e| e.to_string())?;
    let entries = m["files"]
        .as_array()
        .ok_or("the manifest on disk has no `files` array")?;
    let mut listed = BTreeMap::new();
    for e in entries {
        let (Some(path), Some(sha)) = (e["path"].as_str(), e["sha256"].as_str()) else {
            return Err(format!("manifest entry without path or sha256: {e}"));
        };
        if listed.insert(path.to_owned(), sha.to_owned()).is_some() {
            return Err(format!("{path} is listed twice in the manifest"));
        }
    }
    for (path, bytes) in files {
        if path == "infra/MANIFEST.json" {
            continue;
        }
        let sha = format!("{:x}", Sha256::digest(bytes));
        match listed.remove(path) {
            Some(l) if l == sha => {}
            Some(l) => return Err(format!("{path}: sha256 {sha} on disk, {l} in the manifest")),
            None => return Err(format!("{path} is on disk but not in the manifest")),
        }
    }
    if let Some(path) = listed.keys().next() {
        return Err(format!(
            "the manifest lists {path}, which is not on disk ({} such)",
            listed.len()
        ));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Old,
    New,
}

fn classify(
    root: &Path,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
) -> Result<State, String> {
    let disk = on_disk(root);
    let state = if &disk == old {
        State::Old
    } else if &disk == new {
        State::New
    } else {
        let mixed: Vec<&String> = disk
            .keys()
            .chain(new.keys())
            .filter(|p| disk.get(*p) != old.get(*p) && disk.get(*p) != new.get(*p))
            .take(5)
            .collect();
        return Err(format!(
            "disk is neither the old nor the new set (e.g. {mixed:?})"
        ));
    };
    manifest_consistent(&disk)?;
    Ok(state)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alembic-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn render(config: &Path, out: &Path) -> std::process::Output {
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(["render", "--out"])
        .arg(out)
        .output()
        .expect("run alembic render")
}

/// xorshift, so kill delays vary without a rand dependency, reproducibly per seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Kills per test run: enough to land in every phase on a 2-core machine in well under a minute.
const RUNS: usize = 60;

#[test]
fn render_killed_at_random_points_leaves_old_or_new_set_and_recovers() {
    let dir = scratch("kill");
    let (old_text, new_text) = configs();
    let (old_cfg, new_cfg) = (dir.join("old.toml"), dir.join("new.toml"));
    std::fs::write(&old_cfg, &old_text).unwrap();
    std::fs::write(&new_cfg, &new_text).unwrap();
    let (old, new) = (expected(&old_text), expected(&new_text));
    let root = dir.join("out");

    // How long an uninterrupted render takes, to spread kills across its whole run.
    assert!(render(&old_cfg, &root).status.success());
    // The fastest of three (old -> new) renders: the machine may be busy with other work.
    let mut full = Duration::MAX;
    for _ in 0..3 {
        assert!(render(&old_cfg, &root).status.success());
        let t0 = Instant::now();
        assert!(render(&new_cfg, &root).status.success());
        full = full.min(t0.elapsed());
    }
    let full = full.max(Duration::from_millis(2));
    assert_eq!(classify(&root, &old, &new), Ok(State::New));

    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(std::process::id());
    let mut seen = BTreeMap::<&str, usize>::new();
    for i in 0..RUNS {
        // Back to the old set (this render also recovers whatever the last kill left).
        let back = render(&old_cfg, &root);
        assert!(
            back.status.success(),
            "{}",
            String::from_utf8_lossy(&back.stderr)
        );
        assert_eq!(classify(&root, &old, &new), Ok(State::Old), "iteration {i}");

        // Half the kills anywhere in the run, half in its last third, where the commit point
        // and the renames are (staging with its fsyncs takes most of the time before them).
        let span = full.as_micros() as u64;
        let r = next(&mut seed);
        let delay = Duration::from_micros(if i % 2 == 0 {
            r % (span * 11 / 10 + 1)
        } else {
            span * 2 / 3 + r % (span / 3 + 1)
        });
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(&new_cfg)
            .args(["render", "--out"])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn render");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().expect("reap render");

        let journal = root.join(JOURNAL).exists();
        let staging = root.join(STAGING).exists();
        let outcome = match (status.success(), journal, staging) {
            (true, _, _) => "finished",
            (false, true, _) => "killed after commit",
            (false, false, true) => "killed while staging",
            (false, false, false) => "killed before staging",
        };
        *seen.entry(outcome).or_default() += 1;
        if journal {
            // Past the commit point the new set is the truth: recovery must roll it forward.
            if i % 2 == 0 {
                assert!(matches!(
                    recover_artifacts(&root),
                    Ok(Recovery::RolledForward(_))
                ));
            } else {
                let again = render(&new_cfg, &root);
                assert!(again.status.success());
            }
            assert_eq!(classify(&root, &old, &new), Ok(State::New), "iteration {i}");
        } else {
            // Before the commit point (or after the journal was removed) disk is one whole set.
            let state = classify(&root, &old, &new);
            assert!(state.is_ok(), "iteration {i} ({outcome}): {state:?}");
            let _ = recover_artifacts(&root).expect("recover");
            assert_eq!(classify(&root, &old, &new), state, "iteration {i}");
        }
        assert!(!root.join(JOURNAL).exists() && !root.join(STAGING).exists());
    }
    eprintln!("kill outcomes over {RUNS} runs (full render {full:?}): {seen:?}");
    // A kill loop that never interrupts anything proves nothing.
    assert!(
        seen.iter().any(|(k, _)| k.starts_with("killed")),
        "no render was ever interrupted: {seen:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Unmounts the tmpfs even when an assertion fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_mid_render_exits_3_and_keeps_the_old_set() {
    let dir = scratch("enospc");
    let root = dir.join("tiny");
    std::fs::create_dir_all(&root).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=128k", "tmpfs"])
        .arg(&root)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        let msg = "mount -t tmpfs is not permitted here (needs root / CAP_SYS_ADMIN)";
        assert!(
            !alembic_testkit::tools_required(),
            "{msg}; ALEMBIC_REQUIRE_TOOLS=1 requires this test to run"
        );
        alembic_testkit::report_skip(&format!("SKIPPED {}: {msg}", file!()));
        return;
    }
    let _guard = Mount(root.clone());

    // The default set (with its staging copy) fits in 128 KiB; the default plus 400 host
    // daemons does not.
    let small = alembic_config::DEFAULT_TOML.to_owned();
    let mut big = small.clone();
    for i in 0..400 {
        big.push_str(&format!(
            "\n[[workload]]\nname = \"daemon-{i}\"\nplane = \"host\"\ncommand = [\"/usr/local/bin/d\", \"{i}\"]\nport = {}\n",
            20000 + i
        ));
    }
    let (small_cfg, big_cfg) = (dir.join("small.toml"), dir.join("big.toml"));
    std::fs::write(&small_cfg, &small).unwrap();
    std::fs::write(&big_cfg, &big).unwrap();
    let (old, new) = (expected(&small), expected(&big));
    let new_bytes: usize = new.values().map(Vec::len).sum();
    assert!(
        new_bytes > 128 * 1024,
        "the big set must not fit ({new_bytes} bytes)"
    );

    let first = render(&small_cfg, &root);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(classify(&root, &old, &new), Ok(State::Old));

    let full = render(&big_cfg, &root);
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(
        full.status.code(),
        Some(3),
        "disk full must be exit 3: {stderr}"
    );
    assert!(
        stderr.contains("No space left on device"),
        "the error should say why: {stderr}"
    );
    assert_eq!(classify(&root, &old, &new), Ok(State::Old));
    assert!(!root.join(JOURNAL).exists() && !root.join(STAGING).exists());

    // Room again (a re-render of the same small set) works and changes nothing.
    let again = render(&small_cfg, &root);
    assert!(again.status.success());
    assert_eq!(classify(&root, &old, &new), Ok(State::Old));
    drop(_guard);
    let _ = std::fs::remove_dir_all(&dir);
}
