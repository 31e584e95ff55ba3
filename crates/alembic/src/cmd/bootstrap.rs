//! `alembic bootstrap [--user U] [--yes]`: prepare a server once (Docker + compose, the deploy
//! user and its keys, sshd hardening, the release root, log rotation, security upgrades) with
//! the same script a provisioned droplet's cloud-init runs. Without `--yes`, shows the
//! operation and runs nothing. Exit 3 when ssh fails or a step fails. On several droplets
//! `--droplet` names the one to bootstrap (refused without it, before any step: each server
//! is bootstrapped on its own, its root login checked by the one running it).

use std::net::IpAddr;

use alembic_config::types::UserName;
use alembic_deploy::session::{Bootstrap, BootstrapOutcome as Finished};
use alembic_render::bootstrap::ReportLine;

use crate::cli::Global;
use crate::config::Origin;
use crate::exit;
use crate::view::{CmdResult, Failure, Outcome, Rendered};

use super::failure;

pub fn run(g: &Global, user: Option<&str>, droplet: Option<IpAddr>, yes: bool) -> CmdResult {
    if let Some(u) = user {
        UserName::parse(u).map_err(|e| Failure::usage("bad_user", format!("--user: {e}")))?;
    }
    let (origin, _loaded, t) = crate::config::topology(g.config.as_deref())?;
    if origin == Origin::Embedded {
        return Err(failure(
            "embedded_default_refused",
            "refusing to bootstrap from the embedded default topology; write your own \
             alembic.toml (`alembic init`)",
            exit::PROBLEMS,
        )
        .into());
    }
    if t.droplet.authorized_keys.is_empty() {
        return Err(failure(
            "no_authorized_keys",
            "`droplet.authorized_keys` is empty: after bootstrap root logins are refused, so \
             the deploy user needs a public key\nhint: add the contents of your `.pub` file, \
             like authorized_keys = [\"ssh-ed25519 AAAA... you@laptop\"]",
            exit::PROBLEMS,
        )
        .into());
    }
    // `droplet.address`, or the provisioned droplet's reserved IP from `terraform output`.
    let boot =
        Bootstrap::plan(&t, user, droplet, &origin.base_dir()).map_err(super::status::failed)?;
    let (host, login_user, op) = (boot.host().to_owned(), boot.user().to_owned(), boot.op());

    if !yes {
        let v = serde_json::json!({"format_version": 1, "dry_run": true, "host": host,
            "user": login_user, "ops": [op]});
        let out = format!(
            "bootstrap of {}@{host} would run:\n  1. {}: {op}\n     (the script is infra/droplet/bootstrap.sh as `alembic render` writes it)\n",
            login_user,
            op.step
        );
        let talk = "\ndry run: nothing executed; run with --yes to bootstrap\n".to_owned();
        return Ok(Outcome::new(exit::OK, Rendered::new(out, talk, v)));
    }

    let start = format!(
        "bootstrap: running the bootstrap script on {login_user}@{host} (installing packages can take minutes)"
    );
    // Progress, said before the minutes it announces (the outcome's view comes after).
    eprintln!("{start}");
    let report = boot.run().map_err(super::status::failed)?;

    let mut out = String::new();
    for s in &report.steps {
        if let ReportLine::Step {
            step,
            changed,
            detail,
        } = s
        {
            let status = if *changed { "changed" } else { "unchanged" };
            out.push_str(&format!("  {step:<20} {status:<9} {detail}\n"));
        }
    }
    let data = serde_json::json!({"format_version": 1, "dry_run": false, "host": host,
        "user": login_user, "steps": report.steps, "outcome": report.outcome});
    let failed = match &report.outcome {
        Finished::Done { changed: 0 } => {
            let talk = format!("bootstrap: nothing to change; {host} was already bootstrapped\n");
            return Ok(Outcome::new(exit::OK, Rendered::new(out, talk, data)));
        }
        Finished::Done { changed } => {
            let talk = format!(
                "bootstrap: done, {changed} step(s) changed\nhint: root logins are now refused; \
                 run it again with --user {}\n",
                t.droplet.ssh_user
            );
            return Ok(Outcome::new(exit::OK, Rendered::new(out, talk, data)));
        }
        Finished::StepFailed { step, reason } => failure(
            "bootstrap_step_failed",
            format!("bootstrap step `{step}` failed: {reason}"),
            exit::RUNTIME,
        ),
        Finished::Unreachable { message } => failure(
            "ssh_unreachable",
            format!(
                "cannot reach {}@{host} over ssh: {message}\nhint: after a first bootstrap root \
                 logins are refused; use --user {}",
                login_user, t.droplet.ssh_user
            ),
            exit::RUNTIME,
        ),
        Finished::Aborted { status, message } => failure(
            "bootstrap_aborted",
            format!("the bootstrap script stopped (exit {status}) without finishing: {message}"),
            exit::RUNTIME,
        ),
    };
    // The steps that ran stay part of the answer, beside the error.
    let code = failed.exit;
    Err(Outcome::new(code, failed.with_data(out, data)))
}
