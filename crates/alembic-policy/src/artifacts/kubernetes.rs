//! Kubernetes manifests: only the edge is reachable from outside the cluster (EXP003). A
//! Service of type `LoadBalancer` or `NodePort` other than the edge's, a container `hostPort`,
//! or a pod on the host's network publishes a workload around the edge.
//!
//! A file may hold several documents (`---`); each is parsed on its own and its findings are
//! located in the whole file.

use std::ops::Range;

use alembic_config::{Code, Diagnostic, Severity};

use super::doc::{Doc, FileKind, FileRule};
use crate::rule::Rule;
use crate::yaml::Value;

/// EXP003 in Kubernetes manifests: a Service other than the edge exposed through a LoadBalancer or
/// NodePort, a `hostPort` or `hostNetwork`.
pub static EXP003: FileRule = FileRule {
    rule: Rule {
        code: Code::Exp003,
        severity: Severity::Error,
        summary: "a workload is published outside the edge",
        help: "keep workloads' Services ClusterIP (no hostPort, no hostNetwork) and reach them through the edge's LoadBalancer Service",
    },
    kind: FileKind::Kubernetes,
    check: published_around_the_edge,
};

/// The edge's object name (alembic's reserved workload name).
const EDGE: &str = "edge";

/// `(start offset, text)` of every document in the file.
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            out.push((start, &text[start..at]));
            start = at + line.len();
        }
        at += line.len();
    }
    out.push((start, &text[start..]));
    out
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = match p.parse::<usize>() {
            Ok(i) => cur.as_sequence()?.get(i)?,
            Err(_) => cur.get(*p)?,
        };
    }
    cur.as_str()
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        cur = match p.parse::<usize>() {
            Ok(i) => cur.as_sequence()?.get(i)?,
            Err(_) => cur.get(*p)?,
        };
    }
    Some(cur)
}

/// Where the pod spec of an object is, by kind.
fn pod_spec_path(kind: &str) -> Option<Vec<&'static str>> {
    match kind {
        "Pod" => Some(vec!["spec"]),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => Some(vec!["spec", "template", "spec"]),
        "CronJob" => Some(vec!["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

fn published_around_the_edge(rule: &Rule, doc: &Doc<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (offset, text) in documents(doc.text()) {
        let Ok((v, ix)) = crate::yaml::parse_located(text) else {
            continue;
        };
        let shift = |r: Range<usize>| r.start + offset..r.end + offset;
        let kind = str_at(&v, &["kind"]).unwrap_or("");
        let name = str_at(&v, &["metadata", "name"]).unwrap_or("");
        if kind == "Service" && name != EDGE {
            if let Some(ty @ ("LoadBalancer" | "NodePort")) = str_at(&v, &["spec", "type"]) {
                out.push(rule.at(
                    doc.src,
                    shift(ix.value_span(&["spec", "type"])),
                    format!("Service `{name}` is of type {ty}: it is reachable without the edge"),
                ));
            }
        }
        let Some(pod) = pod_spec_path(kind) else {
            continue;
        };
        let mut host_network = pod.clone();
        host_network.push("hostNetwork");
        if matches!(at(&v, &host_network), Some(Value::Bool(true))) {
            out.push(rule.at(
                doc.src,
                shift(ix.value_span(&host_network)),
                format!("{kind} `{name}` runs on the node's network: its ports are the node's"),
            ));
        }
        for list in ["containers", "initContainers"] {
            let mut cpath = pod.clone();
            cpath.push(list);
            let n = at(&v, &cpath)
                .and_then(Value::as_sequence)
                .map_or(0, Vec::len);
            for i in 0..n {
                let ci = i.to_string();
                let mut ports = cpath.clone();
                ports.extend([ci.as_str(), "ports"]);
                let m = at(&v, &ports)
                    .and_then(Value::as_sequence)
                    .map_or(0, Vec::len);
                for j in 0..m {
                    let pj = j.to_string();
                    let mut hp = ports.clone();
                    hp.extend([pj.as_str(), "hostPort"]);
                    if at(&v, &hp).is_some() && name != EDGE {
                        out.push(rule.at(
                            doc.src,
                            shift(ix.value_span(&hp)),
                            format!(
                                "{kind} `{name}` publishes a hostPort on every node it runs on"
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}
