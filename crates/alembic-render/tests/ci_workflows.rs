//! ci-plane artifacts: the GitHub workflows pass `actionlint` (with shellcheck) and `zizmor
//! --offline` with the auditor persona and no finding at all, are hardened by construction
//! (pins, permissions, persist-credentials, secrets only in the deploy step), and read back
//! through a YAML parser and a POSIX shell word splitter to exactly what the config said.

use std::path::Path;
use std::process::Command;

use alembic_config::{default_topology, load_str, Plane, Topology};
use alembic_render::github::{
    built_workloads, KNOWN_HOSTS_SECRET, PINS, SETUP_TERRAFORM, SSH_KEY_SECRET,
};
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

/// The fixtures of `tests/fixtures/ci/`: one per toolchain, and the image-building ones.
const CI_FIXTURES: &[&str] = &[
    "pnpm",
    "npm",
    "yarn",
    "uv",
    "pip",
    "cargo",
    "go",
    "none",
    "images",
    "images-other-registry",
];

fn topologies() -> Vec<(&'static str, Topology)> {
    let mut all = vec![
        ("default", default_topology()),
        ("ci-workloads", fixture("ci-workloads.toml")),
        ("host-linux", fixture("host-linux.toml")),
    ];
    for name in CI_FIXTURES {
        all.push((name, fixture(&format!("ci/{name}.toml"))));
    }
    all
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

/// `permissions: {}` at the top; every job reads contents, and the only write permissions are
/// the SARIF upload's (`scan`) and the image build's (`build`), each with its reason beside it.
#[test]
fn permissions_are_empty_at_the_top_and_least_privilege_per_job() {
    for (name, t) in topologies() {
        for file in ["ci.yml", "deploy.yml"] {
            let (text, v) = workflow(&t, file);
            assert_eq!(
                v["permissions"],
                Value::Mapping(Default::default()),
                "{name}/{file}"
            );
            for (id, job) in v["jobs"].as_mapping().unwrap() {
                let id = id.as_str().unwrap();
                let perms: Vec<(String, String)> = job["permissions"]
                    .as_mapping()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap().to_owned(),
                            v.as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                let mut want = vec![("contents".to_owned(), "read".to_owned())];
                let writes: &[&str] = match id {
                    "scan" => &["security-events"],
                    "build" => &["packages", "id-token", "attestations"],
                    _ => &[],
                };
                want.extend(writes.iter().map(|p| (p.to_string(), "write".to_owned())));
                assert_eq!(perms, want, "{name}/{file}/{id}");
                for step in job["steps"].as_sequence().unwrap() {
                    if step["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("actions/checkout@"))
                    {
                        assert_eq!(step["with"]["persist-credentials"], Value::Bool(false));
                    }
                }
            }
            for line in text.lines().filter(|l| l.contains(": write")) {
                let (_, why) = line.split_once(" # ").expect("a reason comment");
                assert!(!why.trim().is_empty(), "{name}/{file}: {line}");
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
    assert_eq!(t.ci.toolchain, alembic_config::Toolchain::Pnpm);
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
        let deploy = &v["jobs"]["deploy"];
        assert_eq!(
            deploy["if"],
            format!("github.ref == 'refs/heads/{}'", t.ci.branch).as_str()
        );
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
        let images = alembic_render::github::built_workloads(&t).len();
        assert_eq!(env.len(), for_apply.len() + 1 + images, "{name}");
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
        // Plus the registry login of a build for a registry other than ghcr.io, which runs in
        // the deploy environment too.
        let registry_login = match &t.droplet.registry {
            Some(r) if r.host() != "ghcr.io" && !built_workloads(&t).is_empty() => {
                assert_eq!(
                    deploy["jobs"]["build"]["environment"],
                    t.ci.environment.as_str()
                );
                2
            }
            _ => 0,
        };
        assert_eq!(
            deploy_text.matches("secrets.").count(),
            t.ci.secrets.len() + registry_login,
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
    let install = format!("install alembic {}", env!("CARGO_PKG_VERSION"));
    let verify = format!("verify alembic {}", env!("CARGO_PKG_VERSION"));
    let (install, verify) = (install.as_str(), verify.as_str());
    let cases = [
        (
            "default",
            default_topology(),
            vec![
                "checkout",
                "set up terraform",
                install,
                verify,
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
                install,
                verify,
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
                install,
                verify,
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

/// What each toolchain's setup leaves in a workflow, written out here rather than taken from
/// the renderer: (toolchain, setup actions, install command, marker strings no other
/// toolchain's workflow may contain).
type ToolchainMarks = (
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    &'static [&'static str],
);
const TOOLCHAIN_MARKS: &[ToolchainMarks] = &[
    (
        "pnpm",
        &["pnpm/action-setup", "actions/setup-node"],
        Some("pnpm install --frozen-lockfile"),
        &["pnpm/action-setup", "pnpm install"],
    ),
    (
        "npm",
        &["actions/setup-node"],
        Some("npm ci"),
        &["npm ci", "cache: npm"],
    ),
    (
        "yarn",
        &["actions/setup-node"],
        Some("yarn install --immutable"),
        &["yarn install", "corepack", "cache: yarn"],
    ),
    (
        "uv",
        &["astral-sh/setup-uv"],
        Some("uv sync --locked"),
        &["astral-sh/setup-uv", "uv sync"],
    ),
    (
        "pip",
        &["actions/setup-python"],
        Some("pip install -r requirements.txt"),
        &["actions/setup-python", "pip install"],
    ),
    (
        "cargo",
        &["actions-rust-lang/setup-rust-toolchain"],
        Some("cargo fetch --locked"),
        &["setup-rust-toolchain", "cargo fetch"],
    ),
    (
        "go",
        &["actions/setup-go"],
        Some("go mod download"),
        &["actions/setup-go", "go mod download"],
    ),
    ("none", &[], None, &[]),
];

/// The version input each toolchain's setup action gets, and the config field it comes from.
fn version_input(t: &Topology) -> Option<(&'static str, String)> {
    use alembic_config::Toolchain::*;
    match t.ci.toolchain {
        Pnpm | Npm | Yarn => Some(("node-version", t.ci.node_version.to_string())),
        Uv | Pip => Some(("python-version", t.ci.python_version.to_string())),
        Cargo => Some(("toolchain", t.ci.rust_toolchain.to_string())),
        Go => Some(("go-version", t.ci.go_version.to_string())),
        None => Option::None,
    }
}

fn job_steps<'a>(v: &'a Value, job: &str) -> &'a Vec<Value> {
    v["jobs"][job]["steps"].as_sequence().unwrap()
}

fn position(steps: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    steps.iter().position(pred)
}

/// Every toolchain fixture: the checks and gates jobs of both workflows set up that toolchain
/// (its pinned action with the configured version, then the lockfile-exact install, before the
/// first check), run the checks exactly as given, and contain nothing of any other toolchain.
#[test]
fn every_toolchain_sets_up_itself_and_nothing_else() {
    for (tc, actions, install, _) in TOOLCHAIN_MARKS {
        let t = fixture(&format!("ci/{tc}.toml"));
        assert_eq!(t.ci.toolchain.as_str(), *tc);
        for file in ["ci.yml", "deploy.yml"] {
            let (text, v) = workflow(&t, file);
            for job in ["checks", "gates"] {
                let steps = job_steps(&v, job);
                let uses = |s: &Value, a: &str| {
                    s["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with(&format!("{a}@")))
                };
                let first_check = position(steps, |s| {
                    s["run"].as_str() == Some(t.ci.checks[0].as_str())
                        || s["run"].as_str() == Some(t.ci.gates[0].as_str())
                })
                .unwrap();
                for a in *actions {
                    let at = position(steps, |s| uses(s, a))
                        .unwrap_or_else(|| panic!("{tc}/{file}/{job}: no {a}"));
                    assert!(at < first_check, "{tc}/{file}/{job}: {a} after the checks");
                }
                if let Some((input, want)) = version_input(&t) {
                    let setup = steps
                        .iter()
                        .find(|s| s["with"][input].is_string())
                        .unwrap_or_else(|| panic!("{tc}/{file}/{job}: no {input}"));
                    assert_eq!(setup["with"][input], want.as_str(), "{tc}/{file}/{job}");
                }
                match install {
                    Some(cmd) => {
                        let at = position(steps, |s| s["run"].as_str() == Some(cmd))
                            .unwrap_or_else(|| panic!("{tc}/{file}/{job}: no `{cmd}`"));
                        assert!(at < first_check, "{tc}/{file}/{job}: install after checks");
                    }
                    None => assert!(
                        steps.iter().all(|s| s["name"] != "install dependencies"
                            && !s["uses"].as_str().is_some_and(|u| u.contains("setup-"))),
                        "{tc}/{file}/{job}: a setup for toolchain none"
                    ),
                }
            }
            let checks: Vec<&str> = job_steps(&v, "checks")
                .iter()
                .filter_map(|s| s["run"].as_str())
                .filter(|r| Some(*r) != *install)
                .filter(|r| *r != "corepack enable")
                .collect();
            let want: Vec<&str> = t.ci.checks.iter().map(|c| c.as_str()).collect();
            assert_eq!(checks, want, "{tc}/{file}");
            for (other, other_actions, _, marks) in TOOLCHAIN_MARKS {
                if other == tc {
                    continue;
                }
                for m in marks.iter().copied().chain(
                    other_actions
                        .iter()
                        .copied()
                        .filter(|a| !actions.contains(a)),
                ) {
                    assert!(
                        !text.contains(m),
                        "{tc}/{file} contains `{m}` of toolchain {other}"
                    );
                }
            }
        }
    }
}

/// ci.yml restores the toolchain's dependency cache; deploy.yml, whose checks and gates decide
/// a deploy, restores none (explicitly off where the action would cache by default).
#[test]
fn ci_caches_dependencies_and_the_deploy_verdict_does_not() {
    let cache_of = |steps: &[Value]| -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for s in steps {
            for key in ["cache", "enable-cache", "package-manager-cache"] {
                if !s["with"][key].is_null() {
                    out.push((key.to_owned(), s["with"][key].clone()));
                }
            }
        }
        out
    };
    for (tc, _, _, _) in TOOLCHAIN_MARKS {
        let t = fixture(&format!("ci/{tc}.toml"));
        let (_, ci) = workflow(&t, "ci.yml");
        let (_, deploy) = workflow(&t, "deploy.yml");
        for job in ["checks", "gates"] {
            let on = cache_of(job_steps(&ci, job));
            let off = cache_of(job_steps(&deploy, job));
            type Inputs = Vec<(&'static str, Value)>;
            let (want_on, want_off): (Inputs, Inputs) = match *tc {
                "pnpm" | "npm" | "yarn" => (
                    vec![("cache", Value::from(*tc))],
                    vec![("package-manager-cache", Value::Bool(false))],
                ),
                "uv" => (
                    vec![("enable-cache", Value::Bool(true))],
                    vec![("enable-cache", Value::Bool(false))],
                ),
                "pip" => (vec![("cache", Value::from("pip"))], vec![]),
                "cargo" | "go" => (
                    vec![("cache", Value::Bool(true))],
                    vec![("cache", Value::Bool(false))],
                ),
                _ => (vec![], vec![]),
            };
            let norm = |v: Vec<(&str, Value)>| -> Vec<(String, Value)> {
                v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            };
            assert_eq!(on, norm(want_on), "{tc}/ci.yml/{job}");
            assert_eq!(off, norm(want_off), "{tc}/deploy.yml/{job}");
        }
    }
}

/// Why a deploy job could start without every gate of its own commit having passed, read from
/// the workflow alone. Empty means: the deploy cannot start unless every other job of the same
/// run (checks, gates, ci workloads, the image build) succeeded, and every job checks out that
/// run's commit.
fn deploy_gating_problems(v: &Value, t: &Topology) -> Vec<String> {
    let mut out = Vec::new();
    let on = v["on"].as_mapping().cloned().unwrap_or_default();
    for (k, _) in &on {
        let k = k.as_str().unwrap_or("");
        if !matches!(k, "push" | "workflow_dispatch") {
            out.push(format!("triggered by `{k}`"));
        }
    }
    let jobs = v["jobs"].as_mapping().unwrap();
    let Some(deploy) = jobs.get("deploy") else {
        return vec!["no deploy job".to_owned()];
    };
    let needs: Vec<&str> = match &deploy["needs"] {
        Value::Sequence(s) => s.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => Vec::new(),
    };
    for (id, _) in jobs {
        let id = id.as_str().unwrap();
        if id != "deploy" && !needs.contains(&id) {
            out.push(format!("deploy does not need `{id}`"));
        }
    }
    for required in ["checks", "gates"] {
        if !jobs.contains_key(required) {
            out.push(format!("no `{required}` job"));
        }
    }
    // A status function or a negation in `if:` can start the deploy after a failed need.
    if let Some(cond) = deploy["if"].as_str() {
        for bad in ["always(", "failure(", "cancelled(", "!", "||"] {
            if cond.contains(bad) {
                out.push(format!("deploy `if:` contains `{bad}`: {cond}"));
            }
        }
    }
    for (id, job) in jobs {
        let id = id.as_str().unwrap();
        if !job["continue-on-error"].is_null() {
            out.push(format!("job `{id}` has continue-on-error"));
        }
        for step in job["steps"].as_sequence().into_iter().flatten() {
            if !step["continue-on-error"].is_null() {
                out.push(format!("a step of `{id}` has continue-on-error"));
            }
            if step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
            {
                for key in ["ref", "repository"] {
                    if !step["with"][key].is_null() {
                        out.push(format!("`{id}` checks out another {key}"));
                    }
                }
            }
        }
    }
    // The gates that run are the configured ones, all of them.
    let runs = |job: &str| -> Vec<String> {
        v["jobs"][job]["steps"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|s| s["run"].as_str().map(str::to_owned))
            .collect()
    };
    for (job, cmds) in [("checks", &t.ci.checks), ("gates", &t.ci.gates)] {
        let have = runs(job);
        for c in cmds.iter() {
            if !have.iter().any(|r| r == c.as_str()) {
                out.push(format!("`{job}` does not run `{c}`"));
            }
        }
    }
    out
}

/// The structural proof: for every fixture, deploy.yml's deploy job cannot start unless the
/// checks, gates, ci workloads and image build of the same run (hence the same commit)
/// succeeded; and the check itself catches each way of breaking that.
#[test]
fn deploy_cannot_start_without_the_gates_of_the_same_commit() {
    for (name, t) in topologies() {
        let (_, v) = workflow(&t, "deploy.yml");
        assert_eq!(
            deploy_gating_problems(&v, &t),
            Vec::<String>::new(),
            "{name}"
        );
        assert!(v["on"]["workflow_run"].is_null());
    }
    // Each of these edits would let a deploy through without its gates: the check sees it.
    let t = fixture("ci/images.toml");
    let (_, good) = workflow(&t, "deploy.yml");
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 7] = [
        ("a need dropped", |v| {
            v["jobs"]["deploy"]["needs"]
                .as_sequence_mut()
                .unwrap()
                .retain(|n| n != "gates")
        }),
        ("always()", |v| {
            v["jobs"]["deploy"]["if"] = Value::from("always()");
        }),
        ("a gate allowed to fail", |v| {
            v["jobs"]["gates"]["continue-on-error"] = Value::Bool(true);
        }),
        ("a gate step allowed to fail", |v| {
            v["jobs"]["gates"]["steps"][1]["continue-on-error"] = Value::Bool(true);
        }),
        ("another commit checked out", |v| {
            v["jobs"]["deploy"]["steps"][0]["with"]["ref"] = Value::from("main");
        }),
        ("workflow_run trigger", |v| {
            v["on"]["workflow_run"] = Value::from("x");
        }),
        ("a gate removed", |v| {
            v["jobs"]["gates"]["steps"]
                .as_sequence_mut()
                .unwrap()
                .retain(|s| s["run"] != "alembic doctor --json");
        }),
    ];
    for (what, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        assert!(
            !deploy_gating_problems(&bad, &t).is_empty(),
            "the check missed: {what}"
        );
    }
}

/// ci.yml's and deploy.yml's verdict jobs run the same commands in the same order (only their
/// caching differs), so the deploy rests on exactly the checks a pull request saw.
#[test]
fn deploy_runs_the_same_checks_and_gates_as_ci() {
    for (name, t) in topologies() {
        let (_, ci) = workflow(&t, "ci.yml");
        let (_, deploy) = workflow(&t, "deploy.yml");
        for (id, job) in ci["jobs"].as_mapping().unwrap() {
            let id = id.as_str().unwrap();
            if id == "scan" {
                continue;
            }
            let steps = |j: &Value| -> Vec<(Value, Value)> {
                j["steps"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|s| (s["run"].clone(), s["uses"].clone()))
                    .collect()
            };
            assert_eq!(
                steps(job),
                steps(&deploy["jobs"][id]),
                "{name}: job {id} differs"
            );
            assert_eq!(job["needs"], deploy["jobs"][id]["needs"], "{name}/{id}");
        }
    }
}

/// alembic is installed at an exact version from the crate registry with `--locked`, then
/// verified; never from a git URL, tag or branch. The default is the rendering version.
#[test]
fn alembic_is_installed_at_an_exact_version_never_from_git() {
    for (name, t) in topologies() {
        let want =
            t.ci.alembic_version
                .as_ref()
                .map_or(env!("CARGO_PKG_VERSION").to_owned(), |v| v.to_string());
        for file in ["ci.yml", "deploy.yml"] {
            let (text, v) = workflow(&t, file);
            for bad in ["--git", "--tag", "--branch", "--rev", "github.com/"] {
                assert!(!text.contains(bad), "{name}/{file}: {bad}");
            }
            let mut installs = 0;
            for (id, job) in v["jobs"].as_mapping().unwrap() {
                let steps = job["steps"].as_sequence().unwrap();
                for (i, s) in steps.iter().enumerate() {
                    let Some(run) = s["run"].as_str() else {
                        continue;
                    };
                    if !run.starts_with("cargo install") {
                        continue;
                    }
                    installs += 1;
                    let argv = shlex::split(run).unwrap();
                    assert_eq!(
                        argv,
                        [
                            "cargo",
                            "install",
                            "--locked",
                            "alembic-infra",
                            "--version",
                            &format!("={want}")
                        ],
                        "{name}/{file}/{id:?}"
                    );
                    let verify = steps[i + 1]["run"].as_str().unwrap();
                    assert!(
                        verify.contains(&format!("!= \"alembic {want} (alembic-infra)\""))
                            && verify.contains("exit 1"),
                        "{name}/{file}: {verify}"
                    );
                    // Every alembic command in the job comes after the verified install.
                    for later in &steps[..i] {
                        assert!(!later["run"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("alembic ")));
                    }
                }
            }
            // gates + scan in ci.yml; gates + deploy in deploy.yml.
            assert_eq!(installs, 2, "{name}/{file}");
        }
    }
    assert_eq!(
        fixture("ci/images.toml")
            .ci
            .alembic_version
            .unwrap()
            .as_str(),
        "0.2.0"
    );
}

/// ci.yml uploads `alembic check --format sarif` with the pinned upload-sarif action, in the
/// one job holding `security-events: write`, whether or not the check found errors.
#[test]
fn ci_uploads_the_sarif_report_to_code_scanning() {
    use alembic_render::github::UPLOAD_SARIF;
    for (name, t) in topologies() {
        let (_, v) = workflow(&t, "ci.yml");
        let scan = &v["jobs"]["scan"];
        let steps = scan["steps"].as_sequence().unwrap();
        let check = steps
            .iter()
            .find(|s| s["id"] == "check")
            .expect("the check step");
        assert_eq!(check["run"], "alembic check --format sarif > alembic.sarif");
        let upload = steps.last().unwrap();
        assert_eq!(upload["uses"], UPLOAD_SARIF.uses().as_str(), "{name}");
        assert_eq!(upload["with"]["sarif_file"], "alembic.sarif");
        assert_eq!(
            upload["if"],
            "success() || steps.check.outcome == 'failure'"
        );
        let (_, deploy) = workflow(&t, "deploy.yml");
        assert!(deploy["jobs"]["scan"].is_null());
        let (ci_text, _) = workflow(&t, "ci.yml");
        assert_eq!(ci_text.matches("security-events").count(), 1);
    }
}

/// With `droplet.registry` and `build` workloads, deploy.yml builds and pushes each image in
/// one job (pinned buildx, login, build-push, provenance), hands each digest to the deploy
/// through job outputs, and the deploy step pins `<registry>/<name>@<digest>`. Published
/// images are not built; without a registry (or without `build`) there is no build job.
#[test]
fn images_are_built_pushed_attested_and_deployed_by_digest() {
    use alembic_render::github::{ATTEST_PROVENANCE, BUILD_PUSH, DOCKER_LOGIN, SETUP_BUILDX};
    let t = fixture("ci/images.toml");
    let (text, v) = workflow(&t, "deploy.yml");
    let build = &v["jobs"]["build"];
    assert_eq!(build["needs"][0], "checks");
    let steps = build["steps"].as_sequence().unwrap();
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    assert_eq!(uses[1], SETUP_BUILDX.uses());
    assert_eq!(uses[2], DOCKER_LOGIN.uses());
    assert_eq!(steps[2]["with"]["registry"], "ghcr.io");
    assert_eq!(steps[2]["with"]["password"], "${{ github.token }}");
    let built: Vec<(&str, &str)> = vec![("api", "services/api"), ("council-worker", ".")];
    assert_eq!(build["outputs"].as_mapping().unwrap().len(), built.len());
    for (name, context) in &built {
        let id = format!("build-{name}");
        let b = steps.iter().find(|s| s["id"] == id.as_str()).unwrap();
        assert_eq!(b["uses"], BUILD_PUSH.uses().as_str());
        assert_eq!(b["with"]["context"], *context);
        assert_eq!(b["with"]["push"], Value::Bool(true));
        assert_eq!(
            b["with"]["tags"],
            format!("ghcr.io/acme/{name}:${{{{ github.sha }}}}").as_str()
        );
        let digest = format!("${{{{ steps.{id}.outputs.digest }}}}");
        let attest = steps
            .iter()
            .find(|s| s["with"]["subject-digest"] == digest.as_str())
            .unwrap();
        assert_eq!(attest["uses"], ATTEST_PROVENANCE.uses().as_str());
        assert_eq!(
            attest["with"]["subject-name"],
            format!("ghcr.io/acme/{name}").as_str()
        );
        assert_eq!(build["outputs"][*name], digest.as_str());
        let env = format!(
            "ALEMBIC_IMAGE_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        let apply = job_steps(&v, "deploy").last().unwrap();
        assert_eq!(
            apply["env"][env.as_str()],
            format!("ghcr.io/acme/{name}@${{{{ needs.build.outputs.{name} }}}}").as_str()
        );
    }
    // The published image is pulled as configured, never rebuilt.
    assert!(!text.contains("ghcr.io/acme/cache"));
    assert!(v["jobs"]["deploy"]["needs"]
        .as_sequence()
        .unwrap()
        .contains(&Value::from("build")));
    let (ci, _) = workflow(&t, "ci.yml");
    assert!(!ci.contains("build-push-action") && !ci.contains("packages"));

    // Another registry logs in with the environment's registry secrets.
    let other = fixture("ci/images-other-registry.toml");
    let (_, v) = workflow(&other, "deploy.yml");
    let login = &v["jobs"]["build"]["steps"][2];
    assert_eq!(login["with"]["registry"], "registry.digitalocean.com");
    assert_eq!(
        login["with"]["username"],
        "${{ secrets.REGISTRY_USERNAME }}"
    );
    assert_eq!(
        login["with"]["password"],
        "${{ secrets.REGISTRY_PASSWORD }}"
    );

    // No registry: the build workloads are shipped over ssh, not built in CI.
    let mut no_registry = t.clone();
    no_registry.droplet.registry = None;
    let (text, v) = workflow(&no_registry, "deploy.yml");
    assert!(v["jobs"]["build"].is_null());
    assert!(!text.contains("ALEMBIC_IMAGE_") && !text.contains("packages"));
    // Nothing to build: no build job either.
    for (name, t) in topologies() {
        let (_, v) = workflow(&t, "deploy.yml");
        assert_eq!(
            v["jobs"]["build"].is_null(),
            built_workloads(&t).is_empty(),
            "{name}"
        );
    }
}

/// This repository's own release workflow: path of the file from this crate.
fn release_workflow() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.github/workflows/release.yml")
}

/// The release workflow passes actionlint (with shellcheck) and zizmor as auditor, like the
/// rendered ones.
#[test]
fn release_workflow_passes_actionlint_and_zizmor() {
    let Some([actionlint, shellcheck, zizmor]) = tools(["actionlint", "shellcheck", "zizmor"])
    else {
        return;
    };
    let path = release_workflow();
    let out = Command::new(&actionlint)
        .arg("-no-color")
        .arg(format!("-shellcheck={}", shellcheck.display()))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint findings:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&zizmor)
        .args([
            "--offline",
            "--persona=auditor",
            "--no-ignores",
            "--format=plain",
        ])
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("No findings"),
        "zizmor findings (status {:?}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The release workflow is hardened like the rendered ones: pins from the same table with their
/// version comments, `permissions: {}` at the top, least privilege per job, no persisted
/// credentials; it runs on version tags and builds static x86_64 and aarch64 Linux binaries
/// and a SHA256SUMS.
#[test]
fn release_workflow_is_hardened_and_builds_both_targets() {
    let text = std::fs::read_to_string(release_workflow()).expect("release.yml is committed");
    let v: Value = yaml_serde::from_str(&text).unwrap();
    assert_eq!(v["permissions"], Value::Mapping(Default::default()));
    assert_eq!(v["on"]["push"]["tags"][0], "v[0-9]+.[0-9]+.[0-9]+*");
    assert!(v["on"].as_mapping().unwrap().len() == 1);
    for line in text
        .lines()
        .filter(|l| l.trim_start().trim_start_matches("- ").starts_with("uses:"))
    {
        let value = line.split("uses:").nth(1).unwrap().trim();
        let (action, comment) = value.split_once(" # ").expect("a version comment");
        let (repo, sha) = action.split_once('@').unwrap();
        let pin = PINS
            .iter()
            .find(|p| p.action == repo)
            .unwrap_or_else(|| panic!("{repo} is not in the pin table"));
        assert_eq!((pin.sha, pin.version), (sha, comment), "{line}");
    }
    let jobs = v["jobs"].as_mapping().unwrap();
    for (id, job) in jobs {
        let perms = job["permissions"].as_mapping().unwrap();
        assert!(job["permissions"]["contents"].as_str().is_some());
        for (k, val) in perms {
            if val == "write" {
                assert!(
                    id == "release"
                        && matches!(
                            k.as_str().unwrap(),
                            "contents" | "id-token" | "attestations"
                        ),
                    "{id:?} writes {k:?}"
                );
            }
        }
        for step in job["steps"].as_sequence().unwrap() {
            if step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
            {
                assert_eq!(step["with"]["persist-credentials"], Value::Bool(false));
            }
        }
    }
    assert_eq!(v["jobs"]["build"]["permissions"]["contents"], "read");
    let targets: Vec<&str> = v["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| i["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
    );
    assert!(text.contains("SHA256SUMS") && text.contains("sha256sum"));
    for bad in ["secrets.", "pull_request", "${{ github.event"] {
        assert!(!text.contains(bad), "{bad}");
    }
}

/// Regression: ci workloads named like the fixed jobs (`scan`, `build`, `deploy` joined
/// `checks` and `gates`) get their own ids; a shared id would be a duplicate YAML key that
/// replaces the fixed job, and a `deploy` workload would take the deploy job's place.
#[test]
fn ci_workloads_named_like_fixed_jobs_do_not_replace_them() {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ci/images.toml"),
    )
    .unwrap();
    let mut text = base.clone();
    for name in ["checks", "gates", "scan", "build", "deploy"] {
        text.push_str(&format!(
            "\n[[workload]]\nname = \"{name}\"\nplane = \"ci\"\ncommand = [\"make\", \"{name}\"]\n"
        ));
    }
    let loaded = load_str("images.toml", &text);
    let t = loaded.topology.expect("valid");
    for file in ["ci.yml", "deploy.yml"] {
        let (yaml, v) = workflow(&t, file);
        for name in ["checks", "gates", "scan", "build", "deploy"] {
            let id = format!("{name}-workload");
            let runs: Vec<&str> = job_steps(&v, &id)
                .iter()
                .filter_map(|s| s["run"].as_str())
                .collect();
            assert_eq!(runs, [format!("make {name}")], "{file}/{id}");
            // The id appears once as a job key: no duplicate key hides a job.
            assert_eq!(yaml.matches(&format!("\n  {id}:\n")).count(), 1, "{file}");
        }
        for fixed in ["checks", "gates"] {
            assert_eq!(
                yaml.matches(&format!("\n  {fixed}:\n")).count(),
                1,
                "{file}"
            );
        }
    }
    let (_, v) = workflow(&t, "deploy.yml");
    assert_eq!(
        v["jobs"]["deploy"]["environment"],
        t.ci.environment.as_str()
    );
    assert!(v["jobs"]["build"]["outputs"].is_mapping());
    assert_eq!(
        deploy_gating_problems(&v, &t),
        Vec::<String>::new(),
        "the deploy needs the workload jobs too"
    );
    let (_, ci) = workflow(&t, "ci.yml");
    assert_eq!(ci["jobs"]["scan"]["name"], "code scanning");
}
