//! `alembic exec WORKLOAD -- CMD...`: run a command in the workload's container over the
//! deploy's ssh (`docker exec`, argv as given, no shell), its output streamed with the droplet's
//! secret values redacted (with `--json`, one JSON line per output line, then its exit code).
//! Exits with the command's own status (3 when ssh itself failed). On several droplets
//! `--droplet` names the one to run in (refused without it, before any step).

use std::net::IpAddr;

use crate::cli::Global;
use crate::view::{CmdResult, Failure, Outcome};

use super::logs::{channel, streamed};
use super::status::{connect, failed};

pub fn run(g: &Global, workload: &str, droplet: Option<IpAddr>, cmd: &[String]) -> CmdResult {
    if cmd.is_empty() {
        return Err(Failure::usage(
            "no_command",
            "no command given: alembic exec WORKLOAD -- CMD...",
        )
        .into());
    }
    let (_t, session) = connect(g, "exec", droplet)?;
    let mut out = streamed(g);
    let result = session
        .check_workload(workload)
        .and_then(|()| session.exec(workload, cmd, &mut |w, text| out.chunk(channel(w), text)));
    session.close();
    out.flush();
    // The command's own status, its output already streamed.
    let code = result.map_err(failed)?;
    Ok(Outcome::streamed(out.finish(code)))
}
