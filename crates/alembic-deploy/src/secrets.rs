//! The secrets inventory: every secret name the topology uses, which plane and workload consume
//! it, where it must be set, whether the current context needs it, and whether it is set now.
//!
//! Values are looked at only to answer "set and non-empty?" (SEC003): a [`SecretRow`] holds a
//! bool, never the value, so nothing built from it can leak one.

use alembic_config::{Consumer, Plane, Topology};

pub(crate) use crate::stage::Stage;
use serde::Serialize;

/// Where alembic is running. A local apply needs the droplet's and the host's secrets; the CI
/// deploy job (marked `ALEMBIC_CONTEXT=deploy` by the rendered deploy.yml, which is the only job
/// holding the GitHub environment) needs the CI environment's; any other CI job (checks, gates
/// running `alembic doctor --json`) holds no secrets and needs none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Context {
    /// A CI job other than the deploy job: it holds no secrets.
    Ci,
    /// The CI deploy job (`ALEMBIC_CONTEXT=deploy`): the infra and droplet stages' secrets.
    Deploy,
    /// A person's machine: every stage's secrets but CI's.
    Local,
}

impl Context {
    /// `CI` set to anything but empty/`false`/`0`, or `GITHUB_ACTIONS=true`, means CI.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Context {
        let truthy =
            |v: Option<String>| v.is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        if get("ALEMBIC_CONTEXT").is_some_and(|v| v == "deploy") {
            Context::Deploy
        } else if truthy(get("CI")) || truthy(get("GITHUB_ACTIONS")) {
            Context::Ci
        } else {
            Context::Local
        }
    }

    /// Running on a CI runner (any job, the deploy job included).
    pub fn is_ci(self) -> bool {
        matches!(self, Context::Ci | Context::Deploy)
    }

    /// The context's name as the JSON shows it (`ci`, `deploy`, `local`).
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Ci => "ci",
            Context::Deploy => "deploy",
            Context::Local => "local",
        }
    }
}

/// Whether a context needs a stage's secrets when no stage is selected.
fn needed_in(stage: Stage, ctx: Context) -> bool {
    match ctx {
        Context::Ci => false,
        // `alembic apply` in the deploy job runs the infra and droplet planes (host is never
        // applied from CI); the deploy key and known_hosts are consumed by the workflow's
        // ssh-agent step before alembic runs, so they are not alembic's to need.
        Context::Deploy => matches!(stage, Stage::Infra | Stage::Droplet),
        Context::Local => stage != Stage::Ci,
    }
}

/// One consumer of a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Use {
    pub plane: Stage,
    pub consumer: String,
}

/// One secret name and what is known about it. Never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretRow {
    /// The env var name.
    pub name: String,
    /// Set and non-empty in this process's environment.
    pub set: bool,
    /// Needed in the current context (or by the selected plane).
    pub needed: bool,
    /// Each consumer: its stage and who reads the value.
    pub uses: Vec<Use>,
    /// Where the value must be provided, one line per place.
    pub set_in: Vec<String>,
}

fn place(t: &Topology, plane: Stage, name: &str) -> String {
    match plane {
        Stage::Infra => {
            // The state backend's key pair reaches terraform under the AWS SDK's names; the
            // token under the name the DigitalOcean provider reads (never as a variable).
            let child = match t.droplet.remote_state() {
                Some(s) if s.access_key_env.as_str() == name => {
                    crate::terraform::BACKEND_ACCESS_KEY_ENV.to_owned()
                }
                Some(s) if s.secret_key_env.as_str() == name => {
                    crate::terraform::BACKEND_SECRET_KEY_ENV.to_owned()
                }
                _ => crate::terraform::TOKEN_ENV.to_owned(),
            };
            format!("environment of `alembic apply` (passed to terraform as {child})")
        }
        Stage::Droplet => format!(
            "droplet {}/.env (mode 0600), written at apply from the applying environment",
            t.droplet.root
        ),
        Stage::Host => format!(
            "host secrets file ~/{} (mode 0600), written by `alembic apply --plane host`",
            alembic_render::launcher::secrets_file_in_home(t)
        ),
        Stage::Ci => format!(
            "GitHub environment `{}` of {}",
            t.ci.environment, t.ci.repository
        ),
    }
}

/// The inventory, sorted by name. `plane`: only secrets that plane consumes, all of them needed;
/// `None`: every secret, needed as the context says. `get` reads the environment.
pub fn inventory(
    t: &Topology,
    ctx: Context,
    plane: Option<Stage>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Vec<SecretRow> {
    let mut rows = Vec::new();
    for (name, uses) in t.secret_names() {
        let uses: Vec<Use> = uses
            .into_iter()
            .map(|u| Use {
                plane: match u.plane {
                    // `secret_names` files the provisioning token and the state backend's key
                    // pair under the droplet plane; Terraform (the infra stage) consumes them.
                    _ if matches!(u.consumer, Consumer::Terraform | Consumer::TerraformState) => {
                        Stage::Infra
                    }
                    Plane::Droplet => Stage::Droplet,
                    Plane::Host => Stage::Host,
                    Plane::Ci => Stage::Ci,
                },
                consumer: u.consumer.to_string(),
            })
            .collect();
        if let Some(p) = plane {
            if !uses.iter().any(|u| u.plane == p) {
                continue;
            }
        }
        let needed = match plane {
            Some(_) => true,
            None => uses.iter().any(|u| needed_in(u.plane, ctx)),
        };
        let mut planes: Vec<Stage> = uses.iter().map(|u| u.plane).collect();
        planes.sort();
        planes.dedup();
        let name = name.to_string();
        rows.push(SecretRow {
            set: get(&name).is_some_and(|v| !v.is_empty()),
            needed,
            set_in: planes.into_iter().map(|p| place(t, p, &name)).collect(),
            uses,
            name,
        });
    }
    rows
}

/// Needed secrets that are unset or empty (SEC003).
pub fn missing(rows: &[SecretRow]) -> impl Iterator<Item = &SecretRow> {
    rows.iter().filter(|r| r.needed && !r.set)
}

/// The `secrets --json` document.
pub fn to_json(ctx: Context, rows: &[SecretRow]) -> serde_json::Value {
    serde_json::json!({
        "format_version": 1,
        "context": ctx.as_str(),
        "ok": missing(rows).next().is_none(),
        "secrets": rows,
    })
}

/// Human table: one block per secret.
pub fn to_human(ctx: Context, rows: &[SecretRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let state = match (r.set, r.needed) {
            (true, _) => "set",
            (false, true) => "UNSET (needed)",
            (false, false) => "unset (not needed here)",
        };
        out.push_str(&format!("{}  {state}\n", r.name));
        let used: Vec<String> = r
            .uses
            .iter()
            .map(|u| format!("{} ({})", u.consumer, u.plane.as_str()))
            .collect();
        out.push_str(&format!("  used by: {}\n", used.join(", ")));
        for p in &r.set_in {
            out.push_str(&format!("  set in:  {p}\n"));
        }
    }
    let n = missing(rows).count();
    out.push_str(&format!(
        "{} secret(s), {} needed here ({} context), {} unset\n",
        rows.len(),
        rows.iter().filter(|r| r.needed).count(),
        ctx.as_str(),
        n
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alembic_config::default_topology;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn context_from_ci_markers() {
        assert_eq!(Context::from_env(&env(&[])), Context::Local);
        assert_eq!(Context::from_env(&env(&[("CI", "true")])), Context::Ci);
        assert_eq!(Context::from_env(&env(&[("CI", "false")])), Context::Local);
        assert_eq!(
            Context::from_env(&env(&[("GITHUB_ACTIONS", "true")])),
            Context::Ci
        );
        assert_eq!(
            Context::from_env(&env(&[("CI", "true"), ("ALEMBIC_CONTEXT", "deploy")])),
            Context::Deploy
        );
    }

    #[test]
    fn local_needs_droplet_and_host_secrets_ci_needs_the_environment() {
        let t = default_topology();
        let local = inventory(&t, Context::Local, None, &env(&[]));
        let needed: Vec<&str> = missing(&local).map(|r| r.name.as_str()).collect();
        assert_eq!(
            needed,
            [
                "DATABASE_URL",
                "DIGITALOCEAN_TOKEN",
                "GATEWAY_SIGNING_KEY",
                "OPENAI_API_KEY",
                "SPACES_ACCESS_KEY_ID",
                "SPACES_SECRET_ACCESS_KEY"
            ]
        );
        // A CI job without the deploy environment (gates) holds no secrets and needs none.
        let gates = inventory(&t, Context::Ci, None, &env(&[]));
        assert_eq!(missing(&gates).count(), 0);
        let ci = inventory(&t, Context::Deploy, None, &env(&[("DATABASE_URL", "")]));
        let needed: Vec<&str> = missing(&ci).map(|r| r.name.as_str()).collect();
        assert_eq!(
            needed,
            [
                "DATABASE_URL",
                "DIGITALOCEAN_TOKEN",
                "GATEWAY_SIGNING_KEY",
                "SPACES_ACCESS_KEY_ID",
                "SPACES_SECRET_ACCESS_KEY"
            ],
            "an empty value counts as unset"
        );
    }

    #[test]
    fn plane_filter_and_places() {
        let t = default_topology();
        let rows = inventory(&t, Context::Local, Some(Stage::Infra), &env(&[]));
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "DIGITALOCEAN_TOKEN",
                "SPACES_ACCESS_KEY_ID",
                "SPACES_SECRET_ACCESS_KEY"
            ]
        );
        assert_eq!(
            rows[0].set_in,
            [
                "environment of `alembic apply` (passed to terraform as DIGITALOCEAN_TOKEN)",
                "GitHub environment `production` of acme/alembic"
            ]
        );
        assert_eq!(
            rows[1].uses,
            [
                Use {
                    plane: Stage::Infra,
                    consumer: "terraform state".into()
                },
                Use {
                    plane: Stage::Ci,
                    consumer: "environment production".into()
                }
            ]
        );
        assert_eq!(
            rows[1].set_in[0],
            "environment of `alembic apply` (passed to terraform as AWS_ACCESS_KEY_ID)"
        );
        assert_eq!(
            rows[2].set_in[0],
            "environment of `alembic apply` (passed to terraform as AWS_SECRET_ACCESS_KEY)"
        );
        let host = inventory(&t, Context::Local, Some(Stage::Host), &env(&[]));
        assert_eq!(host.len(), 1);
        assert_eq!(
            host[0].uses,
            [Use {
                plane: Stage::Host,
                consumer: "nightly-digest".into()
            }]
        );
    }

    #[test]
    fn values_never_reach_the_views() {
        let t = default_topology();
        let rows = inventory(
            &t,
            Context::Local,
            None,
            &env(&[
                ("OPENAI_API_KEY", "sk-canary-7f3a"),
                ("DATABASE_URL", "pg://canary"),
                ("SPACES_ACCESS_KEY_ID", "DO00CANARYACCESS"),
                ("SPACES_SECRET_ACCESS_KEY", "canary-spaces-secret"),
            ]),
        );
        let text = format!(
            "{}{}",
            to_human(Context::Local, &rows),
            to_json(Context::Local, &rows)
        );
        assert!(!text.contains("canary") && !text.contains("CANARY"));
        assert!(rows.iter().any(|r| r.name == "OPENAI_API_KEY" && r.set));
    }
}
