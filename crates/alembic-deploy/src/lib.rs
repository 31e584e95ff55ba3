//! Plans, operations and the one executor that runs them. The only crate with side effects:
//! it runs programs (ssh, docker compose, terraform, launchctl/systemctl) and touches the file
//! system. Everything it runs is first an [`ops::Op`], so dry runs and plans show the exact argv.

#![warn(unreachable_pub, missing_docs)]

pub(crate) mod artifacts;
pub(crate) mod bootstrap;
pub(crate) mod daytwo;
pub(crate) mod doctor;
pub(crate) mod droplet;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod exit;
pub mod facade;
pub(crate) mod fsio;
pub(crate) mod host;
pub(crate) mod images;
pub(crate) mod k8s;
pub(crate) mod lease;
pub(crate) mod ledger;
pub(crate) mod ops;
pub(crate) mod plan;
pub(crate) mod probe;
pub(crate) mod progress;
pub(crate) mod secrets;
pub mod session;
pub(crate) mod settle;
pub(crate) mod ssh;
pub(crate) mod stage;
pub(crate) mod swarm;
pub(crate) mod terraform;
