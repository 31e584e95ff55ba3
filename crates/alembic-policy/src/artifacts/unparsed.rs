//! Files the parser cannot read. A parse failure must never switch the rules off silently: it
//! is itself a finding (CFG001, an error: the scanner cannot prove such a file safe, and the
//! tool that consumes it would reject it or, worse, read it differently), and the file is still
//! judged line by line for what a single line can show: host-control keys in compose files,
//! unpinned actions and untrusted input on a one-line `run:` in workflows. (Terraform keeps its
//! own brace-matching fallback; SEC001 reads every text anyway.)
//!
//! CFG001 is the config's syntax-error code ("TOML syntax error / not UTF-8"); an artifact that
//! does not parse is the same kind of problem in another format, so it shares the code.

use std::ops::Range;

use alembic_config::{Code, Diagnostic, Severity, SourceFile};

use super::{compose, workflow, FileKind};
use crate::rule::Rule;

/// CFG001: file cannot be parsed.
pub static CFG001: Rule = Rule {
    code: Code::Cfg001,
    severity: Severity::Error,
    summary: "file cannot be parsed",
    help: "fix the syntax: until the file parses, only line-by-line checks apply to it and the rules that need its structure cannot prove it safe",
};

/// Nesting deeper than this is not handed to a parser (hostile input takes YAML parsers seconds).
pub const MAX_NESTING: usize = 64;

/// The deepest YAML flow nesting (`[`/`{`) in `text`, skipping quoted strings, comments and
/// brackets inside plain scalars (`echo [[[`): only a bracket that opens a value or sits inside
/// a flow collection nests. An estimate per line, enough to keep hostile nesting from the parser.
pub fn yaml_nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for line in text.lines() {
        let b = line.as_bytes();
        let mut prev: Option<u8> = None; // previous non-space byte on this line
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b'#' if prev.is_none() || i > 0 && b[i - 1] == b' ' => break,
                b'"' | b'\'' if matches!(prev, None | Some(b':' | b'-' | b'[' | b'{' | b',')) => {
                    // Skip to the closing quote on this line ('' escapes a single quote).
                    i += 1;
                    while i < b.len() && b[i] != c {
                        if c == b'"' && b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    prev = Some(c);
                }
                b'[' | b'{' => {
                    let opens = if depth == 0 {
                        matches!(prev, None | Some(b':' | b'-' | b'?'))
                    } else {
                        matches!(prev, Some(b'[' | b'{' | b',' | b':'))
                    };
                    if opens {
                        depth += 1;
                        max = max.max(depth);
                    }
                    prev = Some(c);
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    prev = Some(c);
                }
                b' ' | b'\t' => {}
                // A bracket after any other byte is text inside a plain scalar (`echo [[[`).
                _ => prev = Some(c),
            }
            i += 1;
        }
    }
    max
}

/// The CFG001 finding for a parse failure at byte `at` (or the start of the file).
pub fn parse_failure(src: &SourceFile, what: &str, at: Option<usize>, why: &str) -> Diagnostic {
    let at = at.unwrap_or(0).min(src.text.len());
    CFG001.at(
        src,
        at..at,
        format!("{what} cannot be parsed ({why}); only line-by-line checks were applied"),
    )
}

/// `key: value` on one line, without comments or quotes.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start().trim_start_matches("- ");
    let (k, v) = t.split_once(':')?;
    let v = v.split(" #").next().unwrap_or(v).trim();
    Some((
        k.trim().trim_matches(['"', '\'']),
        v.trim_matches(['"', '\'']),
    ))
}

fn lines(text: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |raw| {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        (start..start + line.len(), line)
    })
}

/// What single lines show in a compose file or workflow that did not parse.
pub fn line_rules(kind: FileKind, src: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (span, line) in lines(&src.text) {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        let lead = span.start + (line.len() - line.trim_start().len());
        let at = lead..span.end;
        match kind {
            FileKind::Compose => {
                let host_key = matches!(key, "network_mode" | "pid" | "ipc" | "userns_mode")
                    && value == "host";
                let flagged = (key == "privileged" && value == "true")
                    || host_key
                    || value.contains("docker.sock")
                    || value.contains("seccomp=unconfined")
                    || value.contains("seccomp:unconfined")
                    || value.contains("apparmor=unconfined")
                    || value.contains("apparmor:unconfined");
                if flagged {
                    out.push(compose::EXP008.rule.at(
                        src,
                        at,
                        format!(
                            "`{}` (read line by line: the file did not parse)",
                            line.trim()
                        ),
                    ));
                }
            }
            FileKind::Workflow => {
                if key == "uses" && !workflow::is_pinned(value) {
                    out.push(workflow::CI001.rule.at(
                        src,
                        at,
                        format!("`{value}` is not pinned to a full commit SHA (read line by line: the file did not parse)"),
                    ));
                } else if key == "run" {
                    for (s, reference) in workflow::injections(&src.text, span.clone()) {
                        out.push(workflow::CI003.rule.at(
                            src,
                            s,
                            format!("`{reference}` is interpolated into a `run:` script (read line by line: the file did not parse)"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_ignores_strings_comments_and_plain_scalars() {
        let run = "[".repeat(500);
        assert_eq!(yaml_nesting_depth(&format!("a: \"{run}\"\n")), 0);
        assert_eq!(yaml_nesting_depth(&format!("a: '{run}'\n")), 0);
        assert_eq!(yaml_nesting_depth(&format!("# {run}\na: 1\n")), 0);
        assert_eq!(yaml_nesting_depth(&format!("run: echo {run}\n")), 0);
        assert_eq!(yaml_nesting_depth("a: [1, [2, {b: [3]}]]\n"), 4);
        assert_eq!(yaml_nesting_depth(&format!("a: {run}\n")), 500);
        assert_eq!(yaml_nesting_depth(&run), 500);
    }
}
