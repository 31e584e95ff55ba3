//! Helpers shared by the integration tests that declare `mod support;`.
//!
//! Each test binary compiles this module on its own and uses only part of it, so unused-item
//! warnings are expected here and silenced for the module as a whole.
#![allow(dead_code)]

pub mod cli;
pub mod droplet;
pub mod fleet;
pub mod ledger;
pub mod shims;
pub mod template;
