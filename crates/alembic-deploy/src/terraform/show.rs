//! Reading Terraform's JSON: `show -json` into a [`PlanSummary`], `output -json` into the
//! droplet's address.

use super::*;

#[derive(Deserialize)]
pub(crate) struct ShowPlan {
    format_version: String,
    #[serde(default)]
    resource_changes: Vec<ShowResourceChange>,
    #[serde(default)]
    output_changes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct ShowResourceChange {
    address: String,
    #[serde(rename = "type")]
    resource_type: String,
    #[serde(default)]
    mode: String,
    change: ShowChange,
}

#[derive(Deserialize)]
pub(crate) struct ShowChange {
    actions: Vec<String>,
    #[serde(default)]
    replace_paths: Vec<Vec<serde_json::Value>>,
}

/// Parse `terraform show -json <planfile>` output into a summary. Counts follow Terraform's own
/// "Plan:" line: a replacement counts once as an add and once as a destroy; data-source reads
/// count as nothing.
pub(crate) fn parse_show_json(json: &str) -> Result<PlanSummary, TfError> {
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
pub(crate) const RESERVED_IP_OUTPUT: &str = alembic_render::terraform::OUTPUT_RESERVED_IP;

/// The droplet's address from what [`Runner::output_op`] printed (`status`, stdout, stderr):
/// the `reserved_ip` output of the applied state. `Err` says why it is not known, in words a
/// plan can show: most often the infra plane has not been applied yet (Terraform then prints
/// `{}`). The one reader of that output: the droplet plane and `doctor --online` both use it.
pub(crate) fn reserved_ip(status: i32, stdout: &str, stderr: &str) -> Result<IpAddr, String> {
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

/// The droplets' addresses from `terraform output -json` (the scaled-out layout's
/// `droplet_ips`), in Terraform's order (the droplets' `count.index`).
pub(crate) fn droplet_ips(status: i32, stdout: &str, stderr: &str) -> Result<Vec<IpAddr>, String> {
    const OUTPUT: &str = alembic_render::terraform_scale::OUTPUT_DROPLET_IPS;
    if status != 0 {
        // The same failure text as for the single droplet's output.
        return reserved_ip(status, stdout, stderr).map(|ip| vec![ip]);
    }
    let v: serde_json::Value = serde_json::from_str(stdout)
        .map_err(|e| format!("`terraform output -json` did not print JSON: {e}"))?;
    let Some(list) = v
        .get(OUTPUT)
        .and_then(|o| o.get("value"))
        .and_then(|v| v.as_array())
    else {
        return Err(format!(
            "the Terraform state has no `{OUTPUT}` output: the infra plane has not been applied yet"
        ));
    };
    list.iter()
        .map(|ip| {
            ip.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("the `{OUTPUT}` output holds {ip}, not an IP address"))
        })
        .collect()
}
