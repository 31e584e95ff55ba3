//! Ownership of what E2E tests create outside their process (Docker containers, compose
//! projects, networks, volumes, images; temp dirs, tmpfs mounts, sshd processes), so that what a
//! killed run left behind is removed by the next one — and only that.
//!
//! A test's guard cleans up in `Drop`, which a SIGKILL (a CI timeout, an OOM kill, a Ctrl-C
//! of `cargo test` at the wrong moment) never runs. So every E2E resource is also:
//!
//! - labelled, where Docker takes labels: [`LABEL`]`=<run id>` and [`OWNER_LABEL`]`=<pid>:<start>`
//!   (images get them at `docker import --change LABEL ...`, and every container started from
//!   such an image inherits them);
//! - listed in a [`Record`] under [`registry_dir`], one file per run, written before the
//!   resource is created and removed after the guard cleaned up.
//!
//! [`sweep_stale`] (called once per test process before its first world is built) removes
//! what belongs to runs whose owner process is gone: the owner is `pid:start`, the pid and the
//! kernel's start time of the process (`/proc/<pid>/stat` field 22), so a reused pid is not
//! mistaken for the owner. Resources of live owners — other engineers' tests running at the
//! same time on this machine — and anything without the label or a record are never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Label naming the run that created a Docker resource (value: the run id).
pub const LABEL: &str = "alembic.test";
/// Label naming the process that owns a Docker resource (value: `pid:start`).
pub const OWNER_LABEL: &str = "alembic.test.owner";

/// The kernel's start time of `pid` (clock ticks since boot), or None if no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces): state is field 3,
    // starttime field 22, i.e. the 20th after the name.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process as an owner: `pid:start`.
pub fn this_owner() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", process_start(pid).unwrap_or(0))
}

/// True while the process named by `owner` (`pid:start`) is still running. An unparsable owner
/// counts as alive: never remove what cannot be attributed.
pub fn owner_alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once(':') else {
        return true;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return true;
    };
    process_start(pid) == Some(start)
}

/// Where run records live: shared by every test process on this machine.
pub fn registry_dir() -> PathBuf {
    std::env::temp_dir().join("alembic-test-owners")
}

/// One run's list of what it created, on disk, kept current as resources are added.
///
/// Lines are `kind<TAB>value`; kinds: `owner`, `project` (a compose project: its containers,
/// networks and volumes, found by compose's own project label), `image`, `repo` (every tag of
/// an image repository), `volume`, `dir`, `mount`, `process` (`pid:start`).
pub struct Record {
    path: PathBuf,
    /// The run id, also the value of [`LABEL`] on the run's Docker resources.
    pub run_id: String,
    lines: Vec<(String, String)>,
}

impl Record {
    /// A new record for a run of this process whose id starts with `prefix`.
    pub fn new(prefix: &str) -> Record {
        Record::owned_by(prefix, &this_owner())
    }

    /// A new record for a run owned by `owner` (`pid:start`; tests of the sweep itself).
    pub fn owned_by(prefix: &str, owner: &str) -> Record {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let run_id = format!("{prefix}-{}-{nanos:09}", std::process::id());
        let dir = registry_dir();
        let _ = std::fs::create_dir_all(&dir);
        let mut r = Record {
            path: dir.join(format!("{run_id}.run")),
            run_id,
            lines: Vec::new(),
        };
        r.add("owner", owner);
        r
    }

    /// Note a resource (before creating it, so a kill in between still leaves it attributed).
    pub fn add(&mut self, kind: &str, value: &str) {
        self.lines.push((kind.to_owned(), value.to_owned()));
        let text: String = self
            .lines
            .iter()
            .map(|(k, v)| format!("{k}\t{v}\n"))
            .collect();
        // Written whole to a temp name, then renamed: a sweeper never reads half a record.
        let tmp = self.path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }

    /// `docker import`/`build` arguments labelling an image as this run's.
    pub fn image_labels(&self) -> [String; 4] {
        [
            "--change".into(),
            format!("LABEL {LABEL}={}", self.run_id),
            "--change".into(),
            format!("LABEL {OWNER_LABEL}={}", this_owner()),
        ]
    }

    /// Forget the record (the guard has cleaned up).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn docker(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Remove one compose project's containers (with their anonymous volumes), networks and
/// volumes, found by compose's project label.
pub fn remove_compose_project(project: &str) {
    let label = format!("label=com.docker.compose.project={project}");
    let containers = docker(&["ps", "-a", "-q", "--filter", &label]);
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        docker(&args);
    }
    for (list, rm) in [
        (["network", "ls"], &["network", "rm"][..]),
        (["volume", "ls"], &["volume", "rm", "-f"][..]),
    ] {
        let found = docker(&[list[0], list[1], "-q", "--filter", &label]);
        if !found.is_empty() {
            let mut args = rm.to_vec();
            args.extend(found.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// Unmount `dir` (lazily if still busy).
pub fn unmount(dir: &Path) {
    let plain = Command::new("umount").arg(dir).output();
    if !plain.is_ok_and(|o| o.status.success()) {
        let _ = Command::new("umount").arg("-l").arg(dir).output();
    }
}

/// Remove what the record at `path` lists, if its owner is gone. Returns what was removed.
fn sweep_record(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    let Some((_, owner)) = lines.iter().find(|(k, _)| *k == "owner") else {
        return Vec::new();
    };
    if owner_alive(owner) {
        return Vec::new();
    }
    let mut done = Vec::new();
    let of = |kind: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| *v)
            .collect()
    };
    for p in of("process") {
        // Only the very process recorded: same pid and same start time.
        if let Some((pid, _)) = p.split_once(':') {
            if owner_alive(p) {
                let _ = Command::new("kill").args(["-9", pid]).output();
                done.push(format!("process {pid}"));
            }
        }
    }
    for project in of("project") {
        remove_compose_project(project);
        done.push(format!("compose project {project}"));
    }
    for v in of("volume") {
        docker(&["volume", "rm", "-f", v]);
        done.push(format!("volume {v}"));
    }
    for i in of("image") {
        docker(&["rmi", "-f", i]);
        done.push(format!("image {i}"));
    }
    for repo in of("repo") {
        let tags = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", repo]);
        for t in &tags {
            docker(&["rmi", "-f", t]);
        }
        done.push(format!("image repository {repo} ({} tags)", tags.len()));
    }
    for m in of("mount").into_iter().rev() {
        unmount(Path::new(m));
        done.push(format!("mount {m}"));
    }
    for d in of("dir") {
        let d = Path::new(d);
        // Only a temp dir of ours: under the temp dir, named by the E2E prefix.
        let ours = d.starts_with(std::env::temp_dir())
            && d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("alembic-e2e-"));
        if ours && d.is_dir() {
            let _ = std::fs::remove_dir_all(d);
            done.push(format!("dir {}", d.display()));
        }
    }
    let _ = std::fs::remove_file(path);
    done
}

/// Remove every labelled container, image, network and volume whose [`OWNER_LABEL`] names a
/// process that is gone, then everything listed by records of gone owners. Returns what was
/// removed (for the test's log). Safe to run while other test processes run: what a live
/// process owns is left alone.
pub fn sweep_stale() -> Vec<String> {
    let mut done = Vec::new();
    if crate::which("docker").is_some() {
        let filter = format!("label={OWNER_LABEL}");
        let fmt = format!("{{{{.ID}}}} {{{{index .Config.Labels \"{OWNER_LABEL}\"}}}}");
        let dead = |kind: &str, ids: Vec<String>| -> Vec<String> {
            if ids.is_empty() {
                return Vec::new();
            }
            let mut args = vec![kind, "inspect", "--format", fmt.as_str()];
            args.extend(ids.iter().map(String::as_str));
            docker(&args)
                .into_iter()
                .filter_map(|l| {
                    let (id, owner) = l.split_once(' ')?;
                    (!owner_alive(owner)).then(|| id.to_owned())
                })
                .collect()
        };
        let containers = dead(
            "container",
            docker(&["ps", "-a", "-q", "--filter", &filter]),
        );
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(containers.iter().map(String::as_str));
            docker(&args);
            done.extend(containers.iter().map(|c| format!("container {c}")));
        }
        let images = dead(
            "image",
            docker(&["image", "ls", "-q", "--no-trunc", "--filter", &filter]),
        );
        for i in images {
            docker(&["rmi", "-f", &i]);
            done.push(format!("image {i}"));
        }
    }
    let mut records: Vec<PathBuf> = std::fs::read_dir(registry_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "run"))
        .collect();
    records.sort();
    for r in records {
        done.extend(sweep_record(&r));
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_owner_is_not() {
        assert!(owner_alive(&this_owner()));
        let pid = std::process::id();
        let start = process_start(pid).unwrap();
        // Same pid, another start time: a reused pid is not the owner.
        assert!(!owner_alive(&format!("{pid}:{}", start + 1)));
        // An unparsable owner is never swept.
        assert!(owner_alive("garbage"));
    }

    #[test]
    fn a_record_of_a_dead_owner_is_swept_and_a_live_ones_kept() {
        let tmp =
            std::env::temp_dir().join(format!("alembic-e2e-sweep-unit-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let mut live = Record::new("unit-live");
        live.add("dir", &tmp.display().to_string());
        assert!(sweep_record(&live.path).is_empty(), "a live owner's record");
        assert!(tmp.is_dir());
        // The same record with an owner that is gone (a start time no process has).
        let pid = std::process::id();
        let dead = live.path.with_file_name("unit-dead.run");
        std::fs::write(
            &dead,
            format!("owner\t{pid}:{}\ndir\t{}\n", u64::MAX, tmp.display()),
        )
        .unwrap();
        let done = sweep_record(&dead);
        assert_eq!(done, [format!("dir {}", tmp.display())]);
        assert!(!tmp.exists() && !dead.exists());
        live.remove();
        assert!(!live.path.exists());
    }
}
