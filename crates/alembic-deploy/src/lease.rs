//! The deploy lease at `<root>/lease.json` on the droplet: who holds it (user@host, pid), since
//! when, until when. Taken atomically: the holder record is written to a temp file and then
//! hard-linked to `lease.json` (`ln` fails if the name exists, so exactly one apply wins, and the
//! record is complete the moment it is visible). A live lease makes another apply fail fast
//! naming the holder; an expired one is taken over with a warning.
//!
//! TTL: `ALEMBIC_LEASE_TTL` seconds (default 900), so a lease left by a killed apply expires.

use serde::{Deserialize, Serialize};

use crate::ledger::{now_epoch, rfc3339};
use crate::ops::Op;
use crate::ssh::SshTarget;

pub const LEASE_TTL_ENV: &str = "ALEMBIC_LEASE_TTL";
pub const DEFAULT_TTL_SECS: u64 = 900;
/// Exit status of the acquire script when someone else holds the lease.
pub const HELD: i32 = 17;

/// Acquire: `$1` root, `$2` holder record, `$3` unique id. Prints the current record when held.
const ACQUIRE: &str = r#"set -e
mkdir -p "$1"
t="$1/.lease-$3.json"
printf '%s\n' "$2" > "$t" || { rm -f "$t"; exit 1; }
if ln "$t" "$1/lease.json" 2>/dev/null; then rm -f "$t"; exit 0; fi
rm -f "$t"
cat "$1/lease.json" 2>/dev/null || true
exit 17"#;

/// Remove `lease.json` only if it is still exactly `$2` (ours, or the expired one we saw).
const REMOVE_IF: &str =
    r#"if [ "$(cat "$1/lease.json" 2>/dev/null)" = "$2" ]; then rm -f "$1/lease.json"; fi"#;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// `user@host` of the applying machine.
    pub holder: String,
    pub pid: u32,
    /// Unique per apply: tells our lease from another one by the same holder.
    pub id: String,
    pub started: u64,
    pub expires: u64,
    pub started_at: String,
    pub expires_at: String,
}

impl Lease {
    /// A lease for this process, valid for the configured TTL from now.
    pub fn for_this_process() -> Lease {
        let ttl = std::env::var(LEASE_TTL_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(DEFAULT_TTL_SECS);
        let now = now_epoch();
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Lease {
            holder: whoami(),
            pid,
            id: format!("{pid}-{now}-{nanos}"),
            started: now,
            expires: now + ttl,
            started_at: rfc3339(now),
            expires_at: rfc3339(now + ttl),
        }
    }

    /// The record as stored: one line of JSON.
    pub fn record(&self) -> String {
        serde_json::to_string(self).expect("lease serialises")
    }

    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}, since {}, expires {})",
            self.holder, self.pid, self.started_at, self.expires_at
        )
    }
}

/// What the acquire attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Acquired,
    /// Someone holds a lease that has not expired.
    Live(Lease),
    /// A lease past its expiry: take it over (the raw record is what must be removed).
    Expired {
        lease: Lease,
        raw: String,
    },
    /// `lease.json` exists but cannot be read as a lease (being written, or damaged).
    Unreadable(String),
}

/// Interpret the acquire script's answer.
pub fn interpret(status: i32, stdout: &str, now: u64) -> Found {
    if status == 0 {
        return Found::Acquired;
    }
    let raw = stdout.trim().to_owned();
    match serde_json::from_str::<Lease>(&raw) {
        Ok(lease) if lease.expires <= now => Found::Expired { lease, raw },
        Ok(lease) => Found::Live(lease),
        Err(_) => Found::Unreadable(raw),
    }
}

pub fn acquire_op(ssh: &SshTarget, plane: &str, root: &str, lease: &Lease) -> Op {
    ssh.script(
        plane,
        "take lease",
        ACQUIRE,
        &[root.to_owned(), lease.record(), lease.id.clone()],
    )
}

/// Remove the lease if it is still `raw` (release ours; take over an expired one).
pub fn remove_if_op(ssh: &SshTarget, plane: &str, step: &str, root: &str, raw: &str) -> Op {
    ssh.script(plane, step, REMOVE_IF, &[root.to_owned(), raw.to_owned()])
}

fn whoami() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{user}@{host}")
}

/// The real uid's name from /etc/passwd, for processes started without USER/LOGNAME (CI, cron).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid).then(|| f[0].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interprets_live_expired_and_garbage() {
        let mut l = Lease::for_this_process();
        l.expires = 100;
        let rec = l.record();
        assert_eq!(interpret(0, "", 50), Found::Acquired);
        assert_eq!(interpret(HELD, &rec, 50), Found::Live(l.clone()));
        assert_eq!(
            interpret(HELD, &format!("{rec}\n"), 100),
            Found::Expired { lease: l, raw: rec }
        );
        assert_eq!(interpret(HELD, "", 1), Found::Unreadable(String::new()));
    }

    #[test]
    fn record_is_one_line_naming_holder() {
        let l = Lease::for_this_process();
        assert!(!l.record().contains('\n'));
        assert!(l.describe().contains(&l.holder));
        assert!(l.holder.contains('@'));
    }
}
