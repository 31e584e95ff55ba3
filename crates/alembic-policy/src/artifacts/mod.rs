//! Rules over artifact files: the ones `alembic render` produces and the ones users already
//! have. One module per file family; SEC001 runs over every text file whatever its kind.
//!
//! Pure: callers hand in a path (for naming and kind detection) and the text. Reading files and
//! walking directories is the binary's job.

pub mod compose;
pub mod terraform;
pub mod workflow;

use alembic_config::{Diagnostic, Severity, SourceFile};
use alembic_render::{ArtifactKind, ArtifactSet};

use crate::rule::{FileRule, Rule};
use crate::tokens;
use crate::yaml;
use crate::yamlpos::YamlIndex;

/// The file families the artifact rules understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Compose,
    Terraform,
    Workflow,
    /// Any other text: only the secret shapes apply.
    Text,
}

/// What "needed" means when judging a firewall: the SSH port and the ports the edge serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanContext {
    pub ssh_port: u16,
    /// Ports a public workload needs open to the world (the edge's HTTP and HTTPS).
    pub public_ports: Vec<u16>,
}

impl Default for ScanContext {
    fn default() -> Self {
        ScanContext {
            ssh_port: 22,
            public_ports: vec![80, 443],
        }
    }
}

impl ScanContext {
    /// The context of a topology: its SSH port and its edge's ports.
    pub fn of(t: &alembic_config::Topology) -> ScanContext {
        let mut public_ports = vec![
            80,
            443,
            t.droplet.http_port.get(),
            t.droplet.https_port.get(),
        ];
        public_ports.sort_unstable();
        public_ports.dedup();
        ScanContext {
            ssh_port: t.droplet.ssh_port.get(),
            public_ports,
        }
    }
}

/// One file, parsed as its kind allows, handed to every rule of that kind.
pub struct Doc<'a> {
    pub src: &'a SourceFile,
    pub ctx: &'a ScanContext,
    /// The first YAML document (compose, workflow), when it parses.
    pub yaml: Option<crate::yaml::Value>,
    /// Positions of the YAML nodes.
    pub yindex: YamlIndex,
    /// The HCL body (Terraform), when it parses; `None` sends Terraform rules to text heuristics.
    pub hcl: Option<hcl_edit::structure::Body>,
}

impl<'a> Doc<'a> {
    /// `(name, mapping)` for every entry of a top-level YAML mapping (`services`, `jobs`), in
    /// file order; entries that are not mappings are skipped.
    pub(crate) fn named_mappings(&self, key: &str) -> Vec<(&str, &crate::yaml::Mapping)> {
        self.yaml
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(crate::yaml::Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?, v.as_mapping()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Doc<'_> {
    pub fn text(&self) -> &str {
        &self.src.text
    }
}

/// Every artifact rule, in a stable order.
pub static RULES: &[&FileRule] = &[
    &compose::EXP003,
    &compose::EXP008,
    &terraform::EXP005,
    &terraform::EXP006,
    &workflow::CI001,
    &workflow::CI002,
    &workflow::CI003,
    &workflow::CI004,
];

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
    if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
        return FileKind::Text;
    }
    if p.contains(".github/workflows/") {
        return FileKind::Workflow;
    }
    if name.contains("compose") {
        return FileKind::Compose;
    }
    let top = |k: &str| {
        text.lines()
            .any(|l| l.strip_prefix(k).is_some_and(|r| r.starts_with(':')))
    };
    if top("jobs") && (top("on") || top("\"on\"") || top("'on'")) {
        FileKind::Workflow
    } else if top("services") {
        FileKind::Compose
    } else {
        FileKind::Text
    }
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
    let (yaml, yindex) = match kind {
        // Real compose files and workflows nest a few levels; hostile nesting takes the YAML
        // parser seconds before it gives up, so it is not parsed at all.
        FileKind::Compose | FileKind::Workflow => {
            match (nesting_depth(text) <= 64)
                .then(|| yaml::parse(text))
                .flatten()
            {
                Some((value, index)) => (Some(value), index),
                None => (None, YamlIndex::default()),
            }
        }
        _ => (None, YamlIndex::default()),
    };
    let hcl = match kind {
        // The HCL parser recurses per nesting level: hostile nesting goes to the text scan.
        FileKind::Terraform if nesting_depth(text) <= 64 => hcl_edit::parser::parse_body(text).ok(),
        _ => None,
    };
    let doc = Doc {
        src: &src,
        ctx,
        yaml,
        yindex,
        hcl,
    };
    for r in RULES.iter().filter(|r| r.kind == kind) {
        out.extend((r.check)(&r.rule, &doc));
    }
    alembic_config::diag::sort_diagnostics(&mut out);
    out
}

/// The deepest bracket nesting in `text` (strings not excluded: an upper bound is enough).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'{' | b'[' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The scan kind of a rendered artifact.
pub fn kind_of(k: ArtifactKind) -> FileKind {
    match k {
        ArtifactKind::Terraform => FileKind::Terraform,
        ArtifactKind::Compose => FileKind::Compose,
        ArtifactKind::Workflow => FileKind::Workflow,
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
    let mut bytes = text.as_bytes().to_vec();
    let prefixes: Vec<(usize, usize)> = tokens::find_tokens(text)
        .iter()
        .map(|h| (h.span.start, h.prefix.len()))
        .collect();
    for span in secret_spans(text) {
        let keep = prefixes
            .iter()
            .find(|(s, _)| *s == span.start)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        for (i, b) in bytes[span.clone()].iter_mut().enumerate() {
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
