//! `alembic topology`: planes, workloads, exposure and routes, as text, JSON, DOT or Mermaid.

use std::fmt::Write;

use alembic_config::{Exposure, Plane, Topology};

use crate::cli::{Global, TopologyFormat};
use crate::exit;
use crate::view::{CmdResult, Human, Outcome, View};

pub fn run(g: &Global, format: TopologyFormat) -> CmdResult {
    let (_, _, t) = crate::config::topology(g.config.as_deref())?;
    Ok(Outcome::new(exit::OK, TopologyView { t, format }))
}

/// The topology in the format asked for; JSON mode always gets the JSON document.
struct TopologyView {
    t: Topology,
    format: TopologyFormat,
}

impl View for TopologyView {
    fn human(&self, h: &mut Human) {
        h.out.push_str(&match self.format {
            TopologyFormat::Human => human(&self.t),
            TopologyFormat::Json => format!("{}\n", json(&self.t)),
            TopologyFormat::Dot => dot(&self.t),
            TopologyFormat::Mermaid => mermaid(&self.t),
        });
    }

    fn json(&self) -> serde_json::Value {
        json(&self.t)
    }
}

/// One row per workload, the implicit edge included.
struct Row {
    plane: Plane,
    name: String,
    exposure: &'static str,
    listens: String,
    route: String,
    runs: String,
}

fn rows(t: &Topology) -> Vec<Row> {
    let d = &t.droplet;
    let mut rows = vec![Row {
        plane: Plane::Droplet,
        name: "edge".into(),
        exposure: "public",
        listens: format!("{}:{},{} (80/443)", d.edge_bind, d.http_port, d.https_port),
        route: t
            .routes()
            .map(|(_, r)| r.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        runs: format!("caddy ({})", d.edge_image),
    }];
    for w in &t.workloads {
        let listens = match (w.plane, w.port) {
            (Plane::Droplet, Some(p)) => format!("container :{p} (internal)"),
            (Plane::Host, Some(p)) => {
                format!("{}:{p}", w.bind.map(|b| b.to_string()).unwrap_or_default())
            }
            (_, Some(p)) => format!(":{p}"),
            (_, None) => "-".into(),
        };
        let runs = match (&w.image, &w.schedule) {
            (Some(i), _) => format!("image {i}"),
            (None, _) if w.build.is_some() => {
                format!("build {}", w.build.as_ref().map_or("", |b| b.as_str()))
            }
            (None, Some(s)) => format!("schedule \"{s}\""),
            (None, None) if w.plane == Plane::Host => {
                if w.keep_alive {
                    "daemon (kept alive)".into()
                } else {
                    "on demand".into()
                }
            }
            (None, None) => "ci job".into(),
        };
        rows.push(Row {
            plane: w.plane,
            name: w.name.to_string(),
            exposure: if w.exposure == Exposure::Public {
                "public"
            } else {
                "private"
            },
            listens,
            route: w
                .route
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            runs,
        });
    }
    rows
}

fn plane_note(p: Plane) -> &'static str {
    match p {
        Plane::Host => "private: loopback/private addresses only, never public",
        Plane::Droplet => "the only plane that may be public, and only through the edge (80/443)",
        Plane::Ci => "stateless GitHub Actions jobs: no ports",
    }
}

fn human(t: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "project {} (domain {})",
        t.project.name, t.project.domain
    );
    let rows = rows(t);
    for plane in Plane::ALL {
        let _ = writeln!(out, "\nplane {plane}: {}", plane_note(plane));
        match plane {
            Plane::Host => {
                let _ = writeln!(
                    out,
                    "  driven by {}",
                    match t.host.os {
                        alembic_config::HostOs::Macos => "launchd (macos)",
                        alembic_config::HostOs::Linux => "systemd --user (linux)",
                    }
                );
            }
            Plane::Droplet => {
                let where_ = shape_line(t);
                let _ = writeln!(
                    out,
                    "  {where_}; ssh {}@:{} from {}",
                    t.droplet.ssh_user,
                    t.droplet.ssh_port,
                    t.droplet
                        .admin_cidrs
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Plane::Ci => {
                let _ = writeln!(
                    out,
                    "  {} on {} (branch {}, environment {})",
                    t.ci.repository, t.ci.runner, t.ci.branch, t.ci.environment
                );
                let _ = writeln!(
                    out,
                    "  checks: {}",
                    t.ci.checks
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let _ = writeln!(
                    out,
                    "  gates:  {}",
                    t.ci.gates
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let _ = writeln!(out, "  deploy: alembic apply --yes (on {})", t.ci.branch);
            }
        }
        let mine: Vec<&Row> = rows.iter().filter(|r| r.plane == plane).collect();
        if mine.is_empty() {
            continue;
        }
        let w = |f: fn(&Row) -> usize| mine.iter().map(|r| f(r)).max().unwrap_or(0);
        let (wn, we, wl, wr) = (
            w(|r| r.name.len()).max(8),
            8,
            w(|r| r.listens.len()).max(7),
            w(|r| r.route.len()).max(5),
        );
        let _ = writeln!(
            out,
            "  {:wn$}  {:we$}  {:wl$}  {:wr$}  RUNS",
            "WORKLOAD", "EXPOSURE", "LISTENS", "ROUTE"
        );
        for r in mine {
            let _ = writeln!(
                out,
                "  {:wn$}  {:we$}  {:wl$}  {:wr$}  {}",
                r.name, r.exposure, r.listens, r.route, r.runs
            );
        }
    }
    let _ = writeln!(out, "\nroutes (public, through the edge):");
    for (w, r) in t.routes() {
        let _ = writeln!(
            out,
            "  https://{r} -> {}:{}",
            w.name,
            w.port.map(|p| p.get()).unwrap_or(0)
        );
    }
    out
}

fn json(t: &Topology) -> serde_json::Value {
    let rows = rows(t);
    let planes: Vec<serde_json::Value> = Plane::ALL
        .iter()
        .map(|p| serde_json::json!({
            "name": p.as_str(),
            "may_be_public": *p == Plane::Droplet,
            "note": plane_note(*p),
            "workloads": rows.iter().filter(|r| r.plane == *p).map(|r| r.name.clone()).collect::<Vec<_>>(),
        }))
        .collect();
    let workloads: Vec<serde_json::Value> = std::iter::once(serde_json::json!({
        "name": "edge", "plane": "droplet", "exposure": "public", "implicit": true,
        "ports": [t.droplet.http_port, t.droplet.https_port],
    }))
    .chain(t.workloads.iter().map(|w| serde_json::json!({
        "name": w.name, "plane": w.plane, "exposure": w.exposure, "port": w.port,
        "bind": w.bind.map(|b| b.to_string()), "route": w.route.as_ref().map(|r| r.to_string()),
        "image": w.image, "build": w.build, "command": w.command, "schedule": w.schedule, "keep_alive": w.keep_alive,
        "depends_on": w.depends_on, "secrets": w.secrets,
    })))
    .collect();
    let routes: Vec<serde_json::Value> = t
        .routes()
        .map(|(w, r)| serde_json::json!({"route": r.to_string(), "workload": w.name, "port": w.port}))
        .collect();
    serde_json::json!({
        "format_version": 1,
        "project": t.project,
        "droplets": shape(t),
        "planes": planes,
        "workloads": workloads,
        "routes": routes,
    })
}

/// The droplet plane's shape: how many droplets, where, on which engine, behind what.
#[derive(serde::Serialize)]
struct Shape {
    count: usize,
    provisioned: bool,
    addresses: Vec<String>,
    engine: alembic_config::Engine,
    load_balancer: Option<alembic_config::LoadBalancer>,
}

fn shape(t: &Topology) -> Shape {
    let d = &t.droplet;
    Shape {
        count: d.droplet_count(),
        provisioned: d.is_provisioned(),
        addresses: d
            .existing_addresses()
            .iter()
            .map(|a| a.to_string())
            .collect(),
        engine: d.scale.engine,
        load_balancer: d.scale.load_balancer(),
    }
}

fn shape_line(t: &Topology) -> String {
    let s = shape(t);
    let mut line = match (s.provisioned, s.count) {
        (true, 1) => format!("droplet {} provisioned by Terraform", t.droplet.name),
        (true, n) => format!(
            "{n} droplets {}-1..{n} provisioned by Terraform",
            t.droplet.name
        ),
        (false, _) => format!("existing server(s) {}", s.addresses.join(", ")),
    };
    line.push_str(&format!(", engine {}", s.engine));
    if let Some(lb) = &s.load_balancer {
        line.push_str(&format!(
            ", behind a load balancer (TLS {}, health {})",
            lb.tls.as_str(),
            lb.health
        ));
    }
    line
}

/// DOT/Mermaid node ids: workload names are `[a-z0-9-]`, so `_` substitution is unambiguous.
fn id(name: &str) -> String {
    name.replace('-', "_")
}

/// A DOT node id: always quoted, since bare ids collide with DOT's keywords (`edge`, `node`,
/// `graph`, `subgraph`, `strict`, `digraph`) and a bare id may not start with a digit; workload
/// names are `[a-z0-9-]`, so nothing inside the quotes needs escaping.
fn dot_id(name: &str) -> String {
    format!("\"{name}\"")
}

fn dot(t: &Topology) -> String {
    let mut out =
        String::from("digraph alembic {\n  rankdir=LR;\n  \"internet\" [shape=doublecircle];\n");
    for plane in Plane::ALL {
        let _ = writeln!(
            out,
            "  subgraph cluster_{plane} {{\n    label=\"{plane} ({})\";",
            if plane == Plane::Droplet {
                "public via edge"
            } else {
                "private"
            }
        );
        if plane == Plane::Droplet {
            let _ = writeln!(out, "    \"edge\" [shape=box, label=\"edge (caddy)\"];");
        }
        for w in t.on_plane(plane) {
            let _ = writeln!(
                out,
                "    {} [label=\"{}\"];",
                dot_id(w.name.as_str()),
                w.name
            );
        }
        out.push_str("  }\n");
    }
    match t.droplet.scale.load_balancer() {
        Some(lb) => {
            let _ = writeln!(
                out,
                "  \"load_balancer\" [shape=box, label=\"load balancer (TLS {})\"];\n  \"internet\" -> \"load_balancer\" [label=\"443\"];\n  \"load_balancer\" -> \"edge\" [label=\"{} x {}\"];",
                lb.tls.as_str(),
                t.droplet.droplet_count(),
                t.droplet.scale.engine
            );
        }
        None => {
            let _ = writeln!(out, "  \"internet\" -> \"edge\" [label=\"443\"];");
        }
    }
    for (w, r) in t.routes() {
        let _ = writeln!(
            out,
            "  \"edge\" -> {} [label=\"{r}\"];",
            dot_id(w.name.as_str())
        );
    }
    for w in &t.workloads {
        for d in &w.depends_on {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed];",
                dot_id(w.name.as_str()),
                dot_id(d.as_str())
            );
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(t: &Topology) -> String {
    let mut out = String::from("flowchart LR\n  internet((internet))\n");
    for plane in Plane::ALL {
        let _ = writeln!(
            out,
            "  subgraph {plane}[\"{plane} ({})\"]",
            if plane == Plane::Droplet {
                "public via edge"
            } else {
                "private"
            }
        );
        if plane == Plane::Droplet {
            out.push_str("    edge[\"edge (caddy)\"]\n");
        }
        for w in t.on_plane(plane) {
            let _ = writeln!(out, "    {}[\"{}\"]", id(w.name.as_str()), w.name);
        }
        out.push_str("  end\n");
    }
    out.push_str("  internet -->|443| edge\n");
    for (w, r) in t.routes() {
        let _ = writeln!(out, "  edge -->|{r}| {}", id(w.name.as_str()));
    }
    for w in &t.workloads {
        for d in &w.depends_on {
            let _ = writeln!(out, "  {} -.-> {}", id(w.name.as_str()), id(d.as_str()));
        }
    }
    out
}
