//! `alembic status [--droplet ADDRESS] [--json]`: per droplet workload the release, container
//! state, health, image and start time, and the drift between the ledger and what actually
//! runs. On several droplets, every droplet in turn (or the one `--droplet` names), each under
//! its own header. Exit 0 when what runs is what the ledger says, 1 on drift (on any droplet),
//! 3 when a droplet cannot be read (the others are still reported).

use std::net::IpAddr;

use alembic_config::Topology;
use alembic_deploy::session::{Failed, Session, Status, WorkloadStatus};

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Failure, Outcome, Rendered};

use super::failure;

/// A day-two failure as the view layer's.
pub(crate) fn failed(f: Failed) -> Failure {
    match f.id {
        "unknown_workload" | "unknown_droplet" => Failure::not_found(f.id, f.message),
        _ => failure(f.id, f.message, f.exit),
    }
}

/// The checked config and the droplet as a session (its ssh control dir ready); `verb` names
/// the command in messages, `droplet` is `--droplet` (required on several droplets). Shared
/// by `logs` and `exec`.
pub(crate) fn connect(
    g: &Global,
    verb: &str,
    droplet: Option<IpAddr>,
) -> Result<(Topology, Session), Outcome> {
    let (origin, _l, t) = super::check::gate(g, verb)?;
    let session = Session::open(&t, &origin.base_dir(), droplet, verb).map_err(failed)?;
    Ok((t, session))
}

/// The lines of one droplet's workloads.
fn workload_lines(text: &mut String, workloads: &[WorkloadStatus]) {
    for w in workloads {
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
}

fn release_line(who: &str, release: Option<u64>) -> String {
    match release {
        Some(n) => format!("{who}: release {n} is current\n"),
        None => format!("{who}: no release deployed yet\n"),
    }
}

pub fn run(g: &Global, droplet: Option<IpAddr>) -> CmdResult {
    let (origin, _l, t) = super::check::gate(g, "status")?;
    let mut sessions =
        Session::open_all(&t, &origin.base_dir(), droplet, "status").map_err(failed)?;
    let mut read = Vec::new();
    let mut unread: Vec<(String, Failed)> = Vec::new();
    let one = sessions.len() == 1 && sessions[0].droplet().is_none();
    if one {
        let session = sessions.remove(0);
        let status = session.status();
        session.close();
        return Ok(outcome(status.map_err(failed)?, &[]));
    }
    for session in sessions {
        let label = session.droplet().unwrap_or_default().to_owned();
        let r = session.status();
        session.close();
        match r {
            Ok(s) => read.push((label, Ok(s))),
            Err(f) => {
                read.push((label.clone(), Err(f.message.clone())));
                unread.push((label, f));
            }
        }
    }
    let outcome = outcome(Status::of_droplets(read), &unread);
    if outcome.code == exit::RUNTIME {
        return Err(outcome);
    }
    Ok(outcome)
}

/// The status as a view; on several droplets, each under its header, and when some could not
/// be read (`unread`) a run-time failure (exit 3) with the status beside the error.
fn outcome(status: Status, unread: &[(String, Failed)]) -> Outcome {
    let mut text = String::new();
    match &status.droplets {
        None => {
            text.push_str(&release_line("droplet", status.release));
            workload_lines(&mut text, &status.workloads);
        }
        Some(droplets) => {
            for d in droplets {
                let who = format!("droplet {}", d.address);
                match &d.error {
                    Some(e) => text.push_str(&format!("{who}: not read: {e}\n")),
                    None => {
                        text.push_str(&release_line(&who, d.release));
                        workload_lines(&mut text, &d.workloads);
                    }
                }
            }
        }
    }
    let json = serde_json::to_value(&status).unwrap_or_default();
    if let Some((_, first)) = unread.first() {
        let which: Vec<&str> = unread.iter().map(|(l, _)| l.as_str()).collect();
        let total = status.droplets.as_ref().map_or(0, Vec::len);
        let message = if total == 1 {
            format!("droplet {}: {}", which[0], first.message)
        } else {
            format!(
                "{} of {total} droplets could not be read ({}): {}",
                unread.len(),
                which.join(", "),
                first.message
            )
        };
        let f = failure(first.id, message, exit::RUNTIME);
        return Outcome::new(exit::RUNTIME, f.with_data(text, json));
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
    Outcome::new(code, Rendered::new(text, talk, json))
}
