//! A provisioned droplet's address comes from Terraform, with the real `terraform` (or `tofu`)
//! binary on the provider-free fixture (`tests/fixtures/terraform/provider-free`, which exposes a
//! `reserved_ip` output like the rendered config): before the infra stage is applied the address
//! is unknown and the droplet plan says so with a placeholder in its ops; after `apply` the same
//! read-only `terraform output` op gives the IP, to the droplet plane and to `doctor --online`
//! (one reader, `terraform::reserved_ip`).

use std::collections::HashMap;
use std::path::Path;

use crate::droplet::{self, Bundle, RemoteState, Target, UNKNOWN_ADDRESS};
use crate::exec::{Executor, Goal, SecretSource};
use crate::lease::Lease;
use crate::terraform::{self, Runner};

struct Secrets(HashMap<String, String>);

impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}

fn terraform_program() -> Option<std::path::PathBuf> {
    if let Some(p) = terraform::find_program() {
        return Some(p);
    }
    alembic_testkit::tool("terraform")
}

/// The runner `alembic` builds for a project at `root`, plus the knobs that keep Terraform
/// offline and quiet here.
fn runner(program: &Path, root: &Path, t: &alembic_config::Topology, ip: &str) -> Runner {
    let mut tf = Runner::for_topology(&program.display().to_string(), root, t)
        .expecting_files_of(&root.join("infra/terraform"))
        .unwrap();
    tf.env = vec![
        ("CHECKPOINT_DISABLE".into(), "1".into()),
        ("TF_CLI_CONFIG_FILE".into(), "/dev/null".into()),
        ("TF_IN_AUTOMATION".into(), "1".into()),
        (
            "TF_DATA_DIR".into(),
            tf.dir.join(".tfdata").display().to_string(),
        ),
        ("TF_VAR_reserved_ip".into(), ip.into()),
    ];
    tf
}

#[test]
fn address_is_unknown_before_infra_and_the_reserved_ip_after() {
    let Some(program) = terraform_program() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = root.join("infra/terraform");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = alembic_testkit::workspace_root().join("tests/fixtures/terraform/provider-free");
    std::fs::copy(fixture.join("main.tf"), dir.join("main.tf")).unwrap();

    let t = alembic_config::default_topology();
    assert!(
        t.droplet.is_provisioned(),
        "the default droplet is provisioned"
    );
    // The default keeps its state in Spaces, so the state steps ask for the key pair too (the
    // provider-free fixture has no backend and ignores it).
    let secrets = Secrets(HashMap::from([
        (
            "DIGITALOCEAN_TOKEN".to_owned(),
            "dop_v1_canary_address_test".to_owned(),
        ),
        (
            "SPACES_ACCESS_KEY_ID".to_owned(),
            "canary_spaces_access".to_owned(),
        ),
        (
            "SPACES_SECRET_ACCESS_KEY".to_owned(),
            "canary_spaces_secret".to_owned(),
        ),
    ]));
    let tf = runner(&program, root, &t, "192.0.2.44");

    // Before the infra stage ran: no state, Terraform prints `{}`; the address is unknown and
    // the reason says what to do. The query runs even in a dry run (it changes nothing).
    let mut dry = Executor::new(Goal::DryRun, &secrets);
    let before = droplet::resolve_address(&t, Some(&tf), &mut dry);
    let why = before.ip.clone().unwrap_err();
    assert!(why.contains("has not been applied yet"), "{why}");
    assert_eq!(before.from.as_ref(), Some(&tf.output_op()));
    assert!(dry.transcript.is_empty(), "a query is not a recorded step");

    // The dry-run plan: the address read comes first, every ssh and probe op shows the
    // placeholder, and a note explains it.
    let set = alembic_render::render(&t);
    let bundle = Bundle::from_artifacts(&t, &set).unwrap();
    let target = Target::from_topology(&t, &before);
    let lease = Lease::for_this_process();
    let planned = droplet::plan(&target, &bundle, RemoteState::default(), lease, "me");
    let ops = &planned.plane.ops;
    assert_eq!(ops[0].step, "read the droplet address (terraform output)");
    assert!(!ops[0].mutating);
    assert!(ops[0].args.iter().any(|a| a == "output"));
    let ssh_ops: Vec<_> = ops.iter().filter(|o| o.program == "ssh").collect();
    assert!(!ssh_ops.is_empty());
    for op in &ssh_ops {
        assert!(
            op.args
                .iter()
                .any(|a| a == &format!("deploy@{UNKNOWN_ADDRESS}")),
            "{op}"
        );
    }
    let probes: Vec<_> = ops.iter().filter(|o| o.program == "curl").collect();
    assert_eq!(probes.len(), 2);
    for op in probes {
        assert!(
            op.args
                .iter()
                .any(|a| a.ends_with(&format!(":443:{UNKNOWN_ADDRESS}"))),
            "{op}"
        );
    }
    assert!(planned.plane.notes[0].contains("unknown until the infra plane is applied"));
    // Applying it stops before any remote step, exit 3, pointing at the infra plane.
    let err = target.ip().unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("apply the infra plane first"));

    // Apply the infra stage for real; now the same op gives the reserved IP.
    let mut ex = Executor::new(Goal::Apply, &secrets);
    let redact = crate::droplet::Redactor::new(&[], &secrets);
    let p = terraform::plan(&mut ex, &tf, &redact).unwrap();
    let summary = p.summary.clone().unwrap();
    assert!(summary.outputs_changed.iter().any(|o| o == "reserved_ip"));
    terraform::apply(&mut ex, &tf, p, false, &redact).unwrap();
    let after = droplet::resolve_address(&t, Some(&tf), &mut ex);
    assert_eq!(after.ip, Ok("192.0.2.44".parse().unwrap()));
    let target = Target::from_topology(&t, &after);
    assert_eq!(target.ssh.host, "192.0.2.44");
    let planned = droplet::plan(
        &target,
        &bundle,
        RemoteState::default(),
        Lease::for_this_process(),
        "me",
    );
    // The address is known now: no note says otherwise (the one left says apply waits for
    // the droplet's cloud-init first).
    assert!(
        !planned.plane.notes.iter().any(|n| n.contains("unknown")),
        "{:?}",
        planned.plane.notes
    );
    assert_eq!(
        planned.plane.ops[1].step,
        "wait for bootstrap (cloud-init status)"
    );
    assert!(planned
        .plane
        .ops
        .iter()
        .filter(|o| o.program == "curl")
        .all(|o| o.args.iter().any(|a| a.ends_with(":443:192.0.2.44"))));

    // doctor --online reads the same output through its own bounded probe.
    if program.file_name().is_some_and(|n| n == "terraform") {
        let ip = crate::doctor::droplet_address(&t, root, &crate::doctor::SystemProbe);
        assert_eq!(ip, Some("192.0.2.44".parse().unwrap()));
    }
}
