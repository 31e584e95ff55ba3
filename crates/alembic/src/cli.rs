//! Command-line arguments, as the user typed them (clap derive). What follows from them is
//! worked out in each command module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "alembic",
    version,
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
    /// Write a commented alembic.toml (the default topology)
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
    /// Print the JSON Schema of alembic.toml
    Schema,
}
