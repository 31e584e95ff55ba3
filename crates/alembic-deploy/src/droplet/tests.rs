//! Unit tests of the droplet deploy (pure plans and ops; the runner is tested end to end).

use super::*;

fn topology() -> Topology {
    let mut t = alembic_config::default_topology();
    t.droplet.address = Some("203.0.113.20".parse().unwrap());
    t
}

fn configured(t: &Topology) -> Target {
    Target::from_topology(t, &Address::configured(t.droplet.address.unwrap()))
}

fn bundle() -> Bundle {
    Bundle {
        files: [
            (COMPOSE.to_owned(), b"services: {}\n".to_vec()),
            (CADDYFILE.to_owned(), b":443 {\n}\n".to_vec()),
        ]
        .into(),
        secrets: vec!["DATABASE_URL".into()],
        images: vec!["caddy:2".into()],
        pins: Vec::new(),
        volumes: vec!["demo_pgdata".into()],
    }
}

#[test]
fn first_release_plans_every_step_in_order() {
    let t = topology();
    let target = configured(&t);
    let p = plan(
        &target,
        &bundle(),
        RemoteState::default(),
        Lease::for_this_process(),
        "me@here",
    );
    assert_eq!(p.plane.release, Some(1));
    let steps: Vec<&str> = p.plane.ops.iter().map(|o| o.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "take lease",
            "create release dir 1",
            "upload Caddyfile",
            "upload compose.yaml",
            "write .env (0600)",
            "point active at release 1",
            "docker compose up",
            "probe api.alembic.example.com/healthz",
            "probe gateway.alembic.example.com/health",
            "point current at release 1",
            "record the ledger",
            "release lease",
            "close ssh connection"
        ]
    );
    let up = p
        .plane
        .ops
        .iter()
        .find(|o| o.step == "docker compose up")
        .unwrap();
    // Fenced (root, token, id, TTL), then the project and compose's arguments; the token is
    // known only once the droplet hands it out.
    let words = shlex::split(up.args.last().unwrap()).unwrap();
    assert_eq!(words[..2], ["sh", "-c"]);
    assert!(words[2].starts_with(lease::FENCE), "{}", words[2]);
    assert!(words[2].contains(
        r#"exec docker compose --env-file /dev/null -p "$p" --project-directory "$d" -f "$d/compose.yaml" "$@""#
    ));
    assert_eq!(words[4..6], ["/opt/alembic", "<token>"]);
    assert_eq!(
        words[7..],
        [
            "900",
            "alembic",
            "up",
            "-d",
            "--remove-orphans",
            "--wait",
            "--wait-timeout",
            "120"
        ]
    );
    let env = p
        .plane
        .ops
        .iter()
        .find(|o| o.step.starts_with("write .env"))
        .unwrap();
    assert_eq!(
        env.stdin,
        Stdin::ShellEnv {
            names: vec!["DATABASE_URL".into()]
        }
    );
}

// The look at a routed workload's own answer is read-only and asks its container port
// and health path (not the edge's), with the route's Host header.
#[test]
fn the_upstream_look_reads_the_container_port_and_health_path() {
    let t = topology();
    let target = configured(&t);
    assert_eq!(
        target.upstream_health.get("council-api"),
        Some(&(8080, "/healthz".to_owned()))
    );
    let op = target.upstream_op("council-api", "api.alembic.example.com");
    assert!(!op.mutating);
    let text = op.args.join(" ");
    for part in [
        "council-api",
        "8080",
        "/healthz",
        "api.alembic.example.com",
        "com.docker.compose.service=$2",
        "--max-time 2 -H",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
}

#[test]
fn an_unchanged_release_plans_no_mutating_op() {
    let t = topology();
    let target = configured(&t);
    let b = bundle();
    let first = plan(
        &target,
        &b,
        RemoteState::default(),
        Lease::for_this_process(),
        "me",
    );
    let ledger = first.ops.unwrap().next_ledger;
    let mut old: BTreeMap<String, OldArtifact> = b
        .files
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                OldArtifact {
                    sha256: ledger::sha256_hex(v),
                    text: None,
                },
            )
        })
        .collect();
    let names = names_text(&b.secrets);
    old.insert(
        ENV_NAMES.into(),
        OldArtifact {
            sha256: ledger::sha256_hex(names.as_bytes()),
            text: None,
        },
    );
    let state = RemoteState {
        ledger,
        ledger_sha: None,
        dirs: vec![1],
        old,
    };
    let again = plan(&target, &b, state.clone(), Lease::for_this_process(), "me");
    assert!(again.ops.is_none());
    assert_eq!(again.plane.mutating_ops(), 0);
    assert!(!again.plane.has_changes());
    // A new secret name is a change.
    let mut b2 = b.clone();
    b2.secrets.push("NEW_KEY".into());
    let changed = plan(&target, &b2, state, Lease::for_this_process(), "me");
    assert_eq!(changed.plane.changes[0].path, ENV_NAMES);
    assert_eq!(changed.plane.release, Some(2));
}

/// A provisioned droplet before the infra plane ran: the plan still shows every op, with the
/// placeholder where the IP goes, starts with the `terraform output` read, and says why.
#[test]
fn unknown_address_plans_with_a_marked_placeholder() {
    let t = alembic_config::default_topology();
    assert!(t.droplet.is_provisioned());
    let tf = terraform::Runner::for_topology("terraform", std::path::Path::new("/srv/site"), &t);
    let address = Address {
        ip: terraform::reserved_ip(0, "{}", ""),
        from: Some(tf.output_op()),
    };
    let target = Target::from_topology(&t, &address);
    let p = plan(
        &target,
        &bundle(),
        RemoteState::default(),
        Lease::for_this_process(),
        "me",
    );
    assert_eq!(p.plane.release, Some(1));
    // The default keeps its state in Spaces: reading it needs the key pair, by name only.
    assert_eq!(
        p.plane.ops[0].to_string(),
        "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' output -json -no-color"
    );
    assert!(p.plane.notes[0].contains("unknown until the infra plane is applied"));
    assert!(p.plane.notes[0].contains("has not been applied yet"));
    let ssh = p.plane.ops.iter().find(|o| o.step == "take lease").unwrap();
    assert!(
        ssh.args.contains(&format!("deploy@{UNKNOWN_ADDRESS}")),
        "{:?}",
        ssh.args
    );
    let probe = p
        .plane
        .ops
        .iter()
        .find(|o| o.step.starts_with("probe api."))
        .unwrap();
    assert!(probe
        .args
        .contains(&format!("api.alembic.example.com:443:{UNKNOWN_ADDRESS}")));
    // Running it stops before any ssh, with the hint.
    let err = target.ip().unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let msg = err.to_string();
    assert!(msg.contains("apply the infra plane first"), "{msg}");
    struct NoSecrets;
    impl SecretSource for NoSecrets {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    let mut ex = Executor::new(crate::exec::Goal::Apply, &NoSecrets);
    assert!(matches!(
        target.query_state(&mut ex),
        Err(DeployError::AddressUnknown(_))
    ));
    assert!(ex.transcript.is_empty(), "nothing ran");
}

// Volumes hold a stateful workload's data: no op alembic plans (deploy, prune, bringing a
// failed release down, rollback) may remove one, and the release records which it uses.
#[test]
fn no_op_ever_removes_a_volume_and_the_entry_records_them() {
    let t = topology();
    let target = configured(&t);
    let fence = Lease::for_this_process().fence();
    let state = RemoteState {
        dirs: vec![1, 2, 3, 4, 5],
        ledger: Ledger {
            format_version: 1,
            current: Some(5),
            releases: (1..=5)
                .map(|n| LedgerEntry {
                    number: n,
                    artifacts: BTreeMap::new(),
                    images: vec![],
                    secrets: vec![],
                    time: ledger::rfc3339(0),
                    outcome: Outcome::Deployed,
                    by: "t@h".into(),
                    note: None,
                    volumes: vec![],
                    pins: BTreeMap::new(),
                })
                .collect(),
        },
        ..RemoteState::default()
    };
    let p = plan(&target, &bundle(), state, Lease::for_this_process(), "t@h");
    let ops = p.ops.expect("a change");
    assert!(ops.prune.is_some(), "old releases are pruned");
    assert_eq!(ops.entry.volumes, ["demo_pgdata"]);
    let mut all = ops.to_vec();
    all.push(target.down_op(&fence));
    // What `alembic rollback` runs besides the lease and the ledger.
    all.extend([
        target.link_op(4, "active", &fence),
        target.up_op(&fence),
        target.link_op(4, "current", &fence),
    ]);
    for op in &all {
        let text = op.args.join(" ");
        for bad in [
            "down -v",
            "--volumes",
            "volume rm",
            "volume prune",
            "system prune",
            "docker rm -v",
        ] {
            assert!(!text.contains(bad), "{}: {bad} in {text}", op.step);
        }
        if text.contains("compose") && text.contains(" down") {
            assert!(
                !text.split_whitespace().any(|w| w == "-v"),
                "{}: {text}",
                op.step
            );
        }
    }
}

#[test]
fn a_failed_first_release_is_brought_down_keeping_volumes() {
    let t = topology();
    let down = configured(&t).down_op(&Lease::for_this_process().fence());
    assert!(down.mutating);
    assert!(down
        .args
        .last()
        .unwrap()
        .ends_with(" alembic down --remove-orphans"));
    let e = DeployError::Failed {
        failed: 1,
        stopped: Ok(()),
        failure: Failure {
            what: "probe of https://api.x/healthz got HTTP 500".into(),
            logs: vec![("api".into(), "boom".into())],
        },
    };
    assert_eq!(e.exit_code(), 3);
    let m = e.to_string();
    assert!(m.contains("nothing was serving before"), "{m}");
    assert!(m.contains("the failed release was stopped"), "{m}");
    assert!(m.contains("api.x/healthz got HTTP 500"), "{m}");
    assert!(m.contains("log lines of api ---\nboom"), "{m}");
}

#[test]
fn redactor_scrubs_values() {
    struct One;
    impl SecretSource for One {
        fn get(&self, n: &str) -> Option<String> {
            (n == "DB").then(|| "s3cr3t-value".to_owned())
        }
    }
    let r = Redactor::new(&["DB".into()], &One);
    assert_eq!(r.clean("x s3cr3t-value y"), "x [DB: redacted] y");
}

/// The lease was never renewed while an apply ran: the renewer runs its op every TTL/3
/// until stopped, and stops at the first refusal, remembering who holds the lease then.
#[test]
fn the_renewer_renews_until_stopped_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    // A renewal that succeeds: each run appends a line.
    let ok = Op::new(
        PLANE,
        "renew lease",
        "sh",
        vec![
            "-c".into(),
            r#"echo x >> "$1""#.into(),
            "sh".into(),
            count.display().to_string(),
        ],
    );
    let r = Renewer::start(ok, 1, true);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&count).map_or(0, |c| c.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "the renewer did not renew twice");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(r.check().is_ok());
    r.stop();
    let after = std::fs::read_to_string(&count).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        std::fs::read_to_string(&count).unwrap(),
        after,
        "renewed after stop"
    );

    // A refused renewal (exit 18, printing the holder now): check() names the holder.
    let mut other = Lease::for_this_process();
    other.holder = "b@ci".into();
    other.token = 9;
    let rec = serde_json::to_string(&other).unwrap();
    let refused = Op::new(
        PLANE,
        "renew lease",
        "sh",
        vec![
            "-c".into(),
            r#"printf '%s\n' "$1"; exit 18"#.into(),
            "sh".into(),
            rec,
        ],
    );
    let r = Renewer::start(refused, 1, true);
    let deadline = Instant::now() + Duration::from_secs(20);
    let who = loop {
        if let Err(DeployError::LeaseLost(who)) = r.check() {
            break who;
        }
        assert!(Instant::now() < deadline, "the refusal was not noticed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        who.starts_with("b@ci (pid ") && who.contains("token 9"),
        "{who}"
    );
    // A dry run renews nothing.
    assert!(
        Renewer::start(Op::new(PLANE, "x", "false", vec![]), 1, false)
            .handle
            .is_none()
    );
}
