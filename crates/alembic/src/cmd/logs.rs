//! `alembic logs WORKLOAD [--follow] [--since D] [--tail N]`: the container's logs over the
//! deploy's ssh, streamed line by line, with the droplet's secret values redacted from what is
//! printed.

use std::io::Write;

use alembic_deploy::session::Stream;

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Outcome};

use super::status::{connect, failed};

/// Write a streamed (already redacted) chunk to stdout or stderr as it arrives.
pub(crate) fn print_chunk(which: Stream, text: &str) {
    let _ = match which {
        Stream::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

pub fn run(
    g: &Global,
    workload: &str,
    follow: bool,
    since: Option<&str>,
    tail: Option<u64>,
) -> CmdResult {
    let (_t, session) = connect(g, "logs")?;
    let result = session
        .check_workload(workload)
        .and_then(|()| session.logs(workload, follow, since, tail, &mut print_chunk));
    session.close();
    result.map_err(failed)?;
    Ok(Outcome::streamed(exit::OK))
}
