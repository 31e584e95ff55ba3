//! Running host steps in order: tolerated exits, the secrets merge's report, listen checks.

use super::*;

/// `launchctl bootout` of a label that is not loaded fails with "No such process" (3) or
/// "Could not find specified service" (113): expected on a first install.
pub(crate) fn tolerated(op: &Op, out: &Output) -> bool {
    op.program == "launchctl"
        && op.args.first().is_some_and(|a| a == "bootout")
        && (matches!(out.status, 3 | 113)
            || ["No such process", "Could not find", "not loaded"]
                .iter()
                .any(|m| out.stderr_text().contains(m)))
}

/// Run host steps in order, stopping at the first failure (tolerating a "not loaded" bootout).
/// Refuses to apply from CI; a dry run only records.
#[cfg(test)]
pub(crate) fn run_steps(
    ex: &mut Executor<'_>,
    steps: &[Step],
    env: &HostEnv,
) -> Result<HostReport, HostError> {
    let mut report = HostReport::default();
    run_steps_into(ex, steps, env, &mut report)?;
    Ok(report)
}

/// Run host steps in order, stopping at the first failure (tolerating a "not loaded" bootout),
/// collecting warnings into `report` as they arise, so a later failure does not swallow them.
/// Refuses to apply from CI; a dry run only records.
pub(crate) fn run_steps_into(
    ex: &mut Executor<'_>,
    steps: &[Step],
    env: &HostEnv,
    report: &mut HostReport,
) -> Result<(), HostError> {
    if env.ci && ex.goal == Goal::Apply {
        return Err(HostError::InCi);
    }
    for step in steps {
        match step {
            Step::Run(op) => run_one(ex, op)?,
            Step::MergeSecrets { op, file } => {
                let out = ex.run(op)?;
                let r = secrets_file::parse_report(&out);
                if let Some(why) = r.refused {
                    return Err(HostError::SecretsFileRefused { why });
                }
                if !r.missing.is_empty() {
                    return Err(HostError::SecretsMissing {
                        names: r.missing,
                        file: file.clone(),
                    });
                }
                if !out.success() {
                    return Err(failed(op, &out));
                }
                report.warnings.extend(r.kept.iter().map(|n| {
                    format!(
                        "secret {n} is not set in the environment: kept the value already in {}",
                        file.display()
                    )
                }));
            }
            Step::Listen { check, stop } => {
                match check.run(ex, env.listen_timeout) {
                    Ok(()) => {}
                    // Exposed: do not leave it serving on an address policy never allowed.
                    Err(HostError::ListensElsewhere {
                        workload,
                        listens,
                        declared,
                        ..
                    }) => {
                        let stopped = ex.run(stop).is_ok_and(|o| o.success());
                        return Err(HostError::ListensElsewhere {
                            workload,
                            listens,
                            declared,
                            stopped,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn failed(op: &Op, out: &Output) -> HostError {
    HostError::Failed {
        step: op.step.clone(),
        command: op.command_line(),
        status: out.status,
        stderr: out.stderr_text(),
    }
}

pub(crate) fn run_one(ex: &mut Executor<'_>, op: &Op) -> Result<(), HostError> {
    let out = ex.run(op)?;
    if !out.success() && !tolerated(op, &out) {
        return Err(failed(op, &out));
    }
    Ok(())
}

/// Build and run the host plane: what `alembic apply --plane host` does. Warnings gathered
/// before a failure are in `report` too.
#[cfg(test)]
pub(crate) fn apply(
    ex: &mut Executor<'_>,
    t: &Topology,
    set: &ArtifactSet,
    env: &HostEnv,
    report: &mut HostReport,
) -> Result<(), HostError> {
    if env.ci && ex.goal == Goal::Apply {
        return Err(HostError::InCi);
    }
    let steps = install_steps(t, set, env)?;
    run_steps_into(ex, &steps, env, report)
}
