//! The text fallback for Terraform the HCL parser cannot read: blocks found by brace matching
//! (skipping strings and comments), attributes read line by line, every quoted CIDR a source.

use super::*;
use crate::artifacts::hcltext::skip_string_or_comment;

/// Blocks `ident [labels] { ... }` found by brace matching, skipping strings and comments.
fn text_blocks(text: &str) -> Vec<(String, Range<usize>, Range<usize>)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut opens: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = skip_string_or_comment(b, i) {
            i = end + 1;
            continue;
        }
        match b[i] {
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

pub(super) fn walk_text(text: &str) -> Vec<Inbound> {
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
        // Every quoted CIDR in the rule's body is a source (descriptions and names do not parse
        // as one).
        let mut sources = Vec::new();
        let bytes = text.as_bytes();
        let mut i = body.start;
        while i < body.end {
            if bytes[i] == b'"' {
                let close = text[i + 1..body.end].find(['"', '\n']).map(|j| i + 1 + j);
                let Some(close) = close else { break };
                let lit = &text[i + 1..close];
                if lit.contains('/') {
                    if let Some(c) = coverage::parse_source(lit) {
                        sources.push(Source {
                            text: lit.to_owned(),
                            cidr: Some(c),
                            span: i..close + 1,
                        });
                    }
                }
                i = close + 1;
            } else {
                i += 1;
            }
        }
        let other_sources = OTHER_SOURCE_ATTRS
            .iter()
            .filter_map(|key| {
                text_attr(text, body.clone(), key).map(|(_, s)| ((*key).to_owned(), s))
            })
            .collect();
        out.push(Inbound {
            owner: owner_name,
            ordinal: *n,
            ports,
            ports_text,
            ports_span,
            sources,
            other_sources,
        });
    }
    out
}
