//! The host plane: install rendered launchd agents (`os = "macos"`) or systemd user units
//! (`os = "linux"`) for the operator's own account, plus the secrets launcher and its mode-0600
//! secrets file, then (re)load them with `launchctl` or `systemctl --user`.
//!
//! Everything is an [`Op`]. The home directory and uid come from a [`HostEnv`] so a dry run's
//! transcript is exact and testable on any machine. Files are written by a tiny `sh` writer fed
//! on stdin (temp file under `umask 077`, `chmod`, `mv` into place) so the transcript shows every
//! write and the secrets file never exists with a wider mode, not even for an instant. Secret
//! values reach that writer only through [`Stdin::EnvFile`]: names in the op, values in the pipe.

use std::fmt;
use std::path::{Path, PathBuf};

use alembic_config::{HostOs, Plane, Topology};
use alembic_render::{ArtifactKind, ArtifactSet};

use crate::exec::{ExecError, Executor, Goal, Output};
use crate::ops::{Op, Stdin};

pub const PLANE: &str = "host";

/// Rendered launcher script (see `alembic_render::launcher`).
pub const LAUNCHER_ARTIFACT: &str = alembic_render::launcher::PATH;
/// Where the launcher is installed, relative to `$HOME`; plists and units exec it from there.
pub const LAUNCHER_IN_HOME: &str = alembic_render::launcher::INSTALL_PATH_IN_HOME;
/// The secrets file the launcher reads, relative to `$HOME`.
pub const SECRETS_FILE_IN_HOME: &str = ".config/alembic/secrets.env";

/// `$1` = target path, `$2` = octal mode; content on stdin. `umask 077` makes the temp file
/// private from its creation; `mv` within one directory is atomic.
const WRITER: &str =
    "set -eu; umask 077; t=\"$1.alembic-tmp\"; cat > \"$t\"; chmod \"$2\" \"$t\"; mv -f \"$t\" \"$1\"";

/// Who and where the host plane is applied for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEnv {
    pub home: PathBuf,
    pub uid: u32,
    /// Running under CI (`CI=true` or `GITHUB_ACTIONS=true`): applying is refused.
    pub ci: bool,
}

impl HostEnv {
    /// The applying user's environment: `$HOME`, `id -u`, and the CI markers.
    pub fn from_process() -> Result<HostEnv, HostError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(HostError::NoHome)?;
        let out = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| HostError::NoUid(e.to_string()))?;
        let uid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| HostError::NoUid(e.to_string()))?;
        Ok(HostEnv {
            home,
            uid,
            ci: crate::secrets::Context::from_env(&|n| std::env::var(n).ok()).is_ci(),
        })
    }

    fn in_home(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }
}

#[derive(Debug)]
pub enum HostError {
    NoHome,
    NoUid(String),
    /// The host plane is the operator's machine; a CI runner is not it.
    InCi,
    /// A rendered plist could not be read back (it is our own artifact, so this is a bug).
    BadPlist {
        path: String,
        error: String,
    },
    Exec(ExecError),
    Failed {
        step: String,
        command: String,
        status: i32,
        stderr: String,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NoHome => write!(f, "HOME is not set: cannot locate the host plane's files"),
            HostError::NoUid(e) => write!(f, "cannot find the current uid (`id -u`): {e}"),
            HostError::InCi => write!(
                f,
                "refusing to apply the host plane from CI (CI or GITHUB_ACTIONS is set): the host \
                 plane is the operator's own machine; run `alembic apply --plane host --yes` there"
            ),
            HostError::BadPlist { path, error } => write!(f, "cannot read {path}: {error}"),
            HostError::Exec(e) => write!(f, "{e}"),
            HostError::Failed {
                step,
                command,
                status,
                stderr,
            } => write!(
                f,
                "{step} failed (exit {status}): {command}: {}",
                stderr.trim()
            ),
        }
    }
}

impl std::error::Error for HostError {}

impl From<ExecError> for HostError {
    fn from(e: ExecError) -> Self {
        HostError::Exec(e)
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// An op that writes `bytes` (or an env file) to `target` with `mode`.
fn write_op(step: String, target: &Path, mode: u32, stdin: Stdin) -> Op {
    Op::new(
        PLANE,
        step,
        "sh",
        vec![
            "-c".into(),
            WRITER.into(),
            "alembic-install".into(),
            s(target),
            format!("{mode:o}"),
        ],
    )
    .with_stdin(stdin)
}

/// Secret names the host workloads declare, sorted and deduplicated.
pub fn host_secret_names(t: &Topology) -> Vec<String> {
    let mut names: Vec<String> = t
        .on_plane(Plane::Host)
        .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Host workload names with dependencies first (stable: file order otherwise), so an agent or
/// unit is (re)started after the ones it `depends_on`.
pub fn start_order(t: &Topology) -> Vec<String> {
    fn visit(t: &Topology, name: &str, seen: &mut Vec<String>, out: &mut Vec<String>) {
        if seen.iter().any(|s| s == name) {
            return;
        }
        seen.push(name.to_owned());
        if let Some(w) = t.workload(name).filter(|w| w.plane == Plane::Host) {
            for d in &w.depends_on {
                visit(t, d.as_str(), seen, out);
            }
            out.push(name.to_owned());
        }
    }
    let (mut seen, mut out) = (Vec::new(), Vec::new());
    for w in t.on_plane(Plane::Host) {
        visit(t, w.name.as_str(), &mut seen, &mut out);
    }
    out
}

/// Position of the workload a unit/agent belongs to in [`start_order`] (unknown ones last).
fn rank(
    t: &Topology,
    order: &[String],
    matches: impl Fn(&alembic_config::Workload) -> bool,
) -> usize {
    order
        .iter()
        .position(|n| t.workload(n).is_some_and(&matches))
        .unwrap_or(usize::MAX)
}

/// A launchd agent as the installer needs it: label, and whether it is a daemon (started at
/// load and kept alive) or a calendar job.
struct Agent {
    file_name: String,
    label: String,
    daemon: bool,
}

fn read_agent(path: &str, bytes: &[u8]) -> Result<Agent, HostError> {
    let bad = |error: String| HostError::BadPlist {
        path: path.to_owned(),
        error,
    };
    let v = plist::Value::from_reader_xml(bytes).map_err(|e| bad(e.to_string()))?;
    let d = v
        .as_dictionary()
        .ok_or_else(|| bad("not a dictionary".into()))?;
    let label = d
        .get("Label")
        .and_then(plist::Value::as_string)
        .ok_or_else(|| bad("no Label".into()))?
        .to_owned();
    let file_name = path.rsplit('/').next().unwrap_or(path).to_owned();
    Ok(Agent {
        file_name,
        label,
        daemon: !d.contains_key("StartCalendarInterval"),
    })
}

/// Every op that installs and (re)loads the host plane, in order. Pure: builds ops only.
pub fn install_ops(t: &Topology, set: &ArtifactSet, env: &HostEnv) -> Result<Vec<Op>, HostError> {
    let mut ops = Vec::new();
    let launcher = set.get(LAUNCHER_ARTIFACT);
    let secrets = host_secret_names(t);
    let bin_dir = env.in_home(LAUNCHER_IN_HOME);
    let bin_dir = bin_dir.parent().expect("launcher path has a directory");
    let unit_dir = match t.host.os {
        HostOs::Macos => env.in_home("Library/LaunchAgents"),
        HostOs::Linux => env.in_home(".config/systemd/user"),
    };
    let units: Vec<&alembic_render::Artifact> = set
        .iter()
        .filter(|a| match t.host.os {
            HostOs::Macos => a.kind == ArtifactKind::LaunchdPlist,
            HostOs::Linux => a.kind == ArtifactKind::SystemdUnit,
        })
        .collect();
    if units.is_empty() && launcher.is_none() {
        return Ok(ops);
    }
    ops.push(Op::new(
        PLANE,
        "create directories",
        "mkdir",
        vec!["-p".into(), s(&unit_dir), s(bin_dir)],
    ));
    if let Some(l) = launcher {
        ops.push(write_op(
            "install launcher".into(),
            &env.in_home(LAUNCHER_IN_HOME),
            0o755,
            Stdin::Bytes {
                data: l.bytes.clone(),
            },
        ));
    }
    if !secrets.is_empty() {
        ops.push(write_op(
            "write host secrets file".into(),
            &env.in_home(SECRETS_FILE_IN_HOME),
            0o600,
            Stdin::EnvFile { names: secrets },
        ));
    }
    match t.host.os {
        HostOs::Macos => macos_ops(t, &mut ops, &units, &unit_dir, env)?,
        HostOs::Linux => linux_ops(t, &mut ops, &units, &unit_dir),
    }
    Ok(ops)
}

fn macos_ops(
    t: &Topology,
    ops: &mut Vec<Op>,
    units: &[&alembic_render::Artifact],
    dir: &Path,
    env: &HostEnv,
) -> Result<(), HostError> {
    let domain = format!("gui/{}", env.uid);
    let mut agents = units
        .iter()
        .map(|a| read_agent(&a.path, &a.bytes).map(|ag| (ag, *a)))
        .collect::<Result<Vec<_>, _>>()?;
    let order = start_order(t);
    agents.sort_by_key(|(ag, _)| {
        rank(t, &order, |w| {
            alembic_render::launchd::label(t, w) == ag.label
        })
    });
    for (ag, a) in &agents {
        ops.push(write_op(
            format!("install {}", ag.file_name),
            &dir.join(&ag.file_name),
            0o644,
            Stdin::Bytes {
                data: a.bytes.clone(),
            },
        ));
    }
    for (ag, _) in &agents {
        let target = format!("{domain}/{}", ag.label);
        let plist = s(&dir.join(&ag.file_name));
        let launchctl = |step: &str, args: Vec<String>| {
            Op::new(PLANE, format!("{step} {}", ag.label), "launchctl", args)
        };
        // bootout first: bootstrap refuses a label that is already loaded, and this is how
        // a changed plist takes effect. "Not loaded" is expected on a first install.
        ops.push(launchctl("unload", vec!["bootout".into(), target.clone()]));
        ops.push(launchctl(
            "load",
            vec!["bootstrap".into(), domain.clone(), plist],
        ));
        if ag.daemon {
            // -k: restart a running instance so a new launcher or secrets file is picked up.
            ops.push(launchctl(
                "start",
                vec!["kickstart".into(), "-k".into(), target.clone()],
            ));
        }
        ops.push(launchctl("verify", vec!["print".into(), target]).read_only());
    }
    Ok(())
}

fn linux_ops(t: &Topology, ops: &mut Vec<Op>, units: &[&alembic_render::Artifact], dir: &Path) {
    let order = start_order(t);
    let mut units: Vec<(String, &alembic_render::Artifact)> = units
        .iter()
        .map(|a| (a.path.rsplit('/').next().unwrap_or(&a.path).to_owned(), *a))
        .collect();
    units.sort_by_key(|(name, _)| {
        let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
        (
            rank(t, &order, |w| alembic_render::systemd::unit_name(w) == stem),
            name.clone(),
        )
    });
    let (names, units): (Vec<String>, Vec<&alembic_render::Artifact>) = units.into_iter().unzip();
    for (name, a) in names.iter().zip(units) {
        ops.push(write_op(
            format!("install {name}"),
            &dir.join(name),
            0o644,
            Stdin::Bytes {
                data: a.bytes.clone(),
            },
        ));
    }
    let systemctl = |step: String, args: &[&str]| {
        let mut argv = vec!["--user".to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        Op::new(PLANE, step, "systemctl", argv)
    };
    ops.push(systemctl("reload unit files".into(), &["daemon-reload"]));
    // A service with a timer is started by its timer; enabling the timer is what schedules it.
    let timers: Vec<&String> = names.iter().filter(|n| n.ends_with(".timer")).collect();
    let daemons: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.strip_suffix(".service")
                .is_some_and(|stem| !timers.iter().any(|t| **t == format!("{stem}.timer")))
        })
        .collect();
    for u in daemons.iter().chain(&timers) {
        ops.push(systemctl(format!("enable {u}"), &["enable", "--now", u]));
    }
    // `enable --now` leaves an already-running service on its old unit, launcher and secrets.
    for u in &daemons {
        ops.push(systemctl(format!("restart {u}"), &["restart", u]));
    }
    for u in daemons.iter().chain(&timers) {
        ops.push(systemctl(format!("verify {u}"), &["is-active", u]).read_only());
    }
}

/// `launchctl bootout` of a label that is not loaded fails with "No such process" (3) or
/// "Could not find specified service" (113): expected on a first install.
fn tolerated(op: &Op, out: &Output) -> bool {
    op.program == "launchctl"
        && op.args.first().is_some_and(|a| a == "bootout")
        && (matches!(out.status, 3 | 113)
            || ["No such process", "Could not find", "not loaded"]
                .iter()
                .any(|m| out.stderr_text().contains(m)))
}

/// Run host ops in order, stopping at the first failure (tolerating a "not loaded" bootout).
/// Refuses to apply from CI; a dry run only records.
pub fn run_ops(ex: &mut Executor<'_>, ops: &[Op], env: &HostEnv) -> Result<(), HostError> {
    if env.ci && ex.goal == Goal::Apply {
        return Err(HostError::InCi);
    }
    for op in ops {
        let out = ex.run(op)?;
        if !out.success() && !tolerated(op, &out) {
            return Err(HostError::Failed {
                step: op.step.clone(),
                command: op.command_line(),
                status: out.status,
                stderr: out.stderr_text(),
            });
        }
    }
    Ok(())
}

/// Build and run the host plane: what `alembic apply --plane host` does.
pub fn apply(
    ex: &mut Executor<'_>,
    t: &Topology,
    set: &ArtifactSet,
    env: &HostEnv,
) -> Result<(), HostError> {
    if env.ci && ex.goal == Goal::Apply {
        return Err(HostError::InCi);
    }
    let ops = install_ops(t, set, env)?;
    run_ops(ex, &ops, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> HostEnv {
        HostEnv {
            home: "/Users/alice".into(),
            uid: 501,
            ci: false,
        }
    }

    #[test]
    fn tolerates_only_not_loaded_bootouts() {
        let bootout = Op::new(
            PLANE,
            "x",
            "launchctl",
            vec!["bootout".into(), "gui/1/a".into()],
        );
        let not_loaded = Output {
            status: 3,
            stdout: vec![],
            stderr: b"Boot-out failed: 3: No such process\n".to_vec(),
        };
        assert!(tolerated(&bootout, &not_loaded));
        let denied = Output {
            status: 1,
            stdout: vec![],
            stderr: b"Operation not permitted".to_vec(),
        };
        assert!(!tolerated(&bootout, &denied));
        let bootstrap = Op::new(PLANE, "x", "launchctl", vec!["bootstrap".into()]);
        assert!(!tolerated(&bootstrap, &not_loaded));
    }

    #[test]
    fn applying_from_ci_is_refused_but_a_dry_run_is_not() {
        struct NoSecrets;
        impl crate::exec::SecretSource for NoSecrets {
            fn get(&self, _: &str) -> Option<String> {
                None
            }
        }
        let t = alembic_config::default_topology();
        let set = alembic_render::render(&t);
        let env = HostEnv {
            ci: true,
            ..alice()
        };
        let mut ex = Executor::new(Goal::Apply, &NoSecrets);
        let err = apply(&mut ex, &t, &set, &env).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("refusing to apply the host plane from CI"));
        assert!(ex.transcript.is_empty(), "nothing ran");
        let mut dry = Executor::new(Goal::DryRun, &NoSecrets);
        apply(&mut dry, &t, &set, &env).unwrap();
    }
}
