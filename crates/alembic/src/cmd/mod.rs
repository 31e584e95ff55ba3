//! One module per command. `dispatch` is the only place that matches on the command enum: it
//! works out the output mode (refusing conflicting flags), runs the command and hands its
//! outcome to the view layer.
//!
//! Commands on the view layer return a [`CmdResult`]; the deploy commands still print
//! themselves and are wrapped with [`Outcome::printed`] (their exit code only).

mod apply;
mod bootstrap;
mod check;
mod completions;
mod doctor;
mod exec;
mod explain;
mod init;
mod logs;
mod man;
mod plan;
mod render;
mod rollback;
mod scan;
mod schema;
mod secrets;
mod status;
mod topology;
mod validate;

use clap::ValueEnum;

use crate::cli::{Cli, Command, DiagFormat, TopologyFormat};
use crate::view::{self, CmdResult, Failure, Mode, Outcome};

pub fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    let json = if g.json { Mode::Json } else { Mode::Human };
    let (mode, result): (Mode, CmdResult) = match &cli.command {
        Command::Init { dir, force } => (json, init::run(dir, *force)),
        Command::Validate => (json, validate::run(g)),
        Command::Check { format } => match resolve(g.json, *format, DiagFormat::Json) {
            Ok((mode, f)) => (mode, check::run(g, f.unwrap_or(DiagFormat::Human))),
            Err(f) => (json, Err(f.into())),
        },
        Command::Scan { paths, format } => match resolve(g.json, *format, DiagFormat::Json) {
            Ok((mode, f)) => (mode, scan::run(paths, f.unwrap_or(DiagFormat::Human))),
            Err(f) => (json, Err(f.into())),
        },
        Command::Topology { format } => match resolve(g.json, *format, TopologyFormat::Json) {
            Ok((mode, f)) => (mode, topology::run(g, f.unwrap_or(TopologyFormat::Human))),
            Err(f) => (json, Err(f.into())),
        },
        Command::Render { out, check } => (json, render::run(g, out.as_deref(), *check)),
        Command::Plan {
            plane,
            detailed_exitcode,
            out,
            verbose,
            diff,
        } => (
            json,
            Ok(Outcome::printed(plan::run(
                g,
                *plane,
                *detailed_exitcode,
                out.as_deref(),
                plan::Detail {
                    argv: *verbose,
                    diffs: *diff,
                },
            ))),
        ),
        Command::Apply {
            plan_file,
            plane,
            yes,
            allow_replace,
        } => (
            json,
            Ok(Outcome::printed(apply::run(
                g,
                plan_file.as_deref(),
                *plane,
                *yes,
                *allow_replace,
            ))),
        ),
        Command::Rollback { plane, to, yes } => (
            json,
            Ok(Outcome::printed(rollback::run(g, *plane, *to, *yes))),
        ),
        Command::Doctor { online } => (json, Ok(Outcome::printed(doctor::run(g, *online)))),
        Command::Secrets { check, plane } => {
            (json, Ok(Outcome::printed(secrets::run(g, *check, *plane))))
        }
        Command::Schema => (json, schema::run()),
        Command::Bootstrap { user, yes } => (
            json,
            Ok(Outcome::printed(bootstrap::run(g, user.as_deref(), *yes))),
        ),
        Command::Man => (json, man::run()),
        Command::Explain { code } => (json, explain::run(code)),
        Command::Completions { shell } => (json, completions::run(*shell)),
        Command::GenerateDocs { out } => (json, crate::docs::generate(out)),
        Command::Status => (json, Ok(Outcome::printed(status::run(g)))),
        Command::Logs {
            workload,
            follow,
            since,
            tail,
        } => (
            json,
            Ok(Outcome::printed(logs::run(
                g,
                workload,
                *follow,
                since.as_deref(),
                *tail,
            ))),
        ),
        Command::Exec { workload, cmd } => {
            (json, Ok(Outcome::printed(exec::run(g, workload, cmd))))
        }
    };
    view::show(mode, result.unwrap_or_else(|o| o))
}

/// The output mode and the command's own format: `--format json` is `--json`; `--json` with
/// another `--format` is a usage error (exit 2; in JSON, since JSON was asked for).
fn resolve<F: ValueEnum + PartialEq + Copy>(
    json: bool,
    format: Option<F>,
    json_format: F,
) -> Result<(Mode, Option<F>), Failure> {
    match (json, format) {
        (_, Some(f)) if f == json_format => Ok((Mode::Json, None)),
        (true, Some(f)) => {
            let name = f
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default();
            Err(Failure::usage(
                "conflicting_flags",
                format!("--json conflicts with --format {name}"),
            )
            .hint(format!(
                "--json is --format json; drop --json for {name}, or --format for JSON"
            )))
        }
        (true, None) => Ok((Mode::Json, None)),
        (false, f) => Ok((Mode::Human, f)),
    }
}

/// One code's explanation as Markdown, with the checks' rule data (docs/codes.md).
pub fn explained_markdown(e: &'static alembic_config::explain::Explanation) -> String {
    explain::Explained::of(e).markdown()
}

/// The template `alembic init` writes (tests start from it).
pub fn init_template() -> &'static str {
    init::TEMPLATE
}
