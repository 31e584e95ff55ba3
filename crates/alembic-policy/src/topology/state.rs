//! Where the Terraform state lives. A provisioned droplet is created by Terraform, and the CI
//! deploy job starts every run from an empty checkout: with local state only, each run would
//! plan a second droplet (or fail on the names the first one holds). `droplet.state_bucket`
//! puts the state in a DigitalOcean Spaces bucket; without it the config gets a warning.

use alembic_config::{Code, Diagnostic, Severity, SourceFile, Topology};

use crate::rule::{Rule, TopologyRule};

/// CFG003: missing required field.
pub static CFG003_STATE: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Cfg003,
        // The code's default stays an error (validation's missing required fields share it);
        // a missing state bucket is the weaker form and is reported as a warning.
        severity: Severity::Error,
        summary: "missing required field",
        help: "set droplet.state_bucket to a private DigitalOcean Spaces bucket (like state_bucket = \"alembic-tfstate\") so every apply, local or CI, reads and writes the same Terraform state",
    },
    check: no_remote_state,
};

fn no_remote_state(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    if !t.droplet.is_provisioned() || t.droplet.state_bucket.is_some() {
        return Vec::new();
    }
    vec![r.at_severity(
        Severity::Warning,
        src,
        t.spans.get("droplet").unwrap_or(0..0),
        "no remote state: the Terraform state of the provisioned droplet stays on the machine that applies it, so a CI deploy job (fresh checkout, empty state) would try to create a second droplet",
    )]
}
