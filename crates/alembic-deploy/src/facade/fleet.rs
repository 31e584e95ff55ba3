//! The droplet stage with several droplets behind a load balancer: one plan per droplet
//! (each under its own header), applied by the rolling driver (`droplet/rolling.rs`).

use alembic_config::{Engine, Topology};

use super::{close, plan_target, Env, Failure, Plan, Refusal, Report};
use crate::droplet::{self, Fleet, Member, Redactor, Rolling, Runner};
use crate::exec::{Executor, Goal};
use crate::progress::{Event, Progress, Steps};
use crate::stage::Stage;

/// How the droplet stage deploys: the one place the engine picks its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Driver {
    /// One droplet, `docker compose` (and what the other engines do on one droplet today).
    Single,
    /// Several droplets behind the balancer, `docker compose` on each, one at a time.
    Rolling,
    /// Swarm or Kubernetes: their own drivers (`facade/engines.rs`), on the manager or the
    /// cluster, whatever the number of droplets.
    Engine,
}

pub(super) fn driver(t: &Topology) -> Driver {
    match t.droplet.scale.engine {
        Engine::Swarm | Engine::Kubernetes => Driver::Engine,
        Engine::Compose if t.droplet.droplet_count() > 1 => Driver::Rolling,
        Engine::Compose => Driver::Single,
    }
}

/// Plan every droplet: addresses (read-only), then per droplet its topology, target, bundle
/// and state. Refuses what the rolling driver cannot do.
pub(super) fn plan_fleet(p: &Plan) -> Result<Fleet, Refusal> {
    let (t, env) = (&p.topology, &p.env);
    let Some(lb) = t.droplet.scale.lb.clone() else {
        return Err(Refusal::new(
            "alembic.toml: [droplet]: several droplets need [droplet.lb] (validation says so)",
            crate::exit::PROBLEMS,
        ));
    };
    let rollout = t.droplet.scale.rollout;
    if rollout.max_unavailable > 1 {
        return Err(Refusal::new(
            format!(
                "alembic.toml: droplet.rollout.max_unavailable = {}: this alembic rolls one \
                 droplet at a time\nhint: set `max_unavailable = 1` (or remove it)",
                rollout.max_unavailable
            ),
            crate::exit::PROBLEMS,
        ));
    }
    let mut ex = Executor::new(Goal::DryRun, env);
    let addresses = droplet::resolve_addresses(t, p.address_tf.as_ref(), &mut ex);
    let mut members: Vec<Member> = Vec::new();
    // `build` workloads are built (or read from the environment) once for every droplet.
    let mut pins = None;
    for (i, address) in addresses.iter().enumerate() {
        let planned = droplet::member_target(t, address, i, |mt, a| env.target(mt, a))
            .map_err(|e| Refusal::new(&e, e.exit_code()))
            .and_then(|(mt, target)| {
                let set = alembic_render::render(&mt);
                plan_target(env, &mt, &set, target, &mut ex, &mut pins)
            });
        match planned {
            Ok((target, planned)) => {
                members.push(Member::new(droplet::label(address, i), target, planned))
            }
            Err(r) => {
                for m in &members {
                    close(&m.target, env);
                }
                return Err(r);
            }
        }
    }
    let mut fleet = Fleet {
        members,
        lb,
        rollout,
    };
    let note = fleet.rollout_note();
    if let Some(first) = fleet.members.first_mut() {
        first.planned.plane.notes.insert(0, note);
    }
    Ok(fleet)
}

/// Close every droplet's ssh master.
pub(super) fn close_fleet(fleet: &Fleet, env: &Env) {
    for m in &fleet.members {
        close(&m.target, env);
    }
}

/// Apply the fleet's plan: wait for provisioned droplets' bootstrap, then roll. Fails the
/// report on the first problem.
pub(super) fn apply_fleet(
    plan: &Plan,
    fleet: &Fleet,
    goal: Goal,
    view: &mut dyn Progress,
    report: &mut Report,
) -> Result<(), Failure> {
    let env = &plan.env;
    let names: Vec<String> = plan
        .topology
        .on_plane(alembic_config::Plane::Droplet)
        .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
        .collect();
    for m in &fleet.members {
        let Some(timeout) = m.target.bootstrap_timeout else {
            continue;
        };
        if goal == Goal::Apply && m.target.address.is_err() {
            continue;
        }
        let mut ex = Executor::new(goal, env);
        let op = m.target.wait_bootstrap_op(timeout);
        let r = Runner {
            target: &m.target,
            ex: &mut ex,
            steps: Steps::new(view),
            redact: Redactor::new(&[], env),
        }
        .wait_bootstrap(&op, timeout);
        report.add(Stage::Droplet, ex);
        if let Err(e) = r {
            close_fleet(fleet, env);
            return Err(Failure {
                message: format!("droplet {}: {e}", m.label),
                code: e.exit_code(),
                hint: None,
            });
        }
    }
    let idle: Vec<&Member> = fleet
        .members
        .iter()
        .filter(|m| m.planned.ops.is_none())
        .collect();
    for m in &idle {
        view.event(Event::Info {
            message: format!(
                "droplet {}: release {} is already current; nothing to do",
                m.label,
                m.planned.plane.base_release.unwrap_or(0)
            ),
        });
    }
    let mut rolling = Rolling {
        fleet,
        exs: fleet
            .members
            .iter()
            .map(|_| Executor::new(goal, env))
            .collect(),
        view,
        redact: Redactor::new(&names, env),
    };
    let r = rolling.run();
    let Rolling { exs, view, .. } = rolling;
    for ex in exs {
        report.add(Stage::Droplet, ex);
    }
    match r {
        Ok(done) => {
            if goal == Goal::Apply {
                for (label, n) in done {
                    view.event(Event::Info {
                        message: format!("droplet {label}: release {n} is live"),
                    });
                }
            }
            Ok(())
        }
        Err(e) => Err(Failure {
            message: e.to_string(),
            code: e.exit_code(),
            hint: None,
        }),
    }
}
