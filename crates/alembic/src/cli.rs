//! Command-line arguments, as the user typed them (clap derive). What follows from them is
//! worked out in each command module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "alembic",
    // `alembic 0.1.0 (alembic-infra)`: tells this tool apart from Python's SQLAlchemy Alembic,
    // whose `alembic --version` prints `alembic X.Y.Z` alone.
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CARGO_PKG_NAME"), ")"),
    about = "DevOps-as-code for a three-plane topology: validate, check, render, plan, apply",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file (default: $ALEMBIC_CONFIG, else ./alembic.toml, else the embedded default)
    #[arg(short = 'c', long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout (same as --format json)
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    Human,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopologyFormat {
    Human,
    Json,
    Dot,
    Mermaid,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starting alembic.toml and its JSON Schema (for editors)
    Init {
        /// Directory to write alembic.toml into
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing alembic.toml
        #[arg(long)]
        force: bool,
    },
    /// Parse and validate alembic.toml, reporting every problem at once
    Validate,
    /// Validate, then run every policy over the config and its rendered artifacts
    Check {
        #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
        format: DiagFormat,
    },
    /// Run the artifact policies over existing files (compose, Terraform, workflows, any text)
    Scan {
        /// Files or directories to scan
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
        format: DiagFormat,
    },
    /// Show planes, workloads, exposure and routes
    Topology {
        #[arg(long, value_enum, default_value_t = TopologyFormat::Human)]
        format: TopologyFormat,
    },
    /// Render every plane's artifacts (atomically) under --out
    Render {
        /// Output root (default: the config's directory)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Do not write; exit 1 with a unified diff where files on disk differ
        #[arg(long)]
        check: bool,
    },
    /// Show what apply would change, per plane, with the exact commands
    Plan {
        #[arg(long, value_enum)]
        plane: Option<PlaneArg>,
        /// Exit 0 for no changes, 2 for changes, 1 for errors (as Terraform)
        #[arg(long)]
        detailed_exitcode: bool,
        /// Save the plan to FILE for `alembic apply FILE`
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Show every operation's full argv (default: its step, the ssh connection once)
        #[arg(long)]
        verbose: bool,
        /// Show the diff of every file (default: only of changed files)
        #[arg(long)]
        diff: bool,
    },
    /// Apply the plan: a dry run without --yes, executed with it
    Apply {
        /// A plan saved by `alembic plan --out`; refused if its artifacts no longer match
        plan_file: Option<PathBuf>,
        #[arg(long, value_enum)]
        plane: Option<PlaneArg>,
        /// Execute (without it, print the operations and run nothing)
        #[arg(long)]
        yes: bool,
        /// Allow Terraform to replace the droplet or reserved IP
        #[arg(long)]
        allow_replace: bool,
    },
    /// Restore a previous release whole
    Rollback {
        #[arg(long, value_parser = rollback_plane(), default_value = "droplet")]
        plane: PlaneArg,
        /// Release number to restore (default: the one before current)
        #[arg(long, value_name = "RELEASE")]
        to: Option<u64>,
        /// Execute (without it, print the operations and run nothing)
        #[arg(long)]
        yes: bool,
    },
    /// Health of config, artifacts, tools and secrets (names only); --online checks live planes
    Doctor {
        #[arg(long)]
        online: bool,
    },
    /// Every secret name, who consumes it, where it must be set, whether it is set now
    Secrets {
        /// Exit 1 when a needed secret is unset or empty
        #[arg(long)]
        check: bool,
        #[arg(long, value_enum)]
        plane: Option<PlaneArg>,
    },
    /// Print the JSON Schema of alembic.toml
    Schema,
    /// Prepare a server once over ssh (Docker + compose, deploy user and keys, sshd hardening);
    /// idempotent; a dry run without --yes
    Bootstrap {
        /// Log in as this sudo user (the script runs under `sudo -n`) instead of root
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Execute (without it, print the operation and run nothing)
        #[arg(long)]
        yes: bool,
    },
    /// Print the alembic(1) man page (roff) on stdout: `alembic man > alembic.1`
    Man,
    /// Per droplet workload: release, container state, health, image; drift from the ledger
    Status,
    /// A droplet workload's logs, over ssh
    Logs {
        workload: String,
        /// Keep streaming new lines
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only lines since this long ago (`10m`, `2h`) or this time (RFC 3339)
        #[arg(long, value_name = "D")]
        since: Option<String>,
        /// Only the last N lines
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
    },
    /// Run a command in a droplet workload's container: alembic exec WORKLOAD -- CMD...
    Exec {
        workload: String,
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
}

/// Stages as `apply`/`plan` see them: `infra` is the Terraform stage of the droplet plane.
pub use alembic_deploy::facade::Stage as PlaneArg;

/// `rollback --plane`: only the droplet has releases, so only `droplet` is offered.
fn rollback_plane() -> impl clap::builder::TypedValueParser<Value = PlaneArg> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["droplet"]).map(|_| PlaneArg::Droplet)
}
