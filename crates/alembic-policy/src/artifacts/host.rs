//! Host daemon rules over launchd plists and systemd units: a daemon told to listen on every
//! interface or a public address (EXP002: the host plane is never public), and a secret value
//! written into the unit itself (SEC001: `Environment=API_TOKEN=...` or a plist's
//! `EnvironmentVariables`; host secrets belong in the mode-0600 file the launcher reads).
//!
//! Plists are read with the `plist` crate; positions are found by locating each value's
//! `<string>` in the text, in document order. Units are line-based (`Key=value`).

use std::net::IpAddr;
use std::ops::Range;

use alembic_config::types::is_private_or_loopback;
use alembic_config::{Code, Diagnostic, Severity};

use super::doc::{Doc, FileKind, FileRule};
use crate::rule::Rule;
use crate::tokens;

const EXP002_RULE: Rule = Rule {
    code: Code::Exp002,
    severity: Severity::Error,
    summary: "host workload bound to a non-loopback, non-private address",
    help: "bind host daemons to 127.0.0.1 (or a private/tailnet address); reach them from elsewhere through a private tunnel",
};

const SEC001_RULE: Rule = Rule {
    code: Code::Sec001,
    severity: Severity::Error,
    summary: "inline secret value",
    help: "remove the value from the unit and revoke it; host secrets go to the mode-0600 secrets file read by the launcher (or the Keychain), never into a plist or unit",
};

/// EXP002 over a launchd plist: a host daemon listening on a public address.
pub static PLIST_EXP002: FileRule = FileRule {
    rule: EXP002_RULE,
    kind: FileKind::Plist,
    check: plist_binds,
};
/// SEC001 over a launchd plist: a secret inline in its environment.
pub static PLIST_SEC001: FileRule = FileRule {
    rule: SEC001_RULE,
    kind: FileKind::Plist,
    check: plist_secrets,
};
/// EXP002 over a systemd unit: a host daemon listening on a public address.
pub static UNIT_EXP002: FileRule = FileRule {
    rule: EXP002_RULE,
    kind: FileKind::Unit,
    check: unit_binds,
};
/// SEC001 over a systemd unit: a secret inline in `Environment=`.
pub static UNIT_SEC001: FileRule = FileRule {
    rule: SEC001_RULE,
    kind: FileKind::Unit,
    check: unit_secrets,
};

/// Flags that take the address a server listens on.
const BIND_FLAGS: &[&str] = &[
    "--host",
    "--bind",
    "-b",
    "--listen",
    "--addr",
    "--address",
    "--ip",
    "-H",
    "--hostname",
    "--http-addr",
    "--listen-address",
    "--web.listen-address",
];

/// The address in `0.0.0.0`, `0.0.0.0:8080`, `[::]:80`, `::`.
fn address(tok: &str) -> Option<IpAddr> {
    let t = tok.trim_matches(['"', '\'']);
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some(r) = t.strip_prefix('[') {
        return r.split_once(']').and_then(|(h, _)| h.parse().ok());
    }
    t.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

/// Reported here unless the config's EXP002 already reports this very address.
fn report_bind(doc: &Doc<'_>, ip: IpAddr) -> bool {
    reaches_beyond(ip) && !doc.ctx.config_host_binds.contains(&ip)
}

fn reaches_beyond(ip: IpAddr) -> bool {
    ip.is_unspecified() || !is_private_or_loopback(&ip)
}

/// The listening address a command line asks for, when it reaches beyond the host: an
/// unspecified address anywhere (`0.0.0.0:8080`, `--host=0.0.0.0`), a public one after a bind
/// flag.
fn command_bind(args: &[&str]) -> Option<(usize, IpAddr)> {
    for (i, a) in args.iter().enumerate() {
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (Some(f), v),
            _ => (None, *a),
        };
        let after_flag = flag.is_some_and(|f| BIND_FLAGS.contains(&f))
            || (i > 0 && BIND_FLAGS.contains(&args[i - 1]));
        if let Some(ip) = address(value) {
            if ip.is_unspecified() || (after_flag && reaches_beyond(ip)) {
                return Some((i, ip));
            }
        }
    }
    None
}

/// An environment variable that sets where a server listens (`HOST`, `OLLAMA_HOST`, `BIND`,
/// `LISTEN_ADDR`, ...).
fn bind_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n == "HOST"
        || n == "BIND"
        || n.ends_with("_HOST")
        || n.ends_with("_BIND")
        || n.ends_with("_ADDR")
        || n.ends_with("_ADDRESS")
        || n.starts_with("LISTEN")
}

/// A literal secret value (not empty, not a reference to one).
fn literal_secret(name: &str, value: &str) -> bool {
    let v = value.trim();
    tokens::is_secret_like_key(name)
        && !v.is_empty()
        && !v.starts_with('$')
        && !v.starts_with('%')
        && !v.starts_with('/')
        && !v.contains("://")
}

// ---- launchd ---------------------------------------------------------------------------------

/// Byte ranges of every `<string>...</string>` content, in order, for locating plist values.
fn string_spans(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("<string>") {
        let start = from + i + "<string>".len();
        let Some(j) = text[start..].find("</string>") else {
            break;
        };
        out.push(start..start + j);
        from = start + j;
    }
    out
}

/// Where `value` is written as a `<string>`, the first such span not yet used.
fn locate(text: &str, spans: &[Range<usize>], used: &mut usize, value: &str) -> Range<usize> {
    let esc = value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    for (k, s) in spans.iter().enumerate().skip(*used) {
        let t = &text[s.clone()];
        if t == value || t == esc {
            *used = k + 1;
            return s.clone();
        }
    }
    0..0
}

fn plist_dict<'d>(doc: &'d Doc<'_>) -> Option<&'d plist::Dictionary> {
    doc.plist.as_ref()
}

fn plist_env(d: &plist::Dictionary) -> Vec<(String, String)> {
    d.get("EnvironmentVariables")
        .and_then(plist::Value::as_dictionary)
        .map(|e| {
            e.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_string()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn plist_binds(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(d) = plist_dict(doc) else {
        return out;
    };
    let text = doc.text();
    let spans = string_spans(text);
    let label = d
        .get("Label")
        .and_then(plist::Value::as_string)
        .unwrap_or("?");
    let args: Vec<String> = d
        .get("ProgramArguments")
        .and_then(plist::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_string().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // Shell wrappers (`sh -c "exec server --host 0.0.0.0"`) are split into words too.
    let words: Vec<(usize, &str)> = args
        .iter()
        .enumerate()
        .flat_map(|(i, a)| a.split_whitespace().map(move |w| (i, w)))
        .collect();
    let flat: Vec<&str> = words.iter().map(|(_, w)| *w).collect();
    if let Some((k, ip)) = command_bind(&flat).filter(|(_, ip)| report_bind(doc, *ip)) {
        let arg = words[k].0;
        let mut used = 0;
        let mut span = 0..0;
        for a in &args[..=arg] {
            span = locate(text, &spans, &mut used, a);
        }
        out.push(r.at(
            doc.src,
            span,
            format!("launchd job `{label}` tells its program to listen on {ip}, beyond this host"),
        ));
    }
    for (name, value) in plist_env(d) {
        if bind_var(&name) && address(&value).is_some_and(|ip| report_bind(doc, ip)) {
            let mut used = 0;
            let span = locate(text, &spans, &mut used, &value);
            out.push(r.at(
                doc.src,
                span,
                format!("launchd job `{label}` sets {name}={value}: its program would listen beyond this host"),
            ));
        }
    }
    out
}

fn plist_secrets(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(d) = plist_dict(doc) else {
        return out;
    };
    let text = doc.text();
    let spans = string_spans(text);
    let mut used = 0;
    for (name, value) in plist_env(d) {
        if literal_secret(&name, &value) {
            let span = locate(text, &spans, &mut used, &value);
            out.push(r.at(
                doc.src,
                span,
                format!("`{name}` is set to a literal value in the plist's EnvironmentVariables"),
            ));
        }
    }
    out
}

// ---- systemd ---------------------------------------------------------------------------------

/// `(key, value, value span)` for every `Key=value` line outside comments.
fn unit_lines(text: &str) -> Vec<(&str, &str, Range<usize>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let t = line.trim_start();
        if !t.starts_with(['#', ';', '[']) {
            if let Some((k, v)) = t.split_once('=') {
                let v_at = offset + (line.len() - t.len()) + k.len() + 1;
                out.push((k.trim(), v, v_at..v_at + v.len()));
            }
        }
        offset += raw.len();
    }
    out
}

/// `Environment=` assignments: `A=1 "B=two words"`, each with its span.
fn assignments(value: &str, at: usize) -> Vec<(String, String, Range<usize>)> {
    let mut out = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        let quote = matches!(b.get(i), Some(b'"' | b'\''));
        let end = if quote {
            let q = b[i];
            i += 1;
            while i < b.len() && b[i] != q {
                i += 1;
            }
            i += 1;
            i.min(b.len())
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            i
        };
        let word = &value[start..end];
        let inner = if quote {
            word.trim_matches(['"', '\''])
        } else {
            word
        };
        if let Some((k, v)) = inner.split_once('=') {
            let v_off = start + usize::from(quote) + k.len() + 1;
            out.push((k.to_owned(), v.to_owned(), at + v_off..at + v_off + v.len()));
        }
        if end == start {
            i += 1;
        }
    }
    out
}

fn unit_binds(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (key, value, span) in unit_lines(doc.text()) {
        match key {
            "ExecStart" | "ExecStartPre" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if let Some((k, ip)) = command_bind(&words).filter(|(_, ip)| report_bind(doc, *ip))
                {
                    let off = value.find(words[k]).unwrap_or(0);
                    out.push(r.at(
                        doc.src,
                        span.start + off..span.start + off + words[k].len(),
                        format!("{key}= tells the daemon to listen on {ip}, beyond this host"),
                    ));
                }
            }
            "Environment" => {
                for (name, v, s) in assignments(value, span.start) {
                    if bind_var(&name) && address(&v).is_some_and(|ip| report_bind(doc, ip)) {
                        out.push(r.at(
                            doc.src,
                            s,
                            format!("Environment= sets {name}={v}: the daemon would listen beyond this host"),
                        ));
                    }
                }
            }
            "ListenStream" | "ListenDatagram" => {
                let v = value.trim();
                // A bare port listens on every interface; a path is a unix socket.
                let every = v.parse::<u16>().is_ok();
                if every || address(v).is_some_and(|ip| report_bind(doc, ip)) {
                    out.push(r.at(
                        doc.src,
                        span,
                        format!(
                            "{key}={v} listens beyond this host (write 127.0.0.1:{})",
                            v.rsplit(':').next().unwrap_or(v)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

fn unit_secrets(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (key, value, span) in unit_lines(doc.text()) {
        if key != "Environment" {
            continue;
        }
        for (name, v, s) in assignments(value, span.start) {
            if literal_secret(&name, &v) {
                out.push(r.at(
                    doc.src,
                    s,
                    format!("`{name}` is set to a literal value in Environment="),
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
    fn binds_in_commands() {
        assert!(command_bind(&["ollama", "serve"]).is_none());
        assert!(command_bind(&["python3", "-m", "http.server", "--bind", "0.0.0.0"]).is_some());
        assert!(command_bind(&["server", "--host=203.0.113.9"]).is_some());
        assert!(command_bind(&["server", "--host", "127.0.0.1"]).is_none());
        assert!(command_bind(&["server", "--upstream", "203.0.113.9"]).is_none());
        assert!(command_bind(&["server", "[::]:8080"]).is_some());
        let a = assignments("A=1 \"B_TOKEN=two words\"", 10);
        assert_eq!(a[1].0, "B_TOKEN");
        assert_eq!(a[1].1, "two words");
    }
}
