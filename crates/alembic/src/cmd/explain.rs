//! `alembic explain CODE`: what a diagnostic code means, an example and the fix (like `rustc
//! --explain`), from alembic-config's explanations and the checks' own rule data (summary,
//! default severity, each rule's hint). An unknown code is exit 1 with the known ones.

use alembic_config::explain::{self, Explanation};
use alembic_config::Severity;
use serde_json::json;

use crate::exit;
use crate::view::{CmdResult, Failure, Human, Outcome, View};

pub fn run(code: &str) -> CmdResult {
    match explain::explain(code) {
        Some(e) => Ok(Outcome::new(exit::OK, Explained::of(e))),
        None => Err(Failure::not_found(
            "unknown_code",
            format!("no diagnostic code `{}`", code.trim()),
        )
        .hint(format!(
            "codes are one of: {}",
            explain::EXPLANATIONS
                .iter()
                .map(|e| e.code)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

/// One explanation with the checks' data for its code.
pub(crate) struct Explained {
    pub e: &'static Explanation,
    pub severity: Option<Severity>,
    /// The hints the checks print with this code (one per rule, deduplicated).
    pub hints: Vec<&'static str>,
}

impl Explained {
    pub(crate) fn of(e: &'static Explanation) -> Explained {
        let code = e.code();
        let mut hints: Vec<&'static str> = alembic_policy::all_rules()
            .into_iter()
            .filter(|r| Some(r.code) == code)
            .map(|r| r.help)
            .collect();
        hints.dedup();
        Explained {
            e,
            severity: code.map(alembic_policy::default_severity),
            hints,
        }
    }

    fn severity(&self) -> &'static str {
        match self.severity {
            Some(Severity::Error) => "error",
            Some(Severity::Warning) => "warning",
            None => "reserved (no check emits it yet)",
        }
    }

    /// The entry as Markdown (docs/codes.md).
    pub(crate) fn markdown(&self) -> String {
        let mut s = format!(
            "## {}\n\n{} (default severity: {})\n\n{}\n\nExample:\n\n```\n{}\n```\n\nFix: {}\n",
            self.e.code,
            self.e.summary(),
            self.severity(),
            self.e.meaning,
            self.e.example,
            self.e.fix
        );
        if !self.hints.is_empty() {
            s.push_str("\nThe checks' hints:\n\n");
            for h in &self.hints {
                s.push_str(&format!("- {h}\n"));
            }
        }
        s
    }
}

impl View for Explained {
    fn human(&self, h: &mut Human) {
        let e = self.e;
        h.line(format!("{}: {}", e.code, e.summary()));
        h.line(format!("default severity: {}", self.severity()));
        h.line("");
        h.line(e.meaning);
        h.line("");
        h.line("Example:");
        for l in e.example.lines() {
            h.line(format!("    {l}"));
        }
        h.line("");
        h.line(format!("Fix: {}", e.fix));
        if !self.hints.is_empty() {
            h.line("");
            h.line("The checks say:");
            for hint in &self.hints {
                h.line(format!("  - {hint}"));
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        let e = self.e;
        json!({
            "format_version": 1,
            "code": e.code,
            "summary": e.summary(),
            "severity": self.severity.map(|s| s.to_string()),
            "meaning": e.meaning,
            "example": e.example,
            "fix": e.fix,
            "hints": self.hints,
        })
    }
}
