//! `alembic.toml` -> typed [`Topology`], plus the shared diagnostic types.
//!
//! Pure: no file system, no processes. The binary reads bytes and hands them to [`load_bytes`];
//! everything past that point works on validated newtypes.

#![warn(unreachable_pub, missing_docs)]

pub mod cron;
pub mod diag;
pub mod explain;
pub mod model;
pub mod parse;
pub mod scale;
pub mod schema;
pub mod types;

pub use diag::{Code, Diagnostic, Severity, SourceFile, Summary};
pub use model::*;
pub use parse::{load_bytes, load_str, Loaded};
pub use scale::{Bounded, Engine, LbTls, LoadBalancer, OnFailure, Rollout, Scale};

/// The embedded default topology (the Alembic topology), also what `alembic init` writes.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Name used in diagnostics for the embedded default.
pub const DEFAULT_NAME: &str = "<embedded default alembic.toml>";

/// The embedded default, validated. It is a test invariant that this never fails.
pub fn default_topology() -> Topology {
    load_str(DEFAULT_NAME, DEFAULT_TOML)
        .topology
        .expect("the embedded default topology is valid")
}
