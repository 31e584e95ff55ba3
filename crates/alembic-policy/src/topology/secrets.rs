//! Secret rules over the config: inline secret values in the text (SEC001) and secrets the
//! deploy job could not deliver because the CI environment does not hold them (CFG006): the
//! provisioning token, the state backend's key pair, droplet workloads' secrets.

use alembic_config::{Code, Diagnostic, Plane, Severity, SourceFile, Topology};

use crate::rule::{Rule, TopologyRule};

/// SEC001: inline secret value.
pub static SEC001: Rule = Rule {
    code: Code::Sec001,
    severity: Severity::Error,
    summary: "inline secret value",
    help: "never write secret values into alembic.toml: revoke this one (it may already be exposed), set it in the environment, and reference it by name (secrets = [\"NAME\"])",
};

/// SEC001 over the config text. Runs on any text, valid or not, so a token in a broken config
/// is still reported. Inside the config every hit is an error: nothing in `alembic.toml` has a
/// legitimate reason to hold a random value under a secret-like key.
pub fn inline_secrets(src: &SourceFile) -> Vec<Diagnostic> {
    crate::artifacts::secrets_in_text(&SEC001, src, Severity::Error)
}

/// CFG006: dangling reference (depends_on, route, secret).
pub static CFG006_SECRETS: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Cfg006,
        severity: Severity::Error,
        summary: "dangling reference (depends_on, route, secret)",
        help: "add the name to ci.secrets (and set it in the GitHub environment) so the deploy job can pass it on",
    },
    check: undeliverable_secrets,
};

fn undeliverable_secrets(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if t.droplet.is_provisioned() && !t.ci.secrets.contains(&t.droplet.token_env) {
        out.push(r.at(
            src,
            t.spans.get("droplet.token_env").unwrap_or(0..0),
            format!(
                "droplet.token_env `{}` is not in ci.secrets: the deploy job could not run Terraform",
                t.droplet.token_env
            ),
        ));
    }
    // Remote Terraform state: the deploy job's terraform needs the Spaces key pair to read it.
    if let Some(state) = t.droplet.remote_state() {
        for (key, name) in [
            ("state_access_key_env", state.access_key_env),
            ("state_secret_key_env", state.secret_key_env),
        ] {
            if !t.ci.secrets.contains(name) {
                // A defaulted name has no key of its own (the span lookup falls back to the
                // whole table): point at the bucket that needs it instead.
                let own = t
                    .spans
                    .get(&format!("droplet.{key}"))
                    .filter(|s| Some(s) != t.spans.get("droplet").as_ref());
                let span = own
                    .or_else(|| t.spans.get("droplet.state_bucket"))
                    .unwrap_or(0..0);
                out.push(r.at(
                    src,
                    span,
                    format!(
                        "droplet.{key} `{name}` is not in ci.secrets: the deploy job could not read the Terraform state"
                    ),
                ));
            }
        }
    }
    for w in t.on_plane(Plane::Droplet) {
        for (j, s) in w.secrets.iter().enumerate() {
            if !t.ci.secrets.contains(s) {
                out.push(r.at(
                    src,
                    t.spans
                        .get(&w.path(&format!("secrets.{j}")))
                        .unwrap_or(0..0),
                    format!(
                        "secret `{s}` of droplet workload `{}` is not in ci.secrets: the deploy job could not deliver it",
                        w.name
                    ),
                ));
            }
        }
    }
    out
}
