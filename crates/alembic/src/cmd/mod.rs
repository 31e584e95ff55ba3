//! One module per command. `dispatch` is the only place that matches on the command enum: it
//! works out the output mode (refusing conflicting flags), runs the command and hands its
//! outcome to the view layer.
//!
//! Every command returns a [`CmdResult`]: its data and exit code as a view, failures
//! included, so `--json` yields JSON on stdout whatever the outcome. Commands that stream
//! while they run (apply's progress, `logs`, `exec`) end with [`Outcome::streamed`] on
//! success and with a view on failure.

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
use crate::view::{self, CmdResult, Failure, Mode};

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
            plan::run(
                g,
                *plane,
                *detailed_exitcode,
                out.as_deref(),
                plan::Detail {
                    argv: *verbose,
                    diffs: *diff,
                },
            ),
        ),
        Command::Apply {
            plan_file,
            plane,
            yes,
            allow_replace,
        } => (
            json,
            apply::run(g, plan_file.as_deref(), *plane, *yes, *allow_replace),
        ),
        Command::Rollback {
            plane,
            to,
            droplet,
            yes,
        } => (json, rollback::run(g, *plane, *to, *droplet, *yes)),
        Command::Doctor { online } => (json, doctor::run(g, *online)),
        Command::Secrets { check, plane } => (json, secrets::run(g, *check, *plane)),
        Command::Schema => (json, schema::run()),
        Command::Bootstrap { user, droplet, yes } => {
            (json, bootstrap::run(g, user.as_deref(), *droplet, *yes))
        }
        Command::Man => (json, man::run()),
        Command::Explain { code } => (json, explain::run(code)),
        Command::Completions { shell } => (json, completions::run(*shell)),
        Command::GenerateDocs { out } => (json, crate::docs::generate(out)),
        Command::Status { droplet } => (json, status::run(g, *droplet)),
        Command::Logs {
            workload,
            droplet,
            follow,
            since,
            tail,
        } => (
            json,
            logs::run(
                g,
                workload,
                *droplet,
                logs::Filter {
                    follow: *follow,
                    since: since.as_deref(),
                    tail: *tail,
                },
            ),
        ),
        Command::Exec {
            workload,
            droplet,
            cmd,
        } => (json, exec::run(g, workload, *droplet, cmd)),
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

/// A deploy command's failure with its DESIGN exit code: 2 is a usage error, 1 a refusal
/// (the config or files are not what the command may act on), anything else a run-time
/// failure with that code. A `\nhint: ` in `msg` becomes the failure's hint.
pub(crate) fn failure(id: &'static str, msg: impl std::fmt::Display, code: i32) -> Failure {
    let text = msg.to_string();
    let (message, hint) = match text.split_once("\nhint: ") {
        Some((m, h)) => (m.to_owned(), Some(h.trim().to_owned())),
        None => (text, None),
    };
    let f = match code {
        crate::exit::USAGE => Failure::usage(id, message),
        crate::exit::PROBLEMS => Failure::refused(id, message),
        c => Failure::runtime(id, message).exit(c),
    };
    match hint {
        Some(h) => f.hint(h),
        None => f,
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
