//! Caddyfile rules: the edge proxies only to internal services (EXP001: an upstream outside the
//! droplet would be published through it), serves public routes over TLS only (EXP004: a route
//! served in clear text), and keeps its admin API off public addresses (EXP006: a port no public
//! workload needs).
//!
//! The Caddyfile has no parser crate: this is a small tokenizer for the block structure
//! (`addresses {`, `directive args {`, `}`), quotes and comments; every token keeps its span.

use std::net::IpAddr;
use std::ops::Range;

use alembic_config::types::is_private_or_loopback;
use alembic_config::{Code, Diagnostic, Severity};

use super::doc::{Doc, FileKind, FileRule};
use crate::rule::Rule;

/// EXP001: public workload outside the droplet plane.
pub static EXP001: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp001,
        severity: Severity::Error,
        summary: "public workload outside the droplet plane",
        help: "reverse_proxy only to the droplet's own services (compose service names, loopback or private addresses); reach anything else through a private tunnel, never through the public edge",
    },
    kind: FileKind::Caddyfile,
    check: external_upstreams,
};

/// EXP004: a public route served without TLS.
pub static EXP004: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp004,
        severity: Severity::Error,
        summary: "a public route served without TLS",
        help: "serve public sites on their hostname (Caddy then gets a certificate and redirects HTTP to HTTPS); keep `http://` sites to redirects or loopback",
    },
    kind: FileKind::Caddyfile,
    check: cleartext_sites,
};

/// EXP006: the admin API listens on a public address.
pub static EXP006: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp006,
        severity: Severity::Error,
        summary: "the admin API listens on a public address",
        help: "keep Caddy's admin endpoint on localhost (the default, `admin localhost:2019`) or switch it off (`admin off`): it can reconfigure the whole edge",
    },
    kind: FileKind::Caddyfile,
    check: public_admin,
};

#[derive(Debug, Default)]
struct Node {
    tokens: Vec<(String, Range<usize>)>,
    children: Vec<Node>,
}

impl Node {
    fn name(&self) -> &str {
        self.tokens.first().map(|t| t.0.as_str()).unwrap_or("")
    }
}

/// One line's tokens: whitespace-separated, `"quoted strings"` whole, `#` comments dropped.
fn tokenize(line: &str, offset: usize) -> Vec<(String, Range<usize>)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b[i] == b'#' {
            break;
        }
        let start = i;
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            let end = (i + 1).min(b.len());
            let inner = line.get(start + 1..i.min(b.len())).unwrap_or("");
            out.push((inner.to_owned(), offset + start..offset + end));
            i = end;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((line[start..i].to_owned(), offset + start..offset + i));
        }
    }
    out
}

/// The Caddyfile's top-level blocks (global options, snippets, sites), nested by braces.
fn parse(text: &str) -> Vec<Node> {
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let mut toks = tokenize(line, offset);
        offset += raw.len();
        if toks.is_empty() {
            continue;
        }
        if toks.len() == 1 && toks[0].0 == "}" {
            if stack.len() > 1 {
                let done = stack.pop().unwrap_or_default();
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(done);
                }
            }
            continue;
        }
        let opens = toks.last().is_some_and(|t| t.0 == "{");
        if opens {
            toks.pop();
            // Deeper than any real Caddyfile: keep the stack bounded on hostile input.
            if stack.len() < 64 {
                stack.push(Node {
                    tokens: toks,
                    children: Vec::new(),
                });
                continue;
            }
        }
        if let Some(parent) = stack.last_mut() {
            parent.children.push(Node {
                tokens: toks,
                children: Vec::new(),
            });
        }
    }
    while stack.len() > 1 {
        let done = stack.pop().unwrap_or_default();
        if let Some(parent) = stack.last_mut() {
            parent.children.push(done);
        }
    }
    stack.pop().map(|r| r.children).unwrap_or_default()
}

/// `(global options, sites)`: the first block without a header is the global options block;
/// snippets `(name)` are neither.
fn split(nodes: &[Node]) -> (Option<&Node>, Vec<&Node>) {
    let global = nodes.iter().find(|n| n.tokens.is_empty());
    let sites = nodes
        .iter()
        .filter(|n| !n.tokens.is_empty() && !n.name().starts_with('('))
        .collect();
    (global, sites)
}

fn walk<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
    out.push(n);
    for c in &n.children {
        walk(c, out);
    }
}

/// `scheme://host:port/path` -> `(scheme, host, port)`.
fn split_address(a: &str) -> (Option<&str>, &str, Option<&str>) {
    let (scheme, rest) = match a.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, a),
    };
    let hostport = rest.split('/').next().unwrap_or(rest);
    if let Some(r) = hostport.strip_prefix('[') {
        let (h, p) = r.split_once(']').unwrap_or((r, ""));
        return (scheme, h, p.strip_prefix(':'));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (scheme, h, Some(p)),
        _ => (scheme, hostport, None),
    }
}

/// A host the edge may proxy to: a compose service name (no dot), localhost, a loopback or
/// private address, an internal DNS suffix, or a placeholder resolved at run time.
fn internal_host(h: &str) -> bool {
    let h = h.trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() || h.starts_with('{') || !h.contains('.') && !h.contains(':') {
        return true;
    }
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return is_private_or_loopback(&ip);
    }
    [
        ".internal",
        ".local",
        ".lan",
        ".svc",
        ".cluster.local",
        ".home.arpa",
    ]
    .iter()
    .any(|s| h.ends_with(s))
}

fn external_upstreams(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let nodes = parse(doc.text());
    let (_, sites) = split(&nodes);
    for site in sites {
        let mut all = Vec::new();
        walk(site, &mut all);
        for n in all.iter().filter(|n| n.name() == "reverse_proxy") {
            let mut ups: Vec<&(String, Range<usize>)> = n.tokens[1..]
                .iter()
                .skip_while(|t| t.0.starts_with('@') || t.0.starts_with('/') || t.0 == "*")
                .collect();
            for c in n.children.iter().filter(|c| c.name() == "to") {
                ups.extend(&c.tokens[1..]);
            }
            for (up, span) in ups {
                let (_, host, _) = split_address(up);
                if !internal_host(host) {
                    out.push(r.at(
                        doc.src,
                        span.clone(),
                        format!("site `{}` proxies to `{up}`, which is not a service of the droplet: the edge would make it public", site.tokens[0].0),
                    ));
                }
            }
        }
    }
    out
}

fn public_host(h: &str) -> bool {
    let h = h.trim_matches(['[', ']']);
    if h.is_empty() || h == "*" {
        return true;
    }
    if h == "localhost" || h.ends_with(".localhost") {
        return false;
    }
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.is_unspecified() || !is_private_or_loopback(&ip),
        Err(_) => true,
    }
}

fn cleartext_sites(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let nodes = parse(doc.text());
    let (global, sites) = split(&nodes);
    let auto_https_off = global.is_some_and(|g| {
        g.children
            .iter()
            .any(|c| c.name() == "auto_https" && c.tokens.get(1).is_some_and(|t| t.0 == "off"))
    });
    for site in sites {
        // A redirect-only site (http:// -> https://) serves nothing in clear text.
        let redirect_only =
            !site.children.is_empty() && site.children.iter().all(|c| c.name() == "redir");
        let has_tls = site.children.iter().any(|c| c.name() == "tls");
        let private_bind = site.children.iter().any(|c| {
            c.name() == "bind"
                && c.tokens[1..].iter().all(|t| !public_host(&t.0))
                && c.tokens.len() > 1
        });
        // Fixed answers only (a balancer's health path): no route is served there.
        let fixed_only = !site.children.is_empty()
            && site.children.iter().all(|c| {
                c.name().starts_with('@')
                    || c.name() == "respond"
                    || (c.name() == "handle" && c.children.iter().all(|h| h.name() == "respond"))
            });
        if redirect_only || private_bind || fixed_only {
            continue;
        }
        for (addr, span) in &site.tokens {
            for a in addr.split(',').filter(|a| !a.is_empty()) {
                let (scheme, host, port) = split_address(a);
                let cleartext = match scheme {
                    // Behind a balancer that terminates TLS, a named host's HTTP site is what
                    // the balancer forwards to.
                    Some("http") => !doc.ctx.tls_at_balancer || host.is_empty(),
                    Some(_) => false,
                    None => {
                        port == Some("80")
                            || (host.is_empty() && port != Some("443"))
                            || (auto_https_off && !has_tls)
                    }
                };
                if cleartext && public_host(host) {
                    out.push(r.at(
                        doc.src,
                        span.clone(),
                        format!("site `{a}` is served without TLS on a public address"),
                    ));
                }
            }
        }
    }
    out
}

fn public_admin(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let nodes = parse(doc.text());
    let (Some(global), _) = split(&nodes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in global.children.iter().filter(|c| c.name() == "admin") {
        let Some((addr, span)) = c.tokens.get(1) else {
            continue;
        };
        if addr == "off" || addr.starts_with("unix/") {
            continue;
        }
        let (_, host, _) = split_address(addr);
        if public_host(host) {
            out.push(r.at(
                doc.src,
                span.clone(),
                format!("the admin API listens on `{addr}`, reachable beyond this host"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("http://a.example.com:8080/x"),
            (Some("http"), "a.example.com", Some("8080"))
        );
        assert_eq!(split_address(":80"), (None, "", Some("80")));
        assert_eq!(split_address("[::1]:2019"), (None, "::1", Some("2019")));
        assert!(internal_host("council-api"));
        assert!(internal_host("10.0.0.5"));
        assert!(!internal_host("203.0.113.9"));
        assert!(!internal_host("home.example.net"));
    }
}
