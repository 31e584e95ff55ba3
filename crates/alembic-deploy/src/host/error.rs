//! Why the host stage could not be planned or applied.

use super::*;

#[derive(Debug)]
pub(crate) enum HostError {
    NoHome,
    NoUid(String),
    /// The host plane is the operator's machine; a CI runner is not it.
    InCi,
    /// A rendered plist could not be read back (it is our own artifact, so this is a bug).
    BadPlist {
        path: String,
        error: String,
    },
    Exec(ExecError),
    Failed {
        step: String,
        command: String,
        status: i32,
        stderr: String,
    },
    /// `$ALEMBIC_SECRETS_FILE` is not an absolute path.
    RelativeSecretsFile(PathBuf),
    /// Managed secrets neither the environment nor the secrets file holds.
    SecretsMissing {
        names: Vec<String>,
        file: PathBuf,
    },
    /// The existing secrets file is a symlink, not a regular file, or of another mode/owner.
    SecretsFileRefused {
        why: String,
    },
    /// A started daemon listens on an address it was not given.
    ListensElsewhere {
        workload: String,
        listens: Vec<String>,
        declared: String,
        /// Host apply stopped it afterwards.
        stopped: bool,
    },
    /// A started daemon did not listen on its declared address within the wait.
    NotListening {
        workload: String,
        listens: Vec<String>,
        declared: String,
        waited: Duration,
    },
}

impl HostError {
    /// The exit code (DESIGN.md): 1 for what the user must fix in the environment or config
    /// (a missing secret, a refused file, a relative override); 3 for run-time failures.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            HostError::RelativeSecretsFile(_)
            | HostError::SecretsMissing { .. }
            | HostError::SecretsFileRefused { .. }
            | HostError::Exec(ExecError::SecretUnset { .. }) => 1,
            _ => 3,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NoHome => write!(f, "HOME is not set: cannot locate the host plane's files"),
            HostError::NoUid(e) => write!(f, "cannot find the current uid (`id -u`): {e}"),
            HostError::InCi => write!(
                f,
                "refusing to apply the host plane from CI (CI or GITHUB_ACTIONS is set): the host \
                 plane is the operator's own machine; run `alembic apply --plane host --yes` there"
            ),
            HostError::BadPlist { path, error } => write!(f, "cannot read {path}: {error}"),
            HostError::Exec(e) => write!(f, "{e}"),
            HostError::Failed {
                step,
                command,
                status,
                stderr,
            } => write!(
                f,
                "{step} failed (exit {status}): {command}: {}",
                stderr.trim()
            ),
            HostError::RelativeSecretsFile(p) => write!(
                f,
                "ALEMBIC_SECRETS_FILE must be an absolute path, not {}",
                p.display()
            ),
            HostError::SecretsMissing { names, file } => write!(
                f,
                "secret{} {} {} set neither in the environment nor in {}; set {} and apply again",
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" },
                file.display(),
                if names.len() == 1 { "it" } else { "them" },
            ),
            HostError::SecretsFileRefused { why } => {
                write!(f, "refusing the host secrets file: {why}")
            }
            HostError::ListensElsewhere {
                workload,
                listens,
                declared,
                stopped,
            } => write!(
                f,
                "host workload `{workload}` listens on {} but declares {declared}{} (make its \
                 command use {{bind}}/{{port}} or read $HOST/$PORT)",
                listens.join(", "),
                if *stopped { "; it was stopped" } else { "" }
            ),
            HostError::NotListening {
                workload,
                listens,
                declared,
                waited,
            } => write!(
                f,
                "host workload `{workload}` does not listen on its declared {declared} after {}s{}",
                waited.as_secs_f32(),
                if listens.is_empty() {
                    " (it listens on nothing)".to_owned()
                } else {
                    format!(" (it listens on {})", listens.join(", "))
                }
            ),
        }
    }
}

impl std::error::Error for HostError {}

impl From<ExecError> for HostError {
    fn from(e: ExecError) -> Self {
        HostError::Exec(e)
    }
}
