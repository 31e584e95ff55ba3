//! `alembic logs WORKLOAD [--droplet ADDRESS] [--follow] [--since D] [--tail N]`: the
//! container's logs over the deploy's ssh, streamed line by line, with the droplet's secret
//! values redacted from what is printed; with `--json`, one JSON line per log line
//! (`crate::view::Streamed`). On several droplets `--droplet` names the one to read (refused
//! without it, before any step).

use std::net::IpAddr;

use alembic_deploy::session::Stream;

use crate::cli::Global;
use crate::exit;
use crate::view::{Channel, CmdResult, Mode, Outcome, Streamed};

use super::status::{connect, failed};

/// The view's stream for `g`'s mode.
pub(crate) fn streamed(g: &Global) -> Streamed {
    Streamed::new(if g.json { Mode::Json } else { Mode::Human })
}

/// Where a chunk the session streamed goes.
pub(crate) fn channel(which: Stream) -> Channel {
    match which {
        Stream::Stdout => Channel::Stdout,
        Stream::Stderr => Channel::Stderr,
    }
}

/// Which lines: `--follow`, `--since`, `--tail`.
pub struct Filter<'a> {
    pub follow: bool,
    pub since: Option<&'a str>,
    pub tail: Option<u64>,
}

pub fn run(g: &Global, workload: &str, droplet: Option<IpAddr>, f: Filter<'_>) -> CmdResult {
    let (_t, session) = connect(g, "logs", droplet)?;
    let mut out = streamed(g);
    let result = session.check_workload(workload).and_then(|()| {
        session.logs(workload, f.follow, f.since, f.tail, &mut |w, text| {
            out.chunk(channel(w), text)
        })
    });
    session.close();
    out.flush();
    result.map_err(failed)?;
    Ok(Outcome::streamed(out.finish(exit::OK)))
}
