//! The `infra` stage of the droplet plane: Terraform (or OpenTofu) driven as ops.
//!
//! `init` -> `plan -out=<file>` -> `show -json <file>` (parsed into a [`PlanSummary`]) ->
//! `apply <file>`: apply runs exactly the plan that was summarised and reviewed. The API token
//! reaches the child only through its environment (`TF_VAR_do_token` taken from the variable
//! named by `droplet.token_env`); it is never an argument, and the `show -json` document (which
//! holds variable values, sensitive ones included) is parsed in memory and never printed.
//!
//! With remote state (`droplet.state_bucket`, a `backend "s3"` on DigitalOcean Spaces) every
//! step that reads or writes the state (`init`, `plan`, `apply`, `output`) also gets the Spaces
//! key pair, as `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` taken from the variables named by
//! `droplet.state_access_key_env`/`state_secret_key_env`. `show` of a local plan file reads
//! only that file, so it gets neither the token nor the key pair.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exec::{ExecError, Executor, Goal, Output};
use crate::ops::Op;

/// Plane name used on every op of this stage.
pub const PLANE: &str = "infra";

/// The Terraform input variable that holds the DigitalOcean API token in the rendered config.
pub const TOKEN_VARIABLE: &str = alembic_render::terraform::TOKEN_VARIABLE;

/// Where the S3 backend reads the Spaces key pair from, in terraform's environment.
pub const BACKEND_ACCESS_KEY_ENV: &str = alembic_render::terraform::BACKEND_ACCESS_KEY_ENV;
pub const BACKEND_SECRET_KEY_ENV: &str = alembic_render::terraform::BACKEND_SECRET_KEY_ENV;

/// Resource types whose replacement destroys something users reach by address (the droplet and
/// its public IP); replacing them needs `--allow-replace`.
pub const PROTECTED_TYPES: &[&str] = &["digitalocean_droplet", "digitalocean_reserved_ip"];

/// `terraform` or `tofu`, whichever is on PATH (terraform first: it is what the docs name).
pub fn find_program() -> Option<PathBuf> {
    ["terraform", "tofu"]
        .into_iter()
        .find_map(crate::doctor::which)
}

/// How to run Terraform for one working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runner {
    /// `terraform`, `tofu`, or a full path to either.
    pub program: String,
    /// The configuration directory (`infra/terraform` under the output root).
    pub dir: PathBuf,
    /// Where `plan -out` writes the plan that `apply` later runs.
    pub plan_file: PathBuf,
    /// Non-secret environment for the child (`CHECKPOINT_DISABLE=1`, `TF_CLI_CONFIG_FILE=...`).
    /// When non-empty the ops run through `env K=V ...` so the transcript shows them.
    pub env: Vec<(String, String)>,
    /// `(child_name, source_name)` secrets, e.g. `("TF_VAR_do_token", "DIGITALOCEAN_TOKEN")`,
    /// for the steps that talk to the provider (`plan`, `apply`).
    pub secret_env: Vec<(String, String)>,
    /// `(child_name, source_name)` credentials of the state backend, e.g.
    /// `("AWS_ACCESS_KEY_ID", "SPACES_ACCESS_KEY_ID")`, for every step that touches the state
    /// (`init`, `plan`, `apply`, `output`). Empty with local state.
    pub backend_env: Vec<(String, String)>,
}

impl Runner {
    /// The runner for a rendered topology: config in `<root>/infra/terraform`, plan file beside
    /// it, token from `droplet.token_env`, state credentials from the `state_*_key_env` names
    /// when the state is remote.
    pub fn for_topology(program: &str, root: &Path, t: &alembic_config::Topology) -> Runner {
        let dir = root.join("infra/terraform");
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
        Runner {
            program: program.to_owned(),
            plan_file: dir.join("alembic.tfplan"),
            dir,
            env: Vec::new(),
            secret_env: vec![(
                format!("TF_VAR_{TOKEN_VARIABLE}"),
                t.droplet.token_env.to_string(),
            )],
            backend_env,
        }
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
    pub fn plan_op(&self) -> Op {
        let out = format!("-out={}", self.plan_file.display());
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
    pub fn show_op(&self) -> Op {
        let file = self.plan_file.display().to_string();
        self.op(
            "terraform show",
            &["show", "-json", "-no-color", &file],
            false,
            false,
        )
        .read_only()
    }

    /// `apply <planfile>`: exactly the reviewed plan, nothing recomputed.
    pub fn apply_op(&self) -> Op {
        let file = self.plan_file.display().to_string();
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
        vec![
            self.init_op(),
            self.plan_op(),
            self.show_op(),
            self.apply_op(),
        ]
    }
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
    /// A terraform step exited with an error; `stderr` is Terraform's own message (it never
    /// echoes sensitive variable values).
    Failed {
        step: String,
        status: i32,
        stderr: String,
    },
    /// `show -json` was not the document we expect.
    BadShowJson(String),
    /// The plan replaces protected resources and `--allow-replace` was not given.
    ReplaceRefused(Vec<ResourceChange>),
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
        }
    }
}

impl std::error::Error for TfError {}

impl TfError {
    /// DESIGN.md exit codes: a refused replacement is a problem with what the config asks for
    /// (1); anything else failed at run time (3).
    pub fn exit_code(&self) -> i32 {
        match self {
            TfError::ReplaceRefused(_) => 1,
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

fn require(step: &Op, out: Output, ok: &[i32]) -> Result<Output, TfError> {
    if ok.contains(&out.status) {
        Ok(out)
    } else {
        Err(TfError::Failed {
            step: step.step.clone(),
            status: out.status,
            stderr: out.stderr_text(),
        })
    }
}

/// `init`, `plan -out`, `show -json`: the summary of what apply would do. In a dry run the ops
/// are only recorded and `None` comes back (nothing ran, so there is nothing to summarise).
pub fn plan(ex: &mut Executor<'_>, tf: &Runner) -> Result<Option<PlanSummary>, TfError> {
    let init = tf.init_op();
    let out = ex.run(&init)?;
    require(&init, out, &[0])?;
    let plan = tf.plan_op();
    let out = ex.run(&plan)?;
    // -detailed-exitcode: 0 no changes, 2 changes, 1 error.
    require(&plan, out, &[0, 2])?;
    let show = tf.show_op();
    let out = ex.run(&show)?;
    let out = require(&show, out, &[0])?;
    if ex.goal == Goal::DryRun {
        return Ok(None);
    }
    parse_show_json(&out.stdout_text()).map(Some)
}

/// Apply the plan file `plan` wrote, after refusing protected replacements. A plan without
/// changes applies nothing.
pub fn apply(
    ex: &mut Executor<'_>,
    tf: &Runner,
    summary: Option<&PlanSummary>,
    allow_replace: bool,
) -> Result<(), TfError> {
    if let Some(s) = summary {
        s.check_replacements(PROTECTED_TYPES, allow_replace)?;
        if !s.has_changes() {
            return Ok(());
        }
    }
    let op = tf.apply_op();
    let out = ex.run(&op)?;
    require(&op, out, &[0]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alembic_config::default_topology;

    fn runner() -> Runner {
        Runner::for_topology("terraform", Path::new("/srv/site"), &default_topology())
    }

    #[test]
    fn dry_run_transcript_for_the_default_topology() {
        let lines: Vec<String> = runner().ops().iter().map(|o| o.to_string()).collect();
        assert_eq!(
            lines,
            [
                "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color",
                "[env: TF_VAR_do_token<-DIGITALOCEAN_TOKEN, AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' plan '-input=false' -no-color -detailed-exitcode '-out=/srv/site/infra/terraform/alembic.tfplan'",
                "terraform '-chdir=/srv/site/infra/terraform' show -json -no-color /srv/site/infra/terraform/alembic.tfplan",
                "[env: TF_VAR_do_token<-DIGITALOCEAN_TOKEN, AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' apply '-input=false' -no-color /srv/site/infra/terraform/alembic.tfplan",
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
        let tf = Runner::for_topology("terraform", Path::new("/srv/site"), &local_state_topology());
        let lines: Vec<String> = tf.ops().iter().map(|o| o.to_string()).collect();
        assert_eq!(
            lines,
            [
                "terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color",
                "[env: TF_VAR_do_token<-DIGITALOCEAN_TOKEN] terraform '-chdir=/srv/site/infra/terraform' plan '-input=false' -no-color -detailed-exitcode '-out=/srv/site/infra/terraform/alembic.tfplan'",
                "terraform '-chdir=/srv/site/infra/terraform' show -json -no-color /srv/site/infra/terraform/alembic.tfplan",
                "[env: TF_VAR_do_token<-DIGITALOCEAN_TOKEN] terraform '-chdir=/srv/site/infra/terraform' apply '-input=false' -no-color /srv/site/infra/terraform/alembic.tfplan",
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
        for op in [tf.init_op(), tf.plan_op(), tf.apply_op(), tf.output_op()] {
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
            tf.show_op().env_map.is_empty(),
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
        let tf = runner();
        assert_eq!(plan(&mut ex, &tf).unwrap(), None);
        apply(&mut ex, &tf, None, false).unwrap();
        assert_eq!(ex.transcript, tf.ops());
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
