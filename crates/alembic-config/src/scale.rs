//! Scaling out the droplet plane: several droplets (provisioned or existing), the load balancer
//! in front of them, how a release rolls across them, and which engine runs the containers.
//!
//! Parsed by `parse/scale.rs`; carried in [`crate::Droplet::scale`] (flattened in JSON so the
//! field names are the `alembic.toml` ones).

use std::net::IpAddr;

use serde::Serialize;

use crate::types::HttpPath;

/// What runs the droplet plane's containers (`droplet.engine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `docker compose` on every droplet (today's behaviour).
    #[default]
    Compose,
    /// A Docker Swarm across the droplets: `infra/docker/stack.yaml`.
    Swarm,
    /// DigitalOcean Kubernetes (DOKS): `infra/k8s/*.yaml`.
    Kubernetes,
}

impl Engine {
    /// Every engine, in the order the docs list them.
    pub const ALL: [Engine; 3] = [Engine::Compose, Engine::Swarm, Engine::Kubernetes];

    /// The name `droplet.engine` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Compose => "compose",
            Engine::Swarm => "swarm",
            Engine::Kubernetes => "kubernetes",
        }
    }

    /// The engine named `s`, if there is one.
    pub fn parse(s: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where TLS ends (`droplet.lb.tls`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LbTls {
    /// The load balancer holds a Let's Encrypt certificate and forwards plain HTTP.
    #[default]
    Terminate,
    /// The load balancer forwards TCP; every edge holds the certificate itself.
    Passthrough,
}

impl LbTls {
    /// The name `droplet.lb.tls` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            LbTls::Terminate => "terminate",
            LbTls::Passthrough => "passthrough",
        }
    }
}

/// `[droplet.lb]`: the DigitalOcean load balancer in front of the droplets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadBalancer {
    /// Where TLS ends.
    pub tls: LbTls,
    /// The path the balancer's health check asks every droplet's edge.
    pub health: HttpPath,
    /// Seconds between two health checks of one droplet.
    pub check_interval_seconds: u32,
    /// Seconds a health check waits for its answer.
    pub response_timeout_seconds: u32,
    /// Failed checks in a row before a droplet leaves rotation.
    pub unhealthy_threshold: u32,
    /// Passed checks in a row before a droplet is back in rotation.
    pub healthy_threshold: u32,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer {
            tls: LbTls::Terminate,
            health: HttpPath::parse(LoadBalancer::DEFAULT_HEALTH).expect("a valid path"),
            check_interval_seconds: LoadBalancer::CHECK_INTERVAL.default,
            response_timeout_seconds: LoadBalancer::RESPONSE_TIMEOUT.default,
            unhealthy_threshold: LoadBalancer::UNHEALTHY_THRESHOLD.default,
            healthy_threshold: LoadBalancer::HEALTHY_THRESHOLD.default,
        }
    }
}

/// An integer setting's default and bounds (inclusive), as DigitalOcean's API states them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded {
    /// The key under `[droplet.lb]`.
    pub key: &'static str,
    /// The value when the key is not set.
    pub default: u32,
    /// The smallest value accepted.
    pub min: u32,
    /// The largest value accepted.
    pub max: u32,
}

impl LoadBalancer {
    /// The health check path when `droplet.lb.health` is not set.
    pub const DEFAULT_HEALTH: &'static str = "/healthz";
    /// DigitalOcean's health check settings (`digitalocean_loadbalancer.healthcheck`): seconds
    /// between two checks.
    pub const CHECK_INTERVAL: Bounded = Bounded {
        key: "check_interval_seconds",
        default: 10,
        min: 3,
        max: 300,
    };
    /// Seconds the balancer waits for a health answer.
    pub const RESPONSE_TIMEOUT: Bounded = Bounded {
        key: "response_timeout_seconds",
        default: 5,
        min: 3,
        max: 300,
    };
    /// Failed checks in a row before a droplet leaves rotation.
    pub const UNHEALTHY_THRESHOLD: Bounded = Bounded {
        key: "unhealthy_threshold",
        default: 3,
        min: 2,
        max: 10,
    };
    /// Passed checks in a row before a droplet is back in rotation.
    pub const HEALTHY_THRESHOLD: Bounded = Bounded {
        key: "healthy_threshold",
        default: 5,
        min: 2,
        max: 10,
    };

    /// The edge serves plain HTTP behind the balancer (it terminates TLS).
    pub fn terminates_tls(&self) -> bool {
        self.tls == LbTls::Terminate
    }

    /// How long after a droplet's health path starts failing the balancer has surely taken it
    /// out of rotation: `unhealthy_threshold` checks `check_interval_seconds` apart, the last
    /// one allowed its whole `response_timeout_seconds`.
    pub fn drain_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.check_interval_seconds * self.unhealthy_threshold + self.response_timeout_seconds,
        ))
    }

    /// How long after a droplet's health path answers again the balancer has surely put it
    /// back: `healthy_threshold` checks, the same way.
    pub fn restore_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.check_interval_seconds * self.healthy_threshold + self.response_timeout_seconds,
        ))
    }
}

/// What a failed rolling deploy does (`droplet.rollout.on_failure`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum OnFailure {
    /// Roll the failed droplet back, then the ones already done, in reverse.
    #[default]
    #[serde(rename = "rollback-all")]
    RollbackAll,
    /// Roll back only the droplet that failed; the others keep the new release.
    #[serde(rename = "rollback-host")]
    RollbackHost,
    /// Leave every droplet as it is and stop.
    #[serde(rename = "pause")]
    Pause,
}

impl OnFailure {
    /// Every choice, in the order the docs list them.
    pub const ALL: [OnFailure; 3] = [
        OnFailure::RollbackAll,
        OnFailure::RollbackHost,
        OnFailure::Pause,
    ];

    /// The name `droplet.rollout.on_failure` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::RollbackAll => "rollback-all",
            OnFailure::RollbackHost => "rollback-host",
            OnFailure::Pause => "pause",
        }
    }

    /// The choice named `s`, if there is one.
    pub fn parse(s: &str) -> Option<OnFailure> {
        OnFailure::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// `[droplet.rollout]`: how a release moves across the droplets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// Droplets out of the balancer at once.
    pub max_unavailable: u32,
    /// What a failed droplet makes the rollout do.
    pub on_failure: OnFailure,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            max_unavailable: 1,
            on_failure: OnFailure::RollbackAll,
        }
    }
}

/// The droplet plane's size and shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scale {
    /// Provisioned droplets (DOKS nodes with `engine = "kubernetes"`). 1 with existing servers.
    pub count: u32,
    /// Several existing servers, instead of `droplet.address`. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// What runs the containers.
    pub engine: Engine,
    /// The load balancer in front of the droplets, when there is one (`[droplet.lb]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb: Option<LoadBalancer>,
    /// How a release moves across the droplets.
    pub rollout: Rollout,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            count: 1,
            addresses: Vec::new(),
            engine: Engine::Compose,
            lb: None,
            rollout: Rollout::default(),
        }
    }
}

impl Scale {
    /// Most droplets `count` may ask for.
    pub const MAX_COUNT: i64 = 100;

    /// The load balancer in front of the edge, if any: `[droplet.lb]`, or its defaults on
    /// Kubernetes, where the edge is always a `LoadBalancer` Service.
    pub fn load_balancer(&self) -> Option<LoadBalancer> {
        match (&self.lb, self.engine) {
            (Some(lb), _) => Some(lb.clone()),
            (None, Engine::Kubernetes) => Some(LoadBalancer::default()),
            (None, _) => None,
        }
    }
}
