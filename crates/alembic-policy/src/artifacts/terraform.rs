//! Terraform firewall rules, judged one inbound rule and one port at a time: SSH open to the
//! whole internet in *any* rule (EXP005; checkov looks only at a firewall's first rule), and
//! world-open ports that no public workload needs (EXP006; the edge's 80/443 are fine).
//!
//! Understands DigitalOcean `inbound_rule` blocks, AWS-style `ingress` blocks and
//! `aws_security_group_rule` / `aws_vpc_security_group_ingress_rule` resources, including
//! `dynamic` blocks' `content`. Parsed with `hcl-edit` (spans kept); when the file does not
//! parse, a brace-matching text scan finds the same blocks so a broken file is still judged.

use std::ops::Range;

use alembic_config::types::Cidr;
use alembic_config::{Code, Diagnostic, Severity};
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Body};
use hcl_edit::Span;

use super::{Doc, FileKind};
use crate::rule::{FileRule, Rule};

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
    /// The whole-internet sources, with where each is written.
    world: Vec<(String, Range<usize>)>,
}

const SOURCE_ATTRS: &[&str] = &[
    "source_addresses",
    "cidr_blocks",
    "ipv6_cidr_blocks",
    "cidr_ipv4",
    "cidr_ipv6",
    "source_ranges",
];

fn is_world(s: &str) -> bool {
    Cidr::parse(s).is_ok_and(|c| c.is_whole_internet())
}

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
        Expression::UnaryOp(_) => None,
        _ => None,
    }
}

fn attr<'b>(body: &'b Body, key: &str) -> Option<&'b Expression> {
    body.get_attribute(key).map(|a| &a.value)
}

fn inbound_from_body(
    body: &Body,
    block_span: Range<usize>,
    owner: &str,
    ordinal: usize,
) -> Inbound {
    let protocol = attr(body, "protocol")
        .or_else(|| attr(body, "ip_protocol"))
        .and_then(str_lit);
    let pr = attr(body, "port_range");
    let from = attr(body, "from_port").and_then(num_lit);
    let to = attr(body, "to_port").and_then(num_lit);
    let ports = match pr {
        Some(e) => match str_lit(e) {
            Some(s) => parse_ports(protocol, Some(s), None),
            None => Ports::Unknown,
        },
        None => match (attr(body, "from_port"), from, to) {
            (Some(_), Some(a), Some(b)) => parse_ports(protocol, None, Some((a, b))),
            (Some(_), _, _) => Ports::Unknown,
            (None, ..) => parse_ports(protocol, None, None),
        },
    };
    let ports_span = pr
        .or_else(|| attr(body, "from_port"))
        .and_then(Span::span)
        .unwrap_or_else(|| block_span.clone());
    let ports_text = match (&ports, pr.and_then(str_lit)) {
        (_, Some(s)) => s.to_owned(),
        (Ports::Range(a, b), None) if a == b => a.to_string(),
        (Ports::Range(a, b), None) => format!("{a}-{b}"),
        _ => "?".to_owned(),
    };
    let mut world = Vec::new();
    for key in SOURCE_ATTRS {
        let Some(e) = attr(body, key) else { continue };
        let items: Vec<&Expression> = match e {
            Expression::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for it in items {
            if let Some(s) = str_lit(it).filter(|s| is_world(s)) {
                let span = it.span().unwrap_or_else(|| block_span.clone());
                world.push((s.to_owned(), span));
            }
        }
    }
    Inbound {
        owner: owner.to_owned(),
        ordinal,
        ports,
        ports_text,
        ports_span,
        world,
    }
}

fn labels(b: &Block) -> Vec<&str> {
    b.labels.iter().map(|l| l.as_str()).collect()
}

fn walk(body: &Body, owner: &str, out: &mut Vec<Inbound>) {
    let mut ordinal = 0;
    for b in body.blocks() {
        let ident = b.ident.value().as_str();
        let span = b.span().unwrap_or(0..0);
        let ls = labels(b);
        match ident {
            "inbound_rule" | "ingress" => {
                ordinal += 1;
                out.push(inbound_from_body(&b.body, span, owner, ordinal));
            }
            "dynamic" if matches!(ls.first(), Some(&("inbound_rule" | "ingress"))) => {
                ordinal += 1;
                if let Some(c) = b.body.get_blocks("content").next() {
                    out.push(inbound_from_body(&c.body, span, owner, ordinal));
                }
            }
            "resource" => {
                let name = ls.join(".");
                let ty = ls.first().copied().unwrap_or("");
                let standalone = ty == "aws_vpc_security_group_ingress_rule"
                    || (ty == "aws_security_group_rule"
                        && attr(&b.body, "type").and_then(str_lit) == Some("ingress"));
                if standalone {
                    out.push(inbound_from_body(&b.body, span, &name, 1));
                } else {
                    walk(&b.body, &name, out);
                }
            }
            _ => walk(&b.body, owner, out),
        }
    }
}

// ---- text fallback ---------------------------------------------------------------------------

/// Blocks `ident [labels] { ... }` found by brace matching, skipping strings and comments.
fn text_blocks(text: &str) -> Vec<(String, Range<usize>, Range<usize>)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut opens: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => opens.push(i),
            b'}' => {
                if let Some(o) = opens.pop() {
                    let line_start = text[..o].rfind('\n').map(|p| p + 1).unwrap_or(0);
                    let header = text[line_start..o].trim();
                    let ident = header.split_whitespace().next().unwrap_or("").to_owned();
                    out.push((ident, line_start..i + 1, o + 1..i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `key = "value"` (or a bare number) inside a block body, with the value's span.
fn text_attr(text: &str, body: Range<usize>, key: &str) -> Option<(String, Range<usize>)> {
    let mut offset = body.start;
    for line in text[body.clone()].split_inclusive('\n') {
        let t = line.trim_start();
        let lead = line.len() - t.len();
        if let Some(rest) = t.strip_prefix(key) {
            let rest2 = rest.trim_start();
            if let Some(v) = rest2.strip_prefix('=') {
                let v_trim = v.trim();
                let v_at = offset
                    + lead
                    + key.len()
                    + (rest.len() - rest2.len())
                    + 1
                    + (v.len() - v.trim_start().len());
                let value = v_trim.trim_matches('"').to_owned();
                return Some((value, v_at..v_at + v_trim.len()));
            }
        }
        offset += line.len();
    }
    None
}

fn walk_text(text: &str) -> Vec<Inbound> {
    let mut out = Vec::new();
    let mut counts: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let blocks = text_blocks(text);
    for (ident, span, body) in &blocks {
        if ident != "inbound_rule" && ident != "ingress" {
            continue;
        }
        // The owner: the innermost enclosing block.
        let owner = blocks
            .iter()
            .filter(|(_, s, _)| s.start < span.start && span.end <= s.end)
            .min_by_key(|(_, s, _)| s.end - s.start);
        let (owner_name, owner_start) = owner
            .map(|(_, s, _)| {
                let header = text[s.clone()].lines().next().unwrap_or("");
                let name: Vec<&str> = header
                    .split_whitespace()
                    .skip(1)
                    .take_while(|w| *w != "{")
                    .map(|w| w.trim_matches('"'))
                    .collect();
                (name.join("."), s.start)
            })
            .unwrap_or_default();
        let n = counts.entry(owner_start).or_insert(0);
        *n += 1;
        let protocol = text_attr(text, body.clone(), "protocol").map(|(v, _)| v);
        let pr = text_attr(text, body.clone(), "port_range");
        let from = text_attr(text, body.clone(), "from_port");
        let to = text_attr(text, body.clone(), "to_port");
        let ports = match (&pr, &from, &to) {
            (Some((v, _)), ..) => parse_ports(protocol.as_deref(), Some(v), None),
            (None, Some((a, _)), Some((b, _))) => match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => parse_ports(protocol.as_deref(), None, Some((a, b))),
                _ => Ports::Unknown,
            },
            _ => parse_ports(protocol.as_deref(), None, None),
        };
        let ports_span = pr
            .as_ref()
            .or(from.as_ref())
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| span.clone());
        let ports_text = pr.map(|(v, _)| v).unwrap_or_else(|| match &ports {
            Ports::Range(a, b) if a == b => a.to_string(),
            Ports::Range(a, b) => format!("{a}-{b}"),
            _ => "?".to_owned(),
        });
        let mut world = Vec::new();
        for needle in ["\"0.0.0.0/0\"", "\"::/0\"", "\"::0/0\""] {
            for (i, _) in text[body.clone()].match_indices(needle) {
                let at = body.start + i;
                world.push((needle.trim_matches('"').to_owned(), at..at + needle.len()));
            }
        }
        world.sort_by_key(|(_, s)| s.start);
        out.push(Inbound {
            owner: owner_name,
            ordinal: *n,
            ports,
            ports_text,
            ports_span,
            world,
        });
    }
    out
}

fn inbound_rules(doc: &Doc<'_>) -> Vec<Inbound> {
    match &doc.hcl {
        Some(body) => {
            let mut out = Vec::new();
            walk(body, "", &mut out);
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
    inbound_rules(doc)
        .iter()
        .filter(|r| r.ports.covers(ssh))
        .filter_map(|r| {
            let (cidr, span) = r.world.first()?;
            let what = if r.ports == Ports::Range(ssh, ssh) {
                format!("SSH (port {ssh})")
            } else {
                format!("ports \"{}\", including SSH (port {ssh}),", r.ports_text)
            };
            Some(rule.at(
                doc.src,
                span.clone(),
                format!("{} opens {what} to {cidr}", rule_name(r)),
            ))
        })
        .collect()
}

fn unneeded_ports(rule: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let ctx = doc.ctx;
    let mut out = Vec::new();
    for r in inbound_rules(doc) {
        let Some((cidr, _)) = r.world.first() else {
            continue;
        };
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
        out.push(rule.at(
            doc.src,
            r.ports_span.clone(),
            format!(
                "{} opens {what} to {cidr}; no public workload needs it (the edge serves {})",
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
