//! The `alembic` command line: argument parsing, config discovery, one module per command, and
//! the view layer. Commands return data and an exit code ([`view::Outcome`]); [`run`] renders
//! it once, as text (stdout is data, stderr is talk) or as JSON on stdout, errors included.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod docs;
pub mod exit;
pub mod interrupt;
pub mod output;
pub mod sarif;
pub mod view;

use std::ffi::OsString;

use clap::Parser;
use serde_json::json;

use view::{Failure, Mode, Outcome};

/// Run the CLI with `args` (including argv[0]); returns the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    match cli::Cli::try_parse_from(&args) {
        Ok(c) => cmd::dispatch(c),
        Err(e) => usage(e, json_requested(&args)),
    }
}

/// Whether the command line asks for JSON, read before clap has parsed it (a usage error must
/// answer in the mode asked for): `--json`, `--format json` or `--format=json`, before `--`.
fn json_requested(args: &[OsString]) -> bool {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str().unwrap_or(""))
        .take_while(|a| *a != "--")
        .collect();
    args.iter().any(|a| *a == "--json" || *a == "--format=json")
        || args.windows(2).any(|w| w == ["--format", "json"])
}

/// A clap answer: `--help`/`--version` (exit 0) or a usage error (exit 2). For humans clap
/// prints it as it always does; in JSON mode it is a document on stdout.
fn usage(e: clap::Error, json: bool) -> i32 {
    use clap::error::ErrorKind;
    let code = if e.use_stderr() {
        exit::USAGE
    } else {
        exit::OK
    };
    if !json {
        let _ = e.print();
        return code;
    }
    let text = e.render().to_string();
    let outcome = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            if code == exit::OK =>
        {
            Outcome::new(
                code,
                view::Document(json!({"format_version": 1, "help": text})),
            )
        }
        ErrorKind::DisplayVersion => Outcome::new(
            code,
            view::Document(json!({"format_version": 1, "version": text.trim()})),
        ),
        kind => {
            // clap's text: `error: <message>`, then tips and the usage line.
            let mut parts = text.splitn(2, '\n');
            let first = parts.next().unwrap_or_default();
            let message = first.strip_prefix("error: ").unwrap_or(first).trim();
            // clap's tips (`a similar subcommand exists: 'logs'`) are the hint; the usage
            // line and "try --help" are for terminals.
            let tips: Vec<&str> = parts
                .next()
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().strip_prefix("tip: "))
                .collect();
            let hint = if tips.is_empty() {
                "`alembic --help` lists the commands and their options".to_owned()
            } else {
                tips.join("; ")
            };
            Outcome::from(
                Failure::usage(clap_code(kind), message)
                    .exit(code)
                    .hint(hint),
            )
        }
    };
    view::show(Mode::Json, outcome)
}

/// clap's error kinds as stable snake_case codes (`unknown_argument`, ...).
fn clap_code(kind: clap::error::ErrorKind) -> &'static str {
    use clap::error::ErrorKind as K;
    match kind {
        K::InvalidValue => "invalid_value",
        K::UnknownArgument => "unknown_argument",
        K::InvalidSubcommand => "invalid_subcommand",
        K::NoEquals => "no_equals",
        K::ValueValidation => "value_validation",
        K::TooManyValues => "too_many_values",
        K::TooFewValues => "too_few_values",
        K::WrongNumberOfValues => "wrong_number_of_values",
        K::ArgumentConflict => "conflicting_flags",
        K::MissingRequiredArgument => "missing_required_argument",
        K::MissingSubcommand | K::DisplayHelpOnMissingArgumentOrSubcommand => "missing_subcommand",
        K::InvalidUtf8 => "invalid_utf8",
        _ => "usage",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_seen_before_parsing() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(json_requested(&a(&["alembic", "check", "--json"])));
        assert!(json_requested(&a(&[
            "alembic", "scan", "--format", "json", "x"
        ])));
        assert!(json_requested(&a(&["alembic", "scan", "--format=json"])));
        assert!(!json_requested(&a(&[
            "alembic", "exec", "w", "--", "x", "--json"
        ])));
        assert!(!json_requested(&a(&[
            "alembic", "check", "--format", "sarif"
        ])));
    }
}
