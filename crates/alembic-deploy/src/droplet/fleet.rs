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
pub(crate) struct Member {
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
    pub(crate) fn new(label: String, target: Target, mut planned: Planned) -> Member {
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
pub(crate) struct Fleet {
    pub members: Vec<Member>,
    pub lb: LoadBalancer,
    pub rollout: Rollout,
}

/// Find the droplets: `droplet.addresses`, or `count` droplets from Terraform's `droplet_ips`
/// output (a read-only `terraform output`, run even in a dry run). Unknown addresses (infra
/// not applied yet, no terraform) give `count` droplets whose address says why.
pub(crate) fn resolve_addresses(
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
pub(crate) fn member_topology(
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

/// Droplet `index` at `address` as a target of its own: [`member_topology`]'s root and
/// project, and an ssh control dir of its own (its master socket, its edge CA). `target` makes
/// the target from the member's topology (the deploy's environment, or the process's).
pub(crate) fn member_target(
    t: &Topology,
    address: &Address,
    index: usize,
    target: impl FnOnce(&Topology, &Address) -> Target,
) -> Result<(Topology, Target), DeployError> {
    let (mt, project) = member_topology(t, address, index)?;
    let mut target = target(&mt, address);
    target.project = project;
    let dir = &target.ssh.control_dir;
    let name = dir
        .file_name()
        .map(|n| format!("{}-{}", n.to_string_lossy(), index + 1))
        .unwrap_or_else(|| format!("alembic-ssh-{}", index + 1));
    target.ssh.control_dir = dir.with_file_name(name);
    Ok((mt, target))
}

/// The droplet `--droplet` names among `addresses` (their index), or why none is: the
/// message names every known address. Unknown addresses (infra not applied) match nothing.
pub(crate) fn select(addresses: &[Address], wanted: IpAddr) -> Result<usize, String> {
    addresses
        .iter()
        .position(|a| a.ip.as_ref().is_ok_and(|ip| *ip == wanted))
        .ok_or_else(|| {
            let why = addresses
                .iter()
                .find_map(|a| a.ip.as_ref().err())
                .map(|why| format!("; the addresses are not known yet: {why}"))
                .unwrap_or_default();
            format!(
                "--droplet {wanted}: this config has no droplet at that address (droplets: \
                 {}){why}",
                known(addresses)
            )
        })
}

/// The droplets' addresses for a message, in the configured order.
pub(crate) fn known(addresses: &[Address]) -> String {
    addresses
        .iter()
        .enumerate()
        .map(|(i, a)| label(a, i))
        .collect::<Vec<_>>()
        .join(", ")
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
    pub(crate) fn rollout_note(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let mut t = alembic_config::default_topology();
        t.droplet.address = None;
        t.droplet.scale.addresses = vec![
            "203.0.113.20".parse().unwrap(),
            "2001:db8::7".parse().unwrap(),
        ];
        t.droplet.scale.lb = Some(LoadBalancer::default());
        t
    }

    #[test]
    fn each_droplet_has_its_own_root_project_and_edge_address() {
        let mut t = topology();
        t.droplet.edge_bind = "127.0.0.1".parse().unwrap();
        let root = t.droplet.root.to_string();
        let name = t.project.name.to_string();
        let v4 = Address::configured("203.0.113.20".parse().unwrap());
        let (m, project) = member_topology(&t, &v4, 0).unwrap();
        assert_eq!(m.droplet.root.as_str(), format!("{root}/203.0.113.20"));
        assert_eq!(project, format!("{name}-203-0-113-20"));
        assert_eq!(m.droplet.edge_bind, v4.ip.clone().unwrap());
        let v6 = Address::configured("2001:db8::7".parse().unwrap());
        let (m, project) = member_topology(&t, &v6, 1).unwrap();
        assert_eq!(m.droplet.root.as_str(), format!("{root}/2001-db8--7"));
        assert_eq!(project, format!("{name}-2001-db8--7"));
        // Not known yet: keyed by position; the edge keeps the configured bind.
        let unknown = Address {
            ip: Err("not applied".into()),
            from: None,
        };
        let (m, project) = member_topology(&t, &unknown, 2).unwrap();
        assert_eq!(m.droplet.root.as_str(), format!("{root}/droplet-3"));
        assert_eq!(project, format!("{name}-droplet-3"));
        assert_eq!(m.droplet.edge_bind, t.droplet.edge_bind);
        // Bound to every address: stays so on each droplet.
        t.droplet.edge_bind = "0.0.0.0".parse().unwrap();
        let (m, _) = member_topology(&t, &v4, 0).unwrap();
        assert!(m.droplet.edge_bind.is_unspecified());
    }

    /// `--droplet` picks a droplet by address (IPv6 compared as addresses, not text); any
    /// other address is refused naming every droplet. Each one gets its own ssh control dir.
    #[test]
    fn droplet_is_picked_by_address_and_gets_its_own_target() {
        let t = topology();
        let addresses: Vec<Address> = t
            .droplet
            .scale
            .addresses
            .iter()
            .map(|ip| Address::configured(*ip))
            .collect();
        assert_eq!(select(&addresses, "203.0.113.20".parse().unwrap()), Ok(0));
        assert_eq!(select(&addresses, "2001:db8:0::7".parse().unwrap()), Ok(1));
        assert_eq!(
            select(&addresses, "203.0.113.99".parse().unwrap()).unwrap_err(),
            "--droplet 203.0.113.99: this config has no droplet at that address \
             (droplets: 203.0.113.20, 2001:db8::7)"
        );
        let unknown = [Address {
            ip: Err("not applied".into()),
            from: None,
        }];
        assert!(select(&unknown, "203.0.113.20".parse().unwrap())
            .unwrap_err()
            .ends_with("(droplets: droplet 1 (address unknown)); the addresses are not known yet: not applied"));
        let (_, a) = member_target(&t, &addresses[0], 0, Target::from_topology).unwrap();
        let (_, b) = member_target(&t, &addresses[1], 1, Target::from_topology).unwrap();
        assert_ne!(a.ssh.control_dir, b.ssh.control_dir);
        assert_eq!(a.project, format!("{}-203-0-113-20", t.project.name));
        assert_eq!(b.root, format!("{}/2001-db8--7", t.droplet.root));
        assert_eq!(a.ssh.host, "203.0.113.20");
    }

    #[test]
    fn existing_servers_are_taken_in_order_and_terraform_lists_provisioned_ones() {
        let t = topology();
        let mut ex = Executor::new(crate::exec::Goal::DryRun, &super::super::runner::NoSecrets);
        let a = resolve_addresses(&t, None, &mut ex);
        assert_eq!(
            a.iter().map(|a| a.ip.clone().unwrap()).collect::<Vec<_>>(),
            t.droplet.scale.addresses
        );
        let out = r#"{"droplet_ips":{"sensitive":false,"type":["list","string"],"value":["203.0.113.5","203.0.113.6"]},
                      "load_balancer_ip":{"value":"203.0.113.9"}}"#;
        assert_eq!(
            terraform::droplet_ips(0, out, ""),
            Ok(vec![
                "203.0.113.5".parse().unwrap(),
                "203.0.113.6".parse().unwrap()
            ])
        );
        assert!(terraform::droplet_ips(0, "{}", "")
            .unwrap_err()
            .contains("not been applied"));
        assert!(terraform::droplet_ips(0, r#"{"droplet_ips":{"value":["soon"]}}"#, "").is_err());
    }

    #[test]
    fn a_member_plan_drains_before_activate_and_undrains_before_the_switch() {
        let t = topology();
        let address = Address::configured(t.droplet.scale.addresses[0]);
        let (m, project) = member_topology(&t, &address, 0).unwrap();
        let mut target = Target::from_topology(&m, &address);
        target.project = project;
        let set = alembic_render::render(&m);
        let bundle = Bundle::from_artifacts(&m, &set).unwrap();
        let lease = Lease::for_this_process();
        let by = lease.holder.clone();
        let planned = plan(&target, &bundle, RemoteState::default(), lease, &by);
        let member = Member::new("203.0.113.20".into(), target, planned);
        let steps: Vec<&str> = member
            .planned
            .plane
            .ops
            .iter()
            .map(|o| o.step.as_str())
            .collect();
        let at = |s: &str| steps.iter().position(|x| x.starts_with(s)).unwrap();
        assert!(
            at("take the droplet out") + 1 == at("point active"),
            "{steps:?}"
        );
        assert!(
            at("put the droplet back") + 1 == at("point current"),
            "{steps:?}"
        );
        assert!(at("docker compose up") < at("put the droplet back"));
        assert_eq!(member.planned.plane.target.as_deref(), Some("203.0.113.20"));
        // The drain marker lives under this droplet's own root, named by the render's constants.
        let drain = member.drain.args.last().unwrap();
        assert!(drain.contains(alembic_render::caddy::DRAIN_FILE), "{drain}");
        assert!(drain.contains("203.0.113.20"), "{drain}");
    }
}
