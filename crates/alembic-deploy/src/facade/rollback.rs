//! The rollback half of the façade: planned once, walked by the same driver for the dry run and
//! the real rollback.

use super::*;

/// Where a rollback goes and the ops it runs (the dry run's answer).
#[derive(Debug)]
pub struct RollbackPlan {
    /// The release made current again.
    pub to: u64,
    /// The ops, in order (the fencing token shows as `<token>`).
    pub ops: Vec<Op>,
}

/// A planned rollback: where it goes (None: the newest healthy release before current, as the
/// droplet's ledger says when the rollback reads it under the lease), the lease it asks for and
/// the time its ledger entry records. [`run_rollback`] walks it for real or as a dry run: the
/// same driver, so the dry run's ops are the ops a rollback runs.
pub struct Rollback {
    target: Target,
    /// `droplet.engine = "swarm"`: the stack the rollback redeploys.
    swarm: Option<crate::swarm::Swarm>,
    env: Env,
    to: Option<u64>,
    lease: Lease,
    time: String,
}

/// Plan `alembic rollback` of `t`'s droplet to release `to`.
pub fn plan_rollback(t: &Topology, env: Env, to: Option<u64>) -> Result<Rollback, Refusal> {
    if let Some(refusal) = super::engines::rollback_refusal(t) {
        return Err(refusal);
    }
    verify_terraform(t, &env.base_dir)?;
    let tf = (t.droplet.is_provisioned() && terraform::find_program().is_some())
        .then(|| tf_runner(t, &env.base_dir));
    let swarm = t.droplet.scale.engine == alembic_config::scale::Engine::Swarm;
    let address = if swarm {
        super::engines::manager_address(t, tf.as_ref(), &mut Executor::new(Goal::DryRun, &env))
    } else {
        droplet::resolve_address(t, tf.as_ref(), &mut Executor::new(Goal::DryRun, &env))
    };
    let target = env.target(t, &address);
    target.ip().map_err(|e| Refusal::new(&e, e.exit_code()))?;
    Ok(Rollback {
        swarm: swarm.then(|| crate::swarm::Swarm::new(t, target.clone())),
        target,
        env,
        to,
        lease: Lease::for_this_process(),
        time: crate::ledger::rfc3339(crate::ledger::now_epoch()),
    })
}

/// Run a planned rollback: for real with [`Goal::Apply`], or as a dry run with
/// [`Goal::DryRun`] (the droplet's ledger is read either way, to find the release; nothing
/// changes). The ops are the ones the driver ran (or recorded), each listed once.
pub fn run_rollback(
    plan: &Rollback,
    goal: Goal,
    view: &mut dyn Progress,
) -> Result<RollbackPlan, Refusal> {
    let mut ex = Executor::new(goal, &plan.env);
    let mut runner = Runner {
        target: &plan.target,
        ex: &mut ex,
        steps: Steps::new(view),
        redact: Redactor::new(&[], &plan.env),
    };
    let r = match &plan.swarm {
        Some(sw) => crate::swarm::rollback(&mut runner, sw, plan.to, &plan.lease, &plan.time),
        None => runner.rollback(plan.to, &plan.lease, &plan.time),
    };
    let mut ops: Vec<Op> = Vec::new();
    for op in ex.transcript {
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    let n = r.map_err(|e| Refusal::new(&e, e.exit_code()))?;
    Ok(RollbackPlan { to: n, ops })
}

/// `alembic rollback`: make release `to` (default: the newest healthy one before current)
/// current again, whole ([`plan_rollback`], then [`run_rollback`]).
pub fn rollback(
    t: &Topology,
    env: Env,
    to: Option<u64>,
    goal: Goal,
    view: &mut dyn Progress,
) -> Result<RollbackPlan, Refusal> {
    run_rollback(&plan_rollback(t, env, to)?, goal, view)
}
