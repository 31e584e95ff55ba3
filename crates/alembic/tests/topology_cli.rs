//! `alembic topology [--format human|json|dot|mermaid]` (DESIGN.md "Commands": planes,
//! workloads, exposure, routes), checked against the topology alembic-config loads from the same
//! file: the JSON lists exactly its planes and workloads with their plane, exposure and route;
//! the DOT output is parsed by the real Graphviz `dot` and draws every workload, the internet
//! reaching the edge alone, and one edge per public route; human and mermaid name every workload
//! and route. Wording is the view layer's: only names, codes and structure are asserted here.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::cli::alembic;

/// The default topology and every render fixture, each as (name, config text).
fn configs() -> Vec<(String, String)> {
    let mut v = vec![(
        "default".to_owned(),
        alembic_config::DEFAULT_TOML.to_owned(),
    )];
    let dir = alembic_testkit::workspace_root().join("crates/alembic-render/tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for p in paths {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        v.push((name, std::fs::read_to_string(&p).unwrap()));
    }
    v
}

fn topology(dir: &Path, format: &str) -> String {
    let out = alembic(dir)
        .args(["topology", "--format", format])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "topology --format {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn every_format_shows_exactly_the_loaded_topology() {
    let Some(dot) = alembic_testkit::tool("dot") else {
        return;
    };
    for (name, text) in configs() {
        let t = alembic_config::load_str("alembic.toml", &text)
            .topology
            .unwrap_or_else(|| panic!("{name} does not validate"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alembic.toml"), &text).unwrap();
        let names: BTreeSet<String> = t.workloads.iter().map(|w| w.name.to_string()).collect();
        let routes: BTreeSet<String> = t
            .workloads
            .iter()
            .filter_map(|w| w.route.as_ref().map(|r| r.to_string()))
            .collect();

        // JSON: the planes in order, every workload (plus the implicit edge) with its facts.
        let v: serde_json::Value = serde_json::from_str(&topology(dir.path(), "json")).unwrap();
        assert_eq!(v["format_version"], 1, "{name}");
        assert_eq!(v["project"]["name"], t.project.name.to_string(), "{name}");
        let planes: Vec<&str> = v["planes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(planes, ["host", "droplet", "ci"], "{name}");
        for p in v["planes"].as_array().unwrap() {
            let plane = alembic_config::Plane::parse(p["name"].as_str().unwrap()).unwrap();
            let listed: BTreeSet<String> = p["workloads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_owned())
                .filter(|w| w != "edge")
                .collect();
            let want: BTreeSet<String> = t.on_plane(plane).map(|w| w.name.to_string()).collect();
            assert_eq!(listed, want, "{name}: plane {plane}");
            assert_eq!(
                p["may_be_public"],
                plane == alembic_config::Plane::Droplet,
                "{name}: plane {plane}"
            );
        }
        let mut seen = BTreeSet::new();
        for w in v["workloads"].as_array().unwrap() {
            let wname = w["name"].as_str().unwrap();
            if w["implicit"] == true {
                assert_eq!(wname, "edge", "{name}: only the edge is implicit");
                assert_eq!(w["exposure"], "public");
                continue;
            }
            let m = t
                .workloads
                .iter()
                .find(|x| x.name.as_str() == wname)
                .unwrap_or_else(|| panic!("{name}: {wname} is not in the config"));
            assert_eq!(w["plane"], m.plane.as_str(), "{name}: {wname}");
            assert_eq!(
                w["exposure"],
                serde_json::to_value(m.exposure).unwrap(),
                "{name}: {wname}"
            );
            assert_eq!(
                w["route"],
                m.route
                    .as_ref()
                    .map_or(serde_json::Value::Null, |r| r.to_string().into()),
                "{name}: {wname}"
            );
            assert_eq!(
                w["port"],
                m.port
                    .map_or(serde_json::Value::Null, |p| u64::from(p.get()).into()),
                "{name}: {wname}"
            );
            assert!(
                seen.insert(wname.to_owned()),
                "{name}: {wname} listed twice"
            );
        }
        assert_eq!(seen, names, "{name}: the JSON workloads");

        // DOT: the real `dot` parses it; every workload is a node, only the edge is reached
        // from the internet, and each public route is an edge from the edge to its workload.
        let text_dot = topology(dir.path(), "dot");
        let src = dir.path().join("topology.dot");
        std::fs::write(&src, &text_dot).unwrap();
        let out = std::process::Command::new(&dot)
            .arg("-Tjson")
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: dot rejected the graph: {}\n{text_dot}",
            String::from_utf8_lossy(&out.stderr)
        );
        let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let objects = g["objects"].as_array().cloned().unwrap_or_default();
        let node = |gvid: &serde_json::Value| -> String {
            let o = objects
                .iter()
                .find(|o| o["_gvid"] == *gvid)
                .expect("edge endpoint is a node");
            o["label"]
                .as_str()
                .filter(|l| *l != "\\N")
                .unwrap_or_else(|| o["name"].as_str().unwrap())
                .to_owned()
        };
        let labels: BTreeSet<String> = objects
            .iter()
            .filter(|o| o.get("nodes").is_none())
            .map(|o| {
                o["label"]
                    .as_str()
                    .filter(|l| *l != "\\N")
                    .unwrap_or_else(|| o["name"].as_str().unwrap())
                    .to_owned()
            })
            .collect();
        for w in &names {
            assert!(labels.contains(w), "{name}: no node for {w}: {labels:?}");
        }
        // With a load balancer (droplet.lb), the internet reaches the balancer and only the
        // balancer reaches the edge; without one, the internet reaches the edge directly.
        let balanced = t.droplet.scale.load_balancer().is_some();
        let mut from_internet = BTreeSet::new();
        let mut from_balancer = BTreeSet::new();
        let mut routed = BTreeSet::new();
        for e in g["edges"].as_array().cloned().unwrap_or_default() {
            let (tail, head) = (node(&e["tail"]), node(&e["head"]));
            if tail == "internet" {
                from_internet.insert(head.clone());
            }
            if tail.starts_with("load balancer") {
                from_balancer.insert(head.clone());
            }
            if tail.starts_with("edge") {
                if let Some(l) = e["label"].as_str() {
                    let target = t
                        .workloads
                        .iter()
                        .find(|w| w.name.as_str() == head)
                        .unwrap_or_else(|| panic!("{name}: route to unknown {head}"));
                    assert_eq!(
                        target.route.as_ref().map(|r| r.to_string()).as_deref(),
                        Some(l),
                        "{name}: route edge to {head}"
                    );
                    routed.insert(l.to_owned());
                }
            }
        }
        if !routes.is_empty() {
            let to_edge = if balanced {
                assert_eq!(from_internet.len(), 1, "{name}: {from_internet:?}");
                assert!(
                    from_internet.iter().all(|n| n.starts_with("load balancer")),
                    "{name}: the internet reaches {from_internet:?}"
                );
                &from_balancer
            } else {
                assert!(from_balancer.is_empty(), "{name}: {from_balancer:?}");
                &from_internet
            };
            assert_eq!(to_edge.len(), 1, "{name}: {to_edge:?}");
            assert!(
                to_edge.iter().all(|n| n.starts_with("edge")),
                "{name}: the internet reaches {to_edge:?}"
            );
        }
        assert_eq!(routed, routes, "{name}: one edge per public route");

        // Human and mermaid name every workload and route.
        for format in ["human", "mermaid"] {
            let out = topology(dir.path(), format);
            for n in names.iter().chain(&routes) {
                assert!(
                    out.contains(n.as_str()),
                    "{name}: {format} lacks {n}:\n{out}"
                );
            }
        }
    }
}
