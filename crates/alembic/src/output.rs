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
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), out.as_bytes());
}

/// Print the DESIGN.md diagnostics JSON document on stdout.
pub fn print_json(diags: &[Diagnostic]) {
    print_value(&diagnostics_json(diags));
}

/// Print any serialisable document as JSON on stdout. A closed pipe (`| head`) is not an
/// error worth a panic: `println!` would panic on EPIPE, so write and ignore the result.
pub fn print_value(v: &serde_json::Value) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}
