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

use super::plan::{close, fail};

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
pub(crate) fn check_workload(t: &alembic_config::Topology, workload: &str) -> Result<(), i32> {
    let known = super::status::services(t);
    if known.iter().any(|w| w == workload) {
        return Ok(());
    }
    Err(fail(
        format!(
            "no droplet workload named {workload:?} (droplet workloads: {})",
            known.join(", ")
        ),
        exit::PROBLEMS,
    ))
}

pub fn run(
    g: &Global,
    workload: &str,
    follow: bool,
    since: Option<&str>,
    tail: Option<u64>,
) -> i32 {
    let (t, target) = match super::status::connect(g, "logs") {
        Ok(x) => x,
        Err(c) => return c,
    };
    if let Err(c) = check_workload(&t, workload) {
        close(&target);
        return c;
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
        Ok(0) => exit::OK,
        Ok(255) => fail("cannot reach the droplet over ssh", exit::RUNTIME),
        Ok(n) => fail(format!("docker logs failed (exit {n})"), exit::RUNTIME),
        Err(e) => fail(&e, exit::RUNTIME),
    }
}
