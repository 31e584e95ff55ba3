//! `infra/terraform/{versions.tf,variables.tf,main.tf,outputs.tf}`: the droplet plane's
//! DigitalOcean resources, built as `hcl::Body` values and laid out like `terraform fmt`.
//!
//! What gets provisioned, and why it is shaped this way:
//! - one droplet and one reserved IP, both `prevent_destroy`: a re-render must never plan the
//!   loss of the server or of the address every DNS record points at. The IP is attached by a
//!   separate `digitalocean_reserved_ip_assignment`, so replacing the droplet moves the address
//!   instead of destroying it;
//! - a firewall: 80/443 (tcp) from anywhere, SSH only from `droplet.admin_cidrs`, and explicit
//!   outbound rules (DigitalOcean firewalls drop all egress when none are given);
//! - the `project.domain` zone with one A record per distinct route host, at the reserved IP;
//! - a DigitalOcean project grouping the droplet, the IP and the domain.
//!
//! The API token never appears here, not even as a variable: the DigitalOcean provider reads
//! `DIGITALOCEAN_TOKEN` from its own environment, which the deploy layer sets from the env var
//! named by `droplet.token_env`. A Terraform variable would put the value into every plan file.
//! Nothing is rendered when `droplet.address` names an existing server.
//!
//! With `droplet.state_bucket`, `versions.tf` holds a `backend "s3"` pointing at that
//! DigitalOcean Spaces bucket: a CI deploy job starts with an empty checkout, and without
//! remote state it would plan a second droplet. The Spaces key pair stays out of the files too.

use std::collections::BTreeSet;

use alembic_config::types::Hostname;
use alembic_config::{Plane, RemoteState, Topology};
use hcl::{Block, Body, Expression, Traversal, Variable};

use crate::hclfmt::format_body;
use crate::{Artifact, ArtifactKind};

/// Provider source and the exact release the rendered resources are written against. Every
/// rendered resource block is checked in the tests against that release's schema, kept as data
/// in `data/digitalocean-provider-<PROVIDER_RELEASE>.json` (with its sources): a range would let
/// `terraform init` pick a release nobody checked the arguments against.
pub const PROVIDER_SOURCE: &str = "digitalocean/digitalocean";
/// The DigitalOcean provider release the resources were checked against.
pub const PROVIDER_RELEASE: &str = "2.75.0";
/// The `version` constraint in `versions.tf`: exactly [`PROVIDER_RELEASE`].
pub const PROVIDER_VERSION: &str = "= 2.75.0";
/// Oldest Terraform that understands everything rendered here.
pub const REQUIRED_VERSION: &str = ">= 1.5.0";
/// Where the DigitalOcean provider reads its API token from, in terraform's environment.
pub const PROVIDER_TOKEN_ENV: &str = "DIGITALOCEAN_TOKEN";
/// Output names the deploy layer reads with `terraform output -json`.
pub const OUTPUT_DROPLET_ID: &str = "droplet_id";
/// The reserved IP output.
pub const OUTPUT_RESERVED_IP: &str = "reserved_ip";
/// The state backend: Spaces is S3-compatible.
pub const BACKEND_TYPE: &str = "s3";
/// The `region` the S3 backend (AWS SDK) is given; Spaces ignores it, the endpoint picks the
/// real region.
pub const BACKEND_PLACEHOLDER_REGION: &str = "us-east-1";
/// Environment names the S3 backend reads the Spaces key pair from.
pub const BACKEND_ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
/// See [`BACKEND_ACCESS_KEY_ENV`].
pub const BACKEND_SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

const DIR: &str = "infra/terraform";
pub(crate) const EVERYWHERE: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// The Terraform files of a provisioned droplet (none otherwise).
pub fn render(t: &Topology) -> Vec<Artifact> {
    if !t.droplet.is_provisioned() {
        return Vec::new();
    }
    [
        ("versions.tf", format_body(&versions(t))),
        ("variables.tf", variables(t)),
        ("main.tf", format_body(&main_tf(t))),
        ("outputs.tf", format_body(&outputs_tf(t))),
    ]
    .into_iter()
    .map(|(file, text)| {
        Artifact::new(
            format!("{DIR}/{file}"),
            text,
            Plane::Droplet,
            ArtifactKind::Terraform,
        )
    })
    .collect()
}

/// `a.b.c` as an HCL traversal expression (a reference, not a string).
pub(crate) fn reference(path: &str) -> Expression {
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default();
    let mut b = Traversal::builder(Variable::unchecked(root));
    for p in parts {
        b = b.attr(p);
    }
    Expression::from(b.build())
}

pub(crate) fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Expression {
    Expression::Array(
        items
            .into_iter()
            .map(|s| Expression::String(s.as_ref().to_owned()))
            .collect(),
    )
}

/// `file("${path.module}/../droplet/cloud-init.yaml")`: the droplet's first-boot user data.
pub(crate) fn cloud_init_user_data() -> hcl::expr::FuncCall {
    hcl::expr::FuncCall::builder("file")
        .arg(Expression::from(hcl::expr::TemplateExpr::QuotedString(
            format!(
                "${{path.module}}/../droplet/{}",
                crate::bootstrap::CLOUD_INIT_PATH
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
            ),
        )))
        .build()
}

pub(crate) fn prevent_destroy() -> Block {
    Block::builder("lifecycle")
        .add_attribute(("prevent_destroy", true))
        .build()
}

fn versions(t: &Topology) -> Body {
    let provider: Expression = [
        ("source", Expression::from(PROVIDER_SOURCE)),
        ("version", Expression::from(PROVIDER_VERSION)),
    ]
    .into_iter()
    .collect();
    let mut terraform = Block::builder("terraform")
        .add_attribute(("required_version", REQUIRED_VERSION))
        .add_block(
            Block::builder("required_providers")
                .add_attribute(("digitalocean", provider))
                .build(),
        );
    if let Some(state) = t.droplet.remote_state() {
        terraform = terraform.add_block(backend(&state));
    }
    Body::builder().add_block(terraform.build()).build()
}

/// `backend "s3"` for a DigitalOcean Spaces bucket. Spaces speaks the S3 API but none of AWS's
/// account, STS, IMDS or region services, so the AWS-only preflight calls are skipped; the
/// region is AWS's placeholder (the real one is in the endpoint). Spaces does not implement the
/// flexible checksums newer AWS SDKs send, hence `skip_s3_checksum`. No credentials here: the
/// runner passes `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in the child's environment.
fn backend(state: &RemoteState<'_>) -> Block {
    let endpoints: Expression = [("s3", Expression::from(state.endpoint()))]
        .into_iter()
        .collect();
    Block::builder("backend")
        .add_label(BACKEND_TYPE)
        .add_attribute(("bucket", state.bucket.as_str()))
        .add_attribute(("key", state.key.as_str()))
        .add_attribute(("region", BACKEND_PLACEHOLDER_REGION))
        .add_attribute(("endpoints", endpoints))
        .add_attribute(("skip_credentials_validation", true))
        .add_attribute(("skip_requesting_account_id", true))
        .add_attribute(("skip_metadata_api_check", true))
        .add_attribute(("skip_region_validation", true))
        .add_attribute(("skip_s3_checksum", true))
        .add_attribute(("use_path_style", false))
        .build()
}

/// `variables.tf` declares no input: the one credential the config needs reaches the provider
/// by environment. The file stays (its path is part of the artifact set) and says so; a comment
/// is all it holds, so it is written as text rather than through the HCL serializer.
fn variables(t: &Topology) -> String {
    format!(
        "# No input variables. The DigitalOcean provider reads its API token from\n\
         # {PROVIDER_TOKEN_ENV} in terraform's environment; alembic sets it from the\n\
         # {} environment variable (droplet.token_env). The token is never a\n\
         # Terraform variable, so it never reaches a plan file or the state.\n",
        t.droplet.token_env
    )
}

/// Distinct route hosts inside the project's zone, sorted, with their record names: one DNS
/// record each. A host outside the zone gets no record here (the zone cannot hold it); policy
/// reports that route as EXP004.
pub(crate) fn route_hosts(t: &Topology) -> BTreeSet<(&Hostname, String)> {
    t.routes()
        .filter_map(|(_, r)| Some((&r.host, r.host.record_name(&t.project.domain)?)))
        .collect()
}

/// A Terraform resource name for the record named `name` (from `Hostname::record_name`).
/// Injective: hostnames hold no `_`, so turning dots into underscores cannot make two hosts
/// collide, and the `_` prefixes used for the apex and digit-led names cannot come from a
/// hostname either.
pub(crate) fn record_resource_name(name: &str) -> String {
    if name == "@" {
        return "_apex".to_owned();
    }
    let name = name.replace('.', "_");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// `main.tf`: one droplet behind a reserved IP, or with a load balancer or several droplets
/// (or on Kubernetes) the scaled-out layout of `crate::terraform_scale`.
fn main_tf(t: &Topology) -> Body {
    if crate::terraform_scale::is_scaled(t) {
        crate::terraform_scale::main(t)
    } else {
        main(t)
    }
}

fn outputs_tf(t: &Topology) -> Body {
    if crate::terraform_scale::is_scaled(t) {
        crate::terraform_scale::outputs(t)
    } else {
        outputs()
    }
}

fn main(t: &Topology) -> Body {
    let d = &t.droplet;
    let droplet = Block::builder("resource")
        .add_labels(["digitalocean_droplet", "main"])
        .add_attribute(("name", d.name.as_str()));
    // First-boot bootstrap: the cloud-init user-data rendered next to this directory
    // (crate::bootstrap); see [`first_boot`].
    let droplet = placement(droplet, d)
        .add_attribute(("ssh_keys", strings(&d.ssh_keys)))
        .add_attribute(("monitoring", true))
        .add_attribute(("tags", strings([t.project.name.as_str()])))
        .add_attribute(("user_data", Expression::from(cloud_init_user_data())))
        .add_block(first_boot())
        .build();

    let reserved_ip = Block::builder("resource")
        .add_labels(["digitalocean_reserved_ip", "edge"])
        .add_attribute(("region", reference("digitalocean_droplet.main.region")))
        .add_block(prevent_destroy())
        .build();
    let assignment = Block::builder("resource")
        .add_labels(["digitalocean_reserved_ip_assignment", "edge"])
        .add_attribute((
            "ip_address",
            reference("digitalocean_reserved_ip.edge.ip_address"),
        ))
        .add_attribute(("droplet_id", reference("digitalocean_droplet.main.id")))
        .build();

    let mut firewall = Block::builder("resource")
        .add_labels(["digitalocean_firewall", "edge"])
        .add_attribute(("name", format!("{}-edge", d.name)))
        .add_attribute((
            "droplet_ids",
            Expression::Array(vec![reference("digitalocean_droplet.main.id")]),
        ));
    for port in ["80", "443"] {
        firewall = firewall.add_block(rule(
            "inbound_rule",
            "tcp",
            port,
            ("source_addresses", strings(EVERYWHERE)),
        ));
    }
    let firewall = firewall
        .add_blocks(ssh_rule(d))
        .add_blocks(outbound_rules())
        .build();

    let resources = Expression::Array(vec![
        reference("digitalocean_droplet.main.urn"),
        reference("digitalocean_reserved_ip.edge.urn"),
        reference("digitalocean_domain.zone.urn"),
    ]);
    Body::builder()
        .add_block(droplet)
        .add_block(reserved_ip)
        .add_block(assignment)
        .add_block(firewall)
        .add_block(zone(t))
        .add_blocks(records(t, "digitalocean_reserved_ip.edge.ip_address"))
        .add_block(project(t, resources))
        .build()
}

/// The droplet's `region`, `size` and `image`. Provisioned droplets have them (validation
/// requires them without `address`); skipping a missing one keeps the renderer total instead
/// of panicking.
pub(crate) fn placement(
    mut droplet: hcl::structure::BlockBuilder,
    d: &alembic_config::Droplet,
) -> hcl::structure::BlockBuilder {
    for (key, value) in [
        ("region", &d.region),
        ("size", &d.size),
        ("image", &d.image),
    ] {
        if let Some(v) = value {
            droplet = droplet.add_attribute((key, v.as_str()));
        }
    }
    droplet
}

/// A droplet's lifecycle: never destroyed, and its first-boot `user_data` ignored once created.
/// DigitalOcean cannot change user_data in place: a changed value plans the droplet's
/// replacement, which prevent_destroy then refuses. An existing droplet gets later changes with
/// `alembic bootstrap` instead.
pub(crate) fn first_boot() -> Block {
    Block::builder("lifecycle")
        .add_attribute(("prevent_destroy", true))
        .add_attribute((
            "ignore_changes",
            Expression::Array(vec![reference("user_data")]),
        ))
        .build()
}

/// A firewall rule (`inbound_rule` / `outbound_rule`) for one protocol and port range.
pub(crate) fn rule(kind: &str, protocol: &str, port: &str, peer: (&str, Expression)) -> Block {
    Block::builder(kind)
        .add_attribute(("protocol", protocol))
        .add_attribute(("port_range", port))
        .add_attribute(peer)
        .build()
}

/// SSH from `admin_cidrs` only. An empty admin list renders no SSH rule at all: no CIDRs means
/// nobody, never everybody.
pub(crate) fn ssh_rule(d: &alembic_config::Droplet) -> Option<Block> {
    (!d.admin_cidrs.is_empty()).then(|| {
        rule(
            "inbound_rule",
            "tcp",
            &d.ssh_port.to_string(),
            (
                "source_addresses",
                strings(d.admin_cidrs.iter().map(|c| c.to_string())),
            ),
        )
    })
}

/// Explicit egress (DigitalOcean firewalls drop all of it when no outbound rule is given).
pub(crate) fn outbound_rules() -> Vec<Block> {
    ["tcp", "udp", "icmp"]
        .into_iter()
        .map(|protocol| {
            let mut r = Block::builder("outbound_rule").add_attribute(("protocol", protocol));
            if protocol != "icmp" {
                r = r.add_attribute(("port_range", "1-65535"));
            }
            r.add_attribute(("destination_addresses", strings(EVERYWHERE)))
                .build()
        })
        .collect()
}

/// The `project.domain` zone.
pub(crate) fn zone(t: &Topology) -> Block {
    Block::builder("resource")
        .add_labels(["digitalocean_domain", "zone"])
        .add_attribute(("name", t.project.domain.as_str()))
        .build()
}

/// One A record per distinct route host, at `value` (a reference to the public address).
pub(crate) fn records(t: &Topology, value: &str) -> Vec<Block> {
    route_hosts(t)
        .into_iter()
        .map(|(_, name)| {
            Block::builder("resource")
                .add_labels([
                    "digitalocean_record".to_owned(),
                    record_resource_name(&name),
                ])
                .add_attribute(("domain", reference("digitalocean_domain.zone.id")))
                .add_attribute(("type", "A"))
                .add_attribute(("name", name))
                .add_attribute(("value", reference(value)))
                .add_attribute(("ttl", 300))
                .build()
        })
        .collect()
}

/// The DigitalOcean project grouping `resources`.
pub(crate) fn project(t: &Topology, resources: Expression) -> Block {
    Block::builder("resource")
        .add_labels(["digitalocean_project", "main"])
        .add_attribute(("name", t.project.name.as_str()))
        .add_attribute((
            "description",
            format!("{} (managed by alembic)", t.project.domain),
        ))
        .add_attribute(("purpose", "Web Application"))
        .add_attribute(("environment", "Production"))
        .add_attribute(("resources", resources))
        .build()
}

fn outputs() -> Body {
    let output = |name: &str, description: &str, value: &str| {
        Block::builder("output")
            .add_label(name)
            .add_attribute(("description", description))
            .add_attribute(("value", reference(value)))
            .build()
    };
    Body::builder()
        .add_block(output(
            OUTPUT_DROPLET_ID,
            "ID of the droplet.",
            "digitalocean_droplet.main.id",
        ))
        .add_block(output(
            OUTPUT_RESERVED_IP,
            "The reserved IP every route's A record points at; alembic deploys over SSH to it.",
            "digitalocean_reserved_ip.edge.ip_address",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Found by the config fuzz target: a route outside `project.domain` (policy's EXP004)
    // panicked the renderer while slicing its record name. It gets no record in the zone.
    #[test]
    fn route_outside_the_zone_renders_without_its_record() {
        let text = alembic_config::DEFAULT_TOML.replace(
            "route      = \"api.alembic.example.com\"",
            "route      = \"api.example.net\"",
        );
        assert_ne!(text, alembic_config::DEFAULT_TOML);
        let t = alembic_config::load_str("t.toml", &text)
            .topology
            .expect("valid: the zone check is policy's");
        let main = render(&t)
            .into_iter()
            .find(|a| a.path.ends_with("main.tf"))
            .expect("main.tf");
        // Only the gateway's host (inside the zone) gets a record.
        assert_eq!(
            main.text()
                .matches("resource \"digitalocean_record\"")
                .count(),
            1,
            "{}",
            main.text()
        );
        assert!(main.text().contains("\"gateway\""), "{}", main.text());
    }
}
