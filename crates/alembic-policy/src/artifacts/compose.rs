//! Compose rules: only the edge publishes ports (EXP003), and no service gets the keys to the
//! host (EXP008: privileged, host network, host PID, the docker socket).

use std::net::IpAddr;

use alembic_config::types::is_private_or_loopback;
use alembic_config::{Code, Diagnostic, Severity};

use super::{Doc, FileKind};
use crate::rule::{FileRule, Rule};
use crate::yaml::{Mapping, Value};

pub static EXP003: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp003,
        severity: Severity::Error,
        summary: "a droplet service publishes a port directly, bypassing the edge",
        help: "remove `ports` (the edge reaches services on the compose network), or publish on loopback only: \"127.0.0.1:HOST:CONTAINER\"",
    },
    kind: FileKind::Compose,
    check: published_ports,
};

pub static EXP008: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp008,
        severity: Severity::Error,
        summary: "privileged container, host network/PID, or the docker socket mounted",
        help: "each of these hands the container control of the droplet; remove it",
    },
    kind: FileKind::Compose,
    check: host_control,
};

/// `(name, service)` for every service, in file order.
fn services<'a>(doc: &'a Doc<'_>) -> Vec<(&'a str, &'a Mapping)> {
    doc.named_mappings("services")
}

/// The edge may publish: a service named `edge`, or one running a Caddy image.
fn is_edge(name: &str, svc: &Mapping) -> bool {
    name == "edge"
        || svc.get("image").and_then(Value::as_str).is_some_and(|i| {
            let repo = i.split(['@']).next().unwrap_or(i);
            let repo = repo.rsplit('/').next().unwrap_or(repo);
            repo.split(':').next() == Some("caddy")
        })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Where a port is published, when that can be known from the text: `None` host address means
/// every interface. Interpolations use their default (`${BIND:-0.0.0.0}`) or are unknown.
enum HostIp {
    All,
    Addr(IpAddr),
    Unknown,
}

fn host_ip(s: &str) -> HostIp {
    let s = s.trim();
    if s.is_empty() {
        return HostIp::All;
    }
    let s = match s.strip_prefix("${") {
        Some(inner) => match inner.trim_end_matches('}').split_once(":-") {
            Some((_, default)) => default,
            None => return HostIp::Unknown,
        },
        None => s,
    };
    let s = s.trim_start_matches('[').trim_end_matches(']');
    match s.parse::<IpAddr>() {
        Ok(a) => HostIp::Addr(a),
        Err(_) => HostIp::Unknown,
    }
}

/// The host address part of a short-syntax port (`[IP:][HOST:]CONTAINER[/PROTO]`).
fn short_host_ip(spec: &str) -> HostIp {
    let spec = spec.split('/').next().unwrap_or(spec);
    if let Some(rest) = spec.strip_prefix('[') {
        // [v6]:host:container
        return match rest.split_once(']') {
            Some((ip, _)) => host_ip(ip),
            None => HostIp::Unknown,
        };
    }
    if spec.starts_with("${") {
        // ${BIND:-0.0.0.0}:80:80 — split after the interpolation.
        return match spec.find('}') {
            Some(i) => host_ip(&spec[..=i]),
            None => HostIp::Unknown,
        };
    }
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.len() {
        // CONTAINER or HOST:CONTAINER: published on every interface.
        1 | 2 => HostIp::All,
        3 => host_ip(parts[0]),
        // Unbracketed IPv6: everything before the last two fields.
        n => host_ip(&parts[..n - 2].join(":")),
    }
}

fn is_exposed(ip: &HostIp) -> Option<String> {
    match ip {
        HostIp::All => Some("on every interface".to_owned()),
        HostIp::Addr(a) if a.is_unspecified() => Some(format!("on every interface ({a})")),
        HostIp::Addr(a) if !is_private_or_loopback(a) => Some(format!("on public address {a}")),
        _ => None,
    }
}

fn published_ports(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, svc) in services(doc) {
        if is_edge(name, svc) {
            continue;
        }
        let Some(ports) = svc.get("ports").and_then(Value::as_sequence) else {
            continue;
        };
        let base = ["services", name, "ports"];
        for (i, p) in ports.iter().enumerate() {
            let (exposed, spec, span) = match p {
                Value::Mapping(m) => {
                    let ip = m.get("host_ip").and_then(scalar);
                    let exposed = is_exposed(&ip.as_deref().map(host_ip).unwrap_or(HostIp::All));
                    let target = m.get("target").and_then(scalar).unwrap_or_default();
                    let item = [base[0], base[1], base[2], &i.to_string(), "host_ip"];
                    let span = if ip.is_some() {
                        doc.yindex.value_span(&item)
                    } else {
                        doc.yindex.key_span(&item[..4])
                    };
                    (exposed, format!("target {target}"), span)
                }
                other => {
                    let Some(s) = scalar(other) else { continue };
                    let span = doc.yindex.item_span(doc.text(), &base, i, &s);
                    (is_exposed(&short_host_ip(&s)), format!("\"{s}\""), span)
                }
            };
            if let Some(how) = exposed {
                out.push(r.at(
                    doc.src,
                    span,
                    format!("service `{name}` publishes port {spec} {how}, bypassing the edge"),
                ));
            }
        }
    }
    out
}

fn is_docker_socket(path: &str) -> bool {
    let p = path.trim();
    p.ends_with("/docker.sock") || p == "docker.sock"
}

fn host_control(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, svc) in services(doc) {
        let at = |key: &str| doc.yindex.value_span(&["services", name, key]);
        let truthy = |k: &str| match svc.get(k) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        if truthy("privileged") {
            out.push(r.at(
                doc.src,
                at("privileged"),
                format!("service `{name}` runs privileged"),
            ));
        }
        for (key, what) in [("network_mode", "network"), ("pid", "PID namespace")] {
            if svc.get(key).and_then(Value::as_str) == Some("host") {
                out.push(r.at(
                    doc.src,
                    at(key),
                    format!("service `{name}` shares the host's {what} ({key}: host)"),
                ));
            }
        }
        let Some(vols) = svc.get("volumes").and_then(Value::as_sequence) else {
            continue;
        };
        for (i, v) in vols.iter().enumerate() {
            let base = ["services", name, "volumes"];
            let (source, span) = match v {
                Value::String(s) => {
                    let src = s.split(':').next().unwrap_or(s).to_owned();
                    (src, doc.yindex.item_span(doc.text(), &base, i, s))
                }
                Value::Mapping(m) => {
                    let src = m.get("source").and_then(scalar).unwrap_or_default();
                    let item = [base[0], base[1], base[2], &i.to_string(), "source"];
                    (src, doc.yindex.value_span(&item))
                }
                _ => continue,
            };
            if is_docker_socket(&source) {
                out.push(r.at(
                    doc.src,
                    span,
                    format!("service `{name}` mounts the docker socket ({source})"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_syntax_host_addresses() {
        let exposed = |s: &str| is_exposed(&short_host_ip(s)).is_some();
        assert!(exposed("11434:11434"));
        assert!(exposed("11434"));
        assert!(exposed("0.0.0.0:11434:11434"));
        assert!(exposed("[::]:80:80/tcp"));
        assert!(exposed("${BIND:-0.0.0.0}:80:80"));
        assert!(exposed("203.0.113.5:80:80"));
        assert!(!exposed("127.0.0.1:11434:11434"));
        assert!(!exposed("[::1]:80:80"));
        assert!(!exposed("10.0.0.5:8080:8080/udp"));
        assert!(!exposed("${BIND}:80:80"));
    }
}
