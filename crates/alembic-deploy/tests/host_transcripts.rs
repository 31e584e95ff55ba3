//! Host plane dry-run transcripts as exact strings (launchctl for macOS, systemctl --user for
//! Linux), for a fixed home and uid, plus the proof that no secret value reaches a transcript.

use alembic_config::Topology;
use alembic_deploy::exec::{Executor, Goal, SecretSource};
use alembic_deploy::host::{self, HostEnv};
use alembic_deploy::ops::Stdin;

const WRITER: &str =
    r#"'set -eu; umask 077; t="$1.alembic-tmp"; cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"'"#;

fn linux_topology() -> Topology {
    let src = alembic_config::DEFAULT_TOML.replace("os = \"macos\"", "os = \"linux\"");
    alembic_config::load_str("linux.toml", &src)
        .topology
        .expect("valid")
}

/// Each op's command line, with what its stdin carries.
fn transcript(t: &Topology, env: &HostEnv) -> Vec<String> {
    let set = alembic_render::render(t);
    host::install_ops(t, &set, env)
        .unwrap()
        .iter()
        .map(|op| {
            let stdin = match &op.stdin {
                Stdin::None => String::new(),
                Stdin::Bytes { data } => {
                    // Installed files are the rendered artifacts, byte for byte.
                    let file = op.args[3].rsplit('/').next().unwrap();
                    let art = set
                        .iter()
                        .find(|a| a.path.ends_with(&format!("/{file}")))
                        .expect("an artifact");
                    assert_eq!(&art.bytes, data, "{file}");
                    format!(" < {}", art.path)
                }
                Stdin::EnvFile { names } => format!(" < env({})", names.join(",")),
                Stdin::ShellEnv { names } => format!(" < shenv({})", names.join(",")),
            };
            format!("{}{stdin}", op.command_line())
        })
        .collect()
}

#[test]
fn macos_launchctl_transcript() {
    let t = alembic_config::default_topology();
    let env = HostEnv {
        home: "/Users/alice".into(),
        uid: 501,
        ci: false,
    };
    let w = |target: &str, mode: &str, from: &str| {
        format!("sh -c {WRITER} alembic-install {target} {mode} < {from}")
    };
    let expected = vec![
        "mkdir -p /Users/alice/Library/LaunchAgents /Users/alice/.config/alembic/bin".to_owned(),
        w("/Users/alice/.config/alembic/bin/alembic-launch", "755", "infra/host/bin/alembic-launch"),
        w("/Users/alice/.config/alembic/secrets.env", "600", "env(OPENAI_API_KEY)"),
        w(
            "/Users/alice/Library/LaunchAgents/com.alembic.local-models.plist",
            "644",
            "infra/host/launchd/com.alembic.local-models.plist",
        ),
        w(
            "/Users/alice/Library/LaunchAgents/com.alembic.agent-browser.plist",
            "644",
            "infra/host/launchd/com.alembic.agent-browser.plist",
        ),
        w(
            "/Users/alice/Library/LaunchAgents/com.alembic.nightly-digest.plist",
            "644",
            "infra/host/launchd/com.alembic.nightly-digest.plist",
        ),
        // local-models first: agent-browser depends on it.
        "launchctl bootout gui/501/com.alembic.local-models".into(),
        "launchctl bootstrap gui/501 /Users/alice/Library/LaunchAgents/com.alembic.local-models.plist".into(),
        "launchctl kickstart -k gui/501/com.alembic.local-models".into(),
        "launchctl print gui/501/com.alembic.local-models".into(),
        "launchctl bootout gui/501/com.alembic.agent-browser".into(),
        "launchctl bootstrap gui/501 /Users/alice/Library/LaunchAgents/com.alembic.agent-browser.plist".into(),
        "launchctl kickstart -k gui/501/com.alembic.agent-browser".into(),
        "launchctl print gui/501/com.alembic.agent-browser".into(),
        // A calendar job is loaded, not kicked: it runs on its schedule.
        "launchctl bootout gui/501/com.alembic.nightly-digest".into(),
        "launchctl bootstrap gui/501 /Users/alice/Library/LaunchAgents/com.alembic.nightly-digest.plist".into(),
        "launchctl print gui/501/com.alembic.nightly-digest".into(),
    ];
    assert_eq!(transcript(&t, &env), expected);
}

#[test]
fn linux_systemctl_transcript() {
    let t = linux_topology();
    let env = HostEnv {
        home: "/home/alice".into(),
        uid: 1000,
        ci: false,
    };
    let w = |target: &str, mode: &str, from: &str| {
        format!("sh -c {WRITER} alembic-install {target} {mode} < {from}")
    };
    let unit = |name: &str| {
        w(
            &format!("/home/alice/.config/systemd/user/{name}"),
            "644",
            &format!("infra/host/systemd/{name}"),
        )
    };
    let expected = vec![
        "mkdir -p /home/alice/.config/systemd/user /home/alice/.config/alembic/bin".to_owned(),
        w(
            "/home/alice/.config/alembic/bin/alembic-launch",
            "755",
            "infra/host/bin/alembic-launch",
        ),
        w(
            "/home/alice/.config/alembic/secrets.env",
            "600",
            "env(OPENAI_API_KEY)",
        ),
        unit("alembic-local-models.service"),
        unit("alembic-agent-browser.service"),
        unit("alembic-nightly-digest.service"),
        unit("alembic-nightly-digest.timer"),
        "systemctl --user daemon-reload".into(),
        "systemctl --user enable --now alembic-local-models.service".into(),
        "systemctl --user enable --now alembic-agent-browser.service".into(),
        // The scheduled job's service is started by its timer, so only the timer is enabled.
        "systemctl --user enable --now alembic-nightly-digest.timer".into(),
        "systemctl --user restart alembic-local-models.service".into(),
        "systemctl --user restart alembic-agent-browser.service".into(),
        "systemctl --user is-active alembic-local-models.service".into(),
        "systemctl --user is-active alembic-agent-browser.service".into(),
        "systemctl --user is-active alembic-nightly-digest.timer".into(),
    ];
    assert_eq!(transcript(&t, &env), expected);
}

struct Canary;
impl SecretSource for Canary {
    fn get(&self, _: &str) -> Option<String> {
        Some("sk-canary-host-9d2e".into())
    }
}

#[test]
fn dry_run_records_names_never_values() {
    for (t, home) in [
        (alembic_config::default_topology(), "/Users/alice"),
        (linux_topology(), "/home/alice"),
    ] {
        let env = HostEnv {
            home: home.into(),
            uid: 501,
            ci: false,
        };
        let set = alembic_render::render(&t);
        let mut ex = Executor::new(Goal::DryRun, &Canary);
        host::apply(&mut ex, &t, &set, &env).unwrap();
        let text = format!(
            "{:?}{}{}",
            ex.transcript,
            serde_json::to_string(&ex.transcript).unwrap(),
            ex.transcript
                .iter()
                .map(|o| o.to_string())
                .collect::<String>()
        );
        assert!(text.contains("OPENAI_API_KEY"));
        assert!(
            !text.contains("canary"),
            "a secret value reached the transcript"
        );
    }
}

#[test]
fn ci_is_refused_for_apply() {
    let t = alembic_config::default_topology();
    let set = alembic_render::render(&t);
    let env = HostEnv {
        home: "/Users/alice".into(),
        uid: 501,
        ci: true,
    };
    let mut ex = Executor::new(Goal::Apply, &Canary);
    let err = host::apply(&mut ex, &t, &set, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to apply the host plane from CI (CI or GITHUB_ACTIONS is set): the host plane \
         is the operator's own machine; run `alembic apply --plane host --yes` there"
    );
    assert!(ex.transcript.is_empty());
}

#[test]
fn no_host_workloads_no_ops() {
    let src = alembic_config::DEFAULT_TOML;
    // Keep only the droplet workloads: cut the file at the host section.
    let cut = src.find("# --- host plane").expect("marker in the default");
    let t = alembic_config::load_str("x.toml", &src[..cut])
        .topology
        .expect("valid");
    let set = alembic_render::render(&t);
    let env = HostEnv {
        home: "/Users/alice".into(),
        uid: 501,
        ci: false,
    };
    assert!(host::install_ops(&t, &set, &env).unwrap().is_empty());
}
