//! The typed topology: what `alembic.toml` means once every value has been validated.
//! Everything downstream (policy, render, plan) reads only these types.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use serde::Serialize;

use crate::cron::Schedule;
use crate::types::*;

/// The three planes a workload can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    /// The operator's machine (launchd or systemd --user).
    Host,
    /// The DigitalOcean droplet(s), behind the Caddy edge: the only public plane.
    Droplet,
    /// GitHub Actions.
    Ci,
}

impl Plane {
    /// Every plane, in the order they are shown.
    pub const ALL: [Plane; 3] = [Plane::Host, Plane::Droplet, Plane::Ci];

    /// The plane's name in `alembic.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plane::Host => "host",
            Plane::Droplet => "droplet",
            Plane::Ci => "ci",
        }
    }

    /// The plane named `s`, if there is one.
    pub fn parse(s: &str) -> Option<Plane> {
        Plane::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who can reach a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// Not reachable from the internet.
    Private,
    /// The internet, through the edge's route (droplet workloads only).
    Public,
}

/// The host plane's operating system (`host.os`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostOs {
    /// macOS: launchd agents.
    Macos,
    /// Linux: systemd user units.
    Linux,
}

/// How the edge gets its certificates (`droplet.tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Tls {
    /// Let's Encrypt.
    #[serde(rename = "acme")]
    Acme,
    /// Let's Encrypt's staging CA (untrusted certificates, generous rate limits).
    #[serde(rename = "acme-staging")]
    AcmeStaging,
    /// Caddy's own private CA (tests, private setups).
    #[serde(rename = "internal")]
    Internal,
}

/// `[project]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    /// `[a-z][a-z0-9-]{0,39}`: names files, labels and units.
    pub name: ProjectName,
    /// The DNS zone the droplet's routes live under.
    pub domain: Hostname,
}

/// `[host]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Launchd or systemd.
    pub os: HostOs,
}

/// `[droplet]`: the droplet plane's server(s), the edge and the Terraform around them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Droplet {
    /// The droplet's name at DigitalOcean.
    pub name: WorkloadName,
    /// Region slug (required when provisioned).
    pub region: Option<Slug>,
    /// Size slug (required when provisioned).
    pub size: Option<Slug>,
    /// Image slug (required when provisioned).
    pub image: Option<Slug>,
    /// The user alembic logs in as.
    pub ssh_user: UserName,
    /// The ssh port.
    pub ssh_port: Port,
    /// SSH keys already in the DigitalOcean account, put on a provisioned droplet.
    pub ssh_keys: Vec<SshKeyRef>,
    /// Public keys installed for `ssh_user` by the bootstrap (cloud-init or `alembic bootstrap`).
    pub authorized_keys: Vec<AuthorizedKey>,
    /// The only sources allowed to reach the ssh port.
    pub admin_cidrs: Vec<Cidr>,
    /// Env var NAME holding the DigitalOcean API token.
    pub token_env: EnvVarName,
    /// How the edge gets certificates.
    pub tls: Tls,
    /// The ACME account's e-mail.
    pub acme_email: Option<Email>,
    /// Where releases, the ledger and the lease live on the droplet.
    pub root: AbsPath,
    /// The edge's (Caddy) image.
    pub edge_image: ImageRef,
    /// The address the edge publishes on.
    pub edge_bind: IpAddr,
    /// The host port the edge serves HTTP on.
    pub http_port: Port,
    /// The host port the edge serves HTTPS on.
    pub https_port: Port,
    /// An existing server: no Terraform is rendered when set.
    pub address: Option<IpAddr>,
    /// Releases kept on the droplet after a successful deploy.
    pub keep_releases: u32,
    /// Spaces bucket holding the Terraform state. Unset: local state only, which a fresh CI
    /// runner does not have (policy warns, CFG003).
    pub state_bucket: Option<BucketName>,
    /// The state object's key in the bucket. Default: `<project>/terraform.tfstate`.
    pub state_key: ObjectKey,
    /// The bucket's Spaces region. Default: `region` (none for a BYO `address` without one).
    pub state_region: Option<Slug>,
    /// Env var NAMES of the Spaces access key pair, passed to Terraform as
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. Defaults: `SPACES_ACCESS_KEY_ID` /
    /// `SPACES_SECRET_ACCESS_KEY`.
    pub state_access_key_env: EnvVarName,
    /// See `state_access_key_env`: the secret key's env var NAME.
    pub state_secret_key_env: EnvVarName,
    /// Where CI pushes the images of workloads with `build` (pulled by digest). Unset: images
    /// are shipped over ssh.
    pub registry: Option<Registry>,
    /// Several droplets, the load balancer, the rollout and the engine (`scale.rs`).
    #[serde(flatten)]
    pub scale: crate::scale::Scale,
}

impl Droplet {
    /// True when Terraform provisions the droplet (no `address` given).
    pub fn is_provisioned(&self) -> bool {
        self.address.is_none() && self.scale.addresses.is_empty()
    }

    /// How many droplets (or DOKS nodes) the plane has: `count` when provisioned, else the
    /// existing servers named.
    pub fn droplet_count(&self) -> usize {
        if self.is_provisioned() {
            self.scale.count as usize
        } else {
            self.scale.addresses.len().max(1)
        }
    }

    /// The existing servers: `address`, or `addresses`. Empty when provisioned.
    pub fn existing_addresses(&self) -> Vec<IpAddr> {
        match self.address {
            Some(a) => vec![a],
            None => self.scale.addresses.clone(),
        }
    }

    /// Where the Terraform state lives, when Terraform runs at all (provisioned droplet) and a
    /// bucket is configured. `None` means local state.
    pub fn remote_state(&self) -> Option<RemoteState<'_>> {
        if !self.is_provisioned() {
            return None;
        }
        Some(RemoteState {
            bucket: self.state_bucket.as_ref()?,
            key: &self.state_key,
            region: self.state_region.as_ref()?,
            access_key_env: &self.state_access_key_env,
            secret_key_env: &self.state_secret_key_env,
        })
    }
}

/// The Terraform state backend: an S3-compatible DigitalOcean Spaces bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteState<'a> {
    /// The bucket.
    pub bucket: &'a BucketName,
    /// The state object's key.
    pub key: &'a ObjectKey,
    /// The bucket's Spaces region.
    pub region: &'a Slug,
    /// Env var NAME of the access key id.
    pub access_key_env: &'a EnvVarName,
    /// Env var NAME of the secret access key.
    pub secret_key_env: &'a EnvVarName,
}

impl RemoteState<'_> {
    /// Consumer name of the state credentials in [`Topology::secret_names`].
    pub const CONSUMER: &'static str = "terraform state";

    /// The Spaces S3 endpoint of the bucket's region.
    pub fn endpoint(&self) -> String {
        format!("https://{}.digitaloceanspaces.com", self.region)
    }
}

/// How the CI jobs set up the project's language and install its dependencies (`ci.toolchain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Toolchain {
    /// pnpm (Node).
    Pnpm,
    /// npm (Node).
    Npm,
    /// Yarn (Node).
    Yarn,
    /// uv (Python).
    Uv,
    /// pip (Python).
    Pip,
    /// Cargo (Rust).
    Cargo,
    /// Go.
    Go,
    /// No setup: the checks run as they are.
    None,
}

impl Toolchain {
    /// Every toolchain, in the order the docs list them.
    pub const ALL: [Toolchain; 8] = [
        Toolchain::Pnpm,
        Toolchain::Npm,
        Toolchain::Yarn,
        Toolchain::Uv,
        Toolchain::Pip,
        Toolchain::Cargo,
        Toolchain::Go,
        Toolchain::None,
    ];

    /// The name `ci.toolchain` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Toolchain::Pnpm => "pnpm",
            Toolchain::Npm => "npm",
            Toolchain::Yarn => "yarn",
            Toolchain::Uv => "uv",
            Toolchain::Pip => "pip",
            Toolchain::Cargo => "cargo",
            Toolchain::Go => "go",
            Toolchain::None => "none",
        }
    }

    /// The toolchain named `s`, if there is one.
    pub fn parse(s: &str) -> Option<Toolchain> {
        Toolchain::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The `[ci]` version field this toolchain reads, if any.
    pub fn version_field(self) -> Option<&'static str> {
        match self {
            Toolchain::Pnpm | Toolchain::Npm | Toolchain::Yarn => Some("node_version"),
            Toolchain::Uv | Toolchain::Pip => Some("python_version"),
            Toolchain::Cargo => Some("rust_toolchain"),
            Toolchain::Go => Some("go_version"),
            Toolchain::None => None,
        }
    }
}

impl std::fmt::Display for Toolchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[ci]`: the GitHub repository and the workflows rendered for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ci {
    /// `owner/name`.
    pub repository: Repository,
    /// The branch that deploys.
    pub branch: BranchName,
    /// The runner label the jobs run on.
    pub runner: Token,
    /// Default `pnpm` when `node_version` is set in the file, else `none`.
    pub toolchain: Toolchain,
    /// With the Node toolchains.
    pub node_version: Token,
    /// With `uv`/`pip`. Default: 3.12.
    pub python_version: Token,
    /// With `go`. Default: stable.
    pub go_version: Token,
    /// With `cargo`. Default: stable.
    pub rust_toolchain: Token,
    /// The exact alembic the workflows install. `None`: the version that rendered them.
    pub alembic_version: Option<Version>,
    /// Commands the checks job runs.
    pub checks: Vec<Text>,
    /// Commands that must pass before the deploy job.
    pub gates: Vec<Text>,
    /// The GitHub environment holding the deploy secrets.
    pub environment: Token,
    /// Env var NAMES the deploy job gets from that environment.
    pub secrets: Vec<EnvVarName>,
}

/// One `[[workload]]`: a process on a plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Unique; names its service, unit or agent.
    pub name: WorkloadName,
    /// Where it runs.
    pub plane: Plane,
    /// Who can reach it.
    pub exposure: Exposure,
    /// The container image (droplet workloads), instead of `build`.
    pub image: Option<ImageRef>,
    /// Docker build context (Dockerfile inside), relative to alembic.toml; instead of `image`.
    pub build: Option<BuildContext>,
    /// The command it runs (host: the program and its arguments; droplet: the container's).
    pub command: Vec<Text>,
    /// The port it listens on (a container port on the droplet).
    pub port: Option<Port>,
    /// `host[/path]` on the edge; required when public.
    pub route: Option<Route>,
    /// The HTTP path probed for health.
    pub health: Option<HttpPath>,
    /// Explicit container healthcheck test (`["CMD", ...]` or `["CMD-SHELL", "..."]`).
    pub healthcheck: Vec<Text>,
    /// Plain, non-secret environment values.
    pub env: BTreeMap<EnvVarName, Text>,
    /// Env var NAMES passed to it at apply time.
    pub secrets: Vec<EnvVarName>,
    /// Workloads started before it.
    pub depends_on: Vec<WorkloadName>,
    /// Host workloads: the address it binds (loopback or private).
    pub bind: Option<IpAddr>,
    /// Host workloads: restarted when they exit.
    pub keep_alive: bool,
    /// Host workloads: run on this schedule instead of as a daemon.
    pub schedule: Option<Schedule>,
    /// Named volumes mounted into the container (droplet workloads); alembic never removes one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// Read-only root filesystem (droplet workloads; default true).
    #[serde(skip_serializing_if = "is_true")]
    pub read_only: bool,
    /// tmpfs mounts besides `/tmp` (droplet workloads).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<ContainerPath>,
    /// The user the container runs as (droplet workloads), `uid[:gid]` or a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<ContainerUser>,
    /// Index of this workload's `[[workload]]` table in the file, for span lookups.
    #[serde(skip)]
    pub index: usize,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Workload {
    /// True when exposed to the internet.
    pub fn is_public(&self) -> bool {
        self.exposure == Exposure::Public
    }

    /// The key path of one of this workload's fields in the [`SpanMap`].
    pub fn path(&self, field: &str) -> String {
        format!("workload.{}.{}", self.index, field)
    }
}

/// Byte ranges of every key and value in the source, keyed by dotted path
/// (`droplet.admin_cidrs.0`, `workload.2.exposure`). Policy looks spans up here after a rule
/// has run on the typed model, so the model stays free of span noise.
#[derive(Clone, Debug, Default)]
pub struct SpanMap {
    spans: BTreeMap<String, Range<usize>>,
}

impl SpanMap {
    /// Record `path`'s span (the first one wins).
    pub fn insert(&mut self, path: String, span: Range<usize>) {
        self.spans.entry(path).or_insert(span);
    }

    /// The span of `path`, or of its nearest recorded ancestor.
    pub fn get(&self, path: &str) -> Option<Range<usize>> {
        let mut p = path;
        loop {
            if let Some(s) = self.spans.get(p) {
                return Some(s.clone());
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

/// What `alembic.toml` means, validated: everything downstream reads only this.
#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    /// The config format version (1).
    pub version: u32,
    /// `[project]`.
    pub project: Project,
    /// `[host]`.
    pub host: Host,
    /// `[droplet]`.
    pub droplet: Droplet,
    /// `[ci]`.
    pub ci: Ci,
    /// Every `[[workload]]`, in file order.
    pub workloads: Vec<Workload>,
    /// Where each key and value is in the source.
    #[serde(skip)]
    pub spans: SpanMap,
    /// Name -> index into `workloads`, built on the first [`Topology::workload`] call. Renderers
    /// look up every `depends_on` edge; a linear scan made that quadratic (10k workloads).
    #[serde(skip)]
    pub by_name: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
}

impl Topology {
    /// The workload named `name`.
    pub fn workload(&self, name: &str) -> Option<&Workload> {
        let index = self.by_name.get_or_init(|| {
            let mut m = std::collections::HashMap::with_capacity(self.workloads.len());
            for (i, w) in self.workloads.iter().enumerate() {
                // First wins, like the linear scan did (names are unique once validated).
                m.entry(w.name.to_string()).or_insert(i);
            }
            m
        });
        index
            .get(name)
            .and_then(|&i| self.workloads.get(i))
            .filter(|w| w.name.as_str() == name)
            // `workloads` is a pub field: if someone changed it after the index was built, the
            // scan still answers right (validated topologies never get here for a real name).
            .or_else(|| self.workloads.iter().find(|w| w.name.as_str() == name))
    }

    /// The workloads on `plane`, in file order.
    pub fn on_plane(&self, plane: Plane) -> impl Iterator<Item = &Workload> {
        self.workloads.iter().filter(move |w| w.plane == plane)
    }

    /// Public droplet workloads with a route: the edge's sites.
    pub fn routes(&self) -> impl Iterator<Item = (&Workload, &Route)> {
        self.workloads
            .iter()
            .filter(|w| w.plane == Plane::Droplet && w.is_public())
            .filter_map(|w| w.route.as_ref().map(|r| (w, r)))
    }

    /// Every secret name a plane needs at apply time, with its consumers, sorted by name.
    pub fn secret_names(&self) -> BTreeMap<EnvVarName, Vec<SecretUse>> {
        let mut out: BTreeMap<EnvVarName, Vec<SecretUse>> = BTreeMap::new();
        if self.droplet.is_provisioned() {
            out.entry(self.droplet.token_env.clone())
                .or_default()
                .push(SecretUse {
                    plane: Plane::Droplet,
                    consumer: Consumer::Terraform,
                });
        }
        if let Some(state) = self.droplet.remote_state() {
            for name in [state.access_key_env, state.secret_key_env] {
                out.entry(name.clone()).or_default().push(SecretUse {
                    plane: Plane::Droplet,
                    consumer: Consumer::TerraformState,
                });
            }
        }
        for w in &self.workloads {
            for s in &w.secrets {
                out.entry(s.clone()).or_default().push(SecretUse {
                    plane: w.plane,
                    consumer: Consumer::Workload(w.name.to_string()),
                });
            }
        }
        for s in &self.ci.secrets {
            out.entry(s.clone()).or_default().push(SecretUse {
                plane: Plane::Ci,
                consumer: Consumer::CiEnvironment(self.ci.environment.to_string()),
            });
        }
        out
    }

    /// The secret names `plane`'s workloads declare, sorted and deduplicated: the workload
    /// consumers on that plane in [`Self::secret_names`], the one inventory of secret names.
    pub fn workload_secret_names(&self, plane: Plane) -> Vec<String> {
        self.secret_names()
            .into_iter()
            .filter(|(_, uses)| {
                uses.iter()
                    .any(|u| u.plane == plane && matches!(u.consumer, Consumer::Workload(_)))
            })
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

/// One consumer of a secret name, as [`Topology::secret_names`] lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretUse {
    /// The plane it is filed under (the Terraform secrets are filed under the droplet).
    pub plane: Plane,
    /// Who reads the value.
    pub consumer: Consumer,
}

/// What consumes a secret. Shown (and serialised) as `terraform`, `terraform state`, the
/// workload's name, or `environment <name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// The DigitalOcean provider (the infra stage's token).
    Terraform,
    /// Terraform's remote state backend (its key pair).
    TerraformState,
    /// A workload, by name.
    Workload(String),
    /// The CI deploy job's GitHub environment, by name.
    CiEnvironment(String),
}

impl std::fmt::Display for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Consumer::Terraform => f.write_str("terraform"),
            Consumer::TerraformState => f.write_str(RemoteState::CONSUMER),
            Consumer::Workload(w) => f.write_str(w),
            Consumer::CiEnvironment(e) => write!(f, "environment {e}"),
        }
    }
}

impl Serialize for Consumer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl PartialEq<&str> for Consumer {
    fn eq(&self, other: &&str) -> bool {
        match self {
            Consumer::Terraform => *other == "terraform",
            Consumer::TerraformState => *other == RemoteState::CONSUMER,
            Consumer::Workload(w) => w == other,
            Consumer::CiEnvironment(e) => other.strip_prefix("environment ") == Some(e.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plane's workload secrets are the names its workloads declare, sorted, once each: the
    /// Terraform and CI environment secrets filed under a plane are not among them.
    #[test]
    fn workload_secret_names_are_what_the_planes_workloads_declare() {
        let t = crate::default_topology();
        for plane in Plane::ALL {
            let mut declared: Vec<String> = t
                .on_plane(plane)
                .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
                .collect();
            declared.sort();
            declared.dedup();
            assert_eq!(t.workload_secret_names(plane), declared, "{plane}");
        }
        assert_eq!(
            t.workload_secret_names(Plane::Droplet),
            ["DATABASE_URL", "GATEWAY_SIGNING_KEY"]
        );
        assert_eq!(t.workload_secret_names(Plane::Host), ["OPENAI_API_KEY"]);
        // `ci.secrets` lists seven names, but no workload runs on the CI plane.
        assert!(!t.ci.secrets.is_empty());
        assert!(t.workload_secret_names(Plane::Ci).is_empty());
    }
}
