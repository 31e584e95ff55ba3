//! Network rules over the topology: who may reach the droplet's SSH port.

use alembic_config::{Code, Diagnostic, Severity, SourceFile, Topology};

use crate::rule::{Rule, TopologyRule};

pub static EXP005: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Exp005,
        severity: Severity::Error,
        summary: "SSH reachable from the whole internet",
        help: "list only the operators' addresses in droplet.admin_cidrs, like \"203.0.113.10/32\"",
    },
    check: admin_cidrs,
};

fn admin_cidrs(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    t.droplet
        .admin_cidrs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_whole_internet())
        .map(|(i, c)| {
            r.at(
                src,
                t.spans
                    .get(&format!("droplet.admin_cidrs.{i}"))
                    .unwrap_or(0..0),
                format!(
                    "droplet.admin_cidrs contains {c}: SSH (port {}) would be open to the whole internet",
                    t.droplet.ssh_port
                ),
            )
        })
        .collect()
}
