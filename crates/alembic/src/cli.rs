//! Command-line arguments, as the user typed them (clap derive). What follows from them is
//! worked out in each command module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// An `Examples:` block for `after_help` from (command, what it does) pairs: the same text in
/// `--help`, the man page and docs/.
macro_rules! examples {
    ($(($cmd:literal, $what:literal)),+ $(,)?) => {
        concat!("Examples:\n", $("  # ", $what, "\n  ", $cmd, "\n\n"),+)
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "alembic",
    // `alembic 0.1.0 (alembic-infra)`: tells this tool apart from Python's SQLAlchemy Alembic,
    // whose `alembic --version` prints `alembic X.Y.Z` alone.
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CARGO_PKG_NAME"), ")"),
    about = "DevOps-as-code for a three-plane topology: validate, check, render, plan, apply",
    propagate_version = true,
    after_help = examples![
        ("alembic init && alembic check", "start a project and check it"),
        ("alembic plan", "see what apply would change"),
        ("alembic explain EXP003", "what a diagnostic code means, and the fix"),
    ]
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
    /// Machine-readable JSON on stdout, errors included (same as --format json)
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
    #[command(after_help = examples![
        ("alembic init", "write alembic.toml and alembic.schema.json here"),
        ("alembic init --dir deploy", "into another directory"),
        ("alembic init --force", "overwrite an existing alembic.toml"),
    ])]
    Init {
        /// Directory to write alembic.toml into
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing alembic.toml
        #[arg(long)]
        force: bool,
    },
    /// Parse and validate alembic.toml, reporting every problem at once
    #[command(after_help = examples![
        ("alembic validate", "every problem at once, with line, column and a hint"),
        ("alembic -c other.toml validate --json", "another file, as JSON"),
    ])]
    Validate,
    /// Validate, then run every policy over the config and its rendered artifacts
    #[command(after_help = examples![
        ("alembic check", "every policy over the config and its rendered artifacts"),
        ("alembic check --format sarif > alembic.sarif", "SARIF for GitHub code scanning"),
        ("alembic -c deploy/alembic.toml check --json", "another config, as JSON"),
    ])]
    Check {
        /// Output format [default: human]
        #[arg(long, value_enum)]
        format: Option<DiagFormat>,
    },
    /// Run the artifact policies over existing files (compose, Terraform, workflows, any text)
    #[command(after_help = examples![
        ("alembic scan .", "every text file under the current directory"),
        ("alembic scan infra/docker/compose.yaml .github/workflows", "chosen files and folders"),
        ("alembic scan . --format sarif > scan.sarif", "SARIF for code scanning"),
    ])]
    Scan {
        /// Files or directories to scan
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format [default: human]
        #[arg(long, value_enum)]
        format: Option<DiagFormat>,
    },
    /// Show planes, workloads, exposure and routes
    #[command(after_help = examples![
        ("alembic topology", "planes, workloads, exposure and routes as a table"),
        ("alembic topology --format dot | dot -Tsvg > topology.svg", "a Graphviz drawing"),
        ("alembic topology --format mermaid", "a Mermaid flowchart for a README"),
    ])]
    Topology {
        /// Output format [default: human]
        #[arg(long, value_enum)]
        format: Option<TopologyFormat>,
    },
    /// Render every plane's artifacts (atomically) under --out
    #[command(after_help = examples![
        ("alembic render", "write the artifacts next to alembic.toml"),
        ("alembic render --out /tmp/out", "into another directory"),
        ("alembic render --check", "exit 1 with a diff where the files on disk differ"),
    ])]
    Render {
        /// Output root (default: the config's directory)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Do not write; exit 1 with a unified diff where files on disk differ
        #[arg(long)]
        check: bool,
    },
    /// Show what apply would change, per plane, with the exact commands
    #[command(after_help = examples![
        ("alembic plan", "every plane apply drives"),
        ("alembic plan --plane droplet --out release.plan", "save the droplet's plan for `alembic apply release.plan`"),
        ("alembic plan --detailed-exitcode", "exit 2 when there are changes"),
    ])]
    Plan {
        /// Only this plane (infra is the droplet's Terraform stage) [default: all]
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
    #[command(after_help = examples![
        ("alembic apply", "a dry run: the operations, nothing executed"),
        ("alembic apply --plane droplet --yes", "deploy the droplet"),
        ("alembic apply release.plan --yes", "apply a saved plan (refused if stale)"),
    ])]
    Apply {
        /// A plan saved by `alembic plan --out`; refused if its artifacts no longer match
        plan_file: Option<PathBuf>,
        /// Only this plane (infra is the droplet's Terraform stage) [default: all]
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
    #[command(after_help = examples![
        ("alembic rollback", "show how the release before current would be restored"),
        ("alembic rollback --to 3 --yes", "restore release 3"),
        ("alembic rollback --droplet 203.0.113.21 --yes", "restore the release before current on one droplet of several"),
    ])]
    Rollback {
        /// Only the droplet keeps releases to roll back to
        #[arg(long, default_value = "droplet", value_parser = droplet_only())]
        plane: PlaneArg,
        /// Release number to restore (default: the one before current)
        #[arg(long, value_name = "RELEASE")]
        to: Option<u64>,
        /// On several droplets: only this one (default: every droplet, one at a time)
        #[arg(long, value_name = "ADDRESS")]
        droplet: Option<std::net::IpAddr>,
        /// Execute (without it, print the operations and run nothing)
        #[arg(long)]
        yes: bool,
    },
    /// Health of config, artifacts, tools and secrets (names only); --online checks live planes
    #[command(after_help = examples![
        ("alembic doctor", "config, policy, drift, tools and secrets"),
        ("alembic doctor --json", "the same as JSON (a CI gate)"),
        ("alembic doctor --online", "also check the live droplet"),
    ])]
    Doctor {
        #[arg(long)]
        online: bool,
    },
    /// Every secret name, who consumes it, where it must be set, whether it is set now
    #[command(after_help = examples![
        ("alembic secrets", "every secret name, its consumers and whether it is set"),
        ("alembic secrets --check --plane droplet", "exit 1 when a droplet secret is unset"),
    ])]
    Secrets {
        /// Exit 1 when a needed secret is unset or empty
        #[arg(long)]
        check: bool,
        /// Only this plane (infra is the droplet's Terraform stage) [default: all]
        #[arg(long, value_enum)]
        plane: Option<PlaneArg>,
    },
    /// Print the JSON Schema of alembic.toml
    #[command(after_help = examples![
        ("alembic schema > alembic.schema.json", "the schema editors read"),
        ("alembic schema | jq '.properties | keys'", "the top-level tables"),
    ])]
    Schema,
    /// Prepare a server once over ssh (Docker + compose, deploy user and keys, sshd hardening);
    /// idempotent; a dry run without --yes
    #[command(after_help = examples![
        ("alembic bootstrap", "a dry run: the script, nothing executed"),
        ("alembic bootstrap --user admin --yes", "prepare the server, as a sudo user"),
        ("alembic bootstrap --droplet 203.0.113.21 --yes", "prepare one droplet of several, as root"),
    ])]
    Bootstrap {
        /// Log in as this sudo user (the script runs under `sudo -n`) instead of root
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// On several droplets: the one to act on, by its address (see `droplet.addresses`)
        #[arg(long, value_name = "ADDRESS")]
        droplet: Option<std::net::IpAddr>,
        /// Execute (without it, print the operation and run nothing)
        #[arg(long)]
        yes: bool,
    },
    /// What a diagnostic code means, an example, and the fix (like `rustc --explain`)
    #[command(after_help = examples![
        ("alembic explain EXP003", "why a droplet service may not publish a port"),
        ("alembic explain sec001 --json", "the same entry as JSON (codes are case-insensitive)"),
    ])]
    Explain {
        /// A diagnostic code such as EXP003
        code: String,
    },
    /// Shell completions on stdout
    #[command(after_help = examples![
        ("alembic completions bash > ~/.local/share/bash-completion/completions/alembic", "bash"),
        ("alembic completions zsh > ~/.zfunc/_alembic", "zsh (with ~/.zfunc on $fpath)"),
        ("alembic completions fish > ~/.config/fish/completions/alembic.fish", "fish"),
    ])]
    Completions { shell: Shell },
    /// Regenerate docs/codes.md and docs/config.md from the rule data and the schema
    #[command(hide = true)]
    GenerateDocs {
        /// The repository's docs/ directory
        #[arg(long, value_name = "DIR", default_value = "docs")]
        out: PathBuf,
    },
    /// Print the alembic(1) man page (roff) on stdout: `alembic man > alembic.1`
    #[command(after_help = examples![
        ("alembic man > alembic.1", "write the man page"),
        ("alembic man | man -l -", "read it"),
    ])]
    Man,
    /// Per droplet workload: release, container state, health, image; drift from the ledger
    #[command(after_help = examples![
        ("alembic status", "release, state, health and image per workload"),
        ("alembic status --json", "the same as JSON"),
        ("alembic status --droplet 203.0.113.21", "one droplet of several (default: all)"),
    ])]
    Status {
        /// On several droplets: only this one (default: every droplet)
        #[arg(long, value_name = "ADDRESS")]
        droplet: Option<std::net::IpAddr>,
    },
    /// A droplet workload's logs, over ssh
    #[command(after_help = examples![
        ("alembic logs council-api --tail 100", "the last 100 lines"),
        ("alembic logs council-api -f --since 10m", "follow, from ten minutes ago"),
        ("alembic logs council-api --droplet 203.0.113.21", "on one droplet of several"),
    ])]
    Logs {
        workload: String,
        /// On several droplets: the one to act on, by its address (see `droplet.addresses`)
        #[arg(long, value_name = "ADDRESS")]
        droplet: Option<std::net::IpAddr>,
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
    #[command(after_help = examples![
        ("alembic exec council-api -- env", "the container's environment (secrets redacted)"),
        ("alembic exec db -- psql -U app -c 'select 1'", "a command with arguments"),
        ("alembic exec council-api --droplet 203.0.113.21 -- env", "on one droplet of several"),
    ])]
    Exec {
        workload: String,
        /// On several droplets: the one to act on, by its address (see `droplet.addresses`)
        #[arg(long, value_name = "ADDRESS")]
        droplet: Option<std::net::IpAddr>,
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
}

/// Stages as `apply`/`plan` see them: `infra` is the Terraform stage of the droplet plane.
pub use alembic_deploy::facade::Stage as PlaneArg;

/// `rollback --plane`: the droplet is the only plane with releases, so it is the only value
/// offered (and completed); the type stays the one `plan` and `apply` use.
fn droplet_only() -> impl clap::builder::TypedValueParser<Value = PlaneArg> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["droplet"]).map(|_| PlaneArg::Droplet)
}

/// Shells `alembic completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command people see ends its --help with two or three examples that run it.
    #[test]
    fn every_visible_subcommand_has_examples() {
        let cli = Cli::command();
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = sub.get_name();
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.starts_with("Examples:\n"), "{name}: {help:?}");
            let runs: Vec<&str> = help
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("alembic "))
                .collect();
            assert!((2..=3).contains(&runs.len()), "{name}: {runs:?}");
            assert!(
                runs.iter().all(|r| r.contains(&format!(" {name}"))),
                "{name}: an example runs another command: {runs:?}"
            );
        }
    }
}
