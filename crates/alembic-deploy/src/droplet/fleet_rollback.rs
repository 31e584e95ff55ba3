//! `alembic rollback` over several droplets behind a load balancer (`engine = "compose"`),
//! with the rolling deploy's drain and health gate: take the lease on every droplet in the
//! configured order; read each one's ledger under its lease and find the release it goes back
//! to (refusing, before anything changes, when one of them has no such healthy release left);
//! then one droplet at a time: take it out of the balancer, wait the balancer's unhealthy
//! threshold, bring the release up and probe its routes directly, put it back, wait the
//! healthy threshold, switch `current` and record the rollback in its ledger. A droplet whose
//! current release already is the target is left alone.
//!
//! A droplet whose restored release fails its probes stops the rollback there: it stays out of
//! the balancer (the restored release active, `current` and its ledger unchanged), the ones
//! before it run their target release, the ones after it are untouched. Every lease is
//! released at the end, whatever happened. A dry run is the same walk: nothing runs (the
//! ledgers are read) and nobody waits.

use super::*;

use crate::exec::Goal;
use crate::progress::{Event, Progress};
use alembic_config::LoadBalancer;

use super::rollback::Restore;

/// One droplet of a fleet rollback: its label (its address) and target.
pub(crate) struct RollbackMember {
    pub label: String,
    pub target: Target,
}

/// Drives a rollback over several droplets, one at a time.
pub(crate) struct FleetRollback<'a, 'b> {
    pub members: &'a [RollbackMember],
    pub lb: LoadBalancer,
    /// One executor per member, in order (each binds its own droplet's fencing token).
    pub exs: Vec<Executor<'b>>,
    pub view: &'a mut dyn Progress,
    pub redact: Redactor,
    /// The lease asked for on every droplet, and the ledger entries' holder and time.
    pub lease: Lease,
    pub time: String,
}

impl<'b> FleetRollback<'_, 'b> {
    fn runner(&mut self, i: usize) -> Runner<'_, 'b> {
        Runner {
            target: &self.members[i].target,
            ex: &mut self.exs[i],
            steps: Steps::new(self.view),
            redact: self.redact.clone(),
        }
    }

    fn dry(&self) -> bool {
        self.exs.first().is_some_and(|e| e.goal == Goal::DryRun)
    }

    fn label(&self, i: usize) -> String {
        self.members[i].label.clone()
    }

    fn at(&self, i: usize, error: DeployError, outcome: impl Into<String>) -> DeployError {
        DeployError::Rollout {
            droplet: self.label(i),
            error: Box::new(error),
            outcome: outcome.into(),
        }
    }

    /// Wait for the balancer (a real rollback only), as a step of its own.
    fn wait(&mut self, what: String, d: Duration) {
        let dry = self.dry();
        let mut steps = Steps::new(self.view);
        steps.start(format!("{what} ({} s)", d.as_secs()));
        if !dry {
            std::thread::sleep(d);
        }
        steps.end(true, "");
    }

    /// Roll every droplet back to `to` (None: each to the newest healthy release before its
    /// own current one). Ok: per droplet, its label and the release now current (its target,
    /// rolled back to or already current).
    pub(crate) fn run(&mut self, to: Option<u64>) -> Result<Vec<(String, u64)>, DeployError> {
        let mut held: Vec<(usize, Renewer)> = Vec::new();
        let mut r = Ok(Vec::new());
        for i in 0..self.members.len() {
            match self.take(i) {
                Ok(renewer) => held.push((i, renewer)),
                Err(e) => {
                    r = Err(self.at(
                        i,
                        e,
                        "nothing was changed on any droplet: the leases taken are released",
                    ));
                    break;
                }
            }
        }
        if r.is_ok() {
            r = self.run_leased(to, &held);
        }
        let fence = self.lease.fence();
        for (i, renewer) in held.into_iter().rev() {
            renewer.stop();
            let target = &self.members[i].target;
            let op = lease::release_op(&target.ssh, PLANE, &target.root, &fence);
            self.runner(i).release_lease(&op);
        }
        for i in 0..self.members.len() {
            let op = self.members[i].target.ssh.close_master(PLANE);
            self.runner(i).close(&op);
        }
        r
    }

    /// Take droplet `i`'s lease and start renewing it.
    fn take(&mut self, i: usize) -> Result<Renewer, DeployError> {
        let label = self.label(i);
        let planned = self.lease.clone();
        let mut run = self.runner(i);
        run.target.ip()?;
        run.target.ssh.prepare().map_err(|e| DeployError::Step {
            step: "create ssh control dir".into(),
            detail: e.to_string(),
        })?;
        let take = lease::acquire_op(&run.target.ssh, PLANE, &run.target.root, &planned);
        let lease = run.step(&format!("{label}: take lease"), |s| {
            s.take_lease(&take, &planned)
        })?;
        Ok(run.start_renewer(&lease))
    }

    fn run_leased(
        &mut self,
        to: Option<u64>,
        held: &[(usize, Renewer)],
    ) -> Result<Vec<(String, u64)>, DeployError> {
        // Every droplet's target first: one without it refuses the rollback before any change.
        let mut found: Vec<(u64, Option<Restore>)> = Vec::new();
        for i in 0..self.members.len() {
            let back = self
                .runner(i)
                .rollback_target(to)
                .map_err(|e| self.at(i, e, "nothing was changed on any droplet"))?;
            if back.state.ledger.current == Some(back.to) {
                self.view.event(Event::Info {
                    message: format!(
                        "droplet {}: release {} is already current; nothing to do",
                        self.label(i),
                        back.to
                    ),
                });
                found.push((back.to, None));
            } else {
                found.push((back.to, Some(back)));
            }
        }
        let fence = self.lease.fence();
        let (by, time) = (self.lease.holder.clone(), self.time.clone());
        let mut done: Vec<(String, u64)> = Vec::new();
        let targets: Vec<(String, u64)> = found
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (self.label(i), *n))
            .collect();
        for (i, (_, back)) in found.into_iter().enumerate() {
            let Some(back) = back else { continue };
            let renewer = &held.iter().find(|(j, _)| *j == i).expect("held").1;
            let label = self.label(i);
            let n = back.to;
            self.view.event(Event::Info {
                message: format!("droplet {label}: roll back to release {n}"),
            });
            let r = self.drain(i, true).and_then(|()| {
                renewer.check()?;
                self.runner(i).restore(&back, &fence)
            });
            if let Err(e) = r {
                return Err(self.at(i, e, stopped(&label, n, &done)));
            }
            let r = self.drain(i, false).and_then(|()| {
                self.runner(i)
                    .switch_back(back, (&by, &time), &fence, renewer)
            });
            match r {
                Ok(n) => done.push((label, n)),
                Err(e) => return Err(self.at(i, e, stopped(&label, n, &done))),
            }
        }
        Ok(targets)
    }

    /// Take droplet `i` out of the balancer (`out`) or put it back, then wait for the
    /// balancer to notice.
    fn drain(&mut self, i: usize, out: bool) -> Result<(), DeployError> {
        let label = self.label(i);
        let fence = self.lease.fence();
        let target = &self.members[i].target;
        let (op, step, what, wait) = if out {
            (
                target.drain_op(&fence),
                "take out of the balancer",
                "wait for the balancer to take it out",
                self.lb.drain_wait(),
            )
        } else {
            (
                target.undrain_op(&fence),
                "put back in the balancer",
                "wait for the balancer to put it back",
                self.lb.restore_wait(),
            )
        };
        self.runner(i)
            .step(&format!("{label}: {step}"), |s| s.run_ok(&op).map(drop))?;
        self.wait(format!("{label}: {what}"), wait);
        Ok(())
    }
}

/// What a rollback stopped at `label` (going to release `n`) left, for the message.
fn stopped(label: &str, n: u64, done: &[(String, u64)]) -> String {
    let names: Vec<&str> = done.iter().map(|(l, _)| l.as_str()).collect();
    format!(
        "the rollback stopped there: {label} stays out of the balancer with release {n} active \
         and its `current` unchanged; rolled back before it: [{}]; the droplets after it are \
         unchanged\nhint: fix what failed, then `alembic apply --yes`, or `alembic rollback \
         --droplet {label} --to <release>` to bring {label} back alone",
        names.join(", ")
    )
}
