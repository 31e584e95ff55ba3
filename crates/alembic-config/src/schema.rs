//! JSON Schema of `alembic.toml`, for editors (taplo, VS Code Even Better TOML) and CI.
//!
//! The parser walks the TOML tree by hand (see `parse.rs`), so these mirror structs exist only
//! to derive the schema with `schemars`. A test keeps their fields equal to the parser's known
//! keys, so the two cannot drift apart silently.

use std::collections::BTreeMap;

use schemars::JsonSchema;

/// alembic.toml: one typed file describing the host, droplet and ci planes.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Config {
    /// Config format version; must be 1.
    version: u32,
    project: Project,
    host: Option<Host>,
    droplet: Droplet,
    ci: Ci,
    /// Workloads on any plane.
    workload: Option<Vec<Workload>>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Project {
    /// [a-z][a-z0-9-]{0,39}
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,39}$"))]
    name: String,
    /// DNS zone the droplet's routes live under.
    domain: String,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Os {
    Macos,
    Linux,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Host {
    /// "macos" renders launchd plists, "linux" systemd --user units. Default: macos.
    os: Option<Os>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum Tls {
    #[schemars(rename = "acme")]
    Acme,
    #[schemars(rename = "acme-staging")]
    AcmeStaging,
    #[schemars(rename = "internal")]
    Internal,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Droplet {
    name: String,
    /// DigitalOcean region slug; required unless `address` is set.
    region: Option<String>,
    /// Droplet size slug; required unless `address` is set.
    size: Option<String>,
    /// Droplet image slug; required unless `address` is set.
    image: Option<String>,
    /// Default: root.
    ssh_user: Option<String>,
    /// Default: 22.
    #[schemars(range(min = 1, max = 65535))]
    ssh_port: Option<u16>,
    /// SSH key fingerprints (or ids) already in the DigitalOcean account.
    ssh_keys: Option<Vec<String>>,
    /// OpenSSH public key lines (`TYPE BASE64 [COMMENT]`, the contents of a `.pub` file)
    /// installed for `ssh_user` by the bootstrap. Public keys, not secrets.
    #[schemars(inner(regex(
        pattern = r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}( [^\n\r]*)?$"
    )))]
    authorized_keys: Option<Vec<String>>,
    /// The only sources allowed to reach SSH (CIDR).
    admin_cidrs: Option<Vec<String>>,
    /// Env var NAME holding the DigitalOcean API token. Default: DIGITALOCEAN_TOKEN.
    token_env: Option<String>,
    tls: Option<Tls>,
    acme_email: Option<String>,
    /// Where releases, ledger and lease live on the droplet. Default: /opt/<project>.
    root: Option<String>,
    /// The edge's image. Default: caddy:2.10-alpine.
    edge_image: Option<String>,
    /// Address the edge publishes on. Default: 0.0.0.0.
    edge_bind: Option<String>,
    /// Default: 80.
    #[schemars(range(min = 1, max = 65535))]
    http_port: Option<u16>,
    /// Default: 443.
    #[schemars(range(min = 1, max = 65535))]
    https_port: Option<u16>,
    /// An existing server's IP: no Terraform is rendered when set.
    address: Option<String>,
    /// Releases kept on the droplet. Default: 5.
    #[schemars(range(min = 1, max = 100))]
    keep_releases: Option<u32>,
    /// DigitalOcean Spaces bucket holding the Terraform state (S3 backend). Unset: local state
    /// only, which a fresh CI runner does not have.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"))]
    state_bucket: Option<String>,
    /// The state object's key in the bucket. Default: <project>/terraform.tfstate.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"))]
    state_key: Option<String>,
    /// The bucket's Spaces region slug. Default: `region`.
    state_region: Option<String>,
    /// Env var NAME of the Spaces access key id. Default: SPACES_ACCESS_KEY_ID.
    state_access_key_env: Option<String>,
    /// Env var NAME of the Spaces secret key. Default: SPACES_SECRET_ACCESS_KEY.
    state_secret_key_env: Option<String>,
    /// Image registry prefix (like ghcr.io/acme) CI pushes `build` workloads' images to; they
    /// are then pulled by digest. Unset: images are shipped over ssh.
    registry: Option<String>,
    /// Droplets to provision (DOKS nodes with engine = "kubernetes"). Default: 1. More than one
    /// needs [droplet.lb].
    #[schemars(range(min = 1, max = 100))]
    count: Option<u32>,
    /// Several existing servers' IPs, instead of `address`: no Terraform is rendered.
    addresses: Option<Vec<String>>,
    /// What runs the containers. Default: compose.
    engine: Option<Engine>,
    lb: Option<LoadBalancer>,
    rollout: Option<Rollout>,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Engine {
    Compose,
    Swarm,
    Kubernetes,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum LbTls {
    Terminate,
    Passthrough,
}

/// The DigitalOcean load balancer in front of the droplets; required with more than one.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct LoadBalancer {
    /// "terminate": the load balancer holds a Let's Encrypt certificate. "passthrough": each
    /// edge does (one droplet only). Default: terminate.
    tls: Option<LbTls>,
    /// The path the balancer's health check asks each droplet's edge. Default: /healthz.
    health: Option<String>,
    /// Seconds between two health checks of a droplet. Default: 10.
    #[schemars(range(min = 3, max = 300))]
    check_interval_seconds: Option<u32>,
    /// Seconds a health check waits for its answer. Default: 5.
    #[schemars(range(min = 3, max = 300))]
    response_timeout_seconds: Option<u32>,
    /// Failed checks in a row before a droplet leaves rotation (a rolling deploy waits this
    /// out after draining one). Default: 3.
    #[schemars(range(min = 2, max = 10))]
    unhealthy_threshold: Option<u32>,
    /// Passed checks in a row before a droplet is back in rotation. Default: 5.
    #[schemars(range(min = 2, max = 10))]
    healthy_threshold: Option<u32>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum OnFailure {
    #[schemars(rename = "rollback-all")]
    RollbackAll,
    #[schemars(rename = "rollback-host")]
    RollbackHost,
    #[schemars(rename = "pause")]
    Pause,
}

/// How a release moves across the droplets.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Rollout {
    /// Droplets out of the balancer at once. Default: 1.
    #[schemars(range(min = 1))]
    max_unavailable: Option<u32>,
    /// Default: rollback-all.
    on_failure: Option<OnFailure>,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Toolchain {
    Pnpm,
    Npm,
    Yarn,
    Uv,
    Pip,
    Cargo,
    Go,
    None,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Ci {
    /// GitHub owner/name.
    repository: String,
    branch: Option<String>,
    runner: Option<String>,
    /// Language setup, dependency cache and install step of the CI jobs. Default: pnpm when
    /// node_version is set, else none.
    toolchain: Option<Toolchain>,
    /// With pnpm/npm/yarn. Default: 22.
    node_version: Option<String>,
    /// With uv/pip. Default: 3.12.
    python_version: Option<String>,
    /// With go. Default: stable.
    go_version: Option<String>,
    /// With cargo. Default: stable.
    rust_toolchain: Option<String>,
    /// The exact alembic version the workflows install (from the crate registry, --locked).
    /// Default: the version that rendered them.
    #[schemars(regex(
        pattern = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$"
    ))]
    alembic_version: Option<String>,
    /// Commands run on every push and pull request.
    checks: Option<Vec<String>>,
    /// Commands run after the checks (e.g. `alembic doctor --json`).
    gates: Option<Vec<String>>,
    /// GitHub environment holding the deploy secrets.
    environment: Option<String>,
    /// Secret NAMES the deploy job receives from the environment.
    secrets: Option<Vec<String>>,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Plane {
    Host,
    Droplet,
    Ci,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Exposure {
    Private,
    Public,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum EnvValue {
    String(String),
    Integer(i64),
    Boolean(bool),
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Workload {
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,62}$"))]
    name: String,
    plane: Plane,
    /// Default: private. Only droplet workloads may be public.
    exposure: Option<Exposure>,
    /// Container image (droplet workloads).
    image: Option<String>,
    /// Docker build context (Dockerfile inside), relative to alembic.toml, instead of `image`.
    build: Option<String>,
    /// argv: the program for host/ci workloads, container arguments for droplet ones.
    command: Option<Vec<String>>,
    #[schemars(range(min = 1, max = 65535))]
    port: Option<u16>,
    /// host[/path-prefix] on the edge; required when public.
    route: Option<String>,
    /// HTTP path probed by the edge and by apply.
    health: Option<String>,
    /// Container healthcheck test, e.g. ["CMD", "/app/healthcheck"].
    healthcheck: Option<Vec<String>>,
    /// Plain, non-secret environment values.
    env: Option<BTreeMap<String, EnvValue>>,
    /// Env var NAMES passed to the workload at apply time.
    secrets: Option<Vec<String>>,
    depends_on: Option<Vec<String>>,
    /// Host workloads: the address to listen on (loopback or private).
    bind: Option<String>,
    /// Host workloads: restart when it exits. Default: true for daemons.
    keep_alive: Option<bool>,
    /// Cron schedule (host workloads).
    schedule: Option<String>,
    /// Named volumes (droplet workloads): "name:/container/path" with optional ":ro"; host
    /// paths and the docker socket are refused (EXP008). Never removed by alembic.
    volumes: Option<Vec<String>>,
    /// Read-only root filesystem (droplet workloads). Default: true.
    read_only: Option<bool>,
    /// Extra tmpfs mounts, absolute container paths (droplet workloads; /tmp is always one).
    tmpfs: Option<Vec<String>>,
    /// The container's user: "uid[:gid]" or a name (droplet workloads).
    user: Option<String>,
}

/// The schema as pretty JSON with a trailing newline (the committed `alembic.schema.json`).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Config);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    }

    #[test]
    fn schema_matches_parser_keys() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let defs = &schema["$defs"];
        for (table, keys) in crate::parse::known_keys() {
            let node = match table {
                "" => &schema,
                "project" => &defs["Project"],
                "host" => &defs["Host"],
                "droplet" => &defs["Droplet"],
                "droplet.lb" => &defs["LoadBalancer"],
                "droplet.rollout" => &defs["Rollout"],
                "ci" => &defs["Ci"],
                "workload" => &defs["Workload"],
                other => panic!("unmapped table {other}"),
            };
            let mut want: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(props(node), want, "table [{table}]");
        }
    }
}

#[cfg(test)]
mod staleness {
    /// The committed `alembic.schema.json` (for editors and CI) must equal what the code
    /// generates; regenerate with `cargo run -q -- schema > alembic.schema.json`.
    #[test]
    fn committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../alembic.schema.json");
        let committed = std::fs::read_to_string(path)
            .expect("alembic.schema.json is committed at the repo root");
        assert!(
            committed == super::schema_json(),
            "alembic.schema.json is stale: run `cargo run -q -- schema > alembic.schema.json`"
        );
    }
}
