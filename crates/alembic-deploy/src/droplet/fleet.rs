//! Several droplets behind a load balancer (`engine = "compose"`): where each one is (the
//! existing servers of `droplet.addresses`, or the droplets the infra plane provisioned, from
//! Terraform's `droplet_ips` output) and what each one runs.
//!
//! Each droplet keeps its own state under `<root>/<address>` and runs its own compose project
//! `<project>-<address>` (dots and colons as dashes); an `edge_bind` that names one address
//! (not `0.0.0.0`/`::`) becomes each droplet's own address. On separate machines this changes
//! nothing that matters; where several droplets share one machine (one Docker engine, one
//! filesystem), their leases, ledgers, containers, networks, volumes and published ports
//! cannot collide.

use super::*;

use alembic_config::types::AbsPath;
use alembic_config::{LoadBalancer, Rollout};

/// One droplet of several: where it is, and its plan.
pub struct Member {
    /// The droplet's address as shown in plans and messages (a placeholder when unknown).
    pub label: String,
    pub target: Target,
    pub planned: Planned,
    /// Take it out of the balancer before `up`, and put it back after its probes.
    pub drain: Op,
    pub undrain: Op,
}

impl Member {
    /// `planned` for `target`, with the drain before `activate` and the undrain before the
    /// switch of `current` (in its plan's ops too): the steps the rolling deploy runs.
    pub fn new(label: String, target: Target, mut planned: Planned) -> Member {
        let fence = planned
            .ops
            .as_ref()
            .map(|o| o.lease.fence())
            .unwrap_or_else(|| Lease::for_this_process().fence());
        let drain = target.drain_op(&fence);
        let undrain = target.undrain_op(&fence);
        if let Some(ops) = &planned.ops {
            let mut with = Vec::with_capacity(planned.plane.ops.len() + 2);
            for op in planned.plane.ops.drain(..) {
                if op == ops.activate {
                    with.push(drain.clone());
                }
                if op == ops.switch {
                    with.push(undrain.clone());
                }
                with.push(op);
            }
            planned.plane.ops = with;
        }
        planned.plane.target = Some(label.clone());
        Member {
            label,
            target,
            planned,
            drain,
            undrain,
        }
    }
}

/// The droplets of one rolling deploy, in the order they are rolled.
pub struct Fleet {
    pub members: Vec<Member>,
    pub lb: LoadBalancer,
    pub rollout: Rollout,
}

/// Find the droplets: `droplet.addresses`, or `count` droplets from Terraform's `droplet_ips`
/// output (a read-only `terraform output`, run even in a dry run). Unknown addresses (infra
/// not applied yet, no terraform) give `count` droplets whose address says why.
pub fn resolve_addresses(
    t: &Topology,
    tf: Option<&terraform::Runner>,
    ex: &mut Executor<'_>,
) -> Vec<Address> {
    let existing = t.droplet.existing_addresses();
    if !existing.is_empty() {
        return existing.into_iter().map(Address::configured).collect();
    }
    let count = t.droplet.droplet_count();
    let unknown = |why: String, from: Option<Op>| {
        (0..count)
            .map(|_| Address {
                ip: Err(why.clone()),
                from: from.clone(),
            })
            .collect()
    };
    let Some(tf) = tf else {
        return unknown(
            "neither terraform nor tofu is on PATH to read the `droplet_ips` output".into(),
            None,
        );
    };
    let op = tf.output_op();
    let ips = match ex.query(&op) {
        Ok(out) => terraform::droplet_ips(out.status, &out.stdout_text(), &out.stderr_text()),
        Err(e) => Err(e.to_string()),
    };
    match ips {
        Ok(ips) => ips
            .into_iter()
            .map(|ip| Address {
                ip: Ok(ip),
                from: Some(op.clone()),
            })
            .collect(),
        Err(why) => unknown(why, Some(op)),
    }
}

/// The name a droplet's state and project are keyed by: its address (IPv6 colons as dashes,
/// so it is a path segment), or its position while the address is unknown.
fn key(address: &Address, index: usize) -> String {
    match &address.ip {
        Ok(ip) => ip.to_string().replace(':', "-"),
        Err(_) => format!("droplet-{}", index + 1),
    }
}

/// Droplet `index` at `address` as a topology of its own (its root and edge address), and its
/// compose project. Err: the root would not be a valid path (too long).
pub fn member_topology(
    t: &Topology,
    address: &Address,
    index: usize,
) -> Result<(Topology, String), DeployError> {
    let key = key(address, index);
    let mut m = t.clone();
    let root = format!("{}/{key}", t.droplet.root.as_str());
    m.droplet.root = AbsPath::parse(&root).map_err(|e| {
        DeployError::Config(format!(
            "droplet.root: the state of droplet {key} would live in {root}, which is not usable: {e}"
        ))
    })?;
    if let Ok(ip) = address.ip {
        if !t.droplet.edge_bind.is_unspecified() {
            m.droplet.edge_bind = ip;
        }
    }
    let project = format!("{}-{}", t.project.name, key.replace('.', "-"));
    Ok((m, project))
}

/// The label of a droplet in plans and messages.
pub(crate) fn label(address: &Address, index: usize) -> String {
    match &address.ip {
        Ok(ip) => ip.to_string(),
        Err(_) => format!("droplet {} (address unknown)", index + 1),
    }
}

impl Fleet {
    /// The note a plan shows above the droplets: how the release rolls across them.
    pub fn rollout_note(&self) -> String {
        format!(
            "rolling deploy over {} droplets: the lease is taken on each in this order and the \
             release uploaded to all; then one droplet at a time is taken out of the balancer \
             (its edge answers {} with 503), apply waits {} s for the balancer to notice \
             ({} checks {} s apart, {} s timeout), runs `docker compose up`, probes its routes \
             directly, puts it back and waits {} s ({} checks) before recording it; on failure: {}",
            self.members.len(),
            self.lb.health,
            self.lb.drain_wait().as_secs(),
            self.lb.unhealthy_threshold,
            self.lb.check_interval_seconds,
            self.lb.response_timeout_seconds,
            self.lb.restore_wait().as_secs(),
            self.lb.healthy_threshold,
            self.rollout.on_failure.as_str(),
        )
    }
}
