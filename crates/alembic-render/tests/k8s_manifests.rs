//! `infra/k8s/*.yaml` (engine = "kubernetes"): every file passes the real
//! `kubernetes-validate --strict` against the pinned Kubernetes release (its bundled schemas,
//! with the network pointed at a closed port to prove the check is offline), a deliberately
//! wrong field is refused, and the objects say what the exposure policy needs.

mod droplet_support;

use std::collections::BTreeMap;
use std::process::Command;

use alembic_render::{k8s, terraform_scale};
use droplet_support::fixture;
use serde_json::Value;

/// The pinned release, as kubernetes-validate names it (`1.35.0`).
fn kubernetes_version() -> String {
    format!("{}.0", terraform_scale::KUBERNETES_MINOR)
}

fn rendered(name: &str) -> BTreeMap<String, String> {
    let t = fixture(name);
    let set = alembic_render::render(&t);
    set.iter()
        .filter(|a| a.path.starts_with("infra/k8s/"))
        .map(|a| (a.path.clone(), a.text().to_owned()))
        .collect()
}

fn validate(bin: &std::path::Path, files: &BTreeMap<String, String>) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin);
    cmd.args(["--strict", "--quiet", "-k", &kubernetes_version()]);
    for (path, text) in files {
        let p = dir.path().join(path.rsplit('/').next().unwrap());
        std::fs::write(&p, text).unwrap();
        cmd.arg(p);
    }
    // Offline: any attempt to fetch a schema would hit a closed port and fail.
    for v in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env(v, "http://127.0.0.1:9");
    }
    cmd.env("NO_PROXY", "").env("no_proxy", "");
    cmd.output().expect("run kubernetes-validate")
}

/// Every object in the files, as JSON values.
fn objects(files: &BTreeMap<String, String>) -> Vec<Value> {
    files
        .values()
        .flat_map(|text| text.split("---\n"))
        .map(|d| yaml_serde::from_str::<Value>(d).expect("a YAML document"))
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn kubernetes_validate_strict_accepts_every_manifest() {
    let Some(bin) = alembic_testkit::tool("kubernetes-validate") else {
        return;
    };
    let files = rendered("scale-kubernetes");
    let names: Vec<&str> = files.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "infra/k8s/api.yaml",
            "infra/k8s/edge.yaml",
            "infra/k8s/namespace.yaml",
            "infra/k8s/network-policies.yaml",
            "infra/k8s/web.yaml",
            "infra/k8s/worker.yaml",
        ]
    );
    let out = validate(&bin, &files);
    assert!(
        out.status.success(),
        "kubernetes-validate refused:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The checker is real: an unknown field under --strict, and a wrong type, are refused.
    for (from, to) in [
        ("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"),
        ("replicas: 3", "replicas: three"),
    ] {
        let mut bad = files.clone();
        let api = bad.get_mut("infra/k8s/api.yaml").unwrap();
        assert!(api.contains(from), "{from}");
        *api = api.replacen(from, to, 1);
        let out = validate(&bin, &bad);
        assert!(!out.status.success(), "accepted {to}");
    }
}

#[test]
fn only_the_edge_is_public_and_hardened_like_compose() {
    let t = fixture("scale-kubernetes");
    let objs = objects(&rendered("scale-kubernetes"));
    // No Secret is ever rendered; workloads read theirs from one apply creates.
    assert!(objs.iter().all(|o| o["kind"] != "Secret"));
    let services: Vec<&Value> = objs.iter().filter(|o| o["kind"] == "Service").collect();
    for s in &services {
        let public = s["spec"]["type"] == "LoadBalancer" || s["spec"]["type"] == "NodePort";
        assert_eq!(public, s["metadata"]["name"] == "edge", "{s}");
    }
    let edge = find(&objs, "Service", "edge");
    assert_eq!(edge["spec"]["externalTrafficPolicy"], "Local");
    let ann = &edge["metadata"]["annotations"];
    let a = |k: &str| ann[format!("{}{k}", k8s::DO_ANNOTATION_PREFIX)].clone();
    assert_eq!(a("protocol"), "http");
    assert_eq!(a("certificate-name"), k8s::load_balancer_name(&t).as_str());
    assert_eq!(a("healthcheck-path"), "/healthz");
    assert_eq!(a("redirect-http-to-https"), "true");

    let api = find(&objs, "Deployment", "api");
    let pod = &api["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8080);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 1000);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let secret = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "DATABASE_URL")
        .expect("DATABASE_URL");
    assert!(secret.get("value").is_none());
    assert_eq!(secret["valueFrom"]["secretKeyRef"]["name"], "api-secrets");
    assert_eq!(find(&objs, "Service", "api")["spec"]["type"], "ClusterIP");

    // Default deny; the edge open on 80/443; api from the edge only; worker from api only.
    let deny = find(&objs, "NetworkPolicy", "default-deny-ingress");
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    let from = |name: &str| -> Vec<String> {
        find(&objs, "NetworkPolicy", name)["spec"]["ingress"][0]["from"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                p["podSelector"]["matchLabels"][k8s::NAME_LABEL]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(from("api"), ["edge"]);
    assert_eq!(from("worker"), ["api"]);
    let edge_policy = &find(&objs, "NetworkPolicy", "edge")["spec"]["ingress"][0];
    assert!(edge_policy.get("from").is_none());
    assert_eq!(edge_policy["ports"].as_array().unwrap().len(), 2);
}
