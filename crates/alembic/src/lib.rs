//! The `alembic` command line: argument parsing, config discovery, and one module per command.
//! Commands return an exit code; stdout carries data, stderr carries talk.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod exit;
pub mod interrupt;
pub mod output;
pub mod sarif;

use std::ffi::OsString;

use clap::Parser;

/// Run the CLI with `args` (including argv[0]); returns the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    cmd::dispatch(cli)
}
