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

#[test]
fn kubernetes_services_and_host_ports_around_the_edge_are_exp003() {
    let t = fixture("scale-kubernetes");
    let set = alembic_render::render(&t);
    let api = set.get("infra/k8s/api.yaml").expect("api.yaml");
    let ctx = ScanContext::of(&t);
    let codes = |text: &str| -> Vec<(Code, usize)> {
        scan_text_with(&api.path, text, None, &ctx)
            .iter()
            .map(|d| (d.code, d.line))
            .collect()
    };
    assert_eq!(codes(api.text()), []);
    let line_of = |text: &str, needle: &str| {
        text[..text.find(needle).expect(needle)]
            .matches('\n')
            .count()
            + 1
    };
    // The workload's Service made public.
    let lb = api
        .text()
        .replacen("type: ClusterIP", "type: LoadBalancer", 1);
    assert_eq!(
        codes(&lb),
        [(Code::Exp003, line_of(&lb, "type: LoadBalancer"))]
    );
    // A hostPort on the workload's container.
    let hp = api.text().replacen(
        "- containerPort: 8080",
        "- containerPort: 8080\n          hostPort: 8080",
        1,
    );
    assert_ne!(hp, api.text());
    assert_eq!(codes(&hp), [(Code::Exp003, line_of(&hp, "hostPort"))]);
    // The pod on the node's network.
    let hn = api.text().replacen(
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: false\n      hostNetwork: true",
        1,
    );
    assert_ne!(hn, api.text());
    assert_eq!(codes(&hn), [(Code::Exp003, line_of(&hn, "hostNetwork"))]);
}
