//! The swarm driver's pure parts: the manager's readiness, reading `UpdateStatus`, and the
//! exact remote commands (argv as data, no ssh).

use super::run::{judge, parse_status, Judgement, ServiceStatus};
use super::*;
use crate::droplet::Address;

fn topology() -> Topology {
    let text = r#"version = 1
[project]
name = "shop"
domain = "shop.test"
[host]
os = "linux"
[droplet]
name = "shop"
ssh_user = "deploy"
admin_cidrs = ["127.0.0.1/32"]
address = "127.0.0.1"
engine = "swarm"
tls = "internal"
[ci]
repository = "acme/shop"
[[workload]]
name = "api"
plane = "droplet"
exposure = "public"
image = "ghcr.io/acme/api:1"
port = 8080
route = "api.shop.test"
secrets = ["DATABASE_URL"]
"#;
    let loaded = alembic_config::parse::load_str("alembic.toml", text);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.topology.expect("valid config")
}

fn swarm() -> Swarm {
    let t = topology();
    let address = Address::configured("127.0.0.1".parse().unwrap());
    Swarm::new(&t, Target::from_topology(&t, &address))
}

#[test]
fn readiness_reads_the_engine_check() {
    assert_eq!(readiness("swarm active true\n"), Ok(()));
    assert!(readiness("docker missing")
        .unwrap_err()
        .contains("not installed"));
    assert!(readiness("swarm inactive false")
        .unwrap_err()
        .contains("not in swarm mode (inactive false)"));
    assert!(readiness("swarm active false")
        .unwrap_err()
        .contains("worker"));
    assert!(readiness("docker unreachable")
        .unwrap_err()
        .contains("does not answer"));
}

fn status(name: &str, state: &str, started: u64) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        state: state.into(),
        started,
        message: "update rolled back".into(),
        running: 1,
        desired: 1,
    }
}

#[test]
fn update_status_is_read_not_the_exit_code() {
    let text = "service shop_api|rollback_completed|1700000100|rollback completed\n\
                service shop_edge|none||\n\
                replicas shop_api 1/1\nreplicas shop_edge 1/1\n";
    let s = parse_status(text);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].state, "rollback_completed");
    assert_eq!(s[0].started, 1_700_000_100);
    assert_eq!((s[1].running, s[1].desired), (1, 1));
    assert!(matches!(
        judge(&s, 1_700_000_090, true),
        Judgement::Failed { ref service, ref why }
            if service == "shop_api" && why.contains("rollback_completed")
    ));
    // The same status from an earlier deploy says nothing about this one.
    assert_eq!(judge(&s, 1_700_000_500, true), Judgement::Done);
    // Restoring a previous release looks at replicas only.
    assert_eq!(judge(&s, 0, false), Judgement::Done);
    assert!(matches!(
        judge(&[status("a", "paused", 10)], 5, true),
        Judgement::Failed { .. }
    ));
    assert!(matches!(
        judge(&[status("a", "updating", 10)], 5, true),
        Judgement::Waiting(_)
    ));
    let mut starting = status("a", "completed", 10);
    starting.running = 0;
    assert_eq!(
        judge(&[starting], 5, true),
        Judgement::Waiting("a: 0/1 tasks running".into())
    );
    assert!(matches!(judge(&[], 0, true), Judgement::Waiting(_)));
}

#[test]
fn the_remote_commands_are_fixed_scripts_with_data_in_arguments() {
    let sw = swarm();
    let lease = Lease::for_this_process();
    let fence = lease.fence();
    let deploy = sw.deploy_op(4, &fence);
    assert_eq!(deploy.program, "ssh");
    let remote = deploy.args.last().unwrap();
    assert!(remote.contains(
        "docker stack deploy --resolve-image never --detach=false --prune -c stack.yaml"
    ));
    assert!(remote.ends_with(" 4 shop 300"), "{remote}");

    let secrets = sw.secrets_op(4, &fence).expect("a secret to create");
    let remote = secrets.args.last().unwrap();
    assert!(
        remote.ends_with(" 4 shop shop_DATABASE_URL_4 ALEMBIC_SECRET_DATABASE_URL"),
        "{remote}"
    );
    // The value travels only in stdin, and only its name is in the op.
    assert_eq!(
        secrets.stdin,
        Stdin::ShellEnv {
            names: vec!["DATABASE_URL".into()]
        }
    );
    assert!(sw.prune_secrets_op(&[], &fence).is_none());
    assert!(sw.status_op().args.last().unwrap().ends_with(" shop"));
    assert!(!sw.status_op().mutating && !sw.engine_check_op().mutating);
}

#[test]
fn a_release_stack_names_versioned_secrets_and_is_stable_across_releases() {
    let t = topology();
    let set = alembic_render::render(&t);
    let b = bundle(&t, &set, Vec::new()).unwrap();
    let stack = String::from_utf8(b.files[STACK].clone()).unwrap();
    assert!(
        stack.contains("name: shop_DATABASE_URL_${ALEMBIC_SECRETS_VERSION:?"),
        "{stack}"
    );
    assert_eq!(b.secrets, vec!["DATABASE_URL".to_owned()]);
    assert_eq!(bundle(&t, &set, Vec::new()).unwrap(), b);
    assert!(b.files.contains_key(CADDYFILE));
}
