//! A deploy as data: the ops of one release in the order they run, and the pure plan.

use super::*;

/// The ops of one deploy, in the order they run on the happy path. A plan builds them with the
/// lease's token unknown (shown as `<token>`); the runner builds them again, with the token the
/// droplet handed out and the ledger it read under the lease, before running any.
#[derive(Clone, Debug)]
pub(crate) struct DeployOps {
    pub number: u64,
    pub base: Option<u64>,
    pub lease: Lease,
    // Nothing reads it yet: kept with the deploy it describes.
    #[allow(dead_code)]
    pub bundle: Bundle,
    /// The entry this release appends to the ledger on success.
    pub entry: LedgerEntry,
    pub take_lease: Op,
    /// How each pinned image reaches the droplet (before the upload).
    pub images: Vec<Delivery>,
    pub prepare: Op,
    pub uploads: Vec<Op>,
    pub env: Op,
    pub activate: Op,
    pub up: Op,
    pub fetch_ca: Option<Op>,
    pub probes: Vec<(ProbeTarget, Op)>,
    pub switch: Op,
    pub ledger: Op,
    pub prune: Option<Op>,
    pub release_lease: Op,
    pub close: Op,
    /// The ledger as it will read after success (the tests read it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub next_ledger: Ledger,
    /// The ledger the ops were built on (the one `ledger` is written over) and its sha256.
    pub base_ledger: Ledger,
    pub base_sha: Option<String>,
    /// The release dirs the ops were built on (prune removes from these).
    pub base_dirs: Vec<u64>,
}

/// What a deploy is built from besides the target and the lease.
pub(crate) struct DeployInput<'a> {
    bundle: &'a Bundle,
    number: u64,
    base: Option<u64>,
    entry: &'a LedgerEntry,
    /// The droplet's ledger, its sha256 and release dirs as read.
    ledger: &'a Ledger,
    ledger_sha: Option<&'a str>,
    dirs: &'a [u64],
}

impl DeployOps {
    pub(crate) fn build(target: &Target, input: &DeployInput<'_>, lease: &Lease) -> DeployOps {
        let n = input.number;
        let fence = lease.fence();
        let root = target.root.clone();
        let mut next_ledger = input.ledger.clone();
        next_ledger.format_version = 1;
        next_ledger.current = Some(n);
        next_ledger.releases.push(input.entry.clone());
        let mut dirs = input.dirs.to_vec();
        dirs.push(n);
        let prune = target.prune_op(&next_ledger.prune(&dirs, target.keep), &fence);
        let (fetch_ca, probes) = target.probe_ops();
        DeployOps {
            number: n,
            base: input.base,
            take_lease: lease::acquire_op(&target.ssh, PLANE, &root, lease),
            release_lease: lease::release_op(&target.ssh, PLANE, &root, &fence),
            lease: lease.clone(),
            bundle: input.bundle.clone(),
            entry: input.entry.clone(),
            images: deliveries(target, &input.bundle.pins),
            prepare: target.prepare_op(n, &fence),
            uploads: input
                .bundle
                .files
                .iter()
                .map(|(name, bytes)| target.upload_op(n, name, bytes, &fence))
                .collect(),
            env: target.env_op(n, &input.bundle.secrets, &fence),
            activate: target.link_op(n, "active", &fence),
            up: target.up_op(&fence),
            fetch_ca,
            probes,
            switch: target.link_op(n, "current", &fence),
            ledger: target.ledger_op(&next_ledger, input.ledger_sha, Some(n), &fence),
            prune,
            close: target.ssh.close_master(PLANE),
            next_ledger,
            base_ledger: input.ledger.clone(),
            base_sha: input.ledger_sha.map(str::to_owned),
            base_dirs: input.dirs.to_vec(),
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<Op> {
        let mut v = vec![self.take_lease.clone()];
        v.extend(self.images.iter().flat_map(|d| d.ops()));
        v.push(self.prepare.clone());
        v.extend(self.uploads.iter().cloned());
        v.push(self.env.clone());
        v.push(self.activate.clone());
        v.push(self.up.clone());
        v.extend(self.fetch_ca.iter().cloned());
        v.extend(self.probes.iter().map(|(_, o)| o.clone()));
        v.push(self.switch.clone());
        v.push(self.ledger.clone());
        v.extend(self.prune.iter().cloned());
        v.push(self.release_lease.clone());
        v.push(self.close.clone());
        v
    }
}

/// A planned droplet deploy: the plan to show, and the ops to run (None: nothing to do).
pub(crate) struct Planned {
    pub plane: PlanePlan,
    pub ops: Option<DeployOps>,
    // Nothing reads it yet: the state the plan was made over.
    #[allow(dead_code)]
    pub state: RemoteState,
}

/// The release `bundle` makes over `state`, for a plane's plan: its base, artifact and image
/// changes are filled in. `None` when it changes nothing over a current release (the plane then
/// says so and closes the connection); else the next release's number and its ledger entry.
pub(crate) fn next_release(
    plane: &mut PlanePlan,
    target: &Target,
    bundle: &Bundle,
    state: &RemoteState,
    by: &str,
) -> Option<(u64, LedgerEntry)> {
    let base = state.ledger.current;
    plane.base_release = base;
    plane.changes = diff_artifacts(&state.old, &bundle.comparable());
    let current_pins = state
        .ledger
        .current_release()
        .map(|r| r.pins.clone())
        .unwrap_or_default();
    plane.images = crate::images::changes(&bundle.pins, &current_pins);
    if plane.changes.is_empty() && base.is_some() {
        plane.notes.push(format!(
            "release {} is already current: nothing to do",
            base.unwrap_or(0)
        ));
        plane.ops.push(target.ssh.close_master(PLANE));
        return None;
    }
    let n = state.ledger.next_number(state.dirs.last().copied());
    plane.release = Some(n);
    Some((
        n,
        LedgerEntry {
            number: n,
            artifacts: bundle.hashes(),
            images: bundle.images.clone(),
            pins: crate::images::pin_map(&bundle.pins),
            secrets: bundle.secrets.clone(),
            time: ledger::rfc3339(ledger::now_epoch()),
            outcome: Outcome::Deployed,
            by: by.to_owned(),
            note: None,
            volumes: bundle.volumes.clone(),
        },
    ))
}

/// Plan the deploy of `bundle` over `state`. Pure: no I/O.
pub(crate) fn plan(
    target: &Target,
    bundle: &Bundle,
    state: RemoteState,
    lease: Lease,
    by: &str,
) -> Planned {
    let mut plane = PlanePlan::new(PLANE);
    if let Err(why) = &target.address {
        plane.notes.push(format!(
            "the droplet's address is unknown until the infra plane is applied ({why}): the \
             operations show {UNKNOWN_ADDRESS} in its place, and apply reads the `reserved_ip` \
             output again after `terraform apply` (applying this plane alone stops there)"
        ));
    }
    // Where the address comes from is the plan's first (read-only) step.
    plane.ops.extend(target.address_op.iter().cloned());
    // A provisioned droplet: wait for alembic's cloud-init to finish before anything else.
    if let Some(timeout) = target.bootstrap_timeout {
        plane.ops.push(target.wait_bootstrap_op(timeout));
        plane.notes.push(format!(
            "apply first waits for alembic's cloud-init to finish on the droplet (up to \
             {timeout} s); an existing server (`droplet.address`) gets no wait: `alembic \
             bootstrap` finishes before it returns"
        ));
    }
    let base = state.ledger.current;
    let Some((n, entry)) = next_release(&mut plane, target, bundle, &state, by) else {
        return Planned {
            plane,
            ops: None,
            state,
        };
    };
    let ops = DeployOps::build(
        target,
        &DeployInput {
            bundle,
            number: n,
            base,
            entry: &entry,
            ledger: &state.ledger,
            ledger_sha: state.ledger_sha.as_deref(),
            dirs: &state.dirs,
        },
        &lease,
    );
    plane.ops.extend(ops.to_vec());
    Planned {
        plane,
        ops: Some(ops),
        state,
    }
}
