//! The droplet's remote scripts run by a real POSIX `sh`, locally: the exact string ssh would
//! hand the remote shell (the op's last argv word) is run with `sh -c`. Proves the lease is
//! taken by exactly one of many concurrent applies, that a holder record survives quoting, and
//! that releasing removes only our own lease.

use std::process::Command;

use alembic_deploy::lease::{self, Found, Lease};
use alembic_deploy::ledger::now_epoch;
use alembic_deploy::ops::Op;
use alembic_deploy::ssh::SshTarget;

fn target() -> SshTarget {
    SshTarget {
        user: "deploy".into(),
        host: "203.0.113.20".into(),
        port: 22,
        config: None,
        control_dir: "/tmp/unused".into(),
    }
}

/// Run what the remote shell would run.
fn run_remote(op: &Op) -> (i32, String) {
    let remote = op.args.last().unwrap();
    let o = Command::new("sh").arg("-c").arg(remote).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn exactly_one_of_many_concurrent_applies_takes_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    // A root with a space and a quote: the scripts take data only as "$1".
    let root = dir.path().join("opt/al'embic root");
    let root = root.to_str().unwrap().to_owned();
    let ssh = target();
    let leases: Vec<Lease> = (0..8)
        .map(|i| {
            let mut l = Lease::for_this_process();
            l.id = format!("{}-{i}", l.id);
            l
        })
        .collect();
    let threads: Vec<_> = leases
        .iter()
        .map(|l| {
            let op = lease::acquire_op(&ssh, "droplet", &root, l);
            std::thread::spawn(move || run_remote(&op))
        })
        .collect();
    let results: Vec<(i32, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<usize> = (0..8).filter(|&i| results[i].0 == 0).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = &leases[winners[0]];
    for (status, out) in results.iter().filter(|r| r.0 != 0) {
        match lease::interpret(*status, out, now_epoch()) {
            Found::Live(l) => assert_eq!(&l, winner),
            other => panic!("a loser must see the winner's live lease, got {other:?}"),
        }
    }
    // Only the holder's record is removed by a release.
    let loser = &leases[(winners[0] + 1) % 8];
    run_remote(&lease::remove_if_op(
        &ssh,
        "droplet",
        "release",
        &root,
        &loser.record(),
    ));
    assert!(std::path::Path::new(&root).join("lease.json").exists());
    run_remote(&lease::remove_if_op(
        &ssh,
        "droplet",
        "release",
        &root,
        &winner.record(),
    ));
    assert!(!std::path::Path::new(&root).join("lease.json").exists());
    // No temp files are left behind.
    let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_expired_lease_is_reported_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let ssh = target();
    let mut old = Lease::for_this_process();
    old.expires = 1;
    assert_eq!(
        run_remote(&lease::acquire_op(&ssh, "droplet", &root, &old)).0,
        0
    );
    let new = Lease::for_this_process();
    let (status, out) = run_remote(&lease::acquire_op(&ssh, "droplet", &root, &new));
    assert_eq!(status, lease::HELD);
    let Found::Expired { lease: seen, raw } = lease::interpret(status, &out, now_epoch()) else {
        panic!("expected an expired lease");
    };
    assert_eq!(seen, old);
    run_remote(&lease::remove_if_op(
        &ssh,
        "droplet",
        "take over",
        &root,
        &raw,
    ));
    assert_eq!(
        run_remote(&lease::acquire_op(&ssh, "droplet", &root, &new)).0,
        0
    );
}
