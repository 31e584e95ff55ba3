//! The deploy lease at `<root>/lease.json` on the droplet, with a fencing token.
//!
//! Files on the droplet (all under `<root>`):
//!
//! ```text
//! lease.json    the holder record, one line of JSON (see `Lease`), present while held
//! lease.gen     the last fencing token handed out; only ever increases
//! .lease.lock   empty; every lease script runs under `flock` on it
//! ```
//!
//! - **Taking** ([`acquire_op`]): under the lock, a lease whose `expires` is still ahead of the
//!   droplet's own `date +%s` is live (the script prints it and exits [`HELD`]); an absent or
//!   expired one is replaced by ours, with the next token (`lease.gen` + 1). Expiry is judged by
//!   the droplet's clock only: the applying machine's clock never enters the decision.
//! - **Fencing** ([`fenced`]): every mutating remote step (upload, `.env`, `active`/`current`,
//!   `compose up`/`down`, the ledger, prune) runs as a script that first takes the lock and
//!   checks that `lease.json` still carries our token and id, then acts, still under the lock.
//!   A holder that lost its lease (taken over after it stalled past its expiry) exits [`LOST`]
//!   printing the record that holds the lease now, and changes nothing.
//! - **Renewing** ([`renew_op`], run every TTL/3 by `droplet.rs` while the lease is held, and at
//!   the end of every fenced `compose` step, which may hold the lock for minutes): `expires`
//!   becomes the droplet's now + TTL, only while the lease is still ours. The renewal rewrites
//!   `lease.json` in place (under the lock), so it needs no free block on a full disk.
//!
//! TTL: `ALEMBIC_LEASE_TTL` seconds (default 900), so a lease left by a killed apply expires.

use serde::{Deserialize, Serialize};

use crate::ledger::rfc3339;
use crate::ops::Op;
use crate::ssh::SshTarget;

pub(crate) const LEASE_TTL_ENV: &str = "ALEMBIC_LEASE_TTL";
pub(crate) const DEFAULT_TTL_SECS: u64 = 900;
/// Exit status of the acquire script when someone else holds the lease.
pub(crate) const HELD: i32 = 17;
/// Exit status of a fenced script (and of the renewal) when the lease is no longer ours.
pub(crate) const LOST: i32 = 18;

/// Take the lease. `$1` root, `$2` the holder fields as a JSON fragment, `$3` our id, `$4` TTL.
/// Prints our record, then the expired record it replaced (if any); or the live one and 17.
pub(crate) const ACQUIRE: &str = r#"r=$1
mkdir -p "$r" || exit 1
exec 9>>"$r/.lease.lock" || exit 1
if ! flock -w 30 9; then cat "$r/lease.json" 2>/dev/null; exit 17; fi
now=$(date +%s)
old=
if [ -e "$r/lease.json" ]; then
  old=$(cat "$r/lease.json") || exit 1
  exp=$(printf '%s\n' "$old" | sed -n 's/.*"expires":\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ -z "$exp" ] || [ "$now" -lt "$exp" ]; then printf '%s\n' "$old"; exit 17; fi
fi
g=$(cat "$r/lease.gen" 2>/dev/null || true)
case "$g" in ''|*[!0-9]*) g=0 ;; esac
o=$(printf '%s\n' "$old" | sed -n 's/^{"token":\([0-9][0-9]*\),.*/\1/p')
if [ -n "$o" ] && [ "$o" -gt "$g" ]; then g=$o; fi
g=$((g + 1))
t="$r/.lease-$3.json"
if ! printf '{"token":%s,"id":"%s","started":%s,"expires":%s,"ttl":%s,%s}\n' "$g" "$3" "$now" "$((now + $4))" "$4" "$2" > "$t"; then rm -f "$t"; exit 1; fi
if ! printf '%s\n' "$g" > "$r/.lease.gen.tmp"; then rm -f "$t" "$r/.lease.gen.tmp"; exit 1; fi
if ! { mv "$r/.lease.gen.tmp" "$r/lease.gen" && mv "$t" "$r/lease.json"; }; then rm -f "$t" "$r/.lease.gen.tmp"; exit 1; fi
cat "$r/lease.json"
if [ -n "$old" ]; then printf '%s\n' "$old"; fi"#;

/// The start of every fenced script: `$1` root, `$2` token, `$3` id, `$4` TTL; shifted away, so
/// the step's own arguments are `$1..` again and the root is `$r`. Holds the lock until the
/// script ends; `renew` pushes `expires` to the droplet's now + TTL.
pub(crate) const FENCE: &str = r#"r=$1; tok=$2; id=$3; ttl=$4; shift 4
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
"#;

/// Release: remove `lease.json` only if it still carries our token and id.
const RELEASE: &str = r#"r=$1
exec 9>>"$r/.lease.lock" || exit 1
flock -w 60 9 || exit 1
h=$(cat "$r/lease.json" 2>/dev/null || true)
case "$h" in
"{\"token\":$2,\"id\":\"$3\","*) rm -f "$r/lease.json" ;;
esac"#;

/// A fenced script: [`FENCE`], then `body`.
pub(crate) fn fenced(body: &str) -> String {
    format!("{FENCE}{body}")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    /// The fencing token: the droplet's `lease.gen` when this lease was taken (0: not taken).
    #[serde(default)]
    pub token: u64,
    /// Unique per apply: tells our lease from another one by the same holder.
    pub id: String,
    /// Droplet clock, epoch seconds.
    #[serde(default)]
    pub started: u64,
    /// Droplet clock, epoch seconds; pushed forward by every renewal.
    #[serde(default)]
    pub expires: u64,
    #[serde(default)]
    pub ttl: u64,
    /// `user@host` of the applying machine.
    pub holder: String,
    pub pid: u32,
}

/// The holder fields the acquire script puts in the record (as a JSON fragment).
#[derive(Serialize)]
struct HolderFields<'a> {
    holder: &'a str,
    pid: u32,
}

impl Lease {
    /// A lease for this process, not taken yet: the droplet fills in the token and times.
    pub(crate) fn for_this_process() -> Lease {
        let ttl = std::env::var(LEASE_TTL_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TTL_SECS);
        let pid = std::process::id();
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Lease {
            token: 0,
            // Digits and dashes only: the remote scripts match it inside a JSON string.
            id: format!("{pid}-{}-{}", d.as_secs(), d.subsec_nanos()),
            started: 0,
            expires: 0,
            ttl,
            holder: whoami(),
            pid,
        }
    }

    /// `"holder":...,"pid":...`: the part of the record the droplet does not compute.
    fn holder_fragment(&self) -> String {
        let s = serde_json::to_string(&HolderFields {
            holder: &self.holder,
            pid: self.pid,
        })
        .expect("holder serialises");
        s[1..s.len() - 1].to_owned()
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} (pid {}, token {}, since {}, expires {} by the droplet's clock)",
            self.holder,
            self.pid,
            self.token,
            rfc3339(self.started),
            rfc3339(self.expires)
        )
    }

    /// What fenced ops of this lease carry: token, id and TTL.
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            token: (self.token > 0).then_some(self.token),
            id: self.id.clone(),
            ttl: self.ttl,
        }
    }
}

/// What a plan shows in place of the fencing token; apply binds it to the token the droplet
/// hands out (see `Executor::bind`).
pub(crate) const TOKEN_PLACEHOLDER: &str = "<token>";

/// Identifies our lease to the fenced scripts. `token` is None in a plan (the droplet hands it
/// out when the lease is taken), shown as `<token>`; such ops are for display only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fence {
    pub token: Option<u64>,
    pub id: String,
    pub ttl: u64,
}

impl Fence {
    /// `$1..$4` of a fenced script.
    pub(crate) fn args(&self, root: &str) -> Vec<String> {
        vec![
            root.to_owned(),
            self.token
                .map_or_else(|| TOKEN_PLACEHOLDER.to_owned(), |t| t.to_string()),
            self.id.clone(),
            self.ttl.to_string(),
        ]
    }
}

/// What the acquire attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Ours now (with the token and times the droplet gave it); `took_over` is the expired
    /// lease it replaced.
    Acquired {
        lease: Lease,
        took_over: Option<Lease>,
    },
    /// Someone holds a lease that has not expired by the droplet's clock.
    Live(Lease),
    /// `lease.json` exists but cannot be read as a lease (damaged), or the script failed.
    Unreadable(String),
}

/// Interpret the acquire script's answer.
pub(crate) fn interpret(status: i32, stdout: &str) -> Found {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("").trim().to_owned();
    let parsed = serde_json::from_str::<Lease>(&first);
    match (status, parsed) {
        (0, Ok(lease)) => Found::Acquired {
            lease,
            took_over: lines
                .next()
                .and_then(|l| serde_json::from_str(l.trim()).ok()),
        },
        (HELD, Ok(lease)) => Found::Live(lease),
        _ => Found::Unreadable(first),
    }
}

/// Who holds the lease now, from the record a fenced script printed when it refused.
pub(crate) fn now_held_by(stdout: &str) -> String {
    let rec = stdout.trim();
    if rec.is_empty() {
        return "nobody (it was taken over, and that apply has released it since)".to_owned();
    }
    match serde_json::from_str::<Lease>(rec) {
        Ok(l) => l.describe(),
        Err(_) => format!("unknown (unreadable lease.json: {rec:?})"),
    }
}

pub(crate) fn acquire_op(
    ssh: &SshTarget,
    plane: crate::stage::Stage,
    root: &str,
    lease: &Lease,
) -> Op {
    ssh.script(
        plane,
        "take lease",
        ACQUIRE,
        &[
            root.to_owned(),
            lease.holder_fragment(),
            lease.id.clone(),
            lease.ttl.to_string(),
        ],
    )
}

/// Push `expires` to the droplet's now + TTL while the lease is ours (exit [`LOST`] if not).
pub(crate) fn renew_op(
    ssh: &SshTarget,
    plane: crate::stage::Stage,
    root: &str,
    fence: &Fence,
) -> Op {
    ssh.script(plane, "renew lease", &fenced("renew"), &fence.args(root))
}

/// Remove the lease if it still carries our token and id.
pub(crate) fn release_op(
    ssh: &SshTarget,
    plane: crate::stage::Stage,
    root: &str,
    fence: &Fence,
) -> Op {
    ssh.script(plane, "release lease", RELEASE, &fence.args(root))
}

/// A fenced step: `body` runs only while the lease carries `fence`'s token; `args` are its
/// `$1..`.
pub(crate) fn fenced_op(
    ssh: &SshTarget,
    plane: crate::stage::Stage,
    step: &str,
    root: &str,
    fence: &Fence,
    body: &str,
    args: &[String],
) -> Op {
    let mut all = fence.args(root);
    all.extend(args.iter().cloned());
    ssh.script(plane, step, &fenced(body), &all)
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

// The lease and ledger scripts run by a real `sh`, as the droplet runs them.
#[cfg(test)]
mod script_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interprets_acquired_live_and_garbage() {
        let mut l = Lease::for_this_process();
        l.token = 3;
        l.expires = 100;
        let rec = serde_json::to_string(&l).unwrap();
        let mut old = l.clone();
        old.token = 2;
        let old_rec = serde_json::to_string(&old).unwrap();
        assert_eq!(
            interpret(0, &format!("{rec}\n")),
            Found::Acquired {
                lease: l.clone(),
                took_over: None
            }
        );
        assert_eq!(
            interpret(0, &format!("{rec}\n{old_rec}\n")),
            Found::Acquired {
                lease: l.clone(),
                took_over: Some(old)
            }
        );
        assert_eq!(interpret(HELD, &rec), Found::Live(l));
        assert_eq!(interpret(HELD, ""), Found::Unreadable(String::new()));
        assert_eq!(interpret(1, "x"), Found::Unreadable("x".into()));
    }

    #[test]
    fn holder_fragment_is_json_and_names_holder() {
        let mut l = Lease::for_this_process();
        l.holder = "we\"ird@host".into();
        let frag = l.holder_fragment();
        let v: serde_json::Value = serde_json::from_str(&format!("{{{frag}}}")).unwrap();
        assert_eq!(v["holder"], "we\"ird@host");
        assert!(l.describe().contains("we\"ird@host"));
        assert!(Lease::for_this_process().holder.contains('@'));
        assert!(l.id.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    }
}
