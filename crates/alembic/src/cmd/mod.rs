//! One module per command. `dispatch` is the only place that matches on the command enum.

mod init;
mod schema;
mod topology;
mod validate;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    match &cli.command {
        Command::Init { dir, force } => init::run(dir, *force),
        Command::Validate => validate::run(g),
        Command::Check { .. } | Command::Scan { .. } => {
            eprintln!("error: not available in this build");
            crate::exit::USAGE
        }
        Command::Topology { format } => topology::run(g, *format),
        Command::Schema => schema::run(),
    }
}
