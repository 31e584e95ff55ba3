//! Exposure rules over the topology: only the droplet plane may be public, only through the
//! edge, under the project's domain; the host plane binds to loopback or private addresses; ci
//! jobs have no network surface at all. (The original design's `findExposureViolations`.)

use std::collections::HashMap;

use alembic_config::types::is_private_or_loopback;
use alembic_config::{Code, Diagnostic, Plane, Severity, SourceFile, Topology};

use crate::rule::{Rule, TopologyRule};

/// EXP001: public workload outside the droplet plane.
pub static EXP001: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Exp001,
        severity: Severity::Error,
        summary: "public workload outside the droplet plane",
        help: "only droplet workloads may be public, and only through the edge; set exposure = \"private\" or move the workload to plane = \"droplet\"",
    },
    check: public_outside_droplet,
};

fn public_outside_droplet(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    t.workloads
        .iter()
        .filter(|w| w.is_public() && w.plane != Plane::Droplet)
        .map(|w| {
            r.at(
                src,
                t.spans.get(&w.path("exposure")).unwrap_or(0..0),
                format!(
                    "workload `{}` is on the {} plane but has exposure = \"public\"",
                    w.name, w.plane
                ),
            )
        })
        .collect()
}

/// EXP002: host workload bound to a non-loopback, non-private address.
pub static EXP002: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Exp002,
        severity: Severity::Error,
        summary: "host workload bound to a non-loopback, non-private address",
        help: "bind host workloads to 127.0.0.1 (or a private/tailnet address); reach them from elsewhere through a private tunnel",
    },
    check: host_bind,
};

fn host_bind(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    t.on_plane(Plane::Host)
        .filter_map(|w| w.bind.map(|b| (w, b)))
        .filter(|(_, b)| !is_private_or_loopback(b))
        .map(|(w, b)| {
            let what = if b.is_unspecified() {
                "every interface".to_owned()
            } else {
                "a public address".to_owned()
            };
            r.at(
                src,
                t.spans
                    .get(&w.path("bind"))
                    .or_else(|| t.spans.get(&w.path("port")))
                    .unwrap_or(0..0),
                format!("host workload `{}` binds to {b} ({what})", w.name),
            )
        })
        .collect()
}

/// EXP004: public workload without a route, a route outside the project's domain, or a duplicate route.
pub static EXP004: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Exp004,
        severity: Severity::Error,
        summary: "public workload without a route, a route outside the project's domain, or a duplicate route",
        help: "give each public droplet workload its own route = \"name.<project.domain>[/prefix]\"",
    },
    check: routes,
};

fn routes(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, &str> = HashMap::new();
    for w in t.on_plane(Plane::Droplet).filter(|w| w.is_public()) {
        let Some(route) = &w.route else {
            out.push(r.at(
                src,
                t.spans.get(&w.path("exposure")).unwrap_or(0..0),
                format!(
                    "public workload `{}` has no route, so the edge cannot serve it",
                    w.name
                ),
            ));
            continue;
        };
        let span = t.spans.get(&w.path("route")).unwrap_or(0..0);
        if !route.host.is_within(&t.project.domain) {
            out.push(r.at(
                src,
                span.clone(),
                format!(
                    "route `{route}` of `{}` is outside the project's domain `{}`",
                    w.name, t.project.domain
                ),
            ));
        }
        let key = route.to_string();
        match seen.get(key.as_str()) {
            Some(first) => out.push(r.at(
                src,
                span,
                format!(
                    "route `{route}` of `{}` is already the route of `{first}`",
                    w.name
                ),
            )),
            None => {
                seen.insert(key, w.name.as_str());
            }
        }
    }
    out
}

/// EXP007: CI workload with ports or exposure.
pub static EXP007: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Exp007,
        severity: Severity::Error,
        summary: "CI workload with ports or exposure",
        help: "a ci workload is a job on a stateless runner: remove port, bind, route and public exposure",
    },
    check: ci_surface,
};

fn ci_surface(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for w in t.on_plane(Plane::Ci) {
        let fields = [
            ("port", w.port.is_some()),
            ("bind", w.bind.is_some()),
            ("route", w.route.is_some()),
            ("exposure", w.is_public()),
        ];
        for (field, present) in fields {
            if present {
                out.push(r.at(
                    src,
                    t.spans.get(&w.path(field)).unwrap_or(0..0),
                    format!("ci workload `{}` sets `{field}`", w.name),
                ));
            }
        }
    }
    out
}
