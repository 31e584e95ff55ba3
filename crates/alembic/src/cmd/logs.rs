//! `alembic logs WORKLOAD [--follow] [--since D] [--tail N]`: the container's logs over the
//! deploy's ssh, streamed line by line, with the droplet's secret values redacted from what is
//! printed.

use std::io::Write;

use alembic_config::Plane;
use alembic_deploy::daytwo;
use alembic_deploy::droplet::Redactor;
use alembic_deploy::exec::{Executor, Goal, ProcessEnv, Stream};

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Failure, Outcome};

use super::failure;
use super::plan::close;

/// The names of every droplet secret: their values are redacted from what `logs`/`exec` print.
pub(crate) fn redactor(t: &alembic_config::Topology, env: &ProcessEnv) -> Redactor {
    let names: Vec<String> = t
        .on_plane(Plane::Droplet)
        .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
        .collect();
    Redactor::new(&names, env)
}

/// Print a streamed line to stdout or stderr, redacted.
pub(crate) fn print_redacted(redact: &Redactor, which: Stream, chunk: &[u8]) {
    let text = redact.clean(&String::from_utf8_lossy(chunk));
    let _ = match which {
        Stream::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// The workload must be a droplet workload (or the edge).
pub(crate) fn check_workload(t: &alembic_config::Topology, workload: &str) -> Result<(), Failure> {
    let known = super::status::services(t);
    if known.iter().any(|w| w == workload) {
        return Ok(());
    }
    Err(Failure::not_found(
        "unknown_workload",
        format!(
            "no droplet workload named {workload:?} (droplet workloads: {})",
            known.join(", ")
        ),
    ))
}

pub fn run(
    g: &Global,
    workload: &str,
    follow: bool,
    since: Option<&str>,
    tail: Option<u64>,
) -> CmdResult {
    let (t, target) = super::status::connect(g, "logs")?;
    if let Err(f) = check_workload(&t, workload) {
        close(&target);
        return Err(f.into());
    }
    let env = ProcessEnv;
    let redact = redactor(&t, &env);
    let mut ex = Executor::new(Goal::Apply, &env);
    let op = daytwo::logs_op(&target, workload, follow, since, tail);
    let status = ex.stream(&op, &mut |which, chunk| {
        print_redacted(&redact, which, chunk)
    });
    close(&target);
    match status {
        Ok(0) => Ok(Outcome::streamed(exit::OK)),
        Ok(255) => Err(unreachable().into()),
        Ok(n) => Err(failure(
            "docker_logs_failed",
            format!("docker logs failed (exit {n})"),
            exit::RUNTIME,
        )
        .into()),
        Err(e) => Err(failure("ssh_failed", &e, exit::RUNTIME).into()),
    }
}

/// ssh itself failed (its exit 255): the droplet cannot be reached.
pub(crate) fn unreachable() -> Failure {
    Failure::runtime("ssh_unreachable", "cannot reach the droplet over ssh").hint(
        "check droplet.address and that the droplet accepts ssh; `alembic doctor --online` looks",
    )
}
