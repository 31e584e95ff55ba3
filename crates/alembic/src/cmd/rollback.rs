//! `alembic rollback [--to N] [--yes]`: restore a previous release whole (its compose file,
//! Caddyfile and `.env`), probe it, make it `current` and record that in the ledger. Without
//! `--yes`, shows the operations and runs nothing.

use alembic_deploy::facade::{self, Env, Goal, Progress};

use crate::cli::{Global, PlaneArg};
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

use super::failure;

pub fn run(g: &Global, plane: PlaneArg, to: Option<u64>, yes: bool) -> CmdResult {
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
        let r = facade::rollback(&t, env, to, Goal::DryRun, &mut facade::Record::default())
            .map_err(|e| failure("rollback_failed", &e, e.code))?;
        let (n, ops) = (r.to, r.ops);
        let mut out = format!("rollback to release {n} would run:\n");
        for (i, op) in ops.iter().enumerate() {
            out.push_str(&format!("  {:>3}. {}: {op}\n", i + 1, op.step));
        }
        let v = serde_json::json!({"format_version": 1, "dry_run": true, "to": n, "ops": ops});
        let talk = "\ndry run: nothing executed; run with --yes to roll back\n".to_owned();
        return Ok(Outcome::new(exit::OK, Rendered::new(out, talk, v)));
    }
    let mut view: Box<dyn Progress> = if g.json {
        Box::new(facade::Json)
    } else {
        Box::new(facade::Human::new())
    };
    let r = facade::rollback(&t, env, to, Goal::Apply, view.as_mut())
        .map_err(|e| failure("rollback_failed", &e, e.code))?;
    // The progress was streamed; the last word is talk, for humans and the log alike.
    Ok(Outcome::streamed(exit::OK)
        .note(format!("droplet: rolled back; release {} is current", r.to)))
}
