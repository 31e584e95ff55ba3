//! A provisioned droplet is bootstrapped by alembic's cloud-init, so `apply` waits for it to
//! finish (`cloud-init status`, polled over the same ssh) before the droplet stage deploys:
//!
//! - the plan of a provisioned topology shows the wait as a step, after the infra stage and
//!   first among the droplet's steps that reach the droplet (after reading its address from
//!   Terraform), and the dry run records it where the plan shows it;
//! - on the real sshd + Docker droplet of `support/droplet.rs` (its address from real Terraform
//!   state, the provider-free fixture standing in for the DigitalOcean apply), a cloud-init that
//!   reports an error stops the apply before the droplet stage touches anything (exit 3, with
//!   cloud-init's status in the message: no lease, no release directory, no ledger); one that
//!   reports "done with recoverable errors" (exit 2) or "done" lets the deploy go on; one still
//!   running at `ALEMBIC_BOOTSTRAP_TIMEOUT` stops it with the status it had.
//!
//! - the first run (the ledger has no release yet) ends with what the user must do outside
//!   alembic: point the domain's nameservers at DigitalOcean's. The lookup (`dig`, through the
//!   executor) asks a loopback port where nothing answers, so the note says it could not check;
//!   the apply still succeeds, and the next release prints no such note.
//!
//! `cloud-init` here is a stand-in on the sshd's PATH answering `status` from a file the test
//! writes: the real cloud-init run is covered by the VM test (`vm_bootstrap.rs`).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use alembic_deploy::facade::{self, Env, Goal, Record, Selection, Stage};
use support::droplet::{world, World, CANARY, HOSTILE};

const WAIT_STEP: &str = "wait for bootstrap (cloud-init status)";

fn env(w: &World) -> Env {
    let vars: BTreeMap<String, String> = [
        (
            "ALEMBIC_SSH_CONFIG",
            w.path("ssh_config").display().to_string(),
        ),
        ("ALEMBIC_PROBE_TIMEOUT", "30".to_owned()),
        ("ALEMBIC_BOOTSTRAP_TIMEOUT", "30".to_owned()),
        // No network here: dig asks a loopback port where no DNS server listens.
        (
            "ALEMBIC_DNS_SERVER",
            format!("127.0.0.1:{}", support::droplet::free_port()),
        ),
        ("E2E_CANARY_TOKEN", CANARY.to_owned()),
        ("E2E_SECOND_SECRET", HOSTILE.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Env::with_vars(w.dir.path(), vars)
}

/// The stand-in: `cloud-init status [--long]` prints a status like cloud-init's and exits with
/// cloud-init's code for it (0 done or running, 1 error, 2 done with recoverable errors).
fn install_cloud_init(w: &mut World) {
    let bin = w.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
[ "$1" = status ] || {{ echo "stand-in answers only status" >&2; exit 3; }}
state=$(cat '{state}')
case "$state" in
done) echo "status: done"; echo "extended_status: done"; exit 0 ;;
running) echo "status: running"; echo "extended_status: running"; exit 0 ;;
degraded) echo "status: done"; echo "extended_status: degraded done"
  echo "recoverable_errors:"; echo "WARNING:"; echo "  - apt mirror slow"; exit 2 ;;
*) echo "status: error"; echo "extended_status: error - done"
  echo "errors:"; echo "  - ('package_update_upgrade_install', 'E: Unable to locate package docker.io')"; exit 1 ;;
esac
"#,
        state = w.path("cloud-init-state").display()
    );
    let path = bin.join("cloud-init");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The server's PATH (sshd's SetEnv) starts with the stand-in's directory.
    let conf = std::fs::read_to_string(w.path("sshd_config")).unwrap();
    let conf = conf.replace("SetEnv PATH=", &format!("SetEnv PATH={}:", bin.display()));
    std::fs::write(w.path("sshd_config"), conf).unwrap();
    w.kill_sshd();
    w.start_sshd();
}

/// The world's config (as last written) for a droplet Terraform provisions: no
/// `droplet.address`, and what DigitalOcean needs to create one.
fn provisioned_config(w: &World) {
    let text = std::fs::read_to_string(w.path("alembic.toml")).unwrap();
    let provisioned = text.replace(
        "address     = \"127.0.0.1\"\n",
        "region = \"nyc3\"\nsize = \"s-1vcpu-2gb\"\nimage = \"ubuntu-24-04-x64\"\n\
         ssh_keys = [\"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa\"]\n",
    );
    assert_ne!(provisioned, text);
    std::fs::write(w.path("alembic.toml"), provisioned).unwrap();
}

/// The world's config without `droplet.address` (so the droplet is provisioned), rendered, and
/// Terraform state whose `reserved_ip` output is 127.0.0.1 (the provider-free fixture, applied
/// for real with the real `terraform`).
fn provision(w: &World, terraform: &Path) {
    w.write_config("body v1", 200);
    provisioned_config(w);
    let o = w.alembic().arg("render").output().unwrap();
    assert!(o.status.success(), "render: {o:?}");
    let fixture = w.path("fixture");
    std::fs::create_dir_all(&fixture).unwrap();
    std::fs::copy(
        alembic_testkit::workspace_root().join("tests/fixtures/terraform/provider-free/main.tf"),
        fixture.join("main.tf"),
    )
    .unwrap();
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"][..],
    ] {
        let o = Command::new(terraform)
            .arg(format!("-chdir={}", fixture.display()))
            .args(args)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("TF_VAR_reserved_ip", "127.0.0.1")
            .output()
            .unwrap();
        assert!(o.status.success(), "terraform {args:?}: {o:?}");
    }
    std::fs::copy(
        fixture.join("terraform.tfstate"),
        w.path("infra/terraform/terraform.tfstate"),
    )
    .unwrap();
}

fn topology(w: &World) -> (alembic_config::Topology, alembic_render::ArtifactSet) {
    let text = std::fs::read_to_string(w.path("alembic.toml")).unwrap();
    let t = alembic_config::load_str("alembic.toml", &text)
        .topology
        .expect("the provisioned config validates");
    assert!(t.droplet.is_provisioned());
    let set = alembic_render::render(&t);
    (t, set)
}

fn infos(rec: &Record) -> Vec<String> {
    rec.0
        .iter()
        .filter_map(|e| match e {
            facade::Event::Info { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn opts() -> facade::Options<'static> {
    facade::Options {
        allow_replace: false,
        interrupt: None,
    }
}

#[test]
fn apply_waits_for_the_droplets_bootstrap_and_stops_when_it_failed() {
    let Some(terraform) = alembic_testkit::tool("terraform") else {
        return;
    };
    let Some(mut w) = world("e2e_bootstrap_wait", "boot") else {
        return;
    };
    install_cloud_init(&mut w);
    provision(&w, &terraform);
    let (t, set) = topology(&w);

    // The plan of everything: infra, then the droplet, whose first step on the droplet is the
    // wait (after reading the address from Terraform), before the lease is taken.
    let plan = facade::plan(&t, &set, Selection::All, env(&w)).expect("plan");
    plan.close();
    let doc = plan.document();
    let stages: Vec<Stage> = doc.planes.iter().map(|p| p.plane).collect();
    assert_eq!(&stages[..2], &[Stage::Infra, Stage::Droplet], "{stages:?}");
    let steps: Vec<&str> = doc.planes[1].ops.iter().map(|o| o.step.as_str()).collect();
    assert_eq!(
        steps[..3],
        [
            "read the droplet address (terraform output)",
            WAIT_STEP,
            "take lease"
        ],
        "{steps:?}"
    );
    assert!(
        doc.planes[1]
            .notes
            .iter()
            .any(|n| n.contains("after this first release, apply looks up e2e.test's nameservers")),
        "{:?}",
        doc.planes[1].notes
    );
    let wait = &doc.planes[1].ops[1];
    assert!(!wait.mutating, "the wait changes nothing");
    assert_eq!(wait.program, "ssh");
    assert!(
        wait.command_line().contains("cloud-init status --long"),
        "{wait}"
    );
    assert!(
        doc.planes[1].notes.iter().any(|n| n.contains("cloud-init")),
        "the plan says why it waits: {:?}",
        doc.planes[1].notes
    );

    // The droplet stage alone (the infra stage would need DigitalOcean): the dry run records
    // the wait first, as the plan shows it.
    let plan = facade::plan(&t, &set, Selection::Only(Stage::Droplet), env(&w)).expect("plan");
    plan.close();
    let dry = facade::apply(&plan, Goal::DryRun, &mut Record::default(), &opts());
    assert!(dry.error.is_none(), "{:?}", dry.error);
    assert_eq!(dry.stages[0].0, Stage::Droplet);
    assert_eq!(dry.stages[0].1[0], plan.document().planes[0].ops[1]);
    assert_eq!(dry.stages[0].1[0].step, WAIT_STEP);

    // cloud-init still running at the limit (30 s here): the apply stops at the wait, exit 3,
    // saying so with the status it had.
    std::fs::write(w.path("cloud-init-state"), "running\n").unwrap();
    let real = facade::apply(&plan, Goal::Apply, &mut Record::default(), &opts());
    let err = real
        .error
        .as_ref()
        .expect("an unfinished bootstrap fails the apply");
    assert_eq!(real.exit_code(), 3, "{}", err.message);
    assert!(
        err.message
            .contains("cloud-init had not finished after 30 s")
            && err.message.contains("status: running"),
        "{}",
        err.message
    );
    assert!(!w.root().join("releases").exists());

    // cloud-init failed: the apply stops at the wait, exit 3, with cloud-init's own status;
    // nothing reached the droplet's root.
    std::fs::write(w.path("cloud-init-state"), "error\n").unwrap();
    let real = facade::apply(&plan, Goal::Apply, &mut Record::default(), &opts());
    let err = real
        .error
        .as_ref()
        .expect("a failed bootstrap fails the apply");
    assert_eq!(real.exit_code(), 3, "{}", err.message);
    assert!(
        err.message
            .contains("cloud-init reports the bootstrap failed (exit 1)")
            && err.message.contains("status: error")
            && err.message.contains("Unable to locate package docker.io"),
        "{}",
        err.message
    );
    let ran: Vec<&str> = real.ran.iter().map(|o| o.step.as_str()).collect();
    assert_eq!(ran, [WAIT_STEP], "nothing ran after the wait");
    for gone in ["lease.json", "ledger.json", "releases", "current"] {
        assert!(
            !w.root().join(gone).exists(),
            "{gone} exists after a failed bootstrap"
        );
    }

    // Done with recoverable errors (cloud-init 23.4+ exits 2): tolerated, with a warning,
    // and the deploy goes on: release 1 is live.
    std::fs::write(w.path("cloud-init-state"), "degraded\n").unwrap();
    let mut rec = Record::default();
    let real = facade::apply(&plan, Goal::Apply, &mut rec, &opts());
    assert!(real.error.is_none(), "{:?}", real.error);
    assert_eq!(real.stages[0].1[0].step, WAIT_STEP);
    assert_eq!(w.current(), 1);
    let warned = rec.0.iter().any(|e| {
        matches!(e, facade::Event::Warning { message }
            if message.contains("cloud-init finished with recoverable errors")
                && message.contains("apt mirror slow"))
    });
    assert!(warned, "the recoverable errors are shown as a warning");
    // The first release: what to do outside alembic, as a note (the lookup could not be
    // made here, which is no failure).
    let notes = infos(&rec);
    assert!(
        notes
            .iter()
            .any(|m| m.contains("could not check e2e.test's nameservers")
                && m.contains("ns1.digitalocean.com, ns2.digitalocean.com, ns3.digitalocean.com")),
        "{notes:?}"
    );

    // Done: the wait passes at once and the next release deploys over it.
    std::fs::write(w.path("cloud-init-state"), "done\n").unwrap();
    w.write_config("body v2", 200);
    provisioned_config(&w);
    let (t, set) = topology(&w);
    let plan = facade::plan(&t, &set, Selection::Only(Stage::Droplet), env(&w)).expect("plan");
    plan.close();
    let mut rec = Record::default();
    let real = facade::apply(&plan, Goal::Apply, &mut rec, &opts());
    assert!(real.error.is_none(), "{:?}", real.error);
    assert_eq!(w.current(), 2);
    // Not the first run: no nameserver note.
    let notes = infos(&rec);
    assert!(
        !notes.iter().any(|m| m.contains("nameservers")),
        "{notes:?}"
    );
}
