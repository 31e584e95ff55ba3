//! Why a Terraform step could not run or was refused.

use super::*;

#[derive(Debug)]
pub(crate) enum TfError {
    Exec(ExecError),
    /// A terraform step exited with an error; `stderr` is Terraform's own message, already
    /// passed through the apply's [`Redactor`] (its stdout when stderr was empty).
    Failed {
        step: String,
        status: i32,
        stderr: String,
    },
    /// `show -json` was not the document we expect.
    BadShowJson(String),
    /// The plan replaces protected resources and `--allow-replace` was not given.
    ReplaceRefused(Vec<ResourceChange>),
    /// The configuration in the Terraform directory is not the fresh render: nothing ran on it.
    Drift {
        dir: PathBuf,
        files: Vec<Drift>,
    },
    /// The private plan directory could not be made, or the plan file not made private.
    PlanDir(std::io::Error),
}

impl fmt::Display for TfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TfError::Exec(e) => write!(f, "{e}"),
            TfError::Failed {
                step,
                status,
                stderr,
            } => write!(f, "{step} failed (exit {status}): {}", stderr.trim()),
            TfError::BadShowJson(e) => write!(f, "cannot read the plan from `show -json`: {e}"),
            TfError::ReplaceRefused(rs) => {
                write!(f, "refusing to apply: the plan replaces ")?;
                let what: Vec<String> = rs
                    .iter()
                    .map(|r| {
                        let why = if r.replace_because.is_empty() {
                            String::new()
                        } else {
                            format!(", forced by {}", r.replace_because.join(", "))
                        };
                        format!("{} ({}{why})", r.address, r.action.describe())
                    })
                    .collect();
                write!(
                    f,
                    "{}; replacing the droplet or its reserved IP destroys the server or changes \
                     its public address; re-run with --allow-replace if that is intended",
                    what.join(", ")
                )
            }
            TfError::Drift { dir, files } => {
                writeln!(
                    f,
                    "the Terraform configuration in {} is not what alembic renders from this config; terraform was not run on it:",
                    dir.display()
                )?;
                for d in files {
                    match &d.kind {
                        DriftKind::Unknown => writeln!(
                            f,
                            "  unknown file {}: Terraform would load it, alembic did not render it",
                            d.name
                        )?,
                        DriftKind::Changed => {
                            writeln!(f, "  {} differs from the fresh render", d.name)?
                        }
                        DriftKind::Missing => {
                            writeln!(f, "  {} is missing (not rendered yet)", d.name)?
                        }
                        DriftKind::Unreadable(e) if d.name.is_empty() => {
                            writeln!(f, "  cannot read the directory: {e}")?
                        }
                        DriftKind::Unreadable(e) => writeln!(f, "  cannot read {}: {e}", d.name)?,
                    }
                }
                for d in files.iter().filter(|d| !d.diff.is_empty()) {
                    write!(f, "{}", d.diff)?;
                    if !d.diff.ends_with('\n') {
                        writeln!(f)?;
                    }
                }
                write!(
                    f,
                    "hint: `alembic render` rewrites the rendered files; keep hand-written Terraform outside {} (alembic applies only what it renders)",
                    dir.display()
                )
            }
            TfError::PlanDir(e) => write!(f, "cannot prepare the private plan directory: {e}"),
        }
    }
}

impl std::error::Error for TfError {}

impl TfError {
    /// DESIGN.md exit codes: a refused replacement is a problem with what the config asks for
    /// (1); anything else failed at run time (3).
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            TfError::ReplaceRefused(_) | TfError::Drift { .. } => 1,
            _ => 3,
        }
    }
}

impl From<ExecError> for TfError {
    fn from(e: ExecError) -> Self {
        TfError::Exec(e)
    }
}

// The subset of Terraform's JSON plan format (format_version 1.x) the summary needs.
