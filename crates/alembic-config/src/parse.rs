//! `alembic.toml` text -> [`Topology`], collecting every problem instead of stopping at the
//! first.
//!
//! The document is parsed with `toml`'s recoverable parser (all syntax errors, spans kept), then
//! walked by hand rather than deserialised with serde: serde stops at the first error and loses
//! the span of the key that was wrong, while walking lets one bad `[[workload]]` be reported
//! beside every other problem with an exact line and column.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::cron::Schedule;
use crate::diag::{Code, Diagnostic, Severity, SourceFile};
use crate::model::*;
use crate::types::*;

mod fields;
mod scale;
mod sections;
mod workload;

/// Refuse files larger than this before parsing: a config is a few KiB; 10k workloads is ~2 MiB.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Refuse arrays/tables nested deeper than this (TOML parsers recurse).
pub const MAX_NESTING: usize = 32;
/// Refuse tables (and `env` tables) with more keys than this; the largest table has 18 keys.
pub const MAX_TABLE_KEYS: usize = 1024;
/// Refuse arrays (command, secrets, admin_cidrs, checks ...) with more entries than this.
pub const MAX_LIST_ITEMS: usize = 1024;
/// Refuse configs with more workloads than this.
pub const MAX_WORKLOADS: usize = 50_000;

/// The outcome of loading a config: the source (for rendering diagnostics), the topology when
/// there was no error, and every diagnostic found.
#[derive(Debug)]
pub struct Loaded {
    /// The file as read, to show diagnostics against.
    pub source: SourceFile,
    /// The typed topology; `None` when any error was found.
    pub topology: Option<Topology>,
    /// Every diagnostic, errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parse and validate raw bytes (which may not be UTF-8) named `file` in diagnostics.
pub fn load_bytes(file: &str, bytes: &[u8]) -> Loaded {
    if let Some(refused) = too_big(file, bytes.len()) {
        return refused;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(file, text),
        Err(e) => {
            let good = e.valid_up_to();
            // Locate against the valid prefix so line/column point at the offending byte.
            let prefix = String::from_utf8_lossy(&bytes[..good]).into_owned();
            let mut source = SourceFile::new(file, prefix);
            let d = source.diag(
                Code::Cfg001,
                Severity::Error,
                good..good + 1,
                format!(
                    "file is not valid UTF-8 (invalid byte 0x{:02x} at offset {good})",
                    bytes[good]
                ),
                Some("save the file as UTF-8".into()),
            );
            source = SourceFile::new(file, String::from_utf8_lossy(bytes).into_owned());
            Loaded {
                source,
                topology: None,
                diagnostics: vec![d],
            }
        }
    }
}

/// Refuse a file over [`MAX_FILE_BYTES`] before looking at it.
fn too_big(file: &str, len: usize) -> Option<Loaded> {
    if len <= MAX_FILE_BYTES {
        return None;
    }
    let source = SourceFile::new(file, "");
    let d = source.diag(
        Code::Cfg001,
        Severity::Error,
        0..0,
        format!("config is {len} bytes; the limit is {MAX_FILE_BYTES} bytes"),
        Some(
            "split generated workloads into a smaller file or check that this is the right file"
                .into(),
        ),
    );
    Some(Loaded {
        source,
        topology: None,
        diagnostics: vec![d],
    })
}

/// Parse and validate text named `file` in diagnostics.
pub fn load_str(file: &str, text: &str) -> Loaded {
    // Checked here too, not only in `load_bytes`: callers holding a `&str` got no limit.
    if let Some(refused) = too_big(file, text.len()) {
        return refused;
    }
    let source = SourceFile::new(file, text);
    let mut diagnostics = Vec::new();
    if let Some(deep) = too_deep(text) {
        let (at, msg, help) = match deep {
            Deep::Nesting(at) => (
                at,
                format!("arrays or inline tables nested deeper than {MAX_NESTING} levels"),
                "flatten the value; alembic.toml never needs deep nesting",
            ),
            Deep::KeyParts(at) => (
                at,
                format!("dotted key or table header with more than {MAX_KEY_PARTS} parts"),
                "alembic.toml keys have at most three parts, like [droplet] or workload.env",
            ),
        };
        diagnostics.push(source.diag(
            Code::Cfg001,
            Severity::Error,
            at..at + 1,
            msg,
            Some(help.into()),
        ));
        return Loaded {
            source,
            topology: None,
            diagnostics,
        };
    }
    let (doc, errors) = DeTable::parse_recoverable(text);
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        let mut message = format!("TOML syntax error: {}", e.message().trim());
        let mut help = "see https://toml.io for the syntax; strings need double quotes".to_owned();
        // `toml` says only "duplicate key": name it, since the first definition may be far away.
        if e.message().trim() == "duplicate key" {
            if let Some(key) = text.get(span.clone()).filter(|k| !k.is_empty()) {
                let key: String = key.chars().take(64).collect();
                message = format!("duplicate key `{}`", key.escape_debug());
                help = "each key and table may be defined once; merge the two".to_owned();
            }
        }
        diagnostics.push(source.diag(Code::Cfg001, Severity::Error, span, message, Some(help)));
    }
    let mut cx = Cx {
        src: &source,
        diags: diagnostics,
        spans: SpanMap::default(),
        syntax_broken: !errors.is_empty(),
        workload_names: HashMap::new(),
    };
    let topology = cx.topology(doc.get_ref(), doc.span());
    let mut diagnostics = cx.diags;
    drop_noise_on_broken_lines(&source, &mut diagnostics);
    crate::diag::sort_diagnostics(&mut diagnostics);
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    Loaded {
        source,
        topology: if ok { topology } else { None },
        diagnostics,
    }
}

/// Where a hostile shape starts, found by [`too_deep`].
enum Deep {
    /// Bracket/brace nesting first exceeds [`MAX_NESTING`] at this byte.
    Nesting(usize),
    /// A dotted key or table header starting at this byte has more than [`MAX_KEY_PARTS`] parts.
    KeyParts(usize),
}

/// Most parts a dotted key (`a.b.c`) or table header may have. `toml` refuses more than 80 with
/// a span-less "recursion limit" error and builds every level first, so a file of thousands of
/// deep headers takes seconds; nothing in alembic.toml needs more than three.
pub const MAX_KEY_PARTS: usize = 32;

/// A cheap pre-pass, outside strings and comments, so the recursive parser never sees hostile
/// depth: bracket/brace nesting, and the number of dots in a run of key-like tokens (bare keys,
/// quoted keys, whitespace and dots; any other byte ends the run).
fn too_deep(text: &str) -> Option<Deep> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut run_start: Option<usize> = None;
    let mut dots = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let keyish = c.is_ascii_alphanumeric()
            || matches!(c, b'_' | b'-' | b'.' | b' ' | b'\t' | b'"' | b'\'');
        if !keyish {
            run_start = None;
            dots = 0;
        } else if run_start.is_none() && !matches!(c, b' ' | b'\t') {
            run_start = Some(i);
        }
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                run_start = None;
                dots = 0;
            }
            q @ (b'"' | b'\'') => {
                let triple = b.get(i..i + 3) == Some(&[q, q, q][..]);
                if triple {
                    i += 3;
                    while i < b.len() && b.get(i..i + 3) != Some(&[q, q, q][..]) {
                        i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 2;
                } else {
                    i += 1;
                    while i < b.len() && b[i] != q && b[i] != b'\n' {
                        i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                    }
                }
            }
            b'.' if run_start.is_some() => {
                dots += 1;
                if dots >= MAX_KEY_PARTS {
                    return run_start.map(Deep::KeyParts);
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(Deep::Nesting(i));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// With a syntax error on a line, the recoverable parser still hands back a guessed value for
/// it (`address = 203.0.113.20` becomes a float): a type or value complaint about that guess is
/// noise beside the real error. Keys are real, so CFG002 stays.
fn drop_noise_on_broken_lines(source: &SourceFile, diags: &mut Vec<Diagnostic>) {
    let broken: Vec<(usize, usize)> = diags
        .iter()
        .filter(|d| d.code == Code::Cfg001)
        .map(|d| {
            let end = d.span.as_ref().map(|s| s.end).unwrap_or(0);
            (d.line, source.locate(end).0.max(d.line))
        })
        .collect();
    if broken.is_empty() {
        return;
    }
    diags.retain(|d| {
        if matches!(d.code, Code::Cfg001 | Code::Cfg002) {
            return true;
        }
        let (first, last) = match &d.span {
            Some(s) => (d.line, source.locate(s.end).0.max(d.line)),
            None => (d.line, d.line),
        };
        !broken.iter().any(|&(a, b)| a <= last && first <= b)
    });
}

/// A user-facing name for a dotted key path: `workload.1.port` becomes
/// "`port` in [[workload]] #2 (`gateway`)", `droplet.admin_cidrs.0` becomes
/// "`droplet.admin_cidrs[0]`". Raw key segments are escaped and shortened: they come from the
/// file and may hold anything.
fn describe_path(path: &str, workload_names: &HashMap<usize, String>) -> String {
    fn key(segs: &[&str]) -> String {
        let mut out = String::new();
        for s in segs {
            if s.parse::<usize>().is_ok() && !out.is_empty() {
                out.push_str(&format!("[{s}]"));
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                let shown: String = s.chars().take(64).collect();
                out.push_str(&shown.escape_debug().to_string());
            }
        }
        out
    }
    let segs: Vec<&str> = path.split('.').collect();
    match segs.as_slice() {
        ["workload", i, rest @ ..] if i.parse::<usize>().is_ok() => {
            let n: usize = i.parse().unwrap_or(0);
            let table = match workload_names.get(&n) {
                Some(name) => format!("[[workload]] #{} (`{name}`)", n + 1),
                None => format!("[[workload]] #{}", n + 1),
            };
            if rest.is_empty() {
                table
            } else {
                format!("`{}` in {table}", key(rest))
            }
        }
        _ => format!("`{}`", key(&segs)),
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

struct Cx<'s> {
    src: &'s SourceFile,
    diags: Vec<Diagnostic>,
    spans: SpanMap,
    /// With syntax errors the tree is partial: don't report fields as missing.
    syntax_broken: bool,
    /// Valid names of `[[workload]]` tables by index, so messages can say
    /// "`port` in [[workload]] #2 (`gateway`)" rather than `workload.1.port`.
    workload_names: HashMap<usize, String>,
}

/// A table being read: its entries, its dotted path and its span.
struct Tbl<'a, 'i> {
    t: &'a DeTable<'i>,
    path: String,
    span: Range<usize>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const ROOT_KEYS: &[&str] = &["version", "project", "host", "droplet", "ci", "workload"];
const PROJECT_KEYS: &[&str] = &["name", "domain"];
const HOST_KEYS: &[&str] = &["os"];
const DROPLET_KEYS: &[&str] = &[
    "name",
    "region",
    "size",
    "image",
    "ssh_user",
    "ssh_port",
    "ssh_keys",
    "authorized_keys",
    "admin_cidrs",
    "token_env",
    "tls",
    "acme_email",
    "root",
    "edge_image",
    "edge_bind",
    "http_port",
    "https_port",
    "address",
    "keep_releases",
    "state_bucket",
    "state_key",
    "state_region",
    "state_access_key_env",
    "state_secret_key_env",
    "registry",
    "count",
    "addresses",
    "engine",
    "lb",
    "rollout",
];
const CI_KEYS: &[&str] = &[
    "repository",
    "branch",
    "runner",
    "toolchain",
    "node_version",
    "python_version",
    "go_version",
    "rust_toolchain",
    "alembic_version",
    "checks",
    "gates",
    "environment",
    "secrets",
];
const WORKLOAD_KEYS: &[&str] = &[
    "name",
    "plane",
    "exposure",
    "image",
    "build",
    "command",
    "port",
    "route",
    "health",
    "healthcheck",
    "env",
    "secrets",
    "depends_on",
    "bind",
    "keep_alive",
    "schedule",
    "volumes",
    "read_only",
    "tmpfs",
    "user",
];

/// Every key the parser knows, by table; the JSON Schema test compares against this.
pub fn known_keys() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("", ROOT_KEYS),
        ("project", PROJECT_KEYS),
        ("host", HOST_KEYS),
        ("droplet", DROPLET_KEYS),
        ("droplet.lb", scale::LB_KEYS),
        ("droplet.rollout", scale::ROLLOUT_KEYS),
        ("ci", CI_KEYS),
        ("workload", WORKLOAD_KEYS),
    ])
}

impl Tbl<'_, '_> {
    /// True when `key` is absent or an empty array. A list whose entries are all invalid is
    /// not "missing": its entries were already reported, and a second CFG003 would mislead.
    fn no_items(&self, key: &str) -> bool {
        match self.t.get(key).map(|v| v.get_ref()) {
            None => true,
            Some(DeValue::Array(a)) => a.is_empty(),
            Some(_) => false,
        }
    }

    /// Span of `key` if present, else of the table.
    fn spans_of(&self, key: &str) -> Range<usize> {
        self.t
            .get(key)
            .map(|v| v.span())
            .unwrap_or_else(|| self.span.clone())
    }
}

fn table_label(path: &str) -> String {
    if path.is_empty() {
        return "the top level".to_owned();
    }
    match path.split_once('.') {
        Some(("workload", rest)) => {
            let i: usize = rest
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            format!("[[workload]] #{}", i + 1)
        }
        _ => format!("[{path}]"),
    }
}
