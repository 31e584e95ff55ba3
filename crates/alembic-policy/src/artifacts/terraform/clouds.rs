//! Google Cloud and Azure firewall rules, reduced to the same [`Inbound`] rules the
//! DigitalOcean and AWS forms give, so EXP005/EXP006 judge them alike.

use super::*;

impl Inbound {
    /// The rule `ordinal` of `owner`: its ports (what they are, as written, where) and its
    /// address and named sources. Every firewall form builds its rules with it.
    pub(super) fn new(
        owner: &str,
        ordinal: usize,
        (ports, ports_text, ports_span): (Ports, String, Range<usize>),
        sources: Vec<Source>,
        other_sources: Vec<(String, Range<usize>)>,
    ) -> Inbound {
        Inbound {
            owner: owner.to_owned(),
            ordinal,
            ports,
            ports_text,
            ports_span,
            sources,
            other_sources,
        }
    }
}

/// A Google Cloud firewall: one rule per port entry of each `allow` block (an `allow` without
/// `ports` opens every port of its protocol), all from the resource's `source_ranges`. Egress
/// and disabled firewalls open nothing.
pub(super) fn gcp_firewall(
    body: &Body,
    env: &Env<'_>,
    span: Range<usize>,
    owner: &str,
    out: &mut Vec<Inbound>,
) {
    let direction = attr(body, "direction").and_then(|e| env.string(e, 0));
    if direction.is_some_and(|d| !d.eq_ignore_ascii_case("INGRESS")) {
        return;
    }
    if matches!(attr(body, "disabled"), Some(Expression::Bool(b)) if *b.value()) {
        return;
    }
    let mut sources = Vec::new();
    if let Some(e) = attr(body, "source_ranges") {
        env.list(e, &span, 0, &mut sources);
    }
    let other_sources: Vec<(String, Range<usize>)> = ["source_tags", "source_service_accounts"]
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), attr(body, k)?.span()?)))
        .collect();
    let mut ordinal = 0;
    for allow in body.get_blocks("allow") {
        let allow_span = allow.span().unwrap_or_else(|| span.clone());
        let protocol = attr(&allow.body, "protocol").and_then(|e| env.string(e, 0));
        // `all` is every protocol and port.
        let protocol = protocol.map(|p| if p == "all" { "-1".to_owned() } else { p });
        let entries: Vec<(Ports, String, Range<usize>)> = match attr(&allow.body, "ports") {
            None => {
                let ports = parse_ports(protocol.as_deref(), None, None);
                vec![(ports, "all".to_owned(), allow_span.clone())]
            }
            Some(Expression::Array(items)) => items
                .iter()
                .map(|it| {
                    let at = it.span().unwrap_or_else(|| allow_span.clone());
                    match env.string(it, 0) {
                        Some(t) => (parse_ports(protocol.as_deref(), Some(&t), None), t, at),
                        None => (Ports::Unknown, "?".to_owned(), at),
                    }
                })
                .collect(),
            Some(other) => {
                let at = other.span().unwrap_or_else(|| allow_span.clone());
                vec![(Ports::Unknown, "?".to_owned(), at)]
            }
        };
        for entry in entries {
            ordinal += 1;
            out.push(Inbound::new(
                owner,
                ordinal,
                entry,
                sources.clone(),
                other_sources.clone(),
            ));
        }
    }
}

/// An Azure network security rule, when it is an inbound `Allow`: one rule per destination
/// port range. `*`, `Internet` and `Any` sources are every address; other service tags
/// (`VirtualNetwork`, `AzureLoadBalancer`) are named sources, like DigitalOcean's tags.
pub(super) fn azure_rule(
    body: &Body,
    env: &Env<'_>,
    span: Range<usize>,
    owner: &str,
    ordinal: usize,
) -> Vec<Inbound> {
    let text = |k: &str| attr(body, k).and_then(|e| env.string(e, 0));
    let inbound = text("direction").is_some_and(|d| d.eq_ignore_ascii_case("Inbound"));
    let allow = text("access").is_none_or(|a| a.eq_ignore_ascii_case("Allow"));
    if !inbound || !allow {
        return Vec::new();
    }
    let protocol = text("protocol").map(|p| match p.as_str() {
        "*" | "Asterisk" => "-1".to_owned(),
        _ => p,
    });
    let mut sources = Vec::new();
    let mut other_sources = Vec::new();
    for key in ["source_address_prefix", "source_address_prefixes"] {
        let Some(e) = attr(body, key) else { continue };
        let mut found = Vec::new();
        env.list(e, &span, 0, &mut found);
        for mut src in found {
            match src.text.as_str() {
                "*" | "Internet" | "Any" => {
                    src.cidr = coverage::parse_source("0.0.0.0/0");
                    src.text = format!("{} (every address)", src.text);
                    sources.push(src);
                }
                t if src.cidr.is_none() && !t.starts_with('(') => {
                    other_sources.push((format!("{key} {t}"), src.span));
                }
                _ => sources.push(src),
            }
        }
    }
    let mut ranges: Vec<(Option<String>, Range<usize>)> = Vec::new();
    for key in ["destination_port_range", "destination_port_ranges"] {
        let Some(e) = attr(body, key) else { continue };
        match e {
            Expression::Array(items) => ranges.extend(
                items
                    .iter()
                    .map(|it| (env.string(it, 0), it.span().unwrap_or_else(|| span.clone()))),
            ),
            other => ranges.push((
                env.string(other, 0),
                other.span().unwrap_or_else(|| span.clone()),
            )),
        }
    }
    ranges
        .into_iter()
        .map(|(t, ports_span)| {
            let (ports, ports_text) = match t {
                Some(t) if t == "*" => (parse_ports(protocol.as_deref(), Some("all"), None), t),
                Some(t) => (parse_ports(protocol.as_deref(), Some(&t), None), t),
                None => (Ports::Unknown, "?".to_owned()),
            };
            Inbound::new(
                owner,
                ordinal,
                (ports, ports_text, ports_span),
                sources.clone(),
                other_sources.clone(),
            )
        })
        .collect()
}
