//! The rollback half of the façade: planned once, walked by the same driver for the dry run and
//! the real rollback. Several compose droplets roll back one at a time behind the balancer
//! (`droplet/fleet_rollback.rs`); `--droplet` picks one of them.

use std::net::IpAddr;

use super::*;
use crate::droplet::{FleetRollback, RollbackMember};

/// Where a rollback goes and the ops it runs (the dry run's answer).
#[derive(Debug)]
pub struct RollbackPlan {
    /// The release made current again.
    pub to: u64,
    /// The ops, in order (the fencing token shows as `<token>`).
    pub ops: Vec<Op>,
    /// Several droplets: per droplet (its address), the release made current there (rolled
    /// back to, or already current). Empty for one droplet. `to` is then the first one's.
    pub droplets: Vec<(String, u64)>,
}

/// A planned rollback: where it goes (None: the newest healthy release before current, as the
/// droplet's ledger says when the rollback reads it under the lease), the lease it asks for and
/// the time its ledger entry records. [`run_rollback`] walks it for real or as a dry run: the
/// same driver, so the dry run's ops are the ops a rollback runs.
pub struct Rollback {
    target: Target,
    /// Several compose droplets: the ones rolled back, one at a time behind the balancer
    /// (`target` is then the first of them, unused).
    fleet: Option<(Vec<RollbackMember>, alembic_config::LoadBalancer)>,
    /// `droplet.engine = "swarm"`: the stack the rollback redeploys.
    swarm: Option<crate::swarm::Swarm>,
    env: Env,
    to: Option<u64>,
    lease: Lease,
    time: String,
}

/// Plan `alembic rollback` of `t`'s droplet to release `to`.
pub fn plan_rollback(t: &Topology, env: Env, to: Option<u64>) -> Result<Rollback, Refusal> {
    plan_rollback_on(t, env, to, None)
}

/// Plan `alembic rollback [--droplet ADDRESS]`: with several compose droplets, every droplet
/// (or the one `droplet` names) one at a time behind the balancer; with one droplet,
/// `droplet` must be absent or its address.
pub fn plan_rollback_on(
    t: &Topology,
    env: Env,
    to: Option<u64>,
    droplet: Option<IpAddr>,
) -> Result<Rollback, Refusal> {
    if let Some(refusal) = super::engines::rollback_refusal(t) {
        return Err(refusal);
    }
    verify_terraform(t, &env.base_dir)?;
    let tf = (t.droplet.is_provisioned() && terraform::find_program().is_some())
        .then(|| tf_runner(t, &env.base_dir));
    let lease = Lease::for_this_process();
    let time = crate::ledger::rfc3339(crate::ledger::now_epoch());
    if super::fleet::driver(t) == super::fleet::Driver::Rolling {
        let members = fleet_members(t, &env, tf.as_ref(), droplet)?;
        let lb = t.droplet.scale.lb.clone().ok_or_else(|| {
            Refusal::new(
                "alembic.toml: [droplet]: several droplets need [droplet.lb] (validation says so)",
                crate::exit::PROBLEMS,
            )
        })?;
        return Ok(Rollback {
            target: members[0].target.clone(),
            fleet: Some((members, lb)),
            swarm: None,
            env,
            to,
            lease,
            time,
        });
    }
    let swarm = t.droplet.scale.engine == alembic_config::scale::Engine::Swarm;
    let address = if swarm {
        super::engines::manager_address(t, tf.as_ref(), &mut Executor::new(Goal::DryRun, &env))
    } else {
        droplet::resolve_address(t, tf.as_ref(), &mut Executor::new(Goal::DryRun, &env))
    };
    let target = env.target(t, &address);
    let ip = target.ip().map_err(|e| Refusal::new(&e, e.exit_code()))?;
    if let Some(wanted) = droplet.filter(|w| *w != ip) {
        return Err(Refusal::new(
            format!("--droplet {wanted}: this config's rollback acts on one droplet, at {ip}"),
            crate::exit::PROBLEMS,
        ));
    }
    Ok(Rollback {
        swarm: swarm.then(|| crate::swarm::Swarm::new(t, target.clone())),
        target,
        fleet: None,
        env,
        to,
        lease,
        time,
    })
}

/// The droplets of a compose fleet a rollback goes over: all of them, in the configured
/// order, or the one `droplet` names. Every address must be known.
fn fleet_members(
    t: &Topology,
    env: &Env,
    tf: Option<&terraform::Runner>,
    droplet: Option<IpAddr>,
) -> Result<Vec<RollbackMember>, Refusal> {
    let addresses = droplet::resolve_addresses(t, tf, &mut Executor::new(Goal::DryRun, env));
    let chosen: Vec<usize> =
        match droplet {
            Some(ip) => vec![droplet::select(&addresses, ip)
                .map_err(|m| Refusal::new(m, crate::exit::PROBLEMS))?],
            None => (0..addresses.len()).collect(),
        };
    let mut members = Vec::new();
    for i in chosen {
        let (_, target) = droplet::member_target(t, &addresses[i], i, |mt, a| env.target(mt, a))
            .map_err(|e| Refusal::new(&e, e.exit_code()))?;
        target.ip().map_err(|e| Refusal::new(&e, e.exit_code()))?;
        members.push(RollbackMember {
            label: droplet::label(&addresses[i], i),
            target,
        });
    }
    Ok(members)
}

/// Run a planned rollback: for real with [`Goal::Apply`], or as a dry run with
/// [`Goal::DryRun`] (the droplet's ledger is read either way, to find the release; nothing
/// changes). The ops are the ones the driver ran (or recorded), each listed once.
pub fn run_rollback(
    plan: &Rollback,
    goal: Goal,
    view: &mut dyn Progress,
) -> Result<RollbackPlan, Refusal> {
    if let Some((members, lb)) = &plan.fleet {
        return run_fleet(plan, members, lb, goal, view);
    }
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
    Ok(RollbackPlan {
        to: n,
        ops,
        droplets: Vec::new(),
    })
}

fn run_fleet(
    plan: &Rollback,
    members: &[RollbackMember],
    lb: &alembic_config::LoadBalancer,
    goal: Goal,
    view: &mut dyn Progress,
) -> Result<RollbackPlan, Refusal> {
    let mut driver = FleetRollback {
        members,
        lb: lb.clone(),
        exs: members
            .iter()
            .map(|_| Executor::new(goal, &plan.env))
            .collect(),
        view,
        redact: Redactor::new(&[], &plan.env),
        lease: plan.lease.clone(),
        time: plan.time.clone(),
    };
    let r = driver.run(plan.to);
    let mut ops: Vec<Op> = Vec::new();
    for ex in driver.exs {
        for op in ex.transcript {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
    }
    let droplets = r.map_err(|e| Refusal::new(&e, e.exit_code()))?;
    Ok(RollbackPlan {
        to: droplets.first().map_or(0, |(_, n)| *n),
        ops,
        droplets,
    })
}

/// `alembic rollback [--droplet ADDRESS]`: make release `to` (default: the newest healthy one
/// before current) current again, whole ([`plan_rollback_on`], then [`run_rollback`]).
pub fn rollback(
    t: &Topology,
    env: Env,
    to: Option<u64>,
    droplet: Option<IpAddr>,
    goal: Goal,
    view: &mut dyn Progress,
) -> Result<RollbackPlan, Refusal> {
    run_rollback(&plan_rollback_on(t, env, to, droplet)?, goal, view)
}
