//! Rules over the validated topology, one module per rule family.

pub mod exposure;
pub mod host;
pub mod network;
pub mod placeholders;
pub mod secrets;
pub mod state;

use alembic_config::{Diagnostic, SourceFile, Topology};

use crate::rule::TopologyRule;

/// Every topology rule, in a stable order.
pub static RULES: &[&TopologyRule] = &[
    &exposure::EXP001,
    &exposure::EXP002,
    &exposure::EXP004,
    &exposure::EXP007,
    &host::EXP010,
    &network::EXP005,
    &secrets::CFG006_SECRETS,
    &state::CFG003_STATE,
    &placeholders::CFG007,
];

/// Run every topology rule. `src` is the config the topology was loaded from.
pub fn check(t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    RULES
        .iter()
        .flat_map(|r| (r.check)(&r.rule, t, src))
        .collect()
}
