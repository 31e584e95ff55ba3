//! The droplet-plane artifacts of every fixture, run through their real checkers:
//! `terraform fmt -check`, `docker compose config`, `caddy validate` / `caddy adapt` /
//! `caddy fmt`. Plus the structural promises those checkers cannot see (only the edge
//! publishes ports, the firewall's SSH rule, no Terraform with `address`).

mod droplet_support;

use std::process::Command;

use alembic_render::{caddy, compose, terraform};
use droplet_support::*;

#[test]
fn terraform_fmt_accepts_every_fixture() {
    let Some(tf) = alembic_testkit::tool("terraform") else {
        return;
    };
    let mut checked = 0;
    for (name, t) in fixtures() {
        let arts = terraform::render(&t);
        if !t.droplet.is_provisioned() {
            assert!(
                arts.is_empty(),
                "{name}: `address` set but Terraform rendered"
            );
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(dir.path(), &arts);
        let tfdir = dir.path().join("infra/terraform");
        let out = run_ok(
            terraform_cmd(&tf)
                .args(["fmt", "-check", "-diff", "-recursive"])
                .arg(&tfdir),
            &format!("{name}: terraform fmt -check"),
        );
        assert!(
            out.stdout.is_empty(),
            "{name}: terraform fmt -diff printed a diff"
        );
        let out = run_ok(
            terraform_cmd(&tf)
                .args(["fmt", "-write=false", "-list=false", "-diff"])
                .arg(&tfdir),
            &format!("{name}: terraform fmt -write=false -diff"),
        );
        assert!(
            out.stdout.is_empty(),
            "{name}: terraform fmt would change:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} fixtures had Terraform");
}

#[test]
fn compose_config_accepts_every_fixture() {
    let Some(docker) = alembic_testkit::tool("docker") else {
        return;
    };
    for (name, t) in fixtures() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_release(dir.path(), &t);
        let mut cmd = Command::new(&docker);
        cmd.current_dir(dir.path())
            .args(["compose", "-f", "compose.yaml", "config", "-q"]);
        // Compose reads each secret from `ALEMBIC_SECRET_<NAME>` in its own environment.
        for s in secret_names(&t) {
            cmd.env(compose::secret_variable(&s), canary(&s));
        }
        run_ok(&mut cmd, &format!("{name}: docker compose config -q"));

        // A missing secret must stop compose, not start the service with an empty value.
        let wl_secrets: Vec<_> = t
            .on_plane(alembic_config::Plane::Droplet)
            .flat_map(|w| w.secrets.iter().map(|s| s.to_string()))
            .collect();
        if let Some(first) = wl_secrets.first() {
            let mut cmd = Command::new(&docker);
            cmd.current_dir(dir.path())
                .args(["compose", "-f", "compose.yaml", "config", "-q"])
                .env_remove(compose::secret_variable(first));
            for s in secret_names(&t).iter().filter(|s| *s != first) {
                cmd.env(compose::secret_variable(s), canary(s));
            }
            let out = cmd.output().expect("run docker compose");
            assert!(
                !out.status.success(),
                "{name}: compose accepted a missing {first}"
            );
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(&format!("{first} is required")),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn caddy_validates_adapts_and_keeps_format_for_every_fixture() {
    let Some(bin) = alembic_testkit::tool("caddy") else {
        return;
    };
    for (name, t) in fixtures() {
        let home = tempfile::tempdir().expect("tempdir");
        let art = &caddy::render(&t)[0];
        let file = home.path().join("Caddyfile");
        std::fs::write(&file, &art.bytes).expect("write");
        run_ok(
            caddy_cmd(&bin, home.path())
                .args(["validate", "--adapter", "caddyfile", "--config"])
                .arg(&file),
            &format!("{name}: caddy validate"),
        );
        let adapted = run_ok(
            caddy_cmd(&bin, home.path())
                .args(["adapt", "--adapter", "caddyfile", "--config"])
                .arg(&file),
            &format!("{name}: caddy adapt"),
        );
        // `caddy adapt` reports formatting and other problems as warnings on stderr.
        let stderr = String::from_utf8_lossy(&adapted.stderr);
        assert!(
            !stderr.contains("\"level\":\"warn\""),
            "{name}: caddy adapt warned:\n{stderr}"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&adapted.stdout).expect("adapt prints JSON");
        let routes = t.routes().count();
        if routes > 0 {
            assert!(
                json.pointer("/apps/http/servers").is_some(),
                "{name}: no HTTP server in the adapted config"
            );
        }
        let formatted = run_ok(
            caddy_cmd(&bin, home.path()).arg("fmt").arg(&file),
            &format!("{name}: caddy fmt"),
        );
        assert_eq!(
            String::from_utf8_lossy(&formatted.stdout),
            art.text(),
            "{name}: caddy fmt would reformat the Caddyfile"
        );
    }
}

#[test]
fn only_the_edge_publishes_ports() {
    for (name, t) in fixtures() {
        let yaml: yaml_serde::Value =
            yaml_serde::from_slice(&compose::render(&t)[0].bytes).expect("yaml");
        let services = yaml["services"].as_mapping().expect("services");
        for (svc, def) in services {
            let svc = svc.as_str().expect("name");
            let has_ports = def.get("ports").is_some();
            assert_eq!(
                has_ports,
                svc == compose::EDGE_SERVICE,
                "{name}: {svc} ports"
            );
            if svc != compose::EDGE_SERVICE {
                assert_eq!(def["networks"], yaml_serde::to_value(["internal"]).unwrap());
                let w = t.workload(svc).expect("service is a workload");
                assert_eq!(
                    def["read_only"],
                    yaml_serde::Value::Bool(w.read_only),
                    "{name}: {svc}: read-only root unless the workload opts out"
                );
                assert_eq!(
                    def.get("healthcheck").is_some(),
                    !w.healthcheck.is_empty(),
                    "{name}: {svc}: a compose healthcheck only when the workload names one"
                );
            }
        }
        let edge = &services[compose::EDGE_SERVICE];
        let ports: Vec<(i64, String)> = edge["ports"]
            .as_sequence()
            .expect("edge ports")
            .iter()
            .map(|p| {
                (
                    p["target"].as_i64().expect("target"),
                    p["published"].as_str().expect("published").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            vec![
                (80, t.droplet.http_port.to_string()),
                (443, t.droplet.https_port.to_string())
            ],
            "{name}"
        );
        assert_eq!(yaml["name"].as_str(), Some(t.project.name.as_str()));
    }
}

#[test]
fn firewall_and_records_follow_the_topology() {
    for (name, t) in fixtures() {
        // The load-balanced layout has its own test (scale_terraform.rs).
        if alembic_render::terraform_scale::is_scaled(&t) {
            continue;
        }
        let arts = terraform::render(&t);
        let Some(main) = arts.iter().find(|a| a.path.ends_with("/main.tf")) else {
            continue;
        };
        let body: hcl::Body = hcl::from_str(main.text()).expect("main.tf parses");
        let resources: Vec<&hcl::Block> = body
            .blocks()
            .filter(|b| b.identifier() == "resource")
            .collect();
        let of_type = |ty: &str| {
            resources
                .iter()
                .filter(|b| b.labels()[0].as_str() == ty)
                .copied()
                .collect::<Vec<_>>()
        };
        let firewall = of_type("digitalocean_firewall");
        assert_eq!(firewall.len(), 1, "{name}");
        let inbound: Vec<(String, Vec<String>)> = firewall[0]
            .body()
            .blocks()
            .filter(|b| b.identifier() == "inbound_rule")
            .map(|b| {
                let attr = |k: &str| {
                    b.body()
                        .attributes()
                        .find(|a| a.key() == k)
                        .map(|a| a.expr().clone())
                };
                let port = match attr("port_range") {
                    Some(hcl::Expression::String(s)) => s,
                    other => panic!("{name}: port_range {other:?}"),
                };
                let sources = match attr("source_addresses") {
                    Some(hcl::Expression::Array(v)) => v
                        .into_iter()
                        .map(|e| match e {
                            hcl::Expression::String(s) => s,
                            other => panic!("{other:?}"),
                        })
                        .collect(),
                    other => panic!("{name}: source_addresses {other:?}"),
                };
                (port, sources)
            })
            .collect();
        let everywhere = vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()];
        let admin: Vec<String> = t
            .droplet
            .admin_cidrs
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            inbound,
            vec![
                ("80".to_owned(), everywhere.clone()),
                ("443".to_owned(), everywhere),
                (t.droplet.ssh_port.to_string(), admin)
            ],
            "{name}"
        );
        let outbound = firewall[0]
            .body()
            .blocks()
            .filter(|b| b.identifier() == "outbound_rule")
            .count();
        assert_eq!(outbound, 3, "{name}: tcp, udp and icmp egress");
        let hosts: std::collections::BTreeSet<_> =
            t.routes().map(|(_, r)| r.host.clone()).collect();
        assert_eq!(of_type("digitalocean_record").len(), hosts.len(), "{name}");
        for ty in ["digitalocean_droplet", "digitalocean_reserved_ip"] {
            let b = of_type(ty);
            let lifecycle = b[0]
                .body()
                .blocks()
                .find(|b| b.identifier() == "lifecycle")
                .unwrap_or_else(|| panic!("{name}: {ty} without lifecycle"));
            assert!(
                lifecycle
                    .body()
                    .attributes()
                    .any(|a| a.key() == "prevent_destroy"
                        && *a.expr() == hcl::Expression::Bool(true)),
                "{name}: {ty} must be prevent_destroy"
            );
        }
        // The token reaches the provider by environment only: no file declares a variable or
        // sets a `token` anywhere (a variable's value is written into every plan file).
        fn token_free(body: &hcl::Body) -> bool {
            body.attributes().all(|a| a.key() != "token")
                && body
                    .blocks()
                    .all(|b| b.identifier() != "variable" && token_free(b.body()))
        }
        for a in arts.iter().filter(|a| a.path.ends_with(".tf")) {
            let body: hcl::Body = hcl::from_str(a.text()).expect("parses");
            assert!(token_free(&body), "{name}: {} declares a token", a.path);
        }
        let vars = arts
            .iter()
            .find(|a| a.path.ends_with("/variables.tf"))
            .expect("variables.tf");
        assert!(
            vars.text().contains(&format!(
                "from the\n# {} environment variable",
                t.droplet.token_env
            )),
            "{name}: {}",
            vars.text()
        );
    }
}

// Proves the fmt check above can fail: hcl-rs's own layout (one space before every `=`, what
// the alignment pass fixes) is rejected by the real `terraform fmt -check`.
#[test]
fn terraform_fmt_rejects_unaligned_hcl() {
    let Some(tf) = alembic_testkit::tool("terraform") else {
        return;
    };
    let t = fixture("default");
    let main = terraform::render(&t)
        .into_iter()
        .find(|a| a.path.ends_with("/main.tf"))
        .expect("main.tf");
    let unaligned: String = main
        .text()
        .lines()
        .map(|l| match l.split_once(" =") {
            Some((k, v)) if !k.trim_start().starts_with('"') => {
                format!("{} ={v}\n", k.trim_end())
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert_ne!(unaligned, main.text(), "the fixture has aligned runs");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("main.tf"), &unaligned).expect("write");
    let out = terraform_cmd(&tf)
        .args(["fmt", "-check"])
        .arg(dir.path())
        .output()
        .expect("run terraform");
    assert!(
        !out.status.success(),
        "terraform fmt -check accepted unaligned HCL"
    );
}

// An IPv6 bind address must reach compose as a host_ip, not be mangled by the short
// `ip:host:container` port syntax (which needs brackets around IPv6).
#[test]
fn ipv6_edge_bind_is_accepted_by_compose() {
    let Some(docker) = alembic_testkit::tool("docker") else {
        return;
    };
    let text = std::fs::read_to_string(fixtures_dir().join("tls-internal.toml"))
        .expect("fixture")
        .replacen("edge_bind   = \"127.0.0.1\"", "edge_bind   = \"::1\"", 1);
    let t = alembic_config::load_str("v6.toml", &text)
        .topology
        .expect("valid with ::1");
    let dir = tempfile::tempdir().expect("tempdir");
    write_release(dir.path(), &t);
    let out = run_ok(
        Command::new(&docker)
            .current_dir(dir.path())
            .args([
                "compose",
                "-f",
                "compose.yaml",
                "config",
                "--format",
                "json",
            ])
            .env(
                compose::secret_variable("HELLO_TOKEN"),
                canary("HELLO_TOKEN"),
            ),
        "docker compose config (IPv6 bind)",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ports = json["services"]["edge"]["ports"].as_array().expect("ports");
    assert!(ports.iter().all(|p| p["host_ip"] == "::1"), "{ports:?}");
}

/// A `build` workload's image was rendered as `image: ''`, which `docker compose config`
/// refuses: it is a reference the deploy fills in, and a pinned release file needs no variable.
#[test]
fn compose_config_accepts_build_workloads_referenced_and_pinned() {
    let Some(docker) = alembic_testkit::tool("docker") else {
        return;
    };
    let t = load(&fixtures_dir().join("ci/images.toml"));
    let built: Vec<_> = t
        .on_plane(alembic_config::Plane::Droplet)
        .filter(|w| w.build.is_some())
        .collect();
    assert!(built.len() >= 2, "the fixture builds images");
    let config = |yaml: &[u8], images: &[(String, &str)]| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        let mut cmd = Command::new(&docker);
        cmd.current_dir(dir.path()).args([
            "compose",
            "-f",
            "compose.yaml",
            "config",
            "--format",
            "json",
        ]);
        for s in secret_names(&t) {
            cmd.env(compose::secret_variable(&s), canary(&s));
        }
        for (k, v) in images {
            cmd.env(k, v);
        }
        cmd.output().expect("run docker compose")
    };
    let referenced = compose::render(&t).remove(0).bytes;
    let digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let images: Vec<(String, String)> = built
        .iter()
        .map(|w| {
            (
                alembic_render::github::image_env(w),
                format!("ghcr.io/acme/{}{digest}", w.name),
            )
        })
        .collect();
    let set: Vec<(String, &str)> = images
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str()))
        .collect();
    let out = config(&referenced, &set);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (w, (_, image)) in built.iter().zip(&images) {
        assert_eq!(json["services"][w.name.as_str()]["image"], image.as_str());
    }
    // Unset: compose stops, naming the workload, rather than running an empty image.
    let out = config(&referenced, &set[1..]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the image of {} is built", built[0].name)),
        "{err}"
    );
    // Pinned by image ID, as a release without a registry is: no variable needed.
    let id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let pins = built
        .iter()
        .map(|w| (w.name.to_string(), id.to_owned()))
        .collect();
    let pinned = compose::render_pinned(&t, &pins).remove(0).bytes;
    let out = config(&pinned, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["services"][built[0].name.as_str()]["image"], id);
}

/// Stateful workloads: named volumes (declared top-level, never host paths), the opt-out of
/// the read-only root, extra tmpfs, the user, and `depends_on` waiting for a dependency's
/// healthcheck — read back from the rendered file of the `stateful` fixture.
#[test]
fn stateful_fixture_mounts_named_volumes_and_waits_for_healthy_dependencies() {
    let (_, t) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "stateful")
        .expect("stateful fixture");
    let yaml: yaml_serde::Value =
        yaml_serde::from_slice(&compose::render(&t)[0].bytes).expect("yaml");
    let svc = |n: &str| yaml["services"][n].clone();
    let mounts = |n: &str| -> Vec<(String, String, String, bool)> {
        svc(n)["volumes"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .map(|m| {
                        (
                            m["type"].as_str().unwrap().to_owned(),
                            m["source"].as_str().unwrap().to_owned(),
                            m["target"].as_str().unwrap().to_owned(),
                            m["read_only"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let m = |k: &str, s: &str, tg: &str, ro: bool| (k.to_owned(), s.to_owned(), tg.to_owned(), ro);
    assert_eq!(
        mounts("db"),
        vec![m("volume", "pgdata", "/var/lib/postgresql/data", false)]
    );
    assert_eq!(
        mounts("api"),
        vec![
            m("volume", "uploads", "/srv/uploads", false),
            m("volume", "pgdata", "/srv/db-snapshot", true)
        ]
    );
    assert_eq!(
        mounts("cache"),
        vec![m("volume", "cache.v1", "/data", false)]
    );
    let declared: Vec<&str> = yaml["volumes"]
        .as_mapping()
        .expect("top-level volumes")
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for v in [
        "pgdata",
        "uploads",
        "cache.v1",
        "caddy_data",
        "caddy_config",
    ] {
        assert!(declared.contains(&v), "{v} not declared: {declared:?}");
    }
    assert_eq!(svc("db")["read_only"].as_bool(), Some(false));
    assert_eq!(svc("api")["read_only"].as_bool(), Some(true));
    let tmpfs = |n: &str| yaml_serde::from_value::<Vec<String>>(svc(n)["tmpfs"].clone()).unwrap();
    assert_eq!(tmpfs("db"), ["/tmp", "/run/postgresql"]);
    assert_eq!(tmpfs("cache"), ["/tmp", "/run/valkey"]);
    assert_eq!(svc("db")["user"].as_str(), Some("70:70"));
    assert_eq!(svc("api")["user"].as_str(), Some("app"));
    assert!(svc("cache").get("user").is_none());
    assert_eq!(
        svc("api")["depends_on"]["db"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        svc("api")["depends_on"]["cache"]["condition"].as_str(),
        Some("service_started")
    );
    assert_eq!(
        compose::workload_volume_names(&t),
        ["stateful_cache.v1", "stateful_pgdata", "stateful_uploads"]
    );
}
