//! Rules over artifact files: the ones `alembic render` produces and the ones users already
//! have. One module per file family (compose, terraform, workflow, caddy, host units);
//! SEC001 runs over every text file whatever its kind; `unparsed` reports files their parser
//! cannot read and judges them line by line.
//!
//! Pure: callers hand in a path (for naming and kind detection) and the text. Reading files and
//! walking directories is the binary's job.

pub mod caddy;
pub mod compose;
mod doc;
mod hcltext;
pub mod host;
pub mod kubernetes;
pub mod terraform;
pub mod unparsed;
pub mod workflow;

use alembic_config::{Diagnostic, Severity, SourceFile};
use alembic_render::{ArtifactKind, ArtifactSet};

use crate::rule::Rule;
use crate::tokens;
use crate::yamlpos::YamlIndex;
pub use doc::{Doc, FileKind, FileRule, ScanContext};
use hcltext::nesting_depth;

/// Every artifact rule, in a stable order.
pub static RULES: &[&FileRule] = &[
    &compose::EXP003,
    &compose::EXP008,
    &terraform::EXP005,
    &terraform::EXP006,
    &terraform::EXP009,
    &workflow::CI001,
    &workflow::CI002,
    &workflow::CI003,
    &workflow::CI004,
    &workflow::CI005,
    &kubernetes::EXP003,
    &caddy::EXP001,
    &caddy::EXP004,
    &caddy::EXP006,
    &host::PLIST_EXP002,
    &host::PLIST_SEC001,
    &host::UNIT_EXP002,
    &host::UNIT_SEC001,
];

/// SEC001: inline secret value.
pub static SEC001: Rule = Rule {
    code: alembic_config::Code::Sec001,
    severity: Severity::Error,
    summary: "inline secret value",
    help: "remove the value from the file and revoke it (it may already be exposed); pass it through an environment variable or the CI secret store instead",
};

/// Guess a file's kind from its path, then its content.
pub fn detect_kind(path: &str, text: &str) -> FileKind {
    let p = path.replace('\\', "/");
    let name = p.rsplit('/').next().unwrap_or(&p).to_ascii_lowercase();
    if name.ends_with(".tf") || name.ends_with(".tofu") {
        return FileKind::Terraform;
    }
    if name == "caddyfile" || name.ends_with(".caddyfile") || name.starts_with("caddyfile.") {
        return FileKind::Caddyfile;
    }
    if name.ends_with(".plist") {
        return FileKind::Plist;
    }
    if [".service", ".socket", ".timer"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        return FileKind::Unit;
    }
    if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
        return FileKind::Text;
    }
    if p.contains(alembic_render::github::WORKFLOWS_DIR) {
        return FileKind::Workflow;
    }
    if name.contains("compose") {
        return FileKind::Compose;
    }
    let top = top_level_keys(text);
    let top = |k: TopKey| top & (1 << k as u8) != 0;
    if top(TopKey::Jobs) && top(TopKey::On) {
        FileKind::Workflow
    } else if top(TopKey::ApiVersion) && top(TopKey::Kind) {
        FileKind::Kubernetes
    } else if top(TopKey::Services) {
        FileKind::Compose
    } else {
        FileKind::Text
    }
}

/// The top-level keys [`detect_kind`] looks for.
#[derive(Clone, Copy)]
enum TopKey {
    Jobs,
    On,
    ApiVersion,
    Kind,
    Services,
}

/// Which [`TopKey`]s start a line of `text` followed by `:` (bit `k as u8`), found in one pass
/// over the line starts instead of one pass per key.
fn top_level_keys(text: &str) -> u8 {
    const KEYS: &[(&[u8], TopKey)] = &[
        (b"jobs:", TopKey::Jobs),
        (b"on:", TopKey::On),
        (b"\"on\":", TopKey::On),
        (b"'on':", TopKey::On),
        (b"apiVersion:", TopKey::ApiVersion),
        (b"kind:", TopKey::Kind),
        (b"services:", TopKey::Services),
    ];
    let bytes = text.as_bytes();
    let mut found = 0u8;
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
    for start in starts {
        let line = &bytes[start..];
        if !matches!(
            line.first(),
            Some(b'j' | b'o' | b'"' | b'\'' | b'a' | b'k' | b's')
        ) {
            continue;
        }
        for (key, k) in KEYS {
            if line.starts_with(key) {
                found |= 1 << *k as u8;
            }
        }
    }
    found
}

/// Scan one file's text with the default context (SSH on 22, the edge on 80/443).
pub fn scan_text(path: &str, text: &str, kind: Option<FileKind>) -> Vec<Diagnostic> {
    scan_text_with(path, text, kind, &ScanContext::default())
}

/// Scan one file's text: SEC001 everywhere, plus the rules of its kind (detected when `None`).
pub fn scan_text_with(
    path: &str,
    text: &str,
    kind: Option<FileKind>,
    ctx: &ScanContext,
) -> Vec<Diagnostic> {
    let kind = kind.unwrap_or_else(|| detect_kind(path, text));
    let src = SourceFile::new(path, text);
    let mut out = secrets_in_text(&SEC001, &src, Severity::Warning);
    if !ctx.config_secrets.is_empty() {
        out.retain(|d| {
            let value = d.span.clone().and_then(|s| text.get(s));
            !value.is_some_and(|v| ctx.config_secrets.iter().any(|c| c == v))
        });
    }
    let (yaml, yindex) = match kind {
        FileKind::Compose | FileKind::Workflow => {
            let what = if kind == FileKind::Compose {
                "compose file"
            } else {
                "workflow"
            };
            match parse_yaml(&src, what, &mut out) {
                Some((value, index)) => (Some(value), index),
                None => {
                    out.extend(unparsed::line_rules(kind, &src));
                    (None, YamlIndex::default())
                }
            }
        }
        _ => (None, YamlIndex::default()),
    };
    let hcl = match kind {
        FileKind::Terraform => parse_hcl(&src, &mut out),
        _ => None,
    };
    let plist = match kind {
        FileKind::Plist => parse_plist(&src, &mut out),
        _ => None,
    };
    let doc = Doc {
        src: &src,
        ctx,
        yaml,
        yindex,
        hcl,
        plist,
    };
    for r in RULES.iter().filter(|r| r.kind == kind) {
        out.extend((r.check)(&r.rule, &doc));
    }
    // No message may carry a secret, whatever text a rule quotes (a label, an upstream, a
    // parser's complaint): every message is redacted like the source lines are.
    for d in &mut out {
        if !tokens::find_tokens(&d.message).is_empty() {
            d.message = redact(&d.message);
        }
    }
    // One problem, one finding: a value both the text scan and a unit rule report as a secret
    // (SEC001 at the same place) is kept once, at the stronger severity.
    out.sort_by_key(|d| d.severity);
    let mut seen = std::collections::HashSet::new();
    out.retain(|d| seen.insert((d.code, d.line, d.column)));
    alembic_config::diag::sort_diagnostics(&mut out);
    out
}

/// The first YAML document, or a CFG001 finding saying why there is none. Real compose files
/// and workflows nest a few levels; hostile nesting takes the YAML parser seconds before it
/// gives up, so it is not parsed at all.
fn parse_yaml(
    src: &SourceFile,
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<(crate::yaml::Value, YamlIndex)> {
    let depth = if openers_at_most(&src.text, unparsed::MAX_NESTING) {
        0
    } else {
        unparsed::yaml_nesting_depth(&src.text)
    };
    if depth > unparsed::MAX_NESTING {
        out.push(unparsed::parse_failure(
            src,
            what,
            None,
            &format!("nested {depth} levels deep"),
        ));
        return None;
    }
    match crate::yaml::parse_located(&src.text) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            out.push(unparsed::parse_failure(src, what, e.at, &redact(&e.why)));
            None
        }
    }
}

/// Whether `text` has at most `n` opening brackets (`[`, `{`, `(`): each nesting level needs
/// one, so such a text cannot nest deeper than `n` and the byte-by-byte depth walk is skipped
/// (counting is a SIMD search; most files have a few dozen brackets).
fn openers_at_most(text: &str, n: usize) -> bool {
    memchr::memchr3_iter(b'[', b'{', b'(', text.as_bytes())
        .take(n + 1)
        .count()
        <= n
}

/// The HCL body, or a CFG001 finding; the Terraform rules then fall back to their text scan.
fn parse_hcl(src: &SourceFile, out: &mut Vec<Diagnostic>) -> Option<hcl_edit::structure::Body> {
    // The HCL parser recurses per nesting level: hostile nesting goes to the text scan.
    let depth = if openers_at_most(&src.text, unparsed::MAX_NESTING) {
        0
    } else {
        nesting_depth(&src.text)
    };
    if depth > unparsed::MAX_NESTING {
        out.push(unparsed::parse_failure(
            src,
            "Terraform file",
            None,
            &format!("nested {depth} levels deep"),
        ));
        return None;
    }
    match hcl_edit::parser::parse_body(&src.text) {
        Ok(b) => Some(b),
        Err(e) => {
            let at = Some(e.location().offset());
            out.push(unparsed::parse_failure(
                src,
                "Terraform file",
                at,
                "HCL syntax error",
            ));
            None
        }
    }
}

/// The plist's top-level dictionary, or a CFG001 finding. The `plist` crate recurses per
/// `<array>`/`<dict>` level, so hostile nesting is refused before it is parsed.
fn parse_plist(src: &SourceFile, out: &mut Vec<Diagnostic>) -> Option<plist::Dictionary> {
    let (mut depth, mut max) = (0usize, 0usize);
    for (i, _) in src.text.match_indices('<') {
        let rest = &src.text[i + 1..];
        if rest.starts_with("array>") || rest.starts_with("dict>") {
            depth += 1;
            max = max.max(depth);
        } else if rest.starts_with("/array>") || rest.starts_with("/dict>") {
            depth = depth.saturating_sub(1);
        }
    }
    if max > unparsed::MAX_NESTING {
        out.push(unparsed::parse_failure(
            src,
            "plist",
            None,
            &format!("nested {max} levels deep"),
        ));
        return None;
    }
    match plist::from_bytes::<plist::Dictionary>(src.text.as_bytes()) {
        Ok(d) => Some(d),
        Err(e) => {
            out.push(unparsed::parse_failure(
                src,
                "plist",
                None,
                &redact(&e.to_string()),
            ));
            None
        }
    }
}

/// The scan kind of a rendered artifact.
pub fn kind_of(k: ArtifactKind) -> FileKind {
    match k {
        ArtifactKind::Terraform => FileKind::Terraform,
        ArtifactKind::Compose => FileKind::Compose,
        ArtifactKind::Workflow => FileKind::Workflow,
        ArtifactKind::Caddyfile => FileKind::Caddyfile,
        ArtifactKind::LaunchdPlist => FileKind::Plist,
        ArtifactKind::SystemdUnit => FileKind::Unit,
        ArtifactKind::Kubernetes => FileKind::Kubernetes,
        _ => FileKind::Text,
    }
}

/// Scan a rendered artifact set: a renderer bug that opened a port or inlined a secret is
/// caught before anything is written. Paths in the findings are the artifacts' relative paths.
pub fn scan_artifacts(set: &ArtifactSet, ctx: &ScanContext) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for a in set.iter() {
        let Ok(text) = std::str::from_utf8(&a.bytes) else {
            continue;
        };
        out.extend(scan_text_with(&a.path, text, Some(kind_of(a.kind)), ctx));
    }
    out
}

/// SEC001 over any text: known token shapes are errors; a random-looking value under a
/// secret-like key gets `entropy_severity`. Messages name the shape and its public prefix only.
pub fn secrets_in_text(
    rule: &Rule,
    src: &SourceFile,
    entropy_severity: Severity,
) -> Vec<Diagnostic> {
    let text = src.text.as_str();
    let hits = tokens::find_tokens(text);
    let mut out: Vec<Diagnostic> = hits
        .iter()
        .map(|h| {
            rule.at(
                src,
                h.span.clone(),
                format!("inline {} (`{}…`)", h.what, h.prefix),
            )
        })
        .collect();
    // The text with every secret redacted (same byte length), built only when needed: a key is
    // quoted from it, because a key can itself hold a token (`dop_v1_…_KEY`), and whether it
    // does depends on the text around it (a token must start a word).
    let mut redacted: Option<String> = None;
    for e in tokens::find_entropy_secrets(text) {
        let overlaps = hits
            .iter()
            .any(|h| h.span.start < e.value_span.end && e.value_span.start < h.span.end);
        if !overlaps {
            let red = redacted.get_or_insert_with(|| redact(text));
            let key = red
                .get(e.key_span.clone())
                .map_or_else(|| redact(&e.key), str::to_owned);
            out.push(rule.at_severity(
                entropy_severity,
                src,
                e.value_span,
                format!("`{key}` holds a high-entropy value that looks like an inline secret"),
            ));
        }
    }
    out
}

/// The byte ranges of secret values found by SEC001 in `text`, for views that print source
/// lines: they must show these redacted.
pub fn secret_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans: Vec<_> = tokens::find_tokens(text)
        .into_iter()
        .map(|h| h.span)
        .collect();
    spans.extend(
        tokens::find_entropy_secrets(text)
            .into_iter()
            .map(|e| e.value_span),
    );
    spans
}

/// `text` with every secret value SEC001 finds replaced by `*` (same length, so line and column
/// positions still hold), keeping each known shape's public prefix.
pub fn redact(text: &str) -> String {
    let hits = tokens::find_tokens(text);
    let entropy = tokens::find_entropy_secrets(text);
    // The views redact every text they print, and almost none holds a secret.
    if hits.is_empty() && entropy.is_empty() {
        return text.to_owned();
    }
    let mut bytes = text.as_bytes().to_vec();
    let spans = hits
        .iter()
        .map(|h| (h.span.clone(), h.prefix.len()))
        .chain(entropy.into_iter().map(|e| (e.value_span, 0)));
    for (span, keep) in spans {
        for (i, b) in bytes[span].iter_mut().enumerate() {
            // Newlines stay so a redacted PEM body keeps its line structure.
            if i >= keep && *b != b'\n' && *b != b'\r' {
                *b = b'*';
            }
        }
    }
    // Only ASCII bytes inside spans were replaced, by ASCII: still valid UTF-8... unless a span
    // covered part of a multi-byte character, which token and value spans never do.
    String::from_utf8(bytes).unwrap_or_else(|_| "*".repeat(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Kind detection reads every line start once for all its keys: each key must still count
    // only at the start of a line and followed by `:`.
    #[test]
    fn kinds_from_top_level_keys() {
        let k = |t: &str| detect_kind("x.yaml", t);
        assert_eq!(k("on: push\r\njobs:\r\n  a: {}\r\n"), FileKind::Workflow);
        assert_eq!(k("\"on\": push\njobs: {}\n"), FileKind::Workflow);
        assert_eq!(k("'on': push\njobs: {}\n"), FileKind::Workflow);
        assert_eq!(k("jobs: {}\n  on: push\n"), FileKind::Text);
        assert_eq!(k("kind: Pod\napiVersion: v1\n"), FileKind::Kubernetes);
        assert_eq!(k("services:\n  a: {}\n"), FileKind::Compose);
        assert_eq!(k("servicesx: 1\njobsx: 1\n"), FileKind::Text);
        assert_eq!(k("x: 1\nservices: {}"), FileKind::Compose);
    }
}
