//! EXP010: a host daemon whose command cannot receive its `bind`/`port`.
//!
//! A host workload's `bind` and `port` reach its process two ways (DESIGN.md, "Host daemons
//! receive their bind and port"): as `HOST`/`PORT` in its environment, and as `{bind}`/`{port}`
//! substituted in `command` at render time. EXP002 proves `bind` is loopback or private; that
//! proof is only worth something if the process listens there. Decided, for each host workload:
//!
//! - **Warning** at the word, when `command` hard-codes a listen address other than `bind`
//!   (`--bind 0.0.0.0`, `--host=0.0.0.0`, `-b 192.0.2.1`, `--listen *:80`): the value of a listen
//!   flag (`--bind`, `-b`, `--host`, `--address`, `--addr`, `--listen`, `--listen-address`,
//!   `--listen-addr`, `--ip`, `--interface`, `--http-addr`, `--http-host`; as the next word or
//!   after `=`) that is an IP literal, `localhost`, `*` or empty (`:8080`, every interface).
//!   `localhost` matches a loopback `bind`.
//! - **Warning** at the word, for a wildcard address anywhere in the command (`0.0.0.0`, `::`,
//!   `[::]`, optionally with `:port`, like `php -S 0.0.0.0:8000`): whatever the flag, it listens
//!   on every interface.
//! - **Warning** at the word, when `command` hard-codes a port other than `port`: the value of a
//!   port flag (`--port`, `-p`, `--http-port`, `--listen-port`), or the port of a listen flag's
//!   `addr:port` value.
//! - **Warning** when `{bind}`/`{port}` is used but the workload has no `bind`/`port` (it would
//!   reach the process literally), and when `env` sets `HOST`/`PORT` to something else (the
//!   declared values replace it, so the entry is misleading).
//! - **No finding** for a command with neither a placeholder nor a hard-coded address: it may
//!   read `HOST`/`PORT` (or its own default, like ollama's 127.0.0.1:11434), which text cannot
//!   tell. Diagnostics have no note level, and a warning on every such daemon would drown the
//!   real ones; instead host apply checks the running process's sockets (`ss`/`lsof`) and fails
//!   when it listens anywhere but its declared address.
//!
//! Values with a placeholder (`--bind={bind}`, `--listen [{bind}]:{port}`) are what the rule
//! asks for and never reported. Hostnames other than `localhost` are not resolved (no I/O in
//! policy) and not reported.

use std::net::IpAddr;

use alembic_config::{Code, Diagnostic, Plane, Severity, SourceFile, Topology, Workload};
use alembic_render::launcher::{BIND_PLACEHOLDER, PORT_PLACEHOLDER};

use crate::rule::{Rule, TopologyRule};

/// EXP010: a host daemon whose command cannot receive its bind/port.
pub static EXP010: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Exp010,
        severity: Severity::Warning,
        summary: "a host daemon whose command cannot receive its bind/port",
        help: "use {bind} and {port} in command (they are replaced at render time), or have the program read $HOST/$PORT; never hard-code another listen address",
    },
    check: host_listen,
};

const ADDR_FLAGS: &[&str] = &[
    "--bind",
    "-b",
    "--host",
    "--address",
    "--addr",
    "--listen",
    "--listen-address",
    "--listen-addr",
    "--ip",
    "--interface",
    "--http-addr",
    "--http-host",
];

const PORT_FLAGS: &[&str] = &["--port", "-p", "--http-port", "--listen-port"];

/// A listen address written in a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addr {
    Ip(IpAddr),
    Localhost,
    /// `*` or an empty host (`:8080`): every interface.
    Any,
}

impl Addr {
    fn is_wildcard(self) -> bool {
        match self {
            Addr::Any => true,
            Addr::Ip(ip) => ip.is_unspecified(),
            Addr::Localhost => false,
        }
    }

    fn matches(self, bind: IpAddr) -> bool {
        match self {
            Addr::Ip(ip) => ip == bind,
            Addr::Localhost => bind.is_loopback(),
            Addr::Any => bind.is_unspecified(),
        }
    }

    fn show(self, written: &str) -> String {
        if self.is_wildcard() {
            format!("{written} (every interface)")
        } else {
            written.to_owned()
        }
    }
}

fn parse_host(h: &str) -> Option<Addr> {
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    match h {
        "" | "*" => Some(Addr::Any),
        "localhost" => Some(Addr::Localhost),
        _ => h.parse().ok().map(Addr::Ip),
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]:PORT`, `:PORT`, or a bare `PORT`. `None` for anything else (a
/// hostname, a socket path).
fn parse_listen_value(v: &str) -> Option<(Option<Addr>, Option<u16>)> {
    if let Ok(port) = v.parse::<u16>() {
        return Some((None, Some(port)));
    }
    // A bare IPv6 address has colons of its own: try it whole first.
    if let Some(a) = parse_host(v).filter(|_| !v.is_empty()) {
        return Some((Some(a), None));
    }
    let (host, port) = v.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    if host.contains(':') && !host.starts_with('[') {
        return None;
    }
    Some((Some(parse_host(host)?), Some(port)))
}

/// A wildcard address anywhere in a command: `0.0.0.0`, `::`, `[::]`, with or without a port.
fn wildcard_word(w: &str) -> bool {
    matches!(
        parse_listen_value(w),
        Some((Some(a @ Addr::Ip(_)), _)) if a.is_wildcard()
    )
}

fn host_listen(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for w in t.on_plane(Plane::Host) {
        check_workload(r, t, src, w, &mut out);
    }
    out
}

fn check_workload(
    r: &Rule,
    t: &Topology,
    src: &SourceFile,
    w: &Workload,
    out: &mut Vec<Diagnostic>,
) {
    let at = |i: usize| {
        t.spans
            .get(&w.path(&format!("command.{i}")))
            .unwrap_or(0..0)
    };
    let words: Vec<&str> = w.command.iter().map(|c| c.as_str()).collect();
    for (i, word) in words.iter().enumerate() {
        for (ph, set, field) in [
            (BIND_PLACEHOLDER, w.bind.is_some(), "bind"),
            (PORT_PLACEHOLDER, w.port.is_some(), "port"),
        ] {
            if word.contains(ph) && !set {
                out.push(r.at(
                    src,
                    at(i),
                    format!(
                        "host workload `{}` uses {ph} in its command but sets no `{field}`: the process would receive it literally",
                        w.name
                    ),
                ));
            }
        }
    }
    let Some(bind) = w.bind else {
        return;
    };
    let port = w.port.map(|p| p.get());
    let mut reported = vec![false; words.len()];
    let mut report = |i: usize, msg: String, out: &mut Vec<Diagnostic>| {
        if !reported[i] {
            reported[i] = true;
            out.push(r.at(src, at(i), msg));
        }
    };
    for (i, word) in words.iter().enumerate() {
        // `--flag=value` or `--flag value`.
        let (flag, value, vi) = match word.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v), i),
            _ => (*word, words.get(i + 1).copied(), i + 1),
        };
        let value =
            value.filter(|v| !v.contains(BIND_PLACEHOLDER) && !v.contains(PORT_PLACEHOLDER));
        if let Some(v) = value {
            if ADDR_FLAGS.contains(&flag) {
                if let Some((addr, p)) = parse_listen_value(v) {
                    if let Some(a) = addr.filter(|a| !a.matches(bind)) {
                        report(
                            vi,
                            format!(
                                "host workload `{}` has its command listen on {} with `{flag}`, but bind = \"{bind}\"",
                                w.name,
                                a.show(v)
                            ),
                            out,
                        );
                    }
                    if let (Some(p), Some(declared)) = (p, port) {
                        if p != declared {
                            report(
                                vi,
                                format!(
                                    "host workload `{}` has its command listen on port {p} with `{flag}`, but port = {declared}",
                                    w.name
                                ),
                                out,
                            );
                        }
                    }
                }
            } else if PORT_FLAGS.contains(&flag) {
                if let (Ok(p), Some(declared)) = (v.parse::<u16>(), port) {
                    if p != declared {
                        report(
                            vi,
                            format!(
                                "host workload `{}` has its command listen on port {p} with `{flag}`, but port = {declared}",
                                w.name
                            ),
                            out,
                        );
                    }
                }
            }
        }
        if wildcard_word(word) && !bind.is_unspecified() {
            report(
                i,
                format!(
                    "host workload `{}` has `{word}` (every interface) in its command, but bind = \"{bind}\"",
                    w.name
                ),
                out,
            );
        }
    }
    for (name, declared) in [
        ("HOST", Some(bind.to_string())),
        ("PORT", port.map(|p| p.to_string())),
    ] {
        let Some(declared) = declared else { continue };
        let Some((k, v)) = w.env.iter().find(|(k, _)| k.as_str() == name) else {
            continue;
        };
        if v.as_str() != declared {
            out.push(r.at(
                src,
                t.spans.get(&w.path(&format!("env.{k}"))).unwrap_or(0..0),
                format!(
                    "host workload `{}` sets env {name} = \"{v}\", but the process gets {name}={declared} from its {}",
                    w.name,
                    if name == "HOST" { "bind" } else { "port" }
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_values_parse() {
        let ip = |s: &str| Some(Addr::Ip(s.parse().unwrap()));
        assert_eq!(parse_listen_value("0.0.0.0"), Some((ip("0.0.0.0"), None)));
        assert_eq!(parse_listen_value("::"), Some((ip("::"), None)));
        assert_eq!(parse_listen_value("[::]:80"), Some((ip("::"), Some(80))));
        assert_eq!(
            parse_listen_value("127.0.0.1:8000"),
            Some((ip("127.0.0.1"), Some(8000)))
        );
        assert_eq!(
            parse_listen_value(":8000"),
            Some((Some(Addr::Any), Some(8000)))
        );
        assert_eq!(parse_listen_value("*"), Some((Some(Addr::Any), None)));
        assert_eq!(
            parse_listen_value("localhost:1"),
            Some((Some(Addr::Localhost), Some(1)))
        );
        assert_eq!(parse_listen_value("8080"), Some((None, Some(8080))));
        assert_eq!(parse_listen_value("example.com"), None);
        assert_eq!(parse_listen_value("/run/x.sock"), None);
        assert!(wildcard_word("0.0.0.0:8000") && wildcard_word("[::]") && !wildcard_word("*"));
    }
}
