//! Unit tests of `host`.

use super::*;

// The host plane run for real (files, listen checks, the secrets merge) and its exact
// dry-run transcripts, each concern in its own file.
mod install_real;
mod listen_real;
mod secrets_merge;
mod transcripts;

fn alice() -> HostEnv {
    HostEnv::for_home("/Users/alice", 501)
}

#[test]
fn the_secrets_file_override_must_be_absolute() {
    assert_eq!(secrets_file_override(None).unwrap(), None);
    assert_eq!(secrets_file_override(Some("".into())).unwrap(), None);
    assert_eq!(
        secrets_file_override(Some("/srv/s.env".into())).unwrap(),
        Some(PathBuf::from("/srv/s.env"))
    );
    let err = secrets_file_override(Some("s.env".into())).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("absolute"), "{err}");
}

#[test]
fn tolerates_only_not_loaded_bootouts() {
    let bootout = Op::new(
        PLANE,
        "x",
        "launchctl",
        vec!["bootout".into(), "gui/1/a".into()],
    );
    let not_loaded = Output {
        status: 3,
        stdout: vec![],
        stderr: b"Boot-out failed: 3: No such process\n".to_vec(),
        ..Output::default()
    };
    assert!(tolerated(&bootout, &not_loaded));
    let denied = Output {
        status: 1,
        stdout: vec![],
        stderr: b"Operation not permitted".to_vec(),
        ..Output::default()
    };
    assert!(!tolerated(&bootout, &denied));
    let bootstrap = Op::new(PLANE, "x", "launchctl", vec!["bootstrap".into()]);
    assert!(!tolerated(&bootstrap, &not_loaded));
}

#[test]
fn applying_from_ci_is_refused_but_a_dry_run_is_not() {
    struct NoSecrets;
    impl crate::exec::SecretSource for NoSecrets {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    let t = alembic_config::default_topology();
    let set = alembic_render::render(&t);
    let env = HostEnv {
        ci: true,
        ..alice()
    };
    let mut ex = Executor::new(Goal::Apply, &NoSecrets);
    let mut report = HostReport::default();
    let err = apply(&mut ex, &t, &set, &env, &mut report).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("refusing to apply the host plane from CI"));
    assert!(ex.transcript.is_empty(), "nothing ran");
    let mut dry = Executor::new(Goal::DryRun, &NoSecrets);
    apply(&mut dry, &t, &set, &env, &mut report).unwrap();
}
