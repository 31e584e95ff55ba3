//! Diagnostics: stable codes, severities, source locations and the two views every command
//! shares (human with a caret under the source line, and the DESIGN.md JSON shape).

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// Stable diagnostic codes (DESIGN.md, "Diagnostic codes"). Never renumber: tests outside the
/// repository match on these strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// TOML syntax error, or not UTF-8.
    Cfg001,
    /// Unknown key (with a did-you-mean).
    Cfg002,
    /// Missing required field.
    Cfg003,
    /// Invalid value (type, range, format, unsafe characters).
    Cfg004,
    /// Duplicate name.
    Cfg005,
    /// Dangling reference (`depends_on`, route, secret).
    Cfg006,
    /// Placeholder left from the template where it would break or endanger a real deploy.
    Cfg007,
    /// Public workload outside the droplet plane.
    Exp001,
    /// Host workload bound to a non-loopback, non-private address.
    Exp002,
    /// A droplet service publishes a port directly, bypassing the edge.
    Exp003,
    /// Public workload without a route, a route outside the project's domain, or a duplicate
    /// route.
    Exp004,
    /// SSH reachable from the whole internet.
    Exp005,
    /// Firewall opens a port that no public workload needs.
    Exp006,
    /// CI workload with ports or exposure.
    Exp007,
    /// A container given the droplet's powers: privileged, host namespaces, added capabilities,
    /// unconfined profiles, host devices, the docker socket or a host root mounted.
    Exp008,
    /// With a load balancer: droplets reachable on 80/443 from anywhere but the load balancer.
    Exp009,
    /// A host daemon whose command cannot receive its `bind`/`port`.
    Exp010,
    /// Inline secret value (a known token shape, or high entropy in a secret-like field).
    Sec001,
    /// Invalid env var name.
    Sec002,
    /// A required secret is unset or empty in the environment (name only).
    Sec003,
    /// An artifact passes a secret to something that does not declare it.
    Sec004,
    /// Action not pinned to a full commit SHA.
    Ci001,
    /// Token permissions broader than needed.
    Ci002,
    /// Untrusted event input interpolated into a `run:` script.
    Ci003,
    /// Deploy job without an environment, or with cancel-in-progress.
    Ci004,
    /// An untrusted trigger (`pull_request_target`, `workflow_run`) that checks out or runs the
    /// pull request's code.
    Ci005,
}

impl Code {
    /// Every code: CFG, then EXP, SEC and CI.
    pub const ALL: [Code; 26] = [
        Code::Cfg001,
        Code::Cfg002,
        Code::Cfg003,
        Code::Cfg004,
        Code::Cfg005,
        Code::Cfg006,
        Code::Cfg007,
        Code::Exp001,
        Code::Exp002,
        Code::Exp003,
        Code::Exp004,
        Code::Exp005,
        Code::Exp006,
        Code::Exp007,
        Code::Exp008,
        Code::Exp009,
        Code::Exp010,
        Code::Sec001,
        Code::Sec002,
        Code::Sec003,
        Code::Sec004,
        Code::Ci001,
        Code::Ci002,
        Code::Ci003,
        Code::Ci004,
        Code::Ci005,
    ];

    /// The code as printed and matched by tests (`CFG001`, `EXP005`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Cfg001 => "CFG001",
            Code::Cfg002 => "CFG002",
            Code::Cfg003 => "CFG003",
            Code::Cfg004 => "CFG004",
            Code::Cfg005 => "CFG005",
            Code::Cfg006 => "CFG006",
            Code::Cfg007 => "CFG007",
            Code::Exp001 => "EXP001",
            Code::Exp002 => "EXP002",
            Code::Exp003 => "EXP003",
            Code::Exp004 => "EXP004",
            Code::Exp005 => "EXP005",
            Code::Exp006 => "EXP006",
            Code::Exp007 => "EXP007",
            Code::Exp008 => "EXP008",
            Code::Exp009 => "EXP009",
            Code::Exp010 => "EXP010",
            Code::Sec001 => "SEC001",
            Code::Sec002 => "SEC002",
            Code::Sec003 => "SEC003",
            Code::Sec004 => "SEC004",
            Code::Ci001 => "CI001",
            Code::Ci002 => "CI002",
            Code::Ci003 => "CI003",
            Code::Ci004 => "CI004",
            Code::Ci005 => "CI005",
        }
    }

    /// One-line meaning, as in DESIGN.md; used by SARIF rule metadata and `--explain`-style help.
    pub fn summary(self) -> &'static str {
        match self {
            Code::Cfg001 => "TOML syntax error / not UTF-8",
            Code::Cfg002 => "unknown key",
            Code::Cfg003 => "missing required field",
            Code::Cfg004 => "invalid value (type, range, format, unsafe characters)",
            Code::Cfg005 => "duplicate name",
            Code::Cfg006 => "dangling reference (depends_on, route, secret)",
            Code::Cfg007 => "placeholder left from the template where it would break or endanger a real deploy",
            Code::Exp001 => "public workload outside the droplet plane",
            Code::Exp002 => "host workload bound to a non-loopback, non-private address",
            Code::Exp003 => "a droplet service publishes a port directly, bypassing the edge",
            Code::Exp004 => "public workload without a route, a route outside the project's domain, or a duplicate route",
            Code::Exp005 => "SSH reachable from the whole internet",
            Code::Exp006 => "firewall opens a port that no public workload needs",
            Code::Exp007 => "CI workload with ports or exposure",
            Code::Exp008 => "privileged container; host network/PID/IPC/user namespace; added capabilities; seccomp/apparmor unconfined; host devices; the docker socket or a host root mounted",
            Code::Exp009 => "with a load balancer: droplets reachable on 80/443 from anywhere but the load balancer",
            Code::Exp010 => "a host daemon whose command cannot receive its bind/port",
            Code::Sec001 => "inline secret value",
            Code::Sec002 => "invalid env-var name",
            Code::Sec003 => "a required secret is unset or empty in the environment",
            Code::Sec004 => "an artifact passes a secret to something that does not declare it",
            Code::Ci001 => "action not pinned to a full commit SHA",
            Code::Ci002 => "token permissions broader than needed",
            Code::Ci003 => "untrusted event input interpolated into a run: script",
            Code::Ci004 => "deploy job without an environment, or with cancel-in-progress",
            Code::Ci005 => "an untrusted trigger (pull_request_target, workflow_run) that checks out or runs the pull request's code",
        }
    }

    /// The code spelled `s` (as [`Code::as_str`] prints it), if there is one.
    pub fn from_str_code(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops `check` (exit 1) and every command that needs a valid config.
    Error,
    /// Reported; the command goes on.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem, located. `line`/`column` are 1-based; `column` counts characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, naming the value's place, never a secret's value.
    pub message: String,
    /// The file it is in, named as diagnostics show it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// How to fix it, when there is a known fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Byte range in the file, for the caret view; not part of the JSON contract.
    #[serde(skip)]
    pub span: Option<Range<usize>>,
}

impl Diagnostic {
    /// True for an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A source file and its line starts, to turn byte offsets into line/column.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name diagnostics show for it (usually the path).
    pub name: String,
    /// Its whole text.
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// A file named `name` holding `text`, its line starts indexed.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        // A SIMD search: `scan` builds this for every file it reads.
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line_idx + 1, col)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        self.text[start..end.max(start)].trim_end_matches('\r')
    }

    /// Byte offset of the first byte of a 1-based line.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.line_starts.get(line.wrapping_sub(1)).copied()
    }

    /// Build a located diagnostic from a byte range in this file.
    pub fn diag(
        &self,
        code: Code,
        severity: Severity,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let (line, column) = self.locate(span.start);
        Diagnostic {
            code,
            severity,
            message: printable(message.into()),
            file: self.name.clone(),
            line,
            column,
            help: help.map(printable),
            span: Some(span),
        }
    }
}

/// Messages quote values from the file; a control character in one (a terminal escape, a
/// newline forging a second diagnostic) must not reach the terminal raw.
fn printable(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Counts for the `summary` object of the JSON shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// How many errors.
    pub errors: usize,
    /// How many warnings.
    pub warnings: usize,
}

impl Summary {
    /// Count the errors and warnings among `diags`.
    pub fn of(diags: &[Diagnostic]) -> Summary {
        let errors = diags.iter().filter(|d| d.is_error()).count();
        Summary {
            errors,
            warnings: diags.len() - errors,
        }
    }
}

/// The `validate`/`check`/`scan` JSON document (DESIGN.md).
pub fn diagnostics_json(diags: &[Diagnostic]) -> serde_json::Value {
    serde_json::json!({
        "format_version": 1,
        "diagnostics": diags,
        "summary": Summary::of(diags),
    })
}

/// Sort by file, then position, then code, so output is stable whatever order rules ran in.
pub fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.column, a.code).cmp(&(
            b.file.as_str(),
            b.line,
            b.column,
            b.code,
        ))
    });
}

/// Human rendering: `error[CODE]: message`, ` --> file:line:col`, the source line, a caret
/// under the span, and `help:` when there is one. Plain text: reads right without colour.
pub fn render_human(d: &Diagnostic, source: Option<&SourceFile>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}[{}]: {}", d.severity, d.code, d.message);
    let _ = writeln!(out, "  --> {}:{}:{}", d.file, d.line, d.column);
    if let Some(src) = source.filter(|s| s.name == d.file) {
        // Long lines are shown as a window of SHOWN characters around the column, so a 10 MB
        // value cannot flood the terminal and a caret far to the right still lands on its spot.
        const SHOWN: usize = 160;
        let text = src.line_text(d.line);
        let line_len = text.chars().count();
        // `column` is 1-based, but Diagnostic is public: never underflow on a 0.
        let col0 = d.column.saturating_sub(1).min(line_len);
        let start = if line_len <= SHOWN || col0 < SHOWN - 40 {
            0
        } else {
            col0 - 60
        };
        let printable = |c: char| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        };
        let mut shown = String::new();
        if start > 0 {
            shown.push('…');
        }
        shown.extend(text.chars().skip(start).take(SHOWN).map(printable));
        if start + SHOWN < line_len {
            shown.push('…');
        }
        let gutter = d.line.to_string().len();
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{} | {}", d.line, shown);
        let width = d
            .span
            .as_ref()
            .map(|s| {
                let start = s.start.min(src.text.len());
                let end = s.end.min(src.text.len()).max(start);
                let line_end = src
                    .line_start(d.line + 1)
                    .map(|e| e - 1)
                    .unwrap_or(src.text.len());
                src.text
                    .get(start..end.min(line_end).max(start))
                    .map(|t| t.chars().count())
                    .unwrap_or(1)
            })
            .unwrap_or(1)
            .clamp(1, (SHOWN - (col0 - start)).max(1));
        let mut pad: String = if start > 0 { " ".into() } else { String::new() };
        pad.extend(text.chars().skip(start).take(col0 - start).map(|c| {
            if c == '\t' {
                '\t'
            } else {
                ' '
            }
        }));
        let _ = writeln!(out, "{:gutter$} | {}{}", "", pad, "^".repeat(width));
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "  = help: {help}");
    }
    out
}
