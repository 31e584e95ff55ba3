//! `alembic apply [FILE] [--plane P] [--yes]`: without `--yes`, the plan runs through the
//! façade's dry-run goal (the same drivers, the executor records and runs nothing); with it,
//! the same steps run for real. A saved plan (`plan --out`) is refused when its artifacts or
//! base release no longer match a fresh plan.

use std::path::Path;

use alembic_deploy::facade::{self, Document, Event, Goal, Progress, Stage};

use crate::cli::{Global, PlaneArg};
use crate::exit;

use super::plan::{build, fail};

/// Signals held off while Terraform runs (see `crate::interrupt`).
struct Interrupts;

impl facade::Interrupt for Interrupts {
    fn defer(&self) -> Box<dyn std::any::Any> {
        Box::new(crate::interrupt::defer())
    }

    fn interrupted(&self) -> bool {
        crate::interrupt::interrupted()
    }
}

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
            .and_then(|t| Document::parse(&t))
        {
            Ok(s) => Some(s),
            Err(e) => return fail(e, exit::PROBLEMS),
        },
        None => None,
    };
    // A saved plan names its stages; apply exactly those.
    let plane = match (&saved, plane) {
        (Some(s), None) if s.planes.len() == 1 && s.planes[0].plane != Stage::Ci => {
            Some(s.planes[0].plane)
        }
        (_, p) => p,
    };
    let built = match build(g, plane, true) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if let Some(s) = &saved {
        let why = s.staleness(built.document());
        if !why.is_empty() {
            built.close();
            eprintln!("error: the saved plan no longer matches what would be applied:");
            for w in &why {
                eprintln!("  - {w}");
            }
            eprintln!("\nhint: run `alembic plan --out FILE` again and review it");
            return exit::PROBLEMS;
        }
    }
    let opts = facade::Options {
        allow_replace,
        interrupt: Some(&Interrupts),
    };
    if !yes {
        // The plan's own queries are done; the dry run records the same steps apply runs.
        built.close();
        let report = facade::apply(&built, Goal::DryRun, &mut Quiet, &opts);
        if g.json {
            let mut v = built.document().to_json();
            v["dry_run"] = true.into();
            v["ran"] = serde_json::to_value(&report.ran).expect("ops serialise");
            crate::output::print_value(&v);
        } else {
            super::plan::print_plan(built.document(), super::plan::Detail::FULL);
            eprintln!(
                "\ndry run: {} operation(s) recorded, nothing executed; run with --yes to apply",
                report.ran.len()
            );
        }
        return exit::OK;
    }
    let mut view: Box<dyn Progress> = if g.json {
        Box::new(facade::Json)
    } else {
        Box::new(facade::Human::new())
    };
    let report = facade::apply(&built, Goal::Apply, view.as_mut(), &opts);
    match report.error {
        None => exit::OK,
        Some(f) => {
            if g.json {
                view.event(Event::Warning {
                    message: f.message.clone(),
                });
            }
            eprintln!("error: {}", f.message);
            if let Some(h) = f.hint {
                eprintln!("\nhint: {h}");
            }
            f.code
        }
    }
}

/// A dry run shows the plan, not step progress.
struct Quiet;

impl Progress for Quiet {
    fn event(&mut self, _: Event) {}
}
