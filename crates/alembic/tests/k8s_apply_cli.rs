//! `droplet.engine = "kubernetes"` through the binary. No cluster can run here and kubectl is
//! not installed, so this proves the exact commands apply would run (`plan --json` and the
//! dry run), that secret values never appear in them, and that a real apply without a
//! kubeconfig or without kubectl is refused (exit 1, naming the config key) before anything
//! runs; `rollback` is refused the same way.

use std::path::Path;

/// The Secret's script, spelled out: the values travel on stdin through kubectl's client-side
/// rendering into a server-side apply, never as an argument or a file.
const SECRET_SCRIPT: &str = r#"kubectl -n "$1" create secret generic "$2" --from-env-file=/dev/stdin --dry-run=client -o yaml | kubectl apply --server-side --field-manager "$3" -f -"#;

use assert_cmd::Command;

const VALUE: &str = "postgres://canary-k8s-7d41@db/app";

/// The Kubernetes fixture with its template placeholders replaced (plan and apply refuse
/// them), rendered into `dir`.
fn project(dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../alembic-render/tests/fixtures/scale-kubernetes.toml");
    let text = std::fs::read_to_string(fixture)
        .unwrap()
        .replace("kube.example.com", "kubeapply.net")
        .replace(
            "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
            "0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9",
        )
        .replace("203.0.113.10/32", "100.64.0.10/32");
    std::fs::write(dir.join("alembic.toml"), text).unwrap();
    let (code, _, err) = run(dir, &["render"], &[]);
    assert_eq!(code, Some(0), "{err}");
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir)
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("KUBECONFIG")
        .env("DATABASE_URL", VALUE)
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(VALUE) && !stderr.contains(VALUE),
        "a secret value was printed"
    );
    (out.status.code(), stdout, stderr)
}

#[test]
fn plan_shows_the_exact_kubectl_commands() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let (code, json, err) = run(dir.path(), &["--json", "plan", "--plane", "droplet"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ops = v["planes"][0]["ops"].as_array().unwrap();
    // The summary counts the cluster's operations (there is no numbered release to name).
    let line = v["planes"][0]["summary"]["line"].as_str().unwrap();
    let mutating = ops.iter().filter(|o| o["mutating"] == true).count();
    assert_eq!(
        line,
        format!(
            "droplet: {} operation(s), {mutating} change state",
            ops.len()
        )
    );
    assert!(mutating > 0, "{line}");
    let argv: Vec<Vec<String>> = ops
        .iter()
        .map(|o| {
            std::iter::once(o["program"].as_str().unwrap().to_owned())
                .chain(
                    o["args"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned()),
                )
                .collect()
        })
        .collect();
    let apply = [
        "kubectl",
        "apply",
        "--server-side",
        "--field-manager",
        "alembic",
        "-f",
        "-",
    ];
    let rollout = |d: &str| {
        vec![
            "kubectl".to_owned(),
            "-n".into(),
            "kube".into(),
            "rollout".into(),
            "status".into(),
            format!("deployment/{d}"),
            "--timeout".into(),
            "300s".into(),
        ]
    };
    let mut want: Vec<Vec<String>> = vec![apply.map(str::to_owned).to_vec()];
    want.push(
        [
            "sh",
            "-c",
            SECRET_SCRIPT,
            "alembic",
            "kube",
            "api-secrets",
            "alembic",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    want.push(apply.map(str::to_owned).to_vec());
    for d in ["edge", "api", "web", "worker"] {
        want.push(rollout(d));
    }
    assert_eq!(argv, want);
    // Every op reaches the cluster KUBECONFIG names; the manifests and the secret go on stdin.
    assert!(ops
        .iter()
        .all(|o| o["env"] == serde_json::json!(["KUBECONFIG"])));
    assert_eq!(ops[0]["stdin"]["kind"], "bytes");
    assert!(ops[0]["stdin"]["data"]
        .as_str()
        .unwrap()
        .contains("kind: Namespace"));
    assert_eq!(
        ops[1]["stdin"],
        serde_json::json!({"kind": "env_file", "names": ["DATABASE_URL"]})
    );
    let manifests = ops[2]["stdin"]["data"].as_str().unwrap();
    for kind in [
        "kind: Deployment",
        "kind: Service",
        "kind: NetworkPolicy",
        "kind: ConfigMap",
    ] {
        assert!(
            manifests.contains(kind),
            "{kind} missing from the applied stream"
        );
    }
    assert!(!manifests.contains("kind: Secret"), "a Secret was rendered");
    let notes = v["planes"][0]["notes"].to_string();
    assert!(
        notes.contains("apply will refuse: no kubeconfig"),
        "{notes}"
    );

    // The dry run records the same commands and runs none.
    let (code, out, err) = run(dir.path(), &["apply", "--plane", "droplet"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("kubectl apply --server-side --field-manager alembic -f -"),
        "{all}"
    );
    assert!(
        all.contains("kubectl -n kube rollout status deployment/api --timeout 300s"),
        "{all}"
    );
}

#[test]
fn real_apply_without_kubeconfig_or_kubectl_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let args = ["apply", "--plane", "droplet", "--yes"];
    let (code, _, err) = run(dir.path(), &args, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("droplet.engine = \"kubernetes\": no kubeconfig: set KUBECONFIG"),
        "{err}"
    );
    assert!(err.contains("apply changed nothing"), "{err}");

    let missing = dir.path().join("no-such-kubeconfig");
    let (code, _, err) = run(
        dir.path(),
        &args,
        &[("KUBECONFIG", missing.to_str().unwrap())],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("which is not a file"), "{err}");

    // A kubeconfig, but no kubectl on PATH (an empty directory is the whole PATH).
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        dir.path(),
        &args,
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("PATH", empty.path().to_str().unwrap()),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("droplet.engine = \"kubernetes\": kubectl is not on PATH"),
        "{err}"
    );

    // `alembic rollback` does not drive a cluster: refused, naming kubectl's own command.
    let (code, _, err) = run(dir.path(), &["rollback", "--yes"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("rollout undo"), "{err}");
}
