//! `alembic plan`: what apply would change, per plane, with the exact operations. Also the
//! plan builder `apply` and `rollback` share, so apply runs exactly what plan shows.

use std::path::Path;

use alembic_deploy::facade::{self, Document, Env, Selection};

use crate::cli::{Global, PlaneArg};
use crate::config::Origin;
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

use super::failure;

/// Check, load, render and plan the selected stages through the façade. Read-only: remote
/// state is only queried, and only after `check` passed and the Terraform directory holds
/// exactly the fresh render. `fail_exit` replaces the exit code of a failure (1 under
/// `plan --detailed-exitcode`, where 2 means "changes").
pub(crate) fn build(
    g: &Global,
    plane: Option<PlaneArg>,
    for_apply: bool,
    fail_exit: Option<i32>,
) -> Result<facade::Plan, Outcome> {
    let verb = if for_apply { "apply" } else { "plan" };
    let (origin, _loaded, t) = super::check::gate(g, verb)?;
    if for_apply && origin == Origin::Embedded {
        return Err(failure(
            "embedded_default_refused",
            "refusing to apply the embedded default topology (its domain is a placeholder); \
             write your own alembic.toml (`alembic init`)",
            exit::PROBLEMS,
        )
        .into());
    }
    let set = alembic_render::render(&t);
    let sel = plane.map_or(Selection::All, Selection::Only);
    facade::plan(&t, &set, sel, Env::from_process(origin.base_dir())).map_err(|r| {
        let f = failure("plan_failed", &r, r.code);
        (match fail_exit {
            Some(c) => f.exit(c),
            None => f,
        })
        .into()
    })
}

/// How much of each op and diff the human view shows.
#[derive(Clone, Copy)]
pub(crate) struct Detail {
    /// Every op's full argv (`plan --verbose`, and apply's dry run).
    pub argv: bool,
    /// Every artifact's diff, added files included (`plan --diff`, and apply's dry run); else
    /// only changed files' diffs.
    pub diffs: bool,
}

impl Detail {
    pub(crate) const FULL: Detail = Detail {
        argv: true,
        diffs: true,
    };
}

/// The ssh connection the stage's ops use, described once: `user@host port N`.
fn ssh_header(ops: &[alembic_deploy::facade::Op]) -> Option<String> {
    let op = ops.iter().find(|o| o.program == "ssh")?;
    let dest = op.args.iter().skip_while(|a| *a != "--").nth(1)?;
    let port = op
        .args
        .iter()
        .position(|a| a == "-p")
        .and_then(|i| op.args.get(i + 1))?;
    Some(format!(
        "over ssh: {dest} port {port} (one connection for the stage; `--verbose` shows every argv)"
    ))
}

/// One op in the compact view: its step, and for a local program its command line (ssh ops
/// are fixed remote scripts: their step names them).
fn compact(op: &alembic_deploy::facade::Op) -> String {
    if op.program == "ssh" {
        return op.step.clone();
    }
    let line = op.to_string();
    let short: String = line.chars().take(100).collect();
    let more = if short.len() < line.len() { " …" } else { "" };
    format!("{}: {short}{more}", op.step)
}

/// The plan for humans (the command's data, for stdout).
pub(crate) fn plan_text(plan: &Document, detail: Detail) -> String {
    let mut out = String::new();
    for p in &plan.planes {
        let plane = match &p.target {
            Some(t) => format!("{} {t}", p.plane),
            None => p.plane.to_string(),
        };
        let head = match (p.release, p.base_release) {
            (Some(n), Some(b)) => format!("plane {plane}: release {n} (replacing release {b})"),
            (Some(n), None) => format!("plane {plane}: release {n} (first release)"),
            _ => format!("plane {plane}"),
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
            let show = detail.diffs || c.action == alembic_deploy::facade::Action::Change;
            if let (Some(d), true) = (&c.diff, show) {
                for line in d.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
        if !p.ops.is_empty() {
            if !detail.argv {
                if let Some(h) = ssh_header(&p.ops) {
                    out.push_str(&format!("  {h}\n"));
                }
            }
            out.push_str(&format!(
                "  operations ({} in order, {} change state):\n",
                p.ops.len(),
                p.mutating_ops()
            ));
            for (i, op) in p.ops.iter().enumerate() {
                let mark = if op.mutating { "*" } else { " " };
                if detail.argv {
                    out.push_str(&format!("  {mark}{:>3}. {}: {op}\n", i + 1, op.step));
                } else {
                    out.push_str(&format!("  {mark}{:>3}. {}\n", i + 1, compact(op)));
                }
            }
        }
        out.push_str(&format!("  = {}\n", p.summary_line()));
    }
    if !plan.has_changes() {
        out.push_str("No changes.\n");
    } else {
        out.push_str(&format!("{}\n", plan.summary_line()));
    }
    out
}

pub fn run(
    g: &Global,
    plane: Option<PlaneArg>,
    detailed: bool,
    out: Option<&Path>,
    detail: Detail,
) -> CmdResult {
    // With --detailed-exitcode, 2 means "changes": every error exits 1 (Terraform's habit).
    let fail_exit = detailed.then_some(exit::PROBLEMS);
    let built = build(g, plane, false, fail_exit)?;
    built.close();
    let doc = built.document();
    let mut talk = String::new();
    if let Some(path) = out {
        let text = format!("{:#}\n", doc.to_json());
        if let Err(e) = alembic_deploy::facade::write_output(path, text.as_bytes(), 0o644) {
            let f = failure(
                "plan_unwritable",
                format!("cannot write {}: {e}", path.display()),
                exit::RUNTIME,
            )
            .at(path.display().to_string());
            return Err((match fail_exit {
                Some(c) => f.exit(c),
                None => f,
            })
            .into());
        }
        talk = format!(
            "plan saved to {}; run `alembic apply {}` to apply it\n",
            path.display(),
            path.display()
        );
    }
    let code = match (detailed, doc.has_changes()) {
        (true, true) => 2,
        _ => exit::OK,
    };
    let view = Rendered::new(plan_text(doc, detail), String::new(), doc.to_json());
    let o = Outcome::new(code, view);
    Ok(if talk.is_empty() {
        o
    } else {
        o.note(talk.trim_end())
    })
}
