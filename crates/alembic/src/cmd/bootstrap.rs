//! `alembic bootstrap [--user U] [--yes]`: prepare a server once (Docker + compose, the deploy
//! user and its keys, sshd hardening, the release root, log rotation, security upgrades) with
//! the same script a provisioned droplet's cloud-init runs. Without `--yes`, shows the
//! operation and runs nothing. Exit 3 when ssh fails or a step fails.

use alembic_config::types::UserName;
use alembic_deploy::bootstrap::{self, Login, Outcome};
use alembic_deploy::droplet;
use alembic_deploy::exec::{Executor, Goal, ProcessEnv};
use alembic_render::bootstrap::ReportLine;

use crate::cli::Global;
use crate::config::Origin;
use crate::exit;

fn fail(msg: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("error: {msg}");
    code
}

pub fn run(g: &Global, user: Option<&str>, yes: bool) -> i32 {
    if let Some(u) = user {
        if let Err(e) = UserName::parse(u) {
            return fail(format!("--user: {e}"), exit::USAGE);
        }
    }
    let (origin, _loaded, t) = match crate::config::load_topology(g.config.as_deref(), g.json) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if origin == Origin::Embedded {
        return fail(
            "refusing to bootstrap from the embedded default topology; write your own \
             alembic.toml (`alembic init`)",
            exit::PROBLEMS,
        );
    }
    if t.droplet.authorized_keys.is_empty() {
        return fail(
            "`droplet.authorized_keys` is empty: after bootstrap root logins are refused, so \
             the deploy user needs a public key\nhint: add the contents of your `.pub` file, \
             like authorized_keys = [\"ssh-ed25519 AAAA... you@laptop\"]",
            exit::PROBLEMS,
        );
    }
    // `droplet.address`, or the provisioned droplet's reserved IP from `terraform output`.
    let tf = t
        .droplet
        .is_provisioned()
        .then(|| {
            alembic_deploy::terraform::find_program().map(|p| {
                alembic_deploy::terraform::Runner::for_topology(
                    &p.display().to_string(),
                    &origin.base_dir(),
                    &t,
                )
            })
        })
        .flatten();
    let env = ProcessEnv;
    let address = droplet::resolve_address(&t, tf.as_ref(), &mut Executor::new(Goal::DryRun, &env));
    let host = match &address.ip {
        Ok(ip) => ip.to_string(),
        Err(e) => {
            return fail(
                format!("cannot tell which server to bootstrap: {e}\nhint: set droplet.address, or apply the infra plane first"),
                exit::RUNTIME,
            )
        }
    };
    let login = Login::from_flag(user);
    let (target, op) = bootstrap::bootstrap_op(&t, &login, &host);

    if !yes {
        if g.json {
            let v = serde_json::json!({"format_version": 1, "dry_run": true, "host": host,
                "user": login.user(), "ops": [op]});
            crate::output::print_value(&v);
        } else {
            println!("bootstrap of {}@{host} would run:", login.user());
            println!("  1. {}: {op}", op.step);
            println!(
                "     (the script is infra/droplet/bootstrap.sh as `alembic render` writes it)"
            );
            eprintln!("\ndry run: nothing executed; run with --yes to bootstrap");
        }
        return exit::OK;
    }

    if let Err(e) = target.prepare() {
        return fail(
            format!("cannot create the ssh control dir: {e}"),
            exit::RUNTIME,
        );
    }
    eprintln!(
        "bootstrap: running the bootstrap script on {}@{host} (installing packages can take minutes)",
        login.user()
    );
    let mut ex = Executor::new(Goal::Apply, &env);
    let result = bootstrap::run(&mut ex, &op);
    let _ = alembic_deploy::exec::run_op(&target.close_master(bootstrap::PLANE), &env);
    target.cleanup();
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(e, exit::RUNTIME),
    };

    if g.json {
        let v = serde_json::json!({"format_version": 1, "dry_run": false, "host": host,
            "user": login.user(), "steps": report.steps, "outcome": report.outcome});
        crate::output::print_value(&v);
    } else {
        for s in &report.steps {
            if let ReportLine::Step {
                step,
                changed,
                detail,
            } = s
            {
                let status = if *changed { "changed" } else { "unchanged" };
                println!("  {step:<20} {status:<9} {detail}");
            }
        }
    }
    match &report.outcome {
        Outcome::Done { changed: 0 } => {
            eprintln!("bootstrap: nothing to change; {host} was already bootstrapped");
            exit::OK
        }
        Outcome::Done { changed } => {
            eprintln!(
                "bootstrap: done, {changed} step(s) changed\nhint: root logins are now refused; \
                 run it again with --user {}",
                t.droplet.ssh_user
            );
            exit::OK
        }
        Outcome::StepFailed { step, reason } => fail(
            format!("bootstrap step `{step}` failed: {reason}"),
            exit::RUNTIME,
        ),
        Outcome::Unreachable { message } => fail(
            format!(
                "cannot reach {}@{host} over ssh: {message}\nhint: after a first bootstrap root \
                 logins are refused; use --user {}",
                login.user(),
                t.droplet.ssh_user
            ),
            exit::RUNTIME,
        ),
        Outcome::Aborted { status, message } => fail(
            format!("the bootstrap script stopped (exit {status}) without finishing: {message}"),
            exit::RUNTIME,
        ),
    }
}
