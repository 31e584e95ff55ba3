//! The typed topology: what `alembic.toml` means once every value has been validated.
//! Everything downstream (policy, render, plan) reads only these types.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use serde::Serialize;

use crate::cron::Schedule;
use crate::types::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    Host,
    Droplet,
    Ci,
}

impl Plane {
    pub const ALL: [Plane; 3] = [Plane::Host, Plane::Droplet, Plane::Ci];

    pub fn as_str(self) -> &'static str {
        match self {
            Plane::Host => "host",
            Plane::Droplet => "droplet",
            Plane::Ci => "ci",
        }
    }

    pub fn parse(s: &str) -> Option<Plane> {
        Plane::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    Private,
    Public,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostOs {
    Macos,
    Linux,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Tls {
    #[serde(rename = "acme")]
    Acme,
    #[serde(rename = "acme-staging")]
    AcmeStaging,
    #[serde(rename = "internal")]
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    pub name: ProjectName,
    pub domain: Hostname,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Host {
    pub os: HostOs,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Droplet {
    pub name: WorkloadName,
    pub region: Option<Slug>,
    pub size: Option<Slug>,
    pub image: Option<Slug>,
    pub ssh_user: UserName,
    pub ssh_port: Port,
    pub ssh_keys: Vec<SshKeyRef>,
    /// Public keys installed for `ssh_user` by the bootstrap (cloud-init or `alembic bootstrap`).
    pub authorized_keys: Vec<AuthorizedKey>,
    pub admin_cidrs: Vec<Cidr>,
    pub token_env: EnvVarName,
    pub tls: Tls,
    pub acme_email: Option<Email>,
    pub root: AbsPath,
    pub edge_image: ImageRef,
    pub edge_bind: IpAddr,
    pub http_port: Port,
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
    pub bucket: &'a BucketName,
    pub key: &'a ObjectKey,
    pub region: &'a Slug,
    pub access_key_env: &'a EnvVarName,
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
    Pnpm,
    Npm,
    Yarn,
    Uv,
    Pip,
    Cargo,
    Go,
    None,
}

impl Toolchain {
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ci {
    pub repository: Repository,
    pub branch: BranchName,
    pub runner: Token,
    /// Default `pnpm` when `node_version` is set in the file, else `none`.
    pub toolchain: Toolchain,
    pub node_version: Token,
    /// With `uv`/`pip`. Default: 3.12.
    pub python_version: Token,
    /// With `go`. Default: stable.
    pub go_version: Token,
    /// With `cargo`. Default: stable.
    pub rust_toolchain: Token,
    /// The exact alembic the workflows install. `None`: the version that rendered them.
    pub alembic_version: Option<Version>,
    pub checks: Vec<Text>,
    pub gates: Vec<Text>,
    pub environment: Token,
    pub secrets: Vec<EnvVarName>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workload {
    pub name: WorkloadName,
    pub plane: Plane,
    pub exposure: Exposure,
    pub image: Option<ImageRef>,
    /// Docker build context (Dockerfile inside), relative to alembic.toml; instead of `image`.
    pub build: Option<BuildContext>,
    pub command: Vec<Text>,
    pub port: Option<Port>,
    pub route: Option<Route>,
    pub health: Option<HttpPath>,
    /// Explicit container healthcheck test (`["CMD", ...]` or `["CMD-SHELL", "..."]`).
    pub healthcheck: Vec<Text>,
    pub env: BTreeMap<EnvVarName, Text>,
    pub secrets: Vec<EnvVarName>,
    pub depends_on: Vec<WorkloadName>,
    pub bind: Option<IpAddr>,
    pub keep_alive: bool,
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

#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    pub version: u32,
    pub project: Project,
    pub host: Host,
    pub droplet: Droplet,
    pub ci: Ci,
    pub workloads: Vec<Workload>,
    #[serde(skip)]
    pub spans: SpanMap,
    /// Name -> index into `workloads`, built on the first [`Topology::workload`] call. Renderers
    /// look up every `depends_on` edge; a linear scan made that quadratic (10k workloads).
    #[serde(skip)]
    pub by_name: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
}

impl Topology {
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretUse {
    pub plane: Plane,
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
