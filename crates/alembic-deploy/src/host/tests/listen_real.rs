//! The host listen check against real processes: a `python3 -m http.server` listening on every
//! interface or on loopback, checked by PID through the real executor with the real `ss` and
//! `lsof` (the same ops host apply runs after starting a daemon; systemd and launchd themselves
//! cannot run here, so the PID is given instead of looked up).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::exec::{Executor, Goal, SecretSource};
use crate::host::listen::{ListenCheck, PidSource, SocketTool};
use crate::host::{self, HostEnv, HostError, Step};
use crate::ops::Op;

struct NoSecrets;
impl SecretSource for NoSecrets {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

/// A child process killed and reaped when the test ends, pass or fail.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `python3 -m http.server --bind ADDR 0` and read the port it chose from its banner.
fn serve(python: &std::path::Path, addr: &str) -> (Guard, u16) {
    let mut child = Command::new(python)
        .args(["-u", "-m", "http.server", "--bind", addr, "0"])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."; the banner is
    // printed once the socket listens. One line, read with the child's lifetime as the bound.
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = line
        .split(" port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (guard, port)
}

fn check(pid: u32, port: u16, tool: SocketTool) -> ListenCheck {
    ListenCheck {
        workload: "web".into(),
        bind: "127.0.0.1".parse().unwrap(),
        port,
        pid: PidSource::Pid(pid),
        tool,
    }
}

// Regression: host apply never looked at where a daemon listens, so `http.server --bind
// 0.0.0.0` with bind = "127.0.0.1" served every interface and apply reported success.
#[test]
fn a_daemon_on_every_interface_fails_the_check() {
    let Some([python, _, _]) = alembic_testkit::tools(["python3", "ss", "lsof"]) else {
        return;
    };
    let (srv, port) = serve(&python, "0.0.0.0");
    for tool in [SocketTool::Ss, SocketTool::Lsof] {
        let mut ex = Executor::new(Goal::Apply, &NoSecrets);
        let err = check(srv.0.id(), port, tool)
            .run(&mut ex, Duration::from_secs(10))
            .unwrap_err();
        match &err {
            HostError::ListensElsewhere {
                workload,
                listens,
                declared,
                ..
            } => {
                assert_eq!(workload, "web");
                assert_eq!(declared, &format!("127.0.0.1:{port}"));
                assert_eq!(listens.len(), 1, "{tool:?}: {listens:?}");
                assert!(
                    listens[0] == format!("0.0.0.0:{port}") || listens[0] == format!("*:{port}"),
                    "{tool:?}: {listens:?}"
                );
            }
            other => panic!("{tool:?}: expected ListensElsewhere, got {other}"),
        }
        assert_eq!(err.exit_code(), 3);
        let msg = err.to_string();
        assert!(
            msg.contains("`web`") && msg.contains(&format!("127.0.0.1:{port}")),
            "{msg}"
        );
        // The ops ran through the executor and are in its transcript.
        let programs: Vec<&str> = ex.transcript.iter().map(|o| o.program.as_str()).collect();
        assert_eq!(programs[0], "ps");
        assert!(programs.contains(&if tool == SocketTool::Ss { "ss" } else { "lsof" }));
    }
}

#[test]
fn a_daemon_on_its_declared_address_passes() {
    let Some([python, _, _]) = alembic_testkit::tools(["python3", "ss", "lsof"]) else {
        return;
    };
    let (srv, port) = serve(&python, "127.0.0.1");
    for tool in [SocketTool::Ss, SocketTool::Lsof] {
        let mut ex = Executor::new(Goal::Apply, &NoSecrets);
        check(srv.0.id(), port, tool)
            .run(&mut ex, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{tool:?}: {e}"));
    }
}

// A daemon that listens on its address but another port, and one that never listens, fail
// after the bounded wait, saying what they listen on.
#[test]
fn a_daemon_not_on_its_declared_port_fails_after_the_wait() {
    let Some([python, _]) = alembic_testkit::tools(["python3", "ss"]) else {
        return;
    };
    let (srv, port) = serve(&python, "127.0.0.1");
    let other = if port == 65535 { port - 1 } else { port + 1 };
    let mut ex = Executor::new(Goal::Apply, &NoSecrets);
    let err = check(srv.0.id(), other, SocketTool::Ss)
        .run(&mut ex, Duration::from_millis(600))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, HostError::NotListening { .. })
            && msg.contains(&format!("it listens on 127.0.0.1:{port}"))
            && msg.contains(&format!("declared 127.0.0.1:{other}")),
        "{msg}"
    );
    let sleeper = Guard(
        Command::new("sleep")
            .arg("30")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut ex = Executor::new(Goal::Apply, &NoSecrets);
    let err = check(sleeper.0.id(), port, SocketTool::Ss)
        .run(&mut ex, Duration::from_millis(600))
        .unwrap_err();
    assert!(err.to_string().contains("it listens on nothing"), "{err}");
}

/// A dry run records one round of the check's ops and runs nothing.
#[test]
fn a_dry_run_records_the_check() {
    let mut ex = Executor::new(Goal::DryRun, &NoSecrets);
    let c = ListenCheck {
        pid: PidSource::SystemdUnit("alembic-p--web.service".into()),
        ..check(1, 8000, SocketTool::Ss)
    };
    c.run(&mut ex, Duration::from_secs(30)).unwrap();
    let lines: Vec<String> = ex.transcript.iter().map(|o| o.command_line()).collect();
    assert_eq!(
        lines,
        [
            "systemctl --user show -p MainPID --value alembic-p--web.service",
            "ps -A -o 'pid=,ppid='",
            "ss -Hltnp",
        ]
    );
    assert!(ex.transcript.iter().all(|o| !o.mutating));
}

// An exposed daemon is not left serving: host apply runs the stop op (here: kill the PID; in
// apply, `systemctl --user stop` or `launchctl bootout`) and says so.
#[test]
fn an_exposed_daemon_is_stopped() {
    let Some([python, _]) = alembic_testkit::tools(["python3", "ss"]) else {
        return;
    };
    let (mut srv, port) = serve(&python, "0.0.0.0");
    let pid = srv.0.id();
    let step = Step::Listen {
        check: check(pid, port, SocketTool::Ss),
        stop: Op::new(
            crate::stage::Stage::Host,
            "stop web",
            "kill",
            vec![pid.to_string()],
        ),
    };
    let mut ex = Executor::new(Goal::Apply, &NoSecrets);
    let env = HostEnv::for_home(std::env::temp_dir(), 0);
    let err = host::run_steps(&mut ex, &[step], &env).unwrap_err();
    assert!(err.to_string().contains("it was stopped"), "{err}");
    assert_eq!(ex.transcript.last().unwrap().program, "kill");
    // The server is gone (reaped here: it was our child).
    let status = srv.0.wait().unwrap();
    assert!(!status.success());
}
