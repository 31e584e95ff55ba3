//! ci-plane artifacts: the GitHub workflows pass `actionlint` (with shellcheck) and `zizmor
//! --offline` with the auditor persona and no finding at all, are hardened by construction
//! (pins, permissions, persist-credentials, secrets only in the deploy step), and read back
//! through a YAML parser and a POSIX shell word splitter to exactly what the config said.

use std::path::Path;
use std::process::Command;

use alembic_config::{default_topology, load_str, Plane, Topology};
use alembic_render::github::{KNOWN_HOSTS_SECRET, PINS, SETUP_TERRAFORM, SSH_KEY_SECRET};
use alembic_render::ArtifactKind;
use alembic_testkit::{tool, tools};
use yaml_serde::Value;

fn fixture(name: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let loaded = load_str(name, &text);
    loaded
        .topology
        .unwrap_or_else(|| panic!("{name} is valid: {:#?}", loaded.diagnostics))
}

fn topologies() -> Vec<(&'static str, Topology)> {
    vec![
        ("default", default_topology()),
        ("ci-workloads", fixture("ci-workloads.toml")),
        ("host-linux", fixture("host-linux.toml")),
    ]
}

/// Write the workflows of `t` under a temp dir, as a repository would hold them.
fn write_workflows(t: &Topology) -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for a in alembic_render::render(t)
        .iter()
        .filter(|a| a.kind == ArtifactKind::Workflow)
    {
        let p = dir.path().join(&a.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &a.bytes).unwrap();
        files.push(p);
    }
    assert_eq!(files.len(), 2);
    (dir, files)
}

fn workflow(t: &Topology, name: &str) -> (String, Value) {
    let set = alembic_render::render(t);
    let text = set
        .get(&format!(".github/workflows/{name}"))
        .unwrap()
        .text()
        .to_owned();
    let v: Value = yaml_serde::from_str(&text).expect("rendered YAML parses");
    (text, v)
}

#[test]
fn workflows_pass_actionlint_with_shellcheck() {
    let Some([actionlint, shellcheck]) = tools(["actionlint", "shellcheck"]) else {
        return;
    };
    for (name, t) in topologies() {
        let (_dir, files) = write_workflows(&t);
        let out = Command::new(&actionlint)
            .arg("-no-color")
            .arg(format!("-shellcheck={}", shellcheck.display()))
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: actionlint findings:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn workflows_have_no_zizmor_findings_even_as_auditor() {
    let Some(zizmor) = tool("zizmor") else {
        return;
    };
    for (name, t) in topologies() {
        let (dir, _) = write_workflows(&t);
        let out = Command::new(&zizmor)
            .args([
                "--offline",
                "--persona=auditor",
                "--no-ignores",
                "--format=plain",
            ])
            .arg(dir.path().join(".github/workflows"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("No findings"),
            "{name}: zizmor findings (status {:?}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The checkers can fail: a workflow with an unpinned action, default permissions and an
/// expression in `run:` is reported by both (so a pass above means something).
#[test]
fn checkers_reject_a_careless_workflow() {
    let Some([actionlint, zizmor]) = tools(["actionlint", "zizmor"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".github/workflows/bad.yml");
    std::fs::create_dir_all(wf.parent().unwrap()).unwrap();
    std::fs::write(
        &wf,
        "on: pull_request_target\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.pull_request.title }}\"\n        shell: bahs\n",
    )
    .unwrap();
    let z = Command::new(zizmor)
        .args(["--offline", "--persona=auditor"])
        .arg(wf.parent().unwrap())
        .output()
        .unwrap();
    assert!(!z.status.success(), "zizmor accepted a careless workflow");
    let a = Command::new(actionlint).arg(&wf).output().unwrap();
    assert!(
        !a.status.success(),
        "actionlint accepted a careless workflow"
    );
}

#[test]
fn every_action_is_pinned_to_a_full_sha_with_its_version_comment() {
    for (name, t) in topologies() {
        for file in ["ci.yml", "deploy.yml"] {
            let (text, _) = workflow(&t, file);
            let uses: Vec<&str> = text
                .lines()
                .filter(|l| l.trim_start().trim_start_matches("- ").starts_with("uses:"))
                .collect();
            assert!(!uses.is_empty());
            for line in uses {
                let value = line.split("uses:").nth(1).unwrap().trim();
                let (action, comment) = value.split_once(" # ").expect("a version comment");
                let (repo, sha) = action.split_once('@').unwrap();
                assert!(
                    sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{name}/{file}: {line}"
                );
                let pin = PINS.iter().find(|p| p.action == repo).unwrap();
                assert_eq!((pin.sha, pin.version), (sha, comment));
            }
        }
    }
}

#[test]
fn permissions_are_empty_at_the_top_and_read_only_per_job() {
    for (name, t) in topologies() {
        for file in ["ci.yml", "deploy.yml"] {
            let (_, v) = workflow(&t, file);
            assert_eq!(
                v["permissions"],
                Value::Mapping(Default::default()),
                "{name}/{file}"
            );
            for (id, job) in v["jobs"].as_mapping().unwrap() {
                let perms = job["permissions"].as_mapping().unwrap();
                assert_eq!(perms.len(), 1, "{name}/{file}/{id:?}");
                assert_eq!(job["permissions"]["contents"], "read");
                for step in job["steps"].as_sequence().unwrap() {
                    if step["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("actions/checkout@"))
                    {
                        assert_eq!(step["with"]["persist-credentials"], Value::Bool(false));
                    }
                }
            }
        }
    }
}

#[test]
fn ci_runs_checks_then_gates_and_one_job_per_ci_workload() {
    let t = fixture("ci-workloads.toml");
    let (_, v) = workflow(&t, "ci.yml");
    assert!(v["on"]["push"].is_mapping() && v["on"]["pull_request"].is_mapping());
    let runs = |job: &str| -> Vec<String> {
        v["jobs"][job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_owned))
            .collect()
    };
    let checks = runs("checks");
    for c in &t.ci.checks {
        assert!(checks.iter().any(|r| r == c.as_str()), "{c} not run");
    }
    let cache = v["jobs"]["checks"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/setup-node@"))
        })
        .unwrap();
    assert_eq!(cache["with"]["cache"], "pnpm");
    assert_eq!(cache["with"]["node-version"], "20.11.1");
    assert_eq!(v["jobs"]["gates"]["needs"][0], "checks");
    let gates = runs("gates");
    for g in &t.ci.gates {
        assert!(gates.iter().any(|r| r == g.as_str()), "{g} not run");
    }
    // A workload named like a fixed job gets its own id instead of replacing it.
    assert_eq!(runs("checks-workload"), ["make check"]);
    let lint = runs("lint-docs");
    assert_eq!(lint.len(), 1);
    let env = &v["jobs"]["lint-docs"]["steps"][1]["env"];
    let w = t.workload("lint-docs").unwrap();
    for (k, val) in &w.env {
        assert_eq!(env[k.as_str()], val.as_str());
    }
    assert_eq!(w.plane, Plane::Ci);
}

/// Argv words special to the shell (`#`, globs, quotes) read back unchanged through a POSIX
/// word splitter (python's shlex in POSIX mode).
#[test]
fn ci_workload_commands_split_back_to_their_argv() {
    let Some(python) = tool("python3") else {
        return;
    };
    let t = fixture("ci-workloads.toml");
    let (_, v) = workflow(&t, "ci.yml");
    let w = t.workload("lint-docs").unwrap();
    let run = v["jobs"]["lint-docs"]["steps"][1]["run"].as_str().unwrap();
    let out = Command::new(python)
        .args([
            "-c",
            "import json, shlex, sys; print(json.dumps(shlex.split(sys.argv[1])))",
            run,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let words: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Vec<&str> = w.command.iter().map(|c| c.as_str()).collect();
    assert_eq!(words, expected);
}

#[test]
fn deploy_runs_apply_in_the_environment_without_cancelling() {
    for (name, t) in topologies() {
        let (_, v) = workflow(&t, "deploy.yml");
        assert_eq!(
            v["on"]["push"]["branches"][0],
            t.ci.branch.as_str(),
            "{name}"
        );
        assert!(v["on"]["workflow_dispatch"].is_mapping());
        let jobs = v["jobs"].as_mapping().unwrap();
        assert_eq!(jobs.len(), 1);
        let deploy = &v["jobs"]["deploy"];
        assert_eq!(deploy["environment"], t.ci.environment.as_str());
        assert_eq!(
            deploy["concurrency"]["group"],
            format!("deploy-{}", t.project.name).as_str()
        );
        assert_eq!(
            deploy["concurrency"]["cancel-in-progress"],
            Value::Bool(false)
        );
        let steps = deploy["steps"].as_sequence().unwrap();
        let apply = steps.last().unwrap();
        assert_eq!(apply["run"], "alembic apply --yes");
        let env = apply["env"].as_mapping().unwrap();
        // The secrets (but the ones the ssh-agent step consumed) plus the marker telling
        // doctor/secrets this is the deploy job.
        let agent_only = |s: &str| s == SSH_KEY_SECRET || s == KNOWN_HOSTS_SECRET;
        let for_apply: Vec<&str> =
            t.ci.secrets
                .iter()
                .map(|s| s.as_str())
                .filter(|s| !agent_only(s))
                .collect();
        assert_eq!(env.len(), for_apply.len() + 1, "{name}");
        assert_eq!(apply["env"]["ALEMBIC_CONTEXT"], "deploy");
        for s in for_apply {
            assert_eq!(apply["env"][s], format!("${{{{ secrets.{s} }}}}").as_str());
        }
    }
}

/// Secrets are named only in the deploy step's env; no `run:` anywhere holds an expression.
#[test]
fn secrets_reach_only_the_deploy_step_and_run_never_interpolates() {
    for (name, t) in topologies() {
        let (ci_text, ci) = workflow(&t, "ci.yml");
        assert!(
            !ci_text.contains("secrets."),
            "{name}: ci.yml names a secret"
        );
        let (deploy_text, deploy) = workflow(&t, "deploy.yml");
        assert_eq!(
            deploy_text.matches("secrets.").count(),
            t.ci.secrets.len(),
            "{name}"
        );
        for v in [&ci, &deploy] {
            for (_, job) in v["jobs"].as_mapping().unwrap() {
                for step in job["steps"].as_sequence().unwrap() {
                    if let Some(run) = step["run"].as_str() {
                        assert!(!run.contains("${{"), "{name}: {run}");
                    }
                }
            }
        }
    }
}

#[test]
fn canary_secret_values_never_appear_in_workflows() {
    let canaries = [
        ("DIGITALOCEAN_TOKEN", "dop_v1_canary0123456789abcdef"),
        ("DEPLOY_SSH_KEY", "canary-ssh-private-key"),
        ("STRIPE_SECRET_KEY", "sk_live_canary_42"),
    ];
    for (k, v) in canaries {
        std::env::set_var(k, v);
    }
    for (name, t) in topologies() {
        for a in alembic_render::render(&t).iter() {
            for (_, v) in canaries {
                assert!(
                    !a.text().contains(v),
                    "{name}: {} holds a secret value",
                    a.path
                );
            }
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for (_, t) in topologies() {
        assert_eq!(alembic_render::render(&t), alembic_render::render(&t));
    }
}

#[test]
fn ci_artifact_snapshots() {
    for (name, t) in topologies() {
        let set = alembic_render::render(&t);
        for a in set.iter().filter(|a| a.plane == Plane::Ci) {
            insta::assert_snapshot!(format!("{name}__{}", a.path.replace('/', "__")), a.text());
        }
    }
}

/// The manifest over the host and ci artifacts of each fixture (the droplet plane's files are
/// another renderer's and snapshotted there), so hash, mode, plane and kind changes show up.
#[test]
fn manifest_snapshots() {
    for (name, t) in topologies() {
        let mut set = alembic_render::ArtifactSet::default();
        for a in alembic_render::launchd::render(&t)
            .into_iter()
            .chain(alembic_render::systemd::render(&t))
            .chain(alembic_render::github::render(&t))
        {
            set.insert(a);
        }
        let m = alembic_render::manifest::render(&set);
        insta::assert_snapshot!(format!("{name}__manifest"), m.text());
    }
}

/// A ci workload's command and env are rendered into `run:` and `env:`, where GitHub evaluates
/// `${{ }}` before the shell runs: validation refuses them, so no renderer ever sees one.
#[test]
fn expressions_in_ci_workloads_are_refused_by_validation() {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ci-workloads.toml"),
    )
    .unwrap();
    for (from, to) in [
        (
            "command = [\"make\", \"check\"]",
            "command = [\"echo\", \"${{ github.event.pull_request.title }}\"]",
        ),
        (
            "FORCE_COLOR = \"0\"",
            "FORCE_COLOR = \"${{ github.head_ref }}\"",
        ),
    ] {
        let text = base.replace(from, to);
        assert_ne!(text, base);
        let loaded = load_str("ci.toml", &text);
        assert!(loaded.topology.is_none(), "accepted: {to}");
        assert!(loaded
            .diagnostics
            .iter()
            .any(|d| d.code == alembic_config::Code::Cfg004 && d.message.contains("${{")));
    }
}

/// The deploy job's steps, by name.
fn deploy_steps(t: &Topology) -> Vec<Value> {
    let (_, v) = workflow(t, "deploy.yml");
    v["jobs"]["deploy"]["steps"].as_sequence().unwrap().clone()
}

fn step_names(steps: &[Value]) -> Vec<String> {
    steps
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn with_secrets(mut t: Topology, names: &[&str]) -> Topology {
    t.ci.secrets = names.iter().map(|n| n.parse().unwrap()).collect();
    t
}

/// `DEPLOY_SSH_KEY` in `ci.secrets` gives the deploy job an ssh-agent step before apply, holding
/// that secret (and `DEPLOY_KNOWN_HOSTS` when listed) and nothing else; a provisioned droplet
/// gives it the pinned setup-terraform (without the wrapper); ci.yml gets neither.
#[test]
fn deploy_job_loads_the_ssh_key_and_installs_terraform_when_needed() {
    let cases = [
        (
            "default",
            default_topology(),
            vec![
                "checkout",
                "set up terraform",
                "install alembic",
                "load the deploy ssh key",
                "alembic apply",
            ],
            vec![SSH_KEY_SECRET, KNOWN_HOSTS_SECRET],
        ),
        (
            "byo address, key only",
            fixture("host-linux.toml"),
            vec![
                "checkout",
                "install alembic",
                "load the deploy ssh key",
                "alembic apply",
            ],
            vec![SSH_KEY_SECRET],
        ),
        (
            "no key",
            with_secrets(default_topology(), &["DIGITALOCEAN_TOKEN", "DATABASE_URL"]),
            vec![
                "checkout",
                "set up terraform",
                "install alembic",
                "alembic apply",
            ],
            vec![],
        ),
    ];
    for (name, t, want_steps, agent_env) in cases {
        let steps = deploy_steps(&t);
        assert_eq!(step_names(&steps), want_steps, "{name}");
        if let Some(agent) = steps
            .iter()
            .find(|s| s["name"] == "load the deploy ssh key")
        {
            let env: Vec<&str> = agent["env"]
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap())
                .collect();
            assert_eq!(env, agent_env, "{name}");
            let run = agent["run"].as_str().unwrap();
            assert!(run.contains("| ssh-add -"), "{name}: {run}");
            assert!(run.contains(">> \"$GITHUB_ENV\""), "{name}: {run}");
            assert_eq!(
                run.contains("known_hosts"),
                agent_env.contains(&KNOWN_HOSTS_SECRET),
                "{name}: {run}"
            );
        }
        if let Some(tf) = steps.iter().find(|s| s["name"] == "set up terraform") {
            assert_eq!(tf["uses"], SETUP_TERRAFORM.uses().as_str());
            assert_eq!(tf["with"]["terraform_wrapper"], Value::Bool(false));
        }
        let (ci, _) = workflow(&t, "ci.yml");
        assert!(!ci.contains("ssh-agent") && !ci.contains("setup-terraform"));
    }
}

/// The agent step's script, run by bash against the real ssh-agent: the key from the env var is
/// in the agent the next step finds through `$GITHUB_ENV`, known_hosts is written, and the
/// private key is in no file.
#[test]
fn the_ssh_agent_step_loads_the_key_without_writing_it() {
    let Some([bash, keygen, ssh_add]) = tools(["bash", "ssh-keygen", "ssh-add"]) else {
        return;
    };
    if tool("ssh-agent").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (home, runner_temp, keys) = (
        tmp.path().join("home"),
        tmp.path().join("runner-temp"),
        tempfile::tempdir().unwrap(),
    );
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&runner_temp).unwrap();
    let key = keys.path().join("deploy");
    let o = Command::new(&keygen)
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "alembic-agent-test",
            "-f",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success());
    let private = std::fs::read_to_string(&key).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    // Keep only the key material away from the dir the script works in.
    let known = "[203.0.113.20]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    let steps = deploy_steps(&default_topology());
    let agent = steps
        .iter()
        .find(|s| s["name"] == "load the deploy ssh key")
        .unwrap();
    let script = agent["run"].as_str().unwrap();
    let github_env = runner_temp.join("github_env");
    let o = Command::new(&bash)
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &home)
        .env("RUNNER_TEMP", &runner_temp)
        .env("GITHUB_ENV", &github_env)
        .env(SSH_KEY_SECRET, &private)
        .env(KNOWN_HOSTS_SECRET, known)
        .output()
        .unwrap();
    let exported = std::fs::read_to_string(&github_env).unwrap_or_default();
    let get = |k: &str| {
        exported
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    let sock = get("SSH_AUTH_SOCK");
    let pid = get("SSH_AGENT_PID");
    // Whatever happens next, stop the agent this test started (by its pid).
    struct Agent(Option<String>);
    impl Drop for Agent {
        fn drop(&mut self) {
            if let Some(pid) = &self.0 {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
    }
    let _agent = Agent(pid.clone());
    assert!(
        o.status.success(),
        "the step failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sock = sock.expect("SSH_AUTH_SOCK exported");
    assert!(pid.is_some_and(|p| p.parse::<u32>().is_ok()));
    assert!(sock.starts_with(runner_temp.to_str().unwrap()), "{sock}");

    // The next step sees the key through the exported socket.
    let listed = Command::new(&ssh_add)
        .arg("-L")
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let blob = public.split_whitespace().nth(1).unwrap();
    assert!(listed.contains(blob), "agent holds: {listed}");

    let kh = home.join(".ssh/known_hosts");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), format!("{known}\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(home.join(".ssh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // The private key is in no file the step could have written, nor in its output.
    let body: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut stack = vec![tmp.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let text: String = std::fs::read_to_string(&p)
                    .unwrap_or_default()
                    .lines()
                    .collect();
                assert!(
                    !text.contains(&body),
                    "the key was written to {}",
                    p.display()
                );
            }
        }
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!said.contains(&body));
}
