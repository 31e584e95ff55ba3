//! Generated VALID topologies, with names, ports, routes, schedules and env values full of
//! special characters, must (1) be accepted by the loader, (2) render, and (3) produce
//! artifacts the real upstream checkers accept: `docker compose config -q`, `caddy validate`,
//! `terraform fmt -check`. Case counts are small (each case runs three real tools).
//!
//! Lives in alembic-config's tests because it is the loader's promise ("every topology it
//! accepts renders artifacts the real tools accept"); alembic-render is a dev-dependency here.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;

/// One generated workload, before it is written as TOML.
#[derive(Clone, Debug)]
struct Spec {
    base: String,
    plane: u8,
    public: bool,
    port: u16,
    route_path: Option<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    schedule: Option<&'static str>,
    secret: Option<String>,
}

#[derive(Clone, Debug)]
struct Gen {
    os: &'static str,
    tls: &'static str,
    domain: String,
    address: Option<String>,
    admin_cidr: String,
    http_port: Option<u16>,
    workloads: Vec<Spec>,
}

/// Plain values that are hostile to YAML, HCL, Caddyfiles, compose interpolation and shells,
/// but valid `Text` (printable, single line).
fn special_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 ._-]{0,8}",
        prop::sample::select(vec![
            "$",
            "$$",
            "${HOME}",
            "${X:?boom}",
            "$(id)",
            "`id`",
            "\"",
            "'",
            "\\",
            "#",
            ": ",
            "- ",
            "{",
            "}",
            "[",
            "]",
            "&anchor",
            "*alias",
            "!tag",
            "%",
            "@",
            "|",
            ">",
            "~",
            "null",
            "true",
            "0x1F",
            "1e3",
            "日本語",
            "é",
            "🦀",
            "\u{a0}",
            "{{ x }}",
            "{$VAR}",
            "\"; rm -rf / #",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|v| v.concat())
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        "[a-z][a-z0-9]{0,8}",
        0u8..3,
        any::<bool>(),
        1u16..=65535,
        prop::option::of("/[a-z0-9_~-]{1,8}(/[a-z0-9]{1,4})?"),
        prop::collection::vec(("[A-Z_][A-Z0-9_]{0,6}", special_text()), 0..3),
        prop::collection::vec(special_text(), 0..3),
        prop::option::of(prop::sample::select(vec![
            "0 3 * * *",
            "*/15 * * * *",
            "@daily",
            "30 4 1,15 * *",
            "0 9-17/2 * * 1-5",
        ])),
        prop::option::of("[A-Z][A-Z0-9_]{0,8}"),
    )
        .prop_map(
            |(base, plane, public, port, route_path, env, args, schedule, secret)| Spec {
                base,
                plane,
                public,
                port,
                route_path,
                env,
                args,
                schedule,
                secret,
            },
        )
}

fn topology() -> impl Strategy<Value = Gen> {
    (
        prop::sample::select(vec!["macos", "linux"]),
        prop::sample::select(vec!["acme", "acme-staging", "internal"]),
        "[a-z][a-z0-9]{0,10}\\.(com|example|dev)",
        prop::option::of(prop::sample::select(vec!["203.0.113.20", "2001:db8::20"])),
        prop::sample::select(vec!["203.0.113.10/32", "198.51.100.0/24", "2001:db8::/48"]),
        prop::option::of(1024u16..=65535),
        prop::collection::vec(spec(), 1..7),
    )
        .prop_map(
            |(os, tls, domain, address, admin_cidr, http_port, workloads)| Gen {
                os,
                tls,
                domain,
                address: address.map(str::to_owned),
                admin_cidr: admin_cidr.to_owned(),
                http_port,
                workloads,
            },
        )
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write the generated topology as `alembic.toml` text.
fn to_toml(g: &Gen) -> String {
    let mut s = format!(
        "version = 1\n[project]\nname = \"prop\"\ndomain = {}\n[host]\nos = {}\n[droplet]\n\
         name = \"prop-droplet\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-2gb\"\nimage = \"ubuntu-24-04-x64\"\n\
         ssh_user = \"deploy\"\nssh_port = 22\nssh_keys = [\"12345\"]\nadmin_cidrs = [{}]\n\
         token_env = \"DIGITALOCEAN_TOKEN\"\ntls = {}\nacme_email = \"ops@example.com\"\nroot = \"/opt/prop\"\n",
        quote(&g.domain),
        quote(g.os),
        quote(&g.admin_cidr),
        quote(g.tls),
    );
    if let Some(a) = &g.address {
        s.push_str(&format!("address = {}\n", quote(a)));
    }
    if let Some(p) = g.http_port {
        s.push_str(&format!("http_port = {p}\n"));
    }
    let mut secrets: Vec<String> = vec!["DIGITALOCEAN_TOKEN".into()];
    secrets.extend(g.workloads.iter().filter_map(|w| w.secret.clone()));
    secrets.sort();
    secrets.dedup();
    let list = |v: &[String]| v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ");
    s.push_str(&format!(
        "[ci]\nrepository = \"acme/prop\"\nbranch = \"main\"\nrunner = \"ubuntu-24.04\"\nnode_version = \"22\"\n\
         checks = [\"make test\"]\ngates = []\nenvironment = \"production\"\nsecrets = [{}]\n",
        list(&secrets)
    ));
    for (i, w) in g.workloads.iter().enumerate() {
        // The index keeps names and routes unique whatever the generated base is.
        let name = format!("{}-{i}", w.base);
        s.push_str(&format!("[[workload]]\nname = {}\n", quote(&name)));
        let env: Vec<String> = {
            let mut seen = std::collections::BTreeSet::new();
            // A name both in env and in secrets is refused (CFG005): the generated env leaves
            // the workload's secret out.
            w.env
                .iter()
                .filter(|(k, _)| w.secret.as_deref() != Some(k.as_str()))
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, v)| format!("{k} = {}", quote(v)))
                .collect()
        };
        if !env.is_empty() {
            s.push_str(&format!("env = {{ {} }}\n", env.join(", ")));
        }
        if let Some(sec) = &w.secret {
            s.push_str(&format!("secrets = [{}]\n", quote(sec)));
        }
        match w.plane {
            0 => {
                s.push_str("plane = \"droplet\"\n");
                s.push_str(&format!(
                    "image = \"ghcr.io/acme/{name}:1.0\"\nport = {}\n",
                    w.port
                ));
                let args: Vec<String> = w.args.clone();
                if !args.is_empty() {
                    s.push_str(&format!("command = [{}]\n", list(&args)));
                }
                if w.public {
                    let route = format!(
                        "{name}.{}{}",
                        g.domain,
                        w.route_path.as_deref().unwrap_or("")
                    );
                    s.push_str(&format!(
                        "exposure = \"public\"\nroute = {}\nhealth = \"/healthz\"\n",
                        quote(&route)
                    ));
                }
            }
            1 => {
                s.push_str("plane = \"host\"\n");
                let mut cmd = vec![format!("/usr/local/bin/{name}")];
                cmd.extend(w.args.iter().cloned());
                s.push_str(&format!("command = [{}]\n", list(&cmd)));
                match w.schedule {
                    Some(sched) => s.push_str(&format!("schedule = {}\n", quote(sched))),
                    // Unique loopback ports per host daemon.
                    None => s.push_str(&format!("port = {}\n", 20000 + i)),
                }
            }
            _ => {
                s.push_str("plane = \"ci\"\n");
                let mut cmd = vec!["make".to_owned()];
                cmd.extend(w.args.iter().filter(|a| !a.contains("${{")).cloned());
                s.push_str(&format!("command = [{}]\n", list(&cmd)));
            }
        }
    }
    s
}

fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "alembic-proprender-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn run_ok(cmd: &mut Command, what: &str, text: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    TOOL_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(
        out.status.success(),
        "{what} rejected the rendered artifact\n--- stderr\n{}\n--- stdout\n{}\n--- alembic.toml\n{text}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    );
    out.stdout
}

fn check_with_tools(
    dir: &Path,
    t: &alembic_config::Topology,
    set: &alembic_render::ArtifactSet,
    text: &str,
    secrets: &[&str],
) {
    if let Some(a) = set.get("infra/docker/compose.yaml") {
        if let Some(docker) = alembic_testkit::tool("docker") {
            let file = dir.join("compose.yaml");
            std::fs::write(&file, &a.bytes).expect("write compose");
            let mut cmd = Command::new(docker);
            cmd.args(["compose", "-f"])
                .arg(&file)
                .args(["config", "--format", "json"])
                .current_dir(dir);
            // `${NAME:?}` references need a value; a canary proves none leaks into artifacts.
            for s in secrets {
                cmd.env(
                    alembic_render::compose::secret_variable(s),
                    "canary-value-never-rendered",
                );
            }
            let out = run_ok(&mut cmd, "docker compose config", text);
            // Valid is not enough: compose must read back exactly the plain env values the
            // config holds (YAML 1.1-style resolution silently turns `1_000` into "1000").
            let model: serde_json::Value =
                serde_json::from_slice(&out).expect("compose config --format json");
            for w in t.on_plane(alembic_config::Plane::Droplet) {
                let service = &model["services"][w.name.as_str()]["environment"];
                // Secrets reach the container from the environment of `apply` (the canary here);
                // a name both in `env` and in secrets is refused before rendering (CFG005).
                for s in &w.secrets {
                    assert_eq!(
                        service[s.as_str()].as_str(),
                        Some("canary-value-never-rendered"),
                        "secret {s} of {} is not passed through\n--- alembic.toml\n{text}",
                        w.name
                    );
                }
                for (k, v) in w.env.iter().filter(|(k, _)| !w.secrets.contains(k)) {
                    // `config` prints a loadable file, so a literal `$` comes back as `$$`.
                    let got = model["services"][w.name.as_str()]["environment"][k.as_str()]
                        .as_str()
                        .map(|g| g.replace("$$", "$"));
                    assert_eq!(
                        got.as_deref(),
                        Some(v.as_str()),
                        "compose reads {}.env.{k} differently\n--- alembic.toml\n{text}",
                        w.name
                    );
                }
            }
        }
    }
    if let Some(a) = set.get("infra/caddy/Caddyfile") {
        if let Some(caddy) = alembic_testkit::tool("caddy") {
            let file = dir.join("Caddyfile");
            std::fs::write(&file, &a.bytes).expect("write Caddyfile");
            run_ok(
                Command::new(caddy)
                    .args(["validate", "--adapter", "caddyfile", "--config"])
                    .arg(&file)
                    .env("HOME", dir)
                    .env("XDG_DATA_HOME", dir.join("data"))
                    .env("XDG_CONFIG_HOME", dir.join("config")),
                "caddy validate",
                text,
            );
        }
    }
    let tf: Vec<_> = set
        .iter()
        .filter(|a| a.kind == alembic_render::ArtifactKind::Terraform)
        .collect();
    if !tf.is_empty() {
        if let Some(terraform) = alembic_testkit::tool("terraform") {
            let tfdir = dir.join("terraform");
            std::fs::create_dir_all(&tfdir).expect("tf dir");
            for a in tf {
                let name = a.path.rsplit('/').next().expect("file name");
                std::fs::write(tfdir.join(name), &a.bytes).expect("write tf");
            }
            run_ok(
                Command::new(terraform)
                    .args(["fmt", "-check", "-diff"])
                    .arg(&tfdir)
                    .env("TF_CLI_CONFIG_FILE", "/dev/null")
                    .env("CHECKPOINT_DISABLE", "1"),
                "terraform fmt -check",
                text,
            );
        }
    }
    for a in set.iter() {
        assert!(
            !a.text().contains("canary-value-never-rendered"),
            "{} contains a secret value",
            a.path
        );
    }
}

/// How many real-checker runs passed, so the test can prove it checked something.
static TOOL_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn accepted_topologies_render_artifacts_the_real_tools_accept() {
    // 16 cases keep CI fast; PROPTEST_CASES=500 runs a longer campaign locally.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let result = runner.run(&topology(), |g| {
        let text = to_toml(&g);
        let loaded = alembic_config::load_str("prop.toml", &text);
        let t = match loaded.topology {
            Some(t) => t,
            None => panic!(
                "generated config was refused: {:#?}\n--- alembic.toml\n{text}",
                loaded.diagnostics
            ),
        };
        let set = alembic_render::render(&t);
        assert!(set.get("infra/MANIFEST.json").is_some());
        let names = t.secret_names();
        let secrets: Vec<&str> = names.keys().map(|n| n.as_str()).collect();
        let dir = scratch_dir();
        check_with_tools(&dir, &t, &set, &text, &secrets);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // With every tool present, each case runs compose and caddy (and terraform when the droplet
    // is provisioned); zero runs would mean the renderer stopped producing those artifacts.
    if alembic_testkit::which("docker").is_some() && alembic_testkit::which("caddy").is_some() {
        let runs = TOOL_RUNS.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("{runs} real-checker runs passed");
        assert!(
            runs >= 2 * cases as usize,
            "only {runs} real-checker runs for {cases} cases"
        );
    }
}

fn check_one(g: &Gen) {
    let text = to_toml(g);
    let t = alembic_config::load_str("prop.toml", &text)
        .topology
        .unwrap_or_else(|| panic!("refused:\n{text}"));
    let set = alembic_render::render(&t);
    let names = t.secret_names();
    let secrets: Vec<&str> = names.keys().map(|n| n.as_str()).collect();
    let dir = scratch_dir();
    check_with_tools(&dir, &t, &set, &text, &secrets);
    let _ = std::fs::remove_dir_all(&dir);
}

fn one_droplet_workload(port: u16, args: &[&str]) -> Gen {
    Gen {
        os: "macos",
        tls: "acme",
        domain: "a.com".into(),
        address: None,
        admin_cidr: "203.0.113.10/32".into(),
        http_port: None,
        workloads: vec![Spec {
            base: "a".into(),
            plane: 0,
            public: false,
            port,
            route_path: None,
            env: vec![],
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule: None,
            secret: None,
        }],
    }
}

// Found by this property: compose read the command argument `0_` as the integer 0
// ("services.a-0.command.0 must be a string"); `2024-01-01` even panics compose.
#[test]
fn regression_compose_command_args_that_yaml_v3_reads_as_numbers() {
    for arg in ["0_", "1_000", "0x_1", "2024-01-01"] {
        check_one(&one_droplet_workload(1, &[arg]));
    }
}

// Found by this property: compose silently turned env value `1_000` into "1000" and
// `2024-01-01` into "2024-01-01 00:00:00 +0000 UTC".
#[test]
fn regression_compose_env_values_keep_their_text() {
    let mut g = one_droplet_workload(8080, &[]);
    g.workloads[0].env = vec![
        ("COUNT".into(), "1_000".into()),
        ("SINCE".into(), "2024-01-01".into()),
    ];
    check_one(&g);
}

// Found by this property: the command argument `: 0` made compose.yaml unparseable
// ("did not find expected key").
#[test]
fn regression_compose_command_arg_colon_space() {
    check_one(&one_droplet_workload(1, &[": 0"]));
}

// Long values must survive the emitter's line folding and the renderer's quoting pass alike.
#[test]
fn regression_compose_long_values_with_colons_and_digits() {
    let long = "1: 2 ".repeat(60);
    let mut g = one_droplet_workload(8080, &[&long, "- 3: x", "'0: 1'", "\"2: 3\""]);
    g.workloads[0].env = vec![("LONG".into(), long.clone()), ("Q".into(), "'1_0'".into())];
    check_one(&g);
}
