//! The droplet as a target: where it is, how it is reached, the ops each step runs, and its
//! state as read (ledger, release dirs, the current release's files).

use super::*;

/// What is on the droplet now.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteState {
    pub ledger: Ledger,
    /// sha256 of `ledger.json`'s bytes as read (None: there is none): the ledger write is
    /// refused unless the file is still exactly this.
    pub ledger_sha: Option<String>,
    /// Release dirs present.
    pub dirs: Vec<u64>,
    /// The current release's artifacts (hash from the ledger, text read back).
    pub old: BTreeMap<String, OldArtifact>,
}

impl RemoteState {
    /// What a stale-plan check compares (see [`unchanged`]).
    pub(crate) fn seen(&self) -> Seen<'_> {
        (self.ledger.current, &self.ledger_sha, &self.dirs)
    }
}

/// A droplet's current release, ledger sha and release dirs.
pub(crate) type Seen<'a> = (Option<u64>, &'a Option<String>, &'a [u64]);

/// Refuses (stale plan) unless the droplet is still as the plan saw it: the same current
/// release, the same ledger bytes, the same release dirs.
pub(crate) fn unchanged(now: Seen<'_>, planned: Seen<'_>) -> Result<(), DeployError> {
    if now != planned {
        return Err(DeployError::Stale(format!(
            "the droplet changed since this plan was made (current release {:?}, planned from {:?}); plan again",
            now.0, planned.0
        )));
    }
    Ok(())
}

/// The droplet as a deploy target.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub ssh: SshTarget,
    pub root: String,
    pub project: String,
    /// The droplet's IP, or why it is not known yet (ops then show [`UNKNOWN_ADDRESS`]).
    pub address: Result<IpAddr, String>,
    /// The read-only `terraform output` op the address comes from, shown first in plans.
    pub address_op: Option<Op>,
    pub https_port: u16,
    /// The port the edge serves plain HTTP on (`droplet.http_port`).
    pub http_port: u16,
    /// A balancer terminates TLS in front of the edge: routes are probed over plain HTTP.
    pub edge_http: bool,
    pub tls_internal: bool,
    pub keep: u32,
    pub probes: Vec<ProbeTarget>,
    /// Droplet workload (compose service) names.
    pub services: Vec<String>,
    /// Routed workload -> (container port, health path or `/`): where its own answer is read.
    pub upstream_health: BTreeMap<String, (u16, String)>,
    /// Seconds a route may take to answer healthy after `up` (`ALEMBIC_PROBE_TIMEOUT`, 60).
    pub probe_timeout: u64,
    /// A provisioned droplet is bootstrapped by alembic's cloud-init: seconds its deploy waits
    /// for cloud-init to finish (`ALEMBIC_BOOTSTRAP_TIMEOUT`, 900). None for an existing
    /// server (`droplet.address`): no cloud-init of ours runs there, so there is nothing to
    /// wait for (`alembic bootstrap` runs its steps to the end before it returns).
    pub bootstrap_timeout: Option<u64>,
}

impl Target {
    /// The target at `address` (see [`resolve_address`]). An unknown address still gives a
    /// target, so a plan can show every op, with [`UNKNOWN_ADDRESS`] in the IP's place.
    pub(crate) fn from_topology(t: &Topology, address: &Address) -> Target {
        let d = &t.droplet;
        let host = match &address.ip {
            Ok(ip) => ip.to_string(),
            Err(_) => UNKNOWN_ADDRESS.to_owned(),
        };
        let probes = t
            .routes()
            .map(|(w, r)| {
                let prefix = r.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
                let health = w.health.as_ref().map(|h| h.to_string());
                ProbeTarget {
                    workload: w.name.to_string(),
                    host: r.host.to_string(),
                    path: match health {
                        Some(h) => format!("{prefix}{h}"),
                        None if prefix.is_empty() => "/".to_owned(),
                        None => format!("{prefix}/"),
                    },
                }
            })
            .collect();
        Target {
            ssh: SshTarget::new(d.ssh_user.as_str(), &host, d.ssh_port.get()),
            root: d.root.to_string(),
            project: t.project.name.to_string(),
            address: address.ip.clone(),
            address_op: address.from.clone(),
            https_port: d.https_port.get(),
            http_port: d.http_port.get(),
            edge_http: d.scale.lb.as_ref().is_some_and(|lb| lb.terminates_tls()),
            tls_internal: d.tls == Tls::Internal,
            keep: d.keep_releases,
            probes,
            services: t
                .on_plane(Plane::Droplet)
                .map(|w| w.name.to_string())
                .collect(),
            probe_timeout: std::env::var(PROBE_TIMEOUT_ENV)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(60),
            bootstrap_timeout: d.is_provisioned().then_some(BOOTSTRAP_TIMEOUT_DEFAULT),
            upstream_health: t
                .routes()
                .filter_map(|(w, _)| {
                    let path = w.health.as_ref().map(|h| h.to_string());
                    Some((
                        w.name.to_string(),
                        (w.port?.get(), path.unwrap_or_else(|| "/".to_owned())),
                    ))
                })
                .collect(),
        }
    }

    /// The droplet's IP, or the error apply and rollback stop with when it is not known.
    pub(crate) fn ip(&self) -> Result<IpAddr, DeployError> {
        self.address.clone().map_err(DeployError::AddressUnknown)
    }

    /// How routes are probed: `https` on the https port, or `http` on the http port behind
    /// a balancer that terminates TLS.
    pub(crate) fn probe_scheme(&self) -> &'static str {
        if self.edge_http {
            "http"
        } else {
            "https"
        }
    }

    fn probe_port(&self) -> u16 {
        if self.edge_http {
            self.http_port
        } else {
            self.https_port
        }
    }

    /// The address as `host:port` for messages (the placeholder when unknown).
    pub(crate) fn edge_text(&self) -> String {
        let port = self.probe_port();
        match &self.address {
            Ok(IpAddr::V6(a)) => format!("[{a}]:{port}"),
            Ok(a) => format!("{a}:{port}"),
            Err(_) => format!("{UNKNOWN_ADDRESS}:{port}"),
        }
    }

    pub(crate) fn script(&self, step: &str, script: &str, args: &[String]) -> Op {
        self.ssh.script(PLANE, step, script, args)
    }

    /// A fenced step (see `lease::fenced`): runs only while the lease carries `fence`.
    pub(crate) fn fenced(&self, step: &str, fence: &Fence, body: &str, args: &[String]) -> Op {
        lease::fenced_op(&self.ssh, PLANE, step, &self.root, fence, body, args)
    }

    /// A fenced `docker compose <tail>` on the active release (see [`compose_fenced_script`]).
    pub(crate) fn compose(&self, step: &str, fence: &Fence, tail: &[&str]) -> Op {
        let mut args = vec![self.project.clone()];
        args.extend(tail.iter().map(|s| (*s).to_owned()));
        self.fenced(step, fence, &compose_fenced_script(), &args)
    }

    /// Wait for the droplet's cloud-init to finish, at most `timeout` seconds, then print
    /// `cloud-init status --long`; exits with cloud-init's status (see [`WAIT_BOOTSTRAP`]).
    /// Read-only: it changes nothing on the droplet.
    pub(crate) fn wait_bootstrap_op(&self, timeout: u64) -> Op {
        super::wait_bootstrap_op(&self.ssh, timeout)
    }

    pub(crate) fn state_op(&self) -> Op {
        self.script("read ledger", STATE, std::slice::from_ref(&self.root))
            .read_only()
    }

    pub(crate) fn up_op(&self, fence: &Fence) -> Op {
        self.compose(
            "docker compose up",
            fence,
            &[
                "up",
                "-d",
                "--remove-orphans",
                "--wait",
                "--wait-timeout",
                "120",
            ],
        )
    }

    pub(crate) fn link_op(&self, n: u64, name: &str, fence: &Fence) -> Op {
        self.fenced(
            &format!("point {name} at release {n}"),
            fence,
            LINK,
            &[n.to_string(), name.to_owned()],
        )
    }

    /// Write `l` over the ledger whose sha256 was `base_sha` (None: there was none), recording
    /// the new release `new` (None for a rollback entry). Refused by the droplet otherwise.
    pub(crate) fn ledger_op(
        &self,
        l: &Ledger,
        base_sha: Option<&str>,
        new: Option<u64>,
        fence: &Fence,
    ) -> Op {
        self.fenced(
            "record the ledger",
            fence,
            WRITE_LEDGER,
            &[
                base_sha.unwrap_or("none").to_owned(),
                new.map(|n| n.to_string()).unwrap_or_default(),
            ],
        )
        .with_stdin(Stdin::Bytes {
            data: l.to_json().into_bytes(),
        })
    }

    /// Take the droplet out of the balancer (see [`DRAIN`]).
    pub(crate) fn drain_op(&self, fence: &Fence) -> Op {
        self.fenced(
            "take the droplet out of the balancer (health answers 503)",
            fence,
            DRAIN,
            &drain_args(),
        )
    }

    /// Put the droplet back in the balancer (see [`UNDRAIN`]).
    pub(crate) fn undrain_op(&self, fence: &Fence) -> Op {
        self.fenced(
            "put the droplet back in the balancer (health answers 200)",
            fence,
            UNDRAIN,
            &drain_args(),
        )
    }

    /// Remove release `n`'s dir after its upload failed.
    pub(crate) fn discard_op(&self, n: u64, fence: &Fence) -> Op {
        self.fenced(
            &format!("remove incomplete release {n}"),
            fence,
            DISCARD,
            &[n.to_string()],
        )
    }

    pub(crate) fn prune_op(&self, dirs: &[u64], fence: &Fence) -> Option<Op> {
        if dirs.is_empty() {
            return None;
        }
        let args: Vec<String> = dirs.iter().map(u64::to_string).collect();
        Some(self.fenced("prune old releases", fence, PRUNE, &args))
    }

    pub(crate) fn prepare_op(&self, n: u64, fence: &Fence) -> Op {
        self.fenced(
            &format!("create release dir {n}"),
            fence,
            PREPARE,
            &[n.to_string()],
        )
    }

    pub(crate) fn upload_op(&self, n: u64, name: &str, bytes: &[u8], fence: &Fence) -> Op {
        self.fenced(
            &format!("upload {name}"),
            fence,
            UPLOAD,
            &[n.to_string(), name.to_owned()],
        )
        .with_stdin(Stdin::Bytes {
            data: bytes.to_vec(),
        })
    }

    pub(crate) fn env_op(&self, n: u64, names: &[String], fence: &Fence) -> Op {
        self.fenced("write .env (0600)", fence, WRITE_ENV, &[n.to_string()])
            .with_stdin(Stdin::ShellEnv {
                names: names.to_vec(),
            })
    }

    pub(crate) fn fetch_ca_op(&self) -> Op {
        self.script(
            "fetch the edge's local CA",
            FETCH_CA,
            &[self.project.clone(), EDGE_CA_PATH.to_owned()],
        )
        .read_only()
    }

    /// The edge serves TLS from its own local CA (not behind a terminating balancer).
    fn edge_tls_internal(&self) -> bool {
        self.tls_internal && !self.edge_http
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.ssh.control_dir.join("edge-ca.crt")
    }

    pub(crate) fn probe_op(&self, p: &ProbeTarget) -> Op {
        let ca = self.edge_tls_internal().then(|| self.ca_file());
        let at = (self.probe_scheme(), self.probe_port());
        match self.address {
            Ok(ip) => probe::curl_op(PLANE, p, ip, at, ca.as_deref(), 5),
            Err(_) => probe::curl_op_to(PLANE, p, UNKNOWN_ADDRESS, at, ca.as_deref(), 5),
        }
    }

    /// The CA fetch (private CA only) and one probe per public route: what a deploy and a
    /// rollback run after `up`.
    pub(crate) fn probe_ops(&self) -> (Option<Op>, Vec<(ProbeTarget, Op)>) {
        (
            self.edge_tls_internal().then(|| self.fetch_ca_op()),
            self.probes
                .iter()
                .map(|p| (p.clone(), self.probe_op(p)))
                .collect(),
        )
    }

    /// `docker compose down` of the active release: containers and networks go, named
    /// volumes stay (no `-v`), so data survives a failed first release.
    pub(crate) fn down_op(&self, fence: &Fence) -> Op {
        self.compose("docker compose down", fence, &["down", "--remove-orphans"])
    }

    /// Read-only look at one service's containers on the droplet (see [`UPSTREAM`]): state,
    /// exit code, health, and the app's own answer on its health path, to tell "up and failing"
    /// from "not up yet" (the edge holds requests to an unhealthy upstream, so its own answer
    /// never shows the app's status).
    pub(crate) fn upstream_op(&self, service: &str, host: &str) -> Op {
        let (port, path) = self
            .upstream_health
            .get(service)
            .cloned()
            .unwrap_or((0, "/".to_owned()));
        let args = [
            self.project.clone(),
            service.to_owned(),
            port.to_string(),
            path,
            host.to_owned(),
        ];
        self.script(&format!("state of {service}"), UPSTREAM, &args)
            .read_only()
    }

    pub(crate) fn logs_op(&self, service: &str) -> Op {
        let mut args = vec![self.root.clone(), self.project.clone()];
        args.extend(
            [
                "logs",
                "--no-color",
                "--tail",
                &LOG_LINES.to_string(),
                service,
            ]
            .map(str::to_owned),
        );
        self.script(&format!("logs of {service}"), &compose_read_script(), &args)
            .read_only()
    }

    /// Read the ledger, the release dirs and the current release's files (read-only).
    pub(crate) fn query_state(&self, ex: &mut Executor<'_>) -> Result<RemoteState, DeployError> {
        self.ip()?;
        let out = query(ex, &self.state_op())?;
        if !out.success() {
            return Err(DeployError::Step {
                step: "read ledger".into(),
                detail: out.stderr_text().trim().to_owned(),
            });
        }
        let Snapshot {
            ledger,
            ledger_sha,
            dirs,
        } = parse_state(&out.stdout_text())?;
        let mut old = BTreeMap::new();
        if let Some(cur) = ledger.current_release().cloned() {
            for (name, sha) in &cur.artifacts {
                let op = self
                    .script(
                        &format!("read {name} of release {}", cur.number),
                        READ_FILE,
                        &[self.root.clone(), cur.number.to_string(), name.clone()],
                    )
                    .read_only();
                let o = query(ex, &op)?;
                let text =
                    (o.success() && ledger::sha256_hex(&o.stdout) == *sha).then(|| o.stdout_text());
                old.insert(
                    name.clone(),
                    OldArtifact {
                        sha256: sha.clone(),
                        text,
                    },
                );
            }
            let names = names_text(&cur.secrets);
            old.insert(
                ENV_NAMES.to_owned(),
                OldArtifact {
                    sha256: ledger::sha256_hex(names.as_bytes()),
                    text: Some(names),
                },
            );
        }
        Ok(RemoteState {
            ledger,
            ledger_sha,
            dirs,
            old,
        })
    }
}

fn drain_args() -> [String; 2] {
    [
        alembic_render::caddy::DRAIN_HOST_DIR.to_owned(),
        alembic_render::caddy::DRAIN_FILE.to_owned(),
    ]
}

/// The ledger (its bytes' sha256) and release dirs, as the state script printed them.
pub(crate) struct Snapshot {
    pub(crate) ledger: Ledger,
    pub(crate) ledger_sha: Option<String>,
    pub(crate) dirs: Vec<u64>,
}

impl Snapshot {
    /// What a stale-plan check compares (see [`unchanged`]).
    pub(crate) fn seen(&self) -> Seen<'_> {
        (self.ledger.current, &self.ledger_sha, &self.dirs)
    }
}

pub(crate) fn parse_state(text: &str) -> Result<Snapshot, DeployError> {
    let (ledger_part, dirs_text) = text
        .split_once("@@alembic-releases@@\n")
        .unwrap_or((text, ""));
    // `@@alembic-ledger@@` precedes the file's exact bytes when it exists.
    let ledger_text = ledger_part.strip_prefix("@@alembic-ledger@@\n");
    let ledger_sha = ledger_text.map(|t| ledger::sha256_hex(t.as_bytes()));
    let ledger = Ledger::parse(ledger_text.unwrap_or("")).map_err(|m| DeployError::Step {
        step: "read ledger".into(),
        detail: m,
    })?;
    let mut dirs: Vec<u64> = dirs_text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    dirs.sort_unstable();
    Ok(Snapshot {
        ledger,
        ledger_sha,
        dirs,
    })
}
