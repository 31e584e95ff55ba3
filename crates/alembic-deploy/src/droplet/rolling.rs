//! The rolling deploy across several droplets behind a load balancer (`engine = "compose"`):
//! take the lease on every droplet in a fixed order; check each is as planned and upload the
//! release to all of them; then one droplet at a time: take it out of the balancer (its edge
//! answers the health path with 503), wait the balancer's unhealthy threshold, `up`, probe its
//! routes directly, put it back, wait the healthy threshold, record the release in its ledger.
//! On a failed release, `droplet.rollout.on_failure` says what happens: `rollback-all` rolls
//! the failing droplet back, then the ones already done in reverse; `rollback-host` only the
//! failing one; `pause` stops and leaves everything as it is (the failing droplet stays out of
//! the balancer). Every lease is released at the end, whatever happened.
//!
//! Each droplet has its own executor (its fencing token is bound there) and its own ssh
//! master. A dry run is the same walk: nothing runs and nobody waits.

use super::*;

use crate::exec::Goal;
use crate::progress::{Event, Progress};
use alembic_config::OnFailure;

use super::runner::Live;

/// Drives a [`Fleet`]'s rolling deploy.
pub(crate) struct Rolling<'a, 'b> {
    pub fleet: &'a Fleet,
    /// One executor per member, in the fleet's order.
    pub exs: Vec<Executor<'b>>,
    pub view: &'a mut dyn Progress,
    pub redact: Redactor,
}

impl<'b> Rolling<'_, 'b> {
    fn runner(&mut self, i: usize) -> Runner<'_, 'b> {
        Runner {
            target: &self.fleet.members[i].target,
            ex: &mut self.exs[i],
            steps: Steps::new(self.view),
            redact: self.redact.clone(),
        }
    }

    fn dry(&self) -> bool {
        self.exs.first().is_some_and(|e| e.goal == Goal::DryRun)
    }

    fn info(&mut self, message: String) {
        self.view.event(Event::Info { message });
    }

    /// Wait for the balancer (a real apply only), as a step of its own.
    fn wait(&mut self, what: String, d: Duration) {
        let dry = self.dry();
        let mut steps = Steps::new(self.view);
        steps.start(format!("{what} ({} s)", d.as_secs()));
        if !dry {
            std::thread::sleep(d);
        }
        steps.end(true, "");
    }

    /// The members with something to deploy, in order.
    fn rolled(&self) -> Vec<usize> {
        (0..self.fleet.members.len())
            .filter(|&i| self.fleet.members[i].planned.ops.is_some())
            .collect()
    }

    fn ops(&self, i: usize) -> &DeployOps {
        self.fleet.members[i]
            .planned
            .ops
            .as_ref()
            .expect("only members with ops are rolled")
    }

    fn at(&self, i: usize, error: DeployError, outcome: impl Into<String>) -> DeployError {
        DeployError::Rollout {
            droplet: self.fleet.members[i].label.clone(),
            error: Box::new(error),
            outcome: outcome.into(),
        }
    }

    /// Run the rolling deploy. Ok: per rolled droplet, its label and new release.
    pub(crate) fn run(&mut self) -> Result<Vec<(String, u64)>, DeployError> {
        let order = self.rolled();
        let mut held: Vec<(usize, Renewer)> = Vec::new();
        let mut r = Ok(());
        for &i in &order {
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
        let result = match r {
            Ok(()) => self.run_leased(&order, &held),
            Err(e) => Err(e),
        };
        for (i, renewer) in held.into_iter().rev() {
            renewer.stop();
            let op = self.ops(i).release_lease.clone();
            self.runner(i).release_lease(&op);
        }
        for i in 0..self.fleet.members.len() {
            let op = self.fleet.members[i].target.ssh.close_master(PLANE);
            self.runner(i).close(&op);
        }
        result
    }

    /// Take droplet `i`'s lease and start renewing it.
    fn take(&mut self, i: usize) -> Result<Renewer, DeployError> {
        let label = self.fleet.members[i].label.clone();
        let dry = self.dry();
        let ops = self.ops(i).clone();
        let mut run = self.runner(i);
        if !dry {
            run.target.ip()?;
        }
        if run.target.address.is_ok() {
            run.target.ssh.prepare().map_err(|e| DeployError::Step {
                step: "create ssh control dir".into(),
                detail: e.to_string(),
            })?;
        }
        let lease = run.step(&format!("{label}: take lease"), |s| {
            s.take_lease(&ops.take_lease, &ops.lease)
        })?;
        Ok(run.start_renewer(&lease))
    }

    fn run_leased(
        &mut self,
        order: &[usize],
        held: &[(usize, Renewer)],
    ) -> Result<Vec<(String, u64)>, DeployError> {
        let renewer = |i: usize| &held.iter().find(|(j, _)| *j == i).expect("held").1;
        // Everywhere first: each droplet as planned, the release uploaded (nothing switched).
        let mut uploaded = Vec::new();
        for &i in order {
            let label = self.fleet.members[i].label.clone();
            self.info(format!(
                "droplet {label}: upload release {}",
                self.ops(i).number
            ));
            let ops = self.ops(i).clone();
            let mut run = self.runner(i);
            let r = run
                .check_unmoved(&ops)
                .and_then(|()| renewer(i).check())
                .and_then(|()| run.upload(&ops, renewer(i)));
            if let Err(e) = r {
                let left = self.discard(&uploaded);
                return Err(self.at(i, e, format!("nothing was switched on any droplet{left}")));
            }
            uploaded.push(i);
        }
        let mut done: Vec<usize> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            match self.roll_one(i, renewer(i)) {
                Ok(()) => done.push(i),
                Err(Live::Stopped(e)) => {
                    return Err(self.at(
                        i,
                        e,
                        "the rollout stopped there: the droplets before it run the new release, \
                         the ones after it the old one",
                    ))
                }
                Err(Live::Broken { what, services }) => {
                    let rest = &order[pos + 1..];
                    return Err(self.on_failure(i, what, &services, &done, rest));
                }
            }
        }
        Ok(done
            .into_iter()
            .map(|i| (self.fleet.members[i].label.clone(), self.ops(i).number))
            .collect())
    }

    /// Drain, wait, `up`, probe, undrain, wait, record: one droplet's turn.
    fn roll_one(&mut self, i: usize, renewer: &Renewer) -> Result<(), Live> {
        let m = &self.fleet.members[i];
        let (label, drain, undrain) = (m.label.clone(), m.drain.clone(), m.undrain.clone());
        let lb = self.fleet.lb.clone();
        let ops = self.ops(i).clone();
        self.info(format!("droplet {label}: roll out release {}", ops.number));
        self.runner(i)
            .step(&format!("{label}: take out of the balancer"), |s| {
                s.run_ok(&drain).map(drop)
            })
            .map_err(Live::Stopped)?;
        self.wait(
            format!("{label}: wait for the balancer to take it out"),
            lb.drain_wait(),
        );
        renewer.check().map_err(Live::Stopped)?;
        self.runner(i).go_live(&ops)?;
        self.undrain(i, &undrain)?;
        renewer.check().map_err(Live::Stopped)?;
        self.runner(i).record(&ops).map_err(Live::Stopped)
    }

    fn undrain(&mut self, i: usize, undrain: &Op) -> Result<(), Live> {
        let label = self.fleet.members[i].label.clone();
        self.runner(i)
            .step(&format!("{label}: put back in the balancer"), |s| {
                s.run_ok(undrain).map(drop)
            })
            .map_err(Live::Stopped)?;
        let d = self.fleet.lb.restore_wait();
        self.wait(format!("{label}: wait for the balancer to put it back"), d);
        Ok(())
    }

    /// Remove the uploaded, never-activated release from droplets the rollout did not reach.
    /// Returns a note for the message (empty when there was nothing to remove).
    fn discard(&mut self, members: &[usize]) -> String {
        let mut failed = Vec::new();
        for &i in members {
            let ops = self.ops(i).clone();
            let op = self.fleet.members[i]
                .target
                .discard_op(ops.number, &ops.lease.fence());
            let label = self.fleet.members[i].label.clone();
            let ok = self
                .runner(i)
                .step(
                    &format!("{label}: remove unused release {}", ops.number),
                    |s| s.run_ok(&op).map(drop),
                )
                .is_ok();
            if !ok {
                failed.push(label);
            }
        }
        match (members.is_empty(), failed.is_empty()) {
            (true, _) => String::new(),
            (false, true) => "; the uploaded release was removed where it was not used".into(),
            (false, false) => format!(
                "; the uploaded release could not be removed from {} (the next apply prunes it)",
                failed.join(", ")
            ),
        }
    }

    /// Droplet `i`'s release failed: do what `on_failure` says, and say what was done.
    fn on_failure(
        &mut self,
        i: usize,
        what: String,
        services: &[String],
        done: &[usize],
        rest: &[usize],
    ) -> DeployError {
        let label = self.fleet.members[i].label.clone();
        let policy = self.fleet.rollout.on_failure;
        if policy == OnFailure::Pause {
            let logs = self.runner(i).collect_logs(services);
            let failure = Failure { what, logs };
            let done: Vec<String> = done
                .iter()
                .map(|&j| self.fleet.members[j].label.clone())
                .collect();
            return self.at(
                i,
                DeployError::Step {
                    step: format!("release {}", self.ops(i).number),
                    detail: failure.to_string(),
                },
                format!(
                    "on_failure = \"pause\": nothing was rolled back; {label} runs the failed \
                     release and stays out of the balancer; done before it: [{}]; fix and \
                     apply again, or `alembic rollback`",
                    done.join(", ")
                ),
            );
        }
        let ops = self.ops(i).clone();
        let error = self.runner(i).fail_and_roll_back(&ops, what, services);
        if matches!(error, DeployError::LeaseLost(_)) {
            return self.at(i, error, "the rollout stopped there");
        }
        let undrain = self.fleet.members[i].undrain.clone();
        let mut notes = Vec::new();
        if let Err(e) = self.undrain(i, &undrain) {
            let why = match e {
                Live::Stopped(e) => e.to_string(),
                Live::Broken { what, .. } => what,
            };
            notes.push(format!(
                "{label} could not be put back in the balancer: {why}"
            ));
        }
        let left = self.discard(rest);
        if policy == OnFailure::RollbackAll {
            for &j in done.iter().rev() {
                notes.push(self.revert(j, &label));
            }
        } else if !done.is_empty() {
            let done: Vec<String> = done
                .iter()
                .map(|&j| self.fleet.members[j].label.clone())
                .collect();
            notes.push(format!(
                "on_failure = \"rollback-host\": {} keep release {}",
                done.join(", "),
                ops.number
            ));
        }
        let mut outcome = format!("on_failure = \"{}\"", policy.as_str());
        for n in notes {
            outcome.push_str("; ");
            outcome.push_str(&n);
        }
        outcome.push_str(&left);
        self.at(i, error, outcome)
    }

    /// Bring droplet `j`, already on the new release, back to the one it had: out of the
    /// balancer, the old release up and probed (or, after a first release, the new one
    /// down), back in, `current` and the ledger switched back. Says what happened.
    fn revert(&mut self, j: usize, failed_on: &str) -> String {
        let m = &self.fleet.members[j];
        let (label, drain, undrain) = (m.label.clone(), m.drain.clone(), m.undrain.clone());
        let ops = self.ops(j).clone();
        let n = ops.number;
        let fence = ops.lease.fence();
        let lb = self.fleet.lb.clone();
        let r: Result<(), DeployError> = (|| {
            self.runner(j)
                .step(&format!("{label}: take out of the balancer"), |s| {
                    s.run_ok(&drain).map(drop)
                })?;
            self.wait(
                format!("{label}: wait for the balancer to take it out"),
                lb.drain_wait(),
            );
            let mut run = self.runner(j);
            match ops.base {
                Some(b) => run.step(&format!("{label}: roll back to release {b}"), |s| {
                    s.run_ok(&s.target.link_op(b, "active", &fence))?;
                    s.run_ok(&s.target.up_op(&fence))?;
                    let (fetch_ca, probes) = s.target.probe_ops();
                    if let Some((p, result)) = s.probe_all(fetch_ca.as_ref(), &probes)? {
                        return Err(DeployError::Step {
                            step: format!("probe after restoring release {b}"),
                            detail: format!("{}{} got {result}", p.host, p.path),
                        });
                    }
                    Ok(())
                })?,
                None => run.step(&format!("{label}: stop release {n}"), |s| {
                    s.run_ok(&s.target.down_op(&fence)).map(drop)
                })?,
            }
            self.undrain(j, &undrain).map_err(|e| match e {
                Live::Stopped(e) => e,
                Live::Broken { what, .. } => DeployError::Config(what),
            })?;
            let mut ledger = ops.next_ledger.clone();
            ledger.current = ops.base;
            let note = format!("release {n} failed on droplet {failed_on}; rolled back");
            let entry = match ops.base.and_then(|b| ledger.healthy(b).cloned()) {
                Some(e) => LedgerEntry {
                    time: ledger::rfc3339(ledger::now_epoch()),
                    outcome: Outcome::RolledBack,
                    by: ops.lease.holder.clone(),
                    note: Some(note),
                    ..e
                },
                None => LedgerEntry {
                    outcome: Outcome::Failed,
                    note: Some(format!(
                        "{note}: nothing was serving before, release {n} was stopped"
                    )),
                    ..ops.entry.clone()
                },
            };
            ledger.releases.push(entry);
            let sha = ledger::sha256_hex(ops.next_ledger.to_json().as_bytes());
            let target = &self.fleet.members[j].target;
            let write = target.ledger_op(&ledger, Some(&sha), None, &fence);
            let link = ops.base.map(|b| target.link_op(b, "current", &fence));
            self.runner(j)
                .step(&format!("{label}: record the rollback"), |s| {
                    if let Some(l) = &link {
                        s.run_ok(l)?;
                    }
                    s.run_ok(&write).map(drop)
                })
        })();
        match (r, ops.base) {
            (Ok(()), Some(b)) => format!("{label} rolled back to release {b}"),
            (Ok(()), None) => format!("{label} stopped release {n} (nothing was serving before)"),
            (Err(e), _) => format!("rolling back {label} failed: {e}"),
        }
    }
}
