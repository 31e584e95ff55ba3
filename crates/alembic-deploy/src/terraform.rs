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

use crate::exec::Redactor;
use crate::exec::{ExecError, Executor, Goal, Output};
use crate::ops::Op;

/// Plane name used on every op of this stage.
pub(crate) const PLANE: crate::stage::Stage = crate::stage::Stage::Infra;

/// Where the DigitalOcean provider reads its API token from, in terraform's environment.
pub(crate) const TOKEN_ENV: &str = alembic_render::terraform::PROVIDER_TOKEN_ENV;

/// Where the S3 backend reads the Spaces key pair from, in terraform's environment.
pub(crate) const BACKEND_ACCESS_KEY_ENV: &str = alembic_render::terraform::BACKEND_ACCESS_KEY_ENV;
pub(crate) const BACKEND_SECRET_KEY_ENV: &str = alembic_render::terraform::BACKEND_SECRET_KEY_ENV;

/// The plan file's name inside its private directory.
pub(crate) const PLAN_FILE: &str = "alembic.tfplan";
/// Prefix of the private plan directory; dry runs show it with `XXXXXX` for the random part.
const PLAN_DIR_PREFIX: &str = "alembic-tfplan-";

/// Resource types whose replacement destroys something users reach by address (the droplet and
/// its public IP); replacing them needs `--allow-replace`.
pub(crate) const PROTECTED_TYPES: &[&str] = &["digitalocean_droplet", "digitalocean_reserved_ip"];

/// `terraform` or `tofu`, whichever is on PATH (terraform first: it is what the docs name).
pub(crate) fn find_program() -> Option<PathBuf> {
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
pub(crate) struct Runner {
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
    pub(crate) fn for_topology(program: &str, root: &Path, t: &alembic_config::Topology) -> Runner {
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
    #[cfg(test)]
    pub(crate) fn expecting_files_of(mut self, dir: &Path) -> std::io::Result<Runner> {
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
    pub(crate) fn shown_plan_file(&self) -> PathBuf {
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
    pub(crate) fn init_op(&self) -> Op {
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
    pub(crate) fn plan_op(&self, plan_file: &Path) -> Op {
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
    pub(crate) fn show_op(&self, plan_file: &Path) -> Op {
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
    pub(crate) fn apply_op(&self, plan_file: &Path) -> Op {
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
    pub(crate) fn output_op(&self) -> Op {
        self.op(
            "read the droplet address (terraform output)",
            &["output", "-json", "-no-color"],
            false,
            true,
        )
        .read_only()
    }

    /// Every op of the stage, in order: what a dry run shows.
    pub(crate) fn ops(&self) -> Vec<Op> {
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
    pub(crate) fn verify_config(&self) -> Result<(), TfError> {
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
pub(crate) struct Drift {
    pub name: String,
    pub kind: DriftKind,
    /// Rendered -> on disk, unified; empty for a missing or unreadable file.
    pub diff: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DriftKind {
    /// Terraform would load it, alembic did not render it.
    Unknown,
    /// Rendered, but the bytes on disk differ.
    Changed,
    /// Rendered, but not on disk (run `alembic render`).
    Missing,
    Unreadable(String),
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
pub(crate) struct TfPlan {
    /// `None` in a dry run: nothing ran, so there is nothing to summarise.
    pub summary: Option<PlanSummary>,
    // Read by the tests; apply names the plan file through `shown`.
    #[cfg_attr(not(test), allow(dead_code))]
    plan_file: PathBuf,
    /// The plan file as ops name it (see `Executor::bind`).
    shown: PathBuf,
    // Held for its `Drop` (removes the directory); read by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    dir: Option<tempfile::TempDir>,
}

impl TfPlan {
    /// The plan file `apply` runs.
    #[cfg(test)]
    pub(crate) fn plan_file(&self) -> &Path {
        &self.plan_file
    }

    /// The private directory holding it (none in a dry run).
    #[cfg(test)]
    pub(crate) fn plan_dir(&self) -> Option<&Path> {
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
pub(crate) fn plan(
    ex: &mut Executor<'_>,
    tf: &Runner,
    redact: &Redactor,
) -> Result<TfPlan, TfError> {
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
pub(crate) fn apply(
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

mod error;
pub(crate) mod nameservers;
mod show;
mod summary;
#[cfg(test)]
mod tests;

pub(crate) use error::TfError;
#[allow(unused_imports)]
use error::*;
#[allow(unused_imports)]
use show::*;
pub(crate) use show::{droplet_ips, parse_show_json, reserved_ip};
#[allow(unused_imports)]
use summary::*;
pub(crate) use summary::{Action, PlanSummary, ResourceChange};
