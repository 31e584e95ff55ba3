//! "Only the edge is public", proven over the rendered artifacts of the scaled-out fixtures:
//! every exposure rule runs over what `render` produces for compose behind a load balancer,
//! swarm and Kubernetes, and finds nothing; the same files, loosened, are caught.

use alembic_config::{Code, Topology};
use alembic_policy::{scan_artifacts, scan_text_with, ScanContext};

fn fixture(name: &str) -> Topology {
    let path = format!(
        "{}/../alembic-render/tests/fixtures/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture");
    alembic_config::load_str(&path, &text)
        .topology
        .expect("fixture validates")
}

const SCALED: [&str; 3] = ["scale-compose", "scale-swarm", "scale-kubernetes"];

#[test]
fn rendered_scaled_artifacts_have_no_findings() {
    for name in SCALED {
        let t = fixture(name);
        let set = alembic_render::render(&t);
        let d = scan_artifacts(&set, &ScanContext::of(&t));
        assert!(d.is_empty(), "{name}: {d:#?}");
    }
}

#[test]
fn a_firewall_opened_around_the_load_balancer_is_exp009() {
    let t = fixture("scale-compose");
    let set = alembic_render::render(&t);
    let main = set.get("infra/terraform/main.tf").expect("main.tf");
    let loosened = main.text().replacen(
        "source_load_balancer_uids = [digitalocean_loadbalancer.edge.id]",
        "source_addresses          = [\"0.0.0.0/0\", \"::/0\"]",
        1,
    );
    assert_ne!(loosened, main.text());
    let d = scan_text_with(&main.path, &loosened, None, &ScanContext::of(&t));
    let codes: Vec<Code> = d.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::Exp009], "{d:#?}");
}

#[test]
fn a_swarm_workload_publishing_a_port_is_exp003() {
    let t = fixture("scale-swarm");
    let set = alembic_render::render(&t);
    let stack = set.get("infra/docker/stack.yaml").expect("stack.yaml");
    let loosened = stack.text().replacen(
        "  worker:\n    image: ghcr.io/acme/worker:2.0.1\n",
        "  worker:\n    image: ghcr.io/acme/worker:2.0.1\n    ports:\n    - target: 9000\n      published: 9000\n      mode: host\n",
        1,
    );
    assert_ne!(loosened, stack.text());
    let d = scan_text_with(&stack.path, &loosened, None, &ScanContext::of(&t));
    let codes: Vec<Code> = d.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::Exp003], "{d:#?}");
}
