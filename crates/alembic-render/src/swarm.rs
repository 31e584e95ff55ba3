//! `infra/docker/stack.yaml` (`droplet.engine = "swarm"`): the droplet plane as a Docker Swarm
//! stack, serialized by `yaml_serde` from the typed structs below. `docker stack config -c`
//! accepts it (tested).
//!
//! How it differs from `compose.yaml`, and why:
//! - no `build`, `container_name` or `restart`: a stack runs images every node can pull, swarm
//!   names the tasks, and `deploy.restart_policy` replaces `restart`;
//! - `depends_on` in list form (swarm starts services independently; the list documents order);
//! - every service updates through `deploy.update_config`: `failure_action: rollback` with a
//!   `monitor` window, `start-first` so a new task is up before the old one stops. The edge is
//!   the exception: it publishes 80/443 in `host` mode on every node (`mode: global`), and two
//!   tasks cannot bind one host port, so it updates `stop-first`, one node at a time;
//! - `endpoint_mode: dnsrr` everywhere: the edge reaches services by DNS round robin over the
//!   overlay network, so nothing depends on the routing mesh's IPVS (absent on some kernels) and
//!   Caddy's own health checks pick the upstream task;
//! - the Caddyfile is a swarm `config` whose name carries its content's hash (configs are
//!   immutable; a changed file is a new config, and the edge rolls to it);
//! - secrets are external `docker secret`s named `<project>_<NAME>`, created from stdin at
//!   apply time and mounted at `/run/secrets/<NAME>`; the workload gets `<NAME>_FILE` pointing
//!   there (the Docker convention). No value is ever in this file or on disk.
//!
//! Exposure by construction, as in compose: only the edge has `ports`; workloads sit on the
//! `internal` overlay network only.

use std::collections::BTreeMap;

use alembic_config::{Plane, Topology, Workload};
use serde::Serialize;

use crate::compose::{
    self, escape_literal, image_reference, quote_ambiguous_scalars, workload_tmpfs, Healthcheck,
    CADDYFILE_IN_CONTAINER, EDGE_SERVICE, INTERNAL_NETWORK, PUBLIC_NETWORK,
};
use crate::ordered::Ordered;
use crate::{Artifact, ArtifactKind};

/// Where the swarm stack is rendered (`engine = "swarm"`).
pub const PATH: &str = "infra/docker/stack.yaml";
/// How long swarm watches an updated task before it counts the update as done.
pub const MONITOR: &str = "30s";
/// Where a secret is mounted in a task.
pub const SECRETS_DIR: &str = "/run/secrets";
/// The variable `docker stack deploy` reads a release's secret version from (see
/// [`render_release`]).
pub const SECRETS_VERSION_VAR: &str = "ALEMBIC_SECRETS_VERSION";

#[derive(Serialize)]
struct StackFile {
    services: Ordered<Service>,
    networks: BTreeMap<&'static str, Network>,
    volumes: BTreeMap<String, BTreeMap<String, String>>,
    configs: BTreeMap<&'static str, External>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    secrets: BTreeMap<String, External>,
}

#[derive(Serialize)]
struct Network {
    driver: &'static str,
}

/// A swarm object defined outside the stack (a secret) or from a file (a config).
#[derive(Serialize)]
struct External {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

#[derive(Serialize, Default)]
struct Service {
    image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<Port>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Mount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    configs: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<FileRef>,
    networks: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    read_only: bool,
    tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    cap_drop: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_add: Vec<&'static str>,
    deploy: Deploy,
    logging: Logging,
}

/// Long syntax with `mode: host`: published on the node itself, not through the routing mesh.
#[derive(Serialize)]
struct Port {
    target: u16,
    published: u16,
    protocol: &'static str,
    mode: &'static str,
}

#[derive(Serialize)]
struct Mount {
    #[serde(rename = "type")]
    kind: &'static str,
    source: String,
    target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
}

/// A config or secret mounted into a task.
#[derive(Serialize)]
struct FileRef {
    source: String,
    target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
}

#[derive(Serialize, Default)]
struct Deploy {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<u32>,
    endpoint_mode: &'static str,
    restart_policy: RestartPolicy,
    update_config: UpdateConfig,
    rollback_config: UpdateConfig,
}

#[derive(Serialize, Default)]
struct RestartPolicy {
    condition: &'static str,
    delay: &'static str,
    window: &'static str,
}

#[derive(Serialize, Default)]
struct UpdateConfig {
    parallelism: u32,
    delay: &'static str,
    order: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_action: Option<&'static str>,
    monitor: &'static str,
}

#[derive(Serialize)]
struct Logging {
    driver: &'static str,
    options: BTreeMap<&'static str, &'static str>,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            driver: "json-file",
            options: [("max-file", "3"), ("max-size", "10m")].into(),
        }
    }
}

/// The swarm secret holding workload secret `name`: `<project>_<name>`.
pub fn secret_name(t: &Topology, name: &str) -> String {
    format!("{}_{name}", t.project.name)
}

/// The swarm config holding the Caddyfile: named after its content, since configs are immutable.
pub fn caddyfile_config_name(t: &Topology) -> String {
    let caddyfile = crate::caddy::render(t);
    let bytes = caddyfile.first().map(|a| a.bytes.as_slice()).unwrap_or(b"");
    let hash = crate::manifest::sha256_hex(bytes);
    format!("{}_caddyfile_{}", t.project.name, &hash[..12])
}

/// The swarm secret holding workload secret `name` for release `version`: swarm secrets are
/// immutable, so every release creates its own (`<project>_<name>_<version>`) and an update
/// rotates them.
pub fn secret_name_for(t: &Topology, name: &str, version: u64) -> String {
    format!("{}_{version}", secret_name(t, name))
}

/// The stack file of `t` and the configs it names.
pub fn render(t: &Topology) -> Vec<Artifact> {
    to_artifact(&stack_file(t, None))
}

/// The stack file a release deploys: `build` workloads' images pinned (`pins`: workload name ->
/// image, as `compose::render_pinned` takes them), and each secret named
/// `<project>_<NAME>_${ALEMBIC_SECRETS_VERSION}`, the version `docker stack deploy` gets in its
/// environment (the release number, see [`secret_name_for`]). The file is the same for two
/// releases of the same config, so a plan still sees "nothing changed"; a rollback deploys
/// the old release's file with the old release's number.
pub fn render_release(t: &Topology, pins: &BTreeMap<String, String>) -> Vec<Artifact> {
    to_artifact(&stack_file(t, Some(pins)))
}

fn to_artifact(file: &StackFile) -> Vec<Artifact> {
    // Plain structs with string keys: serializing cannot fail; an empty file would fail the
    // `docker stack config` test loudly if it ever did.
    let yaml = yaml_serde::to_string(file).unwrap_or_default();
    vec![Artifact::new(
        PATH,
        quote_ambiguous_scalars(&yaml),
        Plane::Droplet,
        ArtifactKind::Compose,
    )]
}

/// `release`: the pins of a release's file (see [`render_release`]); None for the artifact.
fn stack_file(t: &Topology, release: Option<&BTreeMap<String, String>>) -> StackFile {
    let mut services = vec![(EDGE_SERVICE.to_owned(), edge(t))];
    let mut secrets = BTreeMap::new();
    for w in t.on_plane(Plane::Droplet) {
        let mut service = workload(t, w);
        if let Some(pin) = release.and_then(|p| p.get(w.name.as_str())) {
            service.image = pin.clone();
        }
        services.push((w.name.to_string(), service));
        for s in &w.secrets {
            let name = match release {
                None => secret_name(t, s.as_str()),
                Some(_) => format!(
                    "{}_${{{SECRETS_VERSION_VAR}:?the release number, set by alembic apply}}",
                    secret_name(t, s.as_str())
                ),
            };
            secrets.insert(
                s.to_string(),
                External {
                    name,
                    external: Some(true),
                    file: None,
                },
            );
        }
    }
    let mut volumes: BTreeMap<String, BTreeMap<String, String>> = ["caddy_config", "caddy_data"]
        .into_iter()
        .map(|n| (n.to_owned(), BTreeMap::new()))
        .collect();
    for w in t.on_plane(Plane::Droplet) {
        for m in &w.volumes {
            volumes.entry(m.name.clone()).or_default();
        }
    }
    StackFile {
        services: Ordered(services),
        networks: [
            (INTERNAL_NETWORK, Network { driver: "overlay" }),
            (PUBLIC_NETWORK, Network { driver: "overlay" }),
        ]
        .into(),
        volumes,
        configs: [(
            "caddyfile",
            External {
                name: caddyfile_config_name(t),
                external: None,
                // The release directory holds the Caddyfile beside this file.
                file: Some("./Caddyfile".to_owned()),
            },
        )]
        .into(),
        secrets,
    }
}

fn deploy(t: &Topology, global: bool) -> Deploy {
    Deploy {
        mode: if global { "global" } else { "replicated" },
        replicas: (!global).then(|| t.droplet.droplet_count() as u32),
        endpoint_mode: "dnsrr",
        restart_policy: RestartPolicy {
            condition: "any",
            delay: "5s",
            window: "30s",
        },
        update_config: UpdateConfig {
            parallelism: t.droplet.scale.rollout.max_unavailable,
            delay: "5s",
            // Two edge tasks cannot hold one host port on a node.
            order: if global { "stop-first" } else { "start-first" },
            failure_action: Some("rollback"),
            monitor: MONITOR,
        },
        rollback_config: UpdateConfig {
            parallelism: t.droplet.scale.rollout.max_unavailable,
            delay: "0s",
            order: if global { "stop-first" } else { "start-first" },
            failure_action: None,
            monitor: MONITOR,
        },
    }
}

fn edge(t: &Topology) -> Service {
    let d = &t.droplet;
    let port = |published: u16, target: u16| Port {
        target,
        published,
        protocol: "tcp",
        mode: "host",
    };
    Service {
        image: d.edge_image.to_string(),
        command: [
            "caddy",
            "run",
            "--config",
            CADDYFILE_IN_CONTAINER,
            "--adapter",
            "caddyfile",
        ]
        .map(str::to_owned)
        .to_vec(),
        environment: [
            ("XDG_CONFIG_HOME".to_owned(), "/config".to_owned()),
            ("XDG_DATA_HOME".to_owned(), "/data".to_owned()),
        ]
        .into(),
        ports: vec![port(d.http_port.get(), 80), port(d.https_port.get(), 443)],
        volumes: vec![
            Mount {
                kind: "volume",
                source: "caddy_data".to_owned(),
                target: "/data".to_owned(),
                read_only: false,
            },
            Mount {
                kind: "volume",
                source: "caddy_config".to_owned(),
                target: "/config".to_owned(),
                read_only: false,
            },
        ],
        configs: vec![FileRef {
            source: "caddyfile".to_owned(),
            target: CADDYFILE_IN_CONTAINER.to_owned(),
            mode: Some(0o444),
        }],
        networks: vec![INTERNAL_NETWORK, PUBLIC_NETWORK],
        read_only: true,
        tmpfs: vec!["/tmp".to_owned()],
        cap_drop: vec!["ALL"],
        cap_add: vec!["NET_BIND_SERVICE"],
        deploy: deploy(t, true),
        ..Service::default()
    }
}

fn workload(t: &Topology, w: &Workload) -> Service {
    let mut environment: BTreeMap<String, String> = w
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), escape_literal(v.as_str())))
        .collect();
    for s in &w.secrets {
        environment.remove(s.as_str());
        environment.insert(format!("{s}_FILE"), format!("{SECRETS_DIR}/{s}"));
    }
    let secrets = w
        .secrets
        .iter()
        .map(|s| FileRef {
            source: s.to_string(),
            target: s.to_string(),
            mode: Some(0o400),
        })
        .collect();
    let depends_on = w
        .depends_on
        .iter()
        .filter_map(|d| t.workload(d.as_str()))
        .filter(|x| x.plane == Plane::Droplet)
        .map(|x| x.name.to_string())
        .collect();
    let healthcheck = compose::healthcheck(w);
    let cap_add = compose::cap_add(w);
    let image = match (&w.image, &w.build) {
        (Some(i), _) => i.to_string(),
        (None, Some(_)) => image_reference(w),
        (None, None) => String::new(),
    };
    Service {
        image,
        command: w
            .command
            .iter()
            .map(|s| escape_literal(s.as_str()))
            .collect(),
        environment,
        volumes: w
            .volumes
            .iter()
            .map(|m| Mount {
                kind: "volume",
                source: m.name.clone(),
                target: m.target.to_string(),
                read_only: m.read_only,
            })
            .collect(),
        secrets,
        networks: vec![INTERNAL_NETWORK],
        depends_on,
        healthcheck,
        read_only: w.read_only,
        tmpfs: workload_tmpfs(w),
        user: w.user.as_ref().map(|u| u.to_string()),
        cap_drop: vec!["ALL"],
        cap_add,
        deploy: deploy(t, false),
        ..Service::default()
    }
}
