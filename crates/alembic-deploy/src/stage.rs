//! The stages of a topology, one enum everywhere: `--plane` values, plans (saved ones too),
//! ops, secret consumers.

use serde::{Deserialize, Serialize};

/// A stage of the topology: what `--plane` names and a plan is divided into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Stage {
    /// Terraform: the droplet, its firewall and reserved IP.
    Infra,
    /// The droplet: releases of the compose project behind the edge.
    Droplet,
    /// The operator's machine: launchd/systemd units.
    Host,
    /// GitHub Actions workflows (applied by committing them).
    Ci,
}

impl Stage {
    /// Every stage, in the order apply runs them.
    pub const ALL: [Stage; 4] = [Stage::Infra, Stage::Droplet, Stage::Host, Stage::Ci];

    /// The name used on the command line, in plans and in ops.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Infra => "infra",
            Stage::Droplet => "droplet",
            Stage::Host => "host",
            Stage::Ci => "ci",
        }
    }

    /// The stage a name (as [`Self::as_str`] gives it) stands for.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
