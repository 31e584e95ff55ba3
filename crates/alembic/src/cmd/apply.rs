//! `alembic apply [FILE] [--plane P] [--yes]`: without `--yes`, the plan's operations are run
//! through the executor's dry-run goal (printed, nothing executed); with it, the same operations
//! run for real. A saved plan (`plan --out`) is refused when its artifacts or base release no
//! longer match a fresh plan.

use std::path::Path;

use alembic_deploy::droplet::{DeployError, Redactor, Runner};
use alembic_deploy::exec::{Executor, Goal, ProcessEnv, SecretSource};
use alembic_deploy::plan::Plan;
use alembic_deploy::progress::{self, Progress, Steps};
use alembic_deploy::{host, terraform};

use crate::cli::{Global, PlaneArg};
use crate::exit;

use super::plan::{build, close, fail, Built};

pub fn run(
    g: &Global,
    plan_file: Option<&Path>,
    plane: Option<PlaneArg>,
    yes: bool,
    allow_replace: bool,
) -> i32 {
    let saved = match plan_file {
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
            .and_then(|t| Plan::parse(&t))
        {
            Ok(s) => Some(s),
            Err(e) => return fail(e, exit::PROBLEMS),
        },
        None => None,
    };
    // A saved plan names its planes; apply exactly those.
    let plane = match (&saved, plane) {
        (Some(s), None) if s.planes.len() == 1 => match s.planes[0].plane.as_str() {
            "droplet" => Some(PlaneArg::Droplet),
            "infra" => Some(PlaneArg::Infra),
            "host" => Some(PlaneArg::Host),
            _ => None,
        },
        (_, p) => p,
    };
    let built = match build(g, plane, true) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if let Some(s) = &saved {
        let why = s.staleness(&built.plan);
        if !why.is_empty() {
            if let Some((t, _)) = &built.droplet {
                close(t);
            }
            eprintln!("error: the saved plan no longer matches what would be applied:");
            for w in &why {
                eprintln!("  - {w}");
            }
            eprintln!("\nhint: run `alembic plan --out FILE` again and review it");
            return exit::PROBLEMS;
        }
    }
    if !yes {
        return dry_run(g, built);
    }
    let mut view: Box<dyn Progress> = if g.json {
        Box::new(progress::Json)
    } else {
        Box::new(progress::Human::new())
    };
    execute(built, view.as_mut(), allow_replace, g.json)
}

/// Every op through the dry-run executor: recorded and shown, nothing run.
fn dry_run(g: &Global, built: Built) -> i32 {
    if let Some((t, _)) = &built.droplet {
        close(t);
    }
    let env = ProcessEnv;
    let mut ex = Executor::new(Goal::DryRun, &env);
    for p in &built.plan.planes {
        for op in &p.ops {
            let _ = ex.run(op);
        }
    }
    if g.json {
        let mut v = built.plan.to_json();
        v["dry_run"] = true.into();
        crate::output::print_value(&v);
    } else {
        super::plan::print_plan(&built.plan);
        eprintln!(
            "\ndry run: {} operation(s) recorded, nothing executed; run with --yes to apply",
            ex.transcript.len()
        );
    }
    exit::OK
}

fn execute(built: Built, view: &mut dyn Progress, allow_replace: bool, json: bool) -> i32 {
    let env = ProcessEnv;
    let mut code = exit::OK;
    if let Some(runner) = &built.infra {
        let mut ex = Executor::new(Goal::Apply, &env);
        // Every secret value this apply can know is scrubbed from what terraform prints.
        let names: Vec<String> = built
            .topology
            .secret_names()
            .into_keys()
            .map(|n| n.to_string())
            .collect();
        let redact = Redactor::new(&names, &env);
        // Ctrl-C now reaches terraform (it stops gracefully) while alembic waits, then
        // removes the plan directory on its normal error path.
        let deferred = crate::interrupt::defer();
        let r = terraform::plan(&mut ex, runner, &redact).and_then(|p| {
            if let (Some(s), false) = (&p.summary, json) {
                eprint!("infra: terraform plan:\n{s}");
            }
            if crate::interrupt::interrupted() {
                // Dropping the plan removes its directory; nothing is applied.
                return Ok(());
            }
            terraform::apply(&mut ex, runner, p, allow_replace, &redact)
        });
        drop(deferred);
        if crate::interrupt::interrupted() {
            let why = match &r {
                Err(e) => format!(": {e}"),
                Ok(()) => String::new(),
            };
            return report(
                view,
                json,
                &format!(
                    "infra: interrupted; the plan file was removed and nothing further runs{why}"
                ),
                exit::INTERRUPTED,
            );
        }
        if let Err(e) = r {
            return report(view, json, &format!("infra: {e}"), e.exit_code());
        }
    }
    // The infra plane may just have created the droplet (or, with --allow-replace, moved its
    // reserved IP): plan the droplet again against the address Terraform now reports.
    let replanned;
    let droplet = match (&built.droplet, &built.infra) {
        (Some((old, _)), Some(_)) => {
            close(old);
            replanned = match super::plan::plan_droplet(
                &built.topology,
                &built.set,
                &built.base_dir,
                built.address_tf.as_ref(),
            ) {
                Ok(x) => x,
                Err(code) => return code,
            };
            Some(&replanned)
        }
        (d, _) => d.as_ref(),
    };
    if let Some((target, planned)) = droplet {
        let secrets: &dyn SecretSource = &env;
        let mut ex = Executor::new(Goal::Apply, secrets);
        let names: Vec<String> = built
            .topology
            .on_plane(alembic_config::Plane::Droplet)
            .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
            .collect();
        match &planned.ops {
            None => {
                close(target);
                let mut steps = Steps::new(view);
                steps.start("droplet");
                steps.end(
                    true,
                    format!(
                        "release {} is already current; nothing to do",
                        planned.plane.base_release.unwrap_or(0)
                    ),
                );
            }
            Some(ops) => {
                let mut runner = Runner {
                    target,
                    ex: &mut ex,
                    steps: Steps::new(view),
                    redact: Redactor::new(&names, secrets),
                };
                match runner.deploy(ops) {
                    Ok(n) => {
                        if !json {
                            eprintln!("droplet: release {n} is live");
                        }
                    }
                    Err(e) => return report_deploy(view, json, e),
                }
            }
        }
    }
    if let Some(henv) = &built.host {
        let mut ex = Executor::new(Goal::Apply, &env);
        let mut hr = host::HostReport::default();
        let r = host::apply(&mut ex, &built.topology, &built.set, henv, &mut hr);
        let mut steps = Steps::new(view);
        for w in hr.warnings {
            steps.warn(format!("host: {w}"));
        }
        if let Err(e) = r {
            code = report(view, json, &format!("host: {e}"), e.exit_code());
        }
    }
    code
}

fn report(view: &mut dyn Progress, json: bool, msg: &str, code: i32) -> i32 {
    if json {
        Steps::new(view).warn(msg.to_owned());
    }
    fail(msg, code)
}

fn report_deploy(view: &mut dyn Progress, json: bool, e: DeployError) -> i32 {
    let code = e.exit_code();
    if json {
        Steps::new(view).warn(e.to_string());
    }
    if let DeployError::LeaseHeld(_) = e {
        eprintln!("error: {e}");
        eprintln!(
            "\nhint: wait for it to finish; a lease left by a killed apply expires on its own"
        );
        return code;
    }
    fail(e, code)
}
