//! Three "droplets" behind a load balancer for the fleet tests (`e2e_rolling.rs`,
//! `e2e_fleet_daytwo.rs`): ONE sshd of a [`World`] listening on 127.0.0.2, 127.0.0.3 and
//! 127.0.0.4 (`ListenAddress` three times), named in `droplet.addresses`. Each droplet keeps
//! its own root (`<root>/<address>`), runs its own compose project (`<project>-<address>`) and
//! binds its edge to its own loopback address; they share one Docker engine and one kernel.
//!
//! [`fleet_world`] builds the world, moves its sshd onto the three addresses and returns a
//! [`Guard`] that removes the three compose projects (and stops a stand-in balancer, when a
//! test started one) even when an assertion failed; it must be dropped before the world.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::droplet::{run_bounded, world, World};

pub const DROPLETS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// Stops the stand-in balancer and removes the droplets' compose projects (containers,
/// networks, volumes), even when an assertion failed. Dropped before the world.
pub struct Guard {
    pub projects: Vec<String>,
    pub lb: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.lb.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in &self.projects {
            alembic_testkit::sweep::remove_compose_project(p);
        }
    }
}

/// The world (None when a part is missing: see [`world`]) with its sshd on the three
/// droplets' addresses, and the guard of their compose projects (recorded for the sweep).
pub fn fleet_world(test: &str, tag: &str) -> Option<(World, Guard)> {
    let mut w = world(test, tag)?;
    let guard = Guard {
        projects: DROPLETS.iter().map(|a| project_of(&w, a)).collect(),
        lb: None,
    };
    for p in &guard.projects {
        w.record.add("project", p);
    }
    listen_on_droplets(&mut w);
    Some((w, guard))
}

/// Droplet `ip`'s compose project.
pub fn project_of(w: &World, ip: &str) -> String {
    format!("{}-{}", w.project, ip.replace('.', "-"))
}

/// Droplet `ip`'s root (its releases, ledger, lease and drain marker).
pub fn root_of(w: &World, ip: &str) -> PathBuf {
    w.root().join(ip)
}

pub fn ledger(w: &World, ip: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root_of(w, ip).join("ledger.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The release droplet `ip`'s `current` link points at.
pub fn current_link(w: &World, ip: &str) -> u64 {
    let link = std::fs::read_link(root_of(w, ip).join("current")).unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// One sshd on the three addresses instead of the world's 127.0.0.1, with the client config
/// and known_hosts to match.
pub fn listen_on_droplets(w: &mut World) {
    w.kill_sshd();
    let cfg = std::fs::read_to_string(w.path("sshd_config")).unwrap();
    let listen: String = DROPLETS
        .iter()
        .map(|a| format!("ListenAddress {a}\n"))
        .collect();
    let cfg = cfg.replace("ListenAddress 127.0.0.1\n", &listen);
    std::fs::write(w.path("sshd_config"), cfg).unwrap();
    let host_pub = std::fs::read_to_string(w.path("host_key.pub")).unwrap();
    let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let known: String = DROPLETS
        .iter()
        .map(|a| format!("[{a}]:{} {} {}\n", w.sshd_port, key[0], key[1]))
        .collect();
    std::fs::write(w.path("known_hosts"), known).unwrap();
    std::fs::write(
        w.path("ssh_config"),
        format!(
            "Host {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             StrictHostKeyChecking yes\n",
            DROPLETS.join(" "),
            w.path("client_key").display(),
            w.path("known_hosts").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(w.path("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sshd");
    if let Some(start) = alembic_testkit::sweep::process_start(child.id()) {
        w.record.add("process", &format!("{}:{start}", child.id()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for a in DROPLETS {
        while TcpStream::connect((a, w.sshd_port)).is_err() {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("sshd exited at start: {s}");
            }
            assert!(Instant::now() < deadline, "sshd did not listen on {a}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    w.sshd = Some(child);
}

/// The config: the world's, on three existing servers behind a balancer with short (but
/// DigitalOcean-valid) health check timing. `api_cmd` is what `api` runs; it mounts `store`.
pub fn config(w: &World, api_cmd: &[&str]) -> String {
    let text = w.config_with(&w.image, api_cmd, "");
    let addresses: Vec<String> = DROPLETS.iter().map(|a| format!("{a:?}")).collect();
    let text = text.replace(
        "address     = \"127.0.0.1\"\n",
        &format!("addresses   = [{}]\n", addresses.join(", ")),
    );
    let text = text.replace(
        "secrets  = [\"E2E_CANARY_TOKEN\"]\n",
        "secrets  = [\"E2E_CANARY_TOKEN\"]\nvolumes  = [\"store:/srv/store\"]\n",
    );
    format!(
        "{text}\n[droplet.lb]\ntls = \"terminate\"\nhealth = \"/healthz\"\n\
         check_interval_seconds = 3\nresponse_timeout_seconds = 3\nunhealthy_threshold = 2\n\
         healthy_threshold = 2\n\n[droplet.rollout]\nmax_unavailable = 1\n\
         on_failure = \"rollback-all\"\n"
    )
}

pub fn write_config(w: &World, api_cmd: &[&str]) {
    std::fs::write(w.path("alembic.toml"), config(w, api_cmd)).unwrap();
}

/// The api stub's command: answer 200 with `body`.
pub fn respond(body: &str) -> Vec<String> {
    World::api_cmd(body, 200)
}

/// `alembic` with the fleet's probe timeout: three droplets' containers on one shared machine
/// answer slowly under load, so the probes get more time than the single-droplet tests give.
pub fn alembic(w: &World) -> Command {
    let mut c = w.alembic();
    c.env("ALEMBIC_PROBE_TIMEOUT", "30");
    c
}

/// `alembic apply --yes`, bounded, its output recorded for the leak check.
pub fn apply(w: &mut World) -> std::process::Output {
    let o = run_bounded(
        alembic(w).args(["apply", "--yes"]),
        Duration::from_secs(600),
    );
    w.record(&o);
    o
}

/// `alembic ARGS`, bounded, its output recorded for the leak check.
pub fn run(w: &mut World, args: &[&str]) -> std::process::Output {
    let o = run_bounded(alembic(w).args(args), Duration::from_secs(600));
    w.record(&o);
    o
}
