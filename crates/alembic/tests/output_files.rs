//! Output paths named on the command line: `plan --out` onto a character device, a FIFO, `-`
//! (standard output); `render --out` and `init --dir` onto something that is not a directory.
//! A device or a FIFO is written through, never replaced by a regular file.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod support;

use support::template::deployable;

const BIN: &str = env!("CARGO_BIN_EXE_alembic");

/// A temp project with the default topology, its template placeholders replaced (`plan`
/// refuses them, CFG007); `plan --plane ci` plans it offline.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alembic.toml"),
        deployable(alembic_config::DEFAULT_TOML),
    )
    .unwrap();
    dir
}

fn plan_to(dir: &Path, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("ALEMBIC_CONFIG")
        .args(["plan", "--plane", "ci", "--out"])
        .arg(out);
    c
}

/// An empty directory to mount a tmpfs on inside a private mount namespace (the mount dies
/// with the namespace, so nothing is left mounted on the machine even when a test fails).
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alembic-out-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// Red-team repro: `plan --out /dev/null` replaced the device with a regular file (an atomic
// rename over it). Shown here on a null device made with mknod on a tmpfs inside a private
// mount namespace: the machine's own /dev/null is never touched.
#[test]
fn plan_out_onto_a_null_device_writes_through_and_keeps_the_device() {
    let dir = project();
    let mnt = scratch("null");
    let script = r#"set -eu
mount -t tmpfs -o size=1m,mode=0755 tmpfs "$1"
mknod -m 0666 "$1/null" c 1 3
set +e
"$2" plan --plane ci --out "$1/null" >/dev/null 2>"$1/stderr"
rc=$?
set -e
echo "rc=$rc type=$(stat -c %F "$1/null") size=$(stat -c %s "$1/null")"
ls -A "$1"
cat "$1/stderr" >&2
"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&mnt)
        .arg(BIN)
        .current_dir(dir.path())
        .env_remove("ALEMBIC_CONFIG")
        .output();
    let out = match out {
        Ok(o) if !String::from_utf8_lossy(&o.stdout).is_empty() => o,
        other => {
            let msg = format!("unshare -m / mount / mknod are not permitted here: {other:?}");
            assert!(
                !alembic_testkit::tools_required(),
                "{msg}; ALEMBIC_REQUIRE_TOOLS=1"
            );
            alembic_testkit::report_skip(&format!("SKIPPED {}: {msg}", file!()));
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("rc=0 type=character special file size=0\n"),
        "{stdout}{stderr}"
    );
    // No temp file left next to the device either.
    let listing: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(listing, ["null", "stderr"], "{stdout}");
    // The namespace is gone with its mounts; the scratch dir outside is as it was (empty).
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
    let _ = std::fs::remove_dir(&mnt);
}

// `plan --out FIFO` used to replace the FIFO with a regular file (the reader never got the
// plan); it must write into the FIFO.
#[test]
fn plan_out_onto_a_fifo_writes_into_it() {
    let dir = project();
    let fifo = dir.path().join("plan.pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (tx, rx) = mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::read(&fifo));
        });
    }
    let out = plan_to(dir.path(), &fifo).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the reader got the plan through the FIFO")
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(v["format_version"], 1);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

// `--out -` used to create a file named `-`; it is standard output.
#[test]
fn plan_out_dash_is_stdout() {
    let dir = project();
    let out = plan_to(dir.path(), Path::new("-"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("-").exists(), "no file named -");
    let mut docs =
        serde_json::Deserializer::from_slice(&out.stdout).into_iter::<serde_json::Value>();
    let first = docs.next().expect("a JSON plan on stdout").unwrap();
    assert_eq!(first["format_version"], 1);
    assert!(first["planes"].is_array(), "{first:#}");
}

// `render --out` is a directory: a file there is refused (usage, exit 2) and left alone.
#[test]
fn render_out_onto_a_file_is_refused() {
    let dir = project();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "keep").unwrap();
    for target in [file.as_path(), Path::new("-")] {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .env_remove("ALEMBIC_CONFIG")
            .args(["render", "--out"])
            .arg(target)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--out"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    assert!(!dir.path().join("infra").exists());
}
