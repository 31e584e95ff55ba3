//! `alembic rollback [--to N] [--yes]`: restore a previous release whole (its compose file,
//! Caddyfile and `.env`), probe it, make it `current` and record that in the ledger. Without
//! `--yes`, shows the operations and runs nothing.

use alembic_deploy::facade::{self, Env, Goal, Progress};

use crate::cli::{Global, PlaneArg};
use crate::exit;

use super::plan::fail;

pub fn run(g: &Global, plane: PlaneArg, to: Option<u64>, yes: bool) -> i32 {
    if plane != PlaneArg::Droplet {
        return fail(
            "only the droplet plane has releases to roll back to",
            exit::USAGE,
        );
    }
    let (origin, _l, t) = match super::check::gate(g, "rollback") {
        Ok(x) => x,
        Err(c) => return c,
    };
    if origin == crate::config::Origin::Embedded {
        return fail(
            "refusing to roll back the embedded default topology; use your own alembic.toml",
            exit::PROBLEMS,
        );
    }
    let env = Env::from_process(origin.base_dir());
    if !yes {
        let r = match facade::rollback(&t, env, to, Goal::DryRun, &mut facade::Record::default()) {
            Ok(r) => r,
            Err(e) => return fail(&e, e.code),
        };
        let (n, ops) = (r.to, r.ops);
        if g.json {
            let v = serde_json::json!({"format_version": 1, "dry_run": true, "to": n, "ops": ops});
            crate::output::print_value(&v);
        } else {
            println!("rollback to release {n} would run:");
            for (i, op) in ops.iter().enumerate() {
                println!("  {:>3}. {}: {op}", i + 1, op.step);
            }
            eprintln!("\ndry run: nothing executed; run with --yes to roll back");
        }
        return exit::OK;
    }
    let mut view: Box<dyn Progress> = if g.json {
        Box::new(facade::Json)
    } else {
        Box::new(facade::Human::new())
    };
    match facade::rollback(&t, env, to, Goal::Apply, view.as_mut()) {
        Ok(r) => {
            eprintln!("droplet: rolled back; release {} is current", r.to);
            exit::OK
        }
        Err(e) => fail(&e, e.code),
    }
}
