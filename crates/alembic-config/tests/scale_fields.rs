//! `droplet.count`, `droplet.addresses`, `droplet.engine`, `[droplet.lb]`, `[droplet.rollout]`:
//! defaults, the documented examples, and one located diagnostic for every bad combination.

use alembic_config::{load_str, Code, Diagnostic, Engine, LbTls, OnFailure, Topology};

const HEAD: &str = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\n";
const PROVISIONED: &str = "region = \"nyc3\"\nsize = \"s-1vcpu-2gb\"\nimage = \"ubuntu-24-04-x64\"\nssh_keys = [\"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa\"]\nadmin_cidrs = [\"203.0.113.10/32\"]\n";
const TAIL: &str = "\n[ci]\nrepository = \"acme/demo\"\n\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\nexposure = \"public\"\nimage = \"ghcr.io/acme/api:1\"\nport = 8080\nroute = \"api.demo.example.com\"\nhealth = \"/healthz\"\n";

/// `[droplet]` holding `droplet` (its own keys), then `tables` (sub-tables), then the rest.
fn config(droplet: &str, tables: &str) -> String {
    format!("{HEAD}{droplet}{tables}{TAIL}")
}

fn load_ok(text: &str) -> Topology {
    let loaded = load_str("alembic.toml", text);
    loaded
        .topology
        .unwrap_or_else(|| panic!("valid: {:#?}\n{text}", loaded.diagnostics))
}

/// The single error is `code` and its span covers exactly `what`.
#[track_caller]
fn refused(text: &str, code: Code, what: &str) -> Diagnostic {
    let loaded = load_str("alembic.toml", text);
    assert!(loaded.topology.is_none(), "loaded:\n{text}");
    let d: Vec<&Diagnostic> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(d.len(), 1, "{text}\n{:#?}", loaded.diagnostics);
    assert_eq!(d[0].code, code, "{}", d[0].message);
    let span = d[0].span.clone().expect("located");
    assert_eq!(&text[span.clone()], what, "{}", d[0].message);
    let line = text[..span.start].matches('\n').count() + 1;
    assert_eq!(d[0].line, line, "{}", d[0].message);
    d[0].clone()
}

#[test]
fn defaults_are_one_compose_droplet_without_a_balancer() {
    let t = load_ok(&config(PROVISIONED, ""));
    let s = &t.droplet.scale;
    assert_eq!(s.count, 1);
    assert!(s.addresses.is_empty());
    assert_eq!(s.engine, Engine::Compose);
    assert!(s.lb.is_none() && s.load_balancer().is_none());
    assert_eq!(s.rollout.max_unavailable, 1);
    assert_eq!(s.rollout.on_failure, OnFailure::RollbackAll);
    assert_eq!(t.droplet.droplet_count(), 1);
    assert!(t.droplet.is_provisioned());
}

#[test]
fn the_documented_example_loads() {
    let t = load_ok(&config(
        &format!("{PROVISIONED}count = 3\nengine = \"compose\"\n"),
        "\n[droplet.lb]\ntls = \"terminate\"\nhealth = \"/healthz\"\n\n[droplet.rollout]\nmax_unavailable = 1\non_failure = \"rollback-all\"\n",
    ));
    let s = &t.droplet.scale;
    assert_eq!(s.count, 3);
    assert_eq!(t.droplet.droplet_count(), 3);
    let lb = s.lb.as_ref().unwrap();
    assert_eq!(lb.tls, LbTls::Terminate);
    assert_eq!(lb.health.as_str(), "/healthz");
    for (value, want) in [
        ("rollback-host", OnFailure::RollbackHost),
        ("pause", OnFailure::Pause),
    ] {
        let t = load_ok(&config(
            &format!("{PROVISIONED}count = 2\n"),
            &format!("[droplet.lb]\n[droplet.rollout]\non_failure = \"{value}\"\n"),
        ));
        assert_eq!(t.droplet.scale.rollout.on_failure, want);
    }
    // JSON keeps the alembic.toml names.
    let json = serde_json::to_value(&t.droplet).unwrap();
    assert_eq!(json["count"], 3);
    assert_eq!(json["engine"], "compose");
    assert_eq!(json["lb"]["tls"], "terminate");
    assert_eq!(json["rollout"]["on_failure"], "rollback-all");
}

#[test]
fn several_existing_servers_need_no_provisioning_fields() {
    let t = load_ok(&config(
        "addresses = [\"203.0.113.20\", \"203.0.113.21\"]\nengine = \"swarm\"\n",
        "[droplet.lb]\nhealth = \"/up\"\n",
    ));
    assert!(!t.droplet.is_provisioned());
    assert_eq!(t.droplet.droplet_count(), 2);
    assert_eq!(t.droplet.existing_addresses().len(), 2);
    assert_eq!(t.droplet.scale.engine, Engine::Swarm);
    assert_eq!(t.droplet.scale.lb.as_ref().unwrap().health.as_str(), "/up");
}

#[test]
fn kubernetes_has_a_balancer_by_default() {
    let t = load_ok(&config(
        &format!("{PROVISIONED}count = 3\nengine = \"kubernetes\"\n"),
        "",
    ));
    let lb = t.droplet.scale.load_balancer().unwrap();
    assert_eq!(lb.tls, LbTls::Terminate);
    assert_eq!(lb.health.as_str(), "/healthz");
}

#[test]
fn several_droplets_without_a_balancer_are_refused() {
    let d = refused(
        &config(&format!("{PROVISIONED}count = 3\n"), ""),
        Code::Cfg003,
        "3",
    );
    assert!(d.message.contains("[droplet.lb]"), "{}", d.message);
    refused(
        &config("addresses = [\"203.0.113.20\", \"203.0.113.21\"]\n", ""),
        Code::Cfg003,
        "[\"203.0.113.20\", \"203.0.113.21\"]",
    );
}

#[test]
fn address_beside_addresses_or_count_is_refused() {
    refused(
        &config(
            "address = \"203.0.113.20\"\naddresses = [\"203.0.113.21\"]\n",
            "",
        ),
        Code::Cfg004,
        "[\"203.0.113.21\"]",
    );
    refused(
        &config("address = \"203.0.113.20\"\ncount = 2\n", "[droplet.lb]\n"),
        Code::Cfg004,
        "2",
    );
    refused(
        &config(
            "addresses = [\"203.0.113.20\", \"203.0.113.21\"]\ncount = 2\n",
            "[droplet.lb]\n",
        ),
        Code::Cfg004,
        "2",
    );
}

#[test]
fn bad_values_are_located() {
    refused(
        &config(&format!("{PROVISIONED}count = 0\n"), ""),
        Code::Cfg004,
        "0",
    );
    refused(
        &config(&format!("{PROVISIONED}count = 101\n"), "[droplet.lb]\n"),
        Code::Cfg004,
        "101",
    );
    refused(
        &config(&format!("{PROVISIONED}count = \"3\"\n"), ""),
        Code::Cfg004,
        "\"3\"",
    );
    refused(
        &config(&format!("{PROVISIONED}engine = \"nomad\"\n"), ""),
        Code::Cfg004,
        "\"nomad\"",
    );
    refused(
        &config(
            "addresses = [\"203.0.113.20\", \"nope\"]\n",
            "[droplet.lb]\n",
        ),
        Code::Cfg004,
        "\"nope\"",
    );
    refused(
        &config(
            "addresses = [\"203.0.113.20\", \"203.0.113.20\"]\n",
            "[droplet.lb]\n",
        ),
        Code::Cfg005,
        "\"203.0.113.20\"",
    );
    refused(&config("addresses = []\n", ""), Code::Cfg004, "[]");
    refused(
        &config(
            &format!("{PROVISIONED}count = 2\n"),
            "[droplet.lb]\ntls = \"offload\"\n",
        ),
        Code::Cfg004,
        "\"offload\"",
    );
    refused(
        &config(
            &format!("{PROVISIONED}count = 2\n"),
            "[droplet.lb]\nhealth = \"healthz\"\n",
        ),
        Code::Cfg004,
        "\"healthz\"",
    );
    refused(
        &config(
            &format!("{PROVISIONED}count = 2\n"),
            "[droplet.lb]\nport = 80\n",
        ),
        Code::Cfg002,
        "port",
    );
    refused(
        &config(
            &format!("{PROVISIONED}count = 2\n"),
            "[droplet.lb]\n[droplet.rollout]\non_failure = \"retry\"\n",
        ),
        Code::Cfg004,
        "\"retry\"",
    );
    refused(
        &config(
            &format!("{PROVISIONED}count = 2\n"),
            "[droplet.lb]\n[droplet.rollout]\nmax_unavailable = 0\n",
        ),
        Code::Cfg004,
        "0",
    );
}

#[test]
fn passthrough_on_several_edges_is_refused() {
    let d = refused(
        &config(
            &format!("{PROVISIONED}count = 2\n"),
            "[droplet.lb]\ntls = \"passthrough\"\n",
        ),
        Code::Cfg004,
        "tls = \"passthrough\"",
    );
    assert!(d.help.as_deref().unwrap().contains("DNS-01"), "{d:?}");
    // One edge behind the balancer holds its own certificate: fine.
    let t = load_ok(&config(
        PROVISIONED,
        "[droplet.lb]\ntls = \"passthrough\"\n",
    ));
    assert_eq!(t.droplet.scale.lb.unwrap().tls, LbTls::Passthrough);
}

#[test]
fn max_unavailable_keeps_one_droplet_serving() {
    let d = refused(
        &config(
            &format!("{PROVISIONED}count = 3\n"),
            "[droplet.lb]\n[droplet.rollout]\nmax_unavailable = 3\n",
        ),
        Code::Cfg004,
        "3",
    );
    assert!(d.help.as_deref().unwrap().contains("at most 2"), "{d:?}");
    load_ok(&config(
        &format!("{PROVISIONED}count = 3\n"),
        "[droplet.lb]\n[droplet.rollout]\nmax_unavailable = 2\n",
    ));
}

#[test]
fn kubernetes_on_existing_servers_is_refused() {
    refused(
        &config("address = \"203.0.113.20\"\nengine = \"kubernetes\"\n", ""),
        Code::Cfg004,
        "\"kubernetes\"",
    );
}

/// The balancer's health check timing: DigitalOcean's defaults, values inside its bounds
/// kept (and what a rolling deploy waits from them), values outside refused at the key.
#[test]
fn balancer_timing_has_digitalocean_defaults_and_bounds() {
    let lb = |tables: &str| {
        load_ok(&config(&format!("{PROVISIONED}count = 2\n"), tables))
            .droplet
            .scale
            .lb
            .unwrap()
    };
    let d = lb("\n[droplet.lb]\n");
    assert_eq!(
        (
            d.check_interval_seconds,
            d.response_timeout_seconds,
            d.unhealthy_threshold,
            d.healthy_threshold
        ),
        (10, 5, 3, 5)
    );
    let short = lb("\n[droplet.lb]\ncheck_interval_seconds = 3\nresponse_timeout_seconds = 3\nunhealthy_threshold = 2\nhealthy_threshold = 4\n");
    assert_eq!(short.drain_wait().as_secs(), 3 * 2 + 3);
    assert_eq!(short.restore_wait().as_secs(), 3 * 4 + 3);
    for (key, bad) in [
        ("check_interval_seconds", "2"),
        ("response_timeout_seconds", "301"),
        ("unhealthy_threshold", "1"),
        ("healthy_threshold", "11"),
    ] {
        let d = refused(
            &config(
                &format!("{PROVISIONED}count = 2\n"),
                &format!("\n[droplet.lb]\n{key} = {bad}\n"),
            ),
            Code::Cfg004,
            bad,
        );
        assert!(d.message.contains(key), "{}", d.message);
    }
}
