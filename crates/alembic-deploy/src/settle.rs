//! Telling a release that is "not up yet" from one that is "up and failing", so a broken
//! release is rolled back after a short settle window instead of the whole probe timeout.
//!
//! - Not up yet: no HTTP answer (connection refused, TLS not ready, timeout), or the edge's own
//!   502/503/504 (its upstream is not answering yet). Worth waiting for, up to the probe timeout.
//! - Up and failing: the app answers its health path with any other error status (its own
//!   4xx/5xx), or its container exited, is restarting, is dead, or reports `unhealthy`. The
//!   edge holds requests to an upstream its health checks mark down (its `lb_try_duration`), so
//!   the app's own answer is read on the droplet, straight from the container. Failing (no
//!   healthy answer since) for the settle window: rolled back then.
//!
//! Pure decisions; `droplet.rs` runs the probes and the `ps` op.

use std::time::{Duration, Instant};

use crate::probe::ProbeResult;

/// Seconds a release may be up and failing before it is rolled back (default 10).
pub(crate) const SETTLE_ENV: &str = "ALEMBIC_SETTLE_SECONDS";
pub(crate) const DEFAULT_SETTLE_SECS: u64 = 10;

/// The settle window: `$ALEMBIC_SETTLE_SECONDS`, else 10 s.
pub(crate) fn window_from_env() -> Duration {
    Duration::from_secs(
        std::env::var(SETTLE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_SETTLE_SECS),
    )
}

/// What one probe answer says about the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Healthy,
    NotUpYet,
    /// Up and failing, with what was seen ("answered 500").
    Failing(String),
}

/// The edge answers these itself while its upstream is not (yet) reachable.
const EDGE_NOT_UP: [u16; 3] = [502, 503, 504];

pub(crate) fn classify(r: &ProbeResult) -> Verdict {
    match r {
        ProbeResult::Healthy(_) => Verdict::Healthy,
        ProbeResult::Status(s) if EDGE_NOT_UP.contains(s) => Verdict::NotUpYet,
        ProbeResult::Status(s) => Verdict::Failing(format!("answered {s}")),
        ProbeResult::Error(_) => Verdict::NotUpYet,
        ProbeResult::Settled(_) => Verdict::Failing(r.to_string()),
    }
}

/// What the droplet's look at a service's containers says (`state STATUS EXITCODE HEALTH` and
/// `http CODE` lines, see `droplet::UPSTREAM`): up and failing when a container exited, is dead,
/// restarting or unhealthy, or the app answers its health path with an error status other than
/// 502/503/504 (an app still starting may say those); else not up yet.
pub(crate) fn upstream_verdict(report: &str, service: &str) -> Verdict {
    for line in report.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("state") => {
                let state = f.next().unwrap_or("");
                let exit = f.next().unwrap_or("?");
                let health = f.next().unwrap_or("");
                if matches!(state, "exited" | "dead" | "restarting") {
                    return Verdict::Failing(format!(
                        "container of {service} is {state} (exit code {exit})"
                    ));
                }
                if health == "unhealthy" {
                    return Verdict::Failing(format!("container of {service} is unhealthy"));
                }
            }
            Some("http") => {
                let code: u16 = f.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                if (400..600).contains(&code) && !EDGE_NOT_UP.contains(&code) {
                    return Verdict::Failing(format!("answered {code}"));
                }
            }
            _ => {}
        }
    }
    Verdict::NotUpYet
}

/// Tracks how long a route has been up and failing.
#[derive(Debug)]
pub(crate) struct Settle {
    window: Duration,
    since: Option<Instant>,
}

impl Settle {
    pub(crate) fn new(window: Duration) -> Settle {
        Settle {
            window,
            since: None,
        }
    }

    /// Record one observation at `now`; `Some(reason)` once the release has been failing for
    /// the whole window. Not-up-yet answers in between do not reset the clock (a crash-looping
    /// app alternates between both); only a healthy answer does.
    pub(crate) fn observe(&mut self, v: &Verdict, now: Instant) -> Option<String> {
        match v {
            Verdict::Healthy => {
                self.since = None;
                None
            }
            Verdict::NotUpYet => None,
            Verdict::Failing(what) => {
                let since = *self.since.get_or_insert(now);
                (now.duration_since(since) >= self.window).then(|| {
                    format!(
                        "{what} for {} s: the release is up and failing (rolled back after the \
                         settle window, {SETTLE_ENV}), not merely not up yet",
                        self.window.as_secs()
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_errors_and_no_answer_are_not_up_yet_app_errors_are_failing() {
        for s in [502, 503, 504] {
            assert_eq!(classify(&ProbeResult::Status(s)), Verdict::NotUpYet);
        }
        assert_eq!(
            classify(&ProbeResult::Error("curl: (7) Failed to connect".into())),
            Verdict::NotUpYet
        );
        for s in [400, 401, 404, 500, 501, 505] {
            assert_eq!(
                classify(&ProbeResult::Status(s)),
                Verdict::Failing(format!("answered {s}"))
            );
        }
        assert_eq!(classify(&ProbeResult::Healthy(200)), Verdict::Healthy);
    }

    #[test]
    fn fails_only_after_the_whole_window_and_a_healthy_answer_resets() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let mut s = Settle::new(w);
        let bad = Verdict::Failing("answered 500".into());
        assert_eq!(s.observe(&Verdict::NotUpYet, t0), None);
        assert_eq!(s.observe(&bad, t0), None);
        assert_eq!(
            s.observe(&Verdict::NotUpYet, t0 + Duration::from_secs(5)),
            None
        );
        assert_eq!(s.observe(&bad, t0 + Duration::from_secs(9)), None);
        let why = s.observe(&bad, t0 + w).expect("failed for the window");
        assert!(why.starts_with("answered 500 for 10 s"), "{why}");
        assert_eq!(s.observe(&Verdict::Healthy, t0 + w), None);
        assert_eq!(s.observe(&bad, t0 + w + Duration::from_secs(1)), None);
    }

    #[test]
    fn reads_the_droplets_look_at_a_service() {
        let f = |r: &str| upstream_verdict(r, "api");
        assert_eq!(
            f("state restarting 1 \n"),
            Verdict::Failing("container of api is restarting (exit code 1)".into())
        );
        assert_eq!(
            f("state exited 137\n"),
            Verdict::Failing("container of api is exited (exit code 137)".into())
        );
        assert_eq!(
            f("state running 0 unhealthy\n"),
            Verdict::Failing("container of api is unhealthy".into())
        );
        assert_eq!(
            f("state running 0 \nhttp 500\n"),
            Verdict::Failing("answered 500".into())
        );
        assert_eq!(
            f("state running 0 \nhttp 404\n"),
            Verdict::Failing("answered 404".into())
        );
        for up_later in [
            "state running 0 \nhttp 000\n",
            "state running 0 \nhttp 503\n",
            "state running 0 starting\nhttp 200\n",
            "state created 0 \n",
            "",
            "garbage",
        ] {
            assert_eq!(f(up_later), Verdict::NotUpYet, "{up_later:?}");
        }
    }
}
