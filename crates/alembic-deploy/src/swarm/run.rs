//! The swarm driver: walks [`SwarmOps`] with the compose driver's lease, steps and progress
//! (`droplet::Runner`). A dry run is the same walk with the executor recording; the status it
//! would read then counts as settled.

use std::time::{Duration, Instant};

use super::*;
use crate::droplet::{DeployError, Failure, Renewer, Runner};
use crate::probe::{self, ProbeResult};

/// One service as [`STATUS`] printed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServiceStatus {
    pub(crate) name: String,
    /// `UpdateStatus.State` (`none`: the service was never updated).
    pub(crate) state: String,
    /// When that update started, by the manager's clock (epoch seconds; 0 when unknown).
    pub(crate) started: u64,
    pub(crate) message: String,
    pub(crate) running: u32,
    pub(crate) desired: u32,
}

pub(crate) fn parse_status(text: &str) -> Vec<ServiceStatus> {
    let mut out: Vec<ServiceStatus> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("service ") {
            let mut parts = rest.splitn(4, '|');
            let name = parts.next().unwrap_or("").to_owned();
            let state = parts.next().unwrap_or("").to_owned();
            let started = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let message = parts.next().unwrap_or("").to_owned();
            out.push(ServiceStatus {
                name,
                state,
                started,
                message,
                ..ServiceStatus::default()
            });
        } else if let Some(rest) = line.strip_prefix("replicas ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().unwrap_or("");
            // `1/1`, or `1/1 (max 1 per node)` for some modes.
            let (running, desired) = parts
                .next()
                .and_then(|r| r.split_once('/'))
                .map(|(a, b)| (a.parse().unwrap_or(0), b.parse().unwrap_or(u32::MAX)))
                .unwrap_or((0, u32::MAX));
            if let Some(s) = out.iter_mut().find(|s| s.name == name) {
                s.running = running;
                s.desired = desired;
            }
        }
    }
    out
}

/// What the services' status says about an update that started at `since` (manager clock).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Judgement {
    Done,
    /// Not settled yet: why.
    Waiting(String),
    /// Swarm rolled the update back or paused it.
    Failed {
        service: String,
        why: String,
    },
}

/// Judge `services` after a deploy that started at `since`: an update status older than that
/// belongs to an earlier deploy and says nothing about this one. `updates`: whether update
/// states count at all (not when a previous release is being restored).
pub(crate) fn judge(services: &[ServiceStatus], since: u64, updates: bool) -> Judgement {
    if services.is_empty() {
        return Judgement::Waiting("the stack lists no service yet".into());
    }
    for s in services {
        let current = updates && (s.started == 0 || s.started + 1 >= since);
        let detail = if s.message.is_empty() {
            String::new()
        } else {
            format!(": {}", s.message)
        };
        match s.state.as_str() {
            "rollback_completed" | "rollback_paused" if current => {
                return Judgement::Failed {
                    service: s.name.clone(),
                    why: format!(
                        "swarm rolled its update back (UpdateStatus {}){detail}",
                        s.state
                    ),
                }
            }
            "paused" if current => {
                return Judgement::Failed {
                    service: s.name.clone(),
                    why: format!("swarm paused its update (UpdateStatus paused){detail}"),
                }
            }
            "updating" | "rollback_started" if current => {
                return Judgement::Waiting(format!("{}: {}{detail}", s.name, s.state));
            }
            _ => {}
        }
    }
    match services.iter().find(|s| s.running < s.desired) {
        Some(s) if s.desired == u32::MAX => {
            Judgement::Waiting(format!("{}: replicas not listed", s.name))
        }
        Some(s) => Judgement::Waiting(format!(
            "{}: {}/{} tasks running",
            s.name, s.running, s.desired
        )),
        None => Judgement::Done,
    }
}

/// Run a planned swarm deploy: exactly the planned ops, in order, under the lease (released
/// whatever happens after it was taken).
pub(crate) fn deploy(
    r: &mut Runner<'_, '_>,
    sw: &Swarm,
    ops: &SwarmOps,
) -> Result<u64, DeployError> {
    if !r.dry() {
        r.target.ip()?;
    }
    prepare_ssh(r)?;
    let lease = match r.step("take lease", |s| s.take_lease(&ops.take_lease, &ops.lease)) {
        Ok(l) => l,
        Err(e) => {
            r.close(&ops.close);
            return Err(e);
        }
    };
    let renewer = r.start_renewer(&lease);
    let res = leased(r, sw, ops, &renewer);
    renewer.stop();
    r.release_lease(&ops.release_lease);
    r.close(&ops.close);
    res
}

fn prepare_ssh(r: &mut Runner<'_, '_>) -> Result<(), DeployError> {
    if r.target.address.is_ok() {
        r.target.ssh.prepare().map_err(|e| DeployError::Step {
            step: "create ssh control dir".into(),
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

fn leased(
    r: &mut Runner<'_, '_>,
    sw: &Swarm,
    ops: &SwarmOps,
    renewer: &Renewer,
) -> Result<u64, DeployError> {
    let n = ops.number;
    let fence = ops.lease.fence();
    r.step("check the droplet has not moved", |s| {
        if s.dry() {
            return Ok(());
        }
        let now = s.target.query_state(s.ex)?;
        crate::droplet::unchanged(now.seen(), (ops.base, &ops.base_sha, &ops.base_dirs))
    })?;
    renewer.check()?;
    for d in &ops.images {
        r.deliver_image(d)?;
    }
    renewer.check()?;
    let uploaded = r.step(&format!("upload release {n}"), |s| {
        s.run_ok(&ops.prepare)?;
        for u in &ops.uploads {
            s.run_ok(u)?;
        }
        if let Some(op) = &ops.secrets {
            s.run_ok(op)?;
        }
        Ok(())
    });
    if let Err(e) = uploaded {
        if matches!(e, DeployError::LeaseLost(_)) {
            return Err(e);
        }
        let discard = r.target.discard_op(n, &fence);
        let _ = r.run(&discard);
        if let Some(op) = sw.prune_secrets_op(&[n], &fence) {
            let _ = r.run(&op);
        }
        return Err(match e {
            DeployError::Step { step, detail } => DeployError::Step {
                step: format!("upload release {n}: {step}"),
                detail: format!(
                    "{detail}\nnothing was deployed: the release's dir and secrets were removed"
                ),
            },
            e => e,
        });
    }
    renewer.check()?;
    let deployed = r.step(&format!("docker stack deploy release {n}"), |s| {
        let out = s.run(&ops.deploy)?;
        // 124: `timeout` stopped the client; the update goes on in the swarm, and the
        // status below says how it ended.
        if out.success() || out.status == 124 {
            return Ok(started_at(&out.stdout_text()));
        }
        Err(DeployError::Step {
            step: "docker stack deploy".into(),
            detail: format!(
                "failed (exit {}): {}",
                out.status,
                s.tail(&format!("{}{}", out.stdout_text(), out.stderr_text()), 10)
            ),
        })
    });
    let since = match deployed {
        Ok(t) => t,
        Err(e @ DeployError::Step { .. }) => {
            return Err(fail_and_restore(r, sw, ops, e.to_string(), &[]))
        }
        Err(e) => return Err(e),
    };
    let settled = r.step("read every service's UpdateStatus", |s| {
        converge(s, sw, since, true)
    })?;
    if let Err((service, why)) = settled {
        let what = format!("service {service}: {why}");
        return Err(fail_and_restore(r, sw, ops, what, &[service]));
    }
    let probed = r.step("probe public routes", |s| {
        probe_routes(s, ops.fetch_ca.as_ref(), &ops.probes)
    });
    let failed = match probed {
        Ok(None) => None,
        Ok(Some((p, result))) => Some((
            format!(
                "probe of https://{}{} (through the edge at {}) got {result}",
                p.host,
                p.path,
                r.target.edge_text()
            ),
            vec![format!("{}_{}", sw.stack, p.workload)],
        )),
        Err(e @ DeployError::Step { .. }) => Some((
            e.to_string(),
            vec![format!(
                "{}_{}",
                sw.stack,
                alembic_render::compose::EDGE_SERVICE
            )],
        )),
        Err(e) => return Err(e),
    };
    if let Some((what, services)) = failed {
        return Err(fail_and_restore(r, sw, ops, what, &services));
    }
    renewer.check()?;
    r.step(&format!("switch current to release {n}"), |s| {
        s.run_ok(&ops.switch)?;
        s.run_ok(&ops.ledger)?;
        if let Some(p) = &ops.prune {
            s.run_ok(p)?;
        }
        Ok(())
    })?;
    if let Some(op) = &ops.prune_secrets {
        // Best effort: a secret still in use stays until a later prune.
        let _ = r.run(op);
    }
    Ok(n)
}

/// The manager's clock when the deploy started (the deploy script prints it first).
fn started_at(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@alembic-started@@ "))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Read the services' status until they settle (bounded by [`CONVERGE_SECS`]): Ok(Err) names
/// the service swarm rolled back or paused, or the one that never converged.
fn converge(
    r: &mut Runner<'_, '_>,
    sw: &Swarm,
    since: u64,
    updates: bool,
) -> Result<Result<(), (String, String)>, DeployError> {
    let op = sw.status_op();
    let deadline = Instant::now() + Duration::from_secs(CONVERGE_SECS);
    loop {
        let out = r.run(&op)?;
        if r.dry() {
            return Ok(Ok(()));
        }
        if !out.success() {
            return Err(DeployError::Step {
                step: op.step.clone(),
                detail: r.tail(&out.stderr_text(), 5),
            });
        }
        match judge(&parse_status(&out.stdout_text()), since, updates) {
            Judgement::Done => return Ok(Ok(())),
            Judgement::Failed { service, why } => return Ok(Err((service, why))),
            Judgement::Waiting(why) if Instant::now() >= deadline => {
                let service = why.split(':').next().unwrap_or("").to_owned();
                return Ok(Err((
                    service,
                    format!("not settled after {CONVERGE_SECS} s ({why})"),
                )));
            }
            Judgement::Waiting(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// Probe every route through the edge until healthy or the probe timeout; the first route
/// still failing then.
fn probe_routes(
    r: &mut Runner<'_, '_>,
    fetch_ca: Option<&Op>,
    probes: &[(ProbeTarget, Op)],
) -> Result<Option<(ProbeTarget, ProbeResult)>, DeployError> {
    let deadline = Instant::now() + Duration::from_secs(r.target.probe_timeout);
    if let Some(op) = fetch_ca {
        r.fetch_ca(op, deadline)?;
    }
    for (p, op) in probes {
        loop {
            let out = r.run(op)?;
            if r.dry() {
                break;
            }
            let result = probe::interpret(out.status, &out.stdout_text(), &out.stderr_text());
            if result.is_healthy() {
                break;
            }
            if Instant::now() >= deadline {
                return Ok(Some((p.clone(), result)));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(None)
}

/// The update failed: deploy the previous release's stack file again (or, for a first
/// release, remove the stack), record the failure, and say why.
fn fail_and_restore(
    r: &mut Runner<'_, '_>,
    sw: &Swarm,
    ops: &SwarmOps,
    what: String,
    services: &[String],
) -> DeployError {
    let n = ops.number;
    let fence = ops.lease.fence();
    let mut logs = Vec::new();
    for svc in services {
        if let Ok(out) = r.run(&sw.tasks_op(svc)) {
            logs.push((svc.clone(), r.tail(&out.stdout_text(), 10)));
        }
    }
    let failure = Failure { what, logs };
    let outcome = match ops.base {
        Some(prev) => r
            .step(&format!("roll back to release {prev}"), |s| {
                restore(s, sw, prev, &fence)
            })
            .map(|()| format!("rolled back to release {prev}")),
        None => r
            .step(&format!("remove the failed release {n}'s stack"), |s| {
                s.run_ok(&sw.stack_rm_op(&fence)).map(drop)
            })
            .map(|()| {
                "nothing was serving before, the stack was removed (docker stack rm; named \
                 volumes kept)"
                    .to_owned()
            }),
    };
    let note = match &outcome {
        Err(DeployError::LeaseLost(who)) => return DeployError::LeaseLost(who.clone()),
        Ok(done) => format!("{}; {done}", failure.what),
        Err(e) => format!("{}; restoring failed: {e}", failure.what),
    };
    let mut ledger = ops.base_ledger.clone();
    ledger.format_version = 1;
    ledger.current = ops.base;
    ledger.releases.push(LedgerEntry {
        outcome: Outcome::Failed,
        note: Some(note),
        ..ops.entry.clone()
    });
    let op = r
        .target
        .ledger_op(&ledger, ops.base_sha.as_deref(), Some(n), &fence);
    if let Err(e @ DeployError::LeaseLost(_)) = r.step("record the failure in the ledger", |s| {
        s.run_ok(&op).map(drop)
    }) {
        return e;
    }
    if outcome.is_ok() && ops.base.is_some() {
        // The failed release's secrets are no longer used by any task.
        if let Some(op) = sw.prune_secrets_op(&[n], &fence) {
            let _ = r.run(&op);
        }
    }
    match (ops.base, outcome) {
        (Some(to), Ok(_)) => DeployError::RolledBack {
            failed: n,
            to,
            failure,
        },
        (_, Ok(done)) => DeployError::Step {
            step: format!("release {n}"),
            detail: format!("failed: {failure}\n{done}"),
        },
        (_, Err(e)) => DeployError::Step {
            step: format!("release {n} failed ({}); restoring", failure.what),
            detail: e.to_string(),
        },
    }
}

/// Deploy release `to`'s own stack file (with its own secrets) and wait for it to converge.
fn restore(r: &mut Runner<'_, '_>, sw: &Swarm, to: u64, fence: &Fence) -> Result<(), DeployError> {
    let op = sw.deploy_op(to, fence);
    let out = r.run(&op)?;
    if !out.success() && out.status != 124 {
        return Err(DeployError::Step {
            step: op.step.clone(),
            detail: format!(
                "failed (exit {}): {}",
                out.status,
                r.tail(&out.stderr_text(), 10)
            ),
        });
    }
    match converge(r, sw, 0, false)? {
        Ok(()) => Ok(()),
        Err((service, why)) => Err(DeployError::Step {
            step: format!("restore release {to}"),
            detail: format!("service {service}: {why}"),
        }),
    }
}

/// `alembic rollback` on swarm: deploy release `to`'s stack file (default: the newest healthy
/// release before current) again, probe it, make it current.
pub(crate) fn rollback(
    r: &mut Runner<'_, '_>,
    sw: &Swarm,
    to: Option<u64>,
    planned: &Lease,
    time: &str,
) -> Result<u64, DeployError> {
    r.target.ip()?;
    prepare_ssh(r)?;
    let by = planned.holder.clone();
    let take = lease::acquire_op(&r.target.ssh, PLANE, &r.target.root, planned);
    let close = r.target.ssh.close_master(PLANE);
    let lease = match r.step("take lease", |s| s.take_lease(&take, planned)) {
        Ok(l) => l,
        Err(e) => {
            r.close(&close);
            return Err(e);
        }
    };
    let renewer = r.start_renewer(&lease);
    let fence = planned.fence();
    let res = rollback_leased(r, sw, to, (&by, time), &fence, &renewer);
    renewer.stop();
    let release = lease::release_op(&r.target.ssh, PLANE, &r.target.root, &fence);
    r.release_lease(&release);
    r.close(&close);
    res
}

fn rollback_leased(
    r: &mut Runner<'_, '_>,
    sw: &Swarm,
    to: Option<u64>,
    (by, time): (&str, &str),
    fence: &Fence,
    renewer: &Renewer,
) -> Result<u64, DeployError> {
    let state = r.target.query_state(r.ex)?;
    let to = to
        .or_else(|| state.ledger.previous_healthy().first().copied())
        .ok_or_else(|| DeployError::Config("no previous healthy release to roll back to".into()))?;
    let entry = state
        .ledger
        .healthy(to)
        .cloned()
        .filter(|_| state.dirs.contains(&to))
        .ok_or_else(|| {
            DeployError::Config(format!(
                "release {to} is not a healthy release still on the droplet (kept: {:?})",
                state.dirs
            ))
        })?;
    r.step(&format!("restore release {to}"), |s| {
        restore(s, sw, to, fence)
    })?;
    let (fetch_ca, probes) = sw.probe_ops();
    if let Some((p, result)) = r.step("probe public routes", |s| {
        probe_routes(s, fetch_ca.as_ref(), &probes)
    })? {
        return Err(DeployError::Step {
            step: format!("probe after restoring release {to}"),
            detail: format!("https://{}{} got {result}", p.host, p.path),
        });
    }
    let ledger = state.ledger.restored(to, entry, time, by);
    let ledger_op = r
        .target
        .ledger_op(&ledger, state.ledger_sha.as_deref(), None, fence);
    renewer.check()?;
    r.step(&format!("switch current to release {to}"), |s| {
        s.run_ok(&s.target.link_op(to, "current", fence))?;
        s.run_ok(&ledger_op).map(drop)
    })?;
    Ok(to)
}
