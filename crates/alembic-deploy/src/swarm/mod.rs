//! The droplet plane on Docker Swarm (`droplet.engine = "swarm"`): the same ssh, root, lease,
//! ledger and release dirs as compose (see `droplet`), on the swarm manager (the first
//! droplet), with a different middle:
//!
//! ```text
//! take lease -> images -> releases/<n>/{stack.yaml,Caddyfile}
//!   -> one `docker secret` per secret, `<project>_<NAME>_<n>`, from stdin (swarm secrets are
//!      immutable: each release has its own, so an update rotates them)
//!   -> ALEMBIC_SECRETS_VERSION=<n> docker stack deploy --resolve-image never --detach=false
//!   -> every service's UpdateStatus.State and replicas (`docker stack deploy` exits 0 even when
//!      swarm rolled the update back: its exit code is never trusted)
//!   -> probe every public route through the edge -> switch `current`, ledger, prune
//! ```
//!
//! A failed update (rolled back or paused by swarm, not converged, or a failed probe) deploys
//! the previous release's own stack file again, so every service is back on it, records the
//! failure and exits 3 saying which service and why. `alembic rollback` deploys an older
//! release's stack file the same way. Every remote command is a fixed script with its data in
//! `$1..$n`; secret values only ever travel in the ssh session's stdin.

use std::collections::BTreeMap;

use alembic_config::{Plane, Topology};
use alembic_render::ArtifactSet;

use crate::droplet::{
    deliveries, next_release, Bundle, Delivery, RemoteState, Target, CADDYFILE, PLANE,
};
use crate::exec::Executor;
use crate::lease::{self, Fence, Lease};
use crate::ledger::{Ledger, Outcome, Release as LedgerEntry};
use crate::ops::{Op, Stdin};
use crate::plan::PlanePlan;
use crate::probe::ProbeTarget;

mod run;
#[cfg(test)]
mod tests;

pub(crate) use run::{deploy, rollback};

/// The release's stack file, in its release dir.
pub(crate) const STACK: &str = "stack.yaml";
/// Seconds `docker stack deploy --detach=false` may wait for the stack to converge, and then
/// alembic for every service to settle (a first deploy whose tasks never start would
/// otherwise wait for ever).
pub(crate) const CONVERGE_SECS: u64 = 300;

/// Is docker there, and is this node a swarm manager? Prints one line (see [`readiness`]).
pub(crate) const ENGINE_CHECK: &str = r#"if ! command -v docker >/dev/null 2>&1; then echo 'docker missing'; exit 0; fi
docker info --format 'swarm {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || echo 'docker unreachable'"#;

/// Fenced: `$1` the release, `$2` the project, then one `(docker secret name, variable)` pair
/// per secret: each secret is created from its value in stdin (the release `.env` format, sourced by
/// `eval`; `printf` is the shell's builtin, so no value is ever in a process's argv). A
/// secret left by an earlier attempt at the same release number is replaced.
pub(crate) const SECRETS: &str = r#"set -e
v=$1; p=$2; shift 2
eval "$(cat)"
while [ "$#" -ge 2 ]; do
  name=$1; var=$2; shift 2
  if docker secret inspect "$name" >/dev/null 2>&1; then docker secret rm "$name" >/dev/null; fi
  eval "val=\${$var}"
  printf '%s' "$val" | docker secret create --label "alembic.project=$p" --label "alembic.release=$v" "$name" - >/dev/null
done"#;

/// Fenced `docker stack deploy` of release `$1`'s stack file as stack `$2`, bounded by `$3`
/// seconds, with the release's secret version in its environment. Renews the lease after
/// (a deploy may take minutes); docker's own status 18 is reported as 1, never as a lost lease.
pub(crate) const DEPLOY: &str = r#"cd "$r/releases/$1" || exit 1
echo "@@alembic-started@@ $(date +%s)"
ALEMBIC_SECRETS_VERSION="$1" timeout "$3" docker stack deploy --resolve-image never --detach=false --prune -c stack.yaml "$2" 9>&-
s=$?
renew
if [ "$s" -eq 18 ]; then s=1; fi
exit "$s""#;

/// Per service of stack `$1`: `service NAME|STATE|STARTED|MESSAGE` (STATE `none` before any
/// update; STARTED in epoch seconds), then `replicas NAME RUNNING/DESIRED`.
pub(crate) const STATUS: &str = r#"for s in $(docker stack services -q "$1"); do
docker service inspect --format 'service {{.Spec.Name}}|{{if .UpdateStatus}}{{.UpdateStatus.State}}|{{if .UpdateStatus.StartedAt}}{{.UpdateStatus.StartedAt.Unix}}{{end}}|{{.UpdateStatus.Message}}{{else}}none||{{end}}' "$s"
done
docker stack services --format 'replicas {{.Name}} {{.Replicas}}' "$1""#;

/// The tasks of service `$1` with their state and error: what a failure report shows.
pub(crate) const TASKS: &str = r#"docker service ps --no-trunc --format '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}' "$1" | head -n 10"#;

/// The edge task's local CA (service `$1`, path `$2`), as a tar stream.
pub(crate) const FETCH_CA: &str = r#"c=$(docker ps -q --filter "label=com.docker.swarm.service.name=$1" | head -n 1)
[ -n "$c" ] || { echo "no running edge task" >&2; exit 1; }
docker cp "$c:$2" -"#;

/// Fenced: remove the secrets project `$1` created for each release in `$2..` (pruned or
/// failed releases), and the edge's Caddyfile configs no task uses any more (a rollback's
/// `docker stack deploy` creates its release's config again from its Caddyfile). Best effort:
/// whatever is still in use stays.
pub(crate) const PRUNE_SECRETS: &str = r#"p=$1; shift
for n in "$@"; do
  ids=$(docker secret ls -q --filter "label=alembic.project=$p" --filter "label=alembic.release=$n")
  if [ -n "$ids" ]; then docker secret rm $ids >/dev/null 2>&1 || true; fi
done
for c in $(docker config ls --format '{{.Name}}' --filter "name=${p}_caddyfile_"); do
  docker config rm "$c" >/dev/null 2>&1 || true
done
exit 0"#;

/// Fenced: remove the stack (a failed first release; named volumes stay).
pub(crate) const STACK_RM: &str = r#"docker stack rm "$1" 9>&-"#;

/// The swarm engine's view of a droplet: the manager's [`Target`] and the stack's name.
#[derive(Clone, Debug)]
pub(crate) struct Swarm {
    pub target: Target,
    /// The stack's name: the project's.
    pub stack: String,
    /// Per workload secret: (env var name, the docker secret name without its version).
    pub secrets: Vec<(String, String)>,
}

impl Swarm {
    pub(crate) fn new(t: &Topology, target: Target) -> Swarm {
        let mut secrets: Vec<(String, String)> = t
            .on_plane(Plane::Droplet)
            .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
            .map(|s| {
                let docker = alembic_render::swarm::secret_name(t, &s);
                (s, docker)
            })
            .collect();
        secrets.sort();
        secrets.dedup();
        Swarm {
            target,
            stack: t.project.name.to_string(),
            secrets,
        }
    }

    fn fenced(&self, step: &str, fence: &Fence, body: &str, args: &[String]) -> Op {
        lease::fenced_op(
            &self.target.ssh,
            PLANE,
            step,
            &self.target.root,
            fence,
            body,
            args,
        )
    }

    /// Read-only: is docker on the droplet, and is it a swarm manager?
    pub(crate) fn engine_check_op(&self) -> Op {
        self.target
            .script("check docker swarm on the manager", ENGINE_CHECK, &[])
            .read_only()
    }

    /// Create release `n`'s docker secrets from the applying environment (stdin only).
    pub(crate) fn secrets_op(&self, n: u64, fence: &Fence) -> Option<Op> {
        if self.secrets.is_empty() {
            return None;
        }
        let mut args = vec![n.to_string(), self.stack.clone()];
        for (var, docker) in &self.secrets {
            args.push(format!("{docker}_{n}"));
            args.push(alembic_render::compose::secret_variable(var));
        }
        let names = self.secrets.iter().map(|(v, _)| v.clone()).collect();
        Some(
            self.fenced(
                &format!("create the docker secrets of release {n} (from stdin)"),
                fence,
                SECRETS,
                &args,
            )
            .with_stdin(Stdin::ShellEnv { names }),
        )
    }

    pub(crate) fn deploy_op(&self, n: u64, fence: &Fence) -> Op {
        self.fenced(
            &format!("docker stack deploy release {n}"),
            fence,
            DEPLOY,
            &[n.to_string(), self.stack.clone(), CONVERGE_SECS.to_string()],
        )
    }

    pub(crate) fn status_op(&self) -> Op {
        self.target
            .script(
                "read the services' update status",
                STATUS,
                std::slice::from_ref(&self.stack),
            )
            .read_only()
    }

    pub(crate) fn tasks_op(&self, service: &str) -> Op {
        self.target
            .script(&format!("tasks of {service}"), TASKS, &[service.to_owned()])
            .read_only()
    }

    pub(crate) fn fetch_ca_op(&self) -> Op {
        self.target
            .script(
                "fetch the edge's local CA",
                FETCH_CA,
                &[
                    format!("{}_{}", self.stack, alembic_render::compose::EDGE_SERVICE),
                    crate::droplet::EDGE_CA_PATH.to_owned(),
                ],
            )
            .read_only()
    }

    /// Remove the docker secrets of `releases` and the configs no task uses (see
    /// [`PRUNE_SECRETS`]); None when no release goes.
    pub(crate) fn prune_secrets_op(&self, releases: &[u64], fence: &Fence) -> Option<Op> {
        if releases.is_empty() {
            return None;
        }
        let mut args = vec![self.stack.clone()];
        args.extend(releases.iter().map(u64::to_string));
        Some(self.fenced(
            "remove old releases' docker secrets and unused configs",
            fence,
            PRUNE_SECRETS,
            &args,
        ))
    }

    pub(crate) fn stack_rm_op(&self, fence: &Fence) -> Op {
        self.fenced(
            "docker stack rm",
            fence,
            STACK_RM,
            std::slice::from_ref(&self.stack),
        )
    }

    /// The CA fetch (private CA only) and one probe per public route.
    pub(crate) fn probe_ops(&self) -> (Option<Op>, Vec<(ProbeTarget, Op)>) {
        let (_, probes) = self.target.probe_ops();
        (self.target.tls_internal.then(|| self.fetch_ca_op()), probes)
    }
}

/// Whether the droplet can take a stack, from [`ENGINE_CHECK`]'s line: Err says why not.
pub(crate) fn readiness(line: &str) -> Result<(), String> {
    match line.trim() {
        "swarm active true" => Ok(()),
        "docker missing" => Err("docker is not installed on the droplet".into()),
        "docker unreachable" => {
            Err("docker is installed on the droplet but its engine does not answer".into())
        }
        l if l.starts_with("swarm active") => Err(
            "the droplet is a swarm worker, not a manager: the first droplet must be the manager"
                .into(),
        ),
        l if l.starts_with("swarm ") => Err(format!(
            "the droplet's Docker is not in swarm mode ({}): run `docker swarm init \
             --advertise-addr <its private address>` there once",
            l.trim_start_matches("swarm ")
        )),
        l => Err(format!("unexpected answer from the droplet: {l:?}")),
    }
}

/// The files of a swarm release: the stack file with pins and versioned secret names
/// (`swarm::render_release`), and the Caddyfile the edge's config is made from.
pub(crate) fn bundle(
    t: &Topology,
    set: &ArtifactSet,
    pins: Vec<crate::images::Pin>,
) -> Result<Bundle, String> {
    if set.get(alembic_render::swarm::PATH).is_none() {
        return Err(format!(
            "the rendered release lacks {}: this build cannot deploy a swarm stack",
            alembic_render::swarm::PATH
        ));
    }
    let map = crate::images::pin_map(&pins);
    let stack = alembic_render::swarm::render_release(t, &map);
    let caddyfile = set
        .get("infra/caddy/Caddyfile")
        .map(|a| a.bytes.clone())
        .filter(|b| !b.is_empty())
        .ok_or("the rendered release lacks infra/caddy/Caddyfile")?;
    let mut files = BTreeMap::new();
    files.insert(
        STACK.to_owned(),
        stack
            .into_iter()
            .next()
            .map(|a| a.bytes)
            .unwrap_or_default(),
    );
    files.insert(CADDYFILE.to_owned(), caddyfile);
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
    images.extend(map.into_values());
    Ok(Bundle {
        files,
        secrets,
        images,
        pins,
        volumes: alembic_render::compose::workload_volume_names(t),
    })
}

/// The ops of one swarm release, in the order they run on the happy path (the fencing token
/// shows as `<token>` until the droplet hands it out).
#[derive(Clone, Debug)]
pub(crate) struct SwarmOps {
    pub number: u64,
    pub base: Option<u64>,
    pub lease: Lease,
    pub entry: LedgerEntry,
    pub take_lease: Op,
    pub images: Vec<Delivery>,
    pub prepare: Op,
    pub uploads: Vec<Op>,
    pub secrets: Option<Op>,
    pub deploy: Op,
    pub status: Op,
    pub fetch_ca: Option<Op>,
    pub probes: Vec<(ProbeTarget, Op)>,
    pub switch: Op,
    pub ledger: Op,
    pub prune: Option<Op>,
    pub prune_secrets: Option<Op>,
    pub release_lease: Op,
    pub close: Op,
    pub base_ledger: Ledger,
    pub base_sha: Option<String>,
    pub base_dirs: Vec<u64>,
}

impl SwarmOps {
    pub(crate) fn to_vec(&self) -> Vec<Op> {
        let mut v = vec![self.take_lease.clone()];
        v.extend(self.images.iter().flat_map(|d| d.ops()));
        v.push(self.prepare.clone());
        v.extend(self.uploads.iter().cloned());
        v.extend(self.secrets.iter().cloned());
        v.push(self.deploy.clone());
        v.push(self.status.clone());
        v.extend(self.fetch_ca.iter().cloned());
        v.extend(self.probes.iter().map(|(_, o)| o.clone()));
        v.push(self.switch.clone());
        v.push(self.ledger.clone());
        v.extend(self.prune.iter().cloned());
        v.extend(self.prune_secrets.iter().cloned());
        v.push(self.release_lease.clone());
        v.push(self.close.clone());
        v
    }
}

/// A planned swarm deploy: the plan to show, the ops to run (None: nothing to do), and whether
/// the manager can take it (Err: why apply refuses before touching anything).
pub(crate) struct Planned {
    pub plane: PlanePlan,
    pub ops: Option<SwarmOps>,
    pub ready: Result<(), String>,
}

/// Plan the deploy of `bundle` over `state`. Pure.
pub(crate) fn plan(
    sw: &Swarm,
    bundle: &Bundle,
    state: RemoteState,
    lease: Lease,
    by: &str,
    ready: Result<(), String>,
) -> Planned {
    let target = &sw.target;
    let mut plane = PlanePlan::new(PLANE);
    plane.notes.push(format!(
        "engine swarm: stack `{}` on the manager (the first droplet); images arrive as with compose \
         (`docker save | docker load` over ssh, or a registry pull by digest), and \
         `--resolve-image never` runs them as delivered: with more than one node, set \
         `droplet.registry` so every node can pull them",
        sw.stack
    ));
    if let Err(why) = &ready {
        plane.notes.push(format!("apply will refuse: {why}"));
    }
    plane.ops.extend(target.address_op.iter().cloned());
    plane.ops.push(sw.engine_check_op());
    let Some((n, entry)) = next_release(&mut plane, target, bundle, &state, by) else {
        return Planned {
            plane,
            ops: None,
            ready,
        };
    };
    let ops = build(sw, bundle, &state, n, entry, &lease);
    plane.ops.extend(ops.to_vec());
    Planned {
        plane,
        ops: Some(ops),
        ready,
    }
}

fn build(
    sw: &Swarm,
    bundle: &Bundle,
    state: &RemoteState,
    n: u64,
    entry: LedgerEntry,
    lease: &Lease,
) -> SwarmOps {
    let target = &sw.target;
    let fence = lease.fence();
    let root = target.root.clone();
    let mut next = state.ledger.clone();
    next.format_version = 1;
    next.current = Some(n);
    next.releases.push(entry.clone());
    let mut dirs = state.dirs.clone();
    dirs.push(n);
    let pruned = next.prune(&dirs, target.keep);
    let (fetch_ca, probes) = sw.probe_ops();
    SwarmOps {
        number: n,
        base: state.ledger.current,
        lease: lease.clone(),
        take_lease: lease::acquire_op(&target.ssh, PLANE, &root, lease),
        images: deliveries(target, &bundle.pins),
        prepare: target.prepare_op(n, &fence),
        uploads: bundle
            .files
            .iter()
            .map(|(name, bytes)| target.upload_op(n, name, bytes, &fence))
            .collect(),
        secrets: sw.secrets_op(n, &fence),
        deploy: sw.deploy_op(n, &fence),
        status: sw.status_op(),
        fetch_ca,
        probes,
        switch: target.link_op(n, "current", &fence),
        ledger: target.ledger_op(&next, state.ledger_sha.as_deref(), Some(n), &fence),
        prune: target.prune_op(&pruned, &fence),
        prune_secrets: sw.prune_secrets_op(&pruned, &fence),
        release_lease: lease::release_op(&target.ssh, PLANE, &root, &fence),
        close: target.ssh.close_master(PLANE),
        entry,
        base_ledger: state.ledger.clone(),
        base_sha: state.ledger_sha.clone(),
        base_dirs: state.dirs.clone(),
    }
}

/// Ask the manager whether it can take a stack (read-only, run by plans too when the address
/// is known); an unknown address or a dry run against one says nothing yet.
pub(crate) fn check_ready(sw: &Swarm, ex: &mut Executor<'_>) -> Result<(), String> {
    if sw.target.address.is_err() {
        return Err("the droplet's address is not known yet".into());
    }
    let op = sw.engine_check_op();
    match crate::droplet::query(ex, &op) {
        Ok(out) => readiness(out.stdout_text().lines().next().unwrap_or("")),
        Err(e) => Err(e.to_string()),
    }
}
