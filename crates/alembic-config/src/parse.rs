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

mod scale;

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
    pub source: SourceFile,
    pub topology: Option<Topology>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
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

impl<'s> Cx<'s> {
    fn err(
        &mut self,
        code: Code,
        span: Range<usize>,
        msg: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        let d = self.src.diag(code, Severity::Error, span, msg, help.into());
        self.diags.push(d);
    }

    /// Open a table: record spans of its keys, report unknown ones with a did-you-mean.
    fn open<'a, 'i>(
        &mut self,
        t: &'a DeTable<'i>,
        path: String,
        span: Range<usize>,
        known: &[&str],
    ) -> Tbl<'a, 'i> {
        self.spans.insert(path.clone(), span.clone());
        if self.too_many_keys(t, &path) {
            return Tbl { t, path, span };
        }
        for (k, v) in t.iter() {
            let kp = join(&path, k.get_ref());
            let kspan = k.span();
            self.spans
                .insert(kp, kspan.start..v.span().end.max(kspan.end));
            if !known.contains(&k.get_ref().as_ref()) {
                let name = k.get_ref().as_ref();
                let suggestion = known
                    .iter()
                    .map(|c| (strsim::jaro_winkler(name, c), *c))
                    .filter(|(s, _)| *s > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, c)| c);
                // Quoted keys may hold anything: escape them for the terminal.
                let shown: String = name
                    .chars()
                    .take(64)
                    .collect::<String>()
                    .escape_debug()
                    .to_string();
                let table = self.table_label(&path);
                let (msg, help) = match suggestion {
                    Some(c) => (
                        format!("unknown key `{shown}` in {table}"),
                        format!("did you mean `{c}`?"),
                    ),
                    None => (
                        format!("unknown key `{shown}` in {table}"),
                        format!("known keys here: {}", known.join(", ")),
                    ),
                };
                self.err(Code::Cfg002, kspan, msg, Some(help));
            }
        }
        Tbl { t, path, span }
    }

    /// One CFG004 for a table with more keys than any config needs, instead of one diagnostic
    /// per key: 100k unknown keys would otherwise be 100k lines of output.
    fn too_many_keys(&mut self, t: &DeTable<'_>, path: &str) -> bool {
        let Some((k, _)) = t.iter().nth(MAX_TABLE_KEYS) else {
            return false;
        };
        let table = self.table_label(path);
        self.err(
            Code::Cfg004,
            k.span(),
            format!(
                "{table} has {} keys; the limit is {MAX_TABLE_KEYS}",
                t.len()
            ),
            Some("this is not an alembic.toml table; check that this is the right file".to_owned()),
        );
        true
    }

    fn get<'a, 'i>(&self, tb: &Tbl<'a, 'i>, key: &str) -> Option<&'a Value<'i>> {
        tb.t.get(key)
    }

    fn missing(&mut self, tb: &Tbl<'_, '_>, key: &str, help: &str) {
        if self.syntax_broken {
            return;
        }
        let span = tb.span.clone();
        self.err(
            Code::Cfg003,
            span,
            format!(
                "missing required field `{key}` in {}",
                self.table_label(&tb.path)
            ),
            Some(help.to_owned()),
        );
    }

    /// `[droplet]`, or `[[workload]] #2 (`gateway`)` for a workload table.
    fn table_label(&self, path: &str) -> String {
        if path.starts_with("workload.") {
            describe_path(path, &self.workload_names)
        } else {
            table_label(path)
        }
    }

    fn describe(&self, path: &str) -> String {
        describe_path(path, &self.workload_names)
    }

    fn wrong_type(&mut self, v: &Value<'_>, key_path: &str, expected: &str) {
        let what = self.describe(key_path);
        self.err(
            Code::Cfg004,
            v.span(),
            format!(
                "{what} must be {expected}, found {}",
                type_name(v.get_ref())
            ),
            None,
        );
    }

    /// A string field, checked by `parse`; problems reported with `code`.
    fn string<T>(
        &mut self,
        tb: &Tbl<'_, '_>,
        key: &str,
        required: Option<&str>,
        code: Code,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let Some(v) = self.get(tb, key) else {
            if let Some(help) = required {
                self.missing(tb, key, help);
            }
            return None;
        };
        self.string_value(v, &join(&tb.path, key), code, parse)
    }

    fn string_value<T>(
        &mut self,
        v: &Value<'_>,
        path: &str,
        code: Code,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match v.get_ref() {
            DeValue::String(s) => {
                if s.len() > MAX_STRING {
                    let what = self.describe(path);
                    self.err(
                        Code::Cfg004,
                        v.span(),
                        format!(
                            "{what} is {} bytes long; the limit is {MAX_STRING}",
                            s.len()
                        ),
                        None,
                    );
                    return None;
                }
                match parse(s) {
                    Ok(t) => Some(t),
                    Err(msg) => {
                        let what = self.describe(path);
                        self.err(code, v.span(), format!("invalid {what}: {msg}"), None);
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(v, path, "a string");
                None
            }
        }
    }

    fn integer(&mut self, tb: &Tbl<'_, '_>, key: &str) -> Option<(i64, Range<usize>)> {
        let v = self.get(tb, key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some((n, v.span())),
                Err(_) => {
                    let what = self.describe(&join(&tb.path, key));
                    self.err(
                        Code::Cfg004,
                        v.span(),
                        format!("{what} is out of range"),
                        None,
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(v, &join(&tb.path, key), "an integer");
                None
            }
        }
    }

    fn port(&mut self, tb: &Tbl<'_, '_>, key: &str) -> Option<Port> {
        let (n, span) = self.integer(tb, key)?;
        match Port::new(n) {
            Ok(p) => Some(p),
            Err(m) => {
                let what = self.describe(&join(&tb.path, key));
                self.err(Code::Cfg004, span, format!("invalid {what}: {m}"), None);
                None
            }
        }
    }

    fn boolean(&mut self, tb: &Tbl<'_, '_>, key: &str) -> Option<bool> {
        let v = self.get(tb, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, &join(&tb.path, key), "true or false");
                None
            }
        }
    }

    /// An array of strings, each checked by `parse`; duplicates reported as CFG005.
    fn string_list<T: PartialEq>(
        &mut self,
        tb: &Tbl<'_, '_>,
        key: &str,
        code: Code,
        dedup: bool,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let Some(v) = self.get(tb, key) else {
            return Vec::new();
        };
        let path = join(&tb.path, key);
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, &path, "an array of strings");
            return Vec::new();
        };
        // Duplicate detection is quadratic and every entry ends up in generated files: a
        // 100k-entry list took 49 s to refuse before this limit.
        if let Some(item) = items.get(MAX_LIST_ITEMS) {
            let what = self.describe(&path);
            self.err(
                Code::Cfg004,
                item.span(),
                format!(
                    "{what} has {} entries; the limit is {MAX_LIST_ITEMS}",
                    items.len()
                ),
                None,
            );
            return Vec::new();
        }
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}.{i}");
            self.spans.insert(ip.clone(), item.span());
            if let Some(t) = self.string_value(item, &ip, code, &parse) {
                if dedup && out.contains(&t) {
                    let what = self.describe(&path);
                    self.err(
                        Code::Cfg005,
                        item.span(),
                        format!("duplicate entry in {what}"),
                        Some("remove the repeated entry".to_owned()),
                    );
                    continue;
                }
                out.push(t);
            }
        }
        out
    }

    fn sub_table<'a, 'i>(
        &mut self,
        tb: &Tbl<'a, 'i>,
        key: &str,
        known: &[&str],
        required: bool,
    ) -> Option<Tbl<'a, 'i>> {
        let Some(v) = self.get(tb, key) else {
            if required && !self.syntax_broken {
                let span = tb.span.start..tb.span.start;
                self.err(
                    Code::Cfg003,
                    span,
                    format!("missing required table `[{key}]`"),
                    Some(format!(
                        "add a [{key}] table; `alembic init` writes a complete example"
                    )),
                );
            }
            return None;
        };
        match v.get_ref() {
            DeValue::Table(t) => Some(self.open(t, join(&tb.path, key), v.span(), known)),
            _ => {
                self.wrong_type(v, key, "a table");
                None
            }
        }
    }

    fn topology(&mut self, root: &DeTable<'_>, span: Range<usize>) -> Option<Topology> {
        let root = self.open(root, String::new(), span.start..span.start, ROOT_KEYS);
        let version = match self.integer(&root, "version") {
            Some((1, _)) => Some(1),
            Some((n, sp)) => {
                self.err(
                    Code::Cfg004,
                    sp,
                    format!("unsupported config version {n}"),
                    Some("this alembic understands `version = 1`".to_owned()),
                );
                None
            }
            None => {
                if root.t.get("version").is_none() {
                    self.missing(&root, "version", "add `version = 1` at the top of the file");
                }
                None
            }
        };
        let project = self.project(&root);
        let host = self.host(&root);
        let droplet = self.droplet(&root, project.as_ref());
        let ci = self.ci(&root);
        let workloads = self.workloads(&root);
        Some(Topology {
            version: version?,
            project: project?,
            host: host?,
            droplet: droplet?,
            ci: ci?,
            workloads: workloads?,
            spans: std::mem::take(&mut self.spans),
            by_name: Default::default(),
        })
    }

    fn project(&mut self, root: &Tbl<'_, '_>) -> Option<Project> {
        let t = self.sub_table(root, "project", PROJECT_KEYS, true)?;
        let name = self.string(
            &t,
            "name",
            Some("name the project, like name = \"alembic\""),
            Code::Cfg004,
            ProjectName::parse,
        );
        let domain = self.string(
            &t,
            "domain",
            Some("the DNS zone routes live under, like domain = \"example.com\""),
            Code::Cfg004,
            Hostname::parse,
        );
        Some(Project {
            name: name?,
            domain: domain?,
        })
    }

    fn host(&mut self, root: &Tbl<'_, '_>) -> Option<Host> {
        let Some(t) = self.sub_table(root, "host", HOST_KEYS, false) else {
            // `[host]` is optional (macOS by default) unless it was present but malformed.
            return match root.t.get("host") {
                Some(_) => None,
                None => Some(Host { os: HostOs::Macos }),
            };
        };
        let os = self.string(&t, "os", None, Code::Cfg004, |s| match s {
            "macos" => Ok(HostOs::Macos),
            "linux" => Ok(HostOs::Linux),
            _ => Err(format!("{s:?} is not one of \"macos\", \"linux\"")),
        });
        match (t.t.get("os"), os) {
            (None, _) => Some(Host { os: HostOs::Macos }),
            (Some(_), Some(os)) => Some(Host { os }),
            (Some(_), None) => None,
        }
    }

    fn droplet(&mut self, root: &Tbl<'_, '_>, project: Option<&Project>) -> Option<Droplet> {
        let t = self.sub_table(root, "droplet", DROPLET_KEYS, true)?;
        let mut ok = true;
        let address = self.string(&t, "address", None, Code::Cfg004, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an IP address"))
        });
        ok &= t.t.get("address").is_none() || address.is_some();
        let provisioned = t.t.get("address").is_none() && t.t.get("addresses").is_none();
        let need = |what: &'static str| if provisioned { Some(what) } else { None };
        let name = self.string(
            &t,
            "name",
            Some("name the droplet, like name = \"alembic-prod\""),
            Code::Cfg004,
            |s| WorkloadName::parse(s).map_err(|e| e.replace("workload name", "droplet name")),
        );
        let region = self.string(
            &t,
            "region",
            need("a DigitalOcean region slug, like region = \"nyc3\""),
            Code::Cfg004,
            Slug::parse,
        );
        let size = self.string(
            &t,
            "size",
            need("a droplet size slug, like size = \"s-1vcpu-2gb\""),
            Code::Cfg004,
            Slug::parse,
        );
        let image = self.string(
            &t,
            "image",
            need("an image slug, like image = \"ubuntu-24-04-x64\""),
            Code::Cfg004,
            Slug::parse,
        );
        ok &= !provisioned || (region.is_some() && size.is_some() && image.is_some());
        let ssh_user = match t.t.get("ssh_user") {
            Some(_) => self.string(&t, "ssh_user", None, Code::Cfg004, UserName::parse),
            None => UserName::parse("root").ok(),
        };
        let ssh_port = match t.t.get("ssh_port") {
            Some(_) => self.port(&t, "ssh_port"),
            None => Port::new(22).ok(),
        };
        let ssh_keys = self.string_list(&t, "ssh_keys", Code::Cfg004, true, SshKeyRef::parse);
        if provisioned && ssh_keys.is_empty() && t.no_items("ssh_keys") && !self.syntax_broken {
            let span = t.spans_of("ssh_keys");
            self.err(
                Code::Cfg003,
                span,
                "missing `droplet.ssh_keys`: a provisioned droplet needs at least one SSH key"
                    .to_owned(),
                Some(
                    "list the fingerprints of keys already in the DigitalOcean account".to_owned(),
                ),
            );
            ok = false;
        }
        let authorized_keys = self.string_list(
            &t,
            "authorized_keys",
            Code::Cfg004,
            true,
            AuthorizedKey::parse,
        );
        let admin_cidrs = self.string_list(&t, "admin_cidrs", Code::Cfg004, true, Cidr::parse);
        if provisioned && admin_cidrs.is_empty() && t.no_items("admin_cidrs") && !self.syntax_broken
        {
            let span = t.spans_of("admin_cidrs");
            self.err(
                Code::Cfg003,
                span,
                "missing `droplet.admin_cidrs`: the firewall needs the sources allowed to reach SSH".to_owned(),
                Some("list your admin networks, like admin_cidrs = [\"203.0.113.10/32\"]".to_owned()),
            );
            ok = false;
        }
        let token_env = match t.t.get("token_env") {
            Some(_) => self.string(&t, "token_env", None, Code::Sec002, EnvVarName::parse),
            None => EnvVarName::parse("DIGITALOCEAN_TOKEN").ok(),
        };
        let tls = match t.t.get("tls") {
            Some(_) => self.string(&t, "tls", None, Code::Cfg004, |s| match s {
                "acme" => Ok(Tls::Acme),
                "acme-staging" => Ok(Tls::AcmeStaging),
                "internal" => Ok(Tls::Internal),
                _ => Err(format!(
                    "{s:?} is not one of \"acme\", \"acme-staging\", \"internal\""
                )),
            }),
            None => Some(Tls::Acme),
        };
        let acme_email = self.string(&t, "acme_email", None, Code::Cfg004, Email::parse);
        ok &= t.t.get("acme_email").is_none() || acme_email.is_some();
        let root_dir = match t.t.get("root") {
            Some(_) => self.string(&t, "root", None, Code::Cfg004, AbsPath::parse),
            None => project.and_then(|p| AbsPath::parse(&format!("/opt/{}", p.name)).ok()),
        };
        let edge_image = match t.t.get("edge_image") {
            Some(_) => self.string(&t, "edge_image", None, Code::Cfg004, ImageRef::parse),
            None => ImageRef::parse("caddy:2.10-alpine").ok(),
        };
        let edge_bind = match t.t.get("edge_bind") {
            Some(_) => self.string(&t, "edge_bind", None, Code::Cfg004, |s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("{s:?} is not an IP address"))
            }),
            None => Some(IpAddr::from([0, 0, 0, 0])),
        };
        let http_port = match t.t.get("http_port") {
            Some(_) => self.port(&t, "http_port"),
            None => Port::new(80).ok(),
        };
        let https_port = match t.t.get("https_port") {
            Some(_) => self.port(&t, "https_port"),
            None => Port::new(443).ok(),
        };
        if let (Some(h), Some(s)) = (http_port, https_port) {
            if h == s {
                let span = t.spans_of("https_port");
                self.err(
                    Code::Cfg004,
                    span,
                    "`droplet.http_port` and `droplet.https_port` must differ",
                    None,
                );
                ok = false;
            }
        }
        let keep_releases = match self.integer(&t, "keep_releases") {
            Some((n, _)) if (1..=100).contains(&n) => Some(n as u32),
            Some((n, sp)) => {
                self.err(
                    Code::Cfg004,
                    sp,
                    format!("`droplet.keep_releases` = {n} must be from 1 to 100"),
                    None,
                );
                None
            }
            None if t.t.get("keep_releases").is_some() => None,
            None => Some(5),
        };
        // Remote Terraform state (DigitalOcean Spaces). Every key is optional; the defaults
        // follow the project and the droplet's region, so `state_bucket` alone is enough.
        let state_bucket = self.string(&t, "state_bucket", None, Code::Cfg004, BucketName::parse);
        ok &= t.t.get("state_bucket").is_none() || state_bucket.is_some();
        let state_key = match t.t.get("state_key") {
            Some(_) => self.string(&t, "state_key", None, Code::Cfg004, ObjectKey::parse),
            // A project name is a slug, so this default always parses.
            None => ObjectKey::parse(&format!(
                "{}/terraform.tfstate",
                project.map_or("alembic", |p| p.name.as_str())
            ))
            .ok(),
        };
        let state_region = match t.t.get("state_region") {
            Some(_) => {
                let r = self.string(&t, "state_region", None, Code::Cfg004, Slug::parse);
                ok &= r.is_some();
                r
            }
            None => region.clone(),
        };
        let env_name = |cx: &mut Self, key: &str, default: &str| match t.t.get(key) {
            Some(_) => cx.string(&t, key, None, Code::Sec002, EnvVarName::parse),
            None => EnvVarName::parse(default).ok(),
        };
        let state_access_key_env = env_name(self, "state_access_key_env", "SPACES_ACCESS_KEY_ID");
        let state_secret_key_env =
            env_name(self, "state_secret_key_env", "SPACES_SECRET_ACCESS_KEY");
        if let (Some(a), Some(s)) = (&state_access_key_env, &state_secret_key_env) {
            if a == s {
                let span = t.spans_of("state_secret_key_env");
                self.err(
                    Code::Sec002,
                    span,
                    format!(
                        "`droplet.state_access_key_env` and `droplet.state_secret_key_env` both name `{a}`: the access key id and the secret key are two values"
                    ),
                    Some("name two env vars, like SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY".to_owned()),
                );
                ok = false;
            }
        }
        let registry = self.string(&t, "registry", None, Code::Cfg004, Registry::parse);
        ok &= t.t.get("registry").is_none() || registry.is_some();
        let scale = self.scale(&t, t.t.get("address").is_some());
        ok &= scale.is_some();
        if !ok {
            return None;
        }
        Some(Droplet {
            name: name?,
            region,
            size,
            image,
            ssh_user: ssh_user?,
            ssh_port: ssh_port?,
            ssh_keys,
            authorized_keys,
            admin_cidrs,
            token_env: token_env?,
            tls: tls?,
            acme_email,
            root: root_dir?,
            edge_image: edge_image?,
            edge_bind: edge_bind?,
            http_port: http_port?,
            https_port: https_port?,
            address,
            keep_releases: keep_releases?,
            state_bucket,
            state_key: state_key?,
            state_region,
            state_access_key_env: state_access_key_env?,
            state_secret_key_env: state_secret_key_env?,
            registry,
            scale: scale?,
        })
    }

    fn ci(&mut self, root: &Tbl<'_, '_>) -> Option<Ci> {
        let t = self.sub_table(root, "ci", CI_KEYS, true)?;
        let repository = self.string(
            &t,
            "repository",
            Some("the GitHub repository, like repository = \"acme/alembic\""),
            Code::Cfg004,
            Repository::parse,
        );
        let defaulted =
            |cx: &mut Self, key: &str, default: &str, p: fn(&str) -> Result<Token, String>| match t
                .t
                .get(key)
            {
                Some(_) => cx.string(&t, key, None, Code::Cfg004, p),
                None => p(default).ok(),
            };
        let runner = defaulted(self, "runner", "ubuntu-24.04", Token::parse);
        let node_version = defaulted(self, "node_version", "22", Token::parse);
        let python_version = defaulted(self, "python_version", "3.12", Token::parse);
        let go_version = defaulted(self, "go_version", "stable", Token::parse);
        let rust_toolchain = defaulted(self, "rust_toolchain", "stable", Token::parse);
        // Without `toolchain`, a file that names a Node version keeps the pnpm setup it always
        // had; one that names none gets no language setup at all.
        let toolchain = match t.t.get("toolchain") {
            Some(_) => self.string(&t, "toolchain", None, Code::Cfg004, |s| {
                Toolchain::parse(s).ok_or_else(|| {
                    let all: Vec<String> =
                        Toolchain::ALL.iter().map(|t| format!("\"{t}\"")).collect();
                    format!("{s:?} is not one of {}", all.join(", "))
                })
            }),
            None if t.t.get("node_version").is_some() => Some(Toolchain::Pnpm),
            None => Some(Toolchain::None),
        };
        // A version field the chosen toolchain never reads is a mistake worth saying (the
        // project may have meant another toolchain), but it breaks nothing: a warning.
        if let Some(tc) = toolchain {
            for field in [
                "node_version",
                "python_version",
                "go_version",
                "rust_toolchain",
            ] {
                if t.t.get(field).is_some() && tc.version_field() != Some(field) {
                    let span = t.spans_of(field);
                    let used = match tc.version_field() {
                        Some(f) => format!("it reads `ci.{f}`"),
                        None => "it sets up no language".to_owned(),
                    };
                    let d = self.src.diag(
                        Code::Cfg004,
                        Severity::Warning,
                        span,
                        format!("`ci.{field}` has no effect with `toolchain = \"{tc}\"`"),
                        Some(format!(
                            "{used}; remove `{field}` or set the toolchain that uses it"
                        )),
                    );
                    self.diags.push(d);
                }
            }
        }
        let alembic_version =
            self.string(&t, "alembic_version", None, Code::Cfg004, Version::parse);
        let environment = defaulted(self, "environment", "production", Token::parse);
        let branch = match t.t.get("branch") {
            Some(_) => self.string(&t, "branch", None, Code::Cfg004, BranchName::parse),
            None => BranchName::parse("main").ok(),
        };
        let n = self.diags.len();
        let checks = self.string_list(&t, "checks", Code::Cfg004, false, Text::parse_ci);
        let gates = self.string_list(&t, "gates", Code::Cfg004, false, Text::parse_ci);
        let secrets = self.string_list(&t, "secrets", Code::Sec002, true, EnvVarName::parse);
        if self.diags[n..].iter().any(Diagnostic::is_error) {
            return None;
        }
        if t.t.get("alembic_version").is_some() && alembic_version.is_none() {
            return None;
        }
        Some(Ci {
            repository: repository?,
            branch: branch?,
            runner: runner?,
            toolchain: toolchain?,
            node_version: node_version?,
            python_version: python_version?,
            go_version: go_version?,
            rust_toolchain: rust_toolchain?,
            alembic_version,
            checks,
            gates,
            environment: environment?,
            secrets,
        })
    }

    fn workloads(&mut self, root: &Tbl<'_, '_>) -> Option<Vec<Workload>> {
        let Some(v) = root.t.get("workload") else {
            return Some(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, "workload", "an array of tables ([[workload]])");
            return None;
        };
        if items.len() > MAX_WORKLOADS {
            self.err(
                Code::Cfg004,
                v.span(),
                format!("{} workloads; the limit is {MAX_WORKLOADS}", items.len()),
                None,
            );
            return None;
        }
        let n = self.diags.len();
        let mut out = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let DeValue::Table(t) = item.get_ref() else {
                self.wrong_type(item, &format!("workload.{i}"), "a table");
                continue;
            };
            if let Some(DeValue::String(n)) = t.get("name").map(|v| v.get_ref()) {
                if let Ok(n) = WorkloadName::parse(n) {
                    self.workload_names.insert(i, n.to_string());
                }
            }
            let tb = self.open(t, format!("workload.{i}"), item.span(), WORKLOAD_KEYS);
            if let Some(w) = self.workload(&tb, i) {
                if let Some(first) = seen.get(w.name.as_str()) {
                    let span = self
                        .spans
                        .get(&format!("workload.{i}.name"))
                        .unwrap_or(item.span());
                    let (line, _) = self.src.locate(
                        self.spans
                            .get(&format!("workload.{first}.name"))
                            .map(|s| s.start)
                            .unwrap_or(0),
                    );
                    self.err(
                        Code::Cfg005,
                        span,
                        format!("duplicate workload name `{}`", w.name),
                        Some(format!(
                            "first defined on line {line}; workload names must be unique"
                        )),
                    );
                    continue;
                }
                seen.insert(w.name.to_string(), i);
                out.push(w);
            }
        }
        self.references(&out);
        if self.diags[n..].iter().any(Diagnostic::is_error) {
            return None;
        }
        Some(out)
    }

    fn workload(&mut self, t: &Tbl<'_, '_>, index: usize) -> Option<Workload> {
        let n = self.diags.len();
        let name = self.string(
            t,
            "name",
            Some("every workload needs name = \"...\""),
            Code::Cfg004,
            WorkloadName::parse,
        );
        let plane = self.string(
            t,
            "plane",
            Some("plane = \"host\", \"droplet\" or \"ci\""),
            Code::Cfg004,
            |s| {
                Plane::parse(s)
                    .ok_or_else(|| format!("{s:?} is not one of \"host\", \"droplet\", \"ci\""))
            },
        );
        let exposure = match t.t.get("exposure") {
            Some(_) => self.string(t, "exposure", None, Code::Cfg004, |s| match s {
                "private" => Ok(Exposure::Private),
                "public" => Ok(Exposure::Public),
                _ => Err(format!("{s:?} is not one of \"private\", \"public\"")),
            }),
            None => Some(Exposure::Private),
        };
        let image = self.string(t, "image", None, Code::Cfg004, ImageRef::parse);
        let build = self.string(t, "build", None, Code::Cfg004, BuildContext::parse);
        let command = self.string_list(t, "command", Code::Cfg004, false, Text::parse);
        let port = self.port(t, "port");
        let route = self.string(t, "route", None, Code::Cfg004, Route::parse);
        let health = self.string(t, "health", None, Code::Cfg004, HttpPath::parse);
        let healthcheck = self.string_list(t, "healthcheck", Code::Cfg004, false, Text::parse);
        let env = self.env_table(t);
        let secrets = self.string_list(t, "secrets", Code::Sec002, true, EnvVarName::parse);
        // One name as both a plain value and a secret: which wins would be a renderer's
        // accident, and the plain value may be a secret pasted in the wrong place.
        for name in secrets.iter().filter(|s| env.contains_key(*s)) {
            let span = self
                .spans
                .get(&join(&t.path, &format!("env.{name}")))
                .unwrap_or(t.span.clone());
            let what = self.describe(&join(&t.path, "env"));
            self.err(
                Code::Cfg005,
                span,
                format!("`{name}` is both a plain value in {what} and a secret"),
                Some(format!(
                    "secrets are passed at apply time from the environment; remove `{name}` from env"
                )),
            );
        }
        let depends_on = self.string_list(t, "depends_on", Code::Cfg004, true, WorkloadName::parse);
        let bind = self.string(t, "bind", None, Code::Cfg004, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an IP address"))
        });
        let keep_alive = self.boolean(t, "keep_alive");
        let schedule = self.string(t, "schedule", None, Code::Cfg004, Schedule::parse);
        let volumes = self.volumes(t);
        let read_only = self.boolean(t, "read_only");
        let tmpfs = self.string_list(t, "tmpfs", Code::Cfg004, true, ContainerPath::parse);
        let user = self.string(t, "user", None, Code::Cfg004, ContainerUser::parse);
        if self.diags[n..].iter().any(Diagnostic::is_error) {
            return None;
        }
        let (name, plane, exposure) = (name?, plane?, exposure?);
        let path = |k: &str| format!("workload.{index}.{k}");
        let here = |cx: &Self, k: &str| cx.spans.get(&path(k)).unwrap_or(t.span.clone());
        let mut problems: Vec<(Code, String, String, String)> = Vec::new();
        let mut not_on = |key: &str, present: bool, why: &str| {
            if present {
                problems.push((
                    Code::Cfg004,
                    key.to_owned(),
                    format!("`{key}` does not apply to {plane} workload `{name}`"),
                    why.to_owned(),
                ));
            }
        };
        match plane {
            Plane::Droplet => {
                not_on(
                    "bind",
                    bind.is_some(),
                    "droplet services are reached only through the edge; remove `bind`",
                );
                not_on(
                    "schedule",
                    schedule.is_some(),
                    "scheduled jobs run on the host plane",
                );
                not_on(
                    "keep_alive",
                    keep_alive.is_some(),
                    "compose restarts droplet services; remove `keep_alive`",
                );
                match (&image, &build) {
                    (None, None) => problems.push((
                        Code::Cfg003,
                        "name".into(),
                        format!("droplet workload `{name}` needs `image` or `build`"),
                        "set image = \"registry/name:tag\", or build = \"path/to/context\" to build it from a Dockerfile".into(),
                    )),
                    (Some(_), Some(_)) => problems.push((
                        Code::Cfg004,
                        "build".into(),
                        format!("droplet workload `{name}` sets both `image` and `build`"),
                        "a workload runs a published image or one built from its context; remove one".into(),
                    )),
                    _ => {}
                }
                if exposure == Exposure::Public && port.is_none() {
                    problems.push((
                        Code::Cfg003,
                        "exposure".into(),
                        format!("public workload `{name}` needs `port` for the edge to proxy to"),
                        "set port = <container port>".into(),
                    ));
                }
            }
            Plane::Host => {
                not_on(
                    "image",
                    image.is_some(),
                    "host workloads run a command; containers belong on the droplet",
                );
                not_on(
                    "build",
                    build.is_some(),
                    "host workloads run a command; containers belong on the droplet",
                );
                not_on(
                    "healthcheck",
                    !healthcheck.is_empty(),
                    "healthcheck applies to droplet containers",
                );
                for (key, present) in [
                    ("volumes", !volumes.is_empty()),
                    ("read_only", read_only.is_some()),
                    ("tmpfs", !tmpfs.is_empty()),
                    ("user", user.is_some()),
                ] {
                    not_on(key, present, "this applies to droplet containers");
                }
                if command.is_empty() {
                    problems.push((
                        Code::Cfg003,
                        "name".into(),
                        format!("host workload `{name}` needs `command`"),
                        "set command = [\"/path/to/program\", \"arg\"]".into(),
                    ));
                }
                if schedule.is_some() && keep_alive == Some(true) {
                    problems.push((
                        Code::Cfg004,
                        "keep_alive".into(),
                        format!("`{name}` sets both `schedule` and `keep_alive = true`"),
                        "a job runs on its schedule; a daemon is kept alive; choose one".into(),
                    ));
                }
            }
            Plane::Ci => {
                not_on(
                    "image",
                    image.is_some(),
                    "a ci workload is a command run on the runner",
                );
                not_on(
                    "build",
                    build.is_some(),
                    "a ci workload is a command run on the runner",
                );
                not_on(
                    "schedule",
                    schedule.is_some(),
                    "ci workloads run on push and pull_request",
                );
                for (key, present) in [
                    ("volumes", !volumes.is_empty()),
                    ("read_only", read_only.is_some()),
                    ("tmpfs", !tmpfs.is_empty()),
                    ("user", user.is_some()),
                ] {
                    not_on(key, present, "this applies to droplet containers");
                }
                if command.is_empty() {
                    problems.push((
                        Code::Cfg003,
                        "name".into(),
                        format!("ci workload `{name}` needs `command`"),
                        "set command = [\"make\", \"lint\"]".into(),
                    ));
                }
                // Rendered into a workflow's run:/env:, where GitHub would evaluate `${{ }}`.
                for (key, has) in [
                    (
                        "command",
                        command.iter().any(|c| c.as_str().contains("${{")),
                    ),
                    ("env", env.values().any(|v| v.as_str().contains("${{"))),
                ] {
                    if has {
                        problems.push((
                            Code::Cfg004,
                            key.into(),
                            format!("`{key}` of ci workload `{name}` contains a GitHub Actions expression (`${{{{`)"),
                            "workflow expressions are evaluated before the shell runs; pass values through plain env or secrets".into(),
                        ));
                    }
                }
            }
        }
        if health.is_some() && port.is_none() {
            problems.push((
                Code::Cfg004,
                "health".into(),
                format!("`health` on `{name}` needs a `port` to probe"),
                "set port or remove health".into(),
            ));
        }
        if route.is_some() && exposure == Exposure::Private && plane == Plane::Droplet {
            problems.push((
                Code::Cfg004,
                "route".into(),
                format!("private workload `{name}` has a route"),
                "routes are for public workloads; set exposure = \"public\" or remove route".into(),
            ));
        }
        if let Some(first) = healthcheck.first() {
            if !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                problems.push((
                    Code::Cfg004,
                    "healthcheck".into(),
                    "`healthcheck` must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"".into(),
                    "like healthcheck = [\"CMD\", \"/app/healthcheck\"]".into(),
                ));
            }
        }
        let failed = !problems.is_empty();
        for (code, key, msg, help) in problems {
            let span = here(self, &key);
            self.err(code, span, msg, Some(help));
        }
        if failed {
            return None;
        }
        let keep_alive = keep_alive.unwrap_or(plane == Plane::Host && schedule.is_none());
        let bind = match (plane, bind, port) {
            (Plane::Host, None, Some(_)) => Some(IpAddr::from([127, 0, 0, 1])),
            (_, b, _) => b,
        };
        Some(Workload {
            name,
            plane,
            exposure,
            image,
            build,
            command,
            port,
            route,
            health,
            healthcheck,
            env,
            secrets,
            depends_on,
            bind,
            keep_alive,
            schedule,
            volumes,
            read_only: read_only.unwrap_or(true),
            tmpfs,
            user,
            index,
        })
    }

    /// `volumes`: named volumes only. A malformed entry is CFG004; a host path or the docker
    /// socket is EXP008 (policy: either hands the container files of the droplet itself); two
    /// mounts at one container path are CFG005. Each at its item.
    fn volumes(&mut self, t: &Tbl<'_, '_>) -> Vec<VolumeMount> {
        let raw = self.string_list(t, "volumes", Code::Cfg004, false, |s| Ok(s.to_owned()));
        let path = join(&t.path, "volumes");
        let items = match self.get(t, "volumes").map(|v| v.get_ref()) {
            Some(DeValue::Array(a)) => a.len(),
            _ => 0,
        };
        // An item that is not a string was reported already; indices would no longer match.
        if raw.len() != items {
            return Vec::new();
        }
        let mut out: Vec<VolumeMount> = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let item = format!("{path}.{i}");
            let span = self.spans.get(&item).unwrap_or(t.span.clone());
            let what = self.describe(&item);
            match VolumeMount::parse(s) {
                Ok(v) if out.iter().any(|o| o.target == v.target) => {
                    let what = self.describe(&path);
                    self.err(
                        Code::Cfg005,
                        span,
                        format!("two entries in {what} mount at {}", v.target),
                        Some("mount one volume per container path".to_owned()),
                    );
                }
                Ok(v) => out.push(v),
                Err(VolumeError::Malformed(why)) => self.err(
                    Code::Cfg004,
                    span,
                    format!("invalid {what}: {why}"),
                    Some(
                        "like volumes = [\"pgdata:/var/lib/postgresql/data\"] (\":ro\" allowed)"
                            .to_owned(),
                    ),
                ),
                Err(VolumeError::HostPath(why)) => self.err(
                    Code::Exp008,
                    span,
                    format!("{what} refused: {why}"),
                    Some(
                        "use a named volume (name:/path); alembic never bind-mounts droplet paths"
                            .to_owned(),
                    ),
                ),
            }
        }
        out
    }

    fn env_table(&mut self, t: &Tbl<'_, '_>) -> BTreeMap<EnvVarName, Text> {
        let mut out = BTreeMap::new();
        let Some(v) = t.t.get("env") else {
            return out;
        };
        let path = join(&t.path, "env");
        let DeValue::Table(env) = v.get_ref() else {
            self.wrong_type(v, &path, "a table of NAME = \"value\"");
            return out;
        };
        if self.too_many_keys(env, &path) {
            return out;
        }
        for (k, val) in env.iter() {
            let kp = join(&path, k.get_ref());
            self.spans
                .insert(kp.clone(), k.span().start..val.span().end);
            let name = match EnvVarName::parse(k.get_ref()) {
                Ok(n) => Some(n),
                Err(m) => {
                    let what = self.describe(&path);
                    self.err(
                        Code::Sec002,
                        k.span(),
                        format!("invalid env var name in {what}: {m}"),
                        None,
                    );
                    None
                }
            };
            let value = match val.get_ref() {
                DeValue::String(_) => self.string_value(val, &kp, Code::Cfg004, Text::parse),
                DeValue::Integer(i) => Text::parse(&i.to_string()).ok(),
                DeValue::Boolean(b) => Text::parse(&b.to_string()).ok(),
                _ => {
                    self.wrong_type(val, &kp, "a string, integer or boolean");
                    None
                }
            };
            if let (Some(n), Some(v)) = (name, value) {
                out.insert(n, v);
            }
        }
        out
    }

    /// depends_on: every name must exist, on the same plane, without cycles.
    fn references(&mut self, workloads: &[Workload]) {
        let by_name: HashMap<&str, &Workload> =
            workloads.iter().map(|w| (w.name.as_str(), w)).collect();
        for w in workloads {
            for (j, dep) in w.depends_on.iter().enumerate() {
                let span = self
                    .spans
                    .get(&w.path(&format!("depends_on.{j}")))
                    .unwrap_or(0..0);
                match by_name.get(dep.as_str()) {
                    None => {
                        // Suggestions compare against every name: skip them on huge topologies
                        // where many dangling names would make this quadratic.
                        let hint = by_name
                            .keys()
                            .take(if workloads.len() <= 1000 {
                                usize::MAX
                            } else {
                                0
                            })
                            .map(|c| (strsim::jaro_winkler(dep.as_str(), c), *c))
                            .filter(|(s, _)| *s > 0.8)
                            .max_by(|a, b| a.0.total_cmp(&b.0))
                            .map(|(_, c)| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| {
                                "depends_on names other workloads of the same plane".to_owned()
                            });
                        self.err(
                            Code::Cfg006,
                            span,
                            format!("`{}` depends on unknown workload `{dep}`", w.name),
                            Some(hint),
                        );
                    }
                    Some(d) if d.name == w.name => {
                        self.err(
                            Code::Cfg006,
                            span,
                            format!("`{}` depends on itself", w.name),
                            None,
                        );
                    }
                    Some(d) if d.plane != w.plane => {
                        self.err(
                            Code::Cfg006,
                            span,
                            format!(
                                "`{}` ({}) depends on `{dep}` on another plane ({})",
                                w.name, w.plane, d.plane
                            ),
                            Some("depends_on orders start-up within one plane".to_owned()),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
        // Cycle detection (iterative DFS; 10k workloads must not recurse deeply).
        let mut state: HashMap<&str, u8> = HashMap::with_capacity(workloads.len());
        let mut reported: HashSet<&str> = HashSet::new();
        for start in workloads {
            if state.contains_key(start.name.as_str()) {
                continue;
            }
            let mut stack: Vec<(&Workload, usize)> = vec![(start, 0)];
            state.insert(start.name.as_str(), 1);
            while let Some((w, i)) = stack.pop() {
                if let Some(dep) = w.depends_on.get(i) {
                    stack.push((w, i + 1));
                    let Some(d) = by_name
                        .get(dep.as_str())
                        .filter(|d| d.plane == w.plane && d.name != w.name)
                    else {
                        continue;
                    };
                    match state.get(d.name.as_str()) {
                        None => {
                            state.insert(d.name.as_str(), 1);
                            stack.push((d, 0));
                        }
                        Some(1) if reported.insert(w.name.as_str()) => {
                            let span = self
                                .spans
                                .get(&w.path(&format!("depends_on.{i}")))
                                .unwrap_or(0..0);
                            self.err(
                                Code::Cfg006,
                                span,
                                format!(
                                    "dependency cycle: `{}` -> `{}` leads back to `{}`",
                                    w.name, d.name, w.name
                                ),
                                Some("remove one depends_on edge of the cycle".to_owned()),
                            );
                        }
                        _ => {}
                    }
                } else {
                    state.insert(w.name.as_str(), 2);
                }
            }
        }
    }
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
