//! `infra/terraform/main.tf` and `outputs.tf` once the droplet plane outgrows one droplet: with
//! `[droplet.lb]`, `count > 1`, or `engine = "kubernetes"`.
//!
//! Compose and swarm (`droplet.count` droplets):
//! - a `digitalocean_vpc`, and the droplets in it, all carrying one `digitalocean_tag`;
//! - a `digitalocean_loadbalancer` selecting the droplets by that tag, with an HTTP health check
//!   on `droplet.lb.health`, `redirect_http_to_https`, and either TLS termination with a
//!   `digitalocean_certificate` of type `lets_encrypt` for every route host, or TLS passthrough
//!   to the edge;
//! - a firewall on the tag that admits 80/443 only from the load balancer
//!   (`source_load_balancer_uids`), SSH only from `admin_cidrs`, and for `engine = "swarm"` the
//!   swarm's ports (2377/tcp, 7946/tcp+udp, 4789/udp) only from the tagged droplets;
//! - the zone with every route host's A record at the load balancer (no reserved IP: the
//!   balancer's address is the stable one).
//!
//! Kubernetes: a `digitalocean_kubernetes_cluster` (DOKS) in the VPC with `count` nodes, its
//! version the newest patch of [`KUBERNETES_MINOR`] (the release `infra/k8s/` is typed and
//! validated against), and with TLS terminated at the balancer its certificate. The balancer
//! itself is created by the cluster from the edge's `LoadBalancer` Service (which names the
//! certificate), so the DNS records are not Terraform's there.

use alembic_config::{Engine, LbTls, Topology};
use hcl::{Block, Body, Expression, Traversal, Variable};

use crate::terraform::{
    cloud_init_user_data, first_boot, outbound_rules, placement, project, records, reference,
    route_hosts, rule, ssh_rule, strings, zone,
};

/// The Kubernetes minor release DOKS runs and `infra/k8s/` is written against.
pub const KUBERNETES_MINOR: &str = "1.35";
/// Docker Swarm's ports between nodes: cluster management, node gossip, the overlay network.
pub const SWARM_PORTS: [(&str, &str); 4] = [
    ("tcp", "2377"),
    ("tcp", "7946"),
    ("udp", "7946"),
    ("udp", "4789"),
];
/// Output: the droplets' ids (output names of the scaled-out layout).
pub const OUTPUT_DROPLET_IDS: &str = "droplet_ids";
/// Output: the droplets' public addresses.
pub const OUTPUT_DROPLET_IPS: &str = "droplet_ips";
/// Output: the droplets' VPC addresses.
pub const OUTPUT_DROPLET_PRIVATE_IPS: &str = "droplet_private_ips";
/// Output: the load balancer's address.
pub const OUTPUT_LOAD_BALANCER_IP: &str = "load_balancer_ip";
/// Output: the Kubernetes cluster's id.
pub const OUTPUT_CLUSTER_ID: &str = "cluster_id";
/// Output: the Kubernetes cluster's API endpoint.
pub const OUTPUT_CLUSTER_ENDPOINT: &str = "cluster_endpoint";

/// True when `main.tf` takes this module's layout instead of the single droplet's.
pub fn is_scaled(t: &Topology) -> bool {
    let s = &t.droplet.scale;
    t.droplet.is_provisioned() && (s.count > 1 || s.load_balancer().is_some())
}

/// The tag every droplet carries (and the balancer and firewall select by).
pub fn tag_name(t: &Topology) -> String {
    format!("{}-edge", t.project.name)
}

/// `digitalocean_droplet.main[*].<attr>`.
fn every_droplet(attr: &str) -> Expression {
    Traversal::builder(Variable::unchecked("digitalocean_droplet"))
        .attr("main")
        .full_splat()
        .attr(attr)
        .build()
        .into()
}

fn vpc(t: &Topology) -> Block {
    let mut b = Block::builder("resource")
        .add_labels(["digitalocean_vpc", "main"])
        .add_attribute(("name", format!("{}-vpc", t.project.name)));
    if let Some(r) = &t.droplet.region {
        b = b.add_attribute(("region", r.as_str()));
    }
    b.add_attribute((
        "description",
        format!("{} (managed by alembic)", t.project.domain),
    ))
    .build()
}

/// The load balancer's Let's Encrypt certificate for every route host, when it ends TLS.
fn certificate(t: &Topology) -> Option<Block> {
    let lb = t.droplet.scale.load_balancer().unwrap_or_default();
    let hosts: Vec<String> = route_hosts(t)
        .into_iter()
        .map(|(h, _)| h.to_string())
        .collect();
    (lb.tls == LbTls::Terminate).then(|| {
        Block::builder("resource")
            .add_labels(["digitalocean_certificate", "edge"])
            .add_attribute(("name", format!("{}-edge", t.project.name)))
            .add_attribute(("type", "lets_encrypt"))
            .add_attribute(("domains", strings(&hosts)))
            // Let's Encrypt validates through the zone's DNS, which must exist first.
            .add_attribute((
                "depends_on",
                Expression::Array(vec![reference("digitalocean_domain.zone")]),
            ))
            .build()
    })
}

/// `main.tf` of the scaled-out layout: VPC, droplets or cluster, load balancer, firewall, DNS.
pub fn main(t: &Topology) -> Body {
    if t.droplet.scale.engine == Engine::Kubernetes {
        return kubernetes(t);
    }
    let d = &t.droplet;
    let lb = d.scale.load_balancer().unwrap_or_default();
    let tag_ref = || Expression::Array(vec![reference("digitalocean_tag.edge.id")]);

    let tag = Block::builder("resource")
        .add_labels(["digitalocean_tag", "edge"])
        .add_attribute(("name", tag_name(t)))
        .build();

    let droplet = Block::builder("resource")
        .add_labels(["digitalocean_droplet", "main"])
        .add_attribute(("count", d.scale.count))
        .add_attribute((
            "name",
            Expression::from(hcl::expr::TemplateExpr::QuotedString(format!(
                "{}-${{count.index + 1}}",
                d.name
            ))),
        ));
    let droplet = placement(droplet, d)
        .add_attribute(("vpc_uuid", reference("digitalocean_vpc.main.id")))
        .add_attribute(("ssh_keys", strings(&d.ssh_keys)))
        .add_attribute(("monitoring", true))
        .add_attribute((
            "tags",
            Expression::Array(vec![
                Expression::from(t.project.name.as_str()),
                reference("digitalocean_tag.edge.id"),
            ]),
        ))
        .add_attribute(("user_data", Expression::from(cloud_init_user_data())))
        .add_block(first_boot())
        .build();

    let certificate = certificate(t);

    let https_rule = match lb.tls {
        LbTls::Terminate => Block::builder("forwarding_rule")
            .add_attribute(("entry_port", 443))
            .add_attribute(("entry_protocol", "https"))
            .add_attribute(("target_port", 80))
            .add_attribute(("target_protocol", "http"))
            .add_attribute((
                "certificate_name",
                reference("digitalocean_certificate.edge.name"),
            ))
            .build(),
        LbTls::Passthrough => Block::builder("forwarding_rule")
            .add_attribute(("entry_port", 443))
            .add_attribute(("entry_protocol", "https"))
            .add_attribute(("target_port", 443))
            .add_attribute(("target_protocol", "https"))
            .add_attribute(("tls_passthrough", true))
            .build(),
    };
    let mut balancer = Block::builder("resource")
        .add_labels(["digitalocean_loadbalancer", "edge"])
        .add_attribute(("name", format!("{}-edge", t.project.name)));
    if let Some(r) = &d.region {
        balancer = balancer.add_attribute(("region", r.as_str()));
    }
    let balancer = balancer
        .add_attribute(("vpc_uuid", reference("digitalocean_vpc.main.id")))
        .add_attribute(("droplet_tag", reference("digitalocean_tag.edge.id")))
        .add_attribute(("redirect_http_to_https", true))
        .add_block(https_rule)
        .add_block(
            Block::builder("forwarding_rule")
                .add_attribute(("entry_port", 80))
                .add_attribute(("entry_protocol", "http"))
                .add_attribute(("target_port", 80))
                .add_attribute(("target_protocol", "http"))
                .build(),
        )
        .add_block(
            Block::builder("healthcheck")
                .add_attribute(("protocol", "http"))
                .add_attribute(("port", 80))
                .add_attribute(("path", lb.health.as_str()))
                // `[droplet.lb]`'s timing: also what a rolling deploy waits out after draining
                // a droplet (its edge answers 503) and after putting it back.
                .add_attribute(("check_interval_seconds", lb.check_interval_seconds))
                .add_attribute(("response_timeout_seconds", lb.response_timeout_seconds))
                .add_attribute(("unhealthy_threshold", lb.unhealthy_threshold))
                .add_attribute(("healthy_threshold", lb.healthy_threshold))
                .build(),
        )
        .build();

    let from_lb = || {
        (
            "source_load_balancer_uids",
            Expression::Array(vec![reference("digitalocean_loadbalancer.edge.id")]),
        )
    };
    let mut firewall = Block::builder("resource")
        .add_labels(["digitalocean_firewall", "edge"])
        .add_attribute(("name", format!("{}-edge", d.name)))
        .add_attribute(("tags", tag_ref()));
    for port in ["80", "443"] {
        firewall = firewall.add_block(rule("inbound_rule", "tcp", port, from_lb()));
    }
    firewall = firewall.add_blocks(ssh_rule(d));
    if d.scale.engine == Engine::Swarm {
        for (protocol, port) in SWARM_PORTS {
            firewall = firewall.add_block(rule(
                "inbound_rule",
                protocol,
                port,
                ("source_tags", tag_ref()),
            ));
        }
    }
    let firewall = firewall.add_blocks(outbound_rules()).build();

    let resources = hcl::expr::FuncCall::builder("concat")
        .arg(every_droplet("urn"))
        .arg(Expression::Array(vec![
            reference("digitalocean_loadbalancer.edge.urn"),
            reference("digitalocean_domain.zone.urn"),
        ]))
        .build();

    Body::builder()
        .add_block(vpc(t))
        .add_block(tag)
        .add_block(droplet)
        .add_blocks(certificate)
        .add_block(balancer)
        .add_block(firewall)
        .add_block(zone(t))
        .add_blocks(records(t, "digitalocean_loadbalancer.edge.ip"))
        .add_block(project(t, Expression::from(resources)))
        .build()
}

fn kubernetes(t: &Topology) -> Body {
    let d = &t.droplet;
    let versions = Block::builder("data")
        .add_labels(["digitalocean_kubernetes_versions", "main"])
        .add_attribute(("version_prefix", format!("{KUBERNETES_MINOR}.")))
        .build();
    let mut cluster = Block::builder("resource")
        .add_labels(["digitalocean_kubernetes_cluster", "main"])
        .add_attribute(("name", d.name.as_str()));
    if let Some(r) = &d.region {
        cluster = cluster.add_attribute(("region", r.as_str()));
    }
    let mut pool = Block::builder("node_pool").add_attribute(("name", format!("{}-pool", d.name)));
    if let Some(s) = &d.size {
        pool = pool.add_attribute(("size", s.as_str()));
    }
    let cluster = cluster
        .add_attribute((
            "version",
            reference("data.digitalocean_kubernetes_versions.main.latest_version"),
        ))
        .add_attribute(("vpc_uuid", reference("digitalocean_vpc.main.id")))
        .add_attribute(("auto_upgrade", true))
        .add_attribute(("surge_upgrade", true))
        .add_attribute(("tags", strings([t.project.name.as_str()])))
        .add_block(
            pool.add_attribute(("node_count", d.scale.count))
                .add_attribute(("tags", strings([tag_name(t)])))
                .build(),
        )
        .add_block(
            Block::builder("lifecycle")
                .add_attribute(("prevent_destroy", true))
                // DOKS upgrades patch releases itself (auto_upgrade); a newer patch in the
                // data source must not plan a change.
                .add_attribute((
                    "ignore_changes",
                    Expression::Array(vec![reference("version")]),
                ))
                .build(),
        )
        .build();
    Body::builder()
        .add_block(versions)
        .add_block(vpc(t))
        .add_block(cluster)
        .add_block(zone(t))
        // The cluster's load balancer (made from the edge Service) takes it by name.
        .add_blocks(certificate(t))
        .add_block(project(
            t,
            Expression::Array(vec![
                reference("digitalocean_kubernetes_cluster.main.urn"),
                reference("digitalocean_domain.zone.urn"),
            ]),
        ))
        .build()
}

/// `outputs.tf` of the scaled-out layout.
pub fn outputs(t: &Topology) -> Body {
    let output = |name: &str, description: &str, value: Expression| {
        Block::builder("output")
            .add_label(name)
            .add_attribute(("description", description))
            .add_attribute(("value", value))
            .build()
    };
    if t.droplet.scale.engine == Engine::Kubernetes {
        return Body::builder()
            .add_block(output(
                OUTPUT_CLUSTER_ID,
                "ID of the Kubernetes cluster.",
                reference("digitalocean_kubernetes_cluster.main.id"),
            ))
            .add_block(output(
                OUTPUT_CLUSTER_ENDPOINT,
                "The cluster's API server.",
                reference("digitalocean_kubernetes_cluster.main.endpoint"),
            ))
            .build();
    }
    Body::builder()
        .add_block(output(
            OUTPUT_DROPLET_IDS,
            "IDs of the droplets, in order.",
            every_droplet("id"),
        ))
        .add_block(output(
            OUTPUT_DROPLET_IPS,
            "Public IPs of the droplets, in order; alembic deploys over SSH to each.",
            every_droplet("ipv4_address"),
        ))
        .add_block(output(
            OUTPUT_DROPLET_PRIVATE_IPS,
            "VPC addresses of the droplets, in order (what swarm nodes advertise).",
            every_droplet("ipv4_address_private"),
        ))
        .add_block(output(
            OUTPUT_LOAD_BALANCER_IP,
            "The load balancer's IP every route's A record points at.",
            reference("digitalocean_loadbalancer.edge.ip"),
        ))
        .build()
}
