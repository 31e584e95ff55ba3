//! Network rules over the topology: who may reach the droplet's SSH port.

use alembic_config::types::Cidr;
use alembic_config::{Code, Diagnostic, Severity, SourceFile, Topology};

use crate::coverage;

use crate::rule::{Rule, TopologyRule};

/// EXP005: SSH reachable from the whole internet.
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
    let cidrs = &t.droplet.admin_cidrs;
    let span_of = |i: usize| {
        t.spans
            .get(&format!("droplet.admin_cidrs.{i}"))
            .or_else(|| t.spans.get("droplet.admin_cidrs"))
            .unwrap_or(0..0)
    };
    let port = t.droplet.ssh_port;
    // Each literal /0 at its own entry.
    let mut out: Vec<Diagnostic> = cidrs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_whole_internet())
        .map(|(i, c)| {
            r.at(
                src,
                span_of(i),
                format!(
                    "droplet.admin_cidrs contains {c}: SSH (port {port}) would be open to the whole internet"
                ),
            )
        })
        .collect();
    // Ranges that together cover the world (`0.0.0.0/1` + `128.0.0.0/1`), once per family, at
    // the family's first entry.
    let families = [
        ("IPv4", coverage::v4(cidrs), true),
        ("IPv6", coverage::v6(cidrs), false),
    ];
    for (family, cov, is_v4) in families {
        let mine = |c: &Cidr| c.addr.is_ipv4() == is_v4;
        if !cov.is_world() || cidrs.iter().any(|c| mine(c) && c.is_whole_internet()) {
            continue;
        }
        let first = cidrs.iter().position(mine).unwrap_or(0);
        let listed: Vec<String> = cidrs
            .iter()
            .filter(|c| mine(c))
            .map(|c| c.to_string())
            .collect();
        out.push(r.at(
            src,
            span_of(first),
            format!(
                "droplet.admin_cidrs {} together cover {} of the {family} internet: SSH (port {port}) would be open to the whole internet",
                listed.join(", "),
                cov.percent()
            ),
        ));
    }
    out
}
