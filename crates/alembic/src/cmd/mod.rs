//! One module per command. `dispatch` is the only place that matches on the command enum.

mod apply;
mod bootstrap;
mod check;
mod doctor;
mod exec;
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

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    match &cli.command {
        Command::Init { dir, force } => init::run(dir, *force),
        Command::Validate => validate::run(g),
        Command::Check { format } => check::run(g, *format),
        Command::Scan { paths, format } => scan::run(g, paths, *format),
        Command::Topology { format } => topology::run(g, *format),
        Command::Render { out, check } => render::run(g, out.as_deref(), *check),
        Command::Plan {
            plane,
            detailed_exitcode,
            out,
            verbose,
            diff,
        } => plan::run(
            g,
            *plane,
            *detailed_exitcode,
            out.as_deref(),
            plan::Detail {
                argv: *verbose,
                diffs: *diff,
            },
        ),
        Command::Apply {
            plan_file,
            plane,
            yes,
            allow_replace,
        } => apply::run(g, plan_file.as_deref(), *plane, *yes, *allow_replace),
        Command::Rollback { plane, to, yes } => rollback::run(g, *plane, *to, *yes),
        Command::Doctor { online } => doctor::run(g, *online),
        Command::Secrets { check, plane } => secrets::run(g, *check, *plane),
        Command::Schema => schema::run(),
        Command::Bootstrap { user, yes } => bootstrap::run(g, user.as_deref(), *yes),
        Command::Man => man::run(),
        Command::Status => status::run(g),
        Command::Logs {
            workload,
            follow,
            since,
            tail,
        } => logs::run(g, workload, *follow, since.as_deref(), *tail),
        Command::Exec { workload, cmd } => exec::run(g, workload, cmd),
    }
}
