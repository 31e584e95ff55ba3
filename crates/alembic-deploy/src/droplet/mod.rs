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

use crate::exec::{Executor, Output, SecretSource};
use crate::lease::{self, Fence, Found, Lease};
use crate::ledger::{self, Ledger, Outcome, Release as LedgerEntry};
use crate::ops::{Op, Stdin};
use crate::plan::{diff_artifacts, OldArtifact, PlanePlan};
use crate::probe::{self, ProbeResult, ProbeTarget};
use crate::progress::Steps;
use crate::settle::{self, Settle, Verdict};
use crate::ssh::SshTarget;
use crate::terraform;

pub(crate) const PLANE: crate::stage::Stage = crate::stage::Stage::Droplet;
pub(crate) const COMPOSE: &str = "compose.yaml";
pub(crate) const CADDYFILE: &str = "Caddyfile";
/// Pseudo-artifact standing for the release's `.env`: its "content" is the secret NAMES.
pub(crate) const ENV_NAMES: &str = ".env (names)";
/// Seconds the probes may take to turn healthy (default 60).
pub(crate) const PROBE_TIMEOUT_ENV: &str = "ALEMBIC_PROBE_TIMEOUT";
/// Where Caddy keeps its local CA's root in the edge container (XDG_DATA_HOME=/data).
pub(crate) const EDGE_CA_PATH: &str = "/data/caddy/pki/authorities/local/root.crt";
pub(crate) use crate::error::LOG_LINES;
/// Stands for the droplet's address in the ops of a plan made before the infra plane created
/// it: ssh destinations and probe `--resolve` entries show this text until apply knows the IP.
pub(crate) const UNKNOWN_ADDRESS: &str = "<reserved_ip: unknown until the infra plane is applied>";

pub(crate) const STATE: &str = r#"if [ -f "$1/ledger.json" ]; then echo '@@alembic-ledger@@'; cat "$1/ledger.json"; fi
echo '@@alembic-releases@@'
if [ -d "$1/releases" ]; then ls -1 "$1/releases"; fi"#;
/// Seconds a deploy waits for a provisioned droplet's cloud-init (default 900).
pub(crate) const BOOTSTRAP_TIMEOUT_ENV: &str = "ALEMBIC_BOOTSTRAP_TIMEOUT";
pub(crate) const BOOTSTRAP_TIMEOUT_DEFAULT: u64 = 900;
/// `$1`: seconds. Waits until cloud-init has finished, then prints `cloud-init status --long`
/// and exits with its code: 0 done, 1 error, 2 done with recoverable errors (cloud-init 23.4
/// and later, "return codes" in its docs); 124 when it had not finished in time, 127 when
/// cloud-init is missing.
///
/// It polls `cloud-init status` rather than using `--wait`: as a non-root user on a server
/// without D-Bus (minimal images), `status --wait` cannot ask systemd and never returns,
/// although plain `status` reports `done`. Each `cloud-init status` is a Python start-up that
/// takes the CPU from the bootstrap it waits for (7 s of CPU each in the emulated test VM,
/// where asking every 5 s doubled the bootstrap's time), so between asks the loop only looks
/// for `/run/cloud-init/result.json`, which cloud-init writes when its last stage ends; it
/// still asks at the start, once a minute (a disabled cloud-init, one stopped before its last
/// stage) and at the deadline.
pub(crate) const WAIT_BOOTSTRAP: &str = r#"if ! command -v cloud-init >/dev/null 2>&1; then echo "cloud-init is not on the droplet's PATH" >&2; exit 127; fi
waited=0
ask_at=0
while :; do
  if [ "$waited" -ge "$ask_at" ] || [ "$waited" -ge "$1" ] || [ -e /run/cloud-init/result.json ]; then
    case $(cloud-init status 2>/dev/null | sed -n 's/^status: //p') in
      done | disabled | error) break ;;
    esac
    ask_at=$((waited + 60))
  fi
  if [ "$waited" -ge "$1" ]; then
    cloud-init status --long 2>&1
    exit 124
  fi
  sleep 5
  waited=$((waited + 5))
done
cloud-init status --long 2>&1"#;

/// The read-only wait for a droplet's cloud-init ([`WAIT_BOOTSTRAP`]), at most `secs`: what
/// apply runs before a provisioned droplet's first deploy, and what
/// [`crate::session::wait_for_cloud_init`] runs.
pub(crate) fn wait_bootstrap_op(ssh: &crate::ssh::SshTarget, secs: u64) -> crate::ops::Op {
    ssh.script(
        PLANE,
        "wait for bootstrap (cloud-init status)",
        WAIT_BOOTSTRAP,
        &[secs.to_string()],
    )
    .read_only()
}
/// cloud-init's exit code for "done, with recoverable errors": tolerated, with a warning.
pub(crate) const CLOUD_INIT_RECOVERABLE: i32 = 2;
pub(crate) const READ_FILE: &str = r#"cat "$1/releases/$2/$3""#;

// The mutating steps below are fenced (`lease::fenced`): they run only while the lease carries
// our token, under the lease lock; the root is `$r` and the step's own arguments are `$1..`.

/// Create release `$1`'s dir; refuses one that exists: a release number is never reused.
pub(crate) const PREPARE: &str = r#"mkdir -p "$r/releases" || exit 1
if ! mkdir "$r/releases/$1"; then echo "release $1 already has a directory: release numbers are never reused" >&2; exit 1; fi"#;
pub(crate) const UPLOAD: &str =
    r#"set -e; umask 022; d="$r/releases/$1"; cat > "$d/.$2.tmp"; mv "$d/.$2.tmp" "$d/$2""#;
pub(crate) const WRITE_ENV: &str = r#"set -e; umask 077; d="$r/releases/$1"; cat > "$d/.env.tmp"; chmod 600 "$d/.env.tmp"; mv "$d/.env.tmp" "$d/.env""#;
pub(crate) const LINK: &str = r#"set -e; test -d "$r/releases/$1"; ln -sfn "releases/$1" "$r/.$2.tmp"; mv -T "$r/.$2.tmp" "$r/$2""#;
/// Append-only ledger write: `$1` is the sha256 of the ledger this apply read (`none`: there was
/// none), `$2` the number of the new release it records (empty for a rollback entry). Refuses
/// when the ledger changed since it was read, or already records release `$2`.
pub(crate) const WRITE_LEDGER: &str = r#"set -e
l="$r/ledger.json"
have=none
if [ -e "$l" ]; then have=$(sha256sum < "$l" | cut -d ' ' -f 1); fi
if [ "$have" != "$1" ]; then echo "ledger.json changed since this apply read it (sha256 $have, read as $1): nothing was recorded" >&2; exit 1; fi
if [ -n "$2" ] && [ -e "$l" ] && grep -q "\"number\": $2," "$l"; then echo "release $2 is already in ledger.json: entries are append-only and a release number is never reused" >&2; exit 1; fi
umask 022
cat > "$r/.ledger.json.tmp"
mv "$r/.ledger.json.tmp" "$l""#;
/// Take the droplet out of the balancer: the edge answers the balancer's health path 503
/// while the marker exists (`$1` the drain dir under the root, `$2` the marker's name).
pub(crate) const DRAIN: &str = r#"set -e; umask 022; mkdir -p "$r/$1"; : > "$r/$1/$2""#;
/// Put it back: the health path answers 200 again.
pub(crate) const UNDRAIN: &str = r#"rm -f "$r/$1/$2""#;
/// Remove an upload that did not complete (`$1` is the new release, which nothing points at).
pub(crate) const DISCARD: &str = r#"rm -rf "$r/releases/$1""#;
pub(crate) const PRUNE: &str = r#"for n in "$@"; do rm -rf "$r/releases/$n"; done"#;

/// Fenced `docker compose` on the active release (`$1` project, then compose's arguments), with
/// the release's secrets in compose's own environment: a `.env` in the sourced format (its first
/// line is `SECRETS_FILE_HEADER`) is sourced in a subshell, and compose reads no dotenv file
/// (`--env-file /dev/null`), so no value passes through its dotenv parser. A dotenv `.env` left
/// by an older alembic is never sourced: compose reads it, as it did then. Renews the lease
/// before unlocking, since compose may hold the lock for minutes; compose's own status 18 is
/// reported as 1, so it never reads as a lost lease. Compose does not inherit the lock's fd
/// (`9>&-`): nothing it leaves running can hold the lock.
pub(crate) fn compose_fenced_script() -> String {
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
pub(crate) fn compose_read_script() -> String {
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
pub(crate) const UPSTREAM: &str = r#"for c in $(docker ps -aq --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2"); do
echo "state $(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")"
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$c" | cut -d ' ' -f 1)
if [ "$3" != 0 ] && [ -n "$ip" ] && command -v curl >/dev/null 2>&1; then
echo "http $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Host: $5" "http://$ip:$3$4")"
fi
done"#;
pub(crate) const FETCH_CA: &str = r#"c=$(docker ps -q --filter "label=com.docker.compose.project=$1" --filter label=com.docker.compose.service=edge | head -n 1)
[ -n "$c" ] || { echo "no running edge container" >&2; exit 1; }
docker cp "$c:$2" -"#;

/// Where the droplet is: `droplet.address`, or for a provisioned droplet the `reserved_ip`
/// output of the applied infra plane, read by a read-only `terraform output` op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Address {
    /// The IP, or why it is not known yet (infra not applied, no terraform, ...).
    pub ip: Result<IpAddr, String>,
    /// The `terraform output` op the IP comes from (None: `droplet.address` names it).
    pub from: Option<Op>,
}

impl Address {
    pub(crate) fn configured(ip: IpAddr) -> Address {
        Address {
            ip: Ok(ip),
            from: None,
        }
    }
}

/// Find the droplet: `droplet.address` when set; otherwise run `tf`'s `terraform output` (a
/// read-only query, run even in a dry run) and read its `reserved_ip`. `tf` is None when neither
/// terraform nor tofu is installed.
pub(crate) fn resolve_address(
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

mod bundle;
mod delivery;
mod deploy;
mod fleet;
mod fleet_rollback;
mod rollback;
mod rolling;
mod runner;
mod target;
#[cfg(test)]
mod tests;

use bundle::names_text;
pub(crate) use runner::{query, Renewer};
use target::parse_state;

pub(crate) use crate::error::{DeployError, Failure};
pub(crate) use crate::exec::Redactor;
pub(crate) use bundle::Bundle;
pub(crate) use delivery::{deliveries, Delivery};
pub(crate) use deploy::{next_release, plan, DeployOps, Planned};
pub(crate) use fleet::label;
pub(crate) use fleet::{member_target, resolve_addresses, select, Fleet, Member};
pub(crate) use fleet_rollback::{FleetRollback, RollbackMember};
pub(crate) use rolling::Rolling;
pub(crate) use runner::Runner;
pub(crate) use target::{unchanged, RemoteState, Target};
