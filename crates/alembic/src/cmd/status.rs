//! `alembic status [--json]`: per droplet workload the release, container state, health, image
//! and start time, and the drift between the ledger and what actually runs. Exit 0 when what
//! runs is what the ledger says, 1 on drift, 3 when the droplet cannot be read.

use alembic_config::Topology;
use alembic_deploy::session::{Failed, Session};

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Failure, Outcome, Rendered};

use super::failure;

/// A day-two failure as the view layer's.
pub(crate) fn failed(f: Failed) -> Failure {
    match f.id {
        "unknown_workload" => Failure::not_found(f.id, f.message),
        _ => failure(f.id, f.message, f.exit),
    }
}

/// The checked config and the droplet as a session (its ssh control dir ready); `verb` names
/// the command in messages. Shared by `status`, `logs` and `exec`.
pub(crate) fn connect(g: &Global, verb: &str) -> Result<(Topology, Session), Outcome> {
    let (origin, _l, t) = super::check::gate(g, verb)?;
    let session = Session::open(&t, &origin.base_dir()).map_err(failed)?;
    Ok((t, session))
}

pub fn run(g: &Global) -> CmdResult {
    let (_t, session) = connect(g, "status")?;
    let status = session.status();
    session.close();
    let status = status.map_err(failed)?;
    let mut text = match status.release {
        Some(n) => format!("droplet: release {n} is current\n"),
        None => "droplet: no release deployed yet\n".to_owned(),
    };
    for w in &status.workloads {
        text.push_str(&format!(
            "  {:<16} {}{}  image {}  started {}\n",
            w.workload,
            w.state,
            w.health
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
            w.image.as_deref().unwrap_or("-"),
            w.started_at.as_deref().unwrap_or("-"),
        ));
        for d in &w.drift {
            text.push_str(&format!("    drift: {d}\n"));
        }
    }
    let talk = if status.drift {
        "drift: what runs differs from the ledger (see above); `alembic apply` or `alembic rollback` brings it back\n".to_owned()
    } else {
        String::new()
    };
    let code = if status.drift {
        exit::PROBLEMS
    } else {
        exit::OK
    };
    let json = serde_json::to_value(&status).unwrap_or_default();
    Ok(Outcome::new(code, Rendered::new(text, talk, json)))
}
