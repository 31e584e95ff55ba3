//! The droplet deploy: lease -> upload the release bundle to `<root>/releases/<n>/` -> `.env`
//! (0600) from values streamed over ssh stdin -> `docker compose up -d --remove-orphans --wait`
//! -> probe every public route through the edge -> switch `current`, record the release in
//! `<root>/ledger.json`, prune -> release the lease. A failed `up` or probe brings the previous
//! release back, records the failure and reports why (route, probe answer, container logs).
//!
//! Layout on the droplet:
//!
//! ```text
//! <root>/releases/<n>/{compose.yaml,Caddyfile,.env}   one dir per release
//! <root>/active  -> releases/<n>   what compose runs now (switched before `up`)
//! <root>/current -> releases/<n>   the last release that passed its probes
//! <root>/ledger.json               releases, hashes, images, secret names, outcomes
//! <root>/lease.json                the deploy lease (see lease.rs)
//! ```
//!
//! Compose always runs with `--project-directory <root>/active`, so the edge's `./Caddyfile`
//! bind mount has the same source path in every release: a release that changes only an
//! upstream does not recreate the edge, and traffic keeps flowing (Caddy retries while the
//! upstream restarts). Every remote command is a fixed script with data in `$1..$n`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use alembic_config::{Plane, Tls, Topology};
use alembic_render::compose::SECRETS_FILE_HEADER;
use alembic_render::ArtifactSet;

use crate::exec::{ExecError, Executor, Output, SecretSource};
use crate::lease::{self, Fence, Found, Lease};
use crate::ledger::{self, Ledger, Outcome, Release as LedgerEntry};
use crate::ops::{Op, Stdin};
use crate::plan::{diff_artifacts, OldArtifact, PlanePlan};
use crate::probe::{self, ProbeResult, ProbeTarget};
use crate::progress::Steps;
use crate::settle::{self, Settle, Verdict};
use crate::ssh::SshTarget;
use crate::terraform;

pub const PLANE: crate::stage::Stage = crate::stage::Stage::Droplet;
pub const COMPOSE: &str = "compose.yaml";
pub const CADDYFILE: &str = "Caddyfile";
/// Pseudo-artifact standing for the release's `.env`: its "content" is the secret NAMES.
pub const ENV_NAMES: &str = ".env (names)";
/// Seconds the probes may take to turn healthy (default 60).
pub const PROBE_TIMEOUT_ENV: &str = "ALEMBIC_PROBE_TIMEOUT";
/// Where Caddy keeps its local CA's root in the edge container (XDG_DATA_HOME=/data).
pub const EDGE_CA_PATH: &str = "/data/caddy/pki/authorities/local/root.crt";
const LOG_LINES: usize = 20;
/// Stands for the droplet's address in the ops of a plan made before the infra plane created
/// it: ssh destinations and probe `--resolve` entries show this text until apply knows the IP.
pub const UNKNOWN_ADDRESS: &str = "<reserved_ip: unknown until the infra plane is applied>";

const STATE: &str = r#"if [ -f "$1/ledger.json" ]; then echo '@@alembic-ledger@@'; cat "$1/ledger.json"; fi
echo '@@alembic-releases@@'
if [ -d "$1/releases" ]; then ls -1 "$1/releases"; fi"#;
const READ_FILE: &str = r#"cat "$1/releases/$2/$3""#;

// The mutating steps below are fenced (`lease::fenced`): they run only while the lease carries
// our token, under the lease lock; the root is `$r` and the step's own arguments are `$1..`.

/// Create release `$1`'s dir; refuses one that exists: a release number is never reused.
const PREPARE: &str = r#"mkdir -p "$r/releases" || exit 1
if ! mkdir "$r/releases/$1"; then echo "release $1 already has a directory: release numbers are never reused" >&2; exit 1; fi"#;
const UPLOAD: &str =
    r#"set -e; umask 022; d="$r/releases/$1"; cat > "$d/.$2.tmp"; mv "$d/.$2.tmp" "$d/$2""#;
const WRITE_ENV: &str = r#"set -e; umask 077; d="$r/releases/$1"; cat > "$d/.env.tmp"; chmod 600 "$d/.env.tmp"; mv "$d/.env.tmp" "$d/.env""#;
const LINK: &str = r#"set -e; test -d "$r/releases/$1"; ln -sfn "releases/$1" "$r/.$2.tmp"; mv -T "$r/.$2.tmp" "$r/$2""#;
/// Append-only ledger write: `$1` is the sha256 of the ledger this apply read (`none`: there was
/// none), `$2` the number of the new release it records (empty for a rollback entry). Refuses
/// when the ledger changed since it was read, or already records release `$2`.
const WRITE_LEDGER: &str = r#"set -e
l="$r/ledger.json"
have=none
if [ -e "$l" ]; then have=$(sha256sum < "$l" | cut -d ' ' -f 1); fi
if [ "$have" != "$1" ]; then echo "ledger.json changed since this apply read it (sha256 $have, read as $1): nothing was recorded" >&2; exit 1; fi
if [ -n "$2" ] && [ -e "$l" ] && grep -q "\"number\": $2," "$l"; then echo "release $2 is already in ledger.json: entries are append-only and a release number is never reused" >&2; exit 1; fi
umask 022
cat > "$r/.ledger.json.tmp"
mv "$r/.ledger.json.tmp" "$l""#;
/// Remove an upload that did not complete (`$1` is the new release, which nothing points at).
const DISCARD: &str = r#"rm -rf "$r/releases/$1""#;
const PRUNE: &str = r#"for n in "$@"; do rm -rf "$r/releases/$n"; done"#;

/// Fenced `docker compose` on the active release (`$1` project, then compose's arguments), with
/// the release's secrets in compose's own environment: a `.env` in the sourced format (its first
/// line is `SECRETS_FILE_HEADER`) is sourced in a subshell, and compose reads no dotenv file
/// (`--env-file /dev/null`), so no value passes through its dotenv parser. A dotenv `.env` left
/// by an older alembic is never sourced: compose reads it, as it did then. Renews the lease
/// before unlocking, since compose may hold the lock for minutes; compose's own status 18 is
/// reported as 1, so it never reads as a lost lease. Compose does not inherit the lock's fd
/// (`9>&-`): nothing it leaves running can hold the lock.
fn compose_fenced_script() -> String {
    format!(
        r#"p=$1; shift; d="$r/active"
if [ "$(head -n 1 "$d/.env" 2>/dev/null)" = '{SECRETS_FILE_HEADER}' ]; then
  (. "$d/.env" && exec docker compose --env-file /dev/null -p "$p" --project-directory "$d" -f "$d/{COMPOSE}" "$@" 9>&-)
else
  docker compose -p "$p" --project-directory "$d" -f "$d/{COMPOSE}" "$@" 9>&-
fi
s=$?
renew
if [ "$s" -eq 18 ]; then s=1; fi
exit "$s""#
    )
}

/// Read-only `docker compose` (logs) on the active release: `$1` root, `$2` project, then
/// compose's arguments; secrets as in [`compose_fenced_script`] (compose needs them to load the
/// file).
fn compose_read_script() -> String {
    format!(
        r#"r=$1; p=$2; shift 2; d="$r/active"
if [ "$(head -n 1 "$d/.env" 2>/dev/null)" = '{SECRETS_FILE_HEADER}' ]; then
  . "$d/.env" || exit 1
  exec docker compose --env-file /dev/null -p "$p" --project-directory "$d" -f "$d/{COMPOSE}" "$@"
fi
exec docker compose -p "$p" --project-directory "$d" -f "$d/{COMPOSE}" "$@""#
    )
}
/// `$1` project, `$2` service, `$3` port (0: none), `$4` health path, `$5` the route's host.
/// Per container of the service: `state STATUS EXITCODE HEALTH`, then `http CODE` from a
/// request straight to the container's address on the compose network with the route's Host
/// header, as the edge sends it (when curl is on the droplet and the workload has a port).
const UPSTREAM: &str = r#"for c in $(docker ps -aq --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2"); do
echo "state $(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")"
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$c" | cut -d ' ' -f 1)
if [ "$3" != 0 ] && [ -n "$ip" ] && command -v curl >/dev/null 2>&1; then
echo "http $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Host: $5" "http://$ip:$3$4")"
fi
done"#;
const FETCH_CA: &str = r#"c=$(docker ps -q --filter "label=com.docker.compose.project=$1" --filter label=com.docker.compose.service=edge | head -n 1)
[ -n "$c" ] || { echo "no running edge container" >&2; exit 1; }
docker cp "$c:$2" -"#;

/// Where the droplet is: `droplet.address`, or for a provisioned droplet the `reserved_ip`
/// output of the applied infra plane, read by a read-only `terraform output` op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The IP, or why it is not known yet (infra not applied, no terraform, ...).
    pub ip: Result<IpAddr, String>,
    /// The `terraform output` op the IP comes from (None: `droplet.address` names it).
    pub from: Option<Op>,
}

impl Address {
    pub fn configured(ip: IpAddr) -> Address {
        Address {
            ip: Ok(ip),
            from: None,
        }
    }
}

/// Find the droplet: `droplet.address` when set; otherwise run `tf`'s `terraform output` (a
/// read-only query, run even in a dry run) and read its `reserved_ip`. `tf` is None when neither
/// terraform nor tofu is installed.
pub fn resolve_address(
    t: &Topology,
    tf: Option<&terraform::Runner>,
    ex: &mut Executor<'_>,
) -> Address {
    if let Some(ip) = t.droplet.address {
        return Address::configured(ip);
    }
    let Some(tf) = tf else {
        return Address {
            ip: Err(
                "neither terraform nor tofu is on PATH to read the `reserved_ip` output".into(),
            ),
            from: None,
        };
    };
    let op = tf.output_op();
    let ip = match ex.query(&op) {
        Ok(out) => terraform::reserved_ip(out.status, &out.stdout_text(), &out.stderr_text()),
        Err(e) => Err(e.to_string()),
    };
    Address { ip, from: Some(op) }
}

/// Why the droplet plane could not be planned or applied.
#[derive(Debug)]
pub enum DeployError {
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
    Exec(ExecError),
}

/// What went wrong with a release, and the evidence.
#[derive(Debug, Clone)]
pub struct Failure {
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
            DeployError::Exec(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DeployError {}

impl DeployError {
    /// DESIGN exit codes: 1 for the user's config, 3 for everything that failed at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            DeployError::Config(_) => 1,
            DeployError::Exec(ExecError::SecretUnset { .. } | ExecError::SecretUnusable { .. }) => {
                1
            }
            _ => 3,
        }
    }
}

impl From<ExecError> for DeployError {
    fn from(e: ExecError) -> Self {
        DeployError::Exec(e)
    }
}

/// The release bundle built from the rendered artifacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// File name in the release dir -> bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Names of the `.env` variables (sorted, unique).
    pub secrets: Vec<String>,
    pub images: Vec<String>,
    /// The images of `build` workloads for this release (see `images.rs`).
    pub pins: Vec<crate::images::Pin>,
    /// Docker names of the workloads' named volumes, recorded in the ledger entry.
    pub volumes: Vec<String>,
}

impl Bundle {
    /// Pin the images of `build` workloads: the release's compose file is rendered with each
    /// pinned reference in place of `${ALEMBIC_IMAGE_<NAME>:?...}`. The rendered artifact must
    /// be exactly what `compose::render` makes of `t` (it is the same topology), or this refuses.
    pub fn pin(
        mut self,
        t: &Topology,
        set: &ArtifactSet,
        pins: Vec<crate::images::Pin>,
    ) -> Result<Bundle, DeployError> {
        if pins.is_empty() {
            return Ok(self);
        }
        let plain = alembic_render::compose::render(t);
        let rendered = set.get(alembic_render::compose::PATH).map(|a| &a.bytes);
        if plain.first().map(|a| &a.bytes) != rendered {
            return Err(DeployError::Config(format!(
                "{} is not what this alembic.toml renders: render again before applying",
                alembic_render::compose::PATH
            )));
        }
        let map = crate::images::pin_map(&pins);
        let pinned = alembic_render::compose::render_pinned(t, &map);
        if let Some(a) = pinned.into_iter().next() {
            self.files.insert(COMPOSE.to_owned(), a.bytes);
        }
        self.images.extend(map.into_values());
        self.pins = pins;
        Ok(self)
    }

    pub fn from_artifacts(t: &Topology, set: &ArtifactSet) -> Result<Bundle, DeployError> {
        let mut files = BTreeMap::new();
        for (path, name) in [
            (alembic_render::compose::PATH, COMPOSE),
            ("infra/caddy/Caddyfile", CADDYFILE),
        ] {
            match set.get(path) {
                Some(a) if !a.bytes.is_empty() => {
                    files.insert(name.to_owned(), a.bytes.clone());
                }
                _ => {
                    return Err(DeployError::Config(format!(
                        "the rendered release lacks {path}: this build cannot deploy the droplet"
                    )))
                }
            }
        }
        let mut secrets: Vec<String> = t
            .on_plane(Plane::Droplet)
            .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
            .collect();
        secrets.sort();
        secrets.dedup();
        let mut images = vec![t.droplet.edge_image.to_string()];
        images.extend(
            t.on_plane(Plane::Droplet)
                .filter_map(|w| w.image.as_ref().map(|i| i.to_string())),
        );
        Ok(Bundle {
            files,
            secrets,
            images,
            pins: Vec::new(),
            volumes: alembic_render::compose::workload_volume_names(t),
        })
    }

    /// Artifacts as the plan compares them (files plus the `.env` names).
    fn comparable(&self) -> BTreeMap<String, Vec<u8>> {
        let mut m = self.files.clone();
        m.insert(ENV_NAMES.to_owned(), names_text(&self.secrets).into_bytes());
        m
    }

    fn hashes(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(k, v)| (k.clone(), ledger::sha256_hex(v)))
            .collect()
    }
}

fn names_text(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// What is on the droplet now.
#[derive(Clone, Debug, Default)]
pub struct RemoteState {
    pub ledger: Ledger,
    /// sha256 of `ledger.json`'s bytes as read (None: there is none): the ledger write is
    /// refused unless the file is still exactly this.
    pub ledger_sha: Option<String>,
    /// Release dirs present.
    pub dirs: Vec<u64>,
    /// The current release's artifacts (hash from the ledger, text read back).
    pub old: BTreeMap<String, OldArtifact>,
}

/// The droplet as a deploy target.
#[derive(Clone, Debug)]
pub struct Target {
    pub ssh: SshTarget,
    pub root: String,
    pub project: String,
    /// The droplet's IP, or why it is not known yet (ops then show [`UNKNOWN_ADDRESS`]).
    pub address: Result<IpAddr, String>,
    /// The read-only `terraform output` op the address comes from, shown first in plans.
    pub address_op: Option<Op>,
    pub https_port: u16,
    pub tls_internal: bool,
    pub keep: u32,
    pub probes: Vec<ProbeTarget>,
    /// Droplet workload (compose service) names.
    pub services: Vec<String>,
    /// Routed workload -> (container port, health path or `/`): where its own answer is read.
    pub upstream_health: BTreeMap<String, (u16, String)>,
    /// Seconds a route may take to answer healthy after `up` (`ALEMBIC_PROBE_TIMEOUT`, 60).
    pub probe_timeout: u64,
}

impl Target {
    /// The target at `address` (see [`resolve_address`]). An unknown address still gives a
    /// target, so a plan can show every op, with [`UNKNOWN_ADDRESS`] in the IP's place.
    pub fn from_topology(t: &Topology, address: &Address) -> Target {
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
    pub fn ip(&self) -> Result<IpAddr, DeployError> {
        self.address.clone().map_err(DeployError::AddressUnknown)
    }

    /// The address as `host:port` for messages (the placeholder when unknown).
    fn edge_text(&self) -> String {
        match &self.address {
            Ok(IpAddr::V6(a)) => format!("[{a}]:{}", self.https_port),
            Ok(a) => format!("{a}:{}", self.https_port),
            Err(_) => format!("{UNKNOWN_ADDRESS}:{}", self.https_port),
        }
    }

    fn script(&self, step: &str, script: &str, args: &[String]) -> Op {
        self.ssh.script(PLANE, step, script, args)
    }

    /// A fenced step (see `lease::fenced`): runs only while the lease carries `fence`.
    fn fenced(&self, step: &str, fence: &Fence, body: &str, args: &[String]) -> Op {
        lease::fenced_op(&self.ssh, PLANE, step, &self.root, fence, body, args)
    }

    /// A fenced `docker compose <tail>` on the active release (see [`compose_fenced_script`]).
    fn compose(&self, step: &str, fence: &Fence, tail: &[&str]) -> Op {
        let mut args = vec![self.project.clone()];
        args.extend(tail.iter().map(|s| (*s).to_owned()));
        self.fenced(step, fence, &compose_fenced_script(), &args)
    }

    pub fn state_op(&self) -> Op {
        self.script("read ledger", STATE, std::slice::from_ref(&self.root))
            .read_only()
    }

    pub fn up_op(&self, fence: &Fence) -> Op {
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

    pub fn link_op(&self, n: u64, name: &str, fence: &Fence) -> Op {
        self.fenced(
            &format!("point {name} at release {n}"),
            fence,
            LINK,
            &[n.to_string(), name.to_owned()],
        )
    }

    /// Write `l` over the ledger whose sha256 was `base_sha` (None: there was none), recording
    /// the new release `new` (None for a rollback entry). Refused by the droplet otherwise.
    pub fn ledger_op(
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

    /// Remove release `n`'s dir after its upload failed.
    fn discard_op(&self, n: u64, fence: &Fence) -> Op {
        self.fenced(
            &format!("remove incomplete release {n}"),
            fence,
            DISCARD,
            &[n.to_string()],
        )
    }

    fn prune_op(&self, dirs: &[u64], fence: &Fence) -> Option<Op> {
        if dirs.is_empty() {
            return None;
        }
        let args: Vec<String> = dirs.iter().map(u64::to_string).collect();
        Some(self.fenced("prune old releases", fence, PRUNE, &args))
    }

    pub fn prepare_op(&self, n: u64, fence: &Fence) -> Op {
        self.fenced(
            &format!("create release dir {n}"),
            fence,
            PREPARE,
            &[n.to_string()],
        )
    }

    fn upload_op(&self, n: u64, name: &str, bytes: &[u8], fence: &Fence) -> Op {
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

    fn env_op(&self, n: u64, names: &[String], fence: &Fence) -> Op {
        self.fenced("write .env (0600)", fence, WRITE_ENV, &[n.to_string()])
            .with_stdin(Stdin::ShellEnv {
                names: names.to_vec(),
            })
    }

    fn fetch_ca_op(&self) -> Op {
        self.script(
            "fetch the edge's local CA",
            FETCH_CA,
            &[self.project.clone(), EDGE_CA_PATH.to_owned()],
        )
        .read_only()
    }

    fn ca_file(&self) -> PathBuf {
        self.ssh.control_dir.join("edge-ca.crt")
    }

    fn probe_op(&self, p: &ProbeTarget) -> Op {
        let ca = self.tls_internal.then(|| self.ca_file());
        match self.address {
            Ok(ip) => probe::curl_op(PLANE, p, ip, self.https_port, ca.as_deref(), 5),
            Err(_) => {
                probe::curl_op_to(PLANE, p, UNKNOWN_ADDRESS, self.https_port, ca.as_deref(), 5)
            }
        }
    }

    /// The CA fetch (private CA only) and one probe per public route: what a deploy and a
    /// rollback run after `up`.
    fn probe_ops(&self) -> (Option<Op>, Vec<(ProbeTarget, Op)>) {
        (
            self.tls_internal.then(|| self.fetch_ca_op()),
            self.probes
                .iter()
                .map(|p| (p.clone(), self.probe_op(p)))
                .collect(),
        )
    }

    /// `docker compose down` of the active release: containers and networks go, named
    /// volumes stay (no `-v`), so data survives a failed first release.
    pub fn down_op(&self, fence: &Fence) -> Op {
        self.compose("docker compose down", fence, &["down", "--remove-orphans"])
    }

    /// Read-only look at one service's containers on the droplet (see [`UPSTREAM`]): state,
    /// exit code, health, and the app's own answer on its health path, to tell "up and failing"
    /// from "not up yet" (the edge holds requests to an unhealthy upstream, so its own answer
    /// never shows the app's status).
    fn upstream_op(&self, service: &str, host: &str) -> Op {
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

    fn logs_op(&self, service: &str) -> Op {
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
    pub fn query_state(&self, ex: &mut Executor<'_>) -> Result<RemoteState, DeployError> {
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

/// The ledger (its bytes' sha256) and release dirs, as the state script printed them.
struct Snapshot {
    ledger: Ledger,
    ledger_sha: Option<String>,
    dirs: Vec<u64>,
}

fn parse_state(text: &str) -> Result<Snapshot, DeployError> {
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

/// The ops of one deploy, in the order they run on the happy path. A plan builds them with the
/// lease's token unknown (shown as `<token>`); the runner builds them again, with the token the
/// droplet handed out and the ledger it read under the lease, before running any.
#[derive(Clone, Debug)]
pub struct DeployOps {
    pub number: u64,
    pub base: Option<u64>,
    pub lease: Lease,
    pub bundle: Bundle,
    /// The entry this release appends to the ledger on success.
    pub entry: LedgerEntry,
    pub take_lease: Op,
    /// How each pinned image reaches the droplet (before the upload).
    pub images: Vec<crate::images::Delivery>,
    pub prepare: Op,
    pub uploads: Vec<Op>,
    pub env: Op,
    pub activate: Op,
    pub up: Op,
    pub fetch_ca: Option<Op>,
    pub probes: Vec<(ProbeTarget, Op)>,
    pub switch: Op,
    pub ledger: Op,
    pub prune: Option<Op>,
    pub release_lease: Op,
    pub close: Op,
    /// The ledger as it will read after success.
    pub next_ledger: Ledger,
    /// The ledger the ops were built on (the one `ledger` is written over) and its sha256.
    pub base_ledger: Ledger,
    pub base_sha: Option<String>,
    /// The release dirs the ops were built on (prune removes from these).
    pub base_dirs: Vec<u64>,
}

/// What a deploy is built from besides the target and the lease.
struct DeployInput<'a> {
    bundle: &'a Bundle,
    number: u64,
    base: Option<u64>,
    entry: &'a LedgerEntry,
    /// The droplet's ledger, its sha256 and release dirs as read.
    ledger: &'a Ledger,
    ledger_sha: Option<&'a str>,
    dirs: &'a [u64],
}

impl DeployOps {
    fn build(target: &Target, input: &DeployInput<'_>, lease: &Lease) -> DeployOps {
        let n = input.number;
        let fence = lease.fence();
        let root = target.root.clone();
        let mut next_ledger = input.ledger.clone();
        next_ledger.format_version = 1;
        next_ledger.current = Some(n);
        next_ledger.releases.push(input.entry.clone());
        let mut dirs = input.dirs.to_vec();
        dirs.push(n);
        let prune = target.prune_op(&next_ledger.prune(&dirs, target.keep), &fence);
        let (fetch_ca, probes) = target.probe_ops();
        DeployOps {
            number: n,
            base: input.base,
            take_lease: lease::acquire_op(&target.ssh, PLANE, &root, lease),
            release_lease: lease::release_op(&target.ssh, PLANE, &root, &fence),
            lease: lease.clone(),
            bundle: input.bundle.clone(),
            entry: input.entry.clone(),
            images: crate::images::deliveries(target, &input.bundle.pins),
            prepare: target.prepare_op(n, &fence),
            uploads: input
                .bundle
                .files
                .iter()
                .map(|(name, bytes)| target.upload_op(n, name, bytes, &fence))
                .collect(),
            env: target.env_op(n, &input.bundle.secrets, &fence),
            activate: target.link_op(n, "active", &fence),
            up: target.up_op(&fence),
            fetch_ca,
            probes,
            switch: target.link_op(n, "current", &fence),
            ledger: target.ledger_op(&next_ledger, input.ledger_sha, Some(n), &fence),
            prune,
            close: target.ssh.close_master(PLANE),
            next_ledger,
            base_ledger: input.ledger.clone(),
            base_sha: input.ledger_sha.map(str::to_owned),
            base_dirs: input.dirs.to_vec(),
        }
    }

    pub fn to_vec(&self) -> Vec<Op> {
        let mut v = vec![self.take_lease.clone()];
        v.extend(self.images.iter().flat_map(|d| d.ops()));
        v.push(self.prepare.clone());
        v.extend(self.uploads.iter().cloned());
        v.push(self.env.clone());
        v.push(self.activate.clone());
        v.push(self.up.clone());
        v.extend(self.fetch_ca.iter().cloned());
        v.extend(self.probes.iter().map(|(_, o)| o.clone()));
        v.push(self.switch.clone());
        v.push(self.ledger.clone());
        v.extend(self.prune.iter().cloned());
        v.push(self.release_lease.clone());
        v.push(self.close.clone());
        v
    }
}

/// A planned droplet deploy: the plan to show, and the ops to run (None: nothing to do).
pub struct Planned {
    pub plane: PlanePlan,
    pub ops: Option<DeployOps>,
    pub state: RemoteState,
}

/// Plan the deploy of `bundle` over `state`. Pure: no I/O.
pub fn plan(
    target: &Target,
    bundle: &Bundle,
    state: RemoteState,
    lease: Lease,
    by: &str,
) -> Planned {
    let mut plane = PlanePlan::new(PLANE);
    if let Err(why) = &target.address {
        plane.notes.push(format!(
            "the droplet's address is unknown until the infra plane is applied ({why}): the \
             operations show {UNKNOWN_ADDRESS} in its place, and apply reads the `reserved_ip` \
             output again after `terraform apply` (applying this plane alone stops there)"
        ));
    }
    // Where the address comes from is the plan's first (read-only) step.
    plane.ops.extend(target.address_op.iter().cloned());
    let base = state.ledger.current;
    plane.base_release = base;
    plane.changes = diff_artifacts(&state.old, &bundle.comparable());
    let current_pins = state
        .ledger
        .current_release()
        .map(|r| r.pins.clone())
        .unwrap_or_default();
    plane.images = crate::images::changes(&bundle.pins, &current_pins);
    if plane.changes.is_empty() && base.is_some() {
        plane.notes.push(format!(
            "release {} is already current: nothing to do",
            base.unwrap_or(0)
        ));
        plane.ops.push(target.ssh.close_master(PLANE));
        return Planned {
            plane,
            ops: None,
            state,
        };
    }
    let n = state.ledger.next_number(state.dirs.last().copied());
    plane.release = Some(n);
    let entry = LedgerEntry {
        number: n,
        artifacts: bundle.hashes(),
        images: bundle.images.clone(),
        pins: crate::images::pin_map(&bundle.pins),
        secrets: bundle.secrets.clone(),
        time: ledger::rfc3339(ledger::now_epoch()),
        outcome: Outcome::Deployed,
        by: by.to_owned(),
        note: None,
        volumes: bundle.volumes.clone(),
    };
    let ops = DeployOps::build(
        target,
        &DeployInput {
            bundle,
            number: n,
            base,
            entry: &entry,
            ledger: &state.ledger,
            ledger_sha: state.ledger_sha.as_deref(),
            dirs: &state.dirs,
        },
        &lease,
    );
    plane.ops.extend(ops.to_vec());
    Planned {
        plane,
        ops: Some(ops),
        state,
    }
}

/// Scrubs secret values out of anything shown (remote stderr, logs), as a second line of
/// defence: no code path prints a value on purpose.
pub struct Redactor(Vec<(String, String)>);

impl Redactor {
    pub fn new(names: &[String], secrets: &dyn SecretSource) -> Redactor {
        Redactor(
            names
                .iter()
                .filter_map(|n| secrets.get(n).map(|v| (n.clone(), v)))
                .filter(|(_, v)| v.len() >= 4)
                .collect(),
        )
    }

    pub fn clean(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (name, value) in &self.0 {
            out = out.replace(value, &format!("[{name}: redacted]"));
        }
        out
    }
}

fn query(ex: &mut Executor<'_>, op: &Op) -> Result<Output, DeployError> {
    let out = ex.query(op)?;
    check_ssh(op, &out)?;
    Ok(out)
}

/// ssh exits 255 when the connection itself failed.
fn check_ssh(op: &Op, out: &Output) -> Result<(), DeployError> {
    if op.program == "ssh" && out.status == 255 {
        let e = out.stderr_text();
        return Err(DeployError::Unreachable(
            e.lines()
                .last()
                .unwrap_or("ssh exited with status 255")
                .to_owned(),
        ));
    }
    Ok(())
}

/// Runs a deploy's ops and reports progress.
pub struct Runner<'a, 'b> {
    pub target: &'a Target,
    pub ex: &'a mut Executor<'b>,
    pub steps: Steps<'a>,
    pub redact: Redactor,
}

impl Runner<'_, '_> {
    pub(crate) fn run(&mut self, op: &Op) -> Result<Output, DeployError> {
        self.steps.op(op);
        let out = self.ex.run(op)?;
        check_ssh(op, &out)?;
        // A fenced script found the lease is no longer ours: it changed nothing.
        if op.program == "ssh" && out.status == lease::LOST {
            return Err(DeployError::LeaseLost(lease::now_held_by(
                &out.stdout_text(),
            )));
        }
        Ok(out)
    }

    /// A read-only op whose answer decides the next steps: run in a dry run too (when the
    /// droplet's address is known), recorded either way.
    pub(crate) fn decide(&mut self, op: &Op) -> Result<Output, DeployError> {
        if self.target.address.is_err() {
            return self.run(op);
        }
        self.steps.op(op);
        let out = self.ex.decide(op)?;
        check_ssh(op, &out)?;
        Ok(out)
    }

    pub(crate) fn run_ok(&mut self, op: &Op) -> Result<Output, DeployError> {
        let out = self.run(op)?;
        if !out.success() {
            return Err(DeployError::Step {
                step: op.step.clone(),
                detail: self.tail(&out.stderr_text(), 10),
            });
        }
        Ok(out)
    }

    pub(crate) fn tail(&self, text: &str, n: usize) -> String {
        let lines: Vec<&str> = text.trim_end().lines().collect();
        let start = lines.len().saturating_sub(n);
        self.redact.clean(&lines[start..].join("\n"))
    }

    /// A step wrapped in progress start/end.
    fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self) -> Result<T, DeployError>,
    ) -> Result<T, DeployError> {
        self.steps.start(name);
        let r = f(self);
        match &r {
            Ok(_) => self.steps.end(true, ""),
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or("").to_owned();
                self.steps.end(false, first)
            }
        }
        r
    }

    /// Take the lease; an expired one (by the droplet's clock) is taken over with a warning.
    /// Returns the lease as the droplet granted it (with its fencing token).
    fn take_lease(&mut self, take: &Op, planned: &Lease) -> Result<Lease, DeployError> {
        let root = self.target.root.clone();
        let out = self.run(take)?;
        if self.dry() {
            // A dry run takes no lease: the planned ops keep their `<token>`.
            return Ok(planned.clone());
        }
        match lease::interpret(out.status, &out.stdout_text()) {
            Found::Acquired { lease, took_over } => {
                if lease.id != planned.id {
                    return Err(DeployError::Step {
                        step: "take lease".into(),
                        detail: format!(
                            "the droplet granted lease {} where {} was asked for",
                            lease.id, planned.id
                        ),
                    });
                }
                // Every fenced op of the plan carries `<token>`: from now on it is this one.
                self.ex
                    .bind(lease::TOKEN_PLACEHOLDER, lease.token.to_string());
                if let Some(old) = took_over {
                    self.steps.warn(format!(
                        "took over an expired lease held by {} (now token {})",
                        old.describe(),
                        lease.token
                    ));
                }
                Ok(lease)
            }
            Found::Live(l) => Err(DeployError::LeaseHeld(l.describe())),
            Found::Unreadable(raw) if out.status == lease::HELD => {
                Err(DeployError::LeaseHeld(if raw.is_empty() {
                    format!("unknown (the lease lock {root}/.lease.lock stayed busy)")
                } else {
                    format!(
                        "unknown (unreadable {root}/lease.json: {raw:?}); remove it if no apply is running"
                    )
                }))
            }
            Found::Unreadable(_) => Err(DeployError::Step {
                step: "take lease".into(),
                detail: self.tail(&out.stderr_text(), 5),
            }),
        }
    }

    /// Keep the lease alive while it is held (a real apply only: a dry run takes none).
    fn start_renewer(&self, lease: &Lease) -> Renewer {
        let op = lease::renew_op(&self.target.ssh, PLANE, &self.target.root, &lease.fence());
        Renewer::start(op, lease.ttl, self.ex.goal == crate::exec::Goal::Apply)
    }

    /// Remove the lease if it still carries our token (a lost one is left to its new holder).
    fn release_lease(&mut self, op: &Op) {
        self.steps.start("release lease");
        let ok = self.run(op).map(|o| o.success()).unwrap_or(false);
        self.steps.end(
            ok,
            if ok {
                ""
            } else {
                "could not release the lease; it expires on its own"
            },
        );
    }

    fn close(&mut self, op: &Op) {
        self.steps.op(op);
        // Run in a dry run too when the address is known: a `decide` may have opened the
        // master connection.
        let _ = if self.target.address.is_ok() {
            self.ex.decide(op)
        } else {
            self.ex.run(op)
        };
        self.target.ssh.cleanup();
    }

    /// Run a planned deploy: exactly the planned ops, in order, the fencing token bound when
    /// the droplet hands it out. The lease is released whatever happens after it was taken. A
    /// dry run is the same walk through the same ops, with nothing run (the lease is taken
    /// as planned, every step succeeds).
    pub fn deploy(&mut self, ops: &DeployOps) -> Result<u64, DeployError> {
        if !self.dry() {
            self.target.ip()?;
        }
        if self.target.address.is_ok() {
            if let Err(e) = self.target.ssh.prepare() {
                return Err(DeployError::Step {
                    step: "create ssh control dir".into(),
                    detail: e.to_string(),
                });
            }
        }
        let lease = match self.step("take lease", |s| s.take_lease(&ops.take_lease, &ops.lease)) {
            Ok(l) => l,
            Err(e) => {
                self.close(&ops.close);
                return Err(e);
            }
        };
        let renewer = self.start_renewer(&lease);
        let r = self.deploy_leased(ops, &renewer);
        renewer.stop();
        self.release_lease(&ops.release_lease);
        self.close(&ops.close);
        r
    }

    fn dry(&self) -> bool {
        self.ex.goal == crate::exec::Goal::DryRun
    }

    fn deploy_leased(&mut self, ops: &DeployOps, renewer: &Renewer) -> Result<u64, DeployError> {
        let n = ops.number;
        // Under the lease, the droplet must be exactly as planned (ledger bytes and release
        // dirs): then every planned op is still the right one, and none is rebuilt.
        // A read of the plan's own input, like the plan's: a query, not a step of the plan.
        self.step("check the droplet has not moved", |s| {
            if s.dry() {
                return Ok(());
            }
            let out = query(s.ex, &s.target.state_op())?;
            if !out.success() {
                return Err(DeployError::Step {
                    step: "read ledger".into(),
                    detail: s.tail(&out.stderr_text(), 5),
                });
            }
            let now = parse_state(&out.stdout_text())?;
            if now.ledger.current != ops.base
                || now.ledger_sha != ops.base_sha
                || now.dirs != ops.base_dirs
            {
                return Err(DeployError::Stale(format!(
                    "the droplet changed since this plan was made (current release {:?}, planned from {:?}); plan again",
                    now.ledger.current, ops.base
                )));
            }
            Ok(())
        })?;
        renewer.check()?;
        for d in &ops.images {
            self.deliver_image(d)?;
        }
        renewer.check()?;
        let uploaded = self.step(&format!("upload release {n}"), |s| {
            s.run_ok(&ops.prepare)?;
            for u in &ops.uploads {
                s.run_ok(u)?;
            }
            s.run_ok(&ops.env)?;
            Ok(())
        });
        if let Err(e) = uploaded {
            return Err(self.discard_upload(ops, e));
        }
        renewer.check()?;
        self.step(&format!("activate release {n}"), |s| {
            s.run_ok(&ops.activate).map(drop)
        })?;
        // A failed `up` is a failed step (so progress says so), then handled like a failed
        // probe: previous release back, or this one down.
        let up = self.step("docker compose up --wait", |s| {
            let out = s.run(&ops.up)?;
            if out.success() {
                return Ok(());
            }
            Err(DeployError::Step {
                step: "docker compose up --wait".to_owned(),
                detail: format!(
                    "failed (exit {}): {}",
                    out.status,
                    s.tail(&out.stderr_text(), 10)
                ),
            })
        });
        match up {
            Ok(()) => {}
            Err(DeployError::Step { step, detail }) => {
                let what = format!("{step} {detail}");
                let services = self.target.services.clone();
                return Err(self.fail_and_roll_back(ops, what, &services));
            }
            Err(e) => return Err(e),
        }
        let probed = match self.step("probe public routes", |s| {
            s.probe_all(ops.fetch_ca.as_ref(), &ops.probes)
        }) {
            Ok(p) => p,
            // The edge never produced its local CA: the release is as broken as a failed
            // probe, and is handled the same way (previous release back, or this one down).
            Err(e @ DeployError::Step { .. }) => {
                return Err(self.fail_and_roll_back(
                    ops,
                    e.to_string(),
                    &[alembic_render::compose::EDGE_SERVICE.to_owned()],
                ))
            }
            Err(e) => return Err(e),
        };
        if let Some((p, result)) = probed {
            let verb = if matches!(result, ProbeResult::Settled(_)) {
                ":"
            } else {
                " got"
            };
            let what = format!(
                "probe of https://{}{} (through the edge at {}){verb} {}",
                p.host,
                p.path,
                self.target.edge_text(),
                result
            );
            return Err(self.fail_and_roll_back(ops, what, std::slice::from_ref(&p.workload)));
        }
        renewer.check()?;
        self.step(&format!("switch current to release {n}"), |s| {
            s.run_ok(&ops.switch)?;
            s.run_ok(&ops.ledger)?;
            if let Some(p) = &ops.prune {
                s.run_ok(p)?;
            }
            Ok(())
        })?;
        Ok(n)
    }

    /// An upload failed (disk full, connection cut, ...) before anything was switched: remove
    /// the half-written release dir, so no partial bundle (or a partial `.env.tmp` holding
    /// secret values) stays on the droplet filling its disk, and say what is still current.
    /// Best effort: when the connection itself is gone the dir stays, and the next successful
    /// apply's prune removes it (it is neither current nor a healthy release in the ledger).
    fn discard_upload(&mut self, ops: &DeployOps, e: DeployError) -> DeployError {
        // A lost lease changes nothing more, not even our own leftovers.
        if matches!(e, DeployError::LeaseLost(_)) {
            return e;
        }
        let n = ops.number;
        let op = self.target.discard_op(n, &ops.lease.fence());
        let removed = self
            .step(&format!("remove incomplete release {n}"), |s| {
                s.run_ok(&op).map(drop)
            })
            .is_ok();
        // Other errors (ssh unreachable, ...) keep their own kind and message.
        let DeployError::Step { step, detail } = e else {
            return e;
        };
        let left = if removed {
            format!("the incomplete release {n} was removed")
        } else {
            format!("the incomplete release {n} could not be removed")
        };
        let serving = match ops.base {
            Some(b) => format!("release {b} is still current and serving"),
            None => "nothing was serving before".to_owned(),
        };
        DeployError::Step {
            step: format!("upload release {n}: {step}"),
            detail: format!("{detail}\nnothing was switched: {left}; {serving}"),
        }
    }

    /// Probe every route until healthy or the deadline. Returns the first route still failing.
    fn probe_all(
        &mut self,
        fetch_ca: Option<&Op>,
        probes: &[(ProbeTarget, Op)],
    ) -> Result<Option<(ProbeTarget, ProbeResult)>, DeployError> {
        let timeout = self.target.probe_timeout;
        let deadline = Instant::now() + Duration::from_secs(timeout);
        if let Some(op) = fetch_ca {
            self.fetch_ca(op, deadline)?;
        }
        let window = settle::window_from_env();
        for (p, op) in probes {
            let mut last: ProbeResult;
            let mut settled = Settle::new(window);
            let mut ps_at: Option<Instant> = None;
            loop {
                // The app's own state first. While the app fails by itself, the edge probe
                // would only wait out its `--max-time` (the edge holds requests to an upstream
                // its health checks mark down), so it is skipped and the app looked at again a
                // second later: the settle window is measured at that step, not the probe's.
                let direct = self.container_verdict(&p.workload, &p.host, &mut ps_at);
                if let Some(why) = settled.observe(&direct, Instant::now()) {
                    last = ProbeResult::Settled(why);
                    break;
                }
                if let Verdict::Failing(what) = &direct {
                    if Instant::now() >= deadline {
                        last = ProbeResult::Settled(format!(
                            "{what}, still at the probe timeout ({timeout} s)"
                        ));
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                self.steps.op(op);
                let out = self.ex.run(op)?;
                last = if self.dry() {
                    // A dry run assumes every step succeeds.
                    ProbeResult::Healthy(200)
                } else {
                    probe::interpret(out.status, &out.stdout_text(), &out.stderr_text())
                };
                if let Some(why) = settled.observe(&settle::classify(&last), Instant::now()) {
                    last = ProbeResult::Settled(why);
                    break;
                }
                if last.is_healthy() || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            if !last.is_healthy() {
                return Ok(Some((p.clone(), last)));
            }
        }
        Ok(None)
    }

    /// While a route is not up yet through the edge: has its container exited, is it
    /// restarting or unhealthy, or does the app itself answer an error? Asked at most every
    /// second; a look that cannot run says nothing.
    fn container_verdict(
        &mut self,
        service: &str,
        host: &str,
        last: &mut Option<Instant>,
    ) -> Verdict {
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(900)) {
            return Verdict::NotUpYet;
        }
        *last = Some(Instant::now());
        let op = self.target.upstream_op(service, host);
        match self.run(&op) {
            Ok(out) if out.success() => settle::upstream_verdict(&out.stdout_text(), service),
            _ => Verdict::NotUpYet,
        }
    }

    /// Caddy creates its local CA on start: retry until the edge has it.
    fn fetch_ca(&mut self, op: &Op, deadline: Instant) -> Result<(), DeployError> {
        loop {
            let out = self.run(op)?;
            if self.dry() {
                return Ok(());
            }
            if out.success() {
                if let Some(pem) = probe::first_file_in_tar(&out.stdout) {
                    crate::fsio::write_atomic(&self.target.ca_file(), &pem, 0o644).map_err(
                        |e| DeployError::Step {
                            step: "save the edge CA".into(),
                            detail: e.to_string(),
                        },
                    )?;
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(DeployError::Step {
                    step: "fetch the edge's local CA".into(),
                    detail: self.tail(&out.stderr_text(), 5),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn collect_logs(&mut self, services: &[String]) -> Vec<(String, String)> {
        let mut logs = Vec::new();
        for svc in services {
            let op = self.target.logs_op(svc);
            if let Ok(out) = self.run(&op) {
                let text = format!("{}{}", out.stdout_text(), out.stderr_text());
                logs.push((svc.clone(), self.tail(&text, LOG_LINES)));
            }
        }
        logs
    }

    /// Bring the previous release back (or, for a first release, bring the failed one down),
    /// record the failure, and say why.
    fn fail_and_roll_back(
        &mut self,
        ops: &DeployOps,
        what: String,
        services: &[String],
    ) -> DeployError {
        let n = ops.number;
        let fence = ops.lease.fence();
        let failure = Failure {
            what,
            logs: self.collect_logs(services),
        };
        let mut restored = None;
        let mut stopped = Ok(());
        if ops.base.is_none() {
            // Nothing was serving before: leaving the failed release up would publish a broken
            // service under the routes, so it goes down (volumes kept).
            let down = self.target.down_op(&fence);
            match self.step(&format!("stop failed release {n}"), |s| {
                s.run_ok(&down).map(drop)
            }) {
                Err(e @ DeployError::LeaseLost(_)) => return e,
                r => stopped = r.map_err(|e| e.to_string()),
            }
        }
        if let Some(prev) = ops.base {
            let r = self.step(&format!("roll back to release {prev}"), |s| {
                s.run_ok(&s.target.link_op(prev, "active", &fence))?;
                s.run_ok(&s.target.up_op(&fence))?;
                Ok(())
            });
            match r {
                Ok(()) => restored = Some(prev),
                Err(e @ DeployError::LeaseLost(_)) => return e,
                Err(e) => {
                    return DeployError::Step {
                        step: format!(
                            "release {n} failed ({}); rolling back to {prev}",
                            failure.what
                        ),
                        detail: e.to_string(),
                    }
                }
            }
        }
        // Appended to the ledger read under the lease: the failed release's one entry.
        let mut ledger = ops.base_ledger.clone();
        ledger.format_version = 1;
        ledger.current = ops.base;
        ledger.releases.push(LedgerEntry {
            outcome: Outcome::Failed,
            note: Some(match (restored, &stopped) {
                (Some(p), _) => format!("{}; rolled back to release {p}", failure.what),
                (None, Ok(())) => format!(
                    "{}; nothing was serving before, the failed release was stopped",
                    failure.what
                ),
                (None, Err(_)) => format!(
                    "{}; nothing was serving before, stopping the failed release failed",
                    failure.what
                ),
            }),
            ..ops.entry.clone()
        });
        let op = self
            .target
            .ledger_op(&ledger, ops.base_sha.as_deref(), Some(n), &fence);
        if let Err(e @ DeployError::LeaseLost(_)) = self
            .step("record the failure in the ledger", |s| {
                s.run_ok(&op).map(drop)
            })
        {
            return e;
        }
        match restored {
            Some(to) => DeployError::RolledBack {
                failed: n,
                to,
                failure,
            },
            None => DeployError::Failed {
                failed: n,
                stopped,
                failure,
            },
        }
    }

    /// `alembic rollback`: make release `to` (default: the newest healthy one before current)
    /// current again, whole: its compose file, Caddyfile and `.env`.
    pub fn rollback(&mut self, to: Option<u64>, by: &str) -> Result<u64, DeployError> {
        self.target.ip()?;
        if let Err(e) = self.target.ssh.prepare() {
            return Err(DeployError::Step {
                step: "create ssh control dir".into(),
                detail: e.to_string(),
            });
        }
        let planned = Lease::for_this_process();
        let take = lease::acquire_op(&self.target.ssh, PLANE, &self.target.root, &planned);
        let close = self.target.ssh.close_master(PLANE);
        let lease = match self.step("take lease", |s| s.take_lease(&take, &planned)) {
            Ok(l) => l,
            Err(e) => {
                self.close(&close);
                return Err(e);
            }
        };
        let renewer = self.start_renewer(&lease);
        let r = self.rollback_leased(to, by, &lease.fence(), &renewer);
        renewer.stop();
        let release = lease::release_op(&self.target.ssh, PLANE, &self.target.root, &lease.fence());
        self.release_lease(&release);
        self.close(&close);
        r
    }

    fn rollback_leased(
        &mut self,
        to: Option<u64>,
        by: &str,
        fence: &Fence,
        renewer: &Renewer,
    ) -> Result<u64, DeployError> {
        let state = self.target.query_state(self.ex)?;
        let to = match to.or_else(|| state.ledger.previous_healthy().first().copied()) {
            Some(n) => n,
            None => {
                return Err(DeployError::Config(
                    "no previous healthy release to roll back to".into(),
                ))
            }
        };
        let entry = state
            .ledger
            .healthy(to)
            .cloned()
            .filter(|_| state.dirs.contains(&to))
            .ok_or_else(|| {
                DeployError::Config(format!(
                    "release {to} is not a healthy release still on the droplet (kept: {:?})",
                    state.dirs
                ))
            })?;
        self.step(&format!("restore release {to}"), |s| {
            s.run_ok(&s.target.link_op(to, "active", fence))?;
            s.run_ok(&s.target.up_op(fence))?;
            Ok(())
        })?;
        let (fetch_ca, probes) = self.target.probe_ops();
        let probed = self.step("probe public routes", |s| {
            s.probe_all(fetch_ca.as_ref(), &probes)
        })?;
        if let Some((p, result)) = probed {
            return Err(DeployError::Step {
                step: format!("probe after restoring release {to}"),
                detail: format!("https://{}{} got {result}", p.host, p.path),
            });
        }
        let mut ledger = state.ledger.clone();
        let from = ledger.current;
        ledger.current = Some(to);
        ledger.releases.push(LedgerEntry {
            time: ledger::rfc3339(ledger::now_epoch()),
            outcome: Outcome::RolledBack,
            by: by.to_owned(),
            note: Some(match from {
                Some(f) => format!("restored by `alembic rollback` from release {f}"),
                None => "restored by `alembic rollback`".to_owned(),
            }),
            ..entry
        });
        // A rollback entry repeats a recorded number by design: only the ledger's sha is held.
        let ledger_op = self
            .target
            .ledger_op(&ledger, state.ledger_sha.as_deref(), None, fence);
        renewer.check()?;
        self.step(&format!("switch current to release {to}"), |s| {
            s.run_ok(&s.target.link_op(to, "current", fence))?;
            s.run_ok(&ledger_op).map(drop)
        })?;
        Ok(to)
    }
}

/// The rollback ops a dry run shows: the same scripts the real rollback runs (the fencing token
/// shows as `<token>`: the droplet hands it out when the lease is taken).
pub fn rollback_ops(target: &Target, to: u64) -> Vec<Op> {
    let lease = Lease::for_this_process();
    let fence = lease.fence();
    vec![
        lease::acquire_op(&target.ssh, PLANE, &target.root, &lease),
        target.link_op(to, "active", &fence),
        target.up_op(&fence),
        target.link_op(to, "current", &fence),
        target.ledger_op(
            &Ledger::default(),
            Some("<sha256 of ledger.json as read>"),
            None,
            &fence,
        ),
        lease::release_op(&target.ssh, PLANE, &target.root, &fence),
        target.ssh.close_master(PLANE),
    ]
}

/// Renews the lease every TTL/3 from a plain thread (no async runtime) while it is held, through
/// the executor's `run_op` (the renewal needs no secret). Stops when told, or at the first
/// renewal the droplet refuses (the lease was taken over), remembering who holds it then; an
/// unreachable droplet is retried next round.
struct Renewer {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
    lost: Arc<Mutex<Option<String>>>,
}

struct NoSecrets;

impl SecretSource for NoSecrets {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

impl Renewer {
    fn start(op: Op, ttl: u64, enabled: bool) -> Renewer {
        let lost = Arc::new(Mutex::new(None));
        if !enabled {
            return Renewer {
                stop: None,
                handle: None,
                lost,
            };
        }
        let (stop, rx) = mpsc::channel::<()>();
        let seen = lost.clone();
        let period = Duration::from_millis((ttl.saturating_mul(1000) / 3).max(500));
        let handle = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(period) {
                let Ok(out) = crate::exec::run_op(&op, &NoSecrets) else {
                    continue;
                };
                if out.status == lease::LOST {
                    if let Ok(mut l) = seen.lock() {
                        *l = Some(lease::now_held_by(&out.stdout_text()));
                    }
                    return;
                }
            }
        });
        Renewer {
            stop: Some(stop),
            handle: Some(handle),
            lost,
        }
    }

    /// Err(LeaseLost) once a renewal was refused: stop before the next mutating step.
    fn check(&self) -> Result<(), DeployError> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(who) => Err(DeployError::LeaseLost(who)),
            None => Ok(()),
        }
    }

    /// Stop renewing and wait for the thread (a renewal under way ends within its lock wait).
    fn stop(self) {
        drop(self);
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let mut t = alembic_config::default_topology();
        t.droplet.address = Some("203.0.113.20".parse().unwrap());
        t
    }

    fn configured(t: &Topology) -> Target {
        Target::from_topology(t, &Address::configured(t.droplet.address.unwrap()))
    }

    fn bundle() -> Bundle {
        Bundle {
            files: [
                (COMPOSE.to_owned(), b"services: {}\n".to_vec()),
                (CADDYFILE.to_owned(), b":443 {\n}\n".to_vec()),
            ]
            .into(),
            secrets: vec!["DATABASE_URL".into()],
            images: vec!["caddy:2".into()],
            pins: Vec::new(),
            volumes: vec!["demo_pgdata".into()],
        }
    }

    #[test]
    fn first_release_plans_every_step_in_order() {
        let t = topology();
        let target = configured(&t);
        let p = plan(
            &target,
            &bundle(),
            RemoteState::default(),
            Lease::for_this_process(),
            "me@here",
        );
        assert_eq!(p.plane.release, Some(1));
        let steps: Vec<&str> = p.plane.ops.iter().map(|o| o.step.as_str()).collect();
        assert_eq!(
            steps,
            [
                "take lease",
                "create release dir 1",
                "upload Caddyfile",
                "upload compose.yaml",
                "write .env (0600)",
                "point active at release 1",
                "docker compose up",
                "probe api.alembic.example.com/healthz",
                "probe gateway.alembic.example.com/health",
                "point current at release 1",
                "record the ledger",
                "release lease",
                "close ssh connection"
            ]
        );
        let up = p
            .plane
            .ops
            .iter()
            .find(|o| o.step == "docker compose up")
            .unwrap();
        // Fenced (root, token, id, TTL), then the project and compose's arguments; the token is
        // known only once the droplet hands it out.
        let words = shlex::split(up.args.last().unwrap()).unwrap();
        assert_eq!(words[..2], ["sh", "-c"]);
        assert!(words[2].starts_with(lease::FENCE), "{}", words[2]);
        assert!(words[2].contains(
            r#"exec docker compose --env-file /dev/null -p "$p" --project-directory "$d" -f "$d/compose.yaml" "$@""#
        ));
        assert_eq!(words[4..6], ["/opt/alembic", "<token>"]);
        assert_eq!(
            words[7..],
            [
                "900",
                "alembic",
                "up",
                "-d",
                "--remove-orphans",
                "--wait",
                "--wait-timeout",
                "120"
            ]
        );
        let env = p
            .plane
            .ops
            .iter()
            .find(|o| o.step.starts_with("write .env"))
            .unwrap();
        assert_eq!(
            env.stdin,
            Stdin::ShellEnv {
                names: vec!["DATABASE_URL".into()]
            }
        );
    }

    // The look at a routed workload's own answer is read-only and asks its container port
    // and health path (not the edge's), with the route's Host header.
    #[test]
    fn the_upstream_look_reads_the_container_port_and_health_path() {
        let t = topology();
        let target = configured(&t);
        assert_eq!(
            target.upstream_health.get("council-api"),
            Some(&(8080, "/healthz".to_owned()))
        );
        let op = target.upstream_op("council-api", "api.alembic.example.com");
        assert!(!op.mutating);
        let text = op.args.join(" ");
        for part in [
            "council-api",
            "8080",
            "/healthz",
            "api.alembic.example.com",
            "com.docker.compose.service=$2",
            "--max-time 2 -H",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }

    #[test]
    fn an_unchanged_release_plans_no_mutating_op() {
        let t = topology();
        let target = configured(&t);
        let b = bundle();
        let first = plan(
            &target,
            &b,
            RemoteState::default(),
            Lease::for_this_process(),
            "me",
        );
        let ledger = first.ops.unwrap().next_ledger;
        let mut old: BTreeMap<String, OldArtifact> = b
            .files
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    OldArtifact {
                        sha256: ledger::sha256_hex(v),
                        text: None,
                    },
                )
            })
            .collect();
        let names = names_text(&b.secrets);
        old.insert(
            ENV_NAMES.into(),
            OldArtifact {
                sha256: ledger::sha256_hex(names.as_bytes()),
                text: None,
            },
        );
        let state = RemoteState {
            ledger,
            ledger_sha: None,
            dirs: vec![1],
            old,
        };
        let again = plan(&target, &b, state.clone(), Lease::for_this_process(), "me");
        assert!(again.ops.is_none());
        assert_eq!(again.plane.mutating_ops(), 0);
        assert!(!again.plane.has_changes());
        // A new secret name is a change.
        let mut b2 = b.clone();
        b2.secrets.push("NEW_KEY".into());
        let changed = plan(&target, &b2, state, Lease::for_this_process(), "me");
        assert_eq!(changed.plane.changes[0].path, ENV_NAMES);
        assert_eq!(changed.plane.release, Some(2));
    }

    /// A provisioned droplet before the infra plane ran: the plan still shows every op, with the
    /// placeholder where the IP goes, starts with the `terraform output` read, and says why.
    #[test]
    fn unknown_address_plans_with_a_marked_placeholder() {
        let t = alembic_config::default_topology();
        assert!(t.droplet.is_provisioned());
        let tf =
            terraform::Runner::for_topology("terraform", std::path::Path::new("/srv/site"), &t);
        let address = Address {
            ip: terraform::reserved_ip(0, "{}", ""),
            from: Some(tf.output_op()),
        };
        let target = Target::from_topology(&t, &address);
        let p = plan(
            &target,
            &bundle(),
            RemoteState::default(),
            Lease::for_this_process(),
            "me",
        );
        assert_eq!(p.plane.release, Some(1));
        // The default keeps its state in Spaces: reading it needs the key pair, by name only.
        assert_eq!(
            p.plane.ops[0].to_string(),
            "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' output -json -no-color"
        );
        assert!(p.plane.notes[0].contains("unknown until the infra plane is applied"));
        assert!(p.plane.notes[0].contains("has not been applied yet"));
        let ssh = p.plane.ops.iter().find(|o| o.step == "take lease").unwrap();
        assert!(
            ssh.args.contains(&format!("deploy@{UNKNOWN_ADDRESS}")),
            "{:?}",
            ssh.args
        );
        let probe = p
            .plane
            .ops
            .iter()
            .find(|o| o.step.starts_with("probe api."))
            .unwrap();
        assert!(probe
            .args
            .contains(&format!("api.alembic.example.com:443:{UNKNOWN_ADDRESS}")));
        // Running it stops before any ssh, with the hint.
        let err = target.ip().unwrap_err();
        assert_eq!(err.exit_code(), 3);
        let msg = err.to_string();
        assert!(msg.contains("apply the infra plane first"), "{msg}");
        struct NoSecrets;
        impl SecretSource for NoSecrets {
            fn get(&self, _: &str) -> Option<String> {
                None
            }
        }
        let mut ex = Executor::new(crate::exec::Goal::Apply, &NoSecrets);
        assert!(matches!(
            target.query_state(&mut ex),
            Err(DeployError::AddressUnknown(_))
        ));
        assert!(ex.transcript.is_empty(), "nothing ran");
    }

    // Volumes hold a stateful workload's data: no op alembic plans (deploy, prune, bringing a
    // failed release down, rollback) may remove one, and the release records which it uses.
    #[test]
    fn no_op_ever_removes_a_volume_and_the_entry_records_them() {
        let t = topology();
        let target = configured(&t);
        let fence = Lease::for_this_process().fence();
        let state = RemoteState {
            dirs: vec![1, 2, 3, 4, 5],
            ledger: Ledger {
                format_version: 1,
                current: Some(5),
                releases: (1..=5)
                    .map(|n| LedgerEntry {
                        number: n,
                        artifacts: BTreeMap::new(),
                        images: vec![],
                        secrets: vec![],
                        time: ledger::rfc3339(0),
                        outcome: Outcome::Deployed,
                        by: "t@h".into(),
                        note: None,
                        volumes: vec![],
                        pins: BTreeMap::new(),
                    })
                    .collect(),
            },
            ..RemoteState::default()
        };
        let p = plan(&target, &bundle(), state, Lease::for_this_process(), "t@h");
        let ops = p.ops.expect("a change");
        assert!(ops.prune.is_some(), "old releases are pruned");
        assert_eq!(ops.entry.volumes, ["demo_pgdata"]);
        let mut all = ops.to_vec();
        all.push(target.down_op(&fence));
        all.extend(rollback_ops(&target, 4));
        for op in &all {
            let text = op.args.join(" ");
            for bad in [
                "down -v",
                "--volumes",
                "volume rm",
                "volume prune",
                "system prune",
                "docker rm -v",
            ] {
                assert!(!text.contains(bad), "{}: {bad} in {text}", op.step);
            }
            if text.contains("compose") && text.contains(" down") {
                assert!(
                    !text.split_whitespace().any(|w| w == "-v"),
                    "{}: {text}",
                    op.step
                );
            }
        }
    }

    #[test]
    fn a_failed_first_release_is_brought_down_keeping_volumes() {
        let t = topology();
        let down = configured(&t).down_op(&Lease::for_this_process().fence());
        assert!(down.mutating);
        assert!(down
            .args
            .last()
            .unwrap()
            .ends_with(" alembic down --remove-orphans"));
        let e = DeployError::Failed {
            failed: 1,
            stopped: Ok(()),
            failure: Failure {
                what: "probe of https://api.x/healthz got HTTP 500".into(),
                logs: vec![("api".into(), "boom".into())],
            },
        };
        assert_eq!(e.exit_code(), 3);
        let m = e.to_string();
        assert!(m.contains("nothing was serving before"), "{m}");
        assert!(m.contains("the failed release was stopped"), "{m}");
        assert!(m.contains("api.x/healthz got HTTP 500"), "{m}");
        assert!(m.contains("log lines of api ---\nboom"), "{m}");
    }

    #[test]
    fn redactor_scrubs_values() {
        struct One;
        impl SecretSource for One {
            fn get(&self, n: &str) -> Option<String> {
                (n == "DB").then(|| "s3cr3t-value".to_owned())
            }
        }
        let r = Redactor::new(&["DB".into()], &One);
        assert_eq!(r.clean("x s3cr3t-value y"), "x [DB: redacted] y");
    }

    /// The lease was never renewed while an apply ran: the renewer runs its op every TTL/3
    /// until stopped, and stops at the first refusal, remembering who holds the lease then.
    #[test]
    fn the_renewer_renews_until_stopped_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        // A renewal that succeeds: each run appends a line.
        let ok = Op::new(
            PLANE,
            "renew lease",
            "sh",
            vec![
                "-c".into(),
                r#"echo x >> "$1""#.into(),
                "sh".into(),
                count.display().to_string(),
            ],
        );
        let r = Renewer::start(ok, 1, true);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(&count).map_or(0, |c| c.lines().count()) < 2 {
            assert!(Instant::now() < deadline, "the renewer did not renew twice");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(r.check().is_ok());
        r.stop();
        let after = std::fs::read_to_string(&count).unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(
            std::fs::read_to_string(&count).unwrap(),
            after,
            "renewed after stop"
        );

        // A refused renewal (exit 18, printing the holder now): check() names the holder.
        let mut other = Lease::for_this_process();
        other.holder = "b@ci".into();
        other.token = 9;
        let rec = serde_json::to_string(&other).unwrap();
        let refused = Op::new(
            PLANE,
            "renew lease",
            "sh",
            vec![
                "-c".into(),
                r#"printf '%s\n' "$1"; exit 18"#.into(),
                "sh".into(),
                rec,
            ],
        );
        let r = Renewer::start(refused, 1, true);
        let deadline = Instant::now() + Duration::from_secs(20);
        let who = loop {
            if let Err(DeployError::LeaseLost(who)) = r.check() {
                break who;
            }
            assert!(Instant::now() < deadline, "the refusal was not noticed");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            who.starts_with("b@ci (pid ") && who.contains("token 9"),
            "{who}"
        );
        // A dry run renews nothing.
        assert!(
            Renewer::start(Op::new(PLANE, "x", "false", vec![]), 1, false)
                .handle
                .is_none()
        );
    }
}
