//! `alembic bootstrap`: prepare a server once, over the system `ssh`, with the same script the
//! provisioned droplet's cloud-init runs (`alembic_render::bootstrap`).
//!
//! The first connection is as `root` (a fresh DigitalOcean droplet or a BYO server), or as a
//! sudo user (`--user`), in which case the script runs under `sudo -n` (never a password
//! prompt: BatchMode ssh has no terminal). After the first run root logins are refused, so
//! later runs go through `--user <ssh_user>`, whom the script gave passwordless sudo.
//!
//! The script travels on stdin into `sh -s`: nothing is written to the server before it runs,
//! and its `main` call on the last line means a truncated upload runs nothing. Its report
//! lines (`alembic-bootstrap: STEP changed|unchanged`) become [`Outcome`].

use alembic_config::Topology;
use alembic_render::bootstrap::{parse_report_line, ReportLine};
use serde::Serialize;

use crate::exec::{ExecError, Executor};
use crate::ops::{Op, Stdin};
use crate::ssh::SshTarget;

pub(crate) const PLANE: crate::stage::Stage = crate::stage::Stage::Droplet;

/// ssh's exit status when the connection itself failed (unreachable, auth refused, host key).
const SSH_FAILED: i32 = 255;

/// Who logs in to run the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Login {
    /// As root: the script runs directly.
    Root,
    /// As this sudo user: the script runs under `sudo -n`.
    Sudo(String),
}

impl Login {
    /// `--user U` (root itself counts as root).
    pub(crate) fn from_flag(user: Option<&str>) -> Login {
        match user {
            None | Some("root") => Login::Root,
            Some(u) => Login::Sudo(u.to_owned()),
        }
    }

    pub(crate) fn user(&self) -> &str {
        match self {
            Login::Root => "root",
            Login::Sudo(u) => u,
        }
    }
}

/// The op that runs the bootstrap on `host`: ssh in as `login`, feed the script to `sh -s`.
pub(crate) fn bootstrap_op(t: &Topology, login: &Login, host: &str) -> (SshTarget, Op) {
    let target = SshTarget::new(login.user(), host, t.droplet.ssh_port.get());
    let mut argv: Vec<String> = Vec::new();
    if let Login::Sudo(_) = login {
        argv.extend(["sudo", "-n"].map(String::from));
    }
    argv.extend(["sh", "-s"].map(String::from));
    let script = alembic_render::bootstrap::script(t);
    let op = target
        .remote(PLANE, "run bootstrap script", &argv)
        .with_stdin(Stdin::Bytes {
            data: script.into_bytes(),
        });
    (target, op)
}

/// How a bootstrap run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Every step ran; `changed` of them changed something (0: the server was already done).
    Done {
        /// How many steps reported a change.
        changed: u32,
    },
    /// A step failed; the script stopped there.
    StepFailed {
        /// The step's name, as the script reported it.
        step: String,
        /// Why it failed: the last lines of its output.
        reason: String,
    },
    /// ssh could not connect or log in.
    Unreachable {
        /// What ssh said.
        message: String,
    },
    /// The remote side stopped without a report (sudo refused, shell missing, connection lost).
    Aborted {
        /// The exit status of the remote run.
        status: i32,
        /// The last lines of its standard error.
        message: String,
    },
}

impl Outcome {
    /// True when every step ran ([`Outcome::Done`]).
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }
}

/// Every report line of a run, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Each step the script reported, in order.
    pub steps: Vec<ReportLine>,
    /// How the run ended.
    pub outcome: Outcome,
}

/// The last few lines of stderr: enough to say why, never a wall of apt output.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Read the script's report from its exit status and output.
pub(crate) fn read_report(status: i32, stdout: &str, stderr: &str) -> Report {
    let mut steps = Vec::new();
    let mut done = None;
    let mut failed = None;
    for line in stdout.lines() {
        match parse_report_line(line) {
            Some(ReportLine::Done { changed }) => done = Some(changed),
            Some(ReportLine::Failed { step, reason }) => failed = Some((step, reason)),
            Some(step) => steps.push(step),
            None => {}
        }
    }
    let outcome = match (status, done, failed) {
        (0, Some(changed), None) => Outcome::Done { changed },
        (_, _, Some((step, reason))) => Outcome::StepFailed { step, reason },
        (SSH_FAILED, _, _) if steps.is_empty() => Outcome::Unreachable {
            message: tail(stderr, 3),
        },
        (status, _, _) => Outcome::Aborted {
            status,
            message: tail(stderr, 5),
        },
    };
    Report { steps, outcome }
}

/// Run the bootstrap op (or record it, in a dry run) and read its report.
pub(crate) fn run(ex: &mut Executor<'_>, op: &Op) -> Result<Report, ExecError> {
    let out = ex.run(op)?;
    Ok(read_report(
        out.status,
        &out.stdout_text(),
        &out.stderr_text(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let src = "version = 1\n[project]\nname = \"boot\"\ndomain = \"boot.example.com\"\n\
                   [droplet]\nname = \"boot-prod\"\nssh_user = \"deploy\"\nssh_port = 2222\n\
                   address = \"203.0.113.20\"\n[ci]\nrepository = \"acme/boot\"\n";
        alembic_config::load_str("alembic.toml", src)
            .topology
            .expect("valid")
    }

    #[test]
    fn root_login_pipes_the_script_into_sh() {
        let t = topology();
        let (target, op) = bootstrap_op(&t, &Login::from_flag(None), "203.0.113.20");
        assert_eq!(target.user, "root");
        let n = op.args.len();
        assert_eq!(op.args[n - 3..], ["--", "root@203.0.113.20", "sh -s"]);
        assert!(op.args.windows(2).any(|w| w == ["-p", "2222"]));
        let Stdin::Bytes { data } = &op.stdin else {
            panic!("the script goes over stdin")
        };
        assert_eq!(data, alembic_render::bootstrap::script(&t).as_bytes());
    }

    #[test]
    fn a_sudo_user_runs_it_under_sudo_without_a_prompt() {
        let (_, op) = bootstrap_op(&topology(), &Login::from_flag(Some("admin")), "192.0.2.1");
        let n = op.args.len();
        assert_eq!(op.args[n - 2..], ["admin@192.0.2.1", "sudo -n sh -s"]);
        assert_eq!(Login::from_flag(Some("root")), Login::Root);
    }

    #[test]
    fn the_cloud_init_wait_is_a_read_only_remote_script() {
        let (target, _) = bootstrap_op(&topology(), &Login::Sudo("deploy".into()), "192.0.2.1");
        let op = crate::droplet::wait_bootstrap_op(&target, 600);
        assert!(!op.mutating);
        let words = shlex::split(op.args.last().unwrap()).unwrap();
        assert_eq!(words[..2], ["sh", "-c"]);
        assert!(words[2].contains("cloud-init status"), "{}", words[2]);
        assert_eq!(words[3..], ["alembic", "600"]);
    }

    #[test]
    fn reports_are_read_from_the_script_output() {
        let out = "alembic-bootstrap: packages unchanged debian 13\n\
                   noise from systemctl\n\
                   alembic-bootstrap: sshd unchanged\n\
                   alembic-bootstrap: done changed=0\n";
        let r = read_report(0, out, "");
        assert_eq!(r.outcome, Outcome::Done { changed: 0 });
        assert_eq!(r.steps.len(), 2);

        let out = "alembic-bootstrap: failed packages: unsupported distribution 'fedora 40'\n";
        let r = read_report(1, out, "");
        assert_eq!(
            r.outcome,
            Outcome::StepFailed {
                step: "packages".into(),
                reason: "unsupported distribution 'fedora 40'".into()
            }
        );

        let r = read_report(
            255,
            "",
            "ssh: connect to host 192.0.2.1 port 22: Connection refused\n",
        );
        assert!(matches!(r.outcome, Outcome::Unreachable { .. }), "{r:?}");

        // Regression: a script cut short (no `done` line) is never taken for success.
        let r = read_report(0, "alembic-bootstrap: packages changed\n", "");
        assert!(matches!(r.outcome, Outcome::Aborted { .. }), "{r:?}");

        let r = read_report(1, "", "sudo: a password is required\n");
        assert_eq!(
            r.outcome,
            Outcome::Aborted {
                status: 1,
                message: "sudo: a password is required".into()
            }
        );
    }
}
