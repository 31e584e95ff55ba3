//! Probing a release through the edge, and bringing a previous release back: after a failed
//! `up` or probe, and for `alembic rollback`.

use super::*;

impl Runner<'_, '_> {
    /// Probe every route until healthy or the deadline. Returns the first route still failing.
    pub(crate) fn probe_all(
        &mut self,
        fetch_ca: Option<&Op>,
        probes: &[(ProbeTarget, Op)],
    ) -> Result<Option<(ProbeTarget, ProbeResult)>, DeployError> {
        let timeout = self.target.probe_timeout;
        let deadline = Instant::now() + Duration::from_secs(timeout);
        if let Some(op) = fetch_ca {
            self.fetch_ca(op, deadline)?;
        }
        let window = settle::window_from_env();
        for (p, op) in probes {
            let mut last: ProbeResult;
            let mut settled = Settle::new(window);
            let mut ps_at: Option<Instant> = None;
            loop {
                // The app's own state first. While the app fails by itself, the edge probe
                // would only wait out its `--max-time` (the edge holds requests to an upstream
                // its health checks mark down), so it is skipped and the app looked at again a
                // second later: the settle window is measured at that step, not the probe's.
                let direct = self.container_verdict(&p.workload, &p.host, &mut ps_at);
                if let Some(why) = settled.observe(&direct, Instant::now()) {
                    last = ProbeResult::Settled(why);
                    break;
                }
                if let Verdict::Failing(what) = &direct {
                    if Instant::now() >= deadline {
                        last = ProbeResult::Settled(format!(
                            "{what}, still at the probe timeout ({timeout} s)"
                        ));
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                self.steps.op(op);
                let out = self.ex.run(op)?;
                last = if self.dry() {
                    // A dry run assumes every step succeeds.
                    ProbeResult::Healthy(200)
                } else {
                    probe::interpret(out.status, &out.stdout_text(), &out.stderr_text())
                };
                if let Some(why) = settled.observe(&settle::classify(&last), Instant::now()) {
                    last = ProbeResult::Settled(why);
                    break;
                }
                if last.is_healthy() || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            if !last.is_healthy() {
                return Ok(Some((p.clone(), last)));
            }
        }
        Ok(None)
    }

    /// While a route is not up yet through the edge: has its container exited, is it
    /// restarting or unhealthy, or does the app itself answer an error? Asked at most every
    /// second; a look that cannot run says nothing.
    pub(crate) fn container_verdict(
        &mut self,
        service: &str,
        host: &str,
        last: &mut Option<Instant>,
    ) -> Verdict {
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(900)) {
            return Verdict::NotUpYet;
        }
        *last = Some(Instant::now());
        let op = self.target.upstream_op(service, host);
        match self.run(&op) {
            Ok(out) if out.success() => settle::upstream_verdict(&out.stdout_text(), service),
            _ => Verdict::NotUpYet,
        }
    }

    /// Caddy creates its local CA on start: retry until the edge has it.
    pub(crate) fn fetch_ca(&mut self, op: &Op, deadline: Instant) -> Result<(), DeployError> {
        loop {
            let out = self.run(op)?;
            if self.dry() {
                return Ok(());
            }
            if out.success() {
                if let Some(pem) = probe::first_file_in_tar(&out.stdout) {
                    crate::fsio::write_atomic(&self.target.ca_file(), &pem, 0o644).map_err(
                        |e| DeployError::Step {
                            step: "save the edge CA".into(),
                            detail: e.to_string(),
                        },
                    )?;
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(DeployError::Step {
                    step: "fetch the edge's local CA".into(),
                    detail: self.tail(&out.stderr_text(), 5),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub(crate) fn collect_logs(&mut self, services: &[String]) -> Vec<(String, String)> {
        let mut logs = Vec::new();
        for svc in services {
            let op = self.target.logs_op(svc);
            if let Ok(out) = self.run(&op) {
                let text = format!("{}{}", out.stdout_text(), out.stderr_text());
                logs.push((svc.clone(), self.tail(&text, LOG_LINES)));
            }
        }
        logs
    }

    /// Bring the previous release back (or, for a first release, bring the failed one down),
    /// record the failure, and say why.
    pub(crate) fn fail_and_roll_back(
        &mut self,
        ops: &DeployOps,
        what: String,
        services: &[String],
    ) -> DeployError {
        let n = ops.number;
        let fence = ops.lease.fence();
        let failure = Failure {
            what,
            logs: self.collect_logs(services),
        };
        let mut restored = None;
        let mut stopped = Ok(());
        if ops.base.is_none() {
            // Nothing was serving before: leaving the failed release up would publish a broken
            // service under the routes, so it goes down (volumes kept).
            let down = self.target.down_op(&fence);
            match self.step(&format!("stop failed release {n}"), |s| {
                s.run_ok(&down).map(drop)
            }) {
                Err(e @ DeployError::LeaseLost(_)) => return e,
                r => stopped = r.map_err(|e| e.to_string()),
            }
        }
        if let Some(prev) = ops.base {
            let r = self.step(&format!("roll back to release {prev}"), |s| {
                s.run_ok(&s.target.link_op(prev, "active", &fence))?;
                s.run_ok(&s.target.up_op(&fence))?;
                Ok(())
            });
            match r {
                Ok(()) => restored = Some(prev),
                Err(e @ DeployError::LeaseLost(_)) => return e,
                Err(e) => {
                    return DeployError::Step {
                        step: format!(
                            "release {n} failed ({}); rolling back to {prev}",
                            failure.what
                        ),
                        detail: e.to_string(),
                    }
                }
            }
        }
        // Appended to the ledger read under the lease: the failed release's one entry.
        let mut ledger = ops.base_ledger.clone();
        ledger.format_version = 1;
        ledger.current = ops.base;
        ledger.releases.push(LedgerEntry {
            outcome: Outcome::Failed,
            note: Some(match (restored, &stopped) {
                (Some(p), _) => format!("{}; rolled back to release {p}", failure.what),
                (None, Ok(())) => format!(
                    "{}; nothing was serving before, the failed release was stopped",
                    failure.what
                ),
                (None, Err(_)) => format!(
                    "{}; nothing was serving before, stopping the failed release failed",
                    failure.what
                ),
            }),
            ..ops.entry.clone()
        });
        let op = self
            .target
            .ledger_op(&ledger, ops.base_sha.as_deref(), Some(n), &fence);
        if let Err(e @ DeployError::LeaseLost(_)) = self
            .step("record the failure in the ledger", |s| {
                s.run_ok(&op).map(drop)
            })
        {
            return e;
        }
        match restored {
            Some(to) => DeployError::RolledBack {
                failed: n,
                to,
                failure,
            },
            None => DeployError::Failed {
                failed: n,
                stopped,
                failure,
            },
        }
    }

    /// `alembic rollback`: make release `to` (default: the newest healthy one before current)
    /// current again, whole: its compose file, Caddyfile and `.env`. `planned` is the lease to
    /// ask for and `time` the ledger entry's time, both fixed when the rollback was planned, so
    /// a dry run (the same walk, the executor recording) shows exactly the ops that run.
    pub(crate) fn rollback(
        &mut self,
        to: Option<u64>,
        planned: &Lease,
        time: &str,
    ) -> Result<u64, DeployError> {
        self.target.ip()?;
        if let Err(e) = self.target.ssh.prepare() {
            return Err(DeployError::Step {
                step: "create ssh control dir".into(),
                detail: e.to_string(),
            });
        }
        let planned = planned.clone();
        let by = planned.holder.clone();
        let take = lease::acquire_op(&self.target.ssh, PLANE, &self.target.root, &planned);
        let close = self.target.ssh.close_master(PLANE);
        let lease = match self.step("take lease", |s| s.take_lease(&take, &planned)) {
            Ok(l) => l,
            Err(e) => {
                self.close(&close);
                return Err(e);
            }
        };
        let renewer = self.start_renewer(&lease);
        // The fenced ops carry `<token>`, as planned: the executor binds the token the droplet
        // handed out (`take_lease`), so a dry run and the rollback record the same ops.
        let fence = planned.fence();
        let r = self.rollback_leased(to, (&by, time), &fence, &renewer);
        renewer.stop();
        let release = lease::release_op(&self.target.ssh, PLANE, &self.target.root, &fence);
        self.release_lease(&release);
        self.close(&close);
        r
    }

    pub(crate) fn rollback_leased(
        &mut self,
        to: Option<u64>,
        (by, time): (&str, &str),
        fence: &Fence,
        renewer: &Renewer,
    ) -> Result<u64, DeployError> {
        let back = self.rollback_target(to)?;
        self.restore(&back, fence)?;
        self.switch_back(back, (by, time), fence, renewer)
    }

    /// Read the droplet's state (under the lease) and find the release a rollback makes
    /// current: `to`, or the newest healthy one before current; refused unless it is a
    /// healthy release whose directory is still on the droplet.
    pub(crate) fn rollback_target(&mut self, to: Option<u64>) -> Result<Restore, DeployError> {
        let state = self.target.query_state(self.ex)?;
        let to = match to.or_else(|| state.ledger.previous_healthy().first().copied()) {
            Some(n) => n,
            None => {
                return Err(DeployError::Config(
                    "no previous healthy release to roll back to".into(),
                ))
            }
        };
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
        Ok(Restore { to, entry, state })
    }

    /// Bring release `back.to` up (`active`, compose `up`) and probe every route through the
    /// edge; `current` and the ledger are not touched yet.
    pub(crate) fn restore(&mut self, back: &Restore, fence: &Fence) -> Result<(), DeployError> {
        let to = back.to;
        self.step(&format!("restore release {to}"), |s| {
            s.run_ok(&s.target.link_op(to, "active", fence))?;
            s.run_ok(&s.target.up_op(fence))?;
            Ok(())
        })?;
        let (fetch_ca, probes) = self.target.probe_ops();
        let probed = self.step("probe public routes", |s| {
            s.probe_all(fetch_ca.as_ref(), &probes)
        })?;
        if let Some((p, result)) = probed {
            return Err(DeployError::Step {
                step: format!("probe after restoring release {to}"),
                detail: format!("https://{}{} got {result}", p.host, p.path),
            });
        }
        Ok(())
    }

    /// Make the restored release `current` and record the rollback in the ledger (refused if
    /// the ledger changed since it was read, or the lease was lost).
    pub(crate) fn switch_back(
        &mut self,
        back: Restore,
        (by, time): (&str, &str),
        fence: &Fence,
        renewer: &Renewer,
    ) -> Result<u64, DeployError> {
        let Restore { to, entry, state } = back;
        let ledger = state.ledger.restored(to, entry, time, by);
        // A rollback entry repeats a recorded number by design: only the ledger's sha is held.
        let ledger_op = self
            .target
            .ledger_op(&ledger, state.ledger_sha.as_deref(), None, fence);
        renewer.check()?;
        self.step(&format!("switch current to release {to}"), |s| {
            s.run_ok(&s.target.link_op(to, "current", fence))?;
            s.run_ok(&ledger_op).map(drop)
        })?;
        Ok(to)
    }
}

/// Where a rollback goes on one droplet: the release, its ledger entry, and the state it was
/// found in (read under the lease).
pub(crate) struct Restore {
    pub to: u64,
    entry: LedgerEntry,
    pub state: RemoteState,
}
