//! The host plane: install rendered launchd agents (`os = "macos"`) or systemd user units
//! (`os = "linux"`) for the operator's own account, plus the project's secrets launcher and its
//! mode-0600 secrets file, then (re)load them with `launchctl` or `systemctl --user` and prove
//! each daemon with a port listens only on its declared address ([`listen`]).
//!
//! Everything is an [`Op`]. The home directory and uid come from a [`HostEnv`] so a dry run's
//! transcript is exact and testable on any machine. Files are written by a tiny `sh` writer fed
//! on stdin (temp file under `umask 077`, `chmod`, `mv` into place) so the transcript shows every
//! write. The secrets file is per project (`~/.config/alembic/<project>/secrets.env`, or
//! `$ALEMBIC_SECRETS_FILE`) and updated by merge ([`secrets_file`]): secret values reach the
//! merging process only through [`Stdin::EnvLinesIfSet`], names in the op, values in the pipe.

pub(crate) mod listen;
pub(crate) mod secrets_file;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alembic_config::{HostOs, Plane, Topology};
use alembic_render::{ArtifactKind, ArtifactSet};

use crate::exec::{ExecError, Executor, Goal, Output};
use crate::ops::{Op, Stdin};

use listen::{ListenCheck, PidSource, SocketTool};

pub(crate) const PLANE: crate::stage::Stage = crate::stage::Stage::Host;

/// Rendered launcher script (see `alembic_render::launcher`).
pub(crate) const LAUNCHER_ARTIFACT: &str = alembic_render::launcher::PATH;

/// Where the project's launcher is installed, relative to `$HOME`; plists and units exec it.
pub(crate) fn launcher_in_home(t: &Topology) -> String {
    alembic_render::launcher::install_path_in_home(t)
}

/// The project's secrets file the launcher reads, relative to `$HOME`.
pub(crate) fn secrets_file_in_home(t: &Topology) -> String {
    alembic_render::launcher::secrets_file_in_home(t)
}

/// How long host apply waits for a started daemon to listen on its declared address.
pub(crate) const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// `$1` = target path, `$2` = octal mode; content on stdin. `umask 077` makes the temp file
/// private from its creation; `mv` within one directory is atomic.
const WRITER: &str =
    "set -eu; umask 077; t=\"$1.alembic-tmp\"; cat > \"$t\"; chmod \"$2\" \"$t\"; mv -f \"$t\" \"$1\"";

/// Who and where the host plane is applied for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostEnv {
    pub home: PathBuf,
    pub uid: u32,
    /// Running under CI (`CI=true` or `GITHUB_ACTIONS=true`): applying is refused.
    pub ci: bool,
    /// `$ALEMBIC_SECRETS_FILE`: the secrets file to write instead of the project's default (the
    /// launcher reads the same variable, so the service manager must have it too).
    pub secrets_file: Option<PathBuf>,
    /// How long to wait for a daemon to listen ([`LISTEN_TIMEOUT`] unless a test says less).
    pub listen_timeout: Duration,
}

impl HostEnv {
    /// A user at `home` with `uid`, not in CI, the default secrets file and wait.
    #[cfg(test)]
    pub(crate) fn for_home(home: impl Into<PathBuf>, uid: u32) -> HostEnv {
        HostEnv {
            home: home.into(),
            uid,
            ci: false,
            secrets_file: None,
            listen_timeout: LISTEN_TIMEOUT,
        }
    }

    /// The applying user's environment: `$HOME`, `id -u` (run by the executor), the CI
    /// markers and `$ALEMBIC_SECRETS_FILE` (an absolute path), read through `var`.
    pub(crate) fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<HostEnv, HostError> {
        let home = var("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(HostError::NoHome)?;
        let uid = crate::exec::current_uid().map_err(HostError::NoUid)?;
        Ok(HostEnv {
            home,
            uid,
            ci: crate::secrets::Context::from_env(var).is_ci(),
            secrets_file: secrets_file_override(var("ALEMBIC_SECRETS_FILE").map(Into::into))?,
            listen_timeout: LISTEN_TIMEOUT,
        })
    }

    fn in_home(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }

    /// The secrets file host apply writes for `t`'s project.
    pub(crate) fn secrets_file(&self, t: &Topology) -> PathBuf {
        self.secrets_file
            .clone()
            .unwrap_or_else(|| self.in_home(&secrets_file_in_home(t)))
    }
}

/// `$ALEMBIC_SECRETS_FILE`: unset or empty is no override; a relative path is refused (it
/// would land wherever apply happens to run, and the launcher would not find it).
pub(crate) fn secrets_file_override(
    value: Option<std::ffi::OsString>,
) -> Result<Option<PathBuf>, HostError> {
    match value.filter(|v| !v.is_empty()) {
        Some(p) if Path::new(&p).is_absolute() => Ok(Some(PathBuf::from(p))),
        Some(p) => Err(HostError::RelativeSecretsFile(PathBuf::from(p))),
        None => Ok(None),
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

/// Host workload names with dependencies first (stable: file order otherwise), so an agent or
/// unit is (re)started after the ones it `depends_on`.
pub(crate) fn start_order(t: &Topology) -> Vec<String> {
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

/// One step of host apply: an op to run, the secrets merge (its report is read), or a listen
/// check (its ops are polled) with the op that stops the daemon when it is exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Run(Op),
    MergeSecrets { op: Op, file: PathBuf },
    Listen { check: ListenCheck, stop: Op },
}

impl Step {
    /// The ops this step shows in a plan (a listen check: one round of its polling).
    pub(crate) fn ops(&self) -> Vec<Op> {
        match self {
            Step::Run(op) | Step::MergeSecrets { op, .. } => vec![op.clone()],
            Step::Listen { check, .. } => check.ops(),
        }
    }
}

/// What host apply has to tell besides success: warnings that name secrets, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostReport {
    pub warnings: Vec<String>,
}

/// Every op that installs and (re)loads the host plane, in order, as a plan shows them. Pure.
#[cfg(test)]
pub(crate) fn install_ops(
    t: &Topology,
    set: &ArtifactSet,
    env: &HostEnv,
) -> Result<Vec<Op>, HostError> {
    Ok(install_steps(t, set, env)?
        .iter()
        .flat_map(Step::ops)
        .collect())
}

/// Every step of host apply, in order. Pure: builds steps only.
pub(crate) fn install_steps(
    t: &Topology,
    set: &ArtifactSet,
    env: &HostEnv,
) -> Result<Vec<Step>, HostError> {
    let mut ops = Vec::new();
    let launcher = set.get(LAUNCHER_ARTIFACT);
    let secrets = t.workload_secret_names(Plane::Host);
    let launcher_path = env.in_home(&launcher_in_home(t));
    let bin_dir = launcher_path
        .parent()
        .expect("launcher path has a directory");
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
        return Ok(Vec::new());
    }
    ops.push(Step::Run(Op::new(
        PLANE,
        "create directories",
        "mkdir",
        vec!["-p".into(), s(&unit_dir), s(bin_dir)],
    )));
    if let Some(l) = launcher {
        ops.push(Step::Run(write_op(
            "install launcher".into(),
            &launcher_path,
            0o755,
            Stdin::Bytes {
                data: l.bytes.clone(),
            },
        )));
    }
    if !secrets.is_empty() {
        let file = env.secrets_file(t);
        let merger = bin_dir.join(secrets_file::MERGER_NAME);
        ops.push(Step::Run(write_op(
            "install secrets merger".into(),
            &merger,
            0o755,
            Stdin::Bytes {
                data: secrets_file::MERGER.as_bytes().to_vec(),
            },
        )));
        ops.push(Step::MergeSecrets {
            op: secrets_file::merge_op(PLANE, &merger, &file, &secrets),
            file,
        });
    }
    let mut plain = Vec::new();
    match t.host.os {
        HostOs::Macos => macos_ops(t, &mut plain, &units, &unit_dir, env)?,
        HostOs::Linux => linux_ops(t, &mut plain, &units, &unit_dir),
    }
    ops.extend(plain.into_iter().map(Step::Run));
    ops.extend(listen_checks(t, env));
    Ok(ops)
}

/// A listen check for every daemon (no schedule) with a port, in start order.
fn listen_checks(t: &Topology, env: &HostEnv) -> Vec<Step> {
    start_order(t)
        .iter()
        .filter_map(|n| t.workload(n))
        .filter(|w| w.schedule.is_none())
        .filter_map(|w| {
            let (bind, port) = (w.bind?, w.port?);
            let (pid, tool, stop) = match t.host.os {
                HostOs::Linux => {
                    let unit = format!("{}.service", alembic_render::systemd::unit_name(t, w));
                    let stop = Op::new(
                        PLANE,
                        format!("stop {unit}"),
                        "systemctl",
                        vec!["--user".into(), "stop".into(), unit.clone()],
                    );
                    (PidSource::SystemdUnit(unit), SocketTool::Ss, stop)
                }
                HostOs::Macos => {
                    let label = alembic_render::launchd::label(t, w);
                    let target = format!("gui/{}/{label}", env.uid);
                    let stop = Op::new(
                        PLANE,
                        format!("unload {label}"),
                        "launchctl",
                        vec!["bootout".into(), target.clone()],
                    );
                    (PidSource::Launchd(target), SocketTool::Lsof, stop)
                }
            };
            Some(Step::Listen {
                check: ListenCheck {
                    workload: w.name.to_string(),
                    bind,
                    port: port.get(),
                    pid,
                    tool,
                },
                stop,
            })
        })
        .collect()
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
            rank(t, &order, |w| {
                alembic_render::systemd::unit_name(t, w) == stem
            }),
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

mod error;
mod run;
#[cfg(test)]
mod tests;

pub(crate) use error::HostError;
#[allow(unused_imports)]
use error::*;
pub(crate) use run::run_steps_into;
#[allow(unused_imports)]
use run::*;
