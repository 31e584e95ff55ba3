//! `alembic status [--json]`: per droplet workload the release, container state, health, image
//! and start time, and the drift between the ledger and what actually runs. Exit 0 when what
//! runs is what the ledger says, 1 on drift, 3 when the droplet cannot be read.

use alembic_config::{Plane, Topology};
use alembic_deploy::daytwo;
use alembic_deploy::droplet::{self, Target};
use alembic_deploy::exec::{Executor, Goal, ProcessEnv};

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

use super::failure;
use super::plan::close;

/// The checked config and the droplet as a target, its ssh control dir ready; `verb` names the
/// command in messages. Shared by `status`, `logs` and `exec`.
pub(crate) fn connect(g: &Global, verb: &str) -> Result<(Topology, Target), Outcome> {
    let (origin, _l, t) = super::check::gate(g, verb)?;
    let tf = t
        .droplet
        .is_provisioned()
        .then(|| {
            alembic_deploy::terraform::find_program().map(|p| {
                alembic_deploy::terraform::Runner::for_topology(
                    &p.display().to_string(),
                    &origin.base_dir(),
                    &t,
                )
            })
        })
        .flatten();
    let address = droplet::resolve_address(
        &t,
        tf.as_ref(),
        &mut Executor::new(Goal::DryRun, &ProcessEnv),
    );
    let target = Target::from_topology(&t, &address);
    if let Err(e) = target.ip() {
        return Err(failure("droplet_address_unknown", &e, e.exit_code()).into());
    }
    if let Err(e) = target.ssh.prepare() {
        return Err(failure(
            "ssh_control_dir",
            format!("cannot create the ssh control dir: {e}"),
            exit::RUNTIME,
        )
        .into());
    }
    Ok((t, target))
}

/// The compose services status reports on: the edge, then the droplet workloads.
pub(crate) fn services(t: &Topology) -> Vec<String> {
    std::iter::once(alembic_render::compose::EDGE_SERVICE.to_owned())
        .chain(t.on_plane(Plane::Droplet).map(|w| w.name.to_string()))
        .collect()
}

pub fn run(g: &Global) -> CmdResult {
    let (t, target) = connect(g, "status")?;
    let env = ProcessEnv;
    let mut ex = Executor::new(Goal::Apply, &env);
    let out = ex.query(&daytwo::status_op(&target));
    close(&target);
    let out = out.map_err(|e| failure("ssh_failed", &e, exit::RUNTIME))?;
    if out.status == 255 {
        return Err(failure(
            "ssh_unreachable",
            format!(
                "cannot reach the droplet over ssh: {}",
                out.stderr_text().trim()
            ),
            exit::RUNTIME,
        )
        .into());
    }
    if !out.success() {
        return Err(failure(
            "droplet_unreadable",
            format!("reading the droplet failed: {}", out.stderr_text().trim()),
            exit::RUNTIME,
        )
        .into());
    }
    let status = daytwo::interpret_status(&out.stdout_text(), &services(&t))
        .map_err(|e| failure("droplet_unreadable", &e, e.exit_code()))?;
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
