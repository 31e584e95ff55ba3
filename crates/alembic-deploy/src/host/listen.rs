//! After a host daemon starts, prove it listens only on its declared address.
//!
//! `check` proves what the config says; this proves what the process does. A [`ListenCheck`]
//! finds the daemon's process (the unit's `MainPID`, launchd's `pid`, or a given PID) and its
//! descendants (`ps`), lists the TCP sockets in LISTEN state (`ss -Hltnp` on Linux, `lsof` on
//! macOS) and keeps those of that process tree. It passes once the tree listens on
//! `bind:port` and nowhere else; it fails at once when the tree listens on another address
//! (every interface, a public or private address it was not given), and after a bounded wait
//! when it never listens on the declared port. Loopback listeners expose nothing and never
//! fail the check; for a loopback `bind`, `::1` counts as the declared address (`localhost`
//! may resolve to either). Extra ports on allowed addresses are accepted (a model server's
//! worker processes listen on their own loopback ports).
//!
//! Every step is an [`Op`] run through the executor, so a dry run's transcript shows them; the
//! outputs are parsed here, in pure functions with unit tests.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::exec::{Executor, Goal};
use crate::ops::Op;

use super::{HostError, PLANE};

/// How the daemon's main process is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PidSource {
    /// `systemctl --user show -p MainPID --value UNIT`.
    SystemdUnit(String),
    /// `launchctl print gui/UID/LABEL` (its `pid = N` line).
    Launchd(String),
    /// A known process (tests, or a caller that started it).
    #[cfg_attr(not(test), allow(dead_code))]
    Pid(u32),
}

/// Which tool lists listening sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketTool {
    /// `ss -Hltnp` (Linux, iproute2).
    Ss,
    /// `lsof -nP -iTCP -sTCP:LISTEN -F pn` (macOS; also on Linux).
    Lsof,
}

/// One daemon's listen check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenCheck {
    pub workload: String,
    pub bind: IpAddr,
    pub port: u16,
    pub pid: PidSource,
    pub tool: SocketTool,
}

/// A listening socket: its local address as the tool printed it, parsed, and its owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    pub shown: String,
    pub addr: IpAddr,
    pub port: u16,
    pub pids: Vec<u32>,
}

/// What one look at the process found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// Not running yet, or not listening on the declared port yet; what it listens on so far.
    Pending(Vec<String>),
    /// Listening where it must not (the offending addresses).
    Exposed(Vec<String>),
}

impl fmt::Display for ListenCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.declared())
    }
}

impl ListenCheck {
    /// The declared address, `127.0.0.1:8000` or `[::1]:8000`.
    pub(crate) fn declared(&self) -> String {
        show_addr(self.bind, self.port)
    }

    fn step(&self, what: &str) -> String {
        format!("listen check {}: {what}", self.workload)
    }

    /// The op that prints the main PID, when it has to be looked up.
    pub(crate) fn pid_op(&self) -> Option<Op> {
        let op = match &self.pid {
            PidSource::SystemdUnit(u) => Op::new(
                PLANE,
                self.step("main pid"),
                "systemctl",
                vec![
                    "--user".into(),
                    "show".into(),
                    "-p".into(),
                    "MainPID".into(),
                    "--value".into(),
                    u.clone(),
                ],
            ),
            PidSource::Launchd(target) => Op::new(
                PLANE,
                self.step("main pid"),
                "launchctl",
                vec!["print".into(), target.clone()],
            ),
            PidSource::Pid(_) => return None,
        };
        Some(op.read_only())
    }

    /// The op that prints every process with its parent.
    pub(crate) fn ps_op(&self) -> Op {
        Op::new(
            PLANE,
            self.step("processes"),
            "ps",
            vec!["-A".into(), "-o".into(), "pid=,ppid=".into()],
        )
        .read_only()
    }

    /// The op that lists listening TCP sockets with their processes.
    pub(crate) fn sockets_op(&self) -> Op {
        let (program, args): (&str, &[&str]) = match self.tool {
            SocketTool::Ss => ("ss", &["-Hltnp"]),
            SocketTool::Lsof => ("lsof", &["-nP", "-iTCP", "-sTCP:LISTEN", "-F", "pn"]),
        };
        Op::new(
            PLANE,
            self.step("listening sockets"),
            program,
            args.iter().map(|a| (*a).to_owned()).collect(),
        )
        .read_only()
    }

    /// One round of the check's ops, in order (what a dry run records).
    pub(crate) fn ops(&self) -> Vec<Op> {
        self.pid_op()
            .into_iter()
            .chain([self.ps_op(), self.sockets_op()])
            .collect()
    }

    /// Judge the listeners of the process tree rooted at `main`.
    pub(crate) fn judge(&self, main: Option<u32>, ps: &str, sockets: &[Listener]) -> Verdict {
        let Some(main) = main else {
            return Verdict::Pending(Vec::new());
        };
        let tree = descendants(main, ps);
        let ours: Vec<&Listener> = sockets
            .iter()
            .filter(|l| l.pids.iter().any(|p| tree.contains(p)))
            .collect();
        let exposed: Vec<String> = ours
            .iter()
            .filter(|l| !(self.is_declared(l.addr) || l.addr.is_loopback()))
            .map(|l| l.shown.clone())
            .collect();
        if !exposed.is_empty() {
            return Verdict::Exposed(dedup(exposed));
        }
        if ours
            .iter()
            .any(|l| l.port == self.port && self.is_declared(l.addr))
        {
            Verdict::Ok
        } else {
            Verdict::Pending(dedup(ours.iter().map(|l| l.shown.clone()).collect()))
        }
    }

    /// The declared address, or (for a loopback bind) another loopback address.
    fn is_declared(&self, addr: IpAddr) -> bool {
        addr == self.bind
            || self.bind.is_unspecified()
            || (addr.is_loopback() && self.bind.is_loopback())
    }

    /// Run the check until it passes, fails, or `timeout` passes (polling every 200 ms). A dry
    /// run records one round of ops and passes.
    pub(crate) fn run(&self, ex: &mut Executor<'_>, timeout: Duration) -> Result<(), HostError> {
        if ex.goal == Goal::DryRun {
            for op in self.ops() {
                ex.run(&op)?;
            }
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let verdict = self.look(ex)?;
            match verdict {
                Verdict::Ok => return Ok(()),
                Verdict::Exposed(listens) => {
                    return Err(HostError::ListensElsewhere {
                        workload: self.workload.clone(),
                        listens,
                        declared: self.declared(),
                        stopped: false,
                    })
                }
                Verdict::Pending(listens) if Instant::now() >= deadline => {
                    return Err(HostError::NotListening {
                        workload: self.workload.clone(),
                        listens,
                        declared: self.declared(),
                        waited: timeout,
                    })
                }
                Verdict::Pending(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn look(&self, ex: &mut Executor<'_>) -> Result<Verdict, HostError> {
        let main = match (&self.pid, self.pid_op()) {
            (PidSource::Pid(p), _) => Some(*p),
            (source, Some(op)) => {
                let out = ex.run(&op)?;
                if !out.success() {
                    None
                } else {
                    match source {
                        PidSource::SystemdUnit(_) => parse_main_pid(&out.stdout_text()),
                        _ => parse_launchd_pid(&out.stdout_text()),
                    }
                }
            }
            (_, None) => None,
        };
        if main.is_none() {
            return Ok(Verdict::Pending(Vec::new()));
        }
        let ps_op = self.ps_op();
        let ps = ex.run(&ps_op)?;
        if !ps.success() {
            return Err(super::failed(&ps_op, &ps));
        }
        let op = self.sockets_op();
        let out = ex.run(&op)?;
        // lsof exits 1 when it finds nothing; anything else that fails is a real failure.
        let nothing = self.tool == SocketTool::Lsof && out.status == 1 && out.stdout.is_empty();
        if !(out.success() || nothing) {
            return Err(super::failed(&op, &out));
        }
        let sockets = match self.tool {
            SocketTool::Ss => parse_ss(&out.stdout_text()),
            SocketTool::Lsof => parse_lsof(&out.stdout_text()),
        };
        Ok(self.judge(main, &ps.stdout_text(), &sockets))
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn show_addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

/// `systemctl show -p MainPID --value`: a number, `0` when the unit runs nothing.
pub(crate) fn parse_main_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|p| *p != 0)
}

/// `launchctl print`: the service's `pid = N` line (absent when it is not running).
pub(crate) fn parse_launchd_pid(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("pid = "))
        .find_map(|p| p.trim().parse().ok())
        .filter(|p| *p != 0)
}

/// `main` and every process descending from it, from `ps -A -o pid=,ppid=`.
pub(crate) fn descendants(main: u32, ps: &str) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for line in ps.lines() {
        let mut it = line.split_whitespace().map(str::parse::<u32>);
        if let (Some(Ok(pid)), Some(Ok(ppid))) = (it.next(), it.next()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut tree = BTreeSet::from([main]);
    let mut todo = vec![main];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if tree.insert(c) {
                todo.push(c);
            }
        }
    }
    tree
}

/// A local address as `ss` or `lsof` prints it: `127.0.0.1:80`, `[::1]:80`, `*:80`,
/// `[::ffff:127.0.0.1]:80`, `127.0.0.53%lo:53`. `*` is every address.
pub(crate) fn parse_local(s: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.split('%').next().unwrap_or(host);
    let ip = if host == "*" {
        IpAddr::from([0, 0, 0, 0])
    } else {
        host.parse::<IpAddr>().ok()?.to_canonical()
    };
    Some((ip, port))
}

/// `ss -Hltnp`: `LISTEN 0 5 127.0.0.1:8000 0.0.0.0:* users:(("python3",pid=42,fd=3))`.
pub(crate) fn parse_ss(text: &str) -> Vec<Listener> {
    text.lines()
        .filter_map(|line| {
            let local = line.split_whitespace().nth(3)?;
            let (addr, port) = parse_local(local)?;
            let pids = line
                .split("pid=")
                .skip(1)
                .filter_map(|rest| {
                    let end = rest
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    rest[..end].parse().ok()
                })
                .collect();
            Some(Listener {
                shown: local.to_owned(),
                addr,
                port,
                pids,
            })
        })
        .collect()
}

/// `lsof -F pn`: a `pPID` line, then one `nADDR:PORT` line per socket of that process.
pub(crate) fn parse_lsof(text: &str) -> Vec<Listener> {
    let mut out = Vec::new();
    let mut pid = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix('p') {
            pid = p.parse().ok();
        } else if let (Some(n), Some(p)) = (line.strip_prefix('n'), pid) {
            // lsof may append " (LISTEN)" in some formats; the address is the first word.
            let local = n.split_whitespace().next().unwrap_or(n);
            if let Some((addr, port)) = parse_local(local) {
                out.push(Listener {
                    shown: local.to_owned(),
                    addr,
                    port,
                    pids: vec![p],
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bind: &str, port: u16) -> ListenCheck {
        ListenCheck {
            workload: "web".into(),
            bind: bind.parse().unwrap(),
            port,
            pid: PidSource::Pid(10),
            tool: SocketTool::Ss,
        }
    }

    const SS: &str = "LISTEN 0      5      127.0.0.1:37933 0.0.0.0:* users:((\"python3\",pid=10,fd=3))\n\
LISTEN 0      128      0.0.0.0:2024  0.0.0.0:*\n\
LISTEN 0      5        0.0.0.0:36763 0.0.0.0:* users:((\"python3\",pid=11,fd=3),(\"python3\",pid=12,fd=3))\n\
LISTEN 0      5              *:39911       *:* users:((\"python3\",pid=13,fd=3))\n\
LISTEN 0      5          [::1]:39912    [::]:* users:((\"python3\",pid=14,fd=3))\n";

    #[test]
    fn ss_lines_parse_with_every_owner() {
        let l = parse_ss(SS);
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].shown, "127.0.0.1:37933");
        assert_eq!(l[0].pids, [10]);
        assert!(l[1].pids.is_empty());
        assert_eq!(l[2].pids, [11, 12]);
        assert_eq!(l[3].addr, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(l[4].addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            parse_local("[::ffff:127.0.0.1]:80"),
            Some(("127.0.0.1".parse().unwrap(), 80))
        );
        assert_eq!(
            parse_local("127.0.0.53%lo:53"),
            Some(("127.0.0.53".parse().unwrap(), 53))
        );
    }

    #[test]
    fn lsof_fields_parse() {
        let l = parse_lsof("p42\nf3\nn*:8000\np43\nn127.0.0.1:9000\nn[::1]:9001\n");
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].pids.clone(), l[0].port), (vec![42], 8000));
        assert!(l[0].addr.is_unspecified());
        assert_eq!(l[2].pids, [43]);
    }

    #[test]
    fn pids_parse_from_systemctl_and_launchctl() {
        assert_eq!(parse_main_pid("1234\n"), Some(1234));
        assert_eq!(parse_main_pid("0\n"), None);
        let print =
            "gui/501/com.alembic.x.y = {\n\tactive count = 1\n\tstate = running\n\tpid = 812\n}\n";
        assert_eq!(parse_launchd_pid(print), Some(812));
        assert_eq!(parse_launchd_pid("\tstate = not running\n"), None);
    }

    #[test]
    fn the_tree_includes_grandchildren_only() {
        let ps = "  1 0\n 10 1\n 11 10\n 12 11\n 13 1\n";
        assert_eq!(
            descendants(10, ps).into_iter().collect::<Vec<_>>(),
            [10, 11, 12]
        );
    }

    #[test]
    fn verdicts() {
        let ps = "10 1\n11 10\n12 11\n";
        let socks = parse_ss(SS);
        // pid 10 listens on its declared address.
        assert_eq!(
            check("127.0.0.1", 37933).judge(Some(10), "10 1\n", &socks),
            Verdict::Ok
        );
        // Another port on the declared address only: still waiting for the declared one.
        assert_eq!(
            check("127.0.0.1", 8000).judge(Some(10), "10 1\n", &socks),
            Verdict::Pending(vec!["127.0.0.1:37933".into()])
        );
        // Its children (11, and 12 below it) listen on every interface: exposed.
        assert_eq!(
            check("127.0.0.1", 37933).judge(Some(10), ps, &socks),
            Verdict::Exposed(vec!["0.0.0.0:36763".into()])
        );
        // The dual-stack wildcard is exposed too.
        assert_eq!(
            check("127.0.0.1", 39911).judge(Some(13), "", &socks),
            Verdict::Exposed(vec!["*:39911".into()])
        );
        // Loopback listeners are fine for a loopback bind; not running is pending.
        assert_eq!(
            check("127.0.0.1", 39912).judge(Some(14), "", &socks),
            Verdict::Ok
        );
        // A private bind: a loopback listener exposes nothing, but it is not the declared
        // address either.
        assert_eq!(
            check("10.0.0.5", 39912).judge(Some(14), "", &socks),
            Verdict::Pending(vec!["[::1]:39912".into()])
        );
        assert_eq!(
            check("127.0.0.1", 1).judge(None, ps, &socks),
            Verdict::Pending(vec![])
        );
    }
}
