//! The façade's dispatch for the engines besides compose: `droplet.engine = "swarm"` plans and
//! applies through `crate::swarm`, `"kubernetes"` through `crate::k8s`. Compose stays in the
//! façade itself; each engine has this one entry for plan, apply and rollback.

use super::*;
use crate::swarm::{self, Swarm};
use alembic_config::scale::Engine;

/// The droplet stage of a plan on an engine other than compose.
pub(super) enum EnginePlan {
    Swarm(Box<(Swarm, swarm::Planned)>),
    Kubernetes(crate::k8s::Planned),
}

impl EnginePlan {
    pub(super) fn plane(&self) -> &StagePlan {
        match self {
            EnginePlan::Swarm(b) => &b.1.plane,
            EnginePlan::Kubernetes(k) => &k.plane,
        }
    }
}

/// Plan the droplet stage of `p` when its engine is not compose (None: compose).
pub(super) fn plan_engine(p: &Plan) -> Option<Result<EnginePlan, Refusal>> {
    let t = &p.topology;
    match t.droplet.scale.engine {
        Engine::Compose => None,
        Engine::Swarm => Some(plan_swarm(p).map(|x| EnginePlan::Swarm(Box::new(x)))),
        Engine::Kubernetes => {
            let kubeconfig = p.env.var(crate::k8s::KUBECONFIG_ENV);
            let kubectl = crate::exec::which("kubectl").is_some();
            Some(Ok(EnginePlan::Kubernetes(crate::k8s::plan(
                t,
                &p.set,
                kubeconfig.as_deref(),
                kubectl,
            ))))
        }
    }
}

/// The infra stage of this apply may just have created the droplets: a swarm is planned again
/// against the manager's address as Terraform now reports it (Some: the new plan).
pub(super) fn after_infra(
    plan: &Plan,
    ep: &EnginePlan,
    goal: Goal,
) -> Result<Option<EnginePlan>, Refusal> {
    let EnginePlan::Swarm(b) = ep else {
        return Ok(None);
    };
    if plan.infra.is_none() || goal != Goal::Apply {
        return Ok(None);
    }
    close(&b.0.target, &plan.env);
    plan_engine(plan).transpose()
}

/// The swarm manager: `droplet.address`, else the first of `droplet.addresses`, else what
/// Terraform reports.
pub(super) fn manager_address(
    t: &Topology,
    tf: Option<&terraform::Runner>,
    ex: &mut Executor<'_>,
) -> droplet::Address {
    match (t.droplet.address, t.droplet.scale.addresses.first()) {
        (Some(ip), _) | (None, Some(&ip)) => droplet::Address::configured(ip),
        (None, None) => droplet::resolve_address(t, tf, ex),
    }
}

fn plan_swarm(p: &Plan) -> Result<(Swarm, swarm::Planned), Refusal> {
    let (t, set, env) = (&p.topology, &p.set, &p.env);
    let mut ex = Executor::new(Goal::DryRun, env);
    let address = manager_address(t, p.address_tf.as_ref(), &mut ex);
    let sw = Swarm::new(t, env.target(t, &address));
    let mut pins = Vec::new();
    if t.on_plane(alembic_config::Plane::Droplet)
        .any(|w| w.build.is_some())
    {
        let read = |name: &str| env.var(name);
        pins = images::resolve(t, &env.base_dir, &read, &mut ex)
            .map_err(|e| Refusal::new(&e, e.exit_code()))?;
    }
    let build_ops: Vec<Op> = pins
        .iter()
        .filter_map(|pin| match &pin.source {
            images::Source::Built { context, .. } | images::Source::Push { context, .. } => {
                Some(images::build_op(&pin.workload, &env.base_dir.join(context)))
            }
            images::Source::Given { .. } => None,
        })
        .collect();
    let bundle = swarm::bundle(t, set, pins).map_err(|m| Refusal::new(m, crate::exit::PROBLEMS))?;
    let lease = Lease::for_this_process();
    let by = lease.holder.clone();
    let (state, ready) = if sw.target.address.is_err() {
        (
            RemoteState::default(),
            Err("the droplet's address is not known yet".to_owned()),
        )
    } else {
        sw.target.ssh.prepare().map_err(|e| {
            Refusal::new(
                format!("cannot create the ssh control dir: {e}"),
                crate::exit::RUNTIME,
            )
        })?;
        let ready = swarm::check_ready(&sw, &mut ex);
        match sw.target.query_state(&mut ex) {
            Ok(s) => (s, ready),
            Err(e) => {
                close(&sw.target, env);
                return Err(Refusal::new(&e, e.exit_code()));
            }
        }
    };
    let mut planned = swarm::plan(&sw, &bundle, state, lease, &by, ready);
    planned.plane.ops.splice(0..0, build_ops);
    Ok((sw, planned))
}

/// Where a refusal points: the config key that chose the engine, and the droplet.
fn located(t: &Topology, why: &str) -> String {
    format!(
        "droplet.engine = \"{}\": {why}; apply changed nothing",
        t.droplet.scale.engine
    )
}

/// Apply the droplet stage on its engine. Err: the report is final (a failure is in it).
pub(super) fn apply_engine(
    plan: &Plan,
    ep: &EnginePlan,
    goal: Goal,
    view: &mut dyn Progress,
    report: &mut Report,
) -> Result<(), ()> {
    let env = &plan.env;
    let t = &plan.topology;
    let names: Vec<String> = t
        .on_plane(alembic_config::Plane::Droplet)
        .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
        .collect();
    let ready = match ep {
        EnginePlan::Swarm(b) => &b.1.ready,
        EnginePlan::Kubernetes(k) => &k.ready,
    };
    if let (Goal::Apply, Err(why)) = (goal, ready) {
        if let EnginePlan::Swarm(b) = ep {
            close(&b.0.target, env);
        }
        report.error = Some(Failure {
            message: located(t, why),
            code: crate::exit::PROBLEMS,
            hint: Some(match ep {
                EnginePlan::Swarm(_) => {
                    "the swarm engine deploys over ssh to a droplet running Docker as a swarm \
                     manager"
                        .to_owned()
                }
                EnginePlan::Kubernetes(_) => format!(
                    "set {} to the cluster's kubeconfig and put kubectl on PATH",
                    crate::k8s::KUBECONFIG_ENV
                ),
            }),
        });
        return Err(());
    }
    let mut ex = Executor::new(goal, env);
    let r = match ep {
        EnginePlan::Swarm(b) => {
            let (sw, planned) = (&b.0, &b.1);
            match &planned.ops {
                None => {
                    for op in &planned.plane.ops {
                        Steps::new(view).op(op);
                        let _ = if sw.target.address.is_ok() && !op.mutating {
                            ex.decide(op)
                        } else {
                            ex.run(op)
                        };
                    }
                    super::already_current(&sw.target, planned.plane.base_release, view);
                    Ok(None)
                }
                Some(ops) => {
                    let mut runner = Runner {
                        target: &sw.target,
                        ex: &mut ex,
                        steps: Steps::new(view),
                        redact: Redactor::new(&names, env),
                    };
                    swarm::deploy(&mut runner, sw, ops).map(Some)
                }
            }
        }
        EnginePlan::Kubernetes(k) => {
            let redact = Redactor::new(&names, env);
            let mut steps = Steps::new(view);
            let mut r = Ok(None);
            for op in &k.ops {
                steps.start(op.step.clone());
                steps.op(op);
                let out = ex.run(op);
                let failed = match &out {
                    Ok(o) if o.success() => None,
                    Ok(o) => Some(format!(
                        "exit {}: {}",
                        o.status,
                        redact.clean(o.stderr_text().trim())
                    )),
                    Err(e) => Some(e.to_string()),
                };
                steps.end(failed.is_none(), failed.clone().unwrap_or_default());
                if let Some(detail) = failed {
                    r = Err(DeployError::Step {
                        step: op.step.clone(),
                        detail,
                    });
                    break;
                }
            }
            r
        }
    };
    report.add(Stage::Droplet, ex);
    match r {
        Ok(Some(n)) if goal == Goal::Apply => view.event(Event::Info {
            message: format!("droplet: release {n} is live on swarm"),
        }),
        Ok(None) if goal == Goal::Apply && matches!(ep, EnginePlan::Kubernetes(_)) => {
            view.event(Event::Info {
                message: "droplet: applied to the cluster; every deployment rolled out".into(),
            })
        }
        Ok(_) => {}
        Err(e) => {
            let code = e.exit_code();
            let hint = matches!(e, DeployError::LeaseHeld(_)).then(|| {
                "wait for it to finish; a lease left by a killed apply expires on its own"
                    .to_owned()
            });
            report.error = Some(Failure {
                message: e.to_string(),
                code,
                hint,
            });
            return Err(());
        }
    }
    Ok(())
}

/// `alembic rollback` on an engine other than compose: swarm deploys the older release's stack
/// file; Kubernetes is refused (kubectl keeps each Deployment's revisions itself).
pub(super) fn rollback_refusal(t: &Topology) -> Option<Refusal> {
    (t.droplet.scale.engine == Engine::Kubernetes).then(|| {
        Refusal::new(
            format!(
                "droplet.engine = \"kubernetes\": `alembic rollback` does not drive a cluster; \
                 `kubectl -n {} rollout undo deployment/<workload>` restores a Deployment's \
                 previous revision",
                t.project.name
            ),
            crate::exit::PROBLEMS,
        )
    })
}
