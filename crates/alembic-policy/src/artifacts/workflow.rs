//! GitHub Actions workflow rules: actions pinned to commit SHAs (CI001), least-privilege token
//! permissions (CI002), no untrusted event text spliced into scripts (CI003), and deploy jobs
//! that run in an environment without being cancelled halfway (CI004).

use std::ops::Range;

use alembic_config::{Code, Diagnostic, Severity};

use super::doc::{Doc, FileKind, FileRule};
use crate::rule::Rule;
use crate::yaml::{Mapping, Value};

/// CI001: action not pinned to a full commit SHA.
pub static CI001: FileRule = FileRule {
    rule: Rule {
        code: Code::Ci001,
        severity: Severity::Error,
        summary: "action not pinned to a full commit SHA",
        help: "pin to the full 40-character commit SHA (uses: owner/repo@<sha> # vX.Y.Z): tags and branches can be moved to other code",
    },
    kind: FileKind::Workflow,
    check: unpinned,
};

/// CI002: token permissions broader than needed.
pub static CI002: FileRule = FileRule {
    rule: Rule {
        code: Code::Ci002,
        severity: Severity::Error,
        summary: "token permissions broader than needed",
        help: "set `permissions: {}` at the top and grant each job only what it needs (e.g. contents: read)",
    },
    kind: FileKind::Workflow,
    check: permissions,
};

/// CI003: untrusted event input interpolated into a run: script.
pub static CI003: FileRule = FileRule {
    rule: Rule {
        code: Code::Ci003,
        severity: Severity::Error,
        summary: "untrusted event input interpolated into a run: script",
        help: "pass the value through an environment variable (env: TITLE: ${{ github.event.issue.title }}) and use \"$TITLE\" in the script",
    },
    kind: FileKind::Workflow,
    check: injection,
};

/// CI004: deploy job without an environment, or with cancel-in-progress.
pub static CI004: FileRule = FileRule {
    rule: Rule {
        code: Code::Ci004,
        severity: Severity::Error,
        summary: "deploy job without an environment, or with cancel-in-progress",
        help: "run deploy jobs in a GitHub environment (environment: production) with concurrency that queues instead of cancelling (cancel-in-progress: false)",
    },
    kind: FileKind::Workflow,
    check: deploy_jobs,
};

/// CI005: an untrusted trigger (pull_request_target, workflow_run) that checks out or runs the pull request's code.
pub static CI005: FileRule = FileRule {
    rule: Rule {
        code: Code::Ci005,
        severity: Severity::Error,
        summary: "an untrusted trigger (pull_request_target, workflow_run) that checks out or runs the pull request's code",
        help: "never check out the pull request's head in a pull_request_target or workflow_run workflow: these run with the base repository's secrets and a write token; use `pull_request` for building untrusted code, and pass results to the privileged workflow as data only",
    },
    kind: FileKind::Workflow,
    check: untrusted_checkout,
};

/// Triggers that run with the base repository's secrets and token for events a stranger can
/// cause with their own code.
const PRIVILEGED_UNTRUSTED: &[&str] = &["pull_request_target", "workflow_run"];

/// The workflow's trigger names (`on: push`, `on: [push, pull_request]`, `on: {push: ...}`).
fn triggers(doc: &Doc<'_>) -> Vec<String> {
    let Some(root) = doc.yaml.as_ref().and_then(Value::as_mapping) else {
        return Vec::new();
    };
    // YAML 1.1 readers turn a bare `on` key into `true`.
    let on = root.get("on").or_else(|| root.get(&Value::Bool(true)));
    match on {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn untrusted_trigger(doc: &Doc<'_>) -> Option<String> {
    triggers(doc)
        .into_iter()
        .find(|t| PRIVILEGED_UNTRUSTED.contains(&t.as_str()))
}

fn jobs<'a>(doc: &'a Doc<'_>) -> Vec<(&'a str, &'a Mapping)> {
    doc.named_mappings("jobs")
}

fn steps(job: &Mapping) -> Vec<&Mapping> {
    job.get("steps")
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_mapping).collect())
        .unwrap_or_default()
}

/// Is a `uses:` reference immutable?
pub(crate) fn is_pinned(uses: &str) -> bool {
    let u = uses.trim();
    if u.starts_with("./") {
        return true;
    }
    if let Some(image) = u.strip_prefix("docker://") {
        return image.contains("@sha256:");
    }
    match u.rsplit_once('@') {
        Some((_, r)) => r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

fn unpinned(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (id, job) in jobs(doc) {
        let mut check = |uses: &str, path: Vec<String>| {
            if !is_pinned(uses) {
                out.push(r.at(
                    doc.src,
                    doc.yindex.value_span(&path),
                    format!("`{uses}` in job `{id}` is not pinned to a full commit SHA"),
                ));
            }
        };
        if let Some(u) = job.get("uses").and_then(Value::as_str) {
            check(u, vec!["jobs".into(), id.into(), "uses".into()]);
        }
        for (i, step) in steps(job).into_iter().enumerate() {
            if let Some(u) = step.get("uses").and_then(Value::as_str) {
                let path = vec![
                    "jobs".into(),
                    id.into(),
                    "steps".into(),
                    i.to_string(),
                    "uses".into(),
                ];
                check(u, path);
            }
        }
    }
    out
}

fn permissions(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(root) = doc.yaml.as_ref().and_then(Value::as_mapping) else {
        return out;
    };
    match root.get("permissions") {
        None => {
            // Without a top-level block every job that sets none gets the repository default,
            // which may be read/write on everything.
            let bare: Vec<&str> = jobs(doc)
                .into_iter()
                .filter(|(_, j)| !j.contains_key("permissions"))
                .map(|(id, _)| id)
                .collect();
            if !bare.is_empty() {
                let at = doc.yindex.key_span(&["jobs"]);
                out.push(r.at_severity(
                    Severity::Warning,
                    doc.src,
                    at.start..at.start,
                    format!(
                        "no top-level `permissions`: job(s) {} get the repository's default token permissions",
                        bare.iter().map(|j| format!("`{j}`")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Some(Value::String(s)) if s == "write-all" => out.push(r.at(
            doc.src,
            doc.yindex.value_span(&["permissions"]),
            "`permissions: write-all` gives every job write access to everything",
        )),
        _ => {}
    }
    // On a privileged untrusted trigger, any write scope is more than such a workflow should
    // hold: the pull request's author steers what runs.
    if let Some(trigger) = untrusted_trigger(doc) {
        let mut scopes: Vec<(Vec<String>, String)> = Vec::new();
        if let Some(Value::Mapping(m)) = root.get("permissions") {
            for (k, v) in m {
                if let (Some(k), Some("write")) = (k.as_str(), v.as_str()) {
                    scopes.push((
                        vec!["permissions".into(), k.into()],
                        format!("`{k}: write`"),
                    ));
                }
            }
        }
        for (id, job) in jobs(doc) {
            if let Some(Value::Mapping(m)) = job.get("permissions") {
                for (k, v) in m {
                    if let (Some(k), Some("write")) = (k.as_str(), v.as_str()) {
                        let path = vec!["jobs".into(), id.into(), "permissions".into(), k.into()];
                        scopes.push((path, format!("`{k}: write` in job `{id}`")));
                    }
                }
            }
        }
        for (path, what) in scopes {
            out.push(r.at(
                doc.src,
                doc.yindex.value_span(&path),
                format!(
                    "{what} on a `{trigger}` workflow, which runs for events a stranger controls"
                ),
            ));
        }
    }
    for (id, job) in jobs(doc) {
        if job.get("permissions").and_then(Value::as_str) == Some("write-all") {
            out.push(r.at(
                doc.src,
                doc.yindex.value_span(&["jobs", id, "permissions"]),
                format!("job `{id}` has `permissions: write-all`"),
            ));
        }
    }
    out
}

/// Expression paths an attacker controls (or that are not plain numbers, ids and hashes).
fn untrusted_reference(expr: &str) -> Option<String> {
    let normal = normalize_brackets(expr);
    let expr = normal.as_str();
    let e = expr.to_ascii_lowercase();
    // The whole event (`toJSON(github.event)`), or an index that is not a literal name.
    for (i, _) in e.match_indices("github.event") {
        let next = e.as_bytes().get(i + "github.event".len()).copied();
        let word_before = i > 0 && {
            let b = e.as_bytes()[i - 1];
            b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
        };
        if !word_before && !matches!(next, Some(b'.' | b'_') | Some(b'a'..=b'z' | b'0'..=b'9')) {
            return Some(expr[i..i + "github.event".len()].to_owned());
        }
    }
    if let Some(i) = e.find("github.head_ref") {
        return Some(expr[i..i + "github.head_ref".len()].to_owned());
    }
    for (i, _) in e.match_indices("github.event.") {
        let path: String = e[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*'))
            .collect();
        let rest = &path["github.event.".len()..];
        let last = rest.rsplit('.').next().unwrap_or(rest);
        const SAFE_LEAVES: &[&str] = &[
            "number",
            "id",
            "sha",
            "head_sha",
            "node_id",
            "action",
            "created_at",
            "updated_at",
            "merged",
            "draft",
            "state",
            "size",
            "forced",
            "before",
            "after",
            "run_id",
            "run_number",
            "run_attempt",
            "private",
            "fork",
        ];
        let safe = SAFE_LEAVES.contains(&last)
            || rest.starts_with("repository.")
            || rest.ends_with("base.ref");
        if !safe && !rest.is_empty() {
            return Some(expr[i..i + path.len()].to_owned());
        }
    }
    None
}

/// `github['event']["issue"]['title']` -> `github.event.issue.title`: the bracket form of a
/// property access is the same access.
fn normalize_brackets(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = rest[i + 1..].trim_start();
        let quoted = after
            .chars()
            .next()
            .filter(|q| *q == '\'' || *q == '"')
            .and_then(|q| {
                let body = &after[1..];
                let end = body.find(q)?;
                let name = &body[..end];
                let tail = body[end + 1..].trim_start().strip_prefix(']')?;
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    .then_some((name, tail))
            });
        match quoted {
            Some((name, tail)) => {
                out.push('.');
                out.push_str(name);
                rest = tail;
            }
            None => {
                out.push('[');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `${{ ... }}` in `range` of the text that references untrusted input.
pub(crate) fn injections(text: &str, range: Range<usize>) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    let Some(hay) = text.get(range.clone()) else {
        return out;
    };
    for (i, _) in hay.match_indices("${{") {
        let Some(end) = hay[i..].find("}}") else {
            continue;
        };
        if let Some(r) = untrusted_reference(&hay[i + 3..i + end]) {
            out.push((range.start + i..range.start + i + end + 2, r));
        }
    }
    out
}

fn injection(rule: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (id, job) in jobs(doc) {
        for (i, step) in steps(job).into_iter().enumerate() {
            let i = i.to_string();
            // `run:` scripts, and actions/github-script's `script:` (JavaScript, same problem).
            let mut scripts: Vec<(Vec<&str>, &str)> = Vec::new();
            if step.get("run").and_then(Value::as_str).is_some() {
                scripts.push((vec!["jobs", id, "steps", &i, "run"], "run"));
            }
            let github_script = step
                .get("uses")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("actions/github-script@"));
            if github_script
                && step
                    .get("with")
                    .and_then(|w| w.get("script"))
                    .and_then(Value::as_str)
                    .is_some()
            {
                scripts.push((vec!["jobs", id, "steps", &i, "with", "script"], "script"));
            }
            for (path, what) in scripts {
                let range = doc.yindex.value_span(&path);
                for (span, reference) in injections(doc.text(), range) {
                    out.push(rule.at(
                        doc.src,
                        span,
                        format!(
                            "`{reference}` is interpolated into the `{what}:` script of job `{id}`: whoever controls it can run commands"
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// Does this text name the pull request's own code (its head commit, branch or merge ref)?
fn names_pr_head(text: &str) -> bool {
    let t = normalize_brackets(text).to_ascii_lowercase();
    [
        "github.event.pull_request.head.sha",
        "github.event.pull_request.head.ref",
        "github.event.pull_request.head.repo",
        "github.head_ref",
        "github.event.workflow_run.head_sha",
        "github.event.workflow_run.head_branch",
        "github.event.workflow_run.head_repository",
        "github.event.workflow_run.pull_requests",
        "refs/pull/",
    ]
    .iter()
    .any(|n| t.contains(n))
}

fn untrusted_checkout(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(trigger) = untrusted_trigger(doc) else {
        return out;
    };
    for (id, job) in jobs(doc) {
        for (i, step) in steps(job).into_iter().enumerate() {
            let i = i.to_string();
            let uses = step.get("uses").and_then(Value::as_str).unwrap_or("");
            if uses.starts_with("actions/checkout@") {
                for key in ["ref", "repository"] {
                    let v = step
                        .get("with")
                        .and_then(|w| w.get(key))
                        .and_then(Value::as_str);
                    if v.is_some_and(names_pr_head) {
                        out.push(r.at(
                            doc.src,
                            doc.yindex.value_span(&["jobs", id, "steps", &i, "with", key]),
                            format!("job `{id}` checks out the pull request's code in a `{trigger}` workflow, which holds the base repository's secrets and token"),
                        ));
                        break;
                    }
                }
            }
            let run = step.get("run").and_then(Value::as_str).unwrap_or("");
            let fetches = run.contains("gh pr checkout")
                || (run.contains("git fetch") && names_pr_head(run))
                || (run.contains("git checkout") && names_pr_head(run));
            if fetches {
                out.push(r.at(
                    doc.src,
                    doc.yindex.value_span(&["jobs", id, "steps", &i, "run"]),
                    format!("job `{id}` fetches the pull request's code in a `{trigger}` workflow, which holds the base repository's secrets and token"),
                ));
            }
        }
    }
    out
}

fn is_deploy_job(id: &str, job: &Mapping) -> bool {
    let name = job.get("name").and_then(Value::as_str).unwrap_or("");
    id.to_ascii_lowercase().contains("deploy")
        || name.to_ascii_lowercase().contains("deploy")
        || steps(job).iter().any(|s| {
            s.get("run")
                .and_then(Value::as_str)
                .is_some_and(|r| r.contains("alembic apply"))
        })
}

fn cancels(v: Option<&Value>) -> bool {
    let cip = v.and_then(|c| c.get("cancel-in-progress"));
    matches!(cip, Some(Value::Bool(true))) || cip.and_then(Value::as_str) == Some("true")
}

fn deploy_jobs(r: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let deploys: Vec<(&str, &Mapping)> = jobs(doc)
        .into_iter()
        .filter(|(id, j)| is_deploy_job(id, j))
        .collect();
    for (id, job) in &deploys {
        if !job.contains_key("environment") {
            out.push(r.at(
                doc.src,
                doc.yindex.key_span(&["jobs", id]),
                format!("deploy job `{id}` has no `environment`: its secrets are not gated by environment protection rules"),
            ));
        }
        if cancels(job.get("concurrency")) {
            out.push(r.at(
                doc.src,
                doc.yindex
                    .value_span(&["jobs", id, "concurrency", "cancel-in-progress"]),
                format!("deploy job `{id}` sets `cancel-in-progress: true`: a newer push would kill a deploy halfway"),
            ));
        }
    }
    let root = doc.yaml.as_ref();
    if !deploys.is_empty() && cancels(root.and_then(|v| v.get("concurrency"))) {
        out.push(r.at(
            doc.src,
            doc.yindex
                .value_span(&["concurrency", "cancel-in-progress"]),
            "workflow concurrency sets `cancel-in-progress: true` over a deploy job: a newer push would kill a deploy halfway",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning() {
        assert!(is_pinned(&format!("actions/checkout@{}", "a".repeat(40))));
        assert!(is_pinned("./.github/actions/setup"));
        assert!(is_pinned(&format!(
            "docker://alpine@sha256:{}",
            "0".repeat(64)
        )));
        assert!(!is_pinned("actions/checkout@v4"));
        assert!(!is_pinned("actions/checkout@main"));
        assert!(!is_pinned("docker://alpine:3"));
        assert!(!is_pinned("actions/checkout"));
    }

    #[test]
    fn untrusted_expressions() {
        let u = |s: &str| untrusted_reference(s);
        assert_eq!(
            u(" github.event.issue.title ").as_deref(),
            Some("github.event.issue.title")
        );
        assert!(u("github.event.pull_request.head.ref").is_some());
        assert!(u("github.head_ref").is_some());
        assert!(u("github.event.pull_request.number").is_none());
        assert!(u("github.event.pull_request.head.sha").is_none());
        assert!(u("github.sha").is_none());
        assert!(u("secrets.TOKEN").is_none());
        assert!(u("toJSON(github.event)").is_some());
        assert_eq!(
            u("github.event['pull_request'][\"title\"]").as_deref(),
            Some("github.event.pull_request.title")
        );
        assert!(u("github['event']['issue']['body']").is_some());
        assert!(u("github.event['pull_request']['number']").is_none());
        assert!(u("github.event_name").is_none());
        assert!(u("github.event[inputs.key]").is_some());
    }
}
