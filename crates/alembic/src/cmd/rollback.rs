//! `alembic rollback [--to N] [--yes]`: restore a previous release whole (its compose file,
//! Caddyfile and `.env`), probe it, make it `current` and record that in the ledger. Without
//! `--yes`, shows the operations and runs nothing.

use alembic_deploy::droplet::{self, Redactor, Runner, Target};
use alembic_deploy::exec::{Executor, Goal, ProcessEnv};
use alembic_deploy::lease::Lease;
use alembic_deploy::progress::{self, Progress, Steps};

use crate::cli::{Global, PlaneArg};
use crate::exit;

use super::plan::{close, fail};

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
    // Reading a provisioned droplet's address runs terraform: only on the fresh render.
    if t.droplet.is_provisioned() {
        if let Err(e) =
            alembic_deploy::terraform::Runner::for_topology("terraform", &origin.base_dir(), &t)
                .verify_config()
        {
            return fail(&e, e.exit_code());
        }
    }
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
        return fail(&e, e.exit_code());
    }
    if let Err(e) = target.ssh.prepare() {
        return fail(
            format!("cannot create the ssh control dir: {e}"),
            exit::RUNTIME,
        );
    }
    let env = ProcessEnv;
    if !yes {
        let mut ex = Executor::new(Goal::DryRun, &env);
        let state = target.query_state(&mut ex);
        close(&target);
        let state = match state {
            Ok(s) => s,
            Err(e) => return fail(&e, e.exit_code()),
        };
        let Some(n) = to.or_else(|| state.ledger.previous_healthy().first().copied()) else {
            return fail(
                "no previous healthy release to roll back to",
                exit::PROBLEMS,
            );
        };
        let ops = droplet::rollback_ops(&target, n);
        for op in &ops {
            let _ = ex.run(op);
        }
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
        Box::new(progress::Json)
    } else {
        Box::new(progress::Human::new())
    };
    let mut ex = Executor::new(Goal::Apply, &env);
    let mut runner = Runner {
        target: &target,
        ex: &mut ex,
        steps: Steps::new(view.as_mut()),
        redact: Redactor::new(&[], &env),
    };
    let by = Lease::for_this_process().holder;
    match runner.rollback(to, &by) {
        Ok(n) => {
            eprintln!("droplet: rolled back; release {n} is current");
            exit::OK
        }
        Err(e) => fail(&e, e.exit_code()),
    }
}
