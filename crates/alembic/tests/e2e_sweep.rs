//! What a killed E2E run leaves behind is removed by the next run, and only that
//! (`alembic_testkit::sweep`, called before the first world of every test process): with two
//! fake runs — one whose owner process is gone, one whose owner is alive, as another engineer's
//! tests running at the same time would be — the sweep removes the dead run's labelled image
//! and container, its compose project's network and volume, its recorded helper process and its
//! temp dir and record, and leaves every resource of the live run alone.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use alembic_testkit::sweep::{self, Record};

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn exists(kind: &str, name: &str) -> bool {
    Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn owner_of(c: &Child) -> String {
    format!("{}:{}", c.id(), sweep::process_start(c.id()).unwrap())
}

/// One fake run owned by `owner`: a labelled image and a container from it, a network and a
/// volume of its compose project, a temp dir and a recorded helper process.
struct Fake {
    record: Record,
    image: String,
    container: String,
    project: String,
    dir: std::path::PathBuf,
    helper: Child,
}

fn fake(tag: &str, owner: &str) -> Fake {
    let pid = std::process::id();
    let mut record = Record::owned_by(tag, owner);
    let project = format!("sweep{tag}{pid}");
    let image = format!("alembic-e2e/sweep:{tag}{pid}");
    record.add("project", &project);
    record.add("image", &image);
    // The image: one empty file, labelled with the run and the owner.
    let mut import = Command::new("docker")
        .args(["import"])
        .args([
            "--change".to_owned(),
            format!("LABEL {}={}", sweep::LABEL, record.run_id),
            "--change".to_owned(),
            format!("LABEL {}={owner}", sweep::OWNER_LABEL),
        ])
        .args(["-", &image])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let tar = Command::new("tar")
        .args(["-c", "-f", "-", "--files-from", "/dev/null"])
        .output()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success());
    let container = docker(&["create", "--name", &format!("{project}-x"), &image, "/x"]);
    let compose = format!("com.docker.compose.project={project}");
    docker(&[
        "network",
        "create",
        "--label",
        &compose,
        &format!("{project}_default"),
    ]);
    docker(&[
        "volume",
        "create",
        "--label",
        &compose,
        &format!("{project}_data"),
    ]);
    let dir = tempfile::Builder::new()
        .prefix("alembic-e2e-")
        .tempdir()
        .unwrap()
        .keep();
    record.add("dir", &dir.display().to_string());
    let helper = sleeper();
    record.add("process", &owner_of(&helper));
    Fake {
        record,
        image,
        container,
        project,
        dir,
        helper,
    }
}

/// Removes both fakes' resources whatever happened (the live one is never swept).
struct Guard(Vec<(String, String, String)>);

impl Drop for Guard {
    fn drop(&mut self) {
        for (project, image, container) in &self.0 {
            let _ = Command::new("docker")
                .args(["rm", "-f", container])
                .output();
            sweep::remove_compose_project(project);
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

#[test]
fn a_dead_runs_leftovers_are_swept_and_a_live_runs_are_kept() {
    let Some(_docker) = alembic_testkit::tool("docker") else {
        return;
    };
    let mut dead_owner = sleeper();
    let mut live_owner = sleeper();
    let owner = owner_of(&dead_owner);
    let mut dead = fake("dead", &owner);
    let mut live = fake("live", &owner_of(&live_owner));
    let _guard = Guard(
        [&dead, &live]
            .iter()
            .map(|f| (f.project.clone(), f.image.clone(), f.container.clone()))
            .collect(),
    );
    // The dead run's owner is killed, as a CI timeout would.
    dead_owner.kill().unwrap();
    dead_owner.wait().unwrap();
    assert!(!sweep::owner_alive(&owner));

    let done = sweep::sweep_stale();
    eprintln!("swept: {done:?}");

    // Everything of the dead run is gone.
    assert!(!exists("container", &dead.container), "dead container kept");
    assert!(!exists("image", &dead.image), "dead image kept");
    assert!(
        !exists("network", &format!("{}_default", dead.project)),
        "dead network kept"
    );
    assert!(
        !exists("volume", &format!("{}_data", dead.project)),
        "dead volume kept"
    );
    assert!(!dead.dir.exists(), "dead temp dir kept");
    let status = dead.helper.wait().unwrap();
    assert!(
        !status.success(),
        "the dead run's helper was killed: {status}"
    );
    assert!(
        !std::fs::read_dir(sweep::registry_dir())
            .unwrap()
            .flatten()
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with(&dead.record.run_id)),
        "the dead run's record was kept"
    );

    // Nothing of the live run was touched.
    assert!(
        exists("container", &live.container),
        "live container removed"
    );
    assert!(exists("image", &live.image), "live image removed");
    assert!(exists("network", &format!("{}_default", live.project)));
    assert!(exists("volume", &format!("{}_data", live.project)));
    assert!(live.dir.is_dir(), "live temp dir removed");
    assert!(
        live.helper.try_wait().unwrap().is_none(),
        "live helper killed"
    );

    // Clean up the live one (its owner "finishes").
    let _ = live.helper.kill();
    let _ = live.helper.wait();
    let _ = live_owner.kill();
    let _ = live_owner.wait();
    let _ = std::fs::remove_dir_all(&live.dir);
    live.record.remove();
}
