//! The view layer: commands return data ([`Outcome`]: an exit code and a [`View`]) and this
//! module renders it, once, at the boundary (`lib.rs`'s `run`):
//!
//! - human mode: the view writes its data into [`Human::out`] (stdout) and its talk into
//!   [`Human::err`] (stderr); both texts are redacted here, once, before they are written;
//! - JSON mode: the view's [`View::json`] document is written to stdout, after every string in
//!   it was redacted here, once; stderr then carries only the outcome's notes.
//!
//! A failure is a view too ([`Failure`]): `error: ...` with its location and `hint:` for
//! humans, `{"format_version":1,"error":{...}}` on stdout in JSON mode, whatever the command.
//! Commands never print, so a new view (or a new redaction rule) changes every command at once.
//!
//! A command adopts the layer in three steps: return [`CmdResult`] from its `run`; end early
//! with `?` on a [`Failure`] (`Failure::runtime("ssh_unreachable", msg).hint(..)`) or on
//! `config::topology` (an invalid config is an outcome too); and give back
//! `Outcome::new(code, MyView { .. })` where `MyView: View` holds the data (the plan, the
//! report) and renders it both ways ([`Rendered`] when both texts are made up front). A command
//! that streams while it runs (apply's progress, `logs`, `exec`) ends with
//! [`Outcome::streamed`] on success; its failures are views like every other. A remote
//! process's output (`logs`, `exec`) goes through [`Streamed`], redacted line by line here and
//! JSON lines in JSON mode.

use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use crate::exit;

/// How the user asked to see the result: `--json` (or `--format json`) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
}

/// What a view writes for humans: `out` is the command's data (what could be piped), `err`
/// the talk around it (progress, summaries, hints). `out_json` is data that is a JSON
/// document even in human mode (SARIF): it is redacted string by string, like JSON mode.
#[derive(Debug, Default)]
pub struct Human {
    pub out: String,
    pub out_json: Option<Value>,
    pub err: String,
}

impl Human {
    /// Append a line of talk (stderr).
    pub fn say(&mut self, line: impl AsRef<str>) {
        self.err.push_str(line.as_ref());
        self.err.push('\n');
    }

    /// Append a line of data (stdout).
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.out.push_str(line.as_ref());
        self.out.push('\n');
    }
}

/// One command's result, rendered for humans or as JSON.
pub trait View {
    /// Data on stdout, talk on stderr.
    fn human(&self, h: &mut Human);
    /// The JSON document (with `format_version`).
    fn json(&self) -> Value;
    /// Whether the human talk (stderr) is written in JSON mode too: a failure says what went
    /// wrong on stderr as well, for whoever reads the log rather than the document.
    fn talk_in_json(&self) -> bool {
        false
    }
}

/// What a command gives back: its exit code and the view of its data.
pub struct Outcome {
    pub code: i32,
    /// Talk shown in both modes (on stderr), before the view's own.
    pub notes: Vec<String>,
    view: Option<Box<dyn View>>,
}

impl Outcome {
    pub fn new(code: i32, view: impl View + 'static) -> Outcome {
        Outcome {
            code,
            notes: Vec::new(),
            view: Some(Box::new(view)),
        }
    }

    /// A command whose output was streamed while it ran (apply's progress, `logs`, `exec`):
    /// nothing is left to show but its exit code. Failures are never streamed: they are views.
    pub fn streamed(code: i32) -> Outcome {
        Outcome {
            code,
            notes: Vec::new(),
            view: None,
        }
    }

    /// Add a note shown on stderr in both modes.
    pub fn note(mut self, note: impl Into<String>) -> Outcome {
        self.notes.push(note.into());
        self
    }
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Outcome {
        Outcome::new(f.exit, f)
    }
}

/// The result of a command: `Err` is an outcome too (a failure, or invalid config's
/// diagnostics), so `?` ends a command with its view.
pub type CmdResult = Result<Outcome, Outcome>;

/// What went wrong, in kinds a script can branch on (`error.kind` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The command line is wrong (exit 2).
    Usage,
    /// The config cannot be read or is invalid (exit 1).
    Config,
    /// The files the command works on are not what it may touch (exit 1).
    Refused,
    /// What was asked for does not exist: an unknown diagnostic code, a missing path (exit 1).
    NotFound,
    /// An operation failed at run time: a file could not be written, a tool is missing (exit 3).
    Runtime,
}

/// Where a failure points, when it points somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// A failure: the `error` object of the JSON envelope and the `error:` message for humans.
/// `code` is a stable snake_case identifier (`conflicting_flags`, `config_unreadable`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Box<Location>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(rename = "exit_code")]
    pub exit: i32,
    /// Talk printed for humans before the error (clap's usage text, a diff summary).
    #[serde(skip)]
    pub detail: Option<String>,
}

impl Failure {
    fn new(kind: Kind, code: &'static str, message: impl Into<String>, exit: i32) -> Failure {
        Failure {
            kind,
            code,
            message: message.into(),
            location: None,
            hint: None,
            exit,
            detail: None,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(Kind::Usage, code, message, exit::USAGE)
    }

    /// The config cannot be used (exit 1).
    pub fn config(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(Kind::Config, code, message, exit::PROBLEMS)
    }

    /// The files under an output root are not what alembic may touch (exit 1).
    pub fn refused(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(Kind::Refused, code, message, exit::PROBLEMS)
    }

    /// What was asked for does not exist (exit 1).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(Kind::NotFound, code, message, exit::PROBLEMS)
    }

    /// A run-time failure (exit 3).
    pub fn runtime(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(Kind::Runtime, code, message, exit::RUNTIME)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn at(mut self, file: impl Into<String>) -> Failure {
        self.location = Some(Box::new(Location {
            file: file.into(),
            line: None,
            column: None,
        }));
        self
    }

    pub fn exit(mut self, code: i32) -> Failure {
        self.exit = code;
        self
    }
}

impl View for Failure {
    fn human(&self, h: &mut Human) {
        if let Some(d) = &self.detail {
            h.err.push_str(d);
        }
        h.say(format!("error: {}", self.message));
        if let Some(l) = &self.location {
            match (l.line, l.column) {
                (Some(line), Some(col)) => h.say(format!("  --> {}:{line}:{col}", l.file)),
                (Some(line), None) => h.say(format!("  --> {}:{line}", l.file)),
                _ => {}
            }
        }
        if let Some(hint) = &self.hint {
            h.say(format!("\nhint: {hint}"));
        }
    }

    fn json(&self) -> Value {
        json!({"format_version": 1, "error": self})
    }

    fn talk_in_json(&self) -> bool {
        true
    }
}

/// Any serialisable document as a view: the same JSON in both modes (on stdout).
pub struct Document(pub Value);

impl View for Document {
    fn human(&self, h: &mut Human) {
        h.line(self.0.to_string());
    }
    fn json(&self) -> Value {
        self.0.clone()
    }
}

/// A view whose renderings are made up front from data the command no longer holds (a plan,
/// a status report): `out` and `err` for humans, `json` for `--json`. With `talk_in_json`,
/// `err` is written on stderr in JSON mode too (a failure's message, for the log).
pub struct Rendered {
    pub out: String,
    pub err: String,
    pub json: Value,
    pub talk_in_json: bool,
}

impl Rendered {
    /// Data for both modes, talk for humans only.
    pub fn new(out: String, err: String, json: Value) -> Rendered {
        Rendered {
            out,
            err,
            json,
            talk_in_json: false,
        }
    }
}

impl View for Rendered {
    fn human(&self, h: &mut Human) {
        h.out.push_str(&self.out);
        h.err.push_str(&self.err);
    }
    fn json(&self) -> Value {
        self.json.clone()
    }
    fn talk_in_json(&self) -> bool {
        self.talk_in_json
    }
}

impl Failure {
    /// This failure with the data gathered before it (bootstrap's steps): `out` on stdout for
    /// humans, and `data`'s fields beside `error` in the JSON envelope.
    pub fn with_data(self, out: String, data: Value) -> Rendered {
        let mut h = Human::default();
        self.human(&mut h);
        let mut json = self.json();
        if let (Value::Object(env), Value::Object(extra)) = (&mut json, data) {
            for (k, v) in extra {
                env.entry(k).or_insert(v);
            }
        }
        Rendered {
            out,
            err: h.err,
            json,
            talk_in_json: true,
        }
    }
}

/// Which of a remote process's outputs a streamed line came from (`stream` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Stdout,
    Stderr,
}

/// Output a command streams while it runs (`logs`, `exec`: what a process on the droplet
/// prints), written line by line as it arrives and redacted here, like every view. For humans
/// a line goes where it came from (stdout or stderr); in JSON mode each line is one JSON line
/// on stdout, `{"event":"output","stream":"stderr","line":"..."}` (without its newline), and
/// [`Streamed::finish`] ends the stream with `{"event":"exit","exit_code":N}`, so stdout is
/// JSON whatever the process printed, even nothing. An unfinished last line waits for the rest
/// of it (a secret split over two chunks is still one string when it is redacted).
pub struct Streamed {
    mode: Mode,
    /// The unfinished last line of stdout and of stderr.
    pending: [String; 2],
}

impl Streamed {
    pub fn new(mode: Mode) -> Streamed {
        Streamed {
            mode,
            pending: [String::new(), String::new()],
        }
    }

    /// A chunk of `to`: its complete lines are written now.
    pub fn chunk(&mut self, to: Channel, text: &str) {
        let buf = &mut self.pending[to as usize];
        buf.push_str(text);
        if let Some(end) = buf.rfind('\n') {
            let lines: String = buf.drain(..=end).collect();
            self.write(to, &lines);
        }
    }

    /// Write what is left of unfinished lines (the process ended, or failed).
    pub fn flush(&mut self) {
        for to in [Channel::Stdout, Channel::Stderr] {
            let rest = std::mem::take(&mut self.pending[to as usize]);
            if !rest.is_empty() {
                self.write(to, &rest);
            }
        }
    }

    /// The end of a stream that ran to completion: `code` is the command's exit code.
    pub fn finish(mut self, code: i32) -> i32 {
        self.flush();
        if self.mode == Mode::Json {
            emit(
                Channel::Stdout,
                &format!("{}\n", json!({"event": "exit", "exit_code": code})),
            );
        }
        code
    }

    fn write(&self, to: Channel, text: &str) {
        let (to, text) = self.render(to, text);
        emit(to, &text);
    }

    /// Complete lines of `to` as they are written: where, and the redacted text.
    fn render(&self, to: Channel, text: &str) -> (Channel, String) {
        match self.mode {
            Mode::Human => (to, alembic_policy::redact(text)),
            Mode::Json => {
                let mut out = String::new();
                for line in text.split_inclusive('\n') {
                    let line = line.strip_suffix('\n').unwrap_or(line);
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    let ev = json!({"event": "output", "stream": to,
                        "line": alembic_policy::redact(line)});
                    out.push_str(&format!("{ev}\n"));
                }
                (Channel::Stdout, out)
            }
        }
    }
}

/// Write `text` to stdout or stderr now (a closed pipe is ignored, as in [`show`]).
fn emit(to: Channel, text: &str) {
    let _ = match to {
        Channel::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes()).and_then(|()| o.flush())
        }
        Channel::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Render `outcome` in `mode` on stdout/stderr and give back its exit code. The one place
/// output is redacted and written.
pub fn show(mode: Mode, outcome: Outcome) -> i32 {
    let (out, err) = render(mode, &outcome);
    // A closed pipe (`| head`) is not worth a panic: write and ignore the result.
    if !out.is_empty() {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(out.as_bytes()).and_then(|()| o.flush());
    }
    if !err.is_empty() {
        let _ = std::io::stderr().lock().write_all(err.as_bytes());
    }
    outcome.code
}

/// The redacted (stdout, stderr) texts of `outcome` in `mode`, as `show` writes them.
pub fn render(mode: Mode, outcome: &Outcome) -> (String, String) {
    let mut err = String::new();
    for n in &outcome.notes {
        err.push_str(n);
        err.push('\n');
    }
    let Some(view) = &outcome.view else {
        return (String::new(), alembic_policy::redact(&err));
    };
    match mode {
        Mode::Json => {
            let mut v = view.json();
            redact_json(&mut v);
            if view.talk_in_json() {
                let mut h = Human::default();
                view.human(&mut h);
                err.push_str(&h.err);
            }
            (format!("{v}\n"), alembic_policy::redact(&err))
        }
        Mode::Human => {
            let mut h = Human::default();
            view.human(&mut h);
            err.push_str(&h.err);
            let mut out = alembic_policy::redact(&h.out);
            if let Some(mut v) = h.out_json {
                redact_json(&mut v);
                out.push_str(&format!("{v}\n"));
            }
            (out, alembic_policy::redact(&err))
        }
    }
}

/// Every string in `v` (keys stay: they are names) with secret shapes masked.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::String(s) => {
            let r = alembic_policy::redact(s);
            if r != *s {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_json),
        Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> String {
        format!(
            "ghp_{}",
            "aB3dE5fG7h".repeat(4).get(..36).unwrap_or_default()
        )
    }

    #[test]
    fn failure_envelope_has_every_field() {
        let f = Failure::usage("conflicting_flags", "--json and --format dot conflict")
            .hint("drop one of them")
            .at("alembic.toml");
        let v = f.json();
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["error"]["kind"], "usage");
        assert_eq!(v["error"]["code"], "conflicting_flags");
        assert_eq!(v["error"]["exit_code"], 2);
        assert_eq!(v["error"]["hint"], "drop one of them");
        assert_eq!(v["error"]["location"]["file"], "alembic.toml");
    }

    #[test]
    fn streamed_lines_are_redacted_and_json_lines_in_json_mode() {
        let t = token();
        let text = format!("first {t}\nsecond\n");
        let (to, human) = Streamed::new(Mode::Human).render(Channel::Stderr, &text);
        assert_eq!(to, Channel::Stderr);
        assert!(
            !human.contains(&t) && human.ends_with("second\n"),
            "{human}"
        );
        let (to, json) = Streamed::new(Mode::Json).render(Channel::Stderr, &text);
        assert_eq!(to, Channel::Stdout, "JSON lines go to stdout");
        let lines: Vec<Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{json}");
        assert_eq!(lines[0]["event"], "output");
        assert_eq!(lines[0]["stream"], "stderr");
        assert!(!lines[0]["line"].as_str().unwrap().contains(&t), "{json}");
        assert!(lines[0]["line"].as_str().unwrap().starts_with("first ghp_"));
        assert_eq!(lines[1]["line"], "second");
    }

    #[test]
    fn a_streamed_line_waits_for_its_end() {
        // No line is complete yet: both chunks are kept (nothing is written) until its end.
        let mut s = Streamed::new(Mode::Json);
        s.chunk(Channel::Stdout, "half of a ");
        s.chunk(Channel::Stdout, "line");
        assert_eq!(s.pending[0], "half of a line");
        assert_eq!(s.pending[1], "");
    }

    #[test]
    fn both_modes_are_redacted_once_at_the_boundary() {
        let t = token();
        let f = Failure::config("config_unreadable", format!("bad value {t}"));
        let o = Outcome::from(f);
        for mode in [Mode::Human, Mode::Json] {
            let (out, err) = render(mode, &o);
            assert!(
                !out.contains(&t) && !err.contains(&t),
                "{mode:?}: {out}{err}"
            );
            assert!(
                format!("{out}{err}").contains("ghp_"),
                "{mode:?}: {out}{err}"
            );
        }
    }
}
