//! EXP009: in a module with a DigitalOcean load balancer, the edge's ports admitted from
//! anything but that balancer.

use super::*;

/// True when the module declares a DigitalOcean load balancer.
fn has_load_balancer(doc: &Doc<'_>) -> bool {
    const TYPE: &str = "digitalocean_loadbalancer";
    match &doc.hcl {
        Some(body) => body
            .blocks()
            .any(|b| b.ident.value().as_str() == "resource" && labels(b).first() == Some(&TYPE)),
        // Unparsed: the resource header as written.
        None => doc
            .text()
            .lines()
            .any(|l| l.trim_start().starts_with("resource") && l.contains(&format!("\"{TYPE}\""))),
    }
}

pub(super) fn load_balancer_bypass(rule: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    if !has_load_balancer(doc) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in inbound_rules(doc) {
        let Some(port) = doc.ctx.public_ports.iter().find(|p| r.ports.covers(**p)) else {
            continue;
        };
        let first = r
            .sources
            .first()
            .map(|s| (s.text.clone(), s.span.clone()))
            .or_else(|| r.other_sources.first().cloned());
        let Some((what, span)) = first else {
            continue;
        };
        out.push(rule.at(
            doc.src,
            span,
            format!(
                "{} admits port {port} from {what}, not only from the load balancer: requests can reach a droplet around it",
                rule_name(&r)
            ),
        ));
    }
    out
}
