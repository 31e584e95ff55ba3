//! The plan is the program: for the same droplet state, the ops a real apply runs (as the
//! executor recorded them) are exactly the ops the dry run recorded, and those are the plan's
//! own ops plus the look at each route's container that belongs to its probe step. Proven on
//! the real sshd + Docker droplet of `support/droplet.rs`, in three states: a first release,
//! a changed release over it (base release, prune), and an unchanged one (nothing to do).
//!
//! A rollback (to release 1, after the three states) is held to the same rule: planned once
//! (`facade::plan_rollback`), its dry run and the real rollback walk the same driver, and
//! the ops they ran are equal.
//!
//! In-process through the façade (`alembic_deploy::facade`), so the dry run and the apply
//! walk one [`facade::Plan`] (same lease id, same ledger entry): the environment is a map given
//! to the façade, never `std::env::set_var`. A step retried under its policy (the CA fetch, a
//! probe and its look, while the edge starts) is counted once: the report lists each op of a
//! stage once, in the order it first ran.

mod support;

use std::collections::BTreeMap;

use alembic_deploy::facade::{self, Env, Goal, Op, Record, Selection, Stage};
use support::droplet::{world, World, CANARY, HOSTILE};

fn env(w: &World) -> Env {
    let vars: BTreeMap<String, String> = [
        (
            "ALEMBIC_SSH_CONFIG",
            w.path("ssh_config").display().to_string(),
        ),
        ("ALEMBIC_PROBE_TIMEOUT", "30".to_owned()),
        ("E2E_CANARY_TOKEN", CANARY.to_owned()),
        ("E2E_SECOND_SECRET", HOSTILE.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Env::with_vars(w.dir.path(), vars)
}

fn droplet_ops(r: &facade::Report) -> Vec<Op> {
    r.stages
        .iter()
        .find(|(s, _)| *s == Stage::Droplet)
        .map(|(_, ops)| ops.clone())
        .unwrap_or_default()
}

fn lines(ops: &[Op]) -> String {
    ops.iter()
        .map(|o| format!("{}: {o}\n", o.step))
        .collect::<String>()
}

/// Plan the droplet stage of the world's current config, dry-run it, apply it; assert the
/// three agree and return the planned release (None: nothing to do).
fn dry_run_then_apply(w: &World, when: &str) -> Option<u64> {
    let text = std::fs::read_to_string(w.path("alembic.toml")).unwrap();
    let loaded = alembic_config::load_str("alembic.toml", &text);
    let t = loaded.topology.expect("the world's config validates");
    let set = alembic_render::render(&t);
    let plan = facade::plan(&t, &set, Selection::Only(Stage::Droplet), env(w))
        .unwrap_or_else(|e| panic!("{when}: plan: {e}"));
    plan.close();
    let opts = facade::Options {
        allow_replace: false,
        interrupt: None,
    };
    let dry = facade::apply(&plan, Goal::DryRun, &mut Record::default(), &opts);
    assert!(dry.error.is_none(), "{when}: dry run: {:?}", dry.error);
    let mut rec = Record::default();
    let real = facade::apply(&plan, Goal::Apply, &mut rec, &opts);
    assert!(real.error.is_none(), "{when}: apply: {:?}", real.error);

    let (dry_ops, real_ops) = (droplet_ops(&dry), droplet_ops(&real));
    assert!(!dry_ops.is_empty(), "{when}: the dry run recorded nothing");
    assert_eq!(
        lines(&real_ops),
        lines(&dry_ops),
        "{when}: the apply ran other ops than the dry run recorded"
    );
    assert_eq!(real_ops, dry_ops, "{when}: same ops, field for field");
    // The dry run recorded every op once (it retries nothing).
    assert_eq!(dry.ran, dry_ops, "{when}");

    // The plan's ops are the dry run's, but for the look at each route's container, which
    // belongs to its probe step (it decides whether to probe again or roll back).
    let doc = plan.document();
    let planned = &doc.planes[0];
    assert_eq!(planned.plane, Stage::Droplet);
    let stepped: Vec<Op> = dry_ops
        .iter()
        .filter(|o| !o.step.starts_with("state of "))
        .cloned()
        .collect();
    assert_eq!(
        lines(&planned.ops),
        lines(&stepped),
        "{when}: the dry run walked other steps than the plan shows"
    );
    if planned.release.is_some() {
        let looks = dry_ops.len() - stepped.len();
        assert_eq!(looks, 2, "{when}: one look per route (api, web)");
        // Nothing a secret holds is in the ops (names only).
        let all = format!("{:?}", real.ran);
        assert!(!all.contains(CANARY), "{when}: a secret value in the ops");
    }
    planned.release
}

#[test]
fn the_ops_a_real_apply_runs_are_the_ops_the_dry_run_recorded() {
    let Some(w) = world("e2e_dry_run_matches_apply", "dry") else {
        return;
    };

    // A first release: no ledger yet.
    w.write_config("body v1", 200);
    assert_eq!(dry_run_then_apply(&w, "first release"), Some(1));
    assert_eq!(w.current(), 1);
    w.fetch_ca();
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1");

    // A changed release over it: measured against release 1, switching, recording, pruning.
    w.write_config("body v2", 200);
    assert_eq!(dry_run_then_apply(&w, "second release"), Some(2));
    assert_eq!(w.current(), 2);
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v2");

    // Unchanged: nothing to deploy, in the dry run and the apply alike.
    assert_eq!(dry_run_then_apply(&w, "unchanged"), None);
    assert_eq!(w.current(), 2);

    // A rollback is planned once and walked twice by the same driver: the ops the real
    // rollback runs are exactly the ops its dry run recorded (lease, restore, probes and their
    // looks, switch, ledger entry, release, close), and only the real one changes the droplet.
    let ledger_before = w.ledger();
    let text = std::fs::read_to_string(w.path("alembic.toml")).unwrap();
    let t = alembic_config::load_str("alembic.toml", &text)
        .topology
        .expect("the world's config validates");
    let rb = facade::plan_rollback(&t, env(&w), None).expect("plan the rollback");
    let dry = facade::run_rollback(&rb, Goal::DryRun, &mut Record::default())
        .unwrap_or_else(|e| panic!("rollback dry run: {e}"));
    assert_eq!(dry.to, 1, "the newest healthy release before current");
    assert_eq!(w.current(), 2, "a dry run changes nothing");
    assert_eq!(w.ledger(), ledger_before, "a dry run records nothing");
    let steps: Vec<&str> = dry.ops.iter().map(|o| o.step.as_str()).collect();
    for step in ["take lease", "docker compose up", "release lease"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    assert!(
        steps.iter().any(|s| s.starts_with("probe ")),
        "the dry run walks the probes: {steps:?}"
    );
    let real = facade::run_rollback(&rb, Goal::Apply, &mut Record::default())
        .unwrap_or_else(|e| panic!("rollback: {e}"));
    assert_eq!(real.to, 1);
    assert_eq!(
        lines(&real.ops),
        lines(&dry.ops),
        "the rollback ran other ops than its dry run recorded"
    );
    assert_eq!(real.ops, dry.ops, "rollback: same ops, field for field");
    assert_eq!(w.current(), 1);
    assert_eq!(w.get("api.e2e.test").unwrap(), "body v1");
}
