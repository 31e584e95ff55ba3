//! `alembic doctor` checks, as data: one [`Check`] per concern, each `pass|warn|fail|skip` with
//! an id, a message and a hint. The binary gathers the inputs and renders the report.
//!
//! Facts that need a process (tool versions, ssh, openssl) are gathered through a [`Probe`] so
//! the judgement functions stay pure and are tested with canned answers; the real probe runs
//! the programs. Online checks only ever target the configured droplet address.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use alembic_config::{HostOs, Loaded, Topology};
use alembic_render::ArtifactSet;
use serde::Serialize;

use crate::secrets::{self, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: String,
    pub status: Status,
    pub message: String,
    /// What to do about it; empty for a pass.
    pub hint: String,
}

impl Check {
    pub fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status,
            message: message.into(),
            hint: String::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = hint.into();
        self
    }
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks, each with its id, status and message.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed (warnings allowed).
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The DESIGN.md `doctor --json` document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": 1,
            "ok": self.ok(),
            "checks": self.checks,
        })
    }

    /// One line per check, hints indented below, and a count line.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{:<4}  {:<28} {}\n",
                c.status.as_str(),
                c.id,
                c.message
            ));
            if !c.hint.is_empty() && c.status != Status::Pass {
                out.push_str(&format!("      hint: {}\n", c.hint));
            }
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed, {} skipped\n",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        ));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// config, policy, drift

/// `config.found` and `config.valid`. `file`: the config path, `None` for the embedded default.
pub fn config_checks(file: Option<&Path>, loaded: &Loaded) -> Vec<Check> {
    let found = match file {
        Some(p) => Check::new(
            "config.found",
            Status::Pass,
            format!("using {}", p.display()),
        ),
        None => Check::new(
            "config.found",
            Status::Warn,
            "no alembic.toml found; using the embedded default topology",
        )
        .hint("run `alembic init` to write one, or point -c / $ALEMBIC_CONFIG at yours"),
    };
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let valid = match (&loaded.topology, errors) {
        (Some(t), 0) => Check::new(
            "config.valid",
            Status::Pass,
            format!(
                "valid: {} workloads, project {}",
                t.workloads.len(),
                t.project.name
            ),
        ),
        _ => {
            let first = loaded
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| format!("; first: {}:{}: {}", d.line, d.column, d.message))
                .unwrap_or_default();
            Check::new(
                "config.valid",
                Status::Fail,
                format!("{errors} error(s) in {}{first}", loaded.source.name),
            )
            .hint("run `alembic validate` for every problem with its location")
        }
    };
    vec![found, valid]
}

/// `config.found` when the file could not be read at all.
pub fn config_unreadable(error: &str) -> Check {
    Check::new("config.found", Status::Fail, error.to_owned())
        .hint("check the path given by -c or $ALEMBIC_CONFIG")
}

/// `policy.clean` from the policy findings: `(errors, warnings, first error message)`; `None`
/// when no policy engine is available to this build.
pub fn policy_check(findings: Option<(usize, usize, Option<String>)>) -> Check {
    match findings {
        None => Check::new(
            "policy.clean",
            Status::Skip,
            "no policy rules in this build; the config was validated only",
        )
        .hint("run `alembic check` once policies are available"),
        Some((0, 0, _)) => Check::new("policy.clean", Status::Pass, "no policy findings"),
        Some((0, w, _)) => Check::new(
            "policy.clean",
            Status::Warn,
            format!("{w} policy warning(s)"),
        )
        .hint("run `alembic check` to see them"),
        Some((e, w, first)) => Check::new(
            "policy.clean",
            Status::Fail,
            format!(
                "{e} policy error(s), {w} warning(s){}",
                first.map(|m| format!("; first: {m}")).unwrap_or_default()
            ),
        )
        .hint("run `alembic check` for each finding with its location"),
    }
}

/// The manifest whose presence says "artifacts were rendered here".
pub(crate) const MANIFEST: &str = "infra/MANIFEST.json";

use alembic_render::manifest::sha256_hex;

/// `artifacts.drift`: every freshly rendered artifact against the file on disk under `root`
/// (by sha256). Skipped when nothing was rendered there yet (no manifest).
pub fn drift_check(root: &Path, fresh: &ArtifactSet) -> Check {
    if !root.join(MANIFEST).is_file() {
        return Check::new(
            "artifacts.drift",
            Status::Skip,
            format!(
                "nothing rendered under {} yet (no {MANIFEST})",
                root.display()
            ),
        )
        .hint("run `alembic render` to write the artifacts");
    }
    let mut differ = Vec::new();
    let mut absent = Vec::new();
    for a in fresh.iter() {
        // `.gitignore` is merged into: only alembic's block of it is compared.
        let want = match crate::artifacts::desired_on_disk(root, a) {
            Ok((bytes, _)) => bytes,
            Err(_) => std::borrow::Cow::Borrowed(a.bytes.as_slice()),
        };
        match std::fs::read(root.join(&a.path)) {
            Ok(disk) if sha256_hex(&disk) == sha256_hex(&want) => {}
            Ok(_) => differ.push(a.path.as_str()),
            Err(_) => absent.push(a.path.as_str()),
        }
    }
    if differ.is_empty() && absent.is_empty() {
        return Check::new(
            "artifacts.drift",
            Status::Pass,
            format!("{} artifacts on disk match a fresh render", fresh.len()),
        );
    }
    let list = |v: &[&str]| {
        let mut s = v.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        if v.len() > 5 {
            s.push_str(&format!(" and {} more", v.len() - 5));
        }
        s
    };
    let mut parts = Vec::new();
    if !differ.is_empty() {
        parts.push(format!("{} differ ({})", differ.len(), list(&differ)));
    }
    if !absent.is_empty() {
        parts.push(format!("{} missing ({})", absent.len(), list(&absent)));
    }
    Check::new(
        "artifacts.drift",
        Status::Fail,
        format!(
            "artifacts on disk drifted from the config: {}",
            parts.join("; ")
        ),
    )
    .hint("run `alembic render --check` for the diff, then `alembic render` to rewrite them")
}

// ---------------------------------------------------------------------------------------------
// secrets

/// `secrets.<NAME>`: one check per secret the context needs (SEC003 when unset or empty).
pub fn secret_checks(
    t: &Topology,
    ctx: Context,
    get: &dyn Fn(&str) -> Option<String>,
) -> Vec<Check> {
    let rows = secrets::inventory(t, ctx, None, get);
    let needed: Vec<_> = rows.iter().filter(|r| r.needed).collect();
    if needed.is_empty() {
        return vec![Check::new(
            "secrets",
            Status::Pass,
            format!("no secrets needed in the {} context", ctx.as_str()),
        )];
    }
    needed
        .into_iter()
        .map(|r| {
            let used: Vec<String> = r.uses.iter().map(|u| u.consumer.clone()).collect();
            if r.set {
                Check::new(
                    format!("secrets.{}", r.name),
                    Status::Pass,
                    format!("{} is set (used by {})", r.name, used.join(", ")),
                )
            } else {
                Check::new(
                    format!("secrets.{}", r.name),
                    Status::Fail,
                    format!(
                        "SEC003: {} is unset or empty (used by {})",
                        r.name,
                        used.join(", ")
                    ),
                )
                .hint(format!("set it in: {}", r.set_in.join("; ")))
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

mod online;
#[cfg(test)]
mod tests;
mod tools;

#[allow(unused_imports)]
use online::*;
pub use online::{droplet_address, online_checks};
pub(crate) use tools::Probe;
#[allow(unused_imports)]
use tools::*;
pub use tools::{tool_checks, SystemProbe};
