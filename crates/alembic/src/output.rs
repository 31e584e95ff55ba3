//! Views: diagnostics as human text (stderr) or JSON (stdout). Commands never format
//! diagnostics themselves.

use alembic_config::diag::{diagnostics_json, render_human, Summary};
use alembic_config::{Diagnostic, SourceFile};

/// Print diagnostics for humans on stderr, with the source line and a caret where known.
/// Every source line shown is redacted first (secret shapes masked, same length so columns
/// hold): a token on a line with an unrelated error must not reach the terminal or a CI log.
pub fn print_human(diags: &[Diagnostic], sources: &[&SourceFile]) {
    let redacted: Vec<SourceFile> = sources
        .iter()
        .filter(|s| diags.iter().any(|d| d.file == s.name))
        .map(|s| SourceFile::new(s.name.clone(), alembic_policy::redact(&s.text)))
        .collect();
    let diags = scrub(diags);
    let mut out = String::new();
    for d in &diags {
        let src = redacted.iter().find(|s| s.name == d.file);
        out.push_str(&render_human(d, src));
        out.push('\n');
    }
    let s = Summary::of(&diags);
    if s.errors + s.warnings > 0 {
        out.push_str(&format!(
            "{} error(s), {} warning(s)\n",
            s.errors, s.warnings
        ));
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), out.as_bytes());
}

/// Print the DESIGN.md diagnostics JSON document on stdout.
pub fn print_json(diags: &[Diagnostic]) {
    print_value(&diagnostics_json(&scrub(diags)));
}

/// Diagnostics with any secret shape in their message or help masked. Validation messages may
/// quote the offending value (`"dop_v1_…" is not a region slug`), and a value in the wrong
/// field is still a secret: every view goes through this.
pub fn scrub(diags: &[Diagnostic]) -> Vec<Diagnostic> {
    diags
        .iter()
        .map(|d| Diagnostic {
            message: alembic_policy::redact(&d.message),
            help: d.help.as_deref().map(alembic_policy::redact),
            ..d.clone()
        })
        .collect()
}

/// Print any serialisable document as JSON on stdout. A closed pipe (`| head`) is not an
/// error worth a panic: `println!` would panic on EPIPE, so write and ignore the result.
pub fn print_value(v: &serde_json::Value) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}
