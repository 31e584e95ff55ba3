//! `infra/k8s/*.yaml` (`droplet.engine = "kubernetes"`): the droplet plane on DigitalOcean
//! Kubernetes, typed with `k8s-openapi` (the API release is its cargo feature, the same minor
//! as [`crate::terraform_scale::KUBERNETES_MINOR`]) and serialized to YAML. The tests validate
//! every file with `kubernetes-validate --strict` against that release.
//!
//! Files, all in the namespace named after the project:
//! - `namespace.yaml`;
//! - `<workload>.yaml` per droplet workload: a Deployment (readiness probe on its `health`,
//!   the compose hardening: non-root where `user` is set, read-only root, every capability
//!   dropped, no privilege escalation, RuntimeDefault seccomp, no service-account token) and,
//!   with a `port`, a ClusterIP Service;
//! - `edge.yaml`: the Caddyfile as a ConfigMap, the edge Deployment, and the only public
//!   object: a `LoadBalancer` Service with DigitalOcean's annotations (protocol, certificate or
//!   passthrough, health check, HTTP->HTTPS redirect) and `externalTrafficPolicy: Local`;
//! - `network-policies.yaml`: ingress denied by default; the edge open on 80/443; each service
//!   open on its port only to the edge (when public) and to the workloads that depend on it.
//!
//! Secrets are never rendered: a workload's secrets come from the Secret `<workload>-secrets`,
//! which apply creates from its own environment (`kubectl create secret generic
//! --from-env-file=/dev/stdin`), one per workload so each sees only what it declares.

use std::collections::BTreeMap;

use alembic_config::{LbTls, Plane, Topology, Workload};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, Namespace, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec,
    TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::compose::{CADDYFILE_IN_CONTAINER, EDGE_SERVICE};
use crate::{Artifact, ArtifactKind};

/// Where the Kubernetes manifests are rendered (`engine = "kubernetes"`).
pub const DIR: &str = "infra/k8s";
/// The label every object carries with its workload's name (the selectors use it).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label every object carries with the project's name.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// DigitalOcean's cloud controller reads these on a `LoadBalancer` Service.
pub const DO_ANNOTATION_PREFIX: &str = "service.beta.kubernetes.io/do-loadbalancer-";

/// The Secret apply creates for `w` from the environment (never rendered).
pub fn secret_name(w: &Workload) -> String {
    format!("{}-secrets", w.name)
}

/// The load balancer's (and its certificate's) name, as Terraform names them.
pub fn load_balancer_name(t: &Topology) -> String {
    format!("{}-edge", t.project.name)
}

/// The manifests of `t`: namespace, per workload a Deployment and a Service, the edge's
/// LoadBalancer Service and the NetworkPolicies.
pub fn render(t: &Topology) -> Vec<Artifact> {
    let ns = t.project.name.to_string();
    let mut out = vec![file(
        "namespace.yaml",
        &[doc(&Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some(part_of(t)),
                ..Default::default()
            },
            ..Default::default()
        })],
    )];
    out.push(file("edge.yaml", &edge(t)));
    for w in t.on_plane(Plane::Droplet) {
        let mut docs = vec![doc(&deployment(t, w))];
        if let Some(s) = service(t, w) {
            docs.push(doc(&s));
        }
        out.push(file(&format!("{}.yaml", w.name), &docs));
    }
    out.push(file("network-policies.yaml", &network_policies(t)));
    out
}

/// One object as YAML. k8s-openapi's types serialize `apiVersion` and `kind` themselves; a
/// plain struct with string keys cannot fail to serialize (an empty document would fail the
/// validation test loudly if it ever did).
fn doc<T: Serialize>(v: &T) -> String {
    yaml_serde::to_string(v).unwrap_or_default()
}

fn file(name: &str, docs: &[String]) -> Artifact {
    Artifact::new(
        format!("{DIR}/{name}"),
        docs.join("---\n"),
        Plane::Droplet,
        ArtifactKind::Kubernetes,
    )
}

fn part_of(t: &Topology) -> BTreeMap<String, String> {
    [(PART_OF_LABEL.to_owned(), t.project.name.to_string())].into()
}

fn labels(t: &Topology, name: &str) -> BTreeMap<String, String> {
    let mut l = part_of(t);
    l.insert(NAME_LABEL.to_owned(), name.to_owned());
    l
}

fn selector(name: &str) -> BTreeMap<String, String> {
    [(NAME_LABEL.to_owned(), name.to_owned())].into()
}

fn meta(t: &Topology, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(t.project.name.to_string()),
        labels: Some(labels(t, name)),
        ..Default::default()
    }
}

fn strategy(t: &Topology) -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".to_owned()),
        rolling_update: Some(RollingUpdateDeployment {
            // New pods first; an old one goes only once a new one is ready.
            max_surge: Some(IntOrString::Int(
                t.droplet.scale.rollout.max_unavailable as i32,
            )),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    }
}

/// The compose hardening as a container security context.
fn hardened(user: Option<&str>, bind_low_port: bool) -> SecurityContext {
    // `uid[:gid]` maps to ids; a user *name* cannot be given to Kubernetes, which then only
    // insists the image's user is not root.
    let (uid, gid) = match user {
        Some(u) => {
            let mut parts = u.splitn(2, ':');
            (
                parts.next().and_then(|p| p.parse::<i64>().ok()),
                parts.next().and_then(|p| p.parse::<i64>().ok()),
            )
        }
        None => (None, None),
    };
    SecurityContext {
        run_as_non_root: user.map(|_| uid != Some(0)),
        run_as_user: uid,
        run_as_group: gid,
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: bind_low_port.then(|| vec!["NET_BIND_SERVICE".to_owned()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn pod(t: &Topology, name: &str, replicas: usize, spec: PodSpec) -> Deployment {
    Deployment {
        metadata: meta(t, name),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: LabelSelector {
                match_labels: Some(selector(name)),
                ..Default::default()
            },
            strategy: Some(strategy(t)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(t, name)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..spec
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn deployment(t: &Topology, w: &Workload) -> Deployment {
    let mut env: Vec<EnvVar> = w
        .env
        .iter()
        .filter(|(k, _)| !w.secrets.contains(k))
        .map(|(k, v)| EnvVar {
            name: k.to_string(),
            value: Some(v.to_string()),
            ..Default::default()
        })
        .collect();
    for s in &w.secrets {
        env.push(EnvVar {
            name: s.to_string(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret_name(w),
                    key: s.to_string(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    // /tmp and every tmpfs path as an emptyDir; the root stays read-only.
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, p) in crate::compose::workload_tmpfs(w).iter().enumerate() {
        let name = format!("tmp-{i}");
        volumes.push(empty_dir(&name));
        mounts.push(mount(&name, p, false));
    }
    let readiness = match (&w.health, w.port) {
        (Some(h), Some(p)) => Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(h.to_string()),
                port: IntOrString::Int(i32::from(p.get())),
                ..Default::default()
            }),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        (None, Some(p)) => Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(p.get())),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        _ => None,
    };
    let image = match (&w.image, &w.build) {
        (Some(i), _) => i.to_string(),
        // A built image is pinned at apply time (as in compose); the reference says so.
        _ => crate::compose::image_reference(w),
    };
    let mut security = hardened(
        w.user.as_ref().map(|u| u.as_str()),
        w.port.is_some_and(|p| p.get() < 1024),
    );
    security.read_only_root_filesystem = Some(w.read_only);
    let container = Container {
        name: w.name.to_string(),
        image: Some(image),
        args: (!w.command.is_empty()).then(|| w.command.iter().map(|c| c.to_string()).collect()),
        env: (!env.is_empty()).then_some(env),
        ports: w.port.map(|p| {
            vec![ContainerPort {
                container_port: i32::from(p.get()),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]
        }),
        readiness_probe: readiness,
        security_context: Some(security),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    pod(
        t,
        w.name.as_str(),
        t.droplet.droplet_count(),
        PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            ..Default::default()
        },
    )
}

fn service(t: &Topology, w: &Workload) -> Option<Service> {
    let port = i32::from(w.port?.get());
    Some(Service {
        metadata: meta(t, w.name.as_str()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector(w.name.as_str())),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// DigitalOcean load balancer annotations for the edge Service.
fn do_annotations(t: &Topology) -> BTreeMap<String, String> {
    let lb = t.droplet.scale.load_balancer().unwrap_or_default();
    let a = |k: &str, v: &str| (format!("{DO_ANNOTATION_PREFIX}{k}"), v.to_owned());
    let mut m: BTreeMap<String, String> = [
        a("name", &load_balancer_name(t)),
        a("redirect-http-to-https", "true"),
        a("healthcheck-protocol", "http"),
        a("healthcheck-path", lb.health.as_str()),
        a("healthcheck-port", "80"),
    ]
    .into();
    match lb.tls {
        LbTls::Terminate => {
            m.extend([
                a("protocol", "http"),
                a("tls-ports", "443"),
                a("certificate-name", &load_balancer_name(t)),
            ]);
        }
        LbTls::Passthrough => {
            m.extend([a("protocol", "https"), a("tls-passthrough", "true")]);
        }
    }
    m
}

fn edge(t: &Topology) -> Vec<String> {
    let lb = t.droplet.scale.load_balancer().unwrap_or_default();
    let caddyfile = crate::caddy::render(t)
        .into_iter()
        .next()
        .map(|a| a.text().to_owned())
        .unwrap_or_default();
    let config_name = format!("{EDGE_SERVICE}-caddyfile");
    let config = ConfigMap {
        metadata: meta(t, &config_name),
        data: Some([("Caddyfile".to_owned(), caddyfile)].into()),
        ..Default::default()
    };
    let caddyfile_dir = CADDYFILE_IN_CONTAINER
        .rsplit_once('/')
        .map_or("/etc/caddy", |(d, _)| d);
    let container = Container {
        name: EDGE_SERVICE.to_owned(),
        image: Some(t.droplet.edge_image.to_string()),
        command: Some(
            [
                "caddy",
                "run",
                "--config",
                CADDYFILE_IN_CONTAINER,
                "--adapter",
                "caddyfile",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        env: Some(
            [("XDG_CONFIG_HOME", "/config"), ("XDG_DATA_HOME", "/data")]
                .map(|(k, v)| EnvVar {
                    name: k.to_owned(),
                    value: Some(v.to_owned()),
                    ..Default::default()
                })
                .to_vec(),
        ),
        ports: Some(
            [("http", 80), ("https", 443)]
                .map(|(n, p)| ContainerPort {
                    name: Some(n.to_owned()),
                    container_port: p,
                    protocol: Some("TCP".to_owned()),
                    ..Default::default()
                })
                .to_vec(),
        ),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(80),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        security_context: Some(hardened(None, true)),
        volume_mounts: Some(vec![
            mount("caddyfile", caddyfile_dir, true),
            mount("data", "/data", false),
            mount("config", "/config", false),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    };
    let deployment = pod(
        t,
        EDGE_SERVICE,
        t.droplet.droplet_count(),
        PodSpec {
            containers: vec![container],
            volumes: Some(vec![
                Volume {
                    name: "caddyfile".to_owned(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: config_name.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                empty_dir("data"),
                empty_dir("config"),
                empty_dir("tmp"),
            ]),
            ..Default::default()
        },
    );
    let https_target = match lb.tls {
        // The balancer ends TLS and forwards plain HTTP.
        LbTls::Terminate => 80,
        LbTls::Passthrough => 443,
    };
    let service = Service {
        metadata: ObjectMeta {
            annotations: Some(do_annotations(t)),
            ..meta(t, EDGE_SERVICE)
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".to_owned()),
            // Client addresses reach Caddy, and no node forwards to another node's pod.
            external_traffic_policy: Some("Local".to_owned()),
            selector: Some(selector(EDGE_SERVICE)),
            ports: Some(
                [("http", 80, 80), ("https", 443, https_target)]
                    .map(|(n, port, target)| ServicePort {
                        name: Some(n.to_owned()),
                        port,
                        target_port: Some(IntOrString::Int(target)),
                        protocol: Some("TCP".to_owned()),
                        ..Default::default()
                    })
                    .to_vec(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![doc(&config), doc(&deployment), doc(&service)]
}

fn policy(t: &Topology, name: &str, spec: NetworkPolicySpec) -> String {
    doc(&NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(t.project.name.to_string()),
            labels: Some(part_of(t)),
            ..Default::default()
        },
        spec: Some(spec),
    })
}

fn pods(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(selector(name)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

/// The workloads allowed to reach `w`: the edge when `w` is public, and its dependents.
pub fn allowed_clients<'a>(t: &'a Topology, w: &Workload) -> Vec<&'a str> {
    let mut from = Vec::new();
    if w.is_public() && w.route.is_some() {
        from.push(EDGE_SERVICE);
    }
    for d in t.on_plane(Plane::Droplet) {
        if d.depends_on.iter().any(|x| x == &w.name) {
            from.push(d.name.as_str());
        }
    }
    from
}

fn network_policies(t: &Topology) -> Vec<String> {
    let mut docs = vec![
        policy(
            t,
            "default-deny-ingress",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ..Default::default()
            },
        ),
        policy(
            t,
            EDGE_SERVICE,
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector(EDGE_SERVICE)),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    // From anywhere: the load balancer and the health checks.
                    from: None,
                    ports: Some(vec![tcp(80), tcp(443)]),
                }]),
                ..Default::default()
            },
        ),
    ];
    for w in t.on_plane(Plane::Droplet) {
        let Some(port) = w.port else { continue };
        let from = allowed_clients(t, w);
        if from.is_empty() {
            continue;
        }
        docs.push(policy(
            t,
            w.name.as_str(),
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector(w.name.as_str())),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(from.into_iter().map(pods).collect()),
                    ports: Some(vec![tcp(i32::from(port.get()))]),
                }]),
                ..Default::default()
            },
        ));
    }
    docs
}
