//! launchd agents for the host plane (`host.os = "macos"`): one XML plist per host workload at
//! `infra/host/launchd/<label>.plist`, label `com.alembic.<project>.<workload>`, built with the
//! `plist` crate (never a text template). The label carries the project so two projects never
//! share an agent, and lives under `com.alembic.` so a project named like a vendor (`apple`)
//! cannot land in that vendor's namespace; dots cannot occur in either name, so labels of
//! different projects never collide.
//!
//! Decided: every host workload runs through its project's launcher (`crate::launcher`),
//! installed by host apply at `~/.config/alembic/<project>/bin/alembic-launch`. launchd expands
//! neither `~` nor `$HOME` in a plist, and the user's home directory is unknown at render time,
//! so `ProgramArguments` is `/bin/sh -c 'exec "$HOME/$0" "$@"'
//! .config/alembic/<project>/bin/alembic-launch --project <project> --log
//! Library/Logs/alembic/<project>/<name>.log [--secrets A,B] -- <command...>`: `sh` expands
//! `$HOME` when the job starts (the script is constant text; the launcher's path is its `$0`),
//! and the launcher opens the log under `$HOME` after creating its directory (which is also why
//! there is no `StandardOutPath`: it could not name the home directory). Secrets are passed by
//! name only; their values stay in the project's mode-0600 secrets file. A workload's
//! `bind`/`port` reach it as `HOST`/`PORT` (`EnvironmentVariables`) and as `{bind}`/`{port}`
//! substituted in its command.

use alembic_config::{HostOs, Plane, Topology, Workload};
use plist::{Dictionary, Value};

use crate::{launcher, Artifact, ArtifactKind};

/// The shell snippet that finds the launcher under the home directory at run time; `$0` is
/// the launcher's path relative to `$HOME`.
const SH_EXEC_LAUNCHER: &str = "exec \"$HOME/$0\" \"$@\"";

/// The launchd label of a host workload: `com.alembic.<project>.<workload>`.
pub fn label(t: &Topology, w: &Workload) -> String {
    format!("com.alembic.{}.{}", t.project.name, w.name)
}

/// The log file of a host workload, relative to `$HOME`.
pub fn log_path(t: &Topology, w: &Workload) -> String {
    format!("Library/Logs/alembic/{}/{}.log", t.project.name, w.name)
}

/// One launchd job per host workload (macOS hosts only).
pub fn render(t: &Topology) -> Vec<Artifact> {
    if t.host.os != HostOs::Macos {
        return Vec::new();
    }
    let mut out: Vec<Artifact> = t
        .on_plane(Plane::Host)
        .map(|w| {
            Artifact::new(
                format!("infra/host/launchd/{}.plist", label(t, w)),
                plist_bytes(t, w),
                Plane::Host,
                ArtifactKind::LaunchdPlist,
            )
        })
        .collect();
    out.extend(launcher::render(t));
    out
}

/// `ProgramArguments`: the launcher through `sh` (see the module doc), then the command with
/// its placeholders substituted.
pub fn program_arguments(t: &Topology, w: &Workload) -> Vec<String> {
    let mut args = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        SH_EXEC_LAUNCHER.to_owned(),
        // $0 of the -c script: the launcher's path under $HOME.
        launcher::install_path_in_home(t),
        "--project".to_owned(),
        t.project.name.to_string(),
        "--log".to_owned(),
        log_path(t, w),
    ];
    if !w.secrets.is_empty() {
        args.push("--secrets".to_owned());
        args.push(
            w.secrets
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    args.push("--".to_owned());
    args.extend(launcher::command(w));
    args
}

fn plist_bytes(t: &Topology, w: &Workload) -> Vec<u8> {
    let job = w.schedule.is_some();
    let mut d = Dictionary::new();
    d.insert("Label".into(), Value::String(label(t, w)));
    d.insert(
        "ProgramArguments".into(),
        Value::Array(
            program_arguments(t, w)
                .into_iter()
                .map(Value::String)
                .collect(),
        ),
    );
    // A scheduled job runs on its calendar, not at every login; a daemon starts at load.
    d.insert("RunAtLoad".into(), Value::Boolean(!job));
    if w.keep_alive && !job {
        d.insert("KeepAlive".into(), Value::Boolean(true));
    }
    if let Some(s) = &w.schedule {
        let entries: Vec<Value> = s
            .calendar_entries()
            .into_iter()
            .map(|e| {
                let mut cd = Dictionary::new();
                for (k, v) in e {
                    cd.insert(k.into(), Value::Integer(i64::from(v).into()));
                }
                Value::Dictionary(cd)
            })
            .collect();
        // launchd takes one dict, or an array of dicts when the schedule has several fire times.
        let value = match <[Value; 1]>::try_from(entries) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        d.insert("StartCalendarInterval".into(), value);
    }
    let vars = launcher::environment(w);
    if !vars.is_empty() {
        let mut env = Dictionary::new();
        for (k, v) in vars {
            env.insert(k, Value::String(v));
        }
        d.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    }
    d.insert(
        "ProcessType".into(),
        Value::String(if job { "Background" } else { "Standard" }.into()),
    );
    let mut buf = Vec::new();
    Value::Dictionary(d)
        .to_writer_xml(&mut buf)
        .expect("writing a plist to memory cannot fail");
    buf.push(b'\n');
    buf
}
