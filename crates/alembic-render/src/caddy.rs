//! `infra/caddy/Caddyfile`: the edge's config, written by a small typed writer (no Caddyfile
//! serializer crate exists) in the exact layout `caddy fmt` produces (tabs, one blank line
//! between top-level blocks), so `caddy fmt` leaves it unchanged.
//!
//! Shape:
//! - global options: the ACME e-mail, the staging CA for `tls = "acme-staging"`, `local_certs`
//!   and `skip_install_trust` for `tls = "internal"`, and HTTP/1.1 + HTTP/2 only (no HTTP/3:
//!   compose publishes no UDP port and the firewall opens none). The admin API stays at its
//!   default (localhost:2019 *inside* the container, never published) so a deploy can
//!   `caddy reload` through `docker compose exec`;
//! - one site per distinct public route host, listening on Caddy's defaults (80/443 inside the
//!   container whatever host ports compose publishes);
//! - every site sets the security headers and drops `Server`;
//! - each route proxies to `<service>:<port>` on the compose network, with active health
//!   checks on the workload's `health` path and `lb_try_duration`/`lb_try_interval`, so while
//!   an upstream restarts during a deploy, requests wait for it instead of failing;
//! - with a load balancer (`[droplet.lb]`), a catch-all `http://` site answers the balancer's
//!   health path itself: 200, or 503 while the drain marker [`DRAIN_FILE`] exists in the
//!   droplet's `<root>/drain` (mounted read-only at [`DRAIN_DIR`]), which is how a rolling
//!   deploy takes a droplet out of rotation; with `tls = "terminate"` the balancer holds the
//!   certificate and forwards plain HTTP, so the route sites are `http://<host>` (no redirect
//!   to HTTPS, which would loop through the balancer);
//! - a route with a path prefix (`host/v1`) becomes a `handle` on `/v1` and `/v1/*`, longest
//!   prefix first; the prefix is kept (not stripped) so the upstream sees the public URL.

use std::collections::BTreeMap;

use alembic_config::{Plane, Tls, Topology, Workload};

use crate::{Artifact, ArtifactKind};

/// Where the Caddyfile is rendered.
pub const PATH: &str = "infra/caddy/Caddyfile";
/// Let's Encrypt's staging CA (`tls = "staging"`).
pub const ACME_STAGING_CA: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// How long a request waits for a healthy upstream before failing (covers a restart).
pub const LB_TRY_DURATION: &str = "30s";
/// How often a waiting request retries the upstream.
pub const LB_TRY_INTERVAL: &str = "250ms";
/// How often Caddy probes an upstream's health path.
pub const HEALTH_INTERVAL: &str = "5s";
/// How long a health probe may take.
pub const HEALTH_TIMEOUT: &str = "2s";
/// Where the edge container sees the droplet's `<root>/drain` (read-only), with a balancer.
pub const DRAIN_DIR: &str = "/srv/alembic/drain";
/// The drain marker: while `<root>/drain/<DRAIN_FILE>` exists, the balancer's health path
/// answers 503 and the balancer takes the droplet out of rotation.
pub const DRAIN_FILE: &str = "drained";
/// The host directory holding the drain marker, under `droplet.root`.
pub const DRAIN_HOST_DIR: &str = "drain";
/// Response headers every site sets, in order.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "Strict-Transport-Security",
        "max-age=31536000; includeSubDomains",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
];

/// One line of a Caddyfile: a directive's tokens, and optionally a `{ ... }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The directive and its arguments.
    pub tokens: Vec<String>,
    /// The `{ ... }` block, if any.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// A directive without a block.
    pub fn new<S: Into<String>>(tokens: impl IntoIterator<Item = S>) -> Self {
        Directive {
            tokens: tokens.into_iter().map(Into::into).collect(),
            block: None,
        }
    }

    /// The directive with `block`.
    pub fn with_block(mut self, block: Vec<Directive>) -> Self {
        self.block = Some(block);
        self
    }
}

/// A whole Caddyfile: the global options block (omitted when empty) and the site blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caddyfile {
    /// The global options block.
    pub global: Vec<Directive>,
    /// Each site: its addresses and its directives.
    pub sites: Vec<(Vec<String>, Vec<Directive>)>,
}

impl Caddyfile {
    /// The text, laid out as `caddy fmt` does.
    pub fn write(&self) -> String {
        let mut out = String::new();
        let mut blocks: Vec<(Vec<String>, &[Directive])> = Vec::new();
        if !self.global.is_empty() {
            blocks.push((Vec::new(), &self.global));
        }
        for (addresses, body) in &self.sites {
            blocks.push((addresses.clone(), body));
        }
        for (i, (head, body)) in blocks.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let head: Vec<String> = head.iter().map(|t| token(t)).collect();
            if head.is_empty() {
                out.push_str("{\n");
            } else {
                out.push_str(&head.join(" "));
                out.push_str(" {\n");
            }
            write_block(&mut out, body, 1);
            out.push_str("}\n");
        }
        out
    }
}

fn write_block(out: &mut String, body: &[Directive], depth: usize) {
    for d in body {
        for _ in 0..depth {
            out.push('\t');
        }
        let line: Vec<String> = d.tokens.iter().map(|t| token(t)).collect();
        out.push_str(&line.join(" "));
        match &d.block {
            Some(inner) => {
                out.push_str(" {\n");
                write_block(out, inner, depth + 1);
                for _ in 0..depth {
                    out.push('\t');
                }
                out.push_str("}\n");
            }
            None => out.push('\n'),
        }
    }
}

/// Quote one token for the Caddyfile lexer. Plain when it holds no whitespace, quote, brace or
/// backslash; otherwise a backtick string (literal: no escapes), or a double-quoted string with
/// `\"` when the token itself holds a backtick. Braces stay special even inside quotes
/// (placeholders and `{$ENV}`): the config types never let them reach this writer.
pub fn token(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with('#')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || "\"'`\\{}".contains(c));
    if plain {
        s.to_owned()
    } else if s.contains('"') && !s.contains('`') {
        format!("`{s}`")
    } else {
        format!("\"{}\"", s.replace('"', "\\\""))
    }
}

/// The edge's Caddyfile: one site per public route.
pub fn render(t: &Topology) -> Vec<Artifact> {
    vec![Artifact::new(
        PATH,
        caddyfile(t).write(),
        Plane::Droplet,
        ArtifactKind::Caddyfile,
    )]
}

/// The typed Caddyfile for `t` (the deploy and tests may adjust global options before writing).
pub fn caddyfile(t: &Topology) -> Caddyfile {
    let d = &t.droplet;
    let mut global = Vec::new();
    if matches!(d.tls, Tls::Acme | Tls::AcmeStaging) {
        if let Some(email) = &d.acme_email {
            global.push(Directive::new(["email", email.as_str()]));
        }
    }
    match d.tls {
        Tls::Acme => {}
        Tls::AcmeStaging => global.push(Directive::new(["acme_ca", ACME_STAGING_CA])),
        Tls::Internal => {
            global.push(Directive::new(["local_certs"]));
            global.push(Directive::new(["skip_install_trust"]));
        }
    }
    global.push(Directive::new(["servers"]).with_block(vec![Directive::new([
        "protocols",
        "h1",
        "h2",
    ])]));

    // Routes grouped by host, in host order; within a host, longest path prefix first so the
    // most specific `handle` wins, and the bare host (catch-all) last.
    let mut by_host: BTreeMap<&str, Vec<(&Workload, Option<&str>)>> = BTreeMap::new();
    for (w, r) in t.routes() {
        by_host
            .entry(r.host.as_str())
            .or_default()
            .push((w, r.path.as_ref().map(|p| p.as_str())));
    }
    let sites = by_host
        .into_iter()
        .map(|(host, mut routes)| {
            routes.sort_by(|a, b| {
                let len = |p: Option<&str>| p.map_or(0, str::len);
                len(b.1).cmp(&len(a.1)).then(a.1.cmp(&b.1))
            });
            let address = if behind_terminating_lb(t) {
                format!("http://{host}")
            } else {
                host.to_owned()
            };
            (vec![address], site(t, routes))
        })
        .collect::<Vec<_>>();
    let mut sites = sites;
    if let Some(lb) = &d.scale.lb {
        sites.push((vec!["http://".to_owned()], health_site(lb.health.as_str())));
    }
    Caddyfile { global, sites }
}

/// The balancer terminates TLS and forwards plain HTTP to the edge.
fn behind_terminating_lb(t: &Topology) -> bool {
    t.droplet
        .scale
        .lb
        .as_ref()
        .is_some_and(|lb| lb.terminates_tls())
}

/// The balancer's health path, answered by the edge itself on any host: 503 while the drain
/// marker exists, else 200; any other path on this catch-all site is a 404.
fn health_site(path: &str) -> Vec<Directive> {
    vec![
        Directive::new(["@drained", "file"]).with_block(vec![
            Directive::new(["root", DRAIN_DIR]),
            Directive::new(["try_files", DRAIN_FILE]),
        ]),
        Directive::new(["handle", path]).with_block(vec![
            Directive::new(["respond", "@drained", "503"]),
            Directive::new(["respond", "200"]),
        ]),
        Directive::new(["handle"]).with_block(vec![Directive::new(["respond", "404"])]),
    ]
}

fn site(t: &Topology, routes: Vec<(&Workload, Option<&str>)>) -> Vec<Directive> {
    let mut body = Vec::new();
    if t.droplet.tls == Tls::Internal && !behind_terminating_lb(t) {
        body.push(Directive::new(["tls", "internal"]));
    }
    let mut headers: Vec<Directive> = SECURITY_HEADERS
        .iter()
        .map(|(k, v)| Directive::new([*k, *v]))
        .collect();
    headers.push(Directive::new(["-Server"]));
    body.push(Directive::new(["header"]).with_block(headers));

    if let [(w, None)] = routes.as_slice() {
        body.push(reverse_proxy(w));
        return body;
    }
    let mut has_catch_all = false;
    for (w, path) in &routes {
        match path {
            Some(p) => {
                let matcher = format!("@{}", w.name);
                body.push(Directive::new(vec![
                    matcher.clone(),
                    "path".to_owned(),
                    (*p).to_owned(),
                    format!("{p}/*"),
                ]));
                body.push(
                    Directive::new(["handle", matcher.as_str()]).with_block(vec![reverse_proxy(w)]),
                );
            }
            None => {
                has_catch_all = true;
                body.push(Directive::new(["handle"]).with_block(vec![reverse_proxy(w)]));
            }
        }
    }
    // Only path routes on this host: anything else is an explicit 404, not Caddy's empty 200.
    if !has_catch_all {
        body.push(Directive::new(["handle"]).with_block(vec![Directive::new(["respond", "404"])]));
    }
    body
}

fn reverse_proxy(w: &Workload) -> Directive {
    let upstream = match w.port {
        Some(p) => format!("{}:{}", w.name, p),
        // A public droplet workload always has a port (validation); Caddy's default is 80.
        None => w.name.to_string(),
    };
    let mut opts = Vec::new();
    if let Some(h) = &w.health {
        opts.push(Directive::new(["health_uri", h.as_str()]));
        opts.push(Directive::new(["health_interval", HEALTH_INTERVAL]));
        opts.push(Directive::new(["health_timeout", HEALTH_TIMEOUT]));
    }
    opts.push(Directive::new(["lb_try_duration", LB_TRY_DURATION]));
    opts.push(Directive::new(["lb_try_interval", LB_TRY_INTERVAL]));
    Directive::new(["reverse_proxy".to_owned(), upstream]).with_block(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_quoted_only_when_needed() {
        assert_eq!(token("api.example.com"), "api.example.com");
        assert_eq!(token("a b"), "\"a b\"");
        assert_eq!(token("say \"hi\""), "`say \"hi\"`");
        assert_eq!(token("#x"), "\"#x\"");
        assert_eq!(token(""), "\"\"");
    }
}
