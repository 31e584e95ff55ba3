//! The façade the binary drives: [`plan`] a selection of stages, [`apply`] that plan (for real
//! or as a dry run: the same drivers, only the executor's [`Goal`] differs), [`rollback`] the
//! droplet. A [`Plan`] holds, per stage, the steps that will run; the terraform, droplet and
//! host drivers consume exactly those steps, so what a dry run records is what an apply runs.

use std::path::Path;

use alembic_config::Topology;
use alembic_render::ArtifactSet;

use crate::droplet::{self, Bundle, DeployError, Planned, Redactor, RemoteState, Runner, Target};
use crate::exec::Executor;
use crate::lease::Lease;
use crate::progress::Steps;
use crate::{host, images, terraform};

pub use crate::exec::Goal;
pub use crate::ops::Op;
pub use crate::plan::{Action, Plan as Document, PlanePlan as StagePlan};
pub use crate::progress::{Event, Human, Json, Progress, Record};
pub use crate::stage::Stage;

/// What `render` and `init` need to write files: the artifact writer with its journal, drift
/// check and refusals, and the single-file writer. The writer's phases
/// ([`prepare_artifacts`], [`Prepared::commit`], [`Committed::apply`]) are public so a render
/// killed at any point can be reproduced.
pub use crate::artifacts::{
    check as check_artifacts, interrupted as render_interrupted, prepare as prepare_artifacts,
    recover as recover_artifacts, refusal as artifacts_refusal, write as write_artifacts,
    Committed, Drift, Prepared, Recovery, Refused, Report as WriteReport, JOURNAL, PROBE, STAGING,
};
pub use crate::fsio::{check_output_dir, write_output};

mod engines;
mod env;
mod fleet;
mod rollback;
pub use env::Env;
pub use rollback::{
    plan_rollback, plan_rollback_on, rollback, run_rollback, Rollback, RollbackPlan,
};

/// Which stages a plan covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every stage apply drives (infra only for a provisioned droplet; host skipped in CI).
    All,
    /// One stage, by name (host is then refused in CI rather than skipped).
    Only(Stage),
}

impl Selection {
    fn stages(self, t: &Topology) -> Vec<Stage> {
        match self {
            Selection::Only(s) => vec![s],
            Selection::All => {
                let mut v = Vec::new();
                if t.droplet.is_provisioned() {
                    v.push(Stage::Infra);
                }
                v.extend([Stage::Droplet, Stage::Host]);
                v
            }
        }
    }
}

/// Why a plan could not be made: the message and the exit code it ends the command with.
#[derive(Debug)]
pub struct Refusal {
    /// What went wrong (secret names only, never values).
    pub message: String,
    /// 1 for the config or artifacts, 3 for a failure at run time.
    pub code: i32,
}

impl Refusal {
    fn new(message: impl std::fmt::Display, code: i32) -> Refusal {
        Refusal {
            message: message.to_string(),
            code,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A plan: the document to show or save ([`Plan::document`]), and per stage what its driver
/// runs. Built by [`plan`], consumed by [`apply`].
pub struct Plan {
    doc: crate::plan::Plan,
    topology: Topology,
    set: ArtifactSet,
    env: Env,
    droplet: Option<(Target, Planned)>,
    /// The droplet stage on swarm or Kubernetes (`droplet.engine`); `droplet` is then None.
    engine: Option<engines::EnginePlan>,
    /// Several droplets behind a balancer: their plans, rolled one at a time.
    fleet: Option<droplet::Fleet>,
    infra: Option<terraform::Runner>,
    address_tf: Option<terraform::Runner>,
    host: Option<(host::HostEnv, Vec<host::Step>)>,
}

impl Plan {
    /// The plan as a document: per stage, artifact changes and the ordered ops.
    pub fn document(&self) -> &crate::plan::Plan {
        &self.doc
    }

    /// Close the ssh connection the plan's read-only queries opened (apply closes its own).
    pub fn close(&self) {
        if let Some((target, _)) = &self.droplet {
            close(target, &self.env);
        }
        if let Some(engines::EnginePlan::Swarm(b)) = &self.engine {
            close(&b.0.target, &self.env);
        }
        if let Some(f) = &self.fleet {
            fleet::close_fleet(f, &self.env);
        }
    }
}

/// The droplet stage when its release is already current: the plan's read-only ops ran (or were
/// shown); the connection's control dir goes and the stage says so.
fn already_current(target: &Target, base: Option<u64>, view: &mut dyn Progress) {
    target.ssh.cleanup();
    let mut steps = Steps::new(view);
    steps.start("droplet");
    steps.end(
        true,
        format!(
            "release {} is already current; nothing to do",
            base.unwrap_or(0)
        ),
    );
}

fn close(target: &Target, env: &Env) {
    if target.address.is_err() {
        return;
    }
    let _ = crate::exec::run_op(&target.ssh.close_master(droplet::PLANE), env);
    target.ssh.cleanup();
}

/// The terraform runner for `t` (the program found on PATH, else `terraform`).
fn tf_runner(t: &Topology, base: &Path) -> terraform::Runner {
    let program = terraform::find_program()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "terraform".to_owned());
    terraform::Runner::for_topology(&program, base, t)
}

/// Refuse Terraform files that are not exactly this config's render (read-only).
pub fn verify_terraform(t: &Topology, base: &Path) -> Result<(), Refusal> {
    if t.droplet.is_provisioned() {
        terraform::Runner::for_topology("terraform", base, t)
            .verify_config()
            .map_err(|e| Refusal::new(&e, e.exit_code()))?;
    }
    Ok(())
}

/// Plan the selected stages of `t` (already checked) from its fresh render `set`. Read-only:
/// remote state is only queried, after the Terraform directory was verified to hold exactly
/// the fresh render.
pub fn plan(t: &Topology, set: &ArtifactSet, sel: Selection, env: Env) -> Result<Plan, Refusal> {
    let stages = sel.stages(t);
    let base = env.base_dir.clone();
    let address_tf = (t.droplet.is_provisioned() && terraform::find_program().is_some())
        .then(|| tf_runner(t, &base));
    if stages.contains(&Stage::Infra) || stages.contains(&Stage::Droplet) {
        verify_terraform(t, &base)?;
    }
    let mut plan = Plan {
        doc: crate::plan::Plan::new(Vec::new()),
        topology: t.clone(),
        set: set.clone(),
        env,
        droplet: None,
        engine: None,
        fleet: None,
        infra: None,
        address_tf,
        host: None,
    };
    let mut out = Vec::new();
    for stage in stages {
        match stage {
            Stage::Droplet if fleet::driver(t) == fleet::Driver::Rolling => {
                let f = fleet::plan_fleet(&plan)?;
                out.extend(f.members.iter().map(|m| m.planned.plane.clone()));
                plan.fleet = Some(f);
            }
            Stage::Droplet => {
                if let Some(ep) = engines::plan_engine(&plan) {
                    let ep = ep?;
                    out.push(ep.plane().clone());
                    plan.engine = Some(ep);
                    continue;
                }
                let (target, mut planned) = plan_droplet(&plan)?;
                if first_release(t, &planned) {
                    planned.plane.notes.push(format!(
                        "after this first release, apply looks up {}'s nameservers (`{}`) and \
                         says whether to point them at DigitalOcean's at the registrar",
                        t.project.domain,
                        nameservers_op(t, &plan.env)
                    ));
                }
                out.push(planned.plane.clone());
                plan.droplet = Some((target, planned));
            }
            Stage::Infra => {
                let mut pp = StagePlan::new(Stage::Infra);
                if !t.droplet.is_provisioned() {
                    pp.notes
                        .push("droplet.address is set: Terraform is not used".to_owned());
                } else {
                    let runner = tf_runner(t, &base);
                    pp.ops = runner.ops();
                    pp.notes.push(
                        "Terraform plans the files `alembic render` wrote (verified to be exactly this config's render; the plan file goes to a private directory, removed after apply); its summary is shown when apply runs `plan`".to_owned(),
                    );
                    plan.infra = Some(runner);
                }
                out.push(pp);
            }
            Stage::Host => {
                let mut pp = StagePlan::new(Stage::Host);
                match host::HostEnv::from_vars(&|n| plan.env.var(n))
                    .and_then(|h| host::install_steps(t, set, &h).map(|steps| (h, steps)))
                {
                    // The deploy job runs `apply --yes` for every stage; the host stage is the
                    // operator's machine, so CI skips it unless asked by name (then apply refuses).
                    Ok((h, _)) if h.ci && sel == Selection::All => pp.notes.push(
                        "running in CI: the host plane is applied on the host itself \
                         (`alembic apply --plane host --yes`)"
                            .to_owned(),
                    ),
                    Ok((h, steps)) => {
                        pp.ops = steps.iter().flat_map(host::Step::ops).collect();
                        plan.host = Some((h, steps));
                    }
                    Err(e) => pp.notes.push(format!("host plane not planned: {e}")),
                }
                out.push(pp);
            }
            Stage::Ci => {
                let mut pp = StagePlan::new(Stage::Ci);
                pp.notes.push(
                    "the ci plane is applied by committing the rendered workflows (`alembic render`)"
                        .to_owned(),
                );
                out.push(pp);
            }
        }
    }
    plan.doc = crate::plan::Plan::new(out);
    Ok(plan)
}

/// Find the droplet (`droplet.address` or terraform's `reserved_ip`), read its state and plan.
/// A provisioned droplet whose infra stage has not been applied is planned as a first release
/// with its address shown as unknown. Apply calls this again after the infra stage ran.
fn plan_droplet(p: &Plan) -> Result<(Target, Planned), Refusal> {
    let (t, set, env) = (&p.topology, &p.set, &p.env);
    let mut ex = Executor::new(Goal::DryRun, env);
    let address = droplet::resolve_address(t, p.address_tf.as_ref(), &mut ex);
    let target = env.target(t, &address);
    plan_target(env, t, set, target, &mut ex, &mut None)
}

/// Plan the deploy of `t`'s release (rendered as `set`) to `target`: its bundle (with the
/// images of `build` workloads, resolved once into `pins` and reused by the next droplet of
/// several), and its state as read.
fn plan_target(
    env: &Env,
    t: &Topology,
    set: &ArtifactSet,
    target: Target,
    ex: &mut Executor<'_>,
    pins: &mut Option<Vec<images::Pin>>,
) -> Result<(Target, Planned), Refusal> {
    let mut bundle = Bundle::from_artifacts(t, set)
        .map_err(|e| Refusal::new(&e, e.exit_code()))?
        .in_project(t, &target.project);
    // `build` workloads: built here (or named by CI) and pinned into the release's compose file.
    if t.on_plane(alembic_config::Plane::Droplet)
        .any(|w| w.build.is_some())
    {
        let resolved = match pins {
            Some(p) => p.clone(),
            None => {
                let read = |name: &str| env.var(name);
                let p = images::resolve(t, &env.base_dir, &read, ex)
                    .map_err(|e| Refusal::new(&e, e.exit_code()))?;
                pins.insert(p).clone()
            }
        };
        bundle = bundle
            .pin(t, set, resolved)
            .map_err(|e| Refusal::new(&e, e.exit_code()))?;
    }
    let build_ops: Vec<Op> = bundle
        .pins
        .iter()
        .filter_map(|pin| match &pin.source {
            images::Source::Built { context, .. } | images::Source::Push { context, .. } => {
                Some(images::build_op(&pin.workload, &env.base_dir.join(context)))
            }
            images::Source::Given { .. } => None,
        })
        .collect();
    let with_builds = |mut planned: Planned| {
        planned.plane.ops.splice(0..0, build_ops.iter().cloned());
        planned
    };
    let lease = Lease::for_this_process();
    let by = lease.holder.clone();
    if target.address.is_err() {
        let planned = droplet::plan(&target, &bundle, RemoteState::default(), lease, &by);
        return Ok((target, with_builds(planned)));
    }
    target.ssh.prepare().map_err(|e| {
        Refusal::new(
            format!("cannot create the ssh control dir: {e}"),
            crate::exit::RUNTIME,
        )
    })?;
    let state = match target.query_state(ex) {
        Ok(s) => s,
        Err(e) => {
            close(&target, env);
            return Err(Refusal::new(&e, e.exit_code()));
        }
    };
    let planned = droplet::plan(&target, &bundle, state, lease, &by);
    Ok((target, with_builds(planned)))
}

/// The first release on a droplet Terraform provisions (the ledger has none yet): the run
/// after which the user has something to do outside alembic (delegate the domain).
fn first_release(t: &Topology, planned: &Planned) -> bool {
    t.droplet.is_provisioned()
        && planned.plane.base_release.is_none()
        && planned.plane.release.is_some()
}

fn nameservers_op(t: &Topology, env: &Env) -> Op {
    let server = env
        .var(terraform::nameservers::DNS_SERVER_ENV)
        .filter(|v| !v.is_empty());
    terraform::nameservers::lookup_op(t.project.domain.as_str(), server.as_deref())
}

/// What apply needs besides the plan.
pub struct Options<'a> {
    /// Let Terraform replace the droplet or its reserved IP (`--allow-replace`).
    pub allow_replace: bool,
    /// How a signal during a Terraform run is held off and then noticed (the binary's).
    pub interrupt: Option<&'a dyn Interrupt>,
}

/// Holding off Ctrl-C while Terraform runs (it stops gracefully on its own signal).
pub trait Interrupt {
    /// Hold signals until the returned guard is dropped.
    fn defer(&self) -> Box<dyn std::any::Any>;
    /// Whether a signal arrived.
    fn interrupted(&self) -> bool;
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Report {
    /// Every op the executor ran (a dry run: recorded), in order, as planned: placeholders
    /// such as the fencing token stay as the plan shows them.
    pub ran: Vec<Op>,
    /// Per stage, the ops its driver ran, in order (a step retried under its policy, such
    /// as a probe or the look at its container, is listed once).
    pub stages: Vec<(Stage, Vec<Op>)>,
    /// The first failure: message, exit code, and a hint when there is one.
    pub error: Option<Failure>,
}

/// A failed apply: what to say and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// The message (names only, never a secret's value).
    pub message: String,
    /// The exit code (3: run time; 1: config; 130: interrupted).
    pub code: i32,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Report {
    /// 0 when every stage succeeded, else the failure's exit code.
    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(0, |f| f.code)
    }

    fn fail(mut self, message: String, code: i32) -> Report {
        self.error = Some(Failure {
            message,
            code,
            hint: None,
        });
        self
    }

    fn add(&mut self, stage: Stage, ex: Executor<'_>) {
        let mut seen: Vec<Op> = Vec::new();
        for op in &ex.transcript {
            if !seen.contains(op) {
                seen.push(op.clone());
            }
        }
        self.ran.extend(ex.transcript);
        self.stages.push((stage, seen));
    }
}

/// Run `plan`: for real with [`Goal::Apply`], or as a dry run with [`Goal::DryRun`] (the same
/// drivers walk the same steps; the executor records instead of running). Stages run in order
/// (infra, droplet, host) and stop at the first failure.
pub fn apply(plan: &Plan, goal: Goal, view: &mut dyn Progress, opts: &Options<'_>) -> Report {
    let env = &plan.env;
    let mut report = Report::default();
    if let Some(runner) = &plan.infra {
        let mut ex = Executor::new(goal, env);
        // Every secret value this apply can know is scrubbed from what terraform prints.
        let names: Vec<String> = plan
            .topology
            .secret_names()
            .into_keys()
            .map(|n| n.to_string())
            .collect();
        let redact = Redactor::new(&names, env);
        let deferred = opts.interrupt.map(|i| i.defer());
        let interrupted = || opts.interrupt.is_some_and(|i| i.interrupted());
        let r = terraform::plan(&mut ex, runner, &redact).and_then(|p| {
            if let Some(s) = &p.summary {
                view.event(Event::Info {
                    message: format!("infra: terraform plan:\n{}", s.to_string().trim_end()),
                });
            }
            if interrupted() {
                // Dropping the plan removes its directory; nothing is applied.
                return Ok(());
            }
            terraform::apply(&mut ex, runner, p, opts.allow_replace, &redact)
        });
        drop(deferred);
        report.add(Stage::Infra, ex);
        if interrupted() {
            let why = match &r {
                Err(e) => format!(": {e}"),
                Ok(()) => String::new(),
            };
            return report.fail(
                format!(
                    "infra: interrupted; the plan file was removed and nothing further runs{why}"
                ),
                crate::exit::INTERRUPTED,
            );
        }
        if let Err(e) = r {
            let code = e.exit_code();
            return report.fail(format!("infra: {e}"), code);
        }
    }
    if let Some(ep) = &plan.engine {
        let fresh = match engines::after_infra(plan, ep, goal) {
            Ok(f) => f,
            Err(r) => return report.fail(r.message, r.code),
        };
        let ep = fresh.as_ref().unwrap_or(ep);
        if engines::apply_engine(plan, ep, goal, view, &mut report).is_err() {
            return report;
        }
    }
    if let Some(f) = &plan.fleet {
        // The infra stage may just have created the droplets: plan them again against the
        // addresses Terraform now reports.
        let replanned;
        let f = if plan.infra.is_some() && goal == Goal::Apply {
            fleet::close_fleet(f, env);
            replanned = match fleet::plan_fleet(plan) {
                Ok(x) => x,
                Err(r) => return report.fail(r.message, r.code),
            };
            &replanned
        } else {
            f
        };
        if let Err(failure) = fleet::apply_fleet(plan, f, goal, view, &mut report) {
            report.error = Some(failure);
            return report;
        }
    }
    // The infra stage may just have created the droplet (or moved its reserved IP): plan the
    // droplet again against the address Terraform now reports, once its bootstrap is done.
    let mut ex = Executor::new(goal, env);
    let fresh = matches!(
        (&plan.droplet, &plan.infra, goal),
        (Some(_), Some(_), Goal::Apply)
    );
    if let Some((planned_target, _)) = &plan.droplet {
        if let Err(e) = wait_for_bootstrap(plan, planned_target, fresh, &mut ex, view) {
            report.add(Stage::Droplet, ex);
            return report.fail(e.to_string(), e.exit_code());
        }
    }
    let replanned;
    let droplet = match (&plan.droplet, &plan.infra, goal) {
        (Some((old, _)), Some(_), Goal::Apply) => {
            close(old, env);
            replanned = match plan_droplet(plan) {
                Ok(x) => x,
                Err(r) => return report.fail(r.message, r.code),
            };
            Some(&replanned)
        }
        (d, _, _) => d.as_ref(),
    };
    let mut first = false;
    if let Some((target, planned)) = droplet {
        first = first_release(&plan.topology, planned);
        let names = plan
            .topology
            .workload_secret_names(alembic_config::Plane::Droplet);
        let r = match &planned.ops {
            None => {
                // Nothing to deploy: the plan's last step closes the connection it opened.
                // The wait for bootstrap ran above.
                let wait = target
                    .bootstrap_timeout
                    .map(|t| target.wait_bootstrap_op(t));
                for op in planned
                    .plane
                    .ops
                    .iter()
                    .filter(|o| Some(*o) != wait.as_ref())
                {
                    Steps::new(view).op(op);
                    let _ = if target.address.is_ok() {
                        ex.decide(op)
                    } else {
                        ex.run(op)
                    };
                }
                already_current(target, planned.plane.base_release, view);
                Ok(None)
            }
            Some(ops) => {
                let mut runner = Runner {
                    target,
                    ex: &mut ex,
                    steps: Steps::new(view),
                    redact: Redactor::new(&names, env),
                };
                runner.deploy(ops).map(Some)
            }
        };
        report.add(Stage::Droplet, ex);
        match r {
            Ok(Some(n)) if goal == Goal::Apply => view.event(Event::Info {
                message: format!("droplet: release {n} is live"),
            }),
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
                return report;
            }
        }
    }
    if let Some((henv, steps)) = &plan.host {
        let mut ex = Executor::new(goal, env);
        let mut hr = host::HostReport::default();
        let r = host::run_steps_into(&mut ex, steps, henv, &mut hr);
        report.add(Stage::Host, ex);
        let mut s = Steps::new(view);
        for w in hr.warnings {
            s.warn(format!("host: {w}"));
        }
        if let Err(e) = r {
            let code = e.exit_code();
            return report.fail(format!("host: {e}"), code);
        }
    }
    if first && goal == Goal::Apply {
        let op = nameservers_op(&plan.topology, env);
        terraform::nameservers::tell(plan.topology.project.domain.as_str(), &op, env, view);
    }
    report
}

/// A provisioned droplet: wait for its cloud-init to finish (the droplet stage's first step,
/// as the plan shows it) over the same ssh. `fresh`: the infra stage just ran, so the address
/// is read again (the droplet may have just been created). Nothing to do for an existing
/// server (`droplet.address`), or when apply cannot know the address (the deploy then stops
/// with that).
fn wait_for_bootstrap(
    plan: &Plan,
    planned: &Target,
    fresh: bool,
    ex: &mut Executor<'_>,
    view: &mut dyn Progress,
) -> Result<(), DeployError> {
    let Some(timeout) = planned.bootstrap_timeout else {
        return Ok(());
    };
    let (t, env) = (&plan.topology, &plan.env);
    let target = if fresh {
        let address = droplet::resolve_address(t, plan.address_tf.as_ref(), ex);
        env.target(t, &address)
    } else {
        planned.clone()
    };
    if ex.goal == Goal::Apply && target.address.is_err() {
        return Ok(());
    }
    let op = target.wait_bootstrap_op(timeout);
    let mut runner = Runner {
        target: &target,
        ex,
        steps: Steps::new(view),
        redact: Redactor::new(&[], env),
    };
    let r = runner.wait_bootstrap(&op, timeout);
    if r.is_err() {
        close(&target, env);
    }
    r
}
