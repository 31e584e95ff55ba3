//! The day-two façade: what `status`, `logs`, `exec` and `bootstrap` need, without the binary
//! building targets, terraform runners or executors by hand. A [`Session`] is the droplet
//! reached over the deploy's ssh (its control dir ready); [`Bootstrap`] is the one bootstrap
//! step for a server; [`wait_for_cloud_init`] is the wait a provisioned droplet gets before its
//! first deploy. Failures come back as [`Failed`]: a stable id, the message (names only,
//! never a secret's value) and the exit code.
//!
//! Doctor's checks and the secret inventory are pure report builders: re-exported here so the
//! binary reaches them through this façade.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use alembic_config::{Plane, Topology};

use crate::droplet::{self, Target};
use crate::exec::{Executor, Goal, ProcessEnv, Redactor};
use crate::ops::Op;
use crate::{bootstrap, exit, terraform};

pub use crate::bootstrap::{Outcome as BootstrapOutcome, Report as BootstrapReport};
pub use crate::daytwo::{DropletStatus, Status, WorkloadStatus};
pub use crate::doctor::{
    config_checks, config_unreadable, drift_check, droplet_address, online_checks, policy_check,
    secret_checks, tool_checks, Report as DoctorReport, SystemProbe,
};
pub use crate::exec::Stream;
pub use crate::secrets::{inventory, missing, to_human, to_json, Context, SecretRow};

/// Why a day-two command could not do its work.
#[derive(Debug)]
pub struct Failed {
    /// A stable snake_case id (`ssh_unreachable`, `droplet_unreadable`, ...).
    pub id: &'static str,
    /// What went wrong.
    pub message: String,
    /// The exit code it ends the command with (DESIGN: 1 refused, 3 run time).
    pub exit: i32,
}

impl Failed {
    fn new(id: &'static str, message: impl std::fmt::Display, exit: i32) -> Failed {
        Failed {
            id,
            message: message.to_string(),
            exit,
        }
    }
}

/// Whether `t` has several compose droplets (each with its own root and project): day-two
/// commands then act on each droplet, or on the one `--droplet` names. A swarm's manager or a
/// cluster is one target, whatever the number of droplets.
fn is_fleet(t: &Topology) -> bool {
    t.droplet.droplet_count() > 1 && t.droplet.scale.engine == alembic_config::Engine::Compose
}

/// Refuse `alembic <verb>` without `--droplet` on a fleet, before any step: the message names
/// the droplets (the configured addresses, or where Terraform lists the provisioned ones).
fn droplet_required(t: &Topology, verb: &str) -> Failed {
    let n = t.droplet.droplet_count();
    let existing = t.droplet.existing_addresses();
    let (which, example) = if existing.is_empty() {
        (
            "the provisioned droplets' addresses are Terraform's `droplet_ips` output \
             (`terraform -chdir=infra/terraform output droplet_ips`)"
                .to_owned(),
            "ADDRESS".to_owned(),
        )
    } else {
        let list: Vec<String> = existing.iter().map(|a| a.to_string()).collect();
        (format!("droplets: {}", list.join(", ")), list[0].clone())
    };
    Failed::new(
        "droplet_required",
        format!(
            "alembic.toml: [droplet]: `alembic {verb}` acts on one droplet, and this config has \
             {n} ({which})\nhint: name one with --droplet, e.g. `alembic {verb} --droplet \
             {example} ...`"
        ),
        exit::PROBLEMS,
    )
}

/// The droplets a day-two command reaches, each as its own target (label = its address): on a
/// fleet every droplet (`all`) or the one `droplet` names; on one droplet that droplet, which
/// `droplet` must name if given. Read-only (a provisioned droplet's address comes from
/// `terraform output`).
fn reach(
    t: &Topology,
    base_dir: &Path,
    droplet: Option<IpAddr>,
    verb: &str,
    all: bool,
) -> Result<Vec<(String, Target)>, Failed> {
    if !is_fleet(t) {
        let address = address(t, base_dir);
        let target = Target::from_topology(t, &address);
        let ip = target
            .ip()
            .map_err(|e| Failed::new("droplet_address_unknown", &e, e.exit_code()))?;
        if let Some(wanted) = droplet.filter(|w| *w != ip) {
            return Err(Failed::new(
                "unknown_droplet",
                format!("--droplet {wanted}: this config has one droplet, at {ip}"),
                exit::PROBLEMS,
            ));
        }
        return Ok(vec![(ip.to_string(), target)]);
    }
    if droplet.is_none() && !all {
        return Err(droplet_required(t, verb));
    }
    let addresses = droplet::resolve_addresses(
        t,
        tf_runner(t, base_dir).as_ref(),
        &mut Executor::new(Goal::DryRun, &ProcessEnv),
    );
    let chosen: Vec<usize> = match droplet {
        Some(ip) => vec![droplet::select(&addresses, ip)
            .map_err(|m| Failed::new("unknown_droplet", m, exit::PROBLEMS))?],
        None => (0..addresses.len()).collect(),
    };
    let mut out = Vec::new();
    for i in chosen {
        let (_, target) = droplet::member_target(t, &addresses[i], i, Target::from_topology)
            .map_err(|e| Failed::new("droplet_root_unusable", &e, e.exit_code()))?;
        target
            .ip()
            .map_err(|e| Failed::new("droplet_address_unknown", &e, e.exit_code()))?;
        out.push((droplet::label(&addresses[i], i), target));
    }
    Ok(out)
}

/// The terraform runner that reads a provisioned droplet's address (None: not provisioned,
/// or no terraform/tofu on PATH).
fn tf_runner(t: &Topology, base_dir: &Path) -> Option<terraform::Runner> {
    t.droplet
        .is_provisioned()
        .then(|| {
            terraform::find_program()
                .map(|p| terraform::Runner::for_topology(&p.display().to_string(), base_dir, t))
        })
        .flatten()
}

/// The droplet's address: `droplet.address`, or the provisioned droplet's reserved IP from
/// `terraform output` (read-only).
fn address(t: &Topology, base_dir: &Path) -> droplet::Address {
    droplet::resolve_address(
        t,
        tf_runner(t, base_dir).as_ref(),
        &mut Executor::new(Goal::DryRun, &ProcessEnv),
    )
}

/// The compose services day two knows: the edge, then the droplet workloads.
pub fn services(t: &Topology) -> Vec<String> {
    std::iter::once(alembic_render::compose::EDGE_SERVICE.to_owned())
        .chain(t.on_plane(Plane::Droplet).map(|w| w.name.to_string()))
        .collect()
}

/// One droplet over the deploy's ssh. [`Session::close`] ends the ssh master it opened.
pub struct Session {
    target: Target,
    services: Vec<String>,
    redact: Redactor,
    /// The droplet's address when it is one of several (None: the config's only droplet).
    member: Option<String>,
}

impl Session {
    /// The droplet `alembic <verb>` acts on: the config's only one, or on a fleet the one
    /// `droplet` (`--droplet`) names (refused without it, before any step). Resolves the
    /// address and prepares the ssh control dir (no connection yet).
    pub fn open(
        t: &Topology,
        base_dir: &Path,
        droplet: Option<IpAddr>,
        verb: &str,
    ) -> Result<Session, Failed> {
        let mut v = Session::open_each(t, base_dir, droplet, verb, false)?;
        Ok(v.remove(0))
    }

    /// Every droplet `alembic <verb>` acts on: on a fleet all of them in the configured order
    /// (or the one `droplet` names); else the only one.
    pub fn open_all(
        t: &Topology,
        base_dir: &Path,
        droplet: Option<IpAddr>,
        verb: &str,
    ) -> Result<Vec<Session>, Failed> {
        Session::open_each(t, base_dir, droplet, verb, true)
    }

    fn open_each(
        t: &Topology,
        base_dir: &Path,
        droplet: Option<IpAddr>,
        verb: &str,
        all: bool,
    ) -> Result<Vec<Session>, Failed> {
        let fleet = is_fleet(t);
        let names = t.workload_secret_names(Plane::Droplet);
        let redact = Redactor::new(&names, &ProcessEnv);
        let mut out: Vec<Session> = Vec::new();
        for (label, target) in reach(t, base_dir, droplet, verb, all)? {
            if let Err(e) = target.ssh.prepare() {
                // No connection was opened yet: only the control dirs made so far go.
                for s in &out {
                    s.target.ssh.cleanup();
                }
                return Err(Failed::new(
                    "ssh_control_dir",
                    format!("cannot create the ssh control dir: {e}"),
                    exit::RUNTIME,
                ));
            }
            out.push(Session {
                target,
                services: services(t),
                redact: redact.clone(),
                member: fleet.then_some(label),
            });
        }
        Ok(out)
    }

    /// The droplet's address when the config has several (None: its only droplet).
    pub fn droplet(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// Refuse a workload that is not a droplet workload (or the edge).
    pub fn check_workload(&self, workload: &str) -> Result<(), Failed> {
        if self.services.iter().any(|w| w == workload) {
            return Ok(());
        }
        Err(Failed::new(
            "unknown_workload",
            format!(
                "no droplet workload named {workload:?} (droplet workloads: {})",
                self.services.join(", ")
            ),
            exit::PROBLEMS,
        ))
    }

    /// What runs against what the ledger says should (read-only).
    pub fn status(&self) -> Result<Status, Failed> {
        let mut ex = Executor::new(Goal::Apply, &ProcessEnv);
        let out = ex
            .query(&crate::daytwo::status_op(&self.target))
            .map_err(|e| Failed::new("ssh_failed", &e, exit::RUNTIME))?;
        if out.status == 255 {
            return Err(Failed::new(
                "ssh_unreachable",
                format!(
                    "cannot reach the droplet over ssh: {}",
                    out.stderr_text().trim()
                ),
                exit::RUNTIME,
            ));
        }
        if !out.success() {
            return Err(Failed::new(
                "droplet_unreadable",
                format!("reading the droplet failed: {}", out.stderr_text().trim()),
                exit::RUNTIME,
            ));
        }
        crate::daytwo::interpret_status(&out.stdout_text(), &self.services)
            .map_err(|e| Failed::new("droplet_unreadable", &e, e.exit_code()))
    }

    /// Stream `op`'s output to `sink`, the droplet's secret values redacted; its exit status.
    /// When ssh itself failed (255), the failure names ssh's reason (its last line on stderr),
    /// as `status` and the deploy's failures do.
    fn stream(&self, op: &Op, sink: &mut dyn FnMut(Stream, &str)) -> Result<i32, Failed> {
        let mut ex = Executor::new(Goal::Apply, &ProcessEnv);
        let mut last_err = String::new();
        let status = ex
            .stream(op, &mut |which, chunk| {
                let text = self.redact.clean(&String::from_utf8_lossy(chunk));
                if which == Stream::Stderr && !text.trim().is_empty() {
                    last_err = text.trim().to_owned();
                }
                sink(which, &text)
            })
            .map_err(|e| Failed::new("ssh_failed", &e, exit::RUNTIME))?;
        if status == 255 {
            let message = if last_err.is_empty() {
                "cannot reach the droplet over ssh".to_owned()
            } else {
                format!("cannot reach the droplet over ssh: {last_err}")
            };
            return Err(Failed::new("ssh_unreachable", message, exit::RUNTIME));
        }
        Ok(status)
    }

    /// The workload container's logs, streamed (redacted) to `sink`.
    pub fn logs(
        &self,
        workload: &str,
        follow: bool,
        since: Option<&str>,
        tail: Option<u64>,
        sink: &mut dyn FnMut(Stream, &str),
    ) -> Result<(), Failed> {
        let op = crate::daytwo::logs_op(&self.target, workload, follow, since, tail);
        match self.stream(&op, sink)? {
            0 => Ok(()),
            n => Err(Failed::new(
                "docker_logs_failed",
                format!("docker logs failed (exit {n})"),
                exit::RUNTIME,
            )),
        }
    }

    /// Run `cmd` in the workload's container, its output streamed (redacted) to `sink`; the
    /// command's own exit status.
    pub fn exec(
        &self,
        workload: &str,
        cmd: &[String],
        sink: &mut dyn FnMut(Stream, &str),
    ) -> Result<i32, Failed> {
        self.stream(&crate::daytwo::exec_op(&self.target, workload, cmd), sink)
    }

    /// End the ssh master and remove the control dir.
    pub fn close(self) {
        let _ = crate::exec::run_op(&self.target.ssh.close_master(droplet::PLANE), &ProcessEnv);
        self.target.ssh.cleanup();
    }
}

/// The bootstrap of one server: who logs in where, and the one op that runs the script.
pub struct Bootstrap {
    login: bootstrap::Login,
    host: String,
    target: crate::ssh::SshTarget,
    op: Op,
}

impl Bootstrap {
    /// The bootstrap for `t`'s server, logging in as `user` (default root).
    /// On several compose droplets, `droplet` (`--droplet`) names the one to bootstrap
    /// (refused without it, before any step); on one droplet it must be absent or its address.
    pub fn plan(
        t: &Topology,
        user: Option<&str>,
        droplet: Option<IpAddr>,
        base_dir: &Path,
    ) -> Result<Bootstrap, Failed> {
        let host = if is_fleet(t) {
            reach(t, base_dir, droplet, "bootstrap", false)?.remove(0).0
        } else {
            match address(t, base_dir).ip {
                Ok(ip) if droplet.is_some_and(|w| w != ip) => {
                    return Err(Failed::new(
                        "unknown_droplet",
                        format!(
                            "--droplet {}: this config has one droplet, at {ip}",
                            droplet.unwrap_or(ip)
                        ),
                        exit::PROBLEMS,
                    ))
                }
                Ok(ip) => ip.to_string(),
                Err(e) => {
                    return Err(Failed::new(
                        "droplet_address_unknown",
                        format!("cannot tell which server to bootstrap: {e}\nhint: set droplet.address, or apply the infra plane first"),
                        exit::RUNTIME,
                    ))
                }
            }
        };
        let login = bootstrap::Login::from_flag(user);
        let (target, op) = bootstrap::bootstrap_op(t, &login, &host);
        Ok(Bootstrap {
            login,
            host,
            target,
            op,
        })
    }

    /// The user it logs in as.
    pub fn user(&self) -> &str {
        self.login.user()
    }

    /// The server's address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The op that runs the script.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// Run the script over ssh and read its report.
    pub fn run(self) -> Result<BootstrapReport, Failed> {
        self.target.prepare().map_err(|e| {
            Failed::new(
                "ssh_control_dir",
                format!("cannot create the ssh control dir: {e}"),
                exit::RUNTIME,
            )
        })?;
        let mut ex = Executor::new(Goal::Apply, &ProcessEnv);
        let result = bootstrap::run(&mut ex, &self.op);
        let _ = crate::exec::run_op(&self.target.close_master(bootstrap::PLANE), &ProcessEnv);
        self.target.cleanup();
        result.map_err(|e| Failed::new("bootstrap_failed", e, exit::RUNTIME))
    }
}

/// A server reached over ssh with the deploy's options: `user@host:port`, an optional ssh
/// config file (`-F`) and the directory the control master's socket lives in (the caller's:
/// it is neither created elsewhere nor removed).
#[derive(Clone, Debug)]
pub struct SshLogin {
    /// The user logged in as.
    pub user: String,
    /// The server's address or name.
    pub host: String,
    /// Its ssh port.
    pub port: u16,
    /// An ssh config file passed as `-F`, if any.
    pub config: Option<PathBuf>,
    /// The directory holding the control master's socket.
    pub control_dir: PathBuf,
}

/// How the cloud-init wait ended: whether it succeeded (cloud-init done, disabled or absent)
/// and what it printed (the status, or `cloud-init status --long` after an error).
#[derive(Clone, Debug)]
pub struct Waited {
    /// The wait's script exited 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Wait, read-only, until cloud-init on `login`'s server has finished, at most `max_secs`: the
/// same op `alembic apply` runs before a provisioned droplet's first deploy, run through the
/// executor, its ssh control master closed afterwards. `Err` only when the wait could not run
/// (the control dir, or ssh itself); a wait that ran and failed is `Ok` with
/// [`Waited::success`] false.
pub fn wait_for_cloud_init(login: &SshLogin, max_secs: u32) -> Result<Waited, Failed> {
    let target = crate::ssh::SshTarget {
        user: login.user.clone(),
        host: login.host.clone(),
        port: login.port,
        config: login.config.clone(),
        control_dir: login.control_dir.clone(),
    };
    target.prepare().map_err(|e| {
        Failed::new(
            "ssh_control_dir",
            format!("cannot create the ssh control dir: {e}"),
            exit::RUNTIME,
        )
    })?;
    let wait = crate::droplet::wait_bootstrap_op(&target, u64::from(max_secs));
    let out = crate::exec::run_op(&wait, &ProcessEnv);
    let _ = crate::exec::run_op(&target.close_master(bootstrap::PLANE), &ProcessEnv);
    let out = out.map_err(|e| Failed::new("cloud_init_wait_failed", e, exit::RUNTIME))?;
    // A server without cloud-init (one bootstrapped by `alembic bootstrap`) has nothing to
    // wait for.
    let no_cloud_init = out.status == 127 && out.stderr_text().contains("cloud-init is not on");
    Ok(Waited {
        success: out.success() || no_cloud_init,
        stdout: out.stdout_text(),
        stderr: out.stderr_text(),
    })
}
