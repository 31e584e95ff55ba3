//! `alembic rollback [--to N] [--droplet ADDRESS] [--yes]`: restore a previous release whole
//! (its compose file, Caddyfile and `.env`), probe it, make it `current` and record that in the
//! ledger. On several droplets, every droplet (or the one `--droplet` names) one at a time,
//! each taken out of the balancer while it changes. Without `--yes`, shows the operations and
//! runs nothing.

use std::net::IpAddr;

use alembic_deploy::facade::{self, Env, Goal, Progress, RollbackPlan};

use crate::cli::{Global, PlaneArg};
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

use super::failure;

pub fn run(
    g: &Global,
    plane: PlaneArg,
    to: Option<u64>,
    droplet: Option<IpAddr>,
    yes: bool,
) -> CmdResult {
    if plane != PlaneArg::Droplet {
        return Err(failure(
            "no_releases",
            "only the droplet plane has releases to roll back to",
            exit::USAGE,
        )
        .into());
    }
    let (origin, _l, t) = super::check::gate(g, "rollback")?;
    if origin == crate::config::Origin::Embedded {
        return Err(failure(
            "embedded_default_refused",
            "refusing to roll back the embedded default topology; use your own alembic.toml",
            exit::PROBLEMS,
        )
        .into());
    }
    let env = Env::from_process(origin.base_dir());
    if !yes {
        let r = facade::rollback(
            &t,
            env,
            to,
            droplet,
            Goal::DryRun,
            &mut facade::Record::default(),
        )
        .map_err(|e| failure("rollback_failed", &e, e.code))?;
        let mut out = match common(&r) {
            Some(n) => format!("rollback to release {n} would run:\n"),
            None => "rollback would run:\n".to_owned(),
        };
        for (d, n) in &r.droplets {
            out.push_str(&format!("  droplet {d}: to release {n}\n"));
        }
        for (i, op) in r.ops.iter().enumerate() {
            out.push_str(&format!("  {:>3}. {}: {op}\n", i + 1, op.step));
        }
        let mut v = serde_json::json!({"format_version": 1, "dry_run": true, "to": common(&r),
            "ops": r.ops});
        if !r.droplets.is_empty() {
            v["droplets"] = droplets_json(&r);
        }
        let talk = "\ndry run: nothing executed; run with --yes to roll back\n".to_owned();
        return Ok(Outcome::new(exit::OK, Rendered::new(out, talk, v)));
    }
    let mut view: Box<dyn Progress> = if g.json {
        Box::new(facade::Json)
    } else {
        Box::new(facade::Human::new())
    };
    let r = facade::rollback(&t, env, to, droplet, Goal::Apply, view.as_mut())
        .map_err(|e| failure("rollback_failed", &e, e.code))?;
    // The progress was streamed; the last word is talk, for humans and the log alike.
    if r.droplets.is_empty() {
        return Ok(Outcome::streamed(exit::OK)
            .note(format!("droplet: rolled back; release {} is current", r.to)));
    }
    let mut outcome = Outcome::streamed(exit::OK);
    for (d, n) in &r.droplets {
        outcome = outcome.note(format!("droplet {d}: release {n} is current"));
    }
    Ok(outcome)
}

/// The release every droplet goes to (None: they differ).
fn common(r: &RollbackPlan) -> Option<u64> {
    match r.droplets.first() {
        None => Some(r.to),
        Some((_, n)) => r.droplets.iter().all(|(_, m)| m == n).then_some(*n),
    }
}

fn droplets_json(r: &RollbackPlan) -> serde_json::Value {
    r.droplets
        .iter()
        .map(|(d, n)| serde_json::json!({"droplet": d, "to": n}))
        .collect()
}
