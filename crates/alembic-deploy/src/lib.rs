//! Plans, operations and the one executor that runs them. The only crate with side effects:
//! it runs programs (ssh, docker compose, terraform, launchctl/systemctl) and touches the file
//! system. Everything it runs is first an [`ops::Op`], so dry runs and plans show the exact argv.

pub mod artifacts;
pub mod bootstrap;
pub mod daytwo;
pub mod doctor;
pub mod droplet;
pub mod error;
pub mod exec;
pub(crate) mod exit;
pub mod facade;
pub mod fsio;
pub mod host;
pub mod images;
pub mod lease;
pub mod ledger;
pub mod ops;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod secrets;
pub mod session;
pub mod settle;
pub mod ssh;
pub mod stage;
pub mod terraform;
