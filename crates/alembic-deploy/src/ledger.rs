//! The release ledger kept on the droplet at `<root>/ledger.json`: numbered releases with their
//! artifact sha256s, image refs, secret NAMES (never values), time and outcome. Pure data and
//! the decisions made from it (next number, what to prune); `droplet.rs` reads and writes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What became of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Deployed, probed healthy, made `current`.
    Deployed,
    /// Failed to come up or failed its probe; the previous release was brought back.
    Failed,
    /// Made `current` again by `alembic rollback`.
    RolledBack,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Release {
    pub number: u64,
    /// Artifact file name in the release dir -> sha256 (hex).
    pub artifacts: BTreeMap<String, String>,
    pub images: Vec<String>,
    /// Workload -> the image its compose service ran in this release (`sha256:<id>` or
    /// `<registry>/<name>@sha256:<digest>`), for every workload with `build`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, String>,
    /// Names of the variables in the release's `.env`.
    pub secrets: Vec<String>,
    /// RFC 3339 UTC.
    pub time: String,
    pub outcome: Outcome,
    /// Who applied it (user@host).
    #[serde(default)]
    pub by: String,
    /// Why it failed, or which release a rollback restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Docker names of the named volumes the release's workloads mount (`<project>_<name>`).
    /// Absent in entries written before volumes existed, and in releases without any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ledger {
    pub format_version: u32,
    /// The release `current` points at (the last healthy one), if any.
    pub current: Option<u64>,
    /// Every recorded event, oldest first (a rollback appends an entry for the restored number).
    pub releases: Vec<Release>,
}

impl Ledger {
    /// Parse the remote file; an empty answer means no ledger yet.
    pub(crate) fn parse(text: &str) -> Result<Ledger, String> {
        if text.trim().is_empty() {
            return Ok(Ledger {
                format_version: 1,
                ..Ledger::default()
            });
        }
        serde_json::from_str(text).map_err(|e| format!("ledger.json is not a valid ledger: {e}"))
    }

    pub(crate) fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("ledger serialises");
        s.push('\n');
        s
    }

    /// This ledger after `alembic rollback` restored release `to` (recorded as `entry`, the
    /// release's own entry): `current` points at it, and a `rolled_back` entry repeats its
    /// number by design, saying from which release it was restored.
    pub(crate) fn restored(&self, to: u64, entry: Release, time: &str, by: &str) -> Ledger {
        let mut ledger = self.clone();
        let from = ledger.current;
        ledger.current = Some(to);
        ledger.releases.push(Release {
            time: time.to_owned(),
            outcome: Outcome::RolledBack,
            by: by.to_owned(),
            note: Some(match from {
                Some(f) => format!("restored by `alembic rollback` from release {f}"),
                None => "restored by `alembic rollback`".to_owned(),
            }),
            ..entry
        });
        ledger
    }

    /// The entry that made `current` what it is.
    pub(crate) fn current_release(&self) -> Option<&Release> {
        let n = self.current?;
        self.releases.iter().rev().find(|r| r.number == n)
    }

    /// The number a new release gets: one past every number ever used (failed ones included),
    /// and past `highest_dir` (a release dir an interrupted apply left behind).
    pub(crate) fn next_number(&self, highest_dir: Option<u64>) -> u64 {
        let used = self.releases.iter().map(|r| r.number).max().unwrap_or(0);
        used.max(highest_dir.unwrap_or(0)) + 1
    }

    /// Healthy releases older than `current`, newest first: rollback candidates.
    pub(crate) fn previous_healthy(&self) -> Vec<u64> {
        let cur = self.current.unwrap_or(0);
        let mut v: Vec<u64> = self
            .releases
            .iter()
            .filter(|r| r.outcome != Outcome::Failed && r.number < cur)
            .map(|r| r.number)
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    }

    /// The latest entry for release `n` that was healthy.
    pub(crate) fn healthy(&self, n: u64) -> Option<&Release> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.number == n && r.outcome != Outcome::Failed)
    }

    /// Release dirs to delete: every dir but `current` and the `keep - 1` newest healthy ones
    /// before it (so `keep` releases stay, counting current). Failed releases' dirs go too.
    pub(crate) fn prune(&self, dirs: &[u64], keep: u32) -> Vec<u64> {
        let keep = keep.max(1) as usize;
        let mut kept: Vec<u64> = self.current.into_iter().collect();
        kept.extend(self.previous_healthy().into_iter().take(keep - 1));
        dirs.iter().copied().filter(|d| !kept.contains(d)).collect()
    }
}

/// The one sha256 helper of the workspace (the manifest's), under the name the ledger uses.
pub(crate) use alembic_render::manifest::sha256_hex;

/// Seconds since the Unix epoch.
pub(crate) fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC for an epoch second (civil-from-days, no time crate needed).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(n: u64, outcome: Outcome) -> Release {
        Release {
            number: n,
            artifacts: BTreeMap::new(),
            images: vec![],
            pins: BTreeMap::new(),
            secrets: vec![],
            time: rfc3339(0),
            outcome,
            by: "t@h".into(),
            note: None,
            volumes: vec![],
        }
    }

    #[test]
    fn numbers_skip_failed_and_leftover_dirs() {
        let l = Ledger {
            format_version: 1,
            current: Some(1),
            releases: vec![rel(1, Outcome::Deployed), rel(2, Outcome::Failed)],
        };
        assert_eq!(l.next_number(None), 3);
        assert_eq!(l.next_number(Some(7)), 8);
        assert_eq!(Ledger::parse("").unwrap().next_number(None), 1);
    }

    #[test]
    fn prune_keeps_current_and_newest_healthy() {
        let l = Ledger {
            format_version: 1,
            current: Some(5),
            releases: [1, 2, 3, 5]
                .into_iter()
                .map(|n| rel(n, Outcome::Deployed))
                .chain([rel(4, Outcome::Failed)])
                .collect(),
        };
        assert_eq!(l.previous_healthy(), vec![3, 2, 1]);
        assert_eq!(l.prune(&[1, 2, 3, 4, 5], 3), vec![1, 4]);
        assert_eq!(l.prune(&[1, 2, 3, 4, 5], 1), vec![1, 2, 3, 4]);
    }

    #[test]
    fn round_trips_and_dates() {
        let l = Ledger {
            format_version: 1,
            current: Some(1),
            releases: vec![rel(1, Outcome::Deployed)],
        };
        assert_eq!(Ledger::parse(&l.to_json()).unwrap(), l);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert!(Ledger::parse("{not json").is_err());
    }

    // Ledgers written before releases recorded volumes must still parse, and an entry without
    // volumes must serialize as before (the droplet compares the ledger by its sha256).
    #[test]
    fn volumes_are_recorded_and_old_entries_still_parse() {
        let old = r#"{"format_version":1,"current":1,"releases":[{"number":1,"artifacts":{},"images":[],"secrets":[],"time":"1970-01-01T00:00:00Z","outcome":"deployed"}]}"#;
        let l = Ledger::parse(old).unwrap();
        assert!(l.releases[0].volumes.is_empty());
        assert!(!l.to_json().contains("volumes"));
        let mut r = rel(2, Outcome::Deployed);
        r.volumes = vec!["app_pgdata".into()];
        let l = Ledger {
            format_version: 1,
            current: Some(2),
            releases: vec![r],
        };
        let json = l.to_json();
        assert!(
            json.contains("\"volumes\": [\n        \"app_pgdata\""),
            "{json}"
        );
        assert_eq!(Ledger::parse(&json).unwrap(), l);
    }
}
