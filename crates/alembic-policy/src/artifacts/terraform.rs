//! Terraform firewall rules, judged one inbound rule and one port at a time: SSH open to the
//! whole internet in *any* rule (EXP005; checkov looks only at a firewall's first rule),
//! world-open ports that no public workload needs (EXP006; the edge's 80/443 are fine), and in a
//! module with a DigitalOcean load balancer, the edge's ports admitted from anything but that
//! balancer (EXP009: traffic that skips the balancer skips its TLS and health gating).
//!
//! Understands DigitalOcean `inbound_rule` blocks, AWS-style `ingress` blocks and
//! `aws_security_group_rule` / `aws_vpc_security_group_ingress_rule` resources, including
//! `dynamic` blocks' `content`, Google Cloud `google_compute_firewall` (`source_ranges` and each
//! `allow` block's `ports`) and Azure `azurerm_network_security_rule` / `security_rule` blocks
//! (inbound `Allow` rules; `*`, `Internet` and `Any` are every address). Parsed with `hcl-edit` (spans kept); when the file does not
//! parse, a brace-matching text scan finds the same blocks so a broken file is still judged.

use std::ops::Range;

use alembic_config::types::Cidr;
use alembic_config::{Code, Diagnostic, Severity};
use std::collections::HashMap;

use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Block, Body};
use hcl_edit::template::Element;
use hcl_edit::Span;

use super::doc::{Doc, FileKind, FileRule};
use crate::coverage;
use crate::rule::Rule;

mod balancer;
mod clouds;
mod text;

use balancer::load_balancer_bypass;
use clouds::{azure_rule, gcp_firewall};
use text::walk_text;

/// EXP005: SSH reachable from the whole internet.
pub static EXP005: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp005,
        severity: Severity::Error,
        summary: "SSH reachable from the whole internet",
        help: "allow SSH only from the operators' addresses (droplet.admin_cidrs), never 0.0.0.0/0 or ::/0",
    },
    kind: FileKind::Terraform,
    check: ssh_open,
};

/// EXP006: firewall opens a port that no public workload needs.
pub static EXP006: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp006,
        severity: Severity::Error,
        summary: "firewall opens a port that no public workload needs",
        help: "only the edge's HTTP/HTTPS ports need to be open to the internet; route other services through the edge or restrict the sources",
    },
    kind: FileKind::Terraform,
    check: unneeded_ports,
};

/// EXP009: with a load balancer, 80/443 admitted from anything but the balancer.
pub static EXP009: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp009,
        severity: Severity::Error,
        summary: "with a load balancer: droplets reachable on 80/443 from anywhere but the load balancer",
        help: "admit the edge's ports only from the balancer (source_load_balancer_uids = [digitalocean_loadbalancer.<name>.id])",
    },
    kind: FileKind::Terraform,
    check: load_balancer_bypass,
};

/// Sources of a DigitalOcean rule that are neither addresses nor a load balancer.
const OTHER_SOURCE_ATTRS: &[&str] = &["source_tags", "source_droplet_ids", "source_kubernetes_ids"];

/// Ports a rule opens, as far as the text says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ports {
    Range(u16, u16),
    /// Not a literal (a variable, a function call): cannot be judged.
    Unknown,
    /// ICMP and friends: no ports.
    None,
}

impl Ports {
    fn covers(&self, p: u16) -> bool {
        matches!(self, Ports::Range(a, b) if *a <= p && p <= *b)
    }
}

/// One source of a rule: a CIDR when it evaluates to one, else `None` (a variable, another
/// resource's attribute, a function call): something that cannot be proven.
#[derive(Clone, Debug)]
struct Source {
    text: String,
    cidr: Option<Cidr>,
    span: Range<usize>,
}

/// One inbound rule, reduced to what the policies need.
#[derive(Debug)]
struct Inbound {
    /// `digitalocean_firewall.web`, or the resource that holds the rule.
    owner: String,
    /// 1-based position among the owner's inbound rules.
    ordinal: usize,
    ports: Ports,
    ports_text: String,
    /// Where the ports are written (or the block, when they are not).
    ports_span: Range<usize>,
    /// Every address source, evaluated as far as the file allows.
    sources: Vec<Source>,
    /// Tag, droplet and cluster sources (`source_tags` ...): the attribute and its span.
    other_sources: Vec<(String, Range<usize>)>,
}

/// What a set of sources opens: the world (with the source to point at and how it was
/// judged), something unproven, or neither.
enum Reach<'a> {
    World(&'a Source, String),
    Unknown(&'a Source),
    Limited,
}

fn reach<'a>(sources: &[&'a Source]) -> Reach<'a> {
    if let Some(s) = sources
        .iter()
        .find(|s| s.cidr.is_some_and(|c| c.is_whole_internet()))
    {
        return Reach::World(s, s.text.clone());
    }
    let cidrs: Vec<Cidr> = sources.iter().filter_map(|s| s.cidr).collect();
    for (family, cov, v4) in [
        ("IPv4", coverage::v4(&cidrs), true),
        ("IPv6", coverage::v6(&cidrs), false),
    ] {
        if cov.is_world() {
            let mine: Vec<&&Source> = sources
                .iter()
                .filter(|s| s.cidr.is_some_and(|c| c.addr.is_ipv4() == v4))
                .collect();
            let listed: Vec<&str> = mine.iter().map(|s| s.text.as_str()).collect();
            return Reach::World(
                mine[0],
                format!(
                    "{} (together {} of the {family} internet)",
                    listed.join(" + "),
                    cov.percent()
                ),
            );
        }
    }
    match sources.iter().find(|s| s.cidr.is_none()) {
        Some(s) => Reach::Unknown(s),
        None => Reach::Limited,
    }
}

const SOURCE_ATTRS: &[&str] = &[
    "source_addresses",
    "cidr_blocks",
    "ipv6_cidr_blocks",
    "cidr_ipv4",
    "cidr_ipv6",
    "source_ranges",
];
fn parse_ports(
    protocol: Option<&str>,
    port_range: Option<&str>,
    from_to: Option<(i64, i64)>,
) -> Ports {
    let proto = protocol.map(str::to_ascii_lowercase);
    if matches!(proto.as_deref(), Some("icmp" | "icmpv6" | "1" | "58")) {
        return Ports::None;
    }
    let all = matches!(proto.as_deref(), Some("-1" | "all"));
    if let Some(r) = port_range {
        let r = r.trim();
        if r.eq_ignore_ascii_case("all") || r.is_empty() {
            return Ports::Range(1, 65535);
        }
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        return match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            // `b >= 1`: "0" or "0-0" would become the empty range 1..=0 below.
            (Ok(a), Ok(b)) if a <= b && b >= 1 => Ports::Range(a.max(1), b),
            _ => Ports::Unknown,
        };
    }
    if all {
        return Ports::Range(1, 65535);
    }
    match from_to {
        // AWS: from 0 to 0 with protocol -1 means all; 0..65535 likewise.
        Some((a, b)) if (0..=65535).contains(&a) && (a..=65535).contains(&b) => {
            Ports::Range((a as u16).max(1), (b as u16).max(1))
        }
        Some(_) => Ports::Unknown,
        // DigitalOcean: a tcp/udp rule without port_range opens every port.
        None => Ports::Range(1, 65535),
    }
}

// ---- hcl-edit walk ---------------------------------------------------------------------------

fn str_lit(e: &Expression) -> Option<&str> {
    match e {
        Expression::String(s) => Some(s.value().as_str()),
        _ => None,
    }
}

fn num_lit(e: &Expression) -> Option<i64> {
    match e {
        Expression::Number(n) => n.value().as_i64(),
        Expression::String(s) => s.value().parse().ok(),
        _ => None,
    }
}

fn attr<'b>(body: &'b Body, key: &str) -> Option<&'b Expression> {
    body.get_attribute(key).map(|a| &a.value)
}

/// The file's `locals` and variable defaults, for evaluating `local.x` / `var.x`.
#[derive(Default)]
struct Env<'b> {
    locals: HashMap<String, &'b Expression>,
    vars: HashMap<String, &'b Expression>,
}

impl<'b> Env<'b> {
    fn of(body: &'b Body) -> Env<'b> {
        let mut env = Env::default();
        for b in body.blocks() {
            match b.ident.value().as_str() {
                "locals" => {
                    for a in b.body.attributes() {
                        env.locals.insert(a.key.value().to_string(), &a.value);
                    }
                }
                "variable" => {
                    if let (Some(name), Some(d)) = (b.labels.first(), attr(&b.body, "default")) {
                        env.vars.insert(name.as_str().to_owned(), d);
                    }
                }
                _ => {}
            }
        }
        env
    }

    /// `local.x` / `var.x` -> the expression it names.
    fn lookup(&self, e: &Expression) -> Option<&'b Expression> {
        let Expression::Traversal(t) = e else {
            return None;
        };
        let Expression::Variable(root) = &t.expr else {
            return None;
        };
        let [op] = t.operators.as_slice() else {
            return None;
        };
        let TraversalOperator::GetAttr(name) = op.value() else {
            return None;
        };
        match root.value().as_str() {
            "local" => self.locals.get(name.value().as_str()).copied(),
            "var" => self.vars.get(name.value().as_str()).copied(),
            _ => None,
        }
    }

    /// A string value, when everything in it is literal (interpolations of literals and of
    /// locals included: `"0.0.0.0/${0}"`).
    fn string(&self, e: &Expression, depth: usize) -> Option<String> {
        if depth > 16 {
            return None;
        }
        match e {
            Expression::String(s) => Some(s.value().clone()),
            Expression::Number(n) => Some(n.value().to_string()),
            Expression::Parenthesis(p) => self.string(p.inner(), depth + 1),
            Expression::StringTemplate(t) => {
                let mut out = String::new();
                for el in t.iter() {
                    match el {
                        Element::Literal(l) => out.push_str(l.value()),
                        Element::Interpolation(i) => {
                            out.push_str(&self.string(&i.expr, depth + 1)?)
                        }
                        Element::Directive(_) => return None,
                    }
                }
                Some(out)
            }
            other => self.string(self.lookup(other)?, depth + 1),
        }
    }

    /// The elements of a source list, each a CIDR when it evaluates to one. `at` is where an
    /// element without a span of its own is reported.
    fn list(&self, e: &Expression, at: &Range<usize>, depth: usize, out: &mut Vec<Source>) {
        let span = e.span().unwrap_or_else(|| at.clone());
        let unknown = |out: &mut Vec<Source>| {
            out.push(Source {
                text: "(not a literal)".to_owned(),
                cidr: None,
                span: span.clone(),
            })
        };
        if depth > 16 {
            return unknown(out);
        }
        match e {
            Expression::Array(a) => {
                for it in a.iter() {
                    self.list(it, &span, depth + 1, out);
                }
            }
            Expression::Parenthesis(p) => self.list(p.inner(), &span, depth + 1, out),
            Expression::FuncCall(f)
                if f.name.namespace.is_empty()
                    && matches!(
                        f.name.name.value().as_str(),
                        "concat" | "tolist" | "toset" | "distinct" | "compact" | "flatten" | "sort"
                    ) =>
            {
                for a in f.args.iter() {
                    self.list(a, &span, depth + 1, out);
                }
            }
            Expression::Traversal(_) => match self.lookup(e) {
                // A local or variable is reported where it is used, in the rule.
                Some(target) => {
                    let before = out.len();
                    self.list(target, &span, depth + 1, out);
                    for s in &mut out[before..] {
                        s.span = span.clone();
                    }
                }
                None => unknown(out),
            },
            other => match self.string(other, depth + 1) {
                Some(text) => {
                    let cidr = coverage::parse_source(&text);
                    out.push(Source { text, cidr, span });
                }
                None => unknown(out),
            },
        }
    }
}

/// An inbound rule's fields: a block's body, or one object of the list form
/// (`inbound_rule = [{ ... }]`).
#[derive(Clone, Copy)]
enum Fields<'b> {
    Body(&'b Body),
    Object(&'b hcl_edit::expr::Object),
}

impl<'b> Fields<'b> {
    fn get(self, key: &str) -> Option<&'b Expression> {
        match self {
            Fields::Body(b) => attr(b, key),
            Fields::Object(o) => o.iter().find_map(|(k, v)| {
                let name = match k {
                    ObjectKey::Ident(i) => Some(i.value().as_str()),
                    ObjectKey::Expression(e) => str_lit(e),
                };
                (name == Some(key)).then(|| v.expr())
            }),
        }
    }
}

fn inbound_from(
    f: Fields<'_>,
    env: &Env<'_>,
    block_span: Range<usize>,
    owner: &str,
    ordinal: usize,
) -> Inbound {
    let protocol = f
        .get("protocol")
        .or_else(|| f.get("ip_protocol"))
        .and_then(|e| env.string(e, 0));
    let protocol = protocol.as_deref();
    let pr = f.get("port_range");
    let from = f.get("from_port").and_then(num_lit);
    let to = f.get("to_port").and_then(num_lit);
    let pr_text = pr.and_then(|e| env.string(e, 0));
    let ports = match pr {
        Some(_) => match &pr_text {
            Some(s) => parse_ports(protocol, Some(s), None),
            None => Ports::Unknown,
        },
        None => match (f.get("from_port"), from, to) {
            (Some(_), Some(a), Some(b)) => parse_ports(protocol, None, Some((a, b))),
            (Some(_), _, _) => Ports::Unknown,
            (None, ..) => parse_ports(protocol, None, None),
        },
    };
    let ports_span = pr
        .or_else(|| f.get("from_port"))
        .and_then(Span::span)
        .unwrap_or_else(|| block_span.clone());
    let ports_text = match (&ports, pr_text) {
        (_, Some(s)) => s,
        (Ports::Range(a, b), None) if a == b => a.to_string(),
        (Ports::Range(a, b), None) => format!("{a}-{b}"),
        _ => "?".to_owned(),
    };
    let mut sources = Vec::new();
    for key in SOURCE_ATTRS {
        if let Some(e) = f.get(key) {
            env.list(e, &block_span, 0, &mut sources);
        }
    }
    let other_sources = OTHER_SOURCE_ATTRS
        .iter()
        .filter_map(|key| {
            let e = f.get(key)?;
            Some((
                (*key).to_owned(),
                e.span().unwrap_or_else(|| block_span.clone()),
            ))
        })
        .collect();
    Inbound::new(
        owner,
        ordinal,
        (ports, ports_text, ports_span),
        sources,
        other_sources,
    )
}

fn labels(b: &Block) -> Vec<&str> {
    b.labels.iter().map(|l| l.as_str()).collect()
}

fn walk(body: &Body, env: &Env<'_>, owner: &str, out: &mut Vec<Inbound>) {
    let mut ordinal = 0;
    // The list form: `inbound_rule = [{ ... }, ...]` (and `ingress = [...]`).
    for a in body.attributes() {
        if !matches!(a.key.value().as_str(), "inbound_rule" | "ingress") {
            continue;
        }
        let Expression::Array(items) = &a.value else {
            continue;
        };
        for it in items.iter() {
            if let Expression::Object(o) = it {
                ordinal += 1;
                let span = it.span().or_else(|| a.span()).unwrap_or(0..0);
                out.push(inbound_from(Fields::Object(o), env, span, owner, ordinal));
            }
        }
    }
    for b in body.blocks() {
        let ident = b.ident.value().as_str();
        let span = b.span().unwrap_or(0..0);
        let ls = labels(b);
        match ident {
            "inbound_rule" | "ingress" => {
                ordinal += 1;
                out.push(inbound_from(
                    Fields::Body(&b.body),
                    env,
                    span,
                    owner,
                    ordinal,
                ));
            }
            "dynamic" if matches!(ls.first(), Some(&("inbound_rule" | "ingress"))) => {
                ordinal += 1;
                if let Some(c) = b.body.get_blocks("content").next() {
                    out.push(inbound_from(
                        Fields::Body(&c.body),
                        env,
                        span,
                        owner,
                        ordinal,
                    ));
                }
            }
            "resource" => {
                let name = ls.join(".");
                let ty = ls.first().copied().unwrap_or("");
                let standalone = ty == "aws_vpc_security_group_ingress_rule"
                    || (ty == "aws_security_group_rule"
                        && attr(&b.body, "type").and_then(str_lit) == Some("ingress"));
                if ty == "google_compute_firewall" {
                    gcp_firewall(&b.body, env, span, &name, out);
                } else if ty == "azurerm_network_security_rule" {
                    out.extend(azure_rule(&b.body, env, span, &name, 1));
                } else if standalone {
                    out.push(inbound_from(Fields::Body(&b.body), env, span, &name, 1));
                } else {
                    walk(&b.body, env, &name, out);
                }
            }
            "security_rule" if owner.starts_with("azurerm_network_security_group.") => {
                ordinal += 1;
                out.extend(azure_rule(&b.body, env, span, owner, ordinal));
            }
            _ => walk(&b.body, env, owner, out),
        }
    }
}

fn inbound_rules(doc: &Doc<'_>) -> Vec<Inbound> {
    match &doc.hcl {
        Some(body) => {
            let mut out = Vec::new();
            walk(body, &Env::of(body), "", &mut out);
            out
        }
        None => walk_text(doc.text()),
    }
}

fn rule_name(r: &Inbound) -> String {
    if r.owner.is_empty() {
        format!("inbound rule #{}", r.ordinal)
    } else {
        format!("inbound rule #{} of `{}`", r.ordinal, r.owner)
    }
}

fn ssh_open(rule: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let ssh = doc.ctx.ssh_port;
    let rules = inbound_rules(doc);
    let ssh_rules: Vec<&Inbound> = rules.iter().filter(|r| r.ports.covers(ssh)).collect();
    let what = |r: &Inbound| {
        if r.ports == Ports::Range(ssh, ssh) {
            format!("SSH (port {ssh})")
        } else {
            format!("ports \"{}\", including SSH (port {ssh}),", r.ports_text)
        }
    };
    let mut out = Vec::new();
    let mut owners: Vec<&str> = Vec::new();
    for r in &ssh_rules {
        if !owners.contains(&r.owner.as_str()) {
            owners.push(&r.owner);
        }
    }
    // A rule whose sources are exactly the config's admin_cidrs that the config's EXP005
    // already reports is that same problem, reported where the user wrote it.
    let from_config = |r: &Inbound| {
        !doc.ctx.config_ssh_world.is_empty()
            && !r.sources.is_empty()
            && r.sources.iter().all(|s| {
                s.cidr
                    .is_some_and(|c| doc.ctx.config_ssh_world.contains(&c))
            })
    };
    for owner in owners {
        let mine: Vec<&&Inbound> = ssh_rules
            .iter()
            .filter(|r| r.owner == owner && !from_config(r))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut any_world = false;
        for r in &mine {
            let sources: Vec<&Source> = r.sources.iter().collect();
            if let Reach::World(s, how) = reach(&sources) {
                any_world = true;
                out.push(rule.at(
                    doc.src,
                    s.span.clone(),
                    format!("{} opens {} to {how}", rule_name(r), what(r)),
                ));
            }
        }
        if any_world {
            continue;
        }
        // Rules that are narrow one by one but together reach the world.
        let all: Vec<&Source> = mine.iter().flat_map(|r| r.sources.iter()).collect();
        match reach(&all) {
            Reach::World(s, how) if mine.len() > 1 => out.push(rule.at(
                doc.src,
                s.span.clone(),
                format!(
                    "{} inbound rules of `{owner}` together open SSH (port {ssh}) to {how}",
                    mine.len()
                ),
            )),
            Reach::Unknown(s) => {
                let r = mine
                    .iter()
                    .find(|r| r.sources.iter().any(|x| std::ptr::eq(x, s)))
                    .copied()
                    .unwrap_or(mine[0]);
                out.push(rule.at_severity(
                    Severity::Warning,
                    doc.src,
                    s.span.clone(),
                    format!(
                        "{} opens {} to sources that are not literal: cannot prove they exclude the internet",
                        rule_name(r),
                        what(r)
                    ),
                ))
            }
            _ => {}
        }
    }
    out
}

fn unneeded_ports(rule: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let ctx = doc.ctx;
    let mut out = Vec::new();
    for r in inbound_rules(doc) {
        let Ports::Range(a, b) = r.ports else {
            continue;
        };
        // Ports in the rule other than the edge's and SSH (which EXP005 reports).
        let needed = |p: u16| ctx.public_ports.contains(&p) || p == ctx.ssh_port;
        let extra = ((b - a) as usize + 1).saturating_sub(
            ctx.public_ports
                .iter()
                .chain(std::iter::once(&ctx.ssh_port))
                .filter(|p| r.ports.covers(**p))
                .count(),
        );
        if extra == 0 || (a == b && needed(a)) {
            continue;
        }
        let what = if a == b {
            format!("port {a}")
        } else {
            format!("ports {a}-{b}")
        };
        let sources: Vec<&Source> = r.sources.iter().collect();
        let (severity, to) = match reach(&sources) {
            Reach::World(_, how) => (Severity::Error, how),
            Reach::Unknown(_) => (
                Severity::Warning,
                "sources that are not literal (cannot prove they exclude the internet)".to_owned(),
            ),
            Reach::Limited => continue,
        };
        out.push(rule.at_severity(
            severity,
            doc.src,
            r.ports_span.clone(),
            format!(
                "{} opens {what} to {to}; no public workload needs it (the edge serves {})",
                rule_name(&r),
                ctx.public_ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_ports(Some("tcp"), Some("22"), None),
            Ports::Range(22, 22)
        );
        assert_eq!(
            parse_ports(Some("tcp"), Some("all"), None),
            Ports::Range(1, 65535)
        );
        assert_eq!(
            parse_ports(Some("tcp"), Some("1-65535"), None),
            Ports::Range(1, 65535)
        );
        assert_eq!(parse_ports(Some("icmp"), None, None), Ports::None);
        assert_eq!(
            parse_ports(Some("-1"), None, Some((0, 0))),
            Ports::Range(1, 65535)
        );
        assert_eq!(
            parse_ports(Some("tcp"), None, Some((22, 22))),
            Ports::Range(22, 22)
        );
        assert_eq!(parse_ports(Some("tcp"), Some("x"), None), Ports::Unknown);
    }
}
