//! Host plane dry-run transcripts as exact strings (launchctl for macOS, systemctl --user for
//! Linux), for a fixed home and uid, plus the proof that no secret value reaches a transcript.

use crate::exec::{Executor, Goal, SecretSource};
use crate::host::secrets_file::{MERGER, MERGER_NAME};
use crate::host::{self, HostEnv};
use crate::ops::Stdin;
use alembic_config::Topology;

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
                Stdin::Bytes { data } if op.args[3].ends_with(MERGER_NAME) => {
                    assert_eq!(data, MERGER.as_bytes());
                    " < MERGER".to_owned()
                }
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
                Stdin::EnvLinesIfSet { names } => format!(" < env-if-set({})", names.join(",")),
                Stdin::ShellEnv { names } => format!(" < shenv({})", names.join(",")),
                Stdin::Pipe { from } => format!(" < pipe({})", from.command_line()),
            };
            format!("{}{stdin}", op.command_line())
        })
        .collect()
}

#[test]
fn macos_launchctl_transcript() {
    let t = alembic_config::default_topology();
    let env = HostEnv::for_home("/Users/alice", 501);
    let w = |target: &str, mode: &str, from: &str| {
        format!("sh -c {WRITER} alembic-install {target} {mode} < {from}")
    };
    let expected = vec![
        "mkdir -p /Users/alice/Library/LaunchAgents /Users/alice/.config/alembic/alembic/bin".to_owned(),
        w("/Users/alice/.config/alembic/alembic/bin/alembic-launch", "755", "infra/host/bin/alembic-launch"),
        w("/Users/alice/.config/alembic/alembic/bin/alembic-secrets-merge", "755", "MERGER"),
        // The project's own secrets file, merged: names on the command line, values on stdin.
        "sh /Users/alice/.config/alembic/alembic/bin/alembic-secrets-merge /Users/alice/.config/alembic/alembic/secrets.env OPENAI_API_KEY < env-if-set(OPENAI_API_KEY)".into(),
        w(
            "/Users/alice/Library/LaunchAgents/com.alembic.alembic.local-models.plist",
            "644",
            "infra/host/launchd/com.alembic.alembic.local-models.plist",
        ),
        w(
            "/Users/alice/Library/LaunchAgents/com.alembic.alembic.agent-browser.plist",
            "644",
            "infra/host/launchd/com.alembic.alembic.agent-browser.plist",
        ),
        w(
            "/Users/alice/Library/LaunchAgents/com.alembic.alembic.nightly-digest.plist",
            "644",
            "infra/host/launchd/com.alembic.alembic.nightly-digest.plist",
        ),
        // local-models first: agent-browser depends on it.
        "launchctl bootout gui/501/com.alembic.alembic.local-models".into(),
        "launchctl bootstrap gui/501 /Users/alice/Library/LaunchAgents/com.alembic.alembic.local-models.plist".into(),
        "launchctl kickstart -k gui/501/com.alembic.alembic.local-models".into(),
        "launchctl print gui/501/com.alembic.alembic.local-models".into(),
        "launchctl bootout gui/501/com.alembic.alembic.agent-browser".into(),
        "launchctl bootstrap gui/501 /Users/alice/Library/LaunchAgents/com.alembic.alembic.agent-browser.plist".into(),
        "launchctl kickstart -k gui/501/com.alembic.alembic.agent-browser".into(),
        "launchctl print gui/501/com.alembic.alembic.agent-browser".into(),
        // A calendar job is loaded, not kicked: it runs on its schedule.
        "launchctl bootout gui/501/com.alembic.alembic.nightly-digest".into(),
        "launchctl bootstrap gui/501 /Users/alice/Library/LaunchAgents/com.alembic.alembic.nightly-digest.plist".into(),
        "launchctl print gui/501/com.alembic.alembic.nightly-digest".into(),
        // Each daemon with a port: its pid, its process tree, the listening sockets.
        "launchctl print gui/501/com.alembic.alembic.local-models".into(),
        "ps -A -o 'pid=,ppid='".into(),
        "lsof -nP -iTCP -sTCP:LISTEN -F pn".into(),
        "launchctl print gui/501/com.alembic.alembic.agent-browser".into(),
        "ps -A -o 'pid=,ppid='".into(),
        "lsof -nP -iTCP -sTCP:LISTEN -F pn".into(),
    ];
    assert_eq!(transcript(&t, &env), expected);
}

#[test]
fn linux_systemctl_transcript() {
    let t = linux_topology();
    let env = HostEnv::for_home("/home/alice", 1000);
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
        "mkdir -p /home/alice/.config/systemd/user /home/alice/.config/alembic/alembic/bin".to_owned(),
        w(
            "/home/alice/.config/alembic/alembic/bin/alembic-launch",
            "755",
            "infra/host/bin/alembic-launch",
        ),
        w(
            "/home/alice/.config/alembic/alembic/bin/alembic-secrets-merge",
            "755",
            "MERGER",
        ),
        "sh /home/alice/.config/alembic/alembic/bin/alembic-secrets-merge /home/alice/.config/alembic/alembic/secrets.env OPENAI_API_KEY < env-if-set(OPENAI_API_KEY)".into(),
        unit("alembic-alembic--local-models.service"),
        unit("alembic-alembic--agent-browser.service"),
        unit("alembic-alembic--nightly-digest.service"),
        unit("alembic-alembic--nightly-digest.timer"),
        "systemctl --user daemon-reload".into(),
        "systemctl --user enable --now alembic-alembic--local-models.service".into(),
        "systemctl --user enable --now alembic-alembic--agent-browser.service".into(),
        // The scheduled job's service is started by its timer, so only the timer is enabled.
        "systemctl --user enable --now alembic-alembic--nightly-digest.timer".into(),
        "systemctl --user restart alembic-alembic--local-models.service".into(),
        "systemctl --user restart alembic-alembic--agent-browser.service".into(),
        "systemctl --user is-active alembic-alembic--local-models.service".into(),
        "systemctl --user is-active alembic-alembic--agent-browser.service".into(),
        "systemctl --user is-active alembic-alembic--nightly-digest.timer".into(),
        // Each daemon with a port: its main pid, its process tree, the listening sockets.
        "systemctl --user show -p MainPID --value alembic-alembic--local-models.service".into(),
        "ps -A -o 'pid=,ppid='".into(),
        "ss -Hltnp".into(),
        "systemctl --user show -p MainPID --value alembic-alembic--agent-browser.service".into(),
        "ps -A -o 'pid=,ppid='".into(),
        "ss -Hltnp".into(),
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
        let env = HostEnv::for_home(home, 501);
        let set = alembic_render::render(&t);
        let mut ex = Executor::new(Goal::DryRun, &Canary);
        host::apply(&mut ex, &t, &set, &env, &mut Default::default()).unwrap();
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
        ci: true,
        ..HostEnv::for_home("/Users/alice", 501)
    };
    let mut ex = Executor::new(Goal::Apply, &Canary);
    let err = host::apply(&mut ex, &t, &set, &env, &mut Default::default()).unwrap_err();
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
    let env = HostEnv::for_home("/Users/alice", 501);
    assert!(host::install_ops(&t, &set, &env).unwrap().is_empty());
}
