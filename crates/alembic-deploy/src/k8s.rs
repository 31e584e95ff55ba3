//! The droplet plane on Kubernetes (`droplet.engine = "kubernetes"`, DOKS): apply is
//! `kubectl apply --server-side` of the rendered `infra/k8s/` manifests, fed on stdin (the
//! exact bytes the plan reviewed, never files on disk that may differ), and one Secret per
//! workload with secrets, created from the applying environment at apply time:
//!
//! ```text
//! kubectl apply --server-side -f - < namespace.yaml
//! sh -c 'kubectl create secret generic <w>-secrets --from-env-file=/dev/stdin --dry-run=client -o yaml
//!        | kubectl apply --server-side -f -' < (NAME=value lines)        per workload with secrets
//! kubectl apply --server-side -f - < (every other manifest)
//! kubectl rollout status deployment/<w> --timeout 300s                   per deployment
//! ```
//!
//! The cluster is the one `KUBECONFIG` names (kubectl's own variable, passed to every op by
//! name): the DOKS cluster Terraform creates writes one with `doctl kubernetes cluster
//! kubeconfig save <name>`. Without it, or without `kubectl`, a plan shows the ops and apply
//! refuses before running any. Secret values only ever travel through stdin and the pipe
//! between the two kubectl processes.

use alembic_config::{Plane, Topology};
use alembic_render::ArtifactSet;

use crate::ops::{Op, Stdin};
use crate::plan::PlanePlan;
use crate::stage::Stage;

/// The variable naming the kubeconfig apply uses (kubectl's own).
pub(crate) const KUBECONFIG_ENV: &str = "KUBECONFIG";
/// How long `kubectl rollout status` waits for each Deployment.
pub(crate) const ROLLOUT_TIMEOUT: &str = "300s";
/// The field manager alembic's server-side applies own their fields as.
pub(crate) const FIELD_MANAGER: &str = "alembic";

/// Create (or update) Secret `$2` in namespace `$1` from `NAME=value` lines on stdin, through
/// kubectl's client-side rendering into a server-side apply: the values pass only through
/// stdin and the pipe, never an argument or a file.
pub(crate) const SECRET_SCRIPT: &str = r#"kubectl -n "$1" create secret generic "$2" --from-env-file=/dev/stdin --dry-run=client -o yaml | kubectl apply --server-side --field-manager "$3" -f -"#;

/// A planned Kubernetes apply: the plan to show, the ops to run, and whether they can run
/// (Err: why apply refuses before running any).
pub(crate) struct Planned {
    pub plane: PlanePlan,
    pub ops: Vec<Op>,
    pub ready: Result<(), String>,
}

fn kubectl_op(step: impl Into<String>, args: &[&str]) -> Op {
    Op::new(
        Stage::Droplet,
        step,
        "kubectl",
        args.iter().map(|a| (*a).to_owned()).collect(),
    )
    .with_env([KUBECONFIG_ENV.to_owned()])
}

fn apply_op(step: &str, bytes: Vec<u8>) -> Op {
    kubectl_op(
        step,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            FIELD_MANAGER,
            "-f",
            "-",
        ],
    )
    .with_stdin(Stdin::Bytes { data: bytes })
}

/// The manifests under `infra/k8s/` in `set`, the namespace's file first, as one stream each.
fn manifests(set: &ArtifactSet) -> (Vec<u8>, Vec<u8>) {
    let ns_path = format!("{}/namespace.yaml", alembic_render::k8s::DIR);
    let mut ns = Vec::new();
    let mut rest = Vec::new();
    let prefix = format!("{}/", alembic_render::k8s::DIR);
    for a in set.iter() {
        if !a.path.starts_with(&prefix) {
            continue;
        }
        let out = if a.path == ns_path {
            &mut ns
        } else {
            &mut rest
        };
        if !out.is_empty() {
            out.extend_from_slice(b"---\n");
        }
        out.extend_from_slice(&a.bytes);
    }
    (ns, rest)
}

/// Plan the apply of `t`'s rendered manifests. `kubeconfig`: the value of `KUBECONFIG`;
/// `kubectl`: whether it is on PATH. Runs nothing; it only looks whether the kubeconfig files
/// exist.
pub(crate) fn plan(
    t: &Topology,
    set: &ArtifactSet,
    kubeconfig: Option<&str>,
    kubectl: bool,
) -> Planned {
    let ns = t.project.name.to_string();
    let mut plane = PlanePlan::new(Stage::Droplet);
    let (ns_bytes, rest) = manifests(set);
    let mut ops = vec![apply_op("apply the namespace (server-side)", ns_bytes)];
    for w in t.on_plane(Plane::Droplet).filter(|w| !w.secrets.is_empty()) {
        let name = alembic_render::k8s::secret_name(w);
        ops.push(
            Op::new(
                Stage::Droplet,
                format!("create Secret {name} from the environment (stdin)"),
                "sh",
                vec![
                    "-c".into(),
                    SECRET_SCRIPT.into(),
                    "alembic".into(),
                    ns.clone(),
                    name,
                    FIELD_MANAGER.into(),
                ],
            )
            .with_env([KUBECONFIG_ENV.to_owned()])
            .with_stdin(Stdin::EnvFile {
                names: w.secrets.iter().map(|s| s.to_string()).collect(),
            }),
        );
    }
    ops.push(apply_op("apply the manifests (server-side)", rest));
    let deployments = std::iter::once(alembic_render::compose::EDGE_SERVICE.to_owned())
        .chain(t.on_plane(Plane::Droplet).map(|w| w.name.to_string()));
    for d in deployments {
        ops.push(
            kubectl_op(
                format!("wait for deployment/{d} to roll out"),
                &[
                    "-n",
                    &ns,
                    "rollout",
                    "status",
                    &format!("deployment/{d}"),
                    "--timeout",
                    ROLLOUT_TIMEOUT,
                ],
            )
            .read_only(),
        );
    }
    let ready = readiness(t, kubeconfig, kubectl);
    plane.notes.push(format!(
        "engine kubernetes: the cluster `{KUBECONFIG_ENV}` names (`doctl kubernetes cluster \
         kubeconfig save <cluster>` writes one); manifests go to kubectl on stdin, secrets \
         as Secrets created from this environment"
    ));
    if let Err(why) = &ready {
        plane.notes.push(format!("apply will refuse: {why}"));
    }
    plane.ops = ops.clone();
    Planned { plane, ops, ready }
}

fn readiness(t: &Topology, kubeconfig: Option<&str>, kubectl: bool) -> Result<(), String> {
    if let Some(w) = t.on_plane(Plane::Droplet).find(|w| w.build.is_some()) {
        return Err(format!(
            "workload {} is built (`build`): on kubernetes every workload needs an `image` the \
             cluster can pull",
            w.name
        ));
    }
    match kubeconfig.filter(|k| !k.is_empty()) {
        None => {
            return Err(format!(
                "no kubeconfig: set {KUBECONFIG_ENV} to the cluster's kubeconfig file"
            ))
        }
        Some(k) => {
            if let Some(missing) = std::env::split_paths(k).find(|p| !p.is_file()) {
                return Err(format!(
                    "{KUBECONFIG_ENV} names {}, which is not a file",
                    missing.display()
                ));
            }
        }
    }
    if !kubectl {
        return Err("kubectl is not on PATH".into());
    }
    Ok(())
}
