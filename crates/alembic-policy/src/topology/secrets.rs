//! Secret rules over the config: inline secret values in the text (SEC001) and secrets the
//! deploy job could not deliver because the CI environment does not hold them (CFG006).

use alembic_config::{Code, Diagnostic, Plane, Severity, SourceFile, Topology};

use crate::rule::{Rule, TopologyRule};

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
