//! `alembic doctor [--json] [--online]`: health of the config, the artifacts on disk, the tools
//! the planes need and the secrets the current context needs (names only); with `--online`, the
//! live droplet. The checks are built as data by alembic-deploy (through `alembic_deploy::session`); this module gathers
//! the inputs and renders the report. Exit 1 when any check fails.

use alembic_deploy::session::{self as doctor, Context, DoctorReport as Report, SystemProbe};
use alembic_policy::ScanContext;

use crate::cli::Global;
use crate::config::Origin;
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

pub fn run(g: &Global, online: bool) -> CmdResult {
    let get = |n: &str| std::env::var(n).ok();
    let ctx = Context::from_env(&get);
    let probe = SystemProbe;
    let mut report = Report::default();
    match crate::config::load(g.config.as_deref()) {
        Err(e) => report.checks.push(doctor::config_unreadable(&e)),
        Ok((origin, loaded)) => {
            let file = match &origin {
                Origin::File(p) => Some(p.as_path()),
                Origin::Embedded => None,
            };
            report.checks.extend(doctor::config_checks(file, &loaded));
            if let Some(t) = &loaded.topology {
                let set = alembic_render::render(t);
                // The same policies `alembic check` runs: over the config and its fresh render.
                let mut findings = alembic_policy::check_config(&loaded.source, Some(t));
                findings.extend(alembic_policy::scan_artifacts(&set, &ScanContext::of(t)));
                let errors = findings.iter().filter(|d| d.is_error()).count();
                let first = findings
                    .iter()
                    .find(|d| d.is_error())
                    .map(|d| format!("{} {}:{}: {}", d.code, d.file, d.line, d.message));
                report.checks.push(doctor::policy_check(Some((
                    errors,
                    findings.len() - errors,
                    first,
                ))));
                let root = origin.base_dir();
                report.checks.push(doctor::drift_check(&root, &set));
                report.checks.extend(doctor::tool_checks(t, ctx, &probe));
                report.checks.extend(doctor::secret_checks(t, ctx, &get));
                if online {
                    let addr = doctor::droplet_address(t, &root, &probe);
                    report.checks.extend(doctor::online_checks(t, addr, &probe));
                }
            }
        }
    }
    let code = if report.ok() {
        exit::OK
    } else {
        exit::PROBLEMS
    };
    let view = Rendered::new(report.to_human(), String::new(), report.to_json());
    Ok(Outcome::new(code, view))
}
