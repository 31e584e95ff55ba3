//! The droplet's remote scripts run by a real POSIX `sh`, locally: the exact string ssh would
//! hand the remote shell (the op's last argv word) is run with `sh -c`. Proves the lease is
//! taken by exactly one of many concurrent applies, that expiry is judged by the droplet's own
//! `date` (a stand-in `date` first on PATH plays the droplet's clock), that every takeover
//! raises the fencing token, that a holder that lost its lease changes nothing (exit 18 naming
//! the new holder), that the ledger is append-only, and that compose gets the release's secrets
//! in its environment, byte for byte, with no dotenv file read.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::droplet::{Address, Target};
use crate::exec::{shell_env_file, SecretSource};
use crate::lease::{self, Fence, Found, Lease};
use crate::ledger::{self, Ledger, Outcome, Release};
use crate::ops::{Op, Stdin};
use crate::ssh::SshTarget;

fn target() -> SshTarget {
    SshTarget {
        user: "deploy".into(),
        host: "203.0.113.20".into(),
        port: 22,
        config: None,
        control_dir: "/tmp/unused".into(),
    }
}

/// Run what the remote shell would run, with `path` first on PATH (stand-ins for `date` and
/// `docker`) and `now` as the droplet's clock when given.
fn run_with(op: &Op, path: Option<&Path>, now: Option<u64>) -> (i32, String, String) {
    let remote = op.args.last().unwrap();
    let mut c = Command::new("sh");
    c.arg("-c").arg(remote);
    if let Some(p) = path {
        let sys = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{sys}", p.display()));
    }
    if let Some(n) = now {
        c.env("FAKE_NOW", n.to_string());
    }
    let data = match &op.stdin {
        Stdin::Bytes { data } => data.clone(),
        _ => Vec::new(),
    };
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run_remote(op: &Op) -> (i32, String) {
    let (s, out, _) = run_with(op, None, None);
    (s, out)
}

/// A dir holding a `date` that prints `$FAKE_NOW` for `+%s` (the droplet's clock) and a
/// `docker` stand-in.
fn fake_clock(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exec(
        &bin.join("date"),
        "#!/bin/sh\nif [ \"$1\" = +%s ]; then echo \"$FAKE_NOW\"; else exec /bin/date \"$@\"; fi\n",
    );
    // No script here ever reaches the real docker engine.
    write_exec(&bin.join("docker"), "#!/bin/sh\nexit 99\n");
    bin
}

fn write_exec(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn lease_named(holder: &str, ttl: u64) -> Lease {
    let mut l = Lease::for_this_process();
    l.holder = holder.into();
    l.ttl = ttl;
    l
}

fn acquire(root: &str, l: &Lease, clock: &Path, now: u64) -> Found {
    let (status, out, err) = run_with(
        &lease::acquire_op(&target(), crate::stage::Stage::Droplet, root, l),
        Some(clock),
        Some(now),
    );
    let f = lease::interpret(status, &out);
    assert!(
        !matches!(f, Found::Unreadable(_)),
        "status {status}: {out} {err}"
    );
    f
}

fn granted(f: Found) -> (Lease, Option<Lease>) {
    match f {
        Found::Acquired { lease, took_over } => (lease, took_over),
        other => panic!("expected the lease, got {other:?}"),
    }
}

fn droplet_target(root: &str) -> Target {
    let mut t = alembic_config::default_topology();
    t.droplet.address = Some("203.0.113.20".parse().unwrap());
    let mut target = Target::from_topology(&t, &Address::configured(t.droplet.address.unwrap()));
    target.root = root.to_owned();
    target
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
            let op = lease::acquire_op(&ssh, crate::stage::Stage::Droplet, &root, l);
            std::thread::spawn(move || run_remote(&op))
        })
        .collect();
    let results: Vec<(i32, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<usize> = (0..8).filter(|&i| results[i].0 == 0).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let (winner, took_over) = granted(lease::interpret(0, &results[winners[0]].1));
    assert_eq!(took_over, None);
    assert_eq!(winner.id, leases[winners[0]].id);
    assert_eq!(
        winner.token, 1,
        "the first lease ever taken carries token 1"
    );
    for (status, out) in results.iter().filter(|r| r.0 != 0) {
        assert_eq!(*status, lease::HELD);
        match lease::interpret(*status, out) {
            Found::Live(l) => assert_eq!(l, winner),
            other => panic!("a loser must see the winner's live lease, got {other:?}"),
        }
    }
    // Only the holder's lease is removed by a release.
    let loser = &leases[(winners[0] + 1) % 8];
    let mut loser_fence = loser.fence();
    loser_fence.token = Some(1);
    run_remote(&lease::release_op(
        &ssh,
        crate::stage::Stage::Droplet,
        &root,
        &loser_fence,
    ));
    assert!(Path::new(&root).join("lease.json").exists());
    run_remote(&lease::release_op(
        &ssh,
        crate::stage::Stage::Droplet,
        &root,
        &winner.fence(),
    ));
    assert!(!Path::new(&root).join("lease.json").exists());
    // No temp files are left behind: the lock file and the token counter stay.
    let mut left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".lease.lock", "lease.gen"]);
    assert_eq!(
        std::fs::read_to_string(Path::new(&root).join("lease.gen")).unwrap(),
        "1\n"
    );
}

/// The lease was judged expired by the challenger's clock, and never renewed; a takeover kept
/// no token, so a stalled holder went on switching `current` and writing the ledger.
#[test]
fn expiry_is_the_droplets_clock_and_a_stalled_holder_is_fenced_out() {
    let dir = tempfile::tempdir().unwrap();
    let clock = fake_clock(dir.path());
    let root = dir.path().join("droplet");
    let root = root.to_str().unwrap().to_owned();
    std::fs::create_dir_all(format!("{root}/releases/1")).unwrap();
    let ssh = target();

    // A takes the lease at droplet time 1000 for 5 s. The applying machine's clock (today's
    // date, far past 1005) plays no part: at droplet time 1004 A's lease is live.
    let a_req = lease_named("a@laptop", 5);
    let (a, _) = granted(acquire(&root, &a_req, &clock, 1000));
    assert_eq!((a.token, a.started, a.expires), (1, 1000, 1005));
    let b_req = lease_named("b@ci", 5);
    match acquire(&root, &b_req, &clock, 1004) {
        Found::Live(l) => assert_eq!(l, a),
        other => panic!("A's lease is live at droplet time 1004: {other:?}"),
    }
    // A renews at 1003: its lease now runs to 1008, by the droplet's clock.
    let renew_a = lease::renew_op(&ssh, crate::stage::Stage::Droplet, &root, &a.fence());
    assert_eq!(run_with(&renew_a, Some(&clock), Some(1003)).0, 0);
    assert!(matches!(
        acquire(&root, &b_req, &clock, 1007),
        Found::Live(_)
    ));

    // A stalls; at 1008 B takes over, with the next token.
    let (b, took_over) = granted(acquire(&root, &b_req, &clock, 1008));
    assert_eq!(took_over.map(|l| l.id), Some(a.id.clone()));
    assert_eq!((b.token, b.expires), (2, 1013));
    assert_eq!(
        std::fs::read_to_string(format!("{root}/lease.gen")).unwrap(),
        "2\n"
    );

    // A wakes up: every fenced step it tries is refused, naming B, and changes nothing.
    let t = droplet_target(&root);
    let ledger_before = Ledger::parse("").unwrap();
    for op in [
        t.link_op(1, "current", &a.fence()),
        t.up_op(&a.fence()),
        t.down_op(&a.fence()),
        t.ledger_op(&ledger_before, None, Some(1), &a.fence()),
        t.prepare_op(2, &a.fence()),
        lease::renew_op(&ssh, crate::stage::Stage::Droplet, &root, &a.fence()),
    ] {
        let (status, out, _) = run_with(&op, Some(&clock), Some(1009));
        assert_eq!(status, lease::LOST, "{}: {out}", op.step);
        let who = lease::now_held_by(&out);
        assert!(
            who.starts_with("b@ci (pid ") && who.contains("token 2"),
            "{who}"
        );
    }
    assert!(!Path::new(&root).join("current").exists());
    assert!(!Path::new(&root).join("ledger.json").exists());
    assert!(!Path::new(&root).join("releases/2").exists());
    // A's release removes nothing: the lease is B's.
    run_remote(&lease::release_op(
        &ssh,
        crate::stage::Stage::Droplet,
        &root,
        &a.fence(),
    ));
    assert!(Path::new(&root).join("lease.json").exists());

    // B's steps run.
    let (status, _, err) = run_with(
        &t.link_op(1, "current", &b.fence()),
        Some(&clock),
        Some(1010),
    );
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        std::fs::read_link(Path::new(&root).join("current")).unwrap(),
        Path::new("releases/1")
    );
    // B's renewal pushes the expiry to the droplet's now + TTL, in place.
    let renew_b = lease::renew_op(&ssh, crate::stage::Stage::Droplet, &root, &b.fence());
    assert_eq!(run_with(&renew_b, Some(&clock), Some(2000)).0, 0);
    let rec: Lease =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/lease.json")).unwrap())
            .unwrap();
    assert_eq!((rec.token, rec.started, rec.expires), (2, 1008, 2005));
    // After B releases, the next lease gets token 3: tokens never go back.
    run_remote(&lease::release_op(
        &ssh,
        crate::stage::Stage::Droplet,
        &root,
        &b.fence(),
    ));
    let (c, _) = granted(acquire(&root, &lease_named("c@x", 5), &clock, 2001));
    assert_eq!(c.token, 3);
}

/// The exact scripts: data only ever arrives as `$1..$n`, and the fence runs first.
#[test]
fn fenced_scripts_are_exact() {
    let ssh = target();
    let fence = Fence {
        token: Some(7),
        id: "42-1700000000-5".into(),
        ttl: 30,
    };
    let op = lease::renew_op(&ssh, crate::stage::Stage::Droplet, "/opt/al'embic", &fence);
    let words = shlex::split(op.args.last().unwrap()).unwrap();
    let expected_script = r#"r=$1; tok=$2; id=$3; ttl=$4; shift 4
exec 9>>"$r/.lease.lock" || exit 1
if ! flock -w 60 9; then echo "the lease lock $r/.lease.lock stayed busy for 60 s" >&2; exit 1; fi
h=$(cat "$r/lease.json" 2>/dev/null || true)
case "$h" in
"{\"token\":$tok,\"id\":\"$id\","*) ;;
*) printf '%s\n' "$h"; exit 18 ;;
esac
renew() {
  now=$(date +%s)
  printf '%s\n' "$h" | sed "s/^\({\"token\":[0-9]*,\"id\":\"[^\"]*\",\"started\":[0-9]*,\"expires\":\)[0-9]*/\1$((now + ttl))/" > "$r/lease.json"
}
renew"#;
    assert_eq!(
        words,
        [
            "sh",
            "-c",
            expected_script,
            "alembic",
            "/opt/al'embic",
            "7",
            "42-1700000000-5",
            "30"
        ]
    );
    let t = droplet_target("/opt/alembic");
    let l = t.ledger_op(&Ledger::parse("").unwrap(), Some("ab12"), Some(4), &fence);
    let words = shlex::split(l.args.last().unwrap()).unwrap();
    assert_eq!(
        words[2],
        lease::fenced(
            r#"set -e
l="$r/ledger.json"
have=none
if [ -e "$l" ]; then have=$(sha256sum < "$l" | cut -d ' ' -f 1); fi
if [ "$have" != "$1" ]; then echo "ledger.json changed since this apply read it (sha256 $have, read as $1): nothing was recorded" >&2; exit 1; fi
if [ -n "$2" ] && [ -e "$l" ] && grep -q "\"number\": $2," "$l"; then echo "release $2 is already in ledger.json: entries are append-only and a release number is never reused" >&2; exit 1; fi
umask 022
cat > "$r/.ledger.json.tmp"
mv "$r/.ledger.json.tmp" "$l""#
        )
    );
    assert_eq!(
        words[3..],
        [
            "alembic",
            "/opt/alembic",
            "7",
            "42-1700000000-5",
            "30",
            "ab12",
            "4"
        ]
    );
}

fn release(n: u64, outcome: Outcome) -> Release {
    Release {
        number: n,
        artifacts: Default::default(),
        images: vec![],
        pins: Default::default(),
        secrets: vec![],
        time: ledger::rfc3339(0),
        outcome,
        by: "t@h".into(),
        note: None,
        volumes: vec![],
    }
}

/// A stalled apply once wrote its plan-time ledger over the one another apply had written.
#[test]
fn the_ledger_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = fake_clock(dir.path());
    let root = dir.path().to_str().unwrap().to_owned();
    let (l, _) = granted(acquire(&root, &lease_named("a@h", 60), &clock, 10));
    let t = droplet_target(&root);
    let write = |ledger: &Ledger, base: Option<&str>, new: Option<u64>| {
        let op = t.ledger_op(ledger, base, new, &l.fence());
        let (s, _, err) = run_with(&op, Some(&clock), Some(11));
        (s, err)
    };
    let mut one = Ledger::parse("").unwrap();
    one.current = Some(1);
    one.releases.push(release(1, Outcome::Deployed));
    assert_eq!(write(&one, None, Some(1)).0, 0);
    let sha1 = ledger::sha256_hex(&std::fs::read(format!("{root}/ledger.json")).unwrap());
    // Written over a ledger it did not read: refused.
    let (s, err) = write(&one, None, Some(1));
    assert_eq!(s, 1);
    assert!(
        err.contains("ledger.json changed since this apply read it"),
        "{err}"
    );
    // A number already recorded: refused, even over the ledger it read.
    let mut again = one.clone();
    again.releases.push(release(1, Outcome::Failed));
    let (s, err) = write(&again, Some(&sha1), Some(1));
    assert_eq!(s, 1);
    assert!(err.contains("release 1 is already in ledger.json"), "{err}");
    // Release 12 is not release 1.
    let mut two = one.clone();
    two.releases.push(release(12, Outcome::Deployed));
    assert_eq!(write(&two, Some(&sha1), Some(12)).0, 0);
    let now = Ledger::parse(&std::fs::read_to_string(format!("{root}/ledger.json")).unwrap());
    assert_eq!(now.unwrap(), two);
    // A rollback entry repeats a number by design: only the sha is held.
    let sha2 = ledger::sha256_hex(&std::fs::read(format!("{root}/ledger.json")).unwrap());
    let mut back = two.clone();
    back.releases.push(release(1, Outcome::RolledBack));
    assert_eq!(write(&back, Some(&sha2), None).0, 0);
    // A release dir is never made twice.
    let prep = t.prepare_op(12, &l.fence());
    assert_eq!(run_with(&prep, Some(&clock), Some(12)).0, 0);
    let (s, _, err) = run_with(&prep, Some(&clock), Some(12));
    assert_eq!(s, 1);
    assert!(err.contains("release numbers are never reused"), "{err}");
}

struct Map(HashMap<String, String>);
impl SecretSource for Map {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Compose once read secrets through its dotenv parser, which changed them.
#[test]
fn compose_gets_secrets_in_its_environment_and_reads_no_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let clock = fake_clock(dir.path());
    // A stand-in `docker` records its argv and the secret variable it was given.
    write_exec(
        &clock.join("docker"),
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$OUT/args\"\nprintf '%s' \"${ALEMBIC_SECRET_HOSTILE-unset}\" > \"$OUT/value\"\n",
    );
    let root = dir.path().join("droplet");
    let root_s = root.to_str().unwrap().to_owned();
    let (l, _) = granted(acquire(&root_s, &lease_named("a@h", 60), &clock, 10));
    std::fs::create_dir_all(root.join("releases/1")).unwrap();
    std::os::unix::fs::symlink("releases/1", root.join("active")).unwrap();
    let hostile =
        "  Pa$$w0rd$HOME #x 'sq' \"dq\" back\\slash\\\\ ${OTHER} $(id) `id` a=b é\n2nd\t ";
    let secrets = Map(HashMap::from([("HOSTILE".to_owned(), hostile.to_owned())]));
    let env = shell_env_file(&["HOSTILE".to_owned()], &secrets).unwrap();
    std::fs::write(root.join("releases/1/.env"), env).unwrap();
    let t = droplet_target(&root_s);
    let up = t.up_op(&l.fence());
    let run = |op: &Op| {
        let remote = op.args.last().unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg(remote)
            .env(
                "PATH",
                format!("{}:{}", clock.display(), std::env::var("PATH").unwrap()),
            )
            .env("FAKE_NOW", "20")
            .env("OUT", dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            std::fs::read_to_string(dir.path().join("args")).unwrap(),
            std::fs::read_to_string(dir.path().join("value")).unwrap(),
        )
    };
    let (args, value) = run(&up);
    assert_eq!(value, hostile, "compose must see the value byte for byte");
    let active = format!("{root_s}/active");
    assert_eq!(
        args,
        format!(
            "compose\n--env-file\n/dev/null\n-p\nalembic\n--project-directory\n{active}\n-f\n{active}/compose.yaml\nup\n-d\n--remove-orphans\n--wait\n--wait-timeout\n120\n"
        )
    );
    // The fenced compose step renewed the lease (droplet time 20 + TTL 60).
    let rec: Lease =
        serde_json::from_str(&std::fs::read_to_string(root.join("lease.json")).unwrap()).unwrap();
    assert_eq!(rec.expires, 80);
    // A dotenv `.env` from an older alembic is never sourced: compose reads it as before.
    std::fs::write(root.join("releases/1/.env"), "HOSTILE=$(touch pwned)\n").unwrap();
    let (args, value) = run(&up);
    assert_eq!(value, "unset");
    assert!(args.starts_with("compose\n-p\nalembic\n"), "{args}");
    assert!(!root.join("pwned").exists() && !Path::new("pwned").exists());
}
