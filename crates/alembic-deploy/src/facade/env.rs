//! The applying environment: where the config lives and where variables come from.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use alembic_config::Topology;

use crate::droplet::{self, Target};
use crate::exec::SecretSource;

type Vars = Box<dyn Fn(&str) -> Option<OsString>>;

/// The applying environment: where the config lives, and the variables settings and secret
/// values are read from (the process environment, or a map in tests).
pub struct Env {
    /// `alembic.toml`'s directory: Terraform's files and `build` contexts are relative to it.
    pub base_dir: PathBuf,
    vars: Vars,
}

impl Env {
    /// The process environment.
    pub fn from_process(base_dir: impl Into<PathBuf>) -> Env {
        Env {
            base_dir: base_dir.into(),
            vars: Box::new(|n| std::env::var_os(n)),
        }
    }

    /// These variables only (tests: no process-wide `set_var`).
    pub fn with_vars(base_dir: impl Into<PathBuf>, vars: BTreeMap<String, String>) -> Env {
        Env {
            base_dir: base_dir.into(),
            vars: Box::new(move |n| vars.get(n).map(OsString::from)),
        }
    }

    pub(super) fn var(&self, name: &str) -> Option<String> {
        (self.vars)(name).and_then(|v| v.into_string().ok())
    }

    /// A droplet target configured from these variables (ssh config, probe timeout).
    pub(super) fn target(&self, t: &Topology, address: &droplet::Address) -> Target {
        let mut target = Target::from_topology(t, address);
        target.ssh.config = self
            .var(crate::ssh::SSH_CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        target.probe_timeout = self
            .var(droplet::PROBE_TIMEOUT_ENV)
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        if target.bootstrap_timeout.is_some() {
            if let Some(secs) = self
                .var(droplet::BOOTSTRAP_TIMEOUT_ENV)
                .and_then(|v| v.parse().ok())
            {
                target.bootstrap_timeout = Some(secs);
            }
        }
        target
    }
}

impl SecretSource for Env {
    fn get(&self, name: &str) -> Option<String> {
        self.var(name).filter(|v| !v.is_empty())
    }

    fn unusable(&self, name: &str) -> Option<&'static str> {
        crate::exec::unusable_value(&(self.vars)(name)?)
    }
}
