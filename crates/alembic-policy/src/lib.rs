//! Policy: rules over a validated [`Topology`] and over artifact files, each finding a located
//! [`Diagnostic`] with a stable code (DESIGN.md, "Diagnostic codes").
//!
//! Pure: no file system, no processes. One module per rule family; each rule is a static with
//! its code, severity, summary and help plus a check function ([`Rule`], [`FileRule`],
//! [`TopologyRule`]).
//!
//! - [`check_config`]: what `alembic check` runs over the config (SEC001 over the text, then the
//!   topology rules: exposure, network, secrets).
//! - [`scan_text`] / [`scan_artifacts`]: the artifact rules (compose, Terraform, workflows,
//!   Caddyfile, launchd plists, systemd units, and secret shapes in any text) over one file or a
//!   rendered [`alembic_render::ArtifactSet`]. A file its parser cannot read is reported (CFG001)
//!   and still read line by line.
//! - `coverage`: how much of the internet a set of source ranges reaches (EXP005/EXP006).

#![warn(unreachable_pub, missing_docs)]

pub mod artifacts;
mod coverage;
mod rule;
pub mod tokens;
pub mod topology;
pub mod yaml;
pub mod yamlpos;

use alembic_config::{Code, Diagnostic, Severity, SourceFile, Topology};

pub use artifacts::{
    detect_kind, redact, scan_artifacts, scan_text, scan_text_with, FileKind, FileRule, ScanContext,
};
pub use rule::{Rule, TopologyRule};

/// Policy over a config: SEC001 over its text (valid or not), plus every topology rule when it
/// validated. Parse/validation diagnostics are not repeated here.
pub fn check_config(src: &SourceFile, topology: Option<&Topology>) -> Vec<Diagnostic> {
    let mut out = topology::secrets::inline_secrets(src);
    if let Some(t) = topology {
        out.extend(topology::check(t, src));
    }
    alembic_config::diag::sort_diagnostics(&mut out);
    out
}

/// Every rule's metadata (topology and artifact rules, plus SEC001), for SARIF `rules`.
pub fn all_rules() -> Vec<&'static Rule> {
    let mut out: Vec<&'static Rule> = topology::RULES.iter().map(|r| &r.rule).collect();
    out.push(&topology::secrets::SEC001);
    out.extend(artifacts::RULES.iter().map(|r| &r.rule));
    out
}

/// The default severity of a code: the rule's when a rule emits it, else error (the CFG and
/// SEC codes reported by validation).
pub fn default_severity(code: Code) -> Severity {
    all_rules()
        .into_iter()
        .find(|r| r.code == code)
        .map(|r| r.severity)
        .unwrap_or(Severity::Error)
}
