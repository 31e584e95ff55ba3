//! GitHub Actions workflows for the ci plane: `.github/workflows/ci.yml` (checks, then gates,
//! code scanning, plus one job per ci workload) and `.github/workflows/deploy.yml` (the same
//! checks, gates and workload jobs, an image build when there is something to build, then the
//! deploy job).
//!
//! Built from typed structs serialised with `yaml_serde`, hardened by construction:
//! `permissions: {}` at the top and `contents: read` per job, plus exactly the one write
//! permission a job needs (`security-events: write` for the SARIF upload; `packages`,
//! `id-token` and `attestations` for the image build); every action pinned to a full commit SHA
//! ([`PINS`]); checkout with `persist-credentials: false`; `run:` scripts are built from
//! validated config text that may not contain `${{` (CI commands are parsed with
//! `Text::parse_ci`), so no expression is ever interpolated into a shell; secrets reach only the
//! deploy job, through `env:` entries `NAME: ${{ secrets.NAME }}`, in the deploy environment:
//! `DEPLOY_SSH_KEY` (and `DEPLOY_KNOWN_HOSTS`) to the step that loads the key into `ssh-agent`,
//! every other one to the `alembic apply` step. A provisioned droplet's deploy job also installs
//! Terraform (pinned `hashicorp/setup-terraform`) for the infra plane.
//!
//! **Deploy only what passed.** The deploy job lives in the same workflow run as the checks and
//! gates it depends on and `needs:` every one of them, so it starts only when all of them
//! succeeded, and every job of a run checks out the run's own commit (`github.sha`; no checkout
//! names another `ref`). A `workflow_run` trigger on ci.yml would also work, but it runs in the
//! default branch's context, must be told which commit to check out, and is an untrusted
//! trigger the CI005 rule and zizmor watch for; `needs` gets "the same commit" by
//! construction. The price is that a push to the deploy branch runs the checks twice (ci.yml and
//! deploy.yml), which keeps ci.yml the one code-scanning and pull-request workflow.
//!
//! **Toolchains.** `ci.toolchain` picks the language setup of the checks and gates jobs: its
//! pinned setup action, its version field, the dependency cache and the lockfile-exact install
//! command ([`toolchain_steps`]). `none` sets up nothing: the checks run on the runner as is.
//!
//! **alembic itself** is installed from the crate registry at an exact version
//! (`cargo install --locked alembic-infra --version =X.Y.Z`; `ci.alembic_version`, default the
//! version that rendered the workflow): a published crate version is immutable, cargo checks
//! its checksum against the index, and `--locked` builds it with the lock file it was published
//! with. The step then refuses to go on unless `alembic --version` reports that version.
//!
//! yaml_serde cannot emit comments, and a SHA pin is only reviewable with its version next to
//! it, so [`annotate_pins`] appends `# vX.Y.Z` to each `uses:` line after serialisation.

use alembic_config::{Plane, Toolchain, Topology, Workload};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{Artifact, ArtifactKind};

/// The crate-registry package the workflows install alembic from (its binary is `alembic`).
pub const ALEMBIC_PACKAGE: &str = "alembic-infra";
/// The version that rendered the workflows: what they install unless `ci.alembic_version` says
/// otherwise.
pub const ALEMBIC_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An action pinned to a full commit SHA, with the release that commit is.
#[derive(Clone, Copy, Debug)]
pub struct Pin {
    pub action: &'static str,
    pub sha: &'static str,
    pub version: &'static str,
}

impl Pin {
    pub fn uses(&self) -> String {
        format!("{}@{}", self.action, self.sha)
    }
}

// Commit SHAs of release tags. Each was checked against the upstream repository where its files
// at that commit are public (package.json / CHANGELOG naming the release) or against several
// independent workflows and runner logs resolving the tag to the same commit; update together.
pub const CHECKOUT: Pin = Pin {
    action: "actions/checkout",
    sha: "11bd71901bbe5b1630ceea73d27597364c9af683",
    version: "v4.2.2",
};
/// v5 and later take `package-manager-cache: false`, which the deploy workflow needs.
pub const SETUP_NODE: Pin = Pin {
    action: "actions/setup-node",
    sha: "2028fbc5c25fe9cf00d9f06a71cc4710d4507903",
    version: "v6.0.0",
};
pub const PNPM_SETUP: Pin = Pin {
    action: "pnpm/action-setup",
    sha: "a7487c7e89a18df4991f7f222e4898a00d66ddda",
    version: "v4.1.0",
};
pub const SETUP_PYTHON: Pin = Pin {
    action: "actions/setup-python",
    sha: "a26af69be951a213d495a4c3e4e4022e16d87065",
    version: "v5.6.0",
};
pub const SETUP_UV: Pin = Pin {
    action: "astral-sh/setup-uv",
    sha: "f0ec1fc3b38f5e7cd731bb6ce540c5af426746bb",
    version: "v6.1.0",
};
pub const SETUP_GO: Pin = Pin {
    action: "actions/setup-go",
    sha: "d35c59abb061a4a6fb18e82ac0862c26744d6ab5",
    version: "v5.5.0",
};
/// Installs the toolchain with rustup and caches `~/.cargo` and `target` (Swatinem/rust-cache);
/// its CHANGELOG at this commit tops out at 1.13.0.
pub const SETUP_RUST: Pin = Pin {
    action: "actions-rust-lang/setup-rust-toolchain",
    sha: "fb51252c7ba57d633bc668f941da052e410add48",
    version: "v1.13.0",
};
/// Commit checked in hashicorp/setup-terraform itself (its package.json at this commit reads
/// 3.1.2, the release of 2024-08-19).
pub const SETUP_TERRAFORM: Pin = Pin {
    action: "hashicorp/setup-terraform",
    sha: "b9cd54a3c349d3f38e8881555d616ced269862dd",
    version: "v3.1.2",
};
/// Its package.json at this commit reads 3.29.0.
pub const UPLOAD_SARIF: Pin = Pin {
    action: "github/codeql-action/upload-sarif",
    sha: "ce28f5bb42b7a9f2c824e633a3f6ee835bab6858",
    version: "v3.29.0",
};
pub const SETUP_BUILDX: Pin = Pin {
    action: "docker/setup-buildx-action",
    sha: "e468171a9de216ec08956ac3ada2f0791b6bd435",
    version: "v3.11.1",
};
pub const DOCKER_LOGIN: Pin = Pin {
    action: "docker/login-action",
    sha: "74a5d142397b4f367a81961eba4e8cd7edddf772",
    version: "v3.4.0",
};
pub const BUILD_PUSH: Pin = Pin {
    action: "docker/build-push-action",
    sha: "263435318d21b8e681c14492fe198d362a7d2c83",
    version: "v6.18.0",
};
pub const ATTEST_PROVENANCE: Pin = Pin {
    action: "actions/attest-build-provenance",
    sha: "e8998f949152b193b063cb0ec769d69d929409be",
    version: "v2.4.0",
};
pub const PINS: [Pin; 15] = [
    CHECKOUT,
    SETUP_NODE,
    PNPM_SETUP,
    SETUP_PYTHON,
    SETUP_UV,
    SETUP_GO,
    SETUP_RUST,
    SETUP_TERRAFORM,
    UPLOAD_SARIF,
    SETUP_BUILDX,
    DOCKER_LOGIN,
    BUILD_PUSH,
    ATTEST_PROVENANCE,
    // Used only by this repository's own release workflow, whose pins the tests hold to this
    // same table.
    UPLOAD_ARTIFACT,
    DOWNLOAD_ARTIFACT,
];
pub const UPLOAD_ARTIFACT: Pin = Pin {
    action: "actions/upload-artifact",
    sha: "ea165f8d65b6e75b540449e92b4886f43607fa02",
    version: "v4.6.2",
};
pub const DOWNLOAD_ARTIFACT: Pin = Pin {
    action: "actions/download-artifact",
    sha: "d3f86a106a0bac45b974a628896c90dbdf5c8093",
    version: "v4.3.0",
};

/// Terraform the deploy job installs when it provisions the droplet (the infra stage needs
/// >= 1.5; this is the series the runner is tested with).
pub const TERRAFORM_VERSION: &str = "~1.11.0";

/// The `ci.secrets` name of the private key the deploy job loads into `ssh-agent`.
pub const SSH_KEY_SECRET: &str = "DEPLOY_SSH_KEY";
/// The `ci.secrets` name of the droplet's `known_hosts` line(s), written to `~/.ssh/known_hosts`
/// so the deploy's `ssh` (BatchMode, host keys checked) knows the droplet.
pub const KNOWN_HOSTS_SECRET: &str = "DEPLOY_KNOWN_HOSTS";
/// Secrets the image build logs in with, for a registry other than ghcr.io (which takes the
/// job's own token).
pub const REGISTRY_USER_SECRET: &str = "REGISTRY_USERNAME";
pub const REGISTRY_PASSWORD_SECRET: &str = "REGISTRY_PASSWORD";
/// Where code scanning reads the SARIF report from.
pub const SARIF_FILE: &str = "alembic.sarif";

/// The env var that hands the deploy job the digest-pinned image of a built workload:
/// `ALEMBIC_IMAGE_<NAME>` with the name upper-cased and `-` as `_` (`council-api` ->
/// `ALEMBIC_IMAGE_COUNCIL_API`), holding `<registry>/<name>@sha256:...`.
pub fn image_env(w: &Workload) -> String {
    format!(
        "ALEMBIC_IMAGE_{}",
        w.name.as_str().to_ascii_uppercase().replace('-', "_")
    )
}

/// The repository a built workload's image is pushed to: `<droplet.registry>/<name>`.
pub fn image_repository(t: &Topology, w: &Workload) -> Option<String> {
    let registry = t.droplet.registry.as_ref()?;
    w.build.as_ref()?;
    Some(format!("{registry}/{}", w.name))
}

/// Droplet workloads whose image CI builds and pushes (`build` set, and a registry to push to).
pub fn built_workloads(t: &Topology) -> Vec<&Workload> {
    if t.droplet.registry.is_none() {
        return Vec::new();
    }
    t.on_plane(Plane::Droplet)
        .filter(|w| w.build.is_some())
        .collect()
}

/// Starts `ssh-agent` on a socket in the runner's temp dir and adds the key from the
/// environment through stdin (`ssh-add -`): the key is never written to disk. The agent's socket
/// and pid go to `$GITHUB_ENV` so the later `alembic apply` step's `ssh` uses it.
const SSH_AGENT_SCRIPT: &str = r#"eval "$(ssh-agent -s -a "$RUNNER_TEMP/alembic-ssh-agent.sock")" > /dev/null
printf '%s\n' "$DEPLOY_SSH_KEY" | ssh-add -
{
  echo "SSH_AUTH_SOCK=$SSH_AUTH_SOCK"
  echo "SSH_AGENT_PID=$SSH_AGENT_PID"
} >> "$GITHUB_ENV"
"#;

/// Appended when `DEPLOY_KNOWN_HOSTS` is in `ci.secrets`.
const KNOWN_HOSTS_SCRIPT: &str = r#"install -d -m 700 "$HOME/.ssh"
printf '%s\n' "$DEPLOY_KNOWN_HOSTS" > "$HOME/.ssh/known_hosts"
chmod 600 "$HOME/.ssh/known_hosts"
"#;

/// An ordered string-keyed map (job ids, `with:`, `env:`, permissions) that serialises in
/// insertion order, so the output is deterministic and reads in the order it was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    pub fn with(mut self, k: impl Into<String>, v: V) -> Self {
        self.0.push((k.into(), v));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A `with:` input: action inputs are strings or booleans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Input {
    Str(String),
    Bool(bool),
}

/// A map that serialises as `{}` (an event with no filters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workflow {
    pub name: String,
    pub on: On,
    pub permissions: Ordered<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    pub jobs: Ordered<Job>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct On {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_dispatch: Option<Empty>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Push {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Concurrency {
    pub group: String,
    pub cancel_in_progress: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Job {
    pub name: String,
    pub runs_on: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    pub permissions: Ordered<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    pub timeout_minutes: u32,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub outputs: Ordered<String>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub with: Ordered<Input>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub env: Ordered<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Step {
    fn run(name: impl Into<String>, script: impl Into<String>) -> Self {
        Step {
            name: name.into(),
            run: Some(script.into()),
            ..Step::default()
        }
    }

    fn uses(name: impl Into<String>, pin: Pin, with: Ordered<Input>) -> Self {
        Step {
            name: name.into(),
            uses: Some(pin.uses()),
            with,
            ..Step::default()
        }
    }
}

fn read_contents() -> Ordered<String> {
    Ordered::default().with("contents", "read".to_owned())
}

fn checkout() -> Step {
    Step::uses(
        "checkout",
        CHECKOUT,
        Ordered::default().with("persist-credentials", Input::Bool(false)),
    )
}

fn str_input(s: impl Into<String>) -> Input {
    Input::Str(s.into())
}

/// Whether a job may restore a dependency cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// ci.yml: restore and save the toolchain's dependency cache.
    Use,
    /// deploy.yml: no cache at all, so the verdict a deploy rests on never depends on files
    /// another run wrote (a poisoned cache could make a gate pass); explicit `false` where the
    /// action would cache by default.
    Off,
}

/// The setup action(s), dependency cache and lockfile-exact install of `ci.toolchain`.
/// Every install refuses to change the lock file, so CI runs what was committed.
pub fn toolchain_steps(t: &Topology, cache: Cache) -> Vec<Step> {
    let ci = &t.ci;
    let on = cache == Cache::Use;
    let node = |manager: &str| {
        let with = Ordered::default().with("node-version", str_input(ci.node_version.as_str()));
        let with = if on {
            with.with("cache", str_input(manager))
        } else {
            with.with("package-manager-cache", Input::Bool(false))
        };
        Step::uses("set up node", SETUP_NODE, with)
    };
    let install = |cmd: &str| Step::run("install dependencies", cmd);
    match ci.toolchain {
        // pnpm's version comes from `packageManager` in package.json.
        Toolchain::Pnpm => vec![
            Step::uses("set up pnpm", PNPM_SETUP, Ordered::default()),
            node("pnpm"),
            install("pnpm install --frozen-lockfile"),
        ],
        Toolchain::Npm => vec![node("npm"), install("npm ci")],
        // corepack provides the Yarn named by `packageManager`; it must be enabled before
        // setup-node asks Yarn where its cache lives.
        Toolchain::Yarn => vec![
            Step::run("enable corepack", "corepack enable"),
            node("yarn"),
            install("yarn install --immutable"),
        ],
        Toolchain::Uv => vec![
            Step::uses(
                "set up uv",
                SETUP_UV,
                Ordered::default()
                    .with("python-version", str_input(ci.python_version.as_str()))
                    .with("enable-cache", Input::Bool(on)),
            ),
            install("uv sync --locked"),
        ],
        Toolchain::Pip => vec![
            Step::uses("set up python", SETUP_PYTHON, {
                let with = Ordered::default()
                    .with("python-version", str_input(ci.python_version.as_str()));
                // setup-python caches only when asked to.
                if on {
                    with.with("cache", str_input("pip"))
                } else {
                    with
                }
            }),
            install("pip install -r requirements.txt"),
        ],
        // `rustflags: ""`: the action would otherwise set RUSTFLAGS=-D warnings and change
        // what the project's own checks mean.
        Toolchain::Cargo => vec![
            Step::uses(
                "set up rust",
                SETUP_RUST,
                Ordered::default()
                    .with("toolchain", str_input(ci.rust_toolchain.as_str()))
                    .with("cache", Input::Bool(on))
                    .with("rustflags", str_input("")),
            ),
            install("cargo fetch --locked"),
        ],
        Toolchain::Go => vec![
            Step::uses(
                "set up go",
                SETUP_GO,
                Ordered::default()
                    .with("go-version", str_input(ci.go_version.as_str()))
                    .with("cache", Input::Bool(on)),
            ),
            install("go mod download"),
        ],
        Toolchain::None => Vec::new(),
    }
}

/// The alembic version the workflows install: `ci.alembic_version`, else the renderer's own.
pub fn alembic_version(t: &Topology) -> &str {
    t.ci.alembic_version
        .as_ref()
        .map_or(ALEMBIC_VERSION, |v| v.as_str())
}

/// The install command: the exact published version (`=`), built with the lock file it was
/// published with (`--locked`). Never a git URL, tag or branch: those can be moved.
pub fn install_alembic_command(version: &str) -> String {
    format!("cargo install --locked {ALEMBIC_PACKAGE} --version ={version}")
}

/// The check after the install: the `alembic` now first on PATH must be this package at
/// `version` (`alembic X.Y.Z (alembic-infra)`: not an older one left on a self-hosted runner,
/// nor Python's Alembic of the same name), or the job stops here.
pub fn verify_alembic_script(version: &str) -> String {
    format!(
        r#"installed="$(alembic --version)"
if [ "$installed" != "alembic {version} ({ALEMBIC_PACKAGE})" ]; then
  echo "::error::expected alembic {version}, found: $installed"
  exit 1
fi
"#
    )
}

/// Install, then verify. `RUSTUP_TOOLCHAIN=stable` keeps a project's pinned (maybe older)
/// Rust from building alembic.
fn install_alembic(t: &Topology) -> [Step; 2] {
    let version = alembic_version(t);
    let mut install = Step::run(
        format!("install alembic {version}"),
        install_alembic_command(version),
    );
    install
        .env
        .0
        .push(("RUSTUP_TOOLCHAIN".to_owned(), "stable".to_owned()));
    let verify = Step::run(
        format!("verify alembic {version}"),
        verify_alembic_script(version),
    );
    [install, verify]
}

fn job(t: &Topology, name: &str, steps: Vec<Step>) -> Job {
    Job {
        name: name.to_owned(),
        runs_on: t.ci.runner.to_string(),
        needs: Vec::new(),
        if_: None,
        permissions: read_contents(),
        environment: None,
        concurrency: None,
        timeout_minutes: 30,
        outputs: Ordered::default(),
        steps,
    }
}

/// The job id of a ci workload (`checks`, `gates`, `scan`, `build` and `deploy` are taken by
/// the fixed jobs).
fn workload_job_id(w: &Workload) -> String {
    match w.name.as_str() {
        "checks" | "gates" | "scan" | "build" | "deploy" => format!("{}-workload", w.name),
        n => n.to_owned(),
    }
}

/// A `run:` script from a command given as argv: each word shell-quoted by `shlex`.
fn run_argv(words: &[alembic_config::types::Text]) -> String {
    // Text is validated free of control characters, so the only refusal (a NUL) cannot happen.
    shlex::try_join(words.iter().map(|w| w.as_str())).expect("Text has no NUL bytes")
}

/// The jobs that decide whether a commit is good: checks, gates (after the checks), and one
/// job per ci workload. ci.yml runs them; deploy.yml runs the same and deploys only after all
/// of them succeeded.
fn verdict_jobs(t: &Topology, cache: Cache) -> Ordered<Job> {
    let mut checks = vec![checkout()];
    checks.extend(toolchain_steps(t, cache));
    checks.extend(
        t.ci.checks
            .iter()
            .map(|c| Step::run(c.as_str(), c.as_str())),
    );

    let mut gates = vec![checkout()];
    gates.extend(toolchain_steps(t, cache));
    gates.extend(install_alembic(t));
    gates.extend(t.ci.gates.iter().map(|c| Step::run(c.as_str(), c.as_str())));
    let mut gates = job(t, "gates", gates);
    gates.needs = vec!["checks".to_owned()];

    let mut jobs = Ordered::default()
        .with("checks", job(t, "checks", checks))
        .with("gates", gates);
    for w in t.on_plane(Plane::Ci) {
        let mut run = Step::run(w.name.as_str(), run_argv(&w.command));
        for (k, v) in &w.env {
            run.env.0.push((k.to_string(), v.to_string()));
        }
        jobs.0.push((
            workload_job_id(w),
            job(t, w.name.as_str(), vec![checkout(), run]),
        ));
    }
    jobs
}

/// `alembic check --format sarif` uploaded to code scanning. The report is uploaded when the
/// check ran, findings or not (a failing check still fails the job, after the upload). Pull
/// requests from forks get a read-only token that cannot upload, so the job runs for pushes
/// and same-repository pull requests only.
fn scan_job(t: &Topology) -> Job {
    let mut check = Step::run(
        "alembic check",
        format!("alembic check --format sarif > {SARIF_FILE}"),
    );
    check.id = Some("check".to_owned());
    let mut upload = Step::uses(
        "upload to code scanning",
        UPLOAD_SARIF,
        Ordered::default()
            .with("sarif_file", str_input(SARIF_FILE))
            .with("category", str_input("alembic")),
    );
    upload.if_ = Some("success() || steps.check.outcome == 'failure'".to_owned());
    let mut steps = vec![checkout()];
    steps.extend(install_alembic(t));
    steps.extend([check, upload]);
    let mut scan = job(t, "code scanning", steps);
    scan.if_ = Some(
        "github.event_name != 'pull_request' || github.event.pull_request.head.repo.full_name == github.repository"
            .to_owned(),
    );
    scan.permissions = read_contents().with("security-events", "write".to_owned());
    scan
}

pub fn ci_workflow(t: &Topology) -> Workflow {
    let mut jobs = verdict_jobs(t, Cache::Use);
    jobs.0.push(("scan".to_owned(), scan_job(t)));
    Workflow {
        name: "ci".to_owned(),
        on: On {
            push: Some(Push::default()),
            pull_request: Some(Empty {}),
            workflow_dispatch: None,
        },
        permissions: Ordered::default(),
        // A newer push to the same ref supersedes a running check; deploys never cancel.
        concurrency: Some(Concurrency {
            group: "ci-${{ github.ref }}".to_owned(),
            cancel_in_progress: true,
        }),
        jobs,
    }
}

/// The step id of a built workload's build step (workload names are `[a-z][a-z0-9-]*`, valid
/// step ids as they are).
fn build_step_id(w: &Workload) -> String {
    format!("build-{}", w.name)
}

/// Builds and pushes every `build` workload's image to `droplet.registry`, tagged with the
/// commit, attests its provenance, and hands each digest to the deploy job as a job output
/// named after the workload. The only job with `packages: write` (push), `id-token: write`
/// and `attestations: write` (provenance). No build cache: a cache written here could be
/// poisoned by an earlier run and end up in a pushed image. ghcr.io takes the job's token;
/// another registry takes the `REGISTRY_USERNAME` / `REGISTRY_PASSWORD` secrets of the deploy
/// environment.
fn build_job(t: &Topology, built: &[&Workload]) -> Option<Job> {
    let registry = t.droplet.registry.as_ref()?;
    if built.is_empty() {
        return None;
    }
    let ghcr = registry.host() == "ghcr.io";
    let (user, password) = if ghcr {
        // ghcr.io takes the job's own token, scoped by `packages: write` to this run.
        (
            "${{ github.actor }}".to_owned(),
            "${{ github.token }}".to_owned(),
        )
    } else {
        (
            format!("${{{{ secrets.{REGISTRY_USER_SECRET} }}}}"),
            format!("${{{{ secrets.{REGISTRY_PASSWORD_SECRET} }}}}"),
        )
    };
    let mut steps = vec![
        checkout(),
        Step::uses("set up buildx", SETUP_BUILDX, Ordered::default()),
        Step::uses(
            format!("log in to {}", registry.host()),
            DOCKER_LOGIN,
            Ordered::default()
                .with("registry", str_input(registry.host()))
                .with("username", str_input(user))
                .with("password", str_input(password)),
        ),
    ];
    let mut outputs = Ordered::default();
    for w in built {
        let (Some(context), Some(repo)) = (&w.build, image_repository(t, w)) else {
            continue;
        };
        let id = build_step_id(w);
        let mut build = Step::uses(
            format!("build {}", w.name),
            BUILD_PUSH,
            Ordered::default()
                .with("context", str_input(context.as_str()))
                .with("push", Input::Bool(true))
                .with("tags", str_input(format!("{repo}:${{{{ github.sha }}}}"))),
        );
        build.id = Some(id.clone());
        steps.push(build);
        steps.push(Step::uses(
            format!("attest {}", w.name),
            ATTEST_PROVENANCE,
            Ordered::default()
                .with("subject-name", str_input(repo))
                .with(
                    "subject-digest",
                    str_input(format!("${{{{ steps.{id}.outputs.digest }}}}")),
                )
                .with("push-to-registry", Input::Bool(true)),
        ));
        outputs.0.push((
            w.name.to_string(),
            format!("${{{{ steps.{id}.outputs.digest }}}}"),
        ));
    }
    let mut job = job(t, "build images", steps);
    job.needs = vec!["checks".to_owned()];
    job.permissions = read_contents()
        .with("packages", "write".to_owned())
        .with("id-token", "write".to_owned())
        .with("attestations", "write".to_owned());
    job.outputs = outputs;
    // Another registry's credentials are secrets: like the deploy's, they come from the
    // deploy environment, so its protection rules cover the push too.
    if !ghcr {
        job.environment = Some(t.ci.environment.to_string());
    }
    Some(job)
}

/// The step loading the deploy key into `ssh-agent` (and the droplet's known_hosts), when the
/// key's name is in `ci.secrets`. Its secrets reach this step only, not `alembic apply`.
fn ssh_agent_step(t: &Topology) -> Option<Step> {
    let has = |name: &str| t.ci.secrets.iter().any(|s| s.as_str() == name);
    if !has(SSH_KEY_SECRET) {
        return None;
    }
    let mut script = SSH_AGENT_SCRIPT.to_owned();
    let mut step = Step::default();
    step.env.0.push((
        SSH_KEY_SECRET.to_owned(),
        format!("${{{{ secrets.{SSH_KEY_SECRET} }}}}"),
    ));
    if has(KNOWN_HOSTS_SECRET) {
        script.push_str(KNOWN_HOSTS_SCRIPT);
        step.env.0.push((
            KNOWN_HOSTS_SECRET.to_owned(),
            format!("${{{{ secrets.{KNOWN_HOSTS_SECRET} }}}}"),
        ));
    }
    step.name = "load the deploy ssh key".to_owned();
    step.run = Some(script);
    Some(step)
}

/// hashicorp/setup-terraform, without its wrapper (alembic parses terraform's own stdout).
fn setup_terraform() -> Step {
    Step::uses(
        "set up terraform",
        SETUP_TERRAFORM,
        Ordered::default()
            .with(
                "terraform_version",
                Input::Str(TERRAFORM_VERSION.to_owned()),
            )
            .with("terraform_wrapper", Input::Bool(false)),
    )
}

pub fn deploy_workflow(t: &Topology) -> Workflow {
    let mut jobs = verdict_jobs(t, Cache::Off);
    let built = built_workloads(t);
    if let Some(build) = build_job(t, &built) {
        jobs.0.push(("build".to_owned(), build));
    }
    let agent = ssh_agent_step(t);
    let mut apply = Step::run("alembic apply", "alembic apply --yes");
    // Marks the one job that holds the environment's secrets: `doctor`/`secrets` then expect
    // them here, and expect none in the other CI jobs.
    apply
        .env
        .0
        .push(("ALEMBIC_CONTEXT".to_owned(), "deploy".to_owned()));
    for w in &built {
        if let Some(repo) = image_repository(t, w) {
            apply.env.0.push((
                image_env(w),
                format!("{repo}@${{{{ needs.build.outputs.{} }}}}", w.name),
            ));
        }
    }
    for s in &t.ci.secrets {
        // The key and known_hosts were consumed by the agent step: alembic never sees them.
        let consumed = agent
            .as_ref()
            .is_some_and(|a| a.env.0.iter().any(|(k, _)| k == s.as_str()));
        if !consumed {
            apply
                .env
                .0
                .push((s.to_string(), format!("${{{{ secrets.{s} }}}}")));
        }
    }
    let mut steps = vec![checkout()];
    // `alembic apply --yes` runs the infra plane first for a provisioned droplet.
    if t.droplet.is_provisioned() {
        steps.push(setup_terraform());
    }
    steps.extend(install_alembic(t));
    steps.extend(agent);
    steps.push(apply);
    let mut deploy = job(t, "deploy", steps);
    // Every other job of this run: the deploy starts only when all of them succeeded.
    deploy.needs = jobs.0.iter().map(|(id, _)| id.clone()).collect();
    // A manual run on another branch still runs the checks, but deploys nothing.
    deploy.if_ = Some(format!("github.ref == 'refs/heads/{}'", t.ci.branch));
    deploy.environment = Some(t.ci.environment.to_string());
    deploy.concurrency = Some(Concurrency {
        group: format!("deploy-{}", t.project.name),
        cancel_in_progress: false,
    });
    deploy.timeout_minutes = 60;
    jobs.0.push(("deploy".to_owned(), deploy));
    Workflow {
        name: "deploy".to_owned(),
        on: On {
            push: Some(Push {
                branches: vec![t.ci.branch.to_string()],
            }),
            pull_request: None,
            workflow_dispatch: Some(Empty {}),
        },
        permissions: Ordered::default(),
        // Runs of one ref queue rather than overlap, and never cancel: a deploy is never cut
        // off halfway (the deploy job's own group also keeps deploys from other refs apart).
        concurrency: Some(Concurrency {
            group: "deploy-${{ github.ref }}".to_owned(),
            cancel_in_progress: false,
        }),
        jobs,
    }
}

/// Why a job holds each write permission it has, written next to the grant (zizmor's auditor
/// persona asks for the reason of every write permission, and so does a reviewer).
pub const PERMISSION_REASONS: [(&str, &str); 4] = [
    (
        "security-events",
        "upload the SARIF report to code scanning",
    ),
    ("packages", "push the built images"),
    ("id-token", "sign the build provenance attestation"),
    ("attestations", "store the build provenance attestation"),
];

/// Serialise a workflow and add the `# vX.Y.Z` comments to pinned `uses:` lines and the reason
/// to each write permission.
pub fn to_yaml(w: &Workflow) -> String {
    let yaml = yaml_serde::to_string(w).expect("workflow structs always serialise");
    annotate_permissions(&annotate_pins(&yaml))
}

/// Append `# <reason>` to every `<permission>: write` line named in [`PERMISSION_REASONS`].
pub fn annotate_permissions(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 128);
    for line in yaml.lines() {
        out.push_str(line);
        if let Some((perm, value)) = line.trim_start().split_once(": ") {
            if value == "write" {
                if let Some((_, why)) = PERMISSION_REASONS.iter().find(|(p, _)| *p == perm) {
                    out.push_str(" # ");
                    out.push_str(why);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Append `# <version>` to every `uses: <action>@<sha>` line whose pin is in [`PINS`].
pub fn annotate_pins(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.lines() {
        out.push_str(line);
        let value = line.trim_start().trim_start_matches("- ").trim_start();
        if let Some(uses) = value.strip_prefix("uses: ") {
            if let Some(pin) = PINS.iter().find(|p| p.uses() == uses.trim()) {
                out.push_str(" # ");
                out.push_str(pin.version);
            }
        }
        out.push('\n');
    }
    out
}

pub fn render(t: &Topology) -> Vec<Artifact> {
    vec![
        Artifact::new(
            ".github/workflows/ci.yml",
            to_yaml(&ci_workflow(t)),
            Plane::Ci,
            ArtifactKind::Workflow,
        ),
        Artifact::new(
            ".github/workflows/deploy.yml",
            to_yaml(&deploy_workflow(t)),
            Plane::Ci,
            ArtifactKind::Workflow,
        ),
    ]
}
