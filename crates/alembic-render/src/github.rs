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

use crate::{Artifact, ArtifactKind};

mod model;
mod pins;

pub use crate::ordered::Ordered;
pub use model::*;
pub use pins::*;

/// The crate-registry package the workflows install alembic from (its binary is `alembic`).
pub const ALEMBIC_PACKAGE: &str = "alembic-infra";
/// The version that rendered the workflows: what they install unless `ci.alembic_version` says
/// otherwise.
pub const ALEMBIC_VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// The checks workflow (`ci.yml`).
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

/// The deploy workflow (`deploy.yml`).
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

/// Both workflows of the ci plane.
pub fn render(t: &Topology) -> Vec<Artifact> {
    vec![
        Artifact::new(
            CI_PATH,
            to_yaml(&ci_workflow(t)),
            Plane::Ci,
            ArtifactKind::Workflow,
        ),
        Artifact::new(
            DEPLOY_PATH,
            to_yaml(&deploy_workflow(t)),
            Plane::Ci,
            ArtifactKind::Workflow,
        ),
    ]
}
