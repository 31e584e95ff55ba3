//! SARIF 2.1.0 view of diagnostics, in the shape GitHub code scanning accepts: one run, the
//! `alembic` driver with one rule per stable code, one result per diagnostic with a relative,
//! forward-slash artifact URI and a 1-based start line and column.

use std::path::Path;

use alembic_config::{Code, Diagnostic, Severity};
use serde_json::{json, Value};

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A file name as a SARIF URI: relative to `cwd` with `/` separators when it lies under it,
/// a `file://` URI when it is elsewhere, and `alembic.toml` for the embedded default.
pub fn uri(file: &str, cwd: &Path) -> String {
    if file == alembic_config::DEFAULT_NAME {
        return "alembic.toml".to_owned();
    }
    let p = Path::new(file);
    let rel = if p.is_absolute() {
        match p.strip_prefix(cwd) {
            Ok(r) => r.to_path_buf(),
            Err(_) => {
                let s = p.to_string_lossy().replace('\\', "/");
                return format!("file://{}", encode(&s));
            }
        }
    } else {
        p.to_path_buf()
    };
    let s = rel.to_string_lossy().replace('\\', "/");
    let s = s.trim_start_matches("./");
    encode(s)
}

/// Percent-encode what may not appear raw in a URI path.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF document for `diags`. Every stable code is listed as a rule, so `ruleIndex` is the
/// code's position in [`Code::ALL`] whatever the findings are.
pub fn document(diags: &[Diagnostic], cwd: &Path) -> Value {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "name": c.as_str(),
                "shortDescription": { "text": c.summary() },
                "fullDescription": { "text": c.summary() },
                // The same explanation `alembic explain` prints and docs/codes.md lists.
                "help": {
                    "text": alembic_config::explain::explain(c.as_str())
                        .map_or(String::new(), |e| format!("{} Fix: {}", e.meaning, e.fix)),
                },
                "defaultConfiguration": { "level": level(alembic_policy::default_severity(*c)) },
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let index = Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0);
            let mut message = d.message.clone();
            if let Some(h) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(h);
            }
            json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": index,
                "level": level(d.severity),
                "message": { "text": message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&d.file, cwd) },
                        "region": {
                            "startLine": d.line.max(1),
                            "startColumn": d.column.max(1),
                        }
                    }
                }]
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "alembic",
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_with_forward_slashes() {
        let cwd = Path::new("/repo");
        assert_eq!(uri("./infra/main.tf", cwd), "infra/main.tf");
        assert_eq!(uri("/repo/a b/x.yml", cwd), "a%20b/x.yml");
        assert_eq!(uri("/elsewhere/x.tf", cwd), "file:///elsewhere/x.tf");
        assert_eq!(uri(alembic_config::DEFAULT_NAME, cwd), "alembic.toml");
    }
}
