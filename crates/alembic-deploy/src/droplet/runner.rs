//! The driver of a deploy: runs the planned ops in order, holding (and renewing) the lease,
//! and reports progress. A dry run is the same walk with the executor recording only.

use super::*;

pub(crate) fn query(ex: &mut Executor<'_>, op: &Op) -> Result<Output, DeployError> {
    let out = ex.query(op)?;
    check_ssh(op, &out)?;
    Ok(out)
}

/// ssh exits 255 when the connection itself failed.
pub(crate) fn check_ssh(op: &Op, out: &Output) -> Result<(), DeployError> {
    if op.program == "ssh" && out.status == 255 {
        let e = out.stderr_text();
        return Err(DeployError::Unreachable(
            e.lines()
                .last()
                .unwrap_or("ssh exited with status 255")
                .to_owned(),
        ));
    }
    Ok(())
}

/// Why a release did not go live (see [`Runner::go_live`]).
pub(crate) enum Live {
    /// The release itself failed: what, and the services whose logs tell why.
    Broken { what: String, services: Vec<String> },
    /// The apply cannot go on (ssh, lease lost, ...): nothing more is tried on the droplet.
    Stopped(DeployError),
}

/// Runs a deploy's ops and reports progress.
pub(crate) struct Runner<'a, 'b> {
    pub target: &'a Target,
    pub ex: &'a mut Executor<'b>,
    pub steps: Steps<'a>,
    pub redact: Redactor,
}

impl Runner<'_, '_> {
    pub(crate) fn run(&mut self, op: &Op) -> Result<Output, DeployError> {
        self.steps.op(op);
        let out = self.ex.run(op)?;
        check_ssh(op, &out)?;
        // A fenced script found the lease is no longer ours: it changed nothing.
        if op.program == "ssh" && out.status == lease::LOST {
            return Err(DeployError::LeaseLost(lease::now_held_by(
                &out.stdout_text(),
            )));
        }
        Ok(out)
    }

    /// A read-only op whose answer decides the next steps: run in a dry run too (when the
    /// droplet's address is known), recorded either way.
    pub(crate) fn decide(&mut self, op: &Op) -> Result<Output, DeployError> {
        if self.target.address.is_err() {
            return self.run(op);
        }
        self.steps.op(op);
        let out = self.ex.decide(op)?;
        check_ssh(op, &out)?;
        Ok(out)
    }

    pub(crate) fn run_ok(&mut self, op: &Op) -> Result<Output, DeployError> {
        let out = self.run(op)?;
        if !out.success() {
            return Err(DeployError::Step {
                step: op.step.clone(),
                detail: self.tail(&out.stderr_text(), 10),
            });
        }
        Ok(out)
    }

    pub(crate) fn tail(&self, text: &str, n: usize) -> String {
        let lines: Vec<&str> = text.trim_end().lines().collect();
        let start = lines.len().saturating_sub(n);
        self.redact.clean(&lines[start..].join("\n"))
    }

    /// A step wrapped in progress start/end.
    pub(crate) fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self) -> Result<T, DeployError>,
    ) -> Result<T, DeployError> {
        self.steps.start(name);
        let r = f(self);
        match &r {
            Ok(_) => self.steps.end(true, ""),
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or("").to_owned();
                self.steps.end(false, first)
            }
        }
        r
    }

    /// Take the lease; an expired one (by the droplet's clock) is taken over with a warning.
    /// Returns the lease as the droplet granted it (with its fencing token).
    pub(crate) fn take_lease(&mut self, take: &Op, planned: &Lease) -> Result<Lease, DeployError> {
        let root = self.target.root.clone();
        let out = self.run(take)?;
        if self.dry() {
            // A dry run takes no lease: the planned ops keep their `<token>`.
            return Ok(planned.clone());
        }
        match lease::interpret(out.status, &out.stdout_text()) {
            Found::Acquired { lease, took_over } => {
                if lease.id != planned.id {
                    return Err(DeployError::Step {
                        step: "take lease".into(),
                        detail: format!(
                            "the droplet granted lease {} where {} was asked for",
                            lease.id, planned.id
                        ),
                    });
                }
                // Every fenced op of the plan carries `<token>`: from now on it is this one.
                self.ex
                    .bind(lease::TOKEN_PLACEHOLDER, lease.token.to_string());
                if let Some(old) = took_over {
                    self.steps.warn(format!(
                        "took over an expired lease held by {} (now token {})",
                        old.describe(),
                        lease.token
                    ));
                }
                Ok(lease)
            }
            Found::Live(l) => Err(DeployError::LeaseHeld(l.describe())),
            Found::Unreadable(raw) if out.status == lease::HELD => {
                Err(DeployError::LeaseHeld(if raw.is_empty() {
                    format!("unknown (the lease lock {root}/.lease.lock stayed busy)")
                } else {
                    format!(
                        "unknown (unreadable {root}/lease.json: {raw:?}); remove it if no apply is running"
                    )
                }))
            }
            Found::Unreadable(_) => Err(DeployError::Step {
                step: "take lease".into(),
                detail: self.tail(&out.stderr_text(), 5),
            }),
        }
    }

    /// Keep the lease alive while it is held (a real apply only: a dry run takes none).
    pub(crate) fn start_renewer(&self, lease: &Lease) -> Renewer {
        let op = lease::renew_op(&self.target.ssh, PLANE, &self.target.root, &lease.fence());
        Renewer::start(op, lease.ttl, self.ex.goal == crate::exec::Goal::Apply)
    }

    /// Remove the lease if it still carries our token (a lost one is left to its new holder).
    pub(crate) fn release_lease(&mut self, op: &Op) {
        self.steps.start("release lease");
        let ok = self.run(op).map(|o| o.success()).unwrap_or(false);
        self.steps.end(
            ok,
            if ok {
                ""
            } else {
                "could not release the lease; it expires on its own"
            },
        );
    }

    pub(crate) fn close(&mut self, op: &Op) {
        self.steps.op(op);
        // Run in a dry run too when the address is known: a `decide` may have opened the
        // master connection.
        let _ = if self.target.address.is_ok() {
            self.ex.decide(op)
        } else {
            self.ex.run(op)
        };
        self.target.ssh.cleanup();
    }

    /// Run a planned deploy: exactly the planned ops, in order, the fencing token bound when
    /// the droplet hands it out. The lease is released whatever happens after it was taken. A
    /// dry run is the same walk through the same ops, with nothing run (the lease is taken
    /// as planned, every step succeeds).
    pub(crate) fn deploy(&mut self, ops: &DeployOps) -> Result<u64, DeployError> {
        if !self.dry() {
            self.target.ip()?;
        }
        if self.target.address.is_ok() {
            if let Err(e) = self.target.ssh.prepare() {
                return Err(DeployError::Step {
                    step: "create ssh control dir".into(),
                    detail: e.to_string(),
                });
            }
        }
        let lease = match self.step("take lease", |s| s.take_lease(&ops.take_lease, &ops.lease)) {
            Ok(l) => l,
            Err(e) => {
                self.close(&ops.close);
                return Err(e);
            }
        };
        let renewer = self.start_renewer(&lease);
        let r = self.deploy_leased(ops, &renewer);
        renewer.stop();
        self.release_lease(&ops.release_lease);
        self.close(&ops.close);
        r
    }

    pub(crate) fn dry(&self) -> bool {
        self.ex.goal == crate::exec::Goal::DryRun
    }

    pub(crate) fn deploy_leased(
        &mut self,
        ops: &DeployOps,
        renewer: &Renewer,
    ) -> Result<u64, DeployError> {
        let n = ops.number;
        self.check_unmoved(ops)?;
        renewer.check()?;
        self.upload(ops, renewer)?;
        renewer.check()?;
        match self.go_live(ops) {
            Ok(()) => {}
            Err(Live::Broken { what, services }) => {
                return Err(self.fail_and_roll_back(ops, what, &services))
            }
            Err(Live::Stopped(e)) => return Err(e),
        }
        renewer.check()?;
        self.record(ops)?;
        Ok(n)
    }

    /// Under the lease, the droplet must be exactly as planned (ledger bytes and release
    /// dirs): then every planned op is still the right one, and none is rebuilt. A read of the
    /// plan's own input, like the plan's: a query, not a step of the plan.
    pub(crate) fn check_unmoved(&mut self, ops: &DeployOps) -> Result<(), DeployError> {
        self.step("check the droplet has not moved", |s| {
            if s.dry() {
                return Ok(());
            }
            let out = query(s.ex, &s.target.state_op())?;
            if !out.success() {
                return Err(DeployError::Step {
                    step: "read ledger".into(),
                    detail: s.tail(&out.stderr_text(), 5),
                });
            }
            let now = parse_state(&out.stdout_text())?;
            crate::droplet::unchanged(now.seen(), (ops.base, &ops.base_sha, &ops.base_dirs))
        })
    }

    /// Ship the release's images and files (the new release dir and its `.env`); nothing is
    /// switched. A failed upload removes its half-written dir.
    pub(crate) fn upload(&mut self, ops: &DeployOps, renewer: &Renewer) -> Result<(), DeployError> {
        let n = ops.number;
        for d in &ops.images {
            self.deliver_image(d)?;
        }
        renewer.check()?;
        let uploaded = self.step(&format!("upload release {n}"), |s| {
            s.run_ok(&ops.prepare)?;
            for u in &ops.uploads {
                s.run_ok(u)?;
            }
            s.run_ok(&ops.env)?;
            Ok(())
        });
        uploaded.map_err(|e| self.discard_upload(ops, e))
    }

    /// Make the uploaded release the active one, `up` it and probe every route. A release
    /// that fails here (its `up`, its probe, the edge's CA) is [`Live::Broken`]: the caller
    /// decides whether it is rolled back.
    pub(crate) fn go_live(&mut self, ops: &DeployOps) -> Result<(), Live> {
        let n = ops.number;
        self.step(&format!("activate release {n}"), |s| {
            s.run_ok(&ops.activate).map(drop)
        })
        .map_err(Live::Stopped)?;
        // A failed `up` is a failed step (so progress says so), then handled like a failed
        // probe: previous release back, or this one down.
        let up = self.step("docker compose up --wait", |s| {
            let out = s.run(&ops.up)?;
            if out.success() {
                return Ok(());
            }
            Err(DeployError::Step {
                step: "docker compose up --wait".to_owned(),
                detail: format!(
                    "failed (exit {}): {}",
                    out.status,
                    s.tail(&out.stderr_text(), 10)
                ),
            })
        });
        match up {
            Ok(()) => {}
            Err(DeployError::Step { step, detail }) => {
                return Err(Live::Broken {
                    what: format!("{step} {detail}"),
                    services: self.target.services.clone(),
                })
            }
            Err(e) => return Err(Live::Stopped(e)),
        }
        let probed = match self.step("probe public routes", |s| {
            s.probe_all(ops.fetch_ca.as_ref(), &ops.probes)
        }) {
            Ok(p) => p,
            // The edge never produced its local CA: the release is as broken as a failed
            // probe, and is handled the same way (previous release back, or this one down).
            Err(e @ DeployError::Step { .. }) => {
                return Err(Live::Broken {
                    what: e.to_string(),
                    services: vec![alembic_render::compose::EDGE_SERVICE.to_owned()],
                })
            }
            Err(e) => return Err(Live::Stopped(e)),
        };
        if let Some((p, result)) = probed {
            let verb = if matches!(result, ProbeResult::Settled(_)) {
                ":"
            } else {
                " got"
            };
            let what = format!(
                "probe of {}://{}{} (through the edge at {}){verb} {}",
                self.target.probe_scheme(),
                p.host,
                p.path,
                self.target.edge_text(),
                result
            );
            return Err(Live::Broken {
                what,
                services: vec![p.workload],
            });
        }
        Ok(())
    }

    /// The release passed: point `current` at it, append it to the ledger, prune.
    pub(crate) fn record(&mut self, ops: &DeployOps) -> Result<(), DeployError> {
        let n = ops.number;
        self.step(&format!("switch current to release {n}"), |s| {
            s.run_ok(&ops.switch)?;
            s.run_ok(&ops.ledger)?;
            if let Some(p) = &ops.prune {
                s.run_ok(p)?;
            }
            Ok(())
        })
    }

    /// An upload failed (disk full, connection cut, ...) before anything was switched: remove
    /// the half-written release dir, so no partial bundle (or a partial `.env.tmp` holding
    /// secret values) stays on the droplet filling its disk, and say what is still current.
    /// Best effort: when the connection itself is gone the dir stays, and the next successful
    /// apply's prune removes it (it is neither current nor a healthy release in the ledger).
    pub(crate) fn discard_upload(&mut self, ops: &DeployOps, e: DeployError) -> DeployError {
        // A lost lease changes nothing more, not even our own leftovers.
        if matches!(e, DeployError::LeaseLost(_)) {
            return e;
        }
        let n = ops.number;
        let op = self.target.discard_op(n, &ops.lease.fence());
        let removed = self
            .step(&format!("remove incomplete release {n}"), |s| {
                s.run_ok(&op).map(drop)
            })
            .is_ok();
        // Other errors (ssh unreachable, ...) keep their own kind and message.
        let DeployError::Step { step, detail } = e else {
            return e;
        };
        let left = if removed {
            format!("the incomplete release {n} was removed")
        } else {
            format!("the incomplete release {n} could not be removed")
        };
        let serving = match ops.base {
            Some(b) => format!("release {b} is still current and serving"),
            None => "nothing was serving before".to_owned(),
        };
        DeployError::Step {
            step: format!("upload release {n}: {step}"),
            detail: format!("{detail}\nnothing was switched: {left}; {serving}"),
        }
    }
}

/// Renews the lease every TTL/3 from a plain thread (no async runtime) while it is held, through
/// the executor's `run_op` (the renewal needs no secret). Stops when told, or at the first
/// renewal the droplet refuses (the lease was taken over), remembering who holds it then; an
/// unreachable droplet is retried next round.
pub(crate) struct Renewer {
    pub(crate) stop: Option<mpsc::Sender<()>>,
    pub(crate) handle: Option<std::thread::JoinHandle<()>>,
    pub(crate) lost: Arc<Mutex<Option<String>>>,
}

pub(crate) struct NoSecrets;

impl SecretSource for NoSecrets {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

impl Renewer {
    pub(crate) fn start(op: Op, ttl: u64, enabled: bool) -> Renewer {
        let lost = Arc::new(Mutex::new(None));
        if !enabled {
            return Renewer {
                stop: None,
                handle: None,
                lost,
            };
        }
        let (stop, rx) = mpsc::channel::<()>();
        let seen = lost.clone();
        let period = Duration::from_millis((ttl.saturating_mul(1000) / 3).max(500));
        let handle = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(period) {
                let Ok(out) = crate::exec::run_op(&op, &NoSecrets) else {
                    continue;
                };
                if out.status == lease::LOST {
                    if let Ok(mut l) = seen.lock() {
                        *l = Some(lease::now_held_by(&out.stdout_text()));
                    }
                    return;
                }
            }
        });
        Renewer {
            stop: Some(stop),
            handle: Some(handle),
            lost,
        }
    }

    /// Err(LeaseLost) once a renewal was refused: stop before the next mutating step.
    pub(crate) fn check(&self) -> Result<(), DeployError> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(who) => Err(DeployError::LeaseLost(who)),
            None => Ok(()),
        }
    }

    /// Stop renewing and wait for the thread (a renewal under way ends within its lock wait).
    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Runner<'_, '_> {
    /// Wait for a provisioned droplet's bootstrap (its cloud-init) to finish, over the same
    /// ssh, before anything else reaches the droplet. A fresh droplet's sshd may not answer at
    /// once, so an unreachable droplet is asked again until `timeout` seconds have passed.
    /// Done (0) passes; done with recoverable errors (2) passes with a warning carrying
    /// cloud-init's `status --long`; anything else fails with it. A dry run records the op.
    pub(crate) fn wait_bootstrap(&mut self, op: &Op, timeout: u64) -> Result<(), DeployError> {
        if !self.dry() {
            self.target.ip()?;
            if let Err(e) = self.target.ssh.prepare() {
                return Err(DeployError::Step {
                    step: "create ssh control dir".into(),
                    detail: e.to_string(),
                });
            }
        }
        let deadline = Instant::now() + Duration::from_secs(timeout);
        self.step("wait for bootstrap", |s| loop {
            let out = match s.run(op) {
                Err(DeployError::Unreachable(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
                r => r?,
            };
            let long = s.tail(&out.stdout_text(), 30);
            return match out.status {
                0 => Ok(()),
                CLOUD_INIT_RECOVERABLE => {
                    s.steps.warn(format!(
                        "cloud-init finished with recoverable errors:\n{long}"
                    ));
                    Ok(())
                }
                124 => Err(DeployError::Step {
                    step: op.step.clone(),
                    detail: format!(
                        "cloud-init had not finished after {timeout} s \
                         (`{BOOTSTRAP_TIMEOUT_ENV}` sets the limit); its status:\n{long}"
                    ),
                }),
                code => Err(DeployError::Step {
                    step: op.step.clone(),
                    detail: format!(
                        "cloud-init reports the bootstrap failed (exit {code}); its status:\n{}{}",
                        long,
                        match s.tail(&out.stderr_text(), 5) {
                            e if e.is_empty() => String::new(),
                            e => format!("\n{e}"),
                        }
                    ),
                }),
            };
        })
    }
}
