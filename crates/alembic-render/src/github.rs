//! GitHub Actions workflows for the ci plane: `.github/workflows/ci.yml` (checks, then gates,
//! plus one job per ci workload) and `.github/workflows/deploy.yml` (the deploy job).
//!
//! Built from typed structs serialised with `yaml_serde`, hardened by construction:
//! `permissions: {}` at the top and `contents: read` per job; every action pinned to a full
//! commit SHA ([`PINS`]); checkout with `persist-credentials: false`; `run:` scripts are built
//! from validated config text that may not contain `${{` (CI commands are parsed with
//! `Text::parse_ci`), so no expression is ever interpolated into a shell; secrets reach only the
//! deploy job, through `env:` entries `NAME: ${{ secrets.NAME }}`, in the deploy environment:
//! `DEPLOY_SSH_KEY` (and `DEPLOY_KNOWN_HOSTS`) to the step that loads the key into `ssh-agent`,
//! every other one to the `alembic apply` step. A provisioned droplet's deploy job also installs
//! Terraform (pinned `hashicorp/setup-terraform`) for the infra plane.
//!
//! yaml_serde cannot emit comments, and a SHA pin is only reviewable with its version next to
//! it, so [`annotate_pins`] appends `# vX.Y.Z` to each `uses:` line after serialisation.
//!
//! alembic itself is installed in the gates and deploy jobs with `cargo install --locked` from
//! its repository at the tag of the version that rendered the workflow, so CI runs the same
//! alembic that wrote the files.

use alembic_config::{Plane, Topology, Workload};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{Artifact, ArtifactKind};

/// Where alembic is installed from in CI (the workspace's `repository`), at which tag, and the
/// package that holds the `alembic` command.
pub const ALEMBIC_REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");
pub const ALEMBIC_TAG: &str = concat!("v", env!("CARGO_PKG_VERSION"));
pub const ALEMBIC_PACKAGE: &str = "alembic-infra";

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

/// Verified commit SHAs of the release tags (checked against the upstream tags; update together).
pub const CHECKOUT: Pin = Pin {
    action: "actions/checkout",
    sha: "11bd71901bbe5b1630ceea73d27597364c9af683",
    version: "v4.2.2",
};
pub const SETUP_NODE: Pin = Pin {
    action: "actions/setup-node",
    sha: "49933ea5288caeca8642d1e84afbd3f7d6820020",
    version: "v4.4.0",
};
pub const PNPM_SETUP: Pin = Pin {
    action: "pnpm/action-setup",
    sha: "a7487c7e89a18df4991f7f222e4898a00d66ddda",
    version: "v4.1.0",
};
/// Commit checked in hashicorp/setup-terraform itself (its package.json at this commit reads
/// 3.1.2, the release of 2024-08-19).
pub const SETUP_TERRAFORM: Pin = Pin {
    action: "hashicorp/setup-terraform",
    sha: "b9cd54a3c349d3f38e8881555d616ced269862dd",
    version: "v3.1.2",
};
pub const PINS: [Pin; 4] = [CHECKOUT, SETUP_NODE, PNPM_SETUP, SETUP_TERRAFORM];

/// Terraform the deploy job installs when it provisions the droplet (the infra stage needs
/// >= 1.5; this is the series the runner is tested with).
pub const TERRAFORM_VERSION: &str = "~1.11.0";

/// The `ci.secrets` name of the private key the deploy job loads into `ssh-agent`.
pub const SSH_KEY_SECRET: &str = "DEPLOY_SSH_KEY";
/// The `ci.secrets` name of the droplet's `known_hosts` line(s), written to `~/.ssh/known_hosts`
/// so the deploy's `ssh` (BatchMode, host keys checked) knows the droplet.
pub const KNOWN_HOSTS_SECRET: &str = "DEPLOY_KNOWN_HOSTS";

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
    pub permissions: Ordered<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    pub timeout_minutes: u32,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
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

/// pnpm (version from `packageManager` in package.json), then Node with pnpm's store cached.
fn node_and_pnpm(t: &Topology) -> Vec<Step> {
    vec![
        Step::uses("set up pnpm", PNPM_SETUP, Ordered::default()),
        Step::uses(
            "set up node",
            SETUP_NODE,
            Ordered::default()
                .with("node-version", Input::Str(t.ci.node_version.to_string()))
                .with("cache", Input::Str("pnpm".to_owned())),
        ),
        Step::run("install dependencies", "pnpm install --frozen-lockfile"),
    ]
}

fn install_alembic() -> Step {
    Step::run(
        "install alembic",
        format!("cargo install --locked --git {ALEMBIC_REPOSITORY} --tag {ALEMBIC_TAG} {ALEMBIC_PACKAGE}"),
    )
}

fn job(t: &Topology, name: &str, steps: Vec<Step>) -> Job {
    Job {
        name: name.to_owned(),
        runs_on: t.ci.runner.to_string(),
        needs: Vec::new(),
        permissions: read_contents(),
        environment: None,
        concurrency: None,
        timeout_minutes: 30,
        steps,
    }
}

/// The job id of a ci workload (`checks` and `gates` are taken by the fixed jobs).
fn workload_job_id(w: &Workload) -> String {
    match w.name.as_str() {
        "checks" | "gates" => format!("{}-workload", w.name),
        n => n.to_owned(),
    }
}

/// A `run:` script from a command given as argv: each word shell-quoted by `shlex`.
fn run_argv(words: &[alembic_config::types::Text]) -> String {
    // Text is validated free of control characters, so the only refusal (a NUL) cannot happen.
    shlex::try_join(words.iter().map(|w| w.as_str())).expect("Text has no NUL bytes")
}

pub fn ci_workflow(t: &Topology) -> Workflow {
    let mut checks = vec![checkout()];
    checks.extend(node_and_pnpm(t));
    checks.extend(
        t.ci.checks
            .iter()
            .map(|c| Step::run(c.as_str(), c.as_str())),
    );

    let mut gates = vec![checkout()];
    gates.extend(node_and_pnpm(t));
    gates.push(install_alembic());
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
    let agent = ssh_agent_step(t);
    let mut apply = Step::run("alembic apply", "alembic apply --yes");
    // Marks the one job that holds the environment's secrets: `doctor`/`secrets` then expect
    // them here, and expect none in the other CI jobs.
    apply
        .env
        .0
        .push(("ALEMBIC_CONTEXT".to_owned(), "deploy".to_owned()));
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
    steps.push(install_alembic());
    steps.extend(agent);
    steps.push(apply);
    let mut deploy = job(t, "deploy", steps);
    deploy.environment = Some(t.ci.environment.to_string());
    deploy.concurrency = Some(Concurrency {
        group: format!("deploy-{}", t.project.name),
        cancel_in_progress: false,
    });
    deploy.timeout_minutes = 60;
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
        concurrency: None,
        jobs: Ordered::default().with("deploy", deploy),
    }
}

/// Serialise a workflow and add the `# vX.Y.Z` comments to pinned `uses:` lines.
pub fn to_yaml(w: &Workflow) -> String {
    let yaml = yaml_serde::to_string(w).expect("workflow structs always serialise");
    annotate_pins(&yaml)
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
