//! `droplet.count`, `droplet.addresses`, `droplet.engine`, `[droplet.lb]` and
//! `[droplet.rollout]`: read beside the rest of `[droplet]`, then checked together, since most
//! mistakes here are combinations (several droplets without a balancer, `address` beside
//! `addresses`, passthrough TLS on several edges). Every problem is reported at its key.

use super::*;
use crate::scale::{Bounded, Engine, LbTls, LoadBalancer, OnFailure, Rollout, Scale};

pub(super) const LB_KEYS: &[&str] = &[
    "tls",
    "health",
    "check_interval_seconds",
    "response_timeout_seconds",
    "unhealthy_threshold",
    "healthy_threshold",
];
pub(super) const ROLLOUT_KEYS: &[&str] = &["max_unavailable", "on_failure"];

fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("{s:?} is not an IP address"))
}

impl Cx<'_> {
    /// The scale-out fields of `[droplet]` `t`. `has_address`: `droplet.address` is set.
    pub(super) fn scale(&mut self, t: &Tbl<'_, '_>, has_address: bool) -> Option<Scale> {
        let mut ok = true;
        let given = |k: &str| t.t.get(k).is_some();

        let addresses = self.string_list(t, "addresses", Code::Cfg004, true, ip);
        if let Some(DeValue::Array(items)) = t.t.get("addresses").map(|v| v.get_ref()) {
            // An entry that did not parse was reported already (or was a duplicate, CFG005).
            ok &= addresses.len() == items.len();
            if items.is_empty() && !self.syntax_broken {
                self.err(
                    Code::Cfg004,
                    t.spans_of("addresses"),
                    "`droplet.addresses` is empty",
                    Some("list the existing servers, or remove it to provision droplets".into()),
                );
                ok = false;
            }
        } else if given("addresses") {
            ok = false;
        }
        if has_address && given("addresses") {
            self.err(
                Code::Cfg004,
                t.spans_of("addresses"),
                "`droplet.address` and `droplet.addresses` are both set",
                Some("name one existing server with `address`, or several with `addresses`".into()),
            );
            ok = false;
        }
        let existing = has_address || given("addresses");

        let count = match self.integer(t, "count") {
            Some((n, _)) if (1..=Scale::MAX_COUNT).contains(&n) => Some(n as u32),
            Some((n, sp)) => {
                self.err(
                    Code::Cfg004,
                    sp,
                    format!(
                        "`droplet.count` = {n} must be from 1 to {}",
                        Scale::MAX_COUNT
                    ),
                    None,
                );
                None
            }
            None if given("count") => None,
            None => Some(1),
        };
        if given("count") && existing {
            let with = if has_address { "address" } else { "addresses" };
            self.err(
                Code::Cfg004,
                t.spans_of("count"),
                format!("`droplet.count` provisions droplets, but `droplet.{with}` names existing servers"),
                Some("list every existing server in `addresses`, or remove it to provision `count` droplets".into()),
            );
            ok = false;
        }

        let engine = match t.t.get("engine") {
            Some(_) => self.string(t, "engine", None, Code::Cfg004, |s| {
                Engine::parse(s).ok_or_else(|| {
                    format!("{s:?} is not one of \"compose\", \"swarm\", \"kubernetes\"")
                })
            }),
            None => Some(Engine::Compose),
        };
        if engine == Some(Engine::Kubernetes) && existing {
            self.err(
                Code::Cfg004,
                t.spans_of("engine"),
                "`engine = \"kubernetes\"` runs on a DigitalOcean Kubernetes cluster alembic provisions, not on existing servers",
                Some("remove `address`/`addresses` (the cluster's node count is `count`), or use engine = \"compose\" or \"swarm\"".into()),
            );
            ok = false;
        }

        let lb = match self.sub_table(t, "lb", LB_KEYS, false) {
            Some(lt) => {
                let tls = match lt.t.get("tls") {
                    Some(_) => self.string(&lt, "tls", None, Code::Cfg004, |s| match s {
                        "terminate" => Ok(LbTls::Terminate),
                        "passthrough" => Ok(LbTls::Passthrough),
                        _ => Err(format!(
                            "{s:?} is not one of \"terminate\", \"passthrough\""
                        )),
                    }),
                    None => Some(LbTls::Terminate),
                };
                let health = match lt.t.get("health") {
                    Some(_) => self.string(&lt, "health", None, Code::Cfg004, HttpPath::parse),
                    None => HttpPath::parse(LoadBalancer::DEFAULT_HEALTH).ok(),
                };
                let mut bounded = |b: Bounded| match self.integer(&lt, b.key) {
                    Some((n, _)) if (i64::from(b.min)..=i64::from(b.max)).contains(&n) => {
                        Some(n as u32)
                    }
                    Some((n, sp)) => {
                        self.err(
                            Code::Cfg004,
                            sp,
                            format!(
                                "`droplet.lb.{}` = {n} must be from {} to {} (DigitalOcean's bounds)",
                                b.key, b.min, b.max
                            ),
                            Some(format!("DigitalOcean's default is {}", b.default)),
                        );
                        None
                    }
                    None if lt.t.get(b.key).is_some() => None,
                    None => Some(b.default),
                };
                let timing = (
                    bounded(LoadBalancer::CHECK_INTERVAL),
                    bounded(LoadBalancer::RESPONSE_TIMEOUT),
                    bounded(LoadBalancer::UNHEALTHY_THRESHOLD),
                    bounded(LoadBalancer::HEALTHY_THRESHOLD),
                );
                match (tls, health, timing) {
                    (
                        Some(tls),
                        Some(health),
                        (Some(interval), Some(timeout), Some(unhealthy), Some(healthy)),
                    ) => Some(LoadBalancer {
                        tls,
                        health,
                        check_interval_seconds: interval,
                        response_timeout_seconds: timeout,
                        unhealthy_threshold: unhealthy,
                        healthy_threshold: healthy,
                    }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
            None => {
                ok &= !given("lb");
                None
            }
        };

        // How many droplets the edge runs on; with problems above, the best guess.
        let n = if has_address {
            1
        } else if given("addresses") {
            addresses.len()
        } else {
            count.unwrap_or(1) as usize
        };
        let many = if given("addresses") {
            "addresses"
        } else {
            "count"
        };
        if n > 1 && !given("lb") && engine != Some(Engine::Kubernetes) && !self.syntax_broken {
            self.err(
                Code::Cfg003,
                t.spans_of(many),
                format!(
                    "{n} droplets need a load balancer in front of them: `[droplet.lb]` is missing"
                ),
                Some("add [droplet.lb] with tls = \"terminate\" and health = \"/healthz\"".into()),
            );
            ok = false;
        }
        if let Some(lb) = &lb {
            if lb.tls == LbTls::Passthrough && n > 1 {
                let at = self.spans.get("droplet.lb.tls").unwrap_or(t.spans_of("lb"));
                self.err(
                    Code::Cfg004,
                    at,
                    format!("`droplet.lb.tls = \"passthrough\"` with {n} droplets: each edge would obtain and renew its own certificate for the same names"),
                    Some("use tls = \"terminate\" (the load balancer holds one Let's Encrypt certificate); passthrough needs certificate storage shared by every edge or DNS-01, which alembic does not set up".into()),
                );
                ok = false;
            }
        }

        let rollout = match self.sub_table(t, "rollout", ROLLOUT_KEYS, false) {
            Some(rt) => {
                let max_unavailable = match self.integer(&rt, "max_unavailable") {
                    Some((m, _)) if m >= 1 && (n <= 1 || (m as u64) < n as u64) => Some(m as u32),
                    Some((m, sp)) if m >= 1 => {
                        self.err(
                            Code::Cfg004,
                            sp,
                            format!("`droplet.rollout.max_unavailable` = {m} would take all {n} droplets out of the load balancer at once"),
                            Some(format!("at most {} keeps one droplet serving", n - 1)),
                        );
                        None
                    }
                    Some((m, sp)) => {
                        self.err(
                            Code::Cfg004,
                            sp,
                            format!("`droplet.rollout.max_unavailable` = {m} must be at least 1"),
                            None,
                        );
                        None
                    }
                    None if rt.t.get("max_unavailable").is_some() => None,
                    None => Some(1),
                };
                let on_failure = match rt.t.get("on_failure") {
                    Some(_) => self.string(&rt, "on_failure", None, Code::Cfg004, |s| {
                        OnFailure::parse(s).ok_or_else(|| {
                            format!("{s:?} is not one of \"rollback-all\", \"rollback-host\", \"pause\"")
                        })
                    }),
                    None => Some(OnFailure::RollbackAll),
                };
                match (max_unavailable, on_failure) {
                    (Some(max_unavailable), Some(on_failure)) => Some(Rollout {
                        max_unavailable,
                        on_failure,
                    }),
                    _ => None,
                }
            }
            None if given("rollout") => None,
            None => Some(Rollout::default()),
        };

        if !ok {
            return None;
        }
        Some(Scale {
            count: if existing { 1 } else { count? },
            addresses,
            engine: engine?,
            lb,
            rollout: rollout?,
        })
    }
}
