//! The `infra` stage of the droplet plane: Terraform (or OpenTofu) driven as ops.
//!
//! `init` -> `plan -out=<file>` -> `show -json <file>` (parsed into a [`PlanSummary`]) ->
//! `apply <file>`: apply runs exactly the plan that was summarised and reviewed.
//!
//! What Terraform sees is exactly what alembic rendered from this config. Terraform keeps its
//! working state next to the configuration (local `terraform.tfstate`, its lock and backup,
//! workspaces, `.terraform/` with providers and the backend settings, `.terraform.lock.hcl`), so
//! it runs in `infra/terraform` where an existing project's state already is: moving it to a
//! staging directory would need the legacy `-state` flags and copying state back, and a crash
//! between the two would lose the state of a live droplet. Instead every file Terraform would
//! load as configuration there (`*.tf`, `*.tf.json`, `*.tfvars`, `*.tfvars.json`) must be
//! byte-for-byte the fresh render ([`Runner::verify_config`]): a hand-added or edited file is
//! reported with a diff and nothing runs. The check runs before `init` and again after `plan`
//! (a plan file embeds the configuration it was made from, and `apply` runs only that file), so
//! a file changed while Terraform planned is refused too.
//!
//! The DigitalOcean API token reaches the provider only through its environment: the provider
//! reads `DIGITALOCEAN_TOKEN` itself, which the runner sets from the variable named by
//! `droplet.token_env`. It is no Terraform variable, so it is in no plan file and no state.
//! Plan files live in a private directory (0700, created per plan under the system temp dir),
//! are made 0600, and are removed after apply and after any failure. Everything Terraform
//! prints that alembic shows (its errors) is passed through the apply's [`Redactor`].
//!
//! With remote state (`droplet.state_bucket`, a `backend "s3"` on DigitalOcean Spaces) every
//! step that reads or writes the state (`init`, `plan`, `apply`, `output`) also gets the Spaces
//! key pair, as `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` taken from the variables named by
//! `droplet.state_access_key_env`/`state_secret_key_env`. `show` of a local plan file reads
//! only that file, so it gets neither the token nor the key pair.
//!
//! Every path handed to Terraform is absolute: `-chdir` changes Terraform's working directory
//! before it reads its other arguments, so a relative `-out` would land inside the chdir.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::droplet::Redactor;
use crate::exec::{ExecError, Executor, Goal, Output};
use crate::ops::Op;

/// Plane name used on every op of this stage.
pub const PLANE: crate::stage::Stage = crate::stage::Stage::Infra;

/// Where the DigitalOcean provider reads its API token from, in terraform's environment.
pub const TOKEN_ENV: &str = alembic_render::terraform::PROVIDER_TOKEN_ENV;

/// Where the S3 backend reads the Spaces key pair from, in terraform's environment.
pub const BACKEND_ACCESS_KEY_ENV: &str = alembic_render::terraform::BACKEND_ACCESS_KEY_ENV;
pub const BACKEND_SECRET_KEY_ENV: &str = alembic_render::terraform::BACKEND_SECRET_KEY_ENV;

/// The plan file's name inside its private directory.
pub const PLAN_FILE: &str = "alembic.tfplan";
/// Prefix of the private plan directory; dry runs show it with `XXXXXX` for the random part.
const PLAN_DIR_PREFIX: &str = "alembic-tfplan-";

/// Resource types whose replacement destroys something users reach by address (the droplet and
/// its public IP); replacing them needs `--allow-replace`.
pub const PROTECTED_TYPES: &[&str] = &["digitalocean_droplet", "digitalocean_reserved_ip"];

/// `terraform` or `tofu`, whichever is on PATH (terraform first: it is what the docs name).
pub fn find_program() -> Option<PathBuf> {
    ["terraform", "tofu"]
        .into_iter()
        .find_map(crate::exec::which)
}

/// `p` made absolute against the current directory (no symlink resolution: the path the user
/// gave stays recognisable). Falls back to `p` only when the current directory is unreadable.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// How to run Terraform for one working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runner {
    /// `terraform`, `tofu`, or a full path to either.
    pub program: String,
    /// The configuration directory (`infra/terraform` under the output root), absolute.
    pub dir: PathBuf,
    /// Where each plan's private directory is created (absolute; the system temp dir).
    pub plan_parent: PathBuf,
    /// The configuration Terraform may load from `dir`: file name -> bytes, exactly the fresh
    /// render. Any other `*.tf`/`*.tfvars` there, or a differing one, stops the stage.
    pub expected: BTreeMap<String, Vec<u8>>,
    /// Non-secret environment for the child (`CHECKPOINT_DISABLE=1`, `TF_CLI_CONFIG_FILE=...`).
    /// When non-empty the ops run through `env K=V ...` so the transcript shows them.
    pub env: Vec<(String, String)>,
    /// `(child_name, source_name)` secrets, e.g. `("DIGITALOCEAN_TOKEN", "DO_API_TOKEN")`,
    /// for the steps that talk to the provider (`plan`, `apply`).
    pub secret_env: Vec<(String, String)>,
    /// `(child_name, source_name)` credentials of the state backend, e.g.
    /// `("AWS_ACCESS_KEY_ID", "SPACES_ACCESS_KEY_ID")`, for every step that touches the state
    /// (`init`, `plan`, `apply`, `output`). Empty with local state.
    pub backend_env: Vec<(String, String)>,
}

impl Runner {
    /// The runner for a rendered topology: config in `<root>/infra/terraform` (made absolute),
    /// expected to hold exactly `alembic_render::terraform::render(t)`, token from
    /// `droplet.token_env`, state credentials from the `state_*_key_env` names when the state
    /// is remote.
    pub fn for_topology(program: &str, root: &Path, t: &alembic_config::Topology) -> Runner {
        let dir = absolute(&root.join("infra/terraform"));
        let backend_env = match t.droplet.remote_state() {
            Some(state) => vec![
                (
                    BACKEND_ACCESS_KEY_ENV.to_owned(),
                    state.access_key_env.to_string(),
                ),
                (
                    BACKEND_SECRET_KEY_ENV.to_owned(),
                    state.secret_key_env.to_string(),
                ),
            ],
            None => Vec::new(),
        };
        let expected = alembic_render::terraform::render(t)
            .into_iter()
            .filter_map(|a| {
                let name = a.path.rsplit('/').next()?.to_owned();
                Some((name, a.bytes))
            })
            .collect();
        Runner {
            program: program.to_owned(),
            dir,
            plan_parent: absolute(&std::env::temp_dir()),
            expected,
            env: Vec::new(),
            secret_env: vec![(TOKEN_ENV.to_owned(), t.droplet.token_env.to_string())],
            backend_env,
        }
    }

    /// Expect exactly the files of `dir` as they are now (tests that drive hand-written
    /// fixtures through the runner).
    pub fn expecting_files_of(mut self, dir: &Path) -> std::io::Result<Runner> {
        self.expected = BTreeMap::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_config_name(&name) {
                self.expected.insert(name, std::fs::read(e.path())?);
            }
        }
        Ok(self)
    }

    /// The plan file dry runs show: the private directory's random part is `XXXXXX`.
    pub fn shown_plan_file(&self) -> PathBuf {
        self.plan_parent
            .join(format!("{PLAN_DIR_PREFIX}XXXXXX"))
            .join(PLAN_FILE)
    }

    /// One step. `secrets`: the provider token; `state`: the backend's credentials.
    fn op(&self, step: &str, args: &[&str], secrets: bool, state: bool) -> Op {
        let mut argv: Vec<String> = Vec::new();
        let program = if self.env.is_empty() {
            self.program.clone()
        } else {
            argv.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
            argv.push(self.program.clone());
            "env".to_owned()
        };
        argv.push(format!("-chdir={}", self.dir.display()));
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut op = Op::new(PLANE, step, program, argv);
        if secrets {
            for (child, source) in &self.secret_env {
                op = op.with_env_as(child.clone(), source.clone());
            }
        }
        if state {
            for (child, source) in &self.backend_env {
                op = op.with_env_as(child.clone(), source.clone());
            }
        }
        op
    }

    /// `init`: backend and (where reachable) providers. Changes only local working files (a
    /// remote backend is read, to find the state and its workspaces).
    pub fn init_op(&self) -> Op {
        self.op(
            "terraform init",
            &["init", "-input=false", "-no-color"],
            false,
            true,
        )
        .read_only()
    }

    /// `plan -out`: computes the changes (and refreshes state); changes no infrastructure.
    /// `-detailed-exitcode` makes 2 mean "changes present".
    pub fn plan_op(&self, plan_file: &Path) -> Op {
        let out = format!("-out={}", plan_file.display());
        self.op(
            "terraform plan",
            &[
                "plan",
                "-input=false",
                "-no-color",
                "-detailed-exitcode",
                &out,
            ],
            true,
            true,
        )
        .read_only()
    }

    /// `show -json <planfile>`: the machine-readable plan. Its stdout holds variable values, so
    /// it is parsed and dropped, never printed.
    pub fn show_op(&self, plan_file: &Path) -> Op {
        let file = plan_file.display().to_string();
        self.op(
            "terraform show",
            &["show", "-json", "-no-color", &file],
            false,
            false,
        )
        .read_only()
    }

    /// `apply <planfile>`: exactly the reviewed plan, nothing recomputed.
    pub fn apply_op(&self, plan_file: &Path) -> Op {
        let file = plan_file.display().to_string();
        self.op(
            "terraform apply",
            &["apply", "-input=false", "-no-color", &file],
            true,
            true,
        )
    }

    /// `output -json`: the applied state's outputs. Read-only and token-free (a remote state
    /// needs the backend's credentials to be read): the droplet plane and `doctor --online`
    /// learn the droplet's address from it ([`reserved_ip`]).
    pub fn output_op(&self) -> Op {
        self.op(
            "read the droplet address (terraform output)",
            &["output", "-json", "-no-color"],
            false,
            true,
        )
        .read_only()
    }

    /// Every op of the stage, in order: what a dry run shows.
    pub fn ops(&self) -> Vec<Op> {
        let plan = self.shown_plan_file();
        vec![
            self.init_op(),
            self.plan_op(&plan),
            self.show_op(&plan),
            self.apply_op(&plan),
        ]
    }

    /// Compare the configuration files in `dir` with the fresh render: every file Terraform
    /// would load must be one alembic rendered, with the same bytes, and every rendered file
    /// must be there. Read-only.
    pub fn verify_config(&self) -> Result<(), TfError> {
        let mut drift = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => {
                // Sorted, so the report reads the same on every file system.
                let mut v = e.collect::<Vec<_>>();
                v.sort_by_key(|e| e.as_ref().map(|e| e.file_name()).ok());
                v
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(TfError::Drift {
                    dir: self.dir.clone(),
                    files: vec![Drift {
                        name: String::new(),
                        kind: DriftKind::Unreadable(e.to_string()),
                        diff: String::new(),
                    }],
                })
            }
        };
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    drift.push(Drift {
                        name: String::new(),
                        kind: DriftKind::Unreadable(err.to_string()),
                        diff: String::new(),
                    });
                    continue;
                }
            };
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_config_name(&name) {
                continue;
            }
            seen.insert(name.clone());
            let disk = match std::fs::read(e.path()) {
                Ok(b) => b,
                Err(err) => {
                    drift.push(Drift {
                        name,
                        kind: DriftKind::Unreadable(err.to_string()),
                        diff: String::new(),
                    });
                    continue;
                }
            };
            match self.expected.get(&name) {
                Some(want) if *want == disk => {}
                Some(want) => drift.push(Drift {
                    diff: file_diff(&name, want, &disk),
                    name,
                    kind: DriftKind::Changed,
                }),
                None => drift.push(Drift {
                    diff: file_diff(&name, b"", &disk),
                    name,
                    kind: DriftKind::Unknown,
                }),
            }
        }
        for name in self.expected.keys().filter(|n| !seen.contains(*n)) {
            drift.push(Drift {
                name: name.clone(),
                kind: DriftKind::Missing,
                diff: String::new(),
            });
        }
        if drift.is_empty() {
            Ok(())
        } else {
            Err(TfError::Drift {
                dir: self.dir.clone(),
                files: drift,
            })
        }
    }
}

/// Names Terraform loads as configuration or variable values from its working directory.
fn is_config_name(name: &str) -> bool {
    [".tf", ".tf.json", ".tfvars", ".tfvars.json"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Unified diff from the rendered file to the one on disk (lossy for non-UTF-8 bytes).
fn file_diff(name: &str, rendered: &[u8], disk: &[u8]) -> String {
    let old = String::from_utf8_lossy(rendered);
    let new = String::from_utf8_lossy(disk);
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{name} (rendered by alembic)"),
            &format!("{name} (on disk)"),
        )
        .to_string()
}

/// One configuration file in the Terraform directory that is not the fresh render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub name: String,
    pub kind: DriftKind,
    /// Rendered -> on disk, unified; empty for a missing or unreadable file.
    pub diff: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriftKind {
    /// Terraform would load it, alembic did not render it.
    Unknown,
    /// Rendered, but the bytes on disk differ.
    Changed,
    /// Rendered, but not on disk (run `alembic render`).
    Missing,
    Unreadable(String),
}

/// What Terraform will do to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Read,
    Create,
    Update,
    Delete,
    /// `["delete","create"]`: destroy first, then create.
    DeleteThenCreate,
    /// `["create","delete"]`: create the replacement first (`create_before_destroy`).
    CreateThenDelete,
}

impl Action {
    /// From `resource_changes[].change.actions`.
    pub fn from_actions(actions: &[String]) -> Option<Action> {
        let a: Vec<&str> = actions.iter().map(String::as_str).collect();
        Some(match a.as_slice() {
            ["no-op"] => Action::NoOp,
            ["read"] => Action::Read,
            ["create"] => Action::Create,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["delete", "create"] => Action::DeleteThenCreate,
            ["create", "delete"] => Action::CreateThenDelete,
            _ => return None,
        })
    }

    pub fn is_replace(self) -> bool {
        matches!(self, Action::DeleteThenCreate | Action::CreateThenDelete)
    }

    /// Terraform's plan symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Read => "<=",
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::DeleteThenCreate => "-/+",
            Action::CreateThenDelete => "+/-",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Action::NoOp => "no change",
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update in place",
            Action::Delete => "destroy",
            Action::DeleteThenCreate => "replace (destroy, then create)",
            Action::CreateThenDelete => "replace (create, then destroy)",
        }
    }
}

/// One resource in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub action: Action,
    /// Attribute paths that force the replacement (`replace_paths`), when Terraform says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_because: Vec<String>,
}

/// The plan in numbers, with every changing resource. Holds no attribute values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Resources with an action other than no-op/read, in plan order.
    pub resources: Vec<ResourceChange>,
    /// Names of outputs whose value changes (values are never kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs_changed: Vec<String>,
}

impl PlanSummary {
    pub fn has_changes(&self) -> bool {
        !self.resources.is_empty() || !self.outputs_changed.is_empty()
    }

    pub fn replacements(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|r| r.action.is_replace())
    }

    /// Refuse a plan that replaces a protected resource unless replacement is allowed.
    pub fn check_replacements(
        &self,
        protected: &[&str],
        allow_replace: bool,
    ) -> Result<(), TfError> {
        if allow_replace {
            return Ok(());
        }
        let refused: Vec<ResourceChange> = self
            .replacements()
            .filter(|r| protected.contains(&r.resource_type.as_str()))
            .cloned()
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(TfError::ReplaceRefused(refused))
        }
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_changes() {
            return writeln!(f, "No changes. Infrastructure matches the configuration.");
        }
        for r in &self.resources {
            write!(
                f,
                "  {:>3} {} ({})",
                r.action.symbol(),
                r.address,
                r.action.describe()
            )?;
            if !r.replace_because.is_empty() {
                write!(f, " forced by {}", r.replace_because.join(", "))?;
            }
            writeln!(f)?;
        }
        for o in &self.outputs_changed {
            writeln!(f, "  output {o} changes")?;
        }
        writeln!(
            f,
            "Plan: {} to add, {} to change, {} to destroy.",
            self.add, self.change, self.destroy
        )
    }
}

#[derive(Debug)]
pub enum TfError {
    Exec(ExecError),
    /// A terraform step exited with an error; `stderr` is Terraform's own message, already
    /// passed through the apply's [`Redactor`] (its stdout when stderr was empty).
    Failed {
        step: String,
        status: i32,
        stderr: String,
    },
    /// `show -json` was not the document we expect.
    BadShowJson(String),
    /// The plan replaces protected resources and `--allow-replace` was not given.
    ReplaceRefused(Vec<ResourceChange>),
    /// The configuration in the Terraform directory is not the fresh render: nothing ran on it.
    Drift {
        dir: PathBuf,
        files: Vec<Drift>,
    },
    /// The private plan directory could not be made, or the plan file not made private.
    PlanDir(std::io::Error),
}

impl fmt::Display for TfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TfError::Exec(e) => write!(f, "{e}"),
            TfError::Failed {
                step,
                status,
                stderr,
            } => write!(f, "{step} failed (exit {status}): {}", stderr.trim()),
            TfError::BadShowJson(e) => write!(f, "cannot read the plan from `show -json`: {e}"),
            TfError::ReplaceRefused(rs) => {
                write!(f, "refusing to apply: the plan replaces ")?;
                let what: Vec<String> = rs
                    .iter()
                    .map(|r| {
                        let why = if r.replace_because.is_empty() {
                            String::new()
                        } else {
                            format!(", forced by {}", r.replace_because.join(", "))
                        };
                        format!("{} ({}{why})", r.address, r.action.describe())
                    })
                    .collect();
                write!(
                    f,
                    "{}; replacing the droplet or its reserved IP destroys the server or changes \
                     its public address; re-run with --allow-replace if that is intended",
                    what.join(", ")
                )
            }
            TfError::Drift { dir, files } => {
                writeln!(
                    f,
                    "the Terraform configuration in {} is not what alembic renders from this config; terraform was not run on it:",
                    dir.display()
                )?;
                for d in files {
                    match &d.kind {
                        DriftKind::Unknown => writeln!(
                            f,
                            "  unknown file {}: Terraform would load it, alembic did not render it",
                            d.name
                        )?,
                        DriftKind::Changed => {
                            writeln!(f, "  {} differs from the fresh render", d.name)?
                        }
                        DriftKind::Missing => {
                            writeln!(f, "  {} is missing (not rendered yet)", d.name)?
                        }
                        DriftKind::Unreadable(e) if d.name.is_empty() => {
                            writeln!(f, "  cannot read the directory: {e}")?
                        }
                        DriftKind::Unreadable(e) => writeln!(f, "  cannot read {}: {e}", d.name)?,
                    }
                }
                for d in files.iter().filter(|d| !d.diff.is_empty()) {
                    write!(f, "{}", d.diff)?;
                    if !d.diff.ends_with('\n') {
                        writeln!(f)?;
                    }
                }
                write!(
                    f,
                    "hint: `alembic render` rewrites the rendered files; keep hand-written Terraform outside {} (alembic applies only what it renders)",
                    dir.display()
                )
            }
            TfError::PlanDir(e) => write!(f, "cannot prepare the private plan directory: {e}"),
        }
    }
}

impl std::error::Error for TfError {}

impl TfError {
    /// DESIGN.md exit codes: a refused replacement is a problem with what the config asks for
    /// (1); anything else failed at run time (3).
    pub fn exit_code(&self) -> i32 {
        match self {
            TfError::ReplaceRefused(_) | TfError::Drift { .. } => 1,
            _ => 3,
        }
    }
}

impl From<ExecError> for TfError {
    fn from(e: ExecError) -> Self {
        TfError::Exec(e)
    }
}

// The subset of Terraform's JSON plan format (format_version 1.x) the summary needs.
#[derive(Deserialize)]
struct ShowPlan {
    format_version: String,
    #[serde(default)]
    resource_changes: Vec<ShowResourceChange>,
    #[serde(default)]
    output_changes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ShowResourceChange {
    address: String,
    #[serde(rename = "type")]
    resource_type: String,
    #[serde(default)]
    mode: String,
    change: ShowChange,
}

#[derive(Deserialize)]
struct ShowChange {
    actions: Vec<String>,
    #[serde(default)]
    replace_paths: Vec<Vec<serde_json::Value>>,
}

/// Parse `terraform show -json <planfile>` output into a summary. Counts follow Terraform's own
/// "Plan:" line: a replacement counts once as an add and once as a destroy; data-source reads
/// count as nothing.
pub fn parse_show_json(json: &str) -> Result<PlanSummary, TfError> {
    let plan: ShowPlan =
        serde_json::from_str(json).map_err(|e| TfError::BadShowJson(e.to_string()))?;
    if !plan.format_version.starts_with("1.") {
        return Err(TfError::BadShowJson(format!(
            "unsupported format_version {}",
            plan.format_version
        )));
    }
    let mut s = PlanSummary::default();
    for rc in plan.resource_changes {
        let action = Action::from_actions(&rc.change.actions).ok_or_else(|| {
            TfError::BadShowJson(format!(
                "unknown actions {:?} for {}",
                rc.change.actions, rc.address
            ))
        })?;
        if rc.mode == "data" || matches!(action, Action::NoOp | Action::Read) {
            continue;
        }
        match action {
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Delete => s.destroy += 1,
            Action::DeleteThenCreate | Action::CreateThenDelete => {
                s.add += 1;
                s.destroy += 1;
            }
            Action::NoOp | Action::Read => {}
        }
        let replace_because = rc
            .change
            .replace_paths
            .iter()
            .map(|p| {
                p.iter()
                    .map(|seg| match seg {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        s.resources.push(ResourceChange {
            address: rc.address,
            resource_type: rc.resource_type,
            action,
            replace_because,
        });
    }
    for (name, change) in plan.output_changes {
        let actions: Vec<String> = change
            .get("actions")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        if !matches!(actions.as_slice(), [a] if a == "no-op") {
            s.outputs_changed.push(name);
        }
    }
    Ok(s)
}

/// The output holding the droplet's public address in the rendered config.
pub const RESERVED_IP_OUTPUT: &str = alembic_render::terraform::OUTPUT_RESERVED_IP;

/// The droplet's address from what [`Runner::output_op`] printed (`status`, stdout, stderr):
/// the `reserved_ip` output of the applied state. `Err` says why it is not known, in words a
/// plan can show: most often the infra plane has not been applied yet (Terraform then prints
/// `{}`). The one reader of that output: the droplet plane and `doctor --online` both use it.
pub fn reserved_ip(status: i32, stdout: &str, stderr: &str) -> Result<IpAddr, String> {
    if status != 0 {
        let why = stderr
            .lines()
            // Terraform frames its diagnostics in a box (╷ │ ╵): the text is inside.
            .map(|l| {
                l.trim_matches(|c: char| {
                    c.is_whitespace() || "\u{2577}\u{2502}\u{2575}".contains(c)
                })
            })
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        return Err(format!("`terraform output` failed (exit {status}): {why}"));
    }
    let v: serde_json::Value = serde_json::from_str(stdout)
        .map_err(|e| format!("`terraform output -json` did not print JSON: {e}"))?;
    let Some(out) = v.get(RESERVED_IP_OUTPUT) else {
        return Err(format!(
            "the Terraform state has no `{RESERVED_IP_OUTPUT}` output: the infra plane has not \
             been applied yet"
        ));
    };
    let value = out
        .get("value")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    value.parse().map_err(|_| {
        format!("the `{RESERVED_IP_OUTPUT}` output is not an IP address (is it known yet?)")
    })
}

fn require(step: &Op, out: Output, ok: &[i32], redact: &Redactor) -> Result<Output, TfError> {
    if ok.contains(&out.status) {
        return Ok(out);
    }
    let stderr = out.stderr_text();
    let said = if stderr.trim().is_empty() {
        out.stdout_text()
    } else {
        stderr
    };
    Err(TfError::Failed {
        step: step.step.clone(),
        status: out.status,
        stderr: redact.clean(&said),
    })
}

/// A plan Terraform wrote and alembic summarised. Owns the private directory holding the plan
/// file: dropping it (after apply, on any error, or unused) removes the directory.
#[derive(Debug)]
pub struct TfPlan {
    /// `None` in a dry run: nothing ran, so there is nothing to summarise.
    pub summary: Option<PlanSummary>,
    plan_file: PathBuf,
    /// The plan file as ops name it (see `Executor::bind`).
    shown: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl TfPlan {
    /// The plan file `apply` runs.
    pub fn plan_file(&self) -> &Path {
        &self.plan_file
    }

    /// The private directory holding it (none in a dry run).
    pub fn plan_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

/// A fresh private directory (0700) for one plan file, under `parent`.
fn private_plan_dir(parent: &Path) -> Result<tempfile::TempDir, TfError> {
    // tempfile creates directories with mode 0700 on Unix; set it again so a permissive
    // umask or platform default can never widen it.
    let dir = tempfile::Builder::new()
        .prefix(PLAN_DIR_PREFIX)
        .tempdir_in(parent)
        .map_err(TfError::PlanDir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(TfError::PlanDir)?;
    }
    Ok(dir)
}

/// Terraform writes the plan file with its own umask-derived mode: narrow it to 0600.
fn make_private(file: &Path) -> Result<(), TfError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.exists() {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(TfError::PlanDir)?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Verify the configuration, then `init`, `plan -out` (into a fresh private directory), verify
/// again, and `show -json`: the summary of what apply would do. In a dry run the ops are only
/// recorded (against the shown plan path) and no summary comes back. Any failure removes the
/// plan directory before returning.
pub fn plan(ex: &mut Executor<'_>, tf: &Runner, redact: &Redactor) -> Result<TfPlan, TfError> {
    tf.verify_config()?;
    let dir = match ex.goal {
        Goal::Apply => Some(private_plan_dir(&tf.plan_parent)?),
        Goal::DryRun => None,
    };
    // The ops name the plan file as the plan shows it; the private directory's real name is
    // bound to its placeholder (`XXXXXX`) when it runs.
    let shown = tf.shown_plan_file();
    let plan_file = match &dir {
        Some(d) => {
            if let Some(p) = shown.parent() {
                ex.bind(p.display().to_string(), d.path().display().to_string());
            }
            d.path().join(PLAN_FILE)
        }
        None => shown.clone(),
    };
    let init = tf.init_op();
    let out = ex.run(&init)?;
    require(&init, out, &[0], redact)?;
    let plan = tf.plan_op(&shown);
    let out = ex.run(&plan)?;
    // -detailed-exitcode: 0 no changes, 2 changes, 1 error.
    require(&plan, out, &[0, 2], redact)?;
    if dir.is_some() {
        make_private(&plan_file)?;
    }
    // The plan file holds the configuration it was made from: refuse it if the files changed
    // while Terraform was reading them.
    tf.verify_config()?;
    let show = tf.show_op(&shown);
    let out = ex.run(&show)?;
    let out = require(&show, out, &[0], redact)?;
    let summary = match ex.goal {
        Goal::DryRun => None,
        Goal::Apply => Some(parse_show_json(&out.stdout_text())?),
    };
    Ok(TfPlan {
        summary,
        plan_file,
        shown,
        dir,
    })
}

/// Apply the plan file [`plan`] wrote, after refusing protected replacements. A plan without
/// changes applies nothing. The plan (and its private directory) is consumed: gone when this
/// returns, whatever happened.
pub fn apply(
    ex: &mut Executor<'_>,
    tf: &Runner,
    plan: TfPlan,
    allow_replace: bool,
    redact: &Redactor,
) -> Result<(), TfError> {
    if let Some(s) = &plan.summary {
        s.check_replacements(PROTECTED_TYPES, allow_replace)?;
        if !s.has_changes() {
            return Ok(());
        }
    }
    let op = tf.apply_op(&plan.shown);
    let out = ex.run(&op)?;
    require(&op, out, &[0], redact).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alembic_config::default_topology;

    /// The runner for a project at `/srv/site`, plan directories under `/tmp`.
    fn runner() -> Runner {
        let mut tf = Runner::for_topology("terraform", Path::new("/srv/site"), &default_topology());
        tf.plan_parent = PathBuf::from("/tmp");
        tf
    }

    #[test]
    fn dry_run_transcript_for_the_default_topology() {
        let lines: Vec<String> = runner().ops().iter().map(|o| o.to_string()).collect();
        assert_eq!(
            lines,
            [
                "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color",
                "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN, AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' plan '-input=false' -no-color -detailed-exitcode '-out=/tmp/alembic-tfplan-XXXXXX/alembic.tfplan'",
                "terraform '-chdir=/srv/site/infra/terraform' show -json -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
                "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN, AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' apply '-input=false' -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
            ]
        );
    }

    /// The default with its state bucket removed: local state, only the token.
    fn local_state_topology() -> alembic_config::Topology {
        let text =
            alembic_config::DEFAULT_TOML.replacen("state_bucket = \"alembic-tfstate\"", "", 1);
        let loaded = alembic_config::load_str("alembic.toml", &text);
        let t = loaded.topology.expect("default without a bucket validates");
        assert!(t.droplet.remote_state().is_none());
        t
    }

    #[test]
    fn local_state_passes_only_the_token() {
        let mut tf =
            Runner::for_topology("terraform", Path::new("/srv/site"), &local_state_topology());
        tf.plan_parent = PathBuf::from("/tmp");
        let lines: Vec<String> = tf.ops().iter().map(|o| o.to_string()).collect();
        assert_eq!(
            lines,
            [
                "terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color",
                "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN] terraform '-chdir=/srv/site/infra/terraform' plan '-input=false' -no-color -detailed-exitcode '-out=/tmp/alembic-tfplan-XXXXXX/alembic.tfplan'",
                "terraform '-chdir=/srv/site/infra/terraform' show -json -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
                "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN] terraform '-chdir=/srv/site/infra/terraform' apply '-input=false' -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
            ]
        );
        assert_eq!(
            tf.output_op().to_string(),
            "terraform '-chdir=/srv/site/infra/terraform' output -json -no-color"
        );
    }

    #[test]
    fn custom_state_key_names_reach_terraform_under_the_aws_names() {
        let text = alembic_config::DEFAULT_TOML.replacen(
            "state_bucket = \"alembic-tfstate\"",
            "state_bucket = \"alembic-tfstate\"\nstate_access_key_env = \"DO_SPACES_KEY\"\nstate_secret_key_env = \"DO_SPACES_SECRET\"",
            1,
        );
        let t = alembic_config::load_str("alembic.toml", &text)
            .topology
            .expect("validates");
        let tf = Runner::for_topology("terraform", Path::new("/srv/site"), &t);
        let plan = tf.shown_plan_file();
        for op in [
            tf.init_op(),
            tf.plan_op(&plan),
            tf.apply_op(&plan),
            tf.output_op(),
        ] {
            assert_eq!(
                &op.env_map[op.env_map.len() - 2..],
                [
                    ("AWS_ACCESS_KEY_ID".to_owned(), "DO_SPACES_KEY".to_owned()),
                    (
                        "AWS_SECRET_ACCESS_KEY".to_owned(),
                        "DO_SPACES_SECRET".to_owned()
                    ),
                ],
                "{}",
                op.step
            );
            // Names only: the op carries no value and no argument mentions the credentials.
            assert!(!op.args.iter().any(|a| a.contains("SPACES")), "{op}");
        }
        assert!(
            tf.show_op(&plan).env_map.is_empty(),
            "show reads only the plan file"
        );
    }

    #[test]
    fn dry_run_records_and_summarises_nothing() {
        struct None_;
        impl crate::exec::SecretSource for None_ {
            fn get(&self, _: &str) -> Option<String> {
                None
            }
        }
        let mut ex = Executor::new(Goal::DryRun, &None_);
        // Nothing rendered and nothing on disk at /srv/site: the configuration check passes.
        let mut tf = runner();
        tf.expected.clear();
        let redact = Redactor::new(&[], &None_);
        let p = plan(&mut ex, &tf, &redact).unwrap();
        assert_eq!((&p.summary, p.plan_dir()), (&None, None));
        apply(&mut ex, &tf, p, false, &redact).unwrap();
        assert_eq!(ex.transcript, tf.ops());
    }

    /// A project directory holding exactly the default's rendered Terraform.
    fn rendered_project() -> (tempfile::TempDir, Runner) {
        let tmp = tempfile::tempdir().unwrap();
        let tf = Runner::for_topology("terraform", tmp.path(), &default_topology());
        std::fs::create_dir_all(&tf.dir).unwrap();
        for (name, bytes) in &tf.expected {
            std::fs::write(tf.dir.join(name), bytes).unwrap();
        }
        (tmp, tf)
    }

    // A hand-added `zz-extra.tf` opening every port was planned and applied with the rest.
    #[test]
    fn unknown_terraform_file_is_refused_with_its_text() {
        let (_tmp, tf) = rendered_project();
        tf.verify_config().unwrap();
        // Not configuration: state, lock file, plan files, notes.
        for f in [
            "terraform.tfstate",
            ".terraform.lock.hcl",
            "old.tfplan",
            "README.md",
        ] {
            std::fs::write(tf.dir.join(f), "x").unwrap();
        }
        tf.verify_config().unwrap();
        let extra = "resource \"digitalocean_firewall\" \"open\" {\n  name = \"all\"\n}\n";
        std::fs::write(tf.dir.join("zz-extra.tf"), extra).unwrap();
        std::fs::write(tf.dir.join("prod.auto.tfvars"), "region = \"ams3\"\n").unwrap();
        let err = tf.verify_config().unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let TfError::Drift { files, .. } = &err else {
            panic!("{err:?}")
        };
        let names: Vec<(&str, &DriftKind)> =
            files.iter().map(|d| (d.name.as_str(), &d.kind)).collect();
        assert_eq!(
            names,
            [
                ("prod.auto.tfvars", &DriftKind::Unknown),
                ("zz-extra.tf", &DriftKind::Unknown)
            ]
        );
        let msg = err.to_string();
        assert!(msg.contains("unknown file zz-extra.tf"), "{msg}");
        assert!(
            msg.contains("+resource \"digitalocean_firewall\" \"open\" {"),
            "{msg}"
        );
        assert!(msg.contains("+region = \"ams3\""), "{msg}");
    }

    // An in-place edit of the rendered `main.tf` was planned and applied too.
    #[test]
    fn edited_and_missing_files_are_refused_with_a_diff() {
        let (_tmp, tf) = rendered_project();
        let main = String::from_utf8(tf.expected["main.tf"].clone()).unwrap();
        let edited = main.replacen("monitoring = true", "monitoring = false", 1);
        assert_ne!(main, edited);
        std::fs::write(tf.dir.join("main.tf"), &edited).unwrap();
        std::fs::remove_file(tf.dir.join("outputs.tf")).unwrap();
        let msg = tf.verify_config().unwrap_err().to_string();
        assert!(
            msg.contains("main.tf differs from the fresh render"),
            "{msg}"
        );
        assert!(msg.contains("outputs.tf is missing"), "{msg}");
        assert!(msg.contains("--- main.tf (rendered by alembic)"), "{msg}");
        assert!(msg.contains("+++ main.tf (on disk)"), "{msg}");
        assert!(msg.contains("-  monitoring = true"), "{msg}");
        assert!(msg.contains("+  monitoring = false"), "{msg}");
        assert!(msg.contains("hint: `alembic render`"), "{msg}");
    }

    #[test]
    fn relative_roots_become_absolute_paths() {
        let tf = Runner::for_topology("terraform", Path::new("."), &default_topology());
        assert!(
            tf.dir.is_absolute() && tf.plan_parent.is_absolute(),
            "{tf:?}"
        );
        assert_eq!(
            tf.dir,
            std::env::current_dir().unwrap().join("./infra/terraform")
        );
        for op in tf.ops() {
            for a in &op.args {
                if let Some(p) = a.strip_prefix("-chdir=").or(a.strip_prefix("-out=")) {
                    assert!(Path::new(p).is_absolute(), "{op}");
                }
            }
        }
    }

    #[test]
    fn failures_are_redacted() {
        struct One;
        impl crate::exec::SecretSource for One {
            fn get(&self, name: &str) -> Option<String> {
                (name == "DO_API_TOKEN").then(|| "dop_v1_canary_unit".to_owned())
            }
        }
        let redact = Redactor::new(&["DO_API_TOKEN".to_owned()], &One);
        let op = runner().init_op();
        let out = Output {
            status: 1,
            stdout: b"token dop_v1_canary_unit on stdout".to_vec(),
            stderr: Vec::new(),
            ..Output::default()
        };
        let err = require(&op, out, &[0], &redact).unwrap_err().to_string();
        assert_eq!(
            err,
            "terraform init failed (exit 1): token [DO_API_TOKEN: redacted] on stdout"
        );
    }

    #[test]
    fn reserved_ip_is_read_from_the_output_document() {
        let j = r#"{"droplet_ipv4":{"sensitive":false,"type":"string","value":"203.0.113.5"},
                    "reserved_ip":{"sensitive":false,"type":"string","value":"203.0.113.9"},
                    "name":{"sensitive":false,"type":"string","value":"x"}}"#;
        assert_eq!(reserved_ip(0, j, ""), Ok("203.0.113.9".parse().unwrap()));
        // No state yet: Terraform prints `{}` and exits 0.
        let none = reserved_ip(0, "{}\n", "").unwrap_err();
        assert!(none.contains("has not been applied"), "{none}");
        // Another IP-valued output is not taken for the droplet's address.
        assert!(reserved_ip(0, r#"{"droplet_ipv4":{"value":"203.0.113.5"}}"#, "").is_err());
        assert!(reserved_ip(0, r#"{"reserved_ip":{"value":"soon"}}"#, "").is_err());
        let failed = reserved_ip(
            1,
            "",
            "\n\u{2577}\n\u{2502} Error: bad\nError: chdir /x: no such file\n",
        )
        .unwrap_err();
        assert_eq!(failed, "`terraform output` failed (exit 1): Error: bad");
        assert_eq!(
            runner().output_op().to_string(),
            "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' output -json -no-color"
        );
        assert!(!runner().output_op().mutating);
    }

    #[test]
    fn env_prefix_is_shown_in_the_command_line() {
        let mut tf = runner();
        tf.env = vec![("CHECKPOINT_DISABLE".into(), "1".into())];
        assert_eq!(
            tf.init_op().command_line(),
            "env 'CHECKPOINT_DISABLE=1' terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color"
        );
    }

    const DROPLET_REPLACED: &str = r#"{"format_version":"1.2","resource_changes":[
      {"address":"digitalocean_droplet.main","mode":"managed","type":"digitalocean_droplet",
       "change":{"actions":["delete","create"],"replace_paths":[["image"]]}},
      {"address":"digitalocean_firewall.main","mode":"managed","type":"digitalocean_firewall",
       "change":{"actions":["update"]}},
      {"address":"digitalocean_record.api","mode":"managed","type":"digitalocean_record",
       "change":{"actions":["create"]}},
      {"address":"data.digitalocean_ssh_key.k","mode":"data","type":"digitalocean_ssh_key",
       "change":{"actions":["read"]}},
      {"address":"digitalocean_project.p","mode":"managed","type":"digitalocean_project",
       "change":{"actions":["no-op"]}}],
      "output_changes":{"ipv4":{"actions":["update"]},"name":{"actions":["no-op"]}},
      "variables":{"do_token":{"value":"dop_v1_canary"}}}"#;

    #[test]
    fn summary_counts_like_terraform_and_holds_no_values() {
        let s = parse_show_json(DROPLET_REPLACED).unwrap();
        assert_eq!((s.add, s.change, s.destroy), (2, 1, 1));
        assert_eq!(s.outputs_changed, ["ipv4"]);
        let text = s.to_string();
        assert_eq!(
            text,
            "  -/+ digitalocean_droplet.main (replace (destroy, then create)) forced by image\n\
             \x20   ~ digitalocean_firewall.main (update in place)\n\
             \x20   + digitalocean_record.api (create)\n\
             \x20 output ipv4 changes\n\
             Plan: 2 to add, 1 to change, 1 to destroy.\n"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("canary") && !json.contains("canary"));
    }

    #[test]
    fn droplet_replacement_needs_allow_replace() {
        let s = parse_show_json(DROPLET_REPLACED).unwrap();
        let err = s.check_replacements(PROTECTED_TYPES, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to apply: the plan replaces digitalocean_droplet.main (replace (destroy, \
             then create), forced by image); replacing the droplet or its reserved IP destroys \
             the server or changes its public address; re-run with --allow-replace if that is \
             intended"
        );
        assert_eq!(
            err.exit_code(),
            1,
            "a refusal is the config's problem, not a crash"
        );
        s.check_replacements(PROTECTED_TYPES, true).unwrap();
    }

    #[test]
    fn create_before_destroy_reserved_ip_is_also_protected() {
        let j = r#"{"format_version":"1.2","resource_changes":[{"address":"digitalocean_reserved_ip.edge",
          "mode":"managed","type":"digitalocean_reserved_ip","change":{"actions":["create","delete"]}}]}"#;
        let s = parse_show_json(j).unwrap();
        assert!(matches!(
            s.check_replacements(PROTECTED_TYPES, false),
            Err(TfError::ReplaceRefused(r)) if r[0].action == Action::CreateThenDelete
        ));
    }

    #[test]
    fn unknown_documents_are_errors_not_panics() {
        assert!(parse_show_json("{}").is_err());
        assert!(parse_show_json(r#"{"format_version":"2.0"}"#).is_err());
        assert!(parse_show_json(
            r#"{"format_version":"1.0","resource_changes":[{"address":"a","type":"t","change":{"actions":["explode"]}}]}"#
        )
        .is_err());
    }
}
