//! The scaled-out Terraform (`[droplet.lb]`, `count > 1`, `engine = "kubernetes"`): what each
//! resource says, read back from the rendered HCL. `terraform fmt -check` and the provider
//! schema cover these files with every other fixture (droplet_checkers.rs, provider_schema.rs).

mod droplet_support;

use alembic_config::Topology;
use alembic_render::{terraform, terraform_scale};
use droplet_support::fixture;
use hcl::{Block, Body, Expression};

fn main_tf(t: &Topology) -> Body {
    let arts = terraform::render(t);
    let main = arts
        .iter()
        .find(|a| a.path.ends_with("/main.tf"))
        .expect("main.tf");
    hcl::from_str(main.text()).expect("main.tf parses")
}

fn resources<'a>(body: &'a Body, ty: &str) -> Vec<&'a Block> {
    body.blocks()
        .filter(|b| b.identifier() == "resource" && b.labels()[0].as_str() == ty)
        .collect()
}

fn attr<'a>(b: &'a Block, key: &str) -> Option<&'a Expression> {
    b.body()
        .attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr())
}

fn text(e: Option<&Expression>) -> String {
    match e {
        Some(Expression::String(s)) => s.clone(),
        // Compact: `[a, b]` whatever the layout of the list.
        Some(other) => other.to_string().split_whitespace().collect(),
        None => String::new(),
    }
}

/// `(protocol, port, source key, source expression)` of every inbound rule.
fn inbound(firewall: &Block) -> Vec<(String, String, String, String)> {
    firewall
        .body()
        .blocks()
        .filter(|b| b.identifier() == "inbound_rule")
        .map(|r| {
            let source = r
                .body()
                .attributes()
                .find(|a| a.key().starts_with("source_"))
                .expect("a source");
            (
                text(attr(r, "protocol")),
                text(attr(r, "port_range")),
                source.key().to_owned(),
                text(Some(source.expr())),
            )
        })
        .collect()
}

#[test]
fn compose_droplets_sit_behind_a_load_balancer_that_alone_reaches_the_edge() {
    let t = fixture("scale-compose");
    assert!(terraform_scale::is_scaled(&t));
    let body = main_tf(&t);
    let droplet = resources(&body, "digitalocean_droplet");
    assert_eq!(droplet.len(), 1);
    assert_eq!(attr(droplet[0], "count"), Some(&Expression::from(3)));
    assert_eq!(
        text(attr(droplet[0], "vpc_uuid")),
        "digitalocean_vpc.main.id"
    );
    assert!(text(attr(droplet[0], "tags")).contains("digitalocean_tag.edge.id"));
    assert_eq!(resources(&body, "digitalocean_vpc").len(), 1);
    assert!(resources(&body, "digitalocean_reserved_ip").is_empty());

    let lb = resources(&body, "digitalocean_loadbalancer");
    assert_eq!(lb.len(), 1);
    let lb = lb[0];
    assert_eq!(text(attr(lb, "droplet_tag")), "digitalocean_tag.edge.id");
    assert_eq!(
        attr(lb, "redirect_http_to_https"),
        Some(&Expression::Bool(true))
    );
    let health = lb
        .body()
        .blocks()
        .find(|b| b.identifier() == "healthcheck")
        .expect("healthcheck");
    assert_eq!(text(attr(health, "path")), "/healthz");
    assert_eq!(text(attr(health, "protocol")), "http");
    let rules: Vec<(String, String, String)> = lb
        .body()
        .blocks()
        .filter(|b| b.identifier() == "forwarding_rule")
        .map(|r| {
            (
                text(attr(r, "entry_port")),
                text(attr(r, "target_protocol")),
                text(attr(r, "certificate_name")),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                "443".into(),
                "http".into(),
                "digitalocean_certificate.edge.name".into()
            ),
            ("80".into(), "http".into(), String::new()),
        ]
    );

    let cert = resources(&body, "digitalocean_certificate");
    assert_eq!(cert.len(), 1);
    assert_eq!(text(attr(cert[0], "type")), "lets_encrypt");
    let domains = text(attr(cert[0], "domains"));
    for (_, r) in t.routes() {
        assert!(domains.contains(&r.host.to_string()), "{domains}");
    }

    // 80/443 only from the balancer; SSH only from the admins; no swarm ports on compose.
    let fw = resources(&body, "digitalocean_firewall");
    assert_eq!(text(attr(fw[0], "tags")), "[digitalocean_tag.edge.id]");
    let lb_only = "[digitalocean_loadbalancer.edge.id]".to_owned();
    assert_eq!(
        inbound(fw[0]),
        [
            (
                "tcp".into(),
                "80".into(),
                "source_load_balancer_uids".into(),
                lb_only.clone()
            ),
            (
                "tcp".into(),
                "443".into(),
                "source_load_balancer_uids".into(),
                lb_only
            ),
            (
                "tcp".into(),
                "22".into(),
                "source_addresses".into(),
                "[\"203.0.113.10/32\"]".into()
            ),
        ]
    );

    // DNS at the balancer, one record per route host.
    let records = resources(&body, "digitalocean_record");
    assert_eq!(records.len(), t.routes().count());
    for r in records {
        assert_eq!(text(attr(r, "value")), "digitalocean_loadbalancer.edge.ip");
    }
}

#[test]
fn swarm_ports_are_open_only_between_the_tagged_droplets() {
    let body = main_tf(&fixture("scale-swarm"));
    let fw = resources(&body, "digitalocean_firewall");
    let rules = inbound(fw[0]);
    for (protocol, port) in terraform_scale::SWARM_PORTS {
        assert!(
            rules.contains(&(
                protocol.into(),
                port.into(),
                "source_tags".into(),
                "[digitalocean_tag.edge.id]".into()
            )),
            "{protocol}/{port}: {rules:?}"
        );
    }
    // Nothing but 80/443 (from the balancer), SSH and the swarm ports.
    assert_eq!(rules.len(), 3 + terraform_scale::SWARM_PORTS.len());
    // Compose on the same droplets opens none of them.
    let body = main_tf(&fixture("scale-compose"));
    let rules = inbound(resources(&body, "digitalocean_firewall")[0]);
    for (protocol, port) in terraform_scale::SWARM_PORTS {
        assert!(
            !rules.iter().any(|r| r.0 == protocol && r.1 == port),
            "compose opens {protocol}/{port}: {rules:?}"
        );
    }
}

#[test]
fn passthrough_forwards_tls_to_the_edge_without_a_certificate() {
    let text_toml =
        std::fs::read_to_string(droplet_support::fixtures_dir().join("scale-compose.toml"))
            .unwrap()
            .replace("count       = 3\n", "")
            .replace("tls    = \"terminate\"", "tls    = \"passthrough\"");
    let t = alembic_config::load_str("t.toml", &text_toml)
        .topology
        .expect("one droplet may use passthrough");
    let body = main_tf(&t);
    assert!(resources(&body, "digitalocean_certificate").is_empty());
    let lb = resources(&body, "digitalocean_loadbalancer")[0];
    let https = lb
        .body()
        .blocks()
        .find(|b| b.identifier() == "forwarding_rule" && text(attr(b, "entry_port")) == "443")
        .unwrap();
    assert_eq!(
        attr(https, "tls_passthrough"),
        Some(&Expression::Bool(true))
    );
    assert_eq!(text(attr(https, "target_port")), "443");
}

#[test]
fn kubernetes_renders_a_doks_cluster_with_count_nodes() {
    let t = fixture("scale-kubernetes");
    let body = main_tf(&t);
    assert!(resources(&body, "digitalocean_droplet").is_empty());
    assert!(resources(&body, "digitalocean_firewall").is_empty());
    let cluster = resources(&body, "digitalocean_kubernetes_cluster");
    assert_eq!(cluster.len(), 1);
    let pool = cluster[0]
        .body()
        .blocks()
        .find(|b| b.identifier() == "node_pool")
        .unwrap();
    assert_eq!(attr(pool, "node_count"), Some(&Expression::from(3)));
    let versions = body
        .blocks()
        .find(|b| b.identifier() == "data")
        .expect("kubernetes versions data source");
    assert_eq!(
        text(attr(versions, "version_prefix")),
        format!("{}.", terraform_scale::KUBERNETES_MINOR)
    );
}

#[test]
fn one_droplet_without_a_balancer_keeps_the_single_layout() {
    let t = fixture("default");
    assert!(!terraform_scale::is_scaled(&t));
    let body = main_tf(&t);
    assert_eq!(resources(&body, "digitalocean_reserved_ip").len(), 1);
    assert!(resources(&body, "digitalocean_loadbalancer").is_empty());
}
