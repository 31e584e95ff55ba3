//! `alembic plan`: what apply would change, per plane, with the exact operations. Also the
//! plan builder `apply` and `rollback` share, so apply runs exactly what plan shows.

use std::path::Path;

use alembic_config::Topology;
use alembic_deploy::droplet::{self, Bundle, Planned, RemoteState, Target};
use alembic_deploy::exec::{Executor, Goal, ProcessEnv};
use alembic_deploy::lease::Lease;
use alembic_deploy::plan::{Plan, PlanePlan};
use alembic_deploy::{host, terraform};
use alembic_render::ArtifactSet;

use crate::cli::{Global, PlaneArg};
use crate::config::Origin;
use crate::exit;

/// A plan and what apply needs to run it.
pub(crate) struct Built {
    pub plan: Plan,
    pub topology: Topology,
    pub set: ArtifactSet,
    pub droplet: Option<(Target, Planned)>,
    pub infra: Option<terraform::Runner>,
    /// Where a provisioned droplet's address is read from (`terraform output`), whatever
    /// planes are selected: apply reads it again after the infra plane ran.
    pub address_tf: Option<terraform::Runner>,
    pub host: Option<host::HostEnv>,
    /// alembic.toml's directory: `build` contexts are relative to it.
    pub base_dir: std::path::PathBuf,
}

/// Which planes a `--plane` selects: none given means every plane apply drives.
fn selected(plane: Option<PlaneArg>, t: &Topology) -> Vec<PlaneArg> {
    match plane {
        Some(p) => vec![p],
        None => {
            let mut v = Vec::new();
            if t.droplet.is_provisioned() {
                v.push(PlaneArg::Infra);
            }
            v.extend([PlaneArg::Droplet, PlaneArg::Host]);
            v
        }
    }
}

/// Print an error on stderr and give back its exit code.
pub(crate) fn fail(msg: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("error: {msg}");
    code
}

/// Check, load, render and plan the selected planes. Read-only: remote state is only queried,
/// and only after `check` passed and the Terraform directory holds exactly the fresh render.
pub(crate) fn build(g: &Global, plane: Option<PlaneArg>, for_apply: bool) -> Result<Built, i32> {
    let verb = if for_apply { "apply" } else { "plan" };
    let (origin, _loaded, t) = super::check::gate(g, verb)?;
    if for_apply && origin == Origin::Embedded {
        return Err(fail(
            "refusing to apply the embedded default topology (its domain is a placeholder); \
             write your own alembic.toml (`alembic init`)",
            exit::PROBLEMS,
        ));
    }
    let set = alembic_render::render(&t);
    let planes = selected(plane, &t);
    let program = terraform::find_program().map(|p| p.display().to_string());
    let address_tf = t
        .droplet
        .is_provisioned()
        .then(|| {
            program
                .as_deref()
                .map(|p| terraform::Runner::for_topology(p, &origin.base_dir(), &t))
        })
        .flatten();
    // Terraform (the infra plane, or the droplet plane reading its address) runs only on the
    // files alembic renders from this config: anything else there is refused before it runs.
    if t.droplet.is_provisioned()
        && (planes.contains(&PlaneArg::Infra) || planes.contains(&PlaneArg::Droplet))
    {
        terraform::Runner::for_topology("terraform", &origin.base_dir(), &t)
            .verify_config()
            .map_err(|e| fail(&e, e.exit_code()))?;
    }
    let mut planes_out = Vec::new();
    let mut built = Built {
        plan: Plan::new(Vec::new()),
        topology: t.clone(),
        set: set.clone(),
        droplet: None,
        infra: None,
        address_tf,
        host: None,
        base_dir: origin.base_dir(),
    };
    for p in planes {
        match p {
            PlaneArg::Droplet => {
                let (target, planned) =
                    plan_droplet(&t, &set, &built.base_dir, built.address_tf.as_ref())?;
                planes_out.push(planned.plane.clone());
                built.droplet = Some((target, planned));
            }
            PlaneArg::Infra => {
                let mut pp = PlanePlan::new("infra");
                if !t.droplet.is_provisioned() {
                    pp.notes
                        .push("droplet.address is set: Terraform is not used".to_owned());
                } else {
                    let program = program.as_deref().unwrap_or("terraform");
                    let runner = terraform::Runner::for_topology(program, &origin.base_dir(), &t);
                    pp.ops = runner.ops();
                    pp.notes.push(
                        "Terraform plans the files `alembic render` wrote (verified to be exactly this config's render; the plan file goes to a private directory, removed after apply); its summary is shown when apply runs `plan`".to_owned(),
                    );
                    built.infra = Some(runner);
                }
                planes_out.push(pp);
            }
            PlaneArg::Host => {
                let mut pp = PlanePlan::new("host");
                match host::HostEnv::from_process()
                    .and_then(|env| host::install_ops(&t, &set, &env).map(|ops| (env, ops)))
                {
                    // The deploy job runs `apply --yes` for every plane; the host plane is the
                    // operator's machine, so CI skips it unless asked by name (then apply refuses).
                    Ok((env, _)) if env.ci && plane.is_none() => pp.notes.push(
                        "running in CI: the host plane is applied on the host itself \
                         (`alembic apply --plane host --yes`)"
                            .to_owned(),
                    ),
                    Ok((env, ops)) => {
                        pp.ops = ops;
                        built.host = Some(env);
                    }
                    Err(e) => pp.notes.push(format!("host plane not planned: {e}")),
                }
                planes_out.push(pp);
            }
            PlaneArg::Ci => {
                let mut pp = PlanePlan::new("ci");
                pp.notes.push(
                    "the ci plane is applied by committing the rendered workflows (`alembic render`)"
                        .to_owned(),
                );
                planes_out.push(pp);
            }
        }
    }
    built.plan = Plan::new(planes_out);
    Ok(built)
}

/// Find the droplet (`droplet.address` or terraform's `reserved_ip`), read its state and plan.
/// A provisioned droplet whose infra plane has not been applied is planned as a first release
/// with its address shown as unknown. Apply calls this again after the infra plane ran.
pub(crate) fn plan_droplet(
    t: &Topology,
    set: &ArtifactSet,
    base: &std::path::Path,
    tf: Option<&terraform::Runner>,
) -> Result<(Target, Planned), i32> {
    let env = ProcessEnv;
    let mut ex = Executor::new(Goal::DryRun, &env);
    let address = droplet::resolve_address(t, tf, &mut ex);
    let target = Target::from_topology(t, &address);
    let mut bundle = Bundle::from_artifacts(t, set).map_err(|e| fail(&e, e.exit_code()))?;
    // `build` workloads: built here (or named by CI) and pinned into the release's compose file.
    if t.on_plane(alembic_config::Plane::Droplet)
        .any(|w| w.build.is_some())
    {
        let read = |name: &str| std::env::var(name).ok();
        let pins = alembic_deploy::images::resolve(t, base, &read, &mut ex)
            .map_err(|e| fail(&e, e.exit_code()))?;
        bundle = bundle
            .pin(t, set, pins)
            .map_err(|e| fail(&e, e.exit_code()))?;
    }
    let build_ops: Vec<_> = bundle
        .pins
        .iter()
        .filter_map(|p| match &p.source {
            alembic_deploy::images::Source::Built { context, .. }
            | alembic_deploy::images::Source::Push { context, .. } => Some(
                alembic_deploy::images::build_op(&p.workload, &base.join(context)),
            ),
            alembic_deploy::images::Source::Given { .. } => None,
        })
        .collect();
    let with_builds = |mut planned: Planned| {
        planned.plane.ops.splice(0..0, build_ops.iter().cloned());
        planned
    };
    if target.address.is_err() {
        let lease = Lease::for_this_process();
        let by = lease.holder.clone();
        let planned = droplet::plan(&target, &bundle, RemoteState::default(), lease, &by);
        return Ok((target, with_builds(planned)));
    }
    target.ssh.prepare().map_err(|e| {
        fail(
            format!("cannot create the ssh control dir: {e}"),
            exit::RUNTIME,
        )
    })?;
    let state = match target.query_state(&mut ex) {
        Ok(s) => s,
        Err(e) => {
            close(&target);
            return Err(fail(&e, e.exit_code()));
        }
    };
    let lease = Lease::for_this_process();
    let by = lease.holder.clone();
    let planned = droplet::plan(&target, &bundle, state, lease, &by);
    Ok((target, with_builds(planned)))
}

/// Close the ssh master a read-only query opened (none when the address is unknown).
pub(crate) fn close(target: &Target) {
    if target.address.is_err() {
        return;
    }
    let env = ProcessEnv;
    let _ = alembic_deploy::exec::run_op(&target.ssh.close_master(droplet::PLANE), &env);
    target.ssh.cleanup();
}

/// The plan for humans, on stdout (it is the command's data).
pub(crate) fn print_plan(plan: &Plan) {
    let mut out = String::new();
    for p in &plan.planes {
        let head = match (p.release, p.base_release) {
            (Some(n), Some(b)) => format!("plane {}: release {n} (replacing release {b})", p.plane),
            (Some(n), None) => format!("plane {}: release {n} (first release)", p.plane),
            _ => format!("plane {}", p.plane),
        };
        out.push_str(&head);
        out.push('\n');
        for n in &p.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        for i in &p.images {
            match &i.from {
                Some(f) if i.action == "changed" => out.push_str(&format!(
                    "  image {}: changed {f} -> {}\n",
                    i.workload, i.to
                )),
                _ => out.push_str(&format!("  image {}: {} {}\n", i.workload, i.action, i.to)),
            }
        }
        for c in &p.changes {
            out.push_str(&format!("  {} {}\n", c.action.symbol(), c.path));
            if let Some(d) = &c.diff {
                for line in d.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
        if !p.ops.is_empty() {
            out.push_str(&format!(
                "  operations ({} in order, {} change state):\n",
                p.ops.len(),
                p.mutating_ops()
            ));
            for (i, op) in p.ops.iter().enumerate() {
                let mark = if op.mutating { "*" } else { " " };
                out.push_str(&format!("  {mark}{:>3}. {}: {op}\n", i + 1, op.step));
            }
        }
    }
    if !plan.has_changes() {
        out.push_str("No changes.\n");
    }
    print!("{out}");
}

pub fn run(g: &Global, plane: Option<PlaneArg>, detailed: bool, out: Option<&Path>) -> i32 {
    let built = match build(g, plane, false) {
        Ok(b) => b,
        Err(code) => return if detailed { exit::PROBLEMS } else { code },
    };
    if let Some((target, _)) = &built.droplet {
        close(target);
    }
    if let Some(path) = out {
        let text = format!("{:#}\n", built.plan.to_json());
        if let Err(e) = alembic_deploy::fsio::write_output(path, text.as_bytes(), 0o644) {
            let code = fail(
                format!("cannot write {}: {e}", path.display()),
                exit::RUNTIME,
            );
            return if detailed { exit::PROBLEMS } else { code };
        }
        eprintln!(
            "plan saved to {}; run `alembic apply {}` to apply it",
            path.display(),
            path.display()
        );
    }
    if g.json {
        crate::output::print_value(&built.plan.to_json());
    } else {
        print_plan(&built.plan);
    }
    match (detailed, built.plan.has_changes()) {
        (true, true) => 2,
        _ => exit::OK,
    }
}
