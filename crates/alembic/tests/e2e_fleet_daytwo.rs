//! End to end: day two on three "droplets" behind a load balancer, on the real sshd and the
//! real Docker engine (the fleet of `support/fleet.rs`: one sshd on 127.0.0.2-4, one compose
//! project and one root per droplet). One fleet, set up once, serves every step:
//!
//! - release 1, then release 2, rolled out by `apply`;
//! - `status` reports every droplet (human: one header each; JSON: the `droplets` array, each
//!   workload tagged with its droplet) and exits 0; `status --droplet` reports one;
//! - `exec --droplet` runs in that droplet's own container (its hostname is the container's
//!   ID), the secret's value withheld; `logs --droplet` reads that droplet's container;
//! - a container stopped on one droplet is drift there only, and `status` exits 1;
//! - `rollback --droplet 127.0.0.2 --to 1` rolls that droplet alone back, drained and put
//!   back; `rollback --to 7` (a release no droplet has) is refused with exit 1 before any
//!   change; the fleet's `rollback --to 1` (a dry run first, which changes nothing) then rolls
//!   the two others back one at a time and leaves the first alone; the stopped container runs
//!   again and `status` says release 1 everywhere, no drift;
//! - no secret value appears in anything alembic printed or wrote outside the `.env` files.
//!
//! Every command is bounded in time; the guard removes the three compose projects even when
//! an assertion failed.

mod support;

use std::process::Command;

use support::droplet::{code, ok, text, CANARY};
use support::fleet::{
    apply, current_link, fleet_world, ledger, project_of, respond, root_of, run, write_config,
    DROPLETS,
};
use support::ledger::outcomes;

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(o)))
}

/// The running container of `service` in droplet `ip`'s compose project.
fn container(w: &support::droplet::World, ip: &str, service: &str) -> String {
    ok(Command::new("docker").args([
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.compose.project={}", project_of(w, ip)),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ]))
    .trim()
    .to_owned()
}

#[test]
fn status_logs_exec_and_rollback_on_a_fleet() {
    let Some((mut w, _guard)) = fleet_world("status_logs_exec_and_rollback_on_a_fleet", "fday")
    else {
        return;
    };
    for body in ["api v1", "api v2"] {
        let cmd = respond(body);
        write_config(&w, &cmd.iter().map(String::as_str).collect::<Vec<_>>());
        let o = apply(&mut w);
        assert_eq!(code(&o), 0, "{body}:\n{}", text(&o));
    }
    for a in DROPLETS {
        assert_eq!(current_link(&w, a), 2, "{a}");
    }

    // Every droplet's status, each under its own header.
    let o = run(&mut w, &["status"]);
    assert_eq!(code(&o), 0, "status:\n{}", text(&o));
    let human = String::from_utf8_lossy(&o.stdout).into_owned();
    for a in DROPLETS {
        assert!(
            human.contains(&format!("droplet {a}: release 2 is current")),
            "{human}"
        );
    }
    assert_eq!(human.matches("  api ").count(), 3, "{human}");
    let o = run(&mut w, &["status", "--json"]);
    assert_eq!(code(&o), 0, "status --json:\n{}", text(&o));
    let v = json(&o);
    assert_eq!(v["release"], 2);
    assert_eq!(v["drift"], false);
    let droplets = v["droplets"].as_array().unwrap();
    assert_eq!(droplets.len(), 3, "{v}");
    for (d, a) in droplets.iter().zip(DROPLETS) {
        assert_eq!(d["address"], a);
        assert_eq!(d["release"], 2);
        let api = d["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workload"] == "api")
            .unwrap();
        assert_eq!(api["state"], "running", "{a}: {d}");
    }
    // The flat list keeps every droplet's workloads, each tagged with its droplet.
    let flat = v["workloads"].as_array().unwrap();
    assert_eq!(flat.len(), 9, "edge, api and web on three droplets: {v}");
    assert!(flat.iter().all(|x| x["droplet"].is_string()), "{v}");
    let o = run(&mut w, &["status", "--json", "--droplet", DROPLETS[1]]);
    assert_eq!(code(&o), 0, "status --droplet:\n{}", text(&o));
    let one = json(&o);
    assert_eq!(one["droplets"].as_array().unwrap().len(), 1);
    assert_eq!(one["droplets"][0]["address"], DROPLETS[1]);

    // exec and logs on the chosen droplet: its own container answers.
    let o = run(
        &mut w,
        &[
            "exec",
            "api",
            "--droplet",
            DROPLETS[1],
            "--",
            "caddy",
            "environ",
        ],
    );
    assert_eq!(code(&o), 0, "exec:\n{}", text(&o));
    let env = String::from_utf8_lossy(&o.stdout).into_owned();
    let id = container(&w, DROPLETS[1], "api");
    assert!(
        env.contains(&format!("HOSTNAME={}", &id[..12])),
        "the container of droplet {} answered: {env}",
        DROPLETS[1]
    );
    assert!(
        env.contains("E2E_CANARY_TOKEN=[E2E_CANARY_TOKEN: redacted]") && !env.contains(CANARY),
        "{env}"
    );
    let o = run(
        &mut w,
        &["logs", "api", "--droplet", DROPLETS[2], "--tail", "50"],
    );
    assert_eq!(code(&o), 0, "logs:\n{}", text(&o));
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !logs.trim().is_empty(),
        "the api container's logs are empty"
    );

    // A container stopped on one droplet is that droplet's drift, and the fleet's exit 1.
    let stopped = container(&w, DROPLETS[2], "api");
    ok(Command::new("docker").args(["stop", "-t", "1", &stopped]));
    let o = run(&mut w, &["status", "--json"]);
    assert_eq!(code(&o), 1, "drift:\n{}", text(&o));
    let v = json(&o);
    assert_eq!(v["drift"], true);
    let drift: Vec<bool> = v["droplets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["drift"].as_bool().unwrap())
        .collect();
    assert_eq!(drift, [false, false, true], "{v}");

    // One droplet back to release 1, alone, drained and put back.
    let o = run(
        &mut w,
        &["rollback", "--droplet", DROPLETS[0], "--to", "1", "--yes"],
    );
    assert_eq!(code(&o), 0, "rollback --droplet:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for step in ["take out of the balancer", "put back in the balancer"] {
        assert!(err.contains(&format!("{}: {step}", DROPLETS[0])), "{err}");
    }
    assert_eq!(current_link(&w, DROPLETS[0]), 1);
    assert_eq!(ledger(&w, DROPLETS[0])["current"], 1);
    assert!(!root_of(&w, DROPLETS[0]).join("drain/drained").exists());
    for a in &DROPLETS[1..] {
        assert_eq!(current_link(&w, a), 2, "{a} is left alone");
    }

    // A release one droplet does not have refuses the fleet's rollback before any change.
    let before: Vec<Vec<u8>> = DROPLETS
        .iter()
        .map(|a| std::fs::read(root_of(&w, a).join("ledger.json")).unwrap())
        .collect();
    let unchanged = |w: &support::droplet::World| {
        for (a, b) in DROPLETS.iter().zip(&before) {
            assert_eq!(
                &std::fs::read(root_of(w, a).join("ledger.json")).unwrap(),
                b,
                "{a}"
            );
            assert!(!root_of(w, a).join("lease.json").exists(), "{a}");
            assert!(!root_of(w, a).join("drain/drained").exists(), "{a}");
        }
    };
    let o = run(&mut w, &["rollback", "--to", "7", "--yes"]);
    assert_eq!(code(&o), 1, "rollback to a missing release:\n{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing was changed on any droplet"),
        "{}",
        text(&o)
    );
    unchanged(&w);

    // The fleet to release 1: a dry run says where each droplet goes and changes nothing.
    let o = run(&mut w, &["rollback", "--to", "1", "--json"]);
    assert_eq!(code(&o), 0, "rollback dry run:\n{}", text(&o));
    let v = json(&o);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["to"], 1);
    let to: Vec<(String, u64)> = v["droplets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["droplet"].as_str().unwrap().to_owned(),
                d["to"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(to, DROPLETS.map(|a| (a.to_owned(), 1)), "{v}");
    unchanged(&w);
    let o = run(&mut w, &["rollback", "--to", "1", "--yes"]);
    assert_eq!(code(&o), 0, "rollback of the fleet:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains(&format!(
            "droplet {}: release 1 is already current",
            DROPLETS[0]
        )),
        "{err}"
    );
    // One droplet at a time: the second is back in the balancer before the third leaves it.
    let back = err
        .find(&format!("{}: put back in the balancer", DROPLETS[1]))
        .expect("the second droplet is put back");
    let out = err
        .find(&format!("{}: take out of the balancer", DROPLETS[2]))
        .expect("the third droplet is taken out");
    assert!(back < out, "{err}");
    for a in DROPLETS {
        assert_eq!(current_link(&w, a), 1, "{a}");
        assert_eq!(ledger(&w, a)["current"], 1, "{a}");
        assert!(!root_of(&w, a).join("drain/drained").exists(), "{a}");
        assert!(!root_of(&w, a).join("lease.json").exists(), "{a}");
    }
    let rolled_back = |a: &str| {
        outcomes(&ledger(&w, a))
            .iter()
            .filter(|(n, o)| *n == 1 && o == "rolled_back")
            .count()
    };
    assert_eq!(
        DROPLETS.map(rolled_back),
        [1, 1, 1],
        "each droplet recorded its rollback once"
    );
    // The stopped container runs again; every droplet is on release 1, no drift.
    let o = run(&mut w, &["status", "--json"]);
    assert_eq!(code(&o), 0, "status after the rollback:\n{}", text(&o));
    let v = json(&o);
    assert_eq!(v["release"], 1, "{v}");
    assert_eq!(v["drift"], false, "{v}");
    w.assert_no_leaks();
}
