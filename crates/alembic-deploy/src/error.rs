//! Why a droplet deploy could not be planned or applied, and what failed.

use crate::exec::ExecError;

/// Log lines of a failing service shown with a failure.
pub(crate) const LOG_LINES: usize = 20;

/// Why the droplet plane could not be planned or applied.
#[derive(Debug)]
pub(crate) enum DeployError {
    /// The config or rendered artifacts cannot be deployed (exit 1).
    Config(String),
    /// The droplet is provisioned by the infra plane, which has not given its address yet
    /// (exit 3): apply the infra plane first.
    AddressUnknown(String),
    /// ssh could not reach the droplet (exit 3).
    Unreachable(String),
    /// Another apply holds a live lease (exit 3).
    LeaseHeld(String),
    /// The lease was taken over while this apply ran (it stalled past its expiry): the fenced
    /// steps refused to run, so nothing was changed after it was lost (exit 3). Names who
    /// holds it now.
    LeaseLost(String),
    /// The droplet moved on since the plan was made (exit 3).
    Stale(String),
    /// A remote step failed before anything was switched (exit 3).
    Step {
        step: String,
        detail: String,
    },
    /// The release failed; the previous one is serving again (exit 3).
    RolledBack {
        failed: u64,
        to: u64,
        failure: Failure,
    },
    /// The first release failed: nothing was serving before it, so there is nothing to roll
    /// back to; the failed release was brought down (`stopped: Err` says why it could not be).
    Failed {
        failed: u64,
        stopped: Result<(), String>,
        failure: Failure,
    },
    /// A rolling deploy across several droplets failed on one of them (exit 3): which one,
    /// why, and what `droplet.rollout.on_failure` did about it.
    Rollout {
        droplet: String,
        error: Box<DeployError>,
        outcome: String,
    },
    Exec(ExecError),
}

/// What went wrong with a release, and the evidence.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub what: String,
    /// `(service, last log lines)`.
    pub logs: Vec<(String, String)>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)?;
        for (svc, lines) in &self.logs {
            write!(f, "\n--- last {LOG_LINES} log lines of {svc} ---\n{lines}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployError::Config(m) => f.write_str(m),
            DeployError::AddressUnknown(why) => write!(
                f,
                "the droplet's address is not known yet: {why}\n\
                 hint: apply the infra plane first (`alembic apply --plane infra --yes`, or \
                 `alembic apply --yes` for every plane): it creates the droplet and the \
                 `reserved_ip` output the droplet plane deploys to"
            ),
            DeployError::Unreachable(m) => write!(f, "cannot reach the droplet over ssh: {m}"),
            DeployError::LeaseHeld(who) => write!(f, "another apply holds the lease: {who}"),
            DeployError::LeaseLost(who) => write!(
                f,
                "lost the deploy lease while applying: another apply took it over, and it is \
                 now held by {who}; this apply changed nothing on the droplet after losing it \
                 (every step that switches `current`, writes the ledger or runs compose \
                 checks the lease first)"
            ),
            DeployError::Stale(m) => f.write_str(m),
            DeployError::Step { step, detail } => write!(f, "{step} failed: {detail}"),
            DeployError::RolledBack {
                failed,
                to,
                failure,
            } => write!(
                f,
                "release {failed} failed; rolled back to release {to}\nwhy: {failure}"
            ),
            DeployError::Failed {
                failed,
                stopped: Ok(()),
                failure,
            } => write!(
                f,
                "release {failed} failed; nothing was serving before it (it was the first \
                 release), so there is nothing to roll back to: the failed release was stopped \
                 (docker compose down, volumes kept)\nwhy: {failure}"
            ),
            DeployError::Failed {
                failed,
                stopped: Err(e),
                failure,
            } => write!(
                f,
                "release {failed} failed; nothing was serving before it (it was the first \
                 release), so there is nothing to roll back to, and stopping the failed release \
                 failed too ({e}): it may still be running\nwhy: {failure}"
            ),
            DeployError::Rollout {
                droplet,
                error,
                outcome,
            } => write!(f, "droplet {droplet} failed: {error}\n{outcome}"),
            DeployError::Exec(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DeployError {}

impl DeployError {
    /// DESIGN exit codes: 1 for the user's config, 3 for everything that failed at run time.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            DeployError::Config(_) => crate::exit::PROBLEMS,
            DeployError::Exec(ExecError::SecretUnset { .. } | ExecError::SecretUnusable { .. }) => {
                crate::exit::PROBLEMS
            }
            DeployError::Rollout { error, .. } => error.exit_code(),
            _ => crate::exit::RUNTIME,
        }
    }
}

impl From<ExecError> for DeployError {
    fn from(e: ExecError) -> Self {
        DeployError::Exec(e)
    }
}
