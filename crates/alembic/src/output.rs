//! Views: diagnostics as human text (stderr) or JSON (stdout). Commands never format
//! diagnostics themselves.

use alembic_config::diag::{diagnostics_json, render_human, Summary};
use alembic_config::{Diagnostic, SourceFile};

/// Print diagnostics for humans on stderr, with the source line and a caret where known.
pub fn print_human(diags: &[Diagnostic], sources: &[&SourceFile]) {
    let mut out = String::new();
    for d in diags {
        let src = sources.iter().copied().find(|s| s.name == d.file);
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
    eprint!("{out}");
}

/// Print the DESIGN.md diagnostics JSON document on stdout.
pub fn print_json(diags: &[Diagnostic]) {
    println!("{}", diagnostics_json(diags));
}

/// Print any serialisable document as JSON on stdout.
pub fn print_value(v: &serde_json::Value) {
    println!("{v}");
}
