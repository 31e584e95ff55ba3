//! Day two on the droplet, over the deploy's own ssh: `status` (what runs against what the
//! ledger says should), `logs` and `exec` of a workload's container. Every remote command is a
//! fixed script with its data in `$1..$n`; the container is found by its compose labels
//! (project + service), so these work for any image, `FROM scratch` included.

use serde::Serialize;

use crate::droplet::{DeployError, Target, PLANE};
use crate::ledger::Ledger;
use crate::ops::Op;

/// The ledger, then `docker inspect` of every container of the compose project (a JSON array;
/// `[]` when there is none).
const STATUS: &str = r#"r=$1; p=$2
if [ -f "$r/ledger.json" ]; then echo '@@alembic-ledger@@'; cat "$r/ledger.json"; fi
echo '@@alembic-containers@@'
ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p") || exit 1
if [ -n "$ids" ]; then docker inspect $ids; else echo '[]'; fi"#;

/// The newest container of service `$2` in project `$1` (running or not), or exit 1 naming it.
const FIND: &str = r#"p=$1; s=$2; shift 2
c=$(docker ps -aq --latest --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$s")
[ -n "$c" ] || { echo "no container for workload $s on the droplet" >&2; exit 1; }
"#;

/// One workload as it runs, against the ledger's current release.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WorkloadStatus {
    /// The workload's name (its compose service).
    pub workload: String,
    /// The ledger's current release (every workload runs the current release's compose file).
    pub release: Option<u64>,
    /// Docker's container state (`running`, `exited`, ...), or `missing`.
    pub state: String,
    /// Docker's health (`healthy`, `unhealthy`, `starting`) when the workload has a healthcheck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The image ID the container runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image the ledger pins for this workload in the current release (`build` workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
    /// When the container last started (RFC 3339, as docker reports it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Every way what runs differs from what the ledger says should (empty: none).
    pub drift: Vec<String>,
    /// The droplet it runs on, when the config has several (its address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub droplet: Option<String>,
}

/// `alembic status`: the droplet's current release and how each workload runs it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Status {
    /// The JSON document's version (1).
    pub format_version: u32,
    /// The ledger's current release (None: nothing deployed yet).
    pub release: Option<u64>,
    /// Every droplet workload, the edge first.
    pub workloads: Vec<WorkloadStatus>,
    /// True when any workload drifted (the command then exits 1).
    pub drift: bool,
    /// Several droplets: each one's status, in the configured order (absent for one droplet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub droplets: Option<Vec<DropletStatus>>,
}

/// One droplet of several, as `alembic status` read it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DropletStatus {
    /// The droplet's address.
    pub address: String,
    /// Its ledger's current release (None: nothing deployed there yet, or not read).
    pub release: Option<u64>,
    /// Its workloads, the edge first (empty when it could not be read).
    pub workloads: Vec<WorkloadStatus>,
    /// True when any of its workloads drifted.
    pub drift: bool,
    /// Why it could not be read (ssh unreachable, ...); the command then exits 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Status {
    /// The status of several droplets, each read on its own (`Err`: why it could not be).
    /// `release` is the release every droplet has current (None when they differ or one was
    /// not read), `workloads` every droplet's workloads tagged with its address, `drift` true
    /// when any droplet drifted; `droplets` holds each one's status.
    pub fn of_droplets(read: Vec<(String, Result<Status, String>)>) -> Status {
        let mut droplets = Vec::new();
        let mut workloads = Vec::new();
        for (address, r) in read {
            let d = match r {
                Ok(s) => DropletStatus {
                    address,
                    release: s.release,
                    workloads: s.workloads,
                    drift: s.drift,
                    error: None,
                },
                Err(e) => DropletStatus {
                    address,
                    release: None,
                    workloads: Vec::new(),
                    drift: false,
                    error: Some(e),
                },
            };
            workloads.extend(d.workloads.iter().cloned().map(|mut w| {
                w.droplet = Some(d.address.clone());
                w
            }));
            droplets.push(d);
        }
        let first = droplets.first().and_then(|d| d.release);
        let same = droplets
            .iter()
            .all(|d| d.error.is_none() && d.release == first);
        Status {
            format_version: 1,
            release: if same { first } else { None },
            drift: droplets.iter().any(|d| d.drift),
            workloads,
            droplets: Some(droplets),
        }
    }
}

pub(crate) fn status_op(target: &Target) -> Op {
    target
        .ssh
        .script(
            PLANE,
            "read ledger and containers",
            STATUS,
            &[target.root.clone(), target.project.clone()],
        )
        .read_only()
}

/// `docker logs [--follow] [--since D] [--tail N]` of `workload`'s container (read-only).
pub(crate) fn logs_op(
    target: &Target,
    workload: &str,
    follow: bool,
    since: Option<&str>,
    tail: Option<u64>,
) -> Op {
    let mut args = vec![target.project.clone(), workload.to_owned()];
    if follow {
        args.push("--follow".into());
    }
    if let Some(s) = since {
        args.push("--since".into());
        args.push(s.to_owned());
    }
    if let Some(n) = tail {
        args.push("--tail".into());
        args.push(n.to_string());
    }
    let script = format!(r#"{FIND}exec docker logs "$@" "$c""#);
    target
        .ssh
        .script(PLANE, &format!("logs of {workload}"), &script, &args)
        .read_only()
}

/// `docker exec <container> CMD...` in `workload`'s container (no shell in between: the command
/// is argv, as given).
pub(crate) fn exec_op(target: &Target, workload: &str, cmd: &[String]) -> Op {
    let mut args = vec![target.project.clone(), workload.to_owned()];
    args.extend(cmd.iter().cloned());
    let script = format!(r#"{FIND}exec docker exec "$c" "$@""#);
    target
        .ssh
        .script(PLANE, &format!("exec in {workload}"), &script, &args)
}

/// Read the answer of [`status_op`] into a status of `workloads` (the edge first, then the
/// droplet workloads in file order).
pub(crate) fn interpret_status(text: &str, workloads: &[String]) -> Result<Status, DeployError> {
    let (head, containers) = text
        .split_once("@@alembic-containers@@\n")
        .ok_or_else(|| step("the droplet's answer has no container list"))?;
    let ledger = Ledger::parse(head.strip_prefix("@@alembic-ledger@@\n").unwrap_or(""))
        .map_err(|m| step(&m))?;
    let list: Vec<serde_json::Value> = serde_json::from_str(containers.trim())
        .map_err(|e| step(&format!("docker inspect answered something else: {e}")))?;
    let current = ledger.current_release();
    let release = ledger.current;
    let mut out = Vec::new();
    for w in workloads {
        // The newest container of the service (compose replaces them: normally one).
        let c = list
            .iter()
            .filter(|c| c["Config"]["Labels"]["com.docker.compose.service"] == w.as_str())
            .max_by_key(|c| c["Created"].as_str().unwrap_or("").to_owned());
        let pinned = current.and_then(|r| r.pins.get(w).cloned());
        let mut drift = Vec::new();
        let Some(c) = c else {
            if release.is_some() {
                drift.push("no container: it was removed or never started".to_owned());
            }
            out.push(WorkloadStatus {
                workload: w.clone(),
                release,
                state: "missing".into(),
                health: None,
                image: None,
                pinned,
                started_at: None,
                drift,
                droplet: None,
            });
            continue;
        };
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let state = s(&c["State"]["Status"]).unwrap_or_else(|| "unknown".into());
        let health = s(&c["State"]["Health"]["Status"]);
        let image = s(&c["Image"]);
        if state != "running" {
            drift.push(format!(
                "container is {state} (exit code {}): it was stopped or crashed",
                c["State"]["ExitCode"]
            ));
        }
        if health.as_deref() == Some("unhealthy") {
            drift.push("container is unhealthy".into());
        }
        if let (Some(p), Some(i)) = (&pinned, &image) {
            if p.starts_with("sha256:") && p != i {
                drift.push(format!(
                    "runs image {i}, but release {} pins {p}",
                    release.unwrap_or(0)
                ));
            }
        }
        out.push(WorkloadStatus {
            workload: w.clone(),
            release,
            state,
            health,
            image,
            pinned,
            started_at: s(&c["State"]["StartedAt"]),
            drift,
            droplet: None,
        });
    }
    let drift = out.iter().any(|w| !w.drift.is_empty());
    Ok(Status {
        format_version: 1,
        release,
        workloads: out,
        drift,
        droplets: None,
    })
}

fn step(detail: &str) -> DeployError {
    DeployError::Step {
        step: "read ledger and containers".into(),
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drift is what runs against the ledger: stopped, missing, or another image than pinned.
    #[test]
    fn drift_is_stopped_missing_or_another_image() {
        let ledger = r#"{"format_version":1,"current":2,"releases":[{"number":2,"artifacts":{},
            "images":[],"pins":{"api":"sha256:aaa"},"secrets":[],"time":"t","outcome":"deployed"}]}"#;
        let containers = r#"[
          {"Created":"1","Image":"sha256:bbb","Config":{"Labels":{"com.docker.compose.service":"api"}},
           "State":{"Status":"running","StartedAt":"2026-01-01T00:00:00Z","ExitCode":0}},
          {"Created":"1","Image":"sha256:ccc","Config":{"Labels":{"com.docker.compose.service":"web"}},
           "State":{"Status":"exited","ExitCode":137}},
          {"Created":"1","Image":"sha256:ddd","Config":{"Labels":{"com.docker.compose.service":"edge"}},
           "State":{"Status":"running","Health":{"Status":"healthy"}}}
        ]"#;
        let text = format!("@@alembic-ledger@@\n{ledger}\n@@alembic-containers@@\n{containers}\n");
        let names: Vec<String> = ["edge", "api", "web", "gone"].map(String::from).to_vec();
        let s = interpret_status(&text, &names).unwrap();
        assert!(s.drift);
        assert_eq!(s.release, Some(2));
        assert!(s.workloads[0].drift.is_empty());
        assert_eq!(s.workloads[0].health.as_deref(), Some("healthy"));
        assert_eq!(
            s.workloads[1].drift,
            ["runs image sha256:bbb, but release 2 pins sha256:aaa"]
        );
        assert!(s.workloads[2].drift[0].contains("exited (exit code 137)"));
        assert_eq!(s.workloads[3].state, "missing");
        // Nothing deployed yet, nothing running: no drift.
        let empty = interpret_status("@@alembic-containers@@\n[]\n", &names).unwrap();
        assert!(!empty.drift);
    }

    /// Several droplets: drift on any one is the fleet's; `release` only when all agree; a
    /// droplet that could not be read keeps its place with the reason.
    #[test]
    fn a_fleet_status_keeps_each_droplet_and_tags_its_workloads() {
        let names: Vec<String> = ["edge", "api"].map(String::from).to_vec();
        let ledger = |n: u64| {
            format!(
                r#"@@alembic-ledger@@
{{"format_version":1,"current":{n},"releases":[{{"number":{n},"artifacts":{{}},"images":[],
"pins":{{}},"secrets":[],"time":"t","outcome":"deployed"}}]}}
@@alembic-containers@@
[{{"Created":"1","Image":"sha256:e","Config":{{"Labels":{{"com.docker.compose.service":"edge"}}}},
  "State":{{"Status":"running"}}}},
 {{"Created":"1","Image":"sha256:a","Config":{{"Labels":{{"com.docker.compose.service":"api"}}}},
  "State":{{"Status":"running"}}}}]
"#
            )
        };
        let healthy = interpret_status(&ledger(2), &names).unwrap();
        let both = Status::of_droplets(vec![
            ("10.0.0.1".into(), Ok(healthy.clone())),
            ("10.0.0.2".into(), Ok(healthy.clone())),
        ]);
        assert_eq!(both.release, Some(2));
        assert!(!both.drift);
        assert_eq!(both.workloads.len(), 4);
        assert_eq!(both.workloads[2].droplet.as_deref(), Some("10.0.0.2"));
        let v = serde_json::to_value(&both).unwrap();
        assert_eq!(v["droplets"][1]["address"], "10.0.0.2");
        assert!(v["droplets"][1]["workloads"][0].get("droplet").is_none());
        // One droplet behind, one stopped container, one unreadable.
        let mut stopped = interpret_status(&ledger(1), &names).unwrap();
        stopped.workloads[1]
            .drift
            .push("container is exited".into());
        stopped.drift = true;
        let mixed = Status::of_droplets(vec![
            ("10.0.0.1".into(), Ok(healthy)),
            ("10.0.0.2".into(), Ok(stopped)),
            (
                "10.0.0.3".into(),
                Err("cannot reach the droplet over ssh".into()),
            ),
        ]);
        assert_eq!(mixed.release, None);
        assert!(mixed.drift);
        let d = mixed.droplets.unwrap();
        assert_eq!(d[1].release, Some(1));
        assert_eq!(
            d[2].error.as_deref(),
            Some("cannot reach the droplet over ssh")
        );
        assert!(d[2].workloads.is_empty());
        // One droplet: the document as before, no `droplets`, no `droplet` per workload.
        let one = serde_json::to_value(interpret_status(&ledger(2), &names).unwrap()).unwrap();
        assert!(one.get("droplets").is_none());
        assert!(one["workloads"][0].get("droplet").is_none());
    }
}
