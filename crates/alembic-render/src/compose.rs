//! `infra/docker/compose.yaml`: the droplet's services, serialized by `yaml_serde` from the
//! typed structs below (never a text template).
//!
//! Release layout this file is written for. On the droplet, each release is a directory
//! `<droplet.root>/releases/<n>/` holding, side by side:
//!
//! ```text
//! compose.yaml   this file (rendered at infra/docker/compose.yaml)
//! Caddyfile      the edge's config (rendered at infra/caddy/Caddyfile), mounted read-only
//! .env           mode 0600, written by apply from values streamed over stdin: a POSIX sh
//!                fragment, one `export ALEMBIC_SECRET_<NAME>='value'` line per secret
//! ```
//!
//! Secrets reach compose through the environment of the `docker compose` process, never through
//! compose's dotenv reader: apply sources the release's `.env` in a shell on the droplet and runs
//! `docker compose --env-file /dev/null`, and this file says `NAME: ${ALEMBIC_SECRET_NAME:?...}`.
//! Compose's dotenv parser would change values (`$` expands, `#` starts a comment, quotes are
//! stripped, trailing spaces dropped, and a single-quoted value cannot hold a `'`), and the
//! `env_file` `format: raw` that avoids it is newer than the compose 2.24 an Ubuntu 24.04
//! droplet has. Interpolation substitutes a variable's value in one pass, byte for byte (the
//! value itself is never interpolated again), so any value a shell variable can hold arrives
//! unchanged; the `ALEMBIC_SECRET_` prefix keeps a secret named `PATH`, `DOCKER_HOST` or
//! `COMPOSE_FILE` from steering the shell, docker or compose on the droplet.
//!
//! `docker compose up -d` runs in that directory. The compose project `name:` is the project
//! name, not the directory, so every release replaces the previous release's containers and
//! keeps the same named volumes (Caddy's certificates survive deploys).
//!
//! Exposure rules enforced by construction:
//! - the edge (Caddy) is the only service with `ports`; it publishes `droplet.http_port` and
//!   `droplet.https_port` on `droplet.edge_bind`, always to 80/443 inside the container;
//! - workloads only `expose` their port on the `internal` network, which the edge also joins;
//!   the edge alone sits on `public` too. `internal` is a plain bridge, not `internal: true`,
//!   so workloads keep outbound access (databases, APIs) while publishing nothing;
//! - secrets are `${ALEMBIC_SECRET_NAME:?...}` references, never values; every literal `$` in
//!   a plain value, a command or a healthcheck is written as `$$` so compose does not
//!   interpolate it;
//! - a `healthcheck` only when the workload names one: a compose healthcheck runs inside the
//!   image, and `up --wait` must not depend on tools an image may lack (DESIGN "Applying").
//!
//! The edge image must have `caddy` on its PATH (as the official image does); the edge's
//! command and XDG directories are set here so any such image behaves the same.

use std::collections::BTreeMap;

use alembic_config::{Plane, Topology, Workload};
use serde::Serialize;

use crate::ordered::Ordered;
use crate::{Artifact, ArtifactKind};

/// Where the compose file is rendered.
pub const PATH: &str = "infra/docker/compose.yaml";
/// The edge's compose service name (the reserved workload name).
pub const EDGE_SERVICE: &str = "edge";
/// Where the release's Caddyfile is mounted in the edge container.
pub const CADDYFILE_IN_CONTAINER: &str = "/etc/caddy/Caddyfile";
/// The network every service joins (no route out).
pub const INTERNAL_NETWORK: &str = "internal";
/// The network the edge publishes on.
pub const PUBLIC_NETWORK: &str = "public";

#[derive(Serialize)]
struct ComposeFile {
    name: String,
    services: Ordered<Service>,
    networks: BTreeMap<&'static str, Network>,
    volumes: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct Network {
    driver: &'static str,
}

#[derive(Serialize, Default)]
struct Service {
    image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    restart: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<PublishedPort>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Mount>,
    networks: Vec<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    depends_on: BTreeMap<String, DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    security_opt: Vec<&'static str>,
    cap_drop: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_add: Vec<&'static str>,
    logging: Logging,
}

/// Long port syntax: unambiguous for IPv6 bind addresses, and easy for policy to read.
#[derive(Serialize)]
struct PublishedPort {
    target: u16,
    published: String,
    host_ip: String,
    protocol: &'static str,
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

#[derive(Serialize)]
struct DependsOn {
    condition: &'static str,
}

#[derive(Serialize)]
pub(crate) struct Healthcheck {
    test: Vec<String>,
    interval: &'static str,
    timeout: &'static str,
    retries: u32,
    start_period: &'static str,
}

/// Bounded json-file logs: a chatty service must not fill the droplet's disk.
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

/// Escape a literal for compose: `$` starts an interpolation, `$$` is a literal dollar.
pub fn escape_literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// Prefix of the variable that carries secret `NAME` into the `docker compose` process.
pub const SECRET_VARIABLE_PREFIX: &str = "ALEMBIC_SECRET_";

/// First line of a release's `.env`: marks the sourced (POSIX sh) format, so the droplet never
/// sources a dotenv file written by an older alembic (it lets compose read that one as before).
pub const SECRETS_FILE_HEADER: &str =
    "# alembic release secrets: POSIX sh, sourced before docker compose (not a dotenv file)";

/// The variable compose reads secret `name` from: `ALEMBIC_SECRET_<name>`.
pub fn secret_variable(name: &str) -> String {
    format!("{SECRET_VARIABLE_PREFIX}{name}")
}

/// The interpolation that makes compose fail (not start with an empty value) when the release's
/// `.env` lacks `name`.
pub fn secret_reference(name: &str) -> String {
    format!("${{{}:?{name} is required}}", secret_variable(name))
}

/// The image of a workload with `build`: a reference the deploy fills in. In the rendered file
/// it is `${ALEMBIC_IMAGE_<NAME>:?...}` (the variable CI's deploy job already carries, see
/// `github::image_env`), so running the file by hand needs the image named; `alembic apply`
/// writes each release's copy with the image pinned (an image ID or a registry digest, see
/// [`render_pinned`]), so a release directory always names the exact bits it ran.
pub fn image_reference(w: &Workload) -> String {
    format!(
        "${{{}:?the image of {} is built and pinned by alembic apply}}",
        crate::github::image_env(w),
        w.name
    )
}

/// The compose file of the droplet plane (images as configured).
pub fn render(t: &Topology) -> Vec<Artifact> {
    render_pinned(t, &BTreeMap::new())
}

/// The compose file with the images of `build` workloads pinned: `pins` maps a workload name to
/// its image (`sha256:<id>` or `<registry>/<name>@sha256:<digest>`); a build workload without a
/// pin keeps its [`image_reference`].
pub fn render_pinned(t: &Topology, pins: &BTreeMap<String, String>) -> Vec<Artifact> {
    let file = compose_file(t, pins);
    // Serializing these plain structs cannot fail (string keys, no non-finite floats); an
    // empty file would fail every checker test loudly if it ever did.
    let yaml = yaml_serde::to_string(&file).unwrap_or_default();
    vec![Artifact::new(
        PATH,
        quote_ambiguous_scalars(&yaml),
        Plane::Droplet,
        ArtifactKind::Compose,
    )]
}

/// Single-quote every plain scalar that starts like a number but is not a bare integer.
///
/// yaml_serde quotes strings by YAML 1.2 core rules, but docker compose reads the file with
/// Go's yaml.v3, which also resolves `1_000`, `0x_1` and `0_` as numbers and `2024-01-01` as a
/// timestamp: an env value would silently change and a command argument would be refused
/// ("must be a string"). Quoting a string is always safe, so anything plain that starts with a
/// digit, sign or dot is quoted unless it is a bare integer; bare integers in this file are real
/// numbers (ports), since yaml_serde already quotes digit-only strings. The file's keys are
/// field, service, network and env-var names, none of which can start that way or contain
/// `: `, so splitting at the first `: ` finds the value.
pub(crate) fn quote_ambiguous_scalars(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let indent = body.len() - body.trim_start_matches([' ', '-']).len();
        let rest = &body[indent..];
        // A list item that is already a quoted scalar (`- ': 0'`) is a string whatever it holds;
        // splitting it at a `: ` inside the quotes would break the file.
        if rest.starts_with(['\'', '"']) {
            out.push_str(line);
            continue;
        }
        let value_at = match rest.find(": ") {
            Some(i) => indent + i + 2,
            None if body[..indent].contains('-') => indent,
            None => {
                out.push_str(line);
                continue;
            }
        };
        let value = &body[value_at..];
        let ambiguous = value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b"+-.".contains(&b))
            && !value.bytes().all(|b| b.is_ascii_digit());
        if ambiguous {
            out.push_str(&body[..value_at]);
            out.push('\'');
            out.push_str(&value.replace('\'', "''"));
            out.push('\'');
            out.push_str(nl);
        } else {
            out.push_str(line);
        }
    }
    out
}

fn compose_file(t: &Topology, pins: &BTreeMap<String, String>) -> ComposeFile {
    let mut services = vec![(EDGE_SERVICE.to_owned(), edge(t))];
    for w in t.on_plane(Plane::Droplet) {
        let mut svc = workload(t, w);
        if w.build.is_some() {
            svc.image = pins
                .get(w.name.as_str())
                .cloned()
                .unwrap_or_else(|| image_reference(w));
        }
        services.push((w.name.to_string(), svc));
    }
    ComposeFile {
        name: t.project.name.to_string(),
        services: Ordered(services),
        networks: [
            (INTERNAL_NETWORK, Network { driver: "bridge" }),
            (PUBLIC_NETWORK, Network { driver: "bridge" }),
        ]
        .into(),
        volumes: named_volumes(t),
    }
}

/// Top-level named volumes: the edge's certificate stores and every workload's volumes. Compose
/// names them `<project>_<name>`, so with the stable project name a release reuses the previous
/// release's volumes; alembic never runs `down -v` or `volume rm`.
fn named_volumes(t: &Topology) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut v: BTreeMap<String, BTreeMap<String, String>> = ["caddy_config", "caddy_data"]
        .into_iter()
        .map(|n| (n.to_owned(), BTreeMap::new()))
        .collect();
    for w in t.on_plane(Plane::Droplet) {
        for m in &w.volumes {
            v.entry(m.name.clone()).or_default();
        }
    }
    v
}

/// The docker names of the named volumes `t`'s workloads mount (`<project>_<name>`, sorted),
/// as the release ledger records them.
pub fn workload_volume_names(t: &Topology) -> Vec<String> {
    let mut v: Vec<String> = t
        .on_plane(Plane::Droplet)
        .flat_map(|w| w.volumes.iter())
        .map(|m| format!("{}_{}", t.project.name, m.name))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// `service_healthy` when the dependency declares a healthcheck (compose then waits for it),
/// else `service_started`: without a healthcheck there is nothing to wait on.
fn depends_condition(dep: &Workload) -> &'static str {
    let declares = dep
        .healthcheck
        .first()
        .is_some_and(|h| h.as_str() != "NONE");
    if declares {
        "service_healthy"
    } else {
        "service_started"
    }
}

/// A workload's named volume mounts.
fn workload_mounts(w: &Workload) -> Vec<Mount> {
    w.volumes
        .iter()
        .map(|m| Mount {
            kind: "volume",
            source: m.name.clone(),
            target: m.target.to_string(),
            read_only: m.read_only,
        })
        .collect()
}

/// `/tmp` always, then the workload's own tmpfs paths.
pub(crate) fn workload_tmpfs(w: &Workload) -> Vec<String> {
    let mut v = vec!["/tmp".to_owned()];
    for p in &w.tmpfs {
        if !v.iter().any(|x| x == p.as_str()) {
            v.push(p.to_string());
        }
    }
    v
}

/// With a load balancer: the droplet's drain directory, read-only, where the edge looks for
/// the drain marker (see `caddy.rs`). An absolute path, not under the release: the edge is
/// not recreated by a release, and a path through the `active` link would stay on the release
/// it was created with.
fn drain_mount(t: &Topology) -> Option<Mount> {
    let d = &t.droplet;
    d.scale.lb.as_ref()?;
    Some(Mount {
        kind: "bind",
        source: format!(
            "{}/{}",
            d.root.as_str().trim_end_matches('/'),
            crate::caddy::DRAIN_HOST_DIR
        ),
        target: crate::caddy::DRAIN_DIR.to_owned(),
        read_only: true,
    })
}

fn edge(t: &Topology) -> Service {
    let d = &t.droplet;
    let publish = |host: u16, target: u16| PublishedPort {
        target,
        published: host.to_string(),
        host_ip: d.edge_bind.to_string(),
        protocol: "tcp",
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
        restart: "unless-stopped",
        // Caddy keeps certificates under $XDG_DATA_HOME/caddy: pin it to the named volume so
        // an image without these variables does not write into its read-only root.
        environment: [
            ("XDG_CONFIG_HOME".to_owned(), "/config".to_owned()),
            ("XDG_DATA_HOME".to_owned(), "/data".to_owned()),
        ]
        .into(),
        ports: vec![
            publish(d.http_port.get(), 80),
            publish(d.https_port.get(), 443),
        ],
        volumes: vec![
            Mount {
                kind: "bind",
                source: "./Caddyfile".to_owned(),
                target: CADDYFILE_IN_CONTAINER.to_owned(),
                read_only: true,
            },
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
        ]
        .into_iter()
        .chain(drain_mount(t))
        .collect(),
        networks: vec![INTERNAL_NETWORK, PUBLIC_NETWORK],
        read_only: true,
        tmpfs: vec!["/tmp".to_owned()],
        security_opt: vec!["no-new-privileges:true"],
        cap_drop: vec!["ALL"],
        // Binding 80/443 inside the container needs this one capability back.
        cap_add: vec!["NET_BIND_SERVICE"],
        ..Service::default()
    }
}

fn workload(t: &Topology, w: &Workload) -> Service {
    let mut environment: BTreeMap<String, String> = w
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), escape_literal(v.as_str())))
        .collect();
    // A secret wins over a plain value of the same name: the reference is always what ships.
    for s in &w.secrets {
        environment.insert(s.to_string(), secret_reference(s.as_str()));
    }
    let depends_on = w
        .depends_on
        .iter()
        .filter_map(|d| t.workload(d.as_str()))
        .filter(|x| x.plane == Plane::Droplet)
        .map(|x| {
            (
                x.name.to_string(),
                DependsOn {
                    condition: depends_condition(x),
                },
            )
        })
        .collect();
    let healthcheck = healthcheck(w);
    let cap_add = cap_add(w);
    Service {
        image: w.image.as_ref().map(|i| i.to_string()).unwrap_or_default(),
        command: w
            .command
            .iter()
            .map(|s| escape_literal(s.as_str()))
            .collect(),
        restart: "unless-stopped",
        environment,
        expose: w.port.map(|p| p.to_string()).into_iter().collect(),
        networks: vec![INTERNAL_NETWORK],
        depends_on,
        healthcheck,
        volumes: workload_mounts(w),
        // A twelve-factor service writes only to /tmp and its volumes: the rest of its
        // filesystem is the image, unless the workload opts out (`read_only = false`).
        read_only: w.read_only,
        tmpfs: workload_tmpfs(w),
        user: w.user.as_ref().map(|u| u.to_string()),
        security_opt: vec!["no-new-privileges:true"],
        cap_drop: vec!["ALL"],
        cap_add,
        ..Service::default()
    }
}

/// The workload's declared healthcheck, as compose and swarm both write it.
pub(crate) fn healthcheck(w: &Workload) -> Option<Healthcheck> {
    (!w.healthcheck.is_empty()).then(|| Healthcheck {
        test: w
            .healthcheck
            .iter()
            .map(|s| escape_literal(s.as_str()))
            .collect(),
        interval: "10s",
        timeout: "5s",
        retries: 3,
        start_period: "10s",
    })
}

/// Most images run as root; a port below 1024 needs its bind capability back after ALL is
/// dropped.
pub(crate) fn cap_add(w: &Workload) -> Vec<&'static str> {
    match w.port {
        Some(p) if p.get() < 1024 => vec!["NET_BIND_SERVICE"],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_dollars() {
        assert_eq!(escape_literal("a$b$$c${D}"), "a$$b$$$$c$${D}");
        assert_eq!(
            secret_reference("DB_URL"),
            "${ALEMBIC_SECRET_DB_URL:?DB_URL is required}"
        );
    }
}
