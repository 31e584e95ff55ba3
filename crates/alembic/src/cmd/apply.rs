//! `alembic apply [FILE] [--plane P] [--yes]`: without `--yes`, the plan runs through the
//! façade's dry-run goal (the same drivers, the executor records and runs nothing); with it,
//! the same steps run for real. A saved plan (`plan --out`) is refused when its artifacts or
//! base release no longer match a fresh plan.

use std::path::Path;

use alembic_deploy::facade::{self, Document, Event, Goal, Progress, Stage};

use crate::cli::{Global, PlaneArg};
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

use super::failure;
use super::plan::build;

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
) -> CmdResult {
    let saved = match plan_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))
                .and_then(|t| Document::parse(&t))
                .map_err(|e| {
                    failure("saved_plan_unreadable", e, exit::PROBLEMS).at(p.display().to_string())
                })?,
        ),
        None => None,
    };
    // A saved plan names its stages; apply exactly those.
    let plane = match (&saved, plane) {
        (Some(s), None) if s.planes.len() == 1 && s.planes[0].plane != Stage::Ci => {
            Some(s.planes[0].plane)
        }
        (_, p) => p,
    };
    let built = build(g, plane, true, None)?;
    if let Some(s) = &saved {
        let why = s.staleness(built.document());
        if !why.is_empty() {
            built.close();
            let list: Vec<String> = why.iter().map(|w| format!("  - {w}")).collect();
            let mut f = failure(
                "saved_plan_stale",
                format!(
                    "the saved plan no longer matches what would be applied:\n{}",
                    list.join("\n")
                ),
                exit::PROBLEMS,
            )
            .hint("run `alembic plan --out FILE` again and review it");
            if let Some(p) = plan_file {
                f = f.at(p.display().to_string());
            }
            return Err(f.into());
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
        let mut v = built.document().to_json();
        v["dry_run"] = true.into();
        v["ran"] = serde_json::to_value(&report.ran).expect("ops serialise");
        let view = Rendered::new(
            super::plan::plan_text(built.document(), super::plan::Detail::FULL),
            format!(
                "\ndry run: {} operation(s) recorded, nothing executed; run with --yes to apply\n",
                report.ran.len()
            ),
            v,
        );
        return Ok(Outcome::new(exit::OK, view));
    }
    let mut view: Box<dyn Progress> = if g.json {
        Box::new(facade::Json)
    } else {
        Box::new(facade::Human::new())
    };
    let report = facade::apply(&built, Goal::Apply, view.as_mut(), &opts);
    match report.error {
        // The progress was streamed as it happened (JSON lines with --json).
        None => Ok(Outcome::streamed(exit::OK)),
        Some(f) => {
            let mut e = failure("apply_failed", &f.message, f.code);
            if let Some(h) = f.hint {
                e = e.hint(h);
            }
            Err(e.into())
        }
    }
}

/// A dry run shows the plan, not step progress.
struct Quiet;

impl Progress for Quiet {
    fn event(&mut self, _: Event) {}
}
