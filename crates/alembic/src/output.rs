//! Views of diagnostics: human (the source line and a caret, on stderr), the DESIGN.md JSON
//! document, and SARIF. Sources are handed over raw and redacted here, once each, and only
//! those a diagnostic points into; what the views print is redacted again as a whole by
//! [`crate::view`] (message texts quote values).

use alembic_config::diag::{diagnostics_json, render_human, Summary};
use alembic_config::{Diagnostic, SourceFile};
use serde_json::{json, Value};

use crate::view::{self, Failure, Human, View};

/// Diagnostics with the sources their human view shows, and the talk around them.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub diags: Vec<Diagnostic>,
    /// Raw source texts: only those a diagnostic points into are read, redacted first.
    pub sources: Vec<SourceFile>,
    /// Every text in `sources` is already the output of [`alembic_policy::redact`] (`scan`
    /// redacts them on its worker threads, beside the scan): they are not redacted again.
    /// The printed text is still redacted as a whole by [`crate::view`].
    pub sources_redacted: bool,
    /// In human mode, SARIF on stdout instead of text on stderr.
    pub sarif: bool,
    /// Talk before the diagnostics (human text only).
    pub before: Vec<String>,
    /// Talk after the summary line (human text only).
    pub after: Vec<String>,
}

impl Diagnostics {
    pub fn new(diags: Vec<Diagnostic>, sources: Vec<SourceFile>) -> Diagnostics {
        Diagnostics {
            diags,
            sources,
            ..Diagnostics::default()
        }
    }

    /// The exit code these diagnostics call for: 1 when any is an error.
    pub fn code(&self) -> i32 {
        if self.diags.iter().any(Diagnostic::is_error) {
            crate::exit::PROBLEMS
        } else {
            crate::exit::OK
        }
    }
}

impl View for Diagnostics {
    fn human(&self, h: &mut Human) {
        if self.sarif {
            let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
            h.out_json = Some(crate::sarif::document(&self.diags, &cwd));
            return;
        }
        for b in &self.before {
            h.say(b);
        }
        h.err.push_str(&human_text(
            &self.diags,
            &self.sources,
            self.sources_redacted,
        ));
        for a in &self.after {
            h.say(a);
        }
    }

    fn json(&self) -> Value {
        diagnostics_json(&self.diags)
    }
}

/// Diagnostics as text: each with its source line (redacted) and caret, then the counts.
fn human_text(diags: &[Diagnostic], sources: &[SourceFile], pre_redacted: bool) -> String {
    // A token on a line with an unrelated error must not reach the terminal or a CI log: the
    // shown sources are redacted (same length, so columns hold) with the whole file as context.
    let redacted: Vec<std::borrow::Cow<'_, SourceFile>> = sources
        .iter()
        .filter(|s| diags.iter().any(|d| d.file == s.name))
        .map(|s| match pre_redacted {
            true => std::borrow::Cow::Borrowed(s),
            false => std::borrow::Cow::Owned(SourceFile::new(
                s.name.clone(),
                alembic_policy::redact(&s.text),
            )),
        })
        .collect();
    let mut out = String::new();
    for d in diags {
        let src = redacted.iter().find(|s| s.name == d.file).map(|s| &**s);
        out.push_str(&render_human(d, src));
        out.push('\n');
    }
    let s = Summary::of(diags);
    if s.errors + s.warnings > 0 {
        out.push_str(&format!(
            "{} error(s), {} warning(s)\n",
            s.errors, s.warnings
        ));
    }
    out
}

/// A command that needs a valid topology got an invalid config: the diagnostics for humans;
/// in JSON the error envelope (pointing at the first error) with the diagnostics document's
/// `diagnostics` and `summary` beside it.
pub struct InvalidConfig(pub Diagnostics);

impl View for InvalidConfig {
    fn human(&self, h: &mut Human) {
        self.0.human(h);
    }

    fn json(&self) -> Value {
        let s = Summary::of(&self.0.diags);
        let f = Failure::config(
            "invalid_config",
            format!("the config is invalid: {} error(s)", s.errors),
        )
        .hint("`alembic validate` lists every problem with its fix");
        envelope_with(f, &self.0.diags)
    }
}

/// A deploy command refused by the `check` gate: the findings for humans (the refusal after
/// them); in JSON the error envelope (`check_failed`, pointing at the first error) with the
/// diagnostics document's `diagnostics` and `summary` beside it.
pub struct GateRefused {
    pub diags: Diagnostics,
    pub message: String,
}

impl View for GateRefused {
    fn human(&self, h: &mut Human) {
        self.diags.human(h);
    }

    fn json(&self) -> Value {
        let f = Failure::refused("check_failed", self.message.clone())
            .hint("`alembic check` shows every finding with its fix");
        envelope_with(f, &self.diags.diags)
    }
}

/// The error envelope of `f`, located at the first error of `diags`, with the diagnostics and
/// their summary beside it.
fn envelope_with(mut f: Failure, diags: &[Diagnostic]) -> Value {
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        f.location = Some(Box::new(view::Location {
            file: d.file.clone(),
            line: Some(d.line),
            column: Some(d.column),
        }));
    }
    let mut v = f.json();
    v["diagnostics"] = json!(diags);
    v["summary"] = json!(Summary::of(diags));
    v
}
