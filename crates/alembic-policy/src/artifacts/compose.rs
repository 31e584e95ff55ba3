//! Compose rules: only the edge publishes ports, and only its own (EXP003; an interpolated
//! address is judged by its default, and one without a default is a warning), and no service
//! gets the keys to the host (EXP008: privileged, host network/PID/IPC/user namespace, added
//! capabilities, seccomp/apparmor unconfined, host devices, the docker socket or a host root
//! mounted). YAML merge keys are resolved first (`Value::apply_merge`), so what an anchor brings
//! in is judged like what is written in place.

use std::net::IpAddr;
use std::ops::Range;

use alembic_config::types::is_private_or_loopback;
use alembic_config::{Code, Diagnostic, Severity};

use super::doc::{Doc, FileKind, FileRule};
use crate::rule::Rule;
use crate::yaml::{Mapping, Value};

/// EXP003: a droplet service publishes a port directly, bypassing the edge.
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

/// EXP008: privileged container, host namespaces, added capabilities, unconfined, host devices, or the docker socket / a host root mounted.
pub static EXP008: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp008,
        severity: Severity::Error,
        summary: "privileged container, host namespaces, added capabilities, unconfined, host devices, or the docker socket / a host root mounted",
        help: "each of these hands the container control of the droplet; remove it (cap_add may only give back Docker's default capabilities after cap_drop: [ALL])",
    },
    kind: FileKind::Compose,
    check: host_control,
};

/// The compose document with YAML merge keys (`<<: *defaults`) resolved, so ports or
/// `privileged` brought in from an anchor are judged like any other key. `None` when the file
/// did not parse (or a merge is malformed: then the unmerged document is judged).
fn merged(doc: &Doc<'_>) -> Option<Value> {
    let mut v = doc.yaml.clone()?;
    if v.apply_merge().is_err() {
        return doc.yaml.clone();
    }
    Some(v)
}

/// `(name, service)` for every service, in file order.
fn services(v: &Value) -> Vec<(&str, &Mapping)> {
    v.get("services")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?, v.as_mapping()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Where to report `services.<name>.<key>...`: the node itself, or, when the key came in through
/// a merge key, that service's `<<` line.
fn locate(doc: &Doc<'_>, name: &str, rest: &[&str], value: bool) -> Range<usize> {
    let mut path = vec!["services", name];
    path.extend_from_slice(rest);
    if doc.yindex.get(&path[..3.min(path.len())]).is_none() {
        if let Some(p) = doc.yindex.get(&["services", name, "<<"]) {
            return p.key.clone();
        }
    }
    if value {
        doc.yindex.value_span(&path)
    } else {
        doc.yindex.key_span(&path)
    }
}

/// Element `i` of the sequence `services.<name>.<key>`, with the same merge fallback.
fn locate_item(doc: &Doc<'_>, name: &str, key: &str, i: usize, needle: &str) -> Range<usize> {
    if doc.yindex.get(&["services", name, key]).is_none() {
        return locate(doc, name, &[key], false);
    }
    doc.yindex
        .item_span(doc.text(), &["services", name, key], i, needle)
}

/// The edge may publish: a service named `edge`, or one running a Caddy image.
fn is_edge(name: &str, svc: &Mapping) -> bool {
    name == alembic_render::compose::EDGE_SERVICE
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

/// Where a port is published, when that can be known from the text: `All` means every
/// interface. Interpolations use their default (`${BIND:-0.0.0.0}`, `${BIND-0.0.0.0}`) or are
/// unknown (`$BIND`, `${BIND}`, `${BIND:?}`).
#[derive(Debug)]
enum HostIp {
    All,
    Addr(IpAddr),
    Unknown,
}

/// `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `$NAME` -> `Some(default)` when there is
/// a default, `Some(None)` when it is an interpolation without one, `None` when not one at all.
fn interpolation_default(s: &str) -> Option<Option<&str>> {
    if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        let name_len = inner
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let rest = &inner[name_len..];
        return Some(
            rest.strip_prefix(":-")
                .or_else(|| rest.strip_prefix('-'))
                .or_else(|| rest.strip_prefix(":="))
                .or_else(|| rest.strip_prefix('=')),
        );
    }
    s.starts_with('$').then_some(None)
}

fn host_ip(s: &str) -> HostIp {
    let s = s.trim();
    if s.is_empty() {
        return HostIp::All;
    }
    let s = match interpolation_default(s) {
        Some(Some(default)) => default.trim(),
        Some(None) => return HostIp::Unknown,
        None => s,
    };
    if s.is_empty() {
        return HostIp::All;
    }
    let s = s.trim_start_matches('[').trim_end_matches(']');
    match s.parse::<IpAddr>() {
        Ok(a) => HostIp::Addr(a),
        Err(_) => HostIp::Unknown,
    }
}

/// A short-syntax port (`[IP:][HOST:]CONTAINER[/PROTO]`): where it is published and the host
/// port (the container port when no host port is given).
fn short_port(spec: &str) -> (HostIp, String) {
    let spec = spec.split('/').next().unwrap_or(spec).trim();
    // The address part may be bracketed IPv6 or an interpolation holding colons.
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        match r.split_once(']') {
            Some((ip, rest)) => (Some(host_ip(ip)), rest.trim_start_matches(':')),
            None => (Some(HostIp::Unknown), ""),
        }
    } else if spec.starts_with("${") {
        match spec.find('}') {
            Some(i) if spec[i + 1..].starts_with(':') => {
                (Some(host_ip(&spec[..=i])), &spec[i + 2..])
            }
            _ => (None, spec),
        }
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    match (ip, parts.len()) {
        (Some(ip), 1) => (ip, parts[0].to_owned()),
        (Some(ip), _) => (ip, parts[0].to_owned()),
        // CONTAINER or HOST:CONTAINER: published on every interface.
        (None, 1 | 2) => (HostIp::All, parts[0].to_owned()),
        (None, 3) => (host_ip(parts[0]), parts[1].to_owned()),
        // Unbracketed IPv6: everything before the last two fields.
        (None, n) => (host_ip(&parts[..n - 2].join(":")), parts[n - 2].to_owned()),
    }
}

/// Long syntax: `host_ip`, else an address inside `published` (`127.0.0.1:8080`).
fn long_port(m: &Mapping) -> (HostIp, String) {
    let published = m.get("published").and_then(scalar);
    let target = m.get("target").and_then(scalar).unwrap_or_default();
    if let Some(ip) = m.get("host_ip").and_then(scalar) {
        return (host_ip(&ip), published.unwrap_or(target));
    }
    match published {
        Some(p) => match p.rsplit_once(':') {
            Some((ip, port)) => (host_ip(ip), port.to_owned()),
            None => (HostIp::All, p),
        },
        None => (HostIp::All, target),
    }
}

/// `Some((how, proven))` when the address reaches beyond the host: `proven` is false for an
/// interpolation without a default (reported as a warning).
fn exposure(ip: &HostIp) -> Option<(String, bool)> {
    match ip {
        HostIp::All => Some(("on every interface".to_owned(), true)),
        HostIp::Addr(a) if a.is_unspecified() => Some((format!("on every interface ({a})"), true)),
        HostIp::Addr(a) if !is_private_or_loopback(a) => {
            Some((format!("on public address {a}"), true))
        }
        HostIp::Addr(_) => None,
        HostIp::Unknown => Some((
            "on an address set at deploy time (unknown here: it may be every interface)".to_owned(),
            false,
        )),
    }
}

/// Does the edge's published host port (or range) stay within the ports it serves?
fn edge_port_ok(port: &str, public: &[u16]) -> bool {
    let (a, b) = port.split_once('-').unwrap_or((port, port));
    match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
        (Ok(a), Ok(b)) if a <= b => (a..=b).all(|p| public.contains(&p)),
        // An interpolated host port cannot be judged; the address rule still applies.
        _ => interpolation_default(port.trim()).is_some(),
    }
}

fn published_ports(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(v) = merged(doc) else { return out };
    for (name, svc) in services(&v) {
        let edge = is_edge(name, svc);
        let Some(ports) = svc.get("ports").and_then(Value::as_sequence) else {
            continue;
        };
        for (i, p) in ports.iter().enumerate() {
            let idx = i.to_string();
            let (ip, host_port, spec, span) = match p {
                Value::Mapping(m) => {
                    let (ip, port) = long_port(m);
                    let target = m.get("target").and_then(scalar).unwrap_or_default();
                    let key = if m.contains_key("host_ip") {
                        "host_ip"
                    } else {
                        "published"
                    };
                    let span = if m.contains_key(key) {
                        locate(doc, name, &["ports", &idx, key], true)
                    } else {
                        locate(doc, name, &["ports", &idx], false)
                    };
                    (ip, port, format!("target {target}"), span)
                }
                other => {
                    let Some(s) = scalar(other) else { continue };
                    let span = locate_item(doc, name, "ports", i, &s);
                    let (ip, port) = short_port(&s);
                    (ip, port, format!("\"{s}\""), span)
                }
            };
            let Some((how, proven)) = exposure(&ip) else {
                continue;
            };
            let severity = if proven {
                Severity::Error
            } else {
                Severity::Warning
            };
            if !edge {
                out.push(r.at_severity(
                    severity,
                    doc.src,
                    span,
                    format!("service `{name}` publishes port {spec} {how}, bypassing the edge"),
                ));
            } else if !edge_port_ok(&host_port, &doc.ctx.public_ports) {
                let serves: Vec<String> = doc.ctx.public_ports.iter().map(u16::to_string).collect();
                out.push(r.at_severity(
                    severity,
                    doc.src,
                    span,
                    format!(
                        "edge service `{name}` publishes port {spec} {how}; the edge serves only {}",
                        serves.join("/")
                    ),
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

/// Host paths whose mount hands the container the host: the root, the kernel's views, the
/// runtime directories (sockets of every daemon), the system's configuration and binaries.
fn host_root(path: &str) -> bool {
    const ROOTS: &[&str] = &[
        "/",
        "/etc",
        "/root",
        "/home",
        "/boot",
        "/dev",
        "/proc",
        "/sys",
        "/var",
        "/var/run",
        "/run",
        "/usr",
        "/lib",
        "/bin",
        "/sbin",
        "/var/lib",
        "/var/lib/docker",
        "/var/log",
    ];
    const UNDER: &[&str] = &["/proc/", "/sys/", "/dev/", "/boot/", "/var/lib/docker/"];
    let p = path.trim();
    let trimmed = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    // Credential directories, wherever they are (`~/.ssh`, `$HOME/.aws`, `/root/.kube/config`):
    // the container gets the host user's keys.
    const CREDENTIALS: &[&str] = &[".ssh", ".aws", ".docker", ".kube", ".gnupg", ".azure"];
    let credentials =
        p.split('/').any(|c| CREDENTIALS.contains(&c)) || p.contains("/.config/gcloud");
    ROOTS.contains(&trimmed) || UNDER.iter().any(|u| p.starts_with(u)) || credentials
}

/// Capabilities Docker grants by default: adding them back after `cap_drop: [ALL]` is least
/// privilege, not an escalation.
const DEFAULT_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// `seccomp=unconfined`, `apparmor:unconfined`, `label=disable`: confinement switched off.
fn unconfined(opt: &str) -> bool {
    let o = opt.trim().to_ascii_lowercase();
    let (k, v) = o.split_once(['=', ':']).unwrap_or((&o, ""));
    matches!(
        (k.trim(), v.trim()),
        ("seccomp" | "apparmor", "unconfined")
            | ("label", "disable")
            | ("systempaths", "unconfined")
    )
}

fn seq_strings(svc: &Mapping, key: &str) -> Vec<(usize, String)> {
    svc.get(key)
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .enumerate()
                .filter_map(|(i, v)| scalar(v).map(|s| (i, s)))
                .collect()
        })
        .unwrap_or_default()
}

fn host_control(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(v) = merged(doc) else { return out };
    for (name, svc) in services(&v) {
        let truthy = |k: &str| match svc.get(k) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        if truthy("privileged") {
            out.push(r.at(
                doc.src,
                locate(doc, name, &["privileged"], true),
                format!("service `{name}` runs privileged"),
            ));
        }
        for (key, what) in [
            ("network_mode", "network"),
            ("pid", "PID namespace"),
            ("ipc", "IPC namespace"),
            ("userns_mode", "user namespace"),
        ] {
            if svc.get(key).and_then(Value::as_str) == Some("host") {
                out.push(r.at(
                    doc.src,
                    locate(doc, name, &[key], true),
                    format!("service `{name}` shares the host's {what} ({key}: host)"),
                ));
            }
        }
        for (i, cap) in seq_strings(svc, "cap_add") {
            let c = cap.trim().to_ascii_uppercase();
            let c = c.strip_prefix("CAP_").unwrap_or(&c);
            if !DEFAULT_CAPS.contains(&c) {
                out.push(r.at(
                    doc.src,
                    locate_item(doc, name, "cap_add", i, &cap),
                    format!("service `{name}` adds capability {c}"),
                ));
            }
        }
        for (i, opt) in seq_strings(svc, "security_opt") {
            if unconfined(&opt) {
                out.push(r.at(
                    doc.src,
                    locate_item(doc, name, "security_opt", i, &opt),
                    format!("service `{name}` switches off confinement (security_opt {opt})"),
                ));
            }
        }
        if let Some(devs) = svc.get("devices").and_then(Value::as_sequence) {
            for (i, d) in devs.iter().enumerate() {
                let (text, span) = match d {
                    Value::Mapping(m) => (
                        m.get("source").and_then(scalar).unwrap_or_default(),
                        locate(doc, name, &["devices", &i.to_string(), "source"], true),
                    ),
                    other => {
                        let Some(s) = scalar(other) else { continue };
                        let span = locate_item(doc, name, "devices", i, &s);
                        (s.split(':').next().unwrap_or(&s).to_owned(), span)
                    }
                };
                out.push(r.at(
                    doc.src,
                    span,
                    format!("service `{name}` is given the host device {text}"),
                ));
            }
        }
        let Some(vols) = svc.get("volumes").and_then(Value::as_sequence) else {
            continue;
        };
        for (i, v) in vols.iter().enumerate() {
            let (source, span) = match v {
                Value::String(s) => {
                    let src = s.split(':').next().unwrap_or(s).to_owned();
                    (src, locate_item(doc, name, "volumes", i, s))
                }
                Value::Mapping(m) => {
                    let src = m.get("source").and_then(scalar).unwrap_or_default();
                    let span = locate(doc, name, &["volumes", &i.to_string(), "source"], true);
                    (src, span)
                }
                _ => continue,
            };
            if is_docker_socket(&source) {
                out.push(r.at(
                    doc.src,
                    span,
                    format!("service `{name}` mounts the docker socket ({source})"),
                ));
            } else if host_root(&source) {
                out.push(r.at(
                    doc.src,
                    span,
                    format!("service `{name}` mounts the host's {source}"),
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
        let exposed = |s: &str| exposure(&short_port(s).0).map(|(_, proven)| proven);
        assert_eq!(exposed("11434:11434"), Some(true));
        assert_eq!(exposed("11434"), Some(true));
        assert_eq!(exposed("0.0.0.0:11434:11434"), Some(true));
        assert_eq!(exposed("[::]:80:80/tcp"), Some(true));
        assert_eq!(exposed("${BIND:-0.0.0.0}:80:80"), Some(true));
        assert_eq!(exposed("${DB_BIND-0.0.0.0}:5432:5432"), Some(true));
        assert_eq!(exposed("203.0.113.5:80:80"), Some(true));
        assert_eq!(exposed("127.0.0.1:11434:11434"), None);
        assert_eq!(exposed("[::1]:80:80"), None);
        assert_eq!(exposed("10.0.0.5:8080:8080/udp"), None);
        assert_eq!(exposed("${BIND:-127.0.0.1}:80:80"), None);
        assert_eq!(exposed("${BIND}:80:80"), Some(false));
        assert_eq!(exposed("$BIND:6379:6379"), Some(false));
        assert_eq!(short_port("127.0.0.1:8080:80").1, "8080");
        assert_eq!(short_port("${B:-0.0.0.0}:2019:2019").1, "2019");
        assert_eq!(short_port("443").1, "443");
    }

    #[test]
    fn host_roots_and_caps() {
        assert!(host_root("/"));
        assert!(host_root("/proc"));
        assert!(host_root("/sys/fs/cgroup"));
        assert!(host_root("/var/run/"));
        assert!(!host_root("/etc/localtime"));
        assert!(host_root("~/.ssh"));
        assert!(host_root("${HOME}/.aws/credentials"));
        assert!(host_root("/root/.kube/config"));
        assert!(!host_root("./ssh-config"));
        assert!(!host_root("./data"));
        assert!(unconfined("seccomp=unconfined"));
        assert!(unconfined("apparmor:unconfined"));
        assert!(!unconfined("no-new-privileges:true"));
    }
}
