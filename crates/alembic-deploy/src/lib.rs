//! Plans, operations and the one executor that runs them. The only crate with side effects:
//! it runs programs (ssh, docker compose, terraform, launchctl/systemctl) and touches the file
//! system. Everything it runs is first an [`ops::Op`], so dry runs and plans show the exact argv.

#![warn(unreachable_pub)]

pub mod artifacts;
pub mod bootstrap;
pub(crate) mod daytwo;
pub mod doctor;
pub mod droplet;
pub(crate) mod error;
pub mod exec;
pub(crate) mod exit;
pub mod facade;
pub(crate) mod fsio;
pub mod host;
pub(crate) mod images;
pub mod k8s;
pub mod lease;
pub mod ledger;
pub mod ops;
pub(crate) mod plan;
pub(crate) mod probe;
pub(crate) mod progress;
pub(crate) mod secrets;
pub mod session;
pub(crate) mod settle;
pub mod ssh;
pub mod stage;
pub mod swarm;
pub mod terraform;
