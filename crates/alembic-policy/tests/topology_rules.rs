//! Position-exact tests for every code the topology rules emit: each case changes one thing in
//! a small valid config and asserts the code, severity, line and column of what is reported.

use alembic_config::{load_str, Code, Diagnostic, Severity};

const BASE: &str = r#"version = 1

[project]
name = "demo"
domain = "demo.example.com"

[host]
os = "linux"

[droplet]
name = "demo-prod"
region = "nyc3"
size = "s-1vcpu-2gb"
image = "ubuntu-24-04-x64"
ssh_keys = ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]
admin_cidrs = ["203.0.113.10/32"]
token_env = "DIGITALOCEAN_TOKEN"
acme_email = "ops@demo.example.com"
state_bucket = "demo-tfstate"

[ci]
repository = "acme/demo"
secrets = ["SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "DIGITALOCEAN_TOKEN", "DATABASE_URL"]

[[workload]]
name = "api"
plane = "droplet"
exposure = "public"
image = "ghcr.io/acme/api:1.0.0"
port = 8080
route = "api.demo.example.com"
secrets = ["DATABASE_URL"]

[[workload]]
name = "models"
plane = "host"
command = ["/usr/bin/ollama", "serve"]
port = 11434
bind = "127.0.0.1"
"#;

/// Load `text`, require it to validate, and run the config policy.
#[track_caller]
fn check(text: &str) -> Vec<Diagnostic> {
    let loaded = load_str("alembic.toml", text);
    assert!(
        !loaded.has_errors(),
        "fixture must validate: {:#?}",
        loaded.diagnostics
    );
    // BASE keeps the template's example values (domain, TEST-NET admin CIDR, key): their
    // CFG007 warnings are tested in placeholder_rules.rs, not repeated in every case here.
    alembic_policy::check_config(&loaded.source, loaded.topology.as_ref())
        .into_iter()
        .filter(|d| d.code != Code::Cfg007)
        .collect()
}

fn found(diags: &[Diagnostic]) -> Vec<(&'static str, Severity, usize, usize)> {
    diags
        .iter()
        .map(|d| (d.code.as_str(), d.severity, d.line, d.column))
        .collect()
}

#[track_caller]
fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

const E: Severity = Severity::Error;

#[test]
fn base_is_clean() {
    assert_eq!(found(&check(BASE)), []);
}

#[test]
fn default_topology_has_no_errors_over_config_and_rendered_artifacts() {
    let loaded = load_str(alembic_config::DEFAULT_NAME, alembic_config::DEFAULT_TOML);
    let t = loaded.topology.as_ref().expect("default validates");
    let policy = alembic_policy::check_config(&loaded.source, Some(t));
    // Only warnings: the template's placeholders (CFG007, placeholder_rules.rs).
    assert!(policy.iter().all(|d| !d.is_error()), "{policy:#?}");
    let set = alembic_render::render(t);
    let artifacts = alembic_policy::scan_artifacts(&set, &alembic_policy::ScanContext::of(t));
    assert_eq!(
        artifacts.iter().filter(|d| d.is_error()).count(),
        0,
        "{artifacts:#?}"
    );
}

#[test]
fn exp001_public_host_workload_points_at_exposure() {
    let text = format!("{BASE}exposure = \"public\"\n");
    let d = check(&text);
    assert_eq!(found(&d), [("EXP001", E, 40, 1)]);
    assert!(d[0].message.contains("`models`"), "{}", d[0].message);
}

#[test]
fn exp002_host_bound_to_every_interface() {
    let d = check(&replace("bind = \"127.0.0.1\"", "bind = \"0.0.0.0\""));
    assert_eq!(found(&d), [("EXP002", E, 39, 1)]);
    // A tailnet (CGNAT) address is private enough.
    let d = check(&replace(
        "bind = \"127.0.0.1\"",
        "bind = \"100.101.102.103\"",
    ));
    assert_eq!(found(&d), []);
}

#[test]
fn exp004_missing_route_points_at_exposure() {
    let d = check(&replace("route = \"api.demo.example.com\"\n", ""));
    assert_eq!(found(&d), [("EXP004", E, 28, 1)]);
}

#[test]
fn exp004_route_outside_domain() {
    let d = check(&replace(
        "route = \"api.demo.example.com\"",
        "route = \"api.elsewhere.example.org\"",
    ));
    assert_eq!(found(&d), [("EXP004", E, 31, 1)]);
}

#[test]
fn exp004_duplicate_route_points_at_the_second() {
    let text = BASE.replacen(
        "[[workload]]\nname = \"models\"",
        "[[workload]]\nname = \"api2\"\nplane = \"droplet\"\nexposure = \"public\"\nimage = \"ghcr.io/acme/api:1.0.0\"\nport = 8080\nroute = \"api.demo.example.com\"\n\n[[workload]]\nname = \"models\"",
        1,
    );
    let d = check(&text);
    assert_eq!(found(&d), [("EXP004", E, 40, 1)]);
    assert!(d[0].message.contains("`api`"), "{}", d[0].message);
}

#[test]
fn exp005_admin_cidrs_whole_internet() {
    let d = check(&replace(
        "admin_cidrs = [\"203.0.113.10/32\"]",
        "admin_cidrs = [\"203.0.113.10/32\", \"::/0\"]",
    ));
    assert_eq!(found(&d), [("EXP005", E, 16, 35)]);
}

// Regression (issue 9, item 9): two /1s per family are the whole internet without any /0.
#[test]
fn exp005_ranges_that_together_cover_the_internet() {
    let d = check(&replace(
        "admin_cidrs = [\"203.0.113.10/32\"]",
        "admin_cidrs = [\"0.0.0.0/1\", \"128.0.0.0/1\", \"::/1\", \"8000::/1\"]",
    ));
    assert_eq!(found(&d), [("EXP005", E, 16, 16), ("EXP005", E, 16, 44)]);
    assert!(
        d[0].message.contains("100% of the IPv4"),
        "{}",
        d[0].message
    );
    assert!(
        d[1].message.contains("100% of the IPv6"),
        "{}",
        d[1].message
    );
    // Half the IPv4 space alone is the world too; a /8 and IPv6 ULA are not.
    let d = check(&replace(
        "admin_cidrs = [\"203.0.113.10/32\"]",
        "admin_cidrs = [\"10.0.0.0/8\", \"0.0.0.0/1\"]",
    ));
    assert_eq!(found(&d), [("EXP005", E, 16, 16)]);
    let d = check(&replace(
        "admin_cidrs = [\"203.0.113.10/32\"]",
        "admin_cidrs = [\"10.0.0.0/8\", \"fd00::/8\", \"2001:db8::/32\"]",
    ));
    assert_eq!(found(&d), []);
}

#[test]
fn exp007_ci_workload_with_a_port() {
    let text = format!(
        "{BASE}\n[[workload]]\nname = \"lint\"\nplane = \"ci\"\ncommand = [\"make\", \"lint\"]\nport = 9000\n"
    );
    let d = check(&text);
    assert_eq!(found(&d), [("EXP007", E, 45, 1)]);
}

#[test]
fn cfg006_workload_secret_not_deliverable_by_ci() {
    let d = check(&replace(
        "\"DIGITALOCEAN_TOKEN\", \"DATABASE_URL\"]",
        "\"DIGITALOCEAN_TOKEN\"]",
    ));
    assert_eq!(found(&d), [("CFG006", E, 32, 12)]);
}

#[test]
fn cfg006_token_env_not_in_ci_secrets() {
    let d = check(&replace(
        "\"DIGITALOCEAN_TOKEN\", \"DATABASE_URL\"]",
        "\"DATABASE_URL\"]",
    ));
    assert_eq!(found(&d), [("CFG006", E, 17, 1)]);
    // With an existing server, Terraform (and its token) is not used.
    let text = replace(
        "\"DIGITALOCEAN_TOKEN\", \"DATABASE_URL\"]",
        "\"DATABASE_URL\"]",
    )
    .replacen(
        "region = \"nyc3\"",
        "address = \"203.0.113.20\"\nregion = \"nyc3\"",
        1,
    );
    assert_eq!(found(&check(&text)), []);
}

/// A fake token: the real prefix and length, an obviously repeating body.
fn fake_do_token() -> String {
    format!("dop_v1_{}", "0123456789abcdef".repeat(4))
}

#[test]
fn sec001_token_in_env_value_never_echoed() {
    let token = fake_do_token();
    let text = replace(
        "secrets = [\"DATABASE_URL\"]",
        &format!("secrets = [\"DATABASE_URL\"]\nenv = {{ GREETING = \"{token}\" }}"),
    );
    let d = check(&text);
    assert_eq!(found(&d), [("SEC001", E, 33, 21)]);
    let json = alembic_config::diag::diagnostics_json(&d).to_string();
    assert!(!json.contains(&token[7..]), "the token leaked: {json}");
    assert!(json.contains("dop_v1_"));
}

#[test]
fn sec001_high_entropy_under_secret_like_key() {
    let text = replace(
        "secrets = [\"DATABASE_URL\"]",
        "secrets = [\"DATABASE_URL\"]\nenv = { API_TOKEN = \"q8Zr2LmX0vTw9KpB4sYd7Hn\" }",
    );
    let d = check(&text);
    assert_eq!(found(&d), [("SEC001", E, 33, 22)]);
    assert_eq!(d[0].code, Code::Sec001);
    assert!(!d[0].message.contains("q8Zr2"));
}

#[test]
fn sec001_found_even_when_the_config_is_invalid() {
    let token = fake_do_token();
    let text = format!("{BASE}bogus_key = \"{token}\"\n");
    let loaded = load_str("alembic.toml", &text);
    assert!(loaded.has_errors());
    let d = alembic_policy::check_config(&loaded.source, loaded.topology.as_ref());
    assert_eq!(found(&d), [("SEC001", E, 40, 14)]);
}

const W: Severity = Severity::Warning;

#[test]
fn cfg003_provisioned_droplet_without_remote_state_warns_at_the_droplet_table() {
    let d = check(&replace("state_bucket = \"demo-tfstate\"\n", ""));
    // `[droplet]` is line 10; the table's span starts at its name.
    assert_eq!(found(&d), [("CFG003", W, 10, 2)]);
    assert!(
        d[0].message.starts_with("no remote state: "),
        "{}",
        d[0].message
    );
    assert!(
        d[0].help
            .as_deref()
            .is_some_and(|h| h.contains("state_bucket")),
        "{:?}",
        d[0].help
    );
    // An existing server has no Terraform, so no state to keep.
    let byo = replace("state_bucket = \"demo-tfstate\"\n", "").replacen(
        "region = \"nyc3\"",
        "address = \"203.0.113.20\"\nregion = \"nyc3\"",
        1,
    );
    assert_eq!(found(&check(&byo)), []);
}

#[test]
fn cfg006_state_credentials_not_in_ci_secrets() {
    // Defaulted names have no key of their own: both point at `state_bucket` (line 19).
    let d = check(&replace(
        "\"SPACES_ACCESS_KEY_ID\", \"SPACES_SECRET_ACCESS_KEY\", ",
        "",
    ));
    assert_eq!(found(&d), [("CFG006", E, 19, 1), ("CFG006", E, 19, 1)]);
    assert!(
        d[0].message.contains("`SPACES_ACCESS_KEY_ID`"),
        "{}",
        d[0].message
    );
    assert!(
        d[1].message.contains("`SPACES_SECRET_ACCESS_KEY`"),
        "{}",
        d[1].message
    );
    // A named key is reported at its own line.
    let d = check(&replace(
        "state_bucket = \"demo-tfstate\"",
        "state_bucket = \"demo-tfstate\"\nstate_secret_key_env = \"DEMO_SPACES_SECRET\"",
    ));
    assert_eq!(found(&d), [("CFG006", E, 20, 1)]);
    assert!(d[0]
        .message
        .contains("state_secret_key_env `DEMO_SPACES_SECRET`"));
}

/// Line and column (1-based) of the first `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (text[..at].matches('\n').count() + 1, at - line_start + 1)
}

const MODELS_COMMAND: &str = "command = [\"/usr/bin/ollama\", \"serve\"]";

// Regression (issue 9): `python3 -m http.server --bind 0.0.0.0` with bind = "127.0.0.1"
// passed `check`; the daemon served every interface.
#[test]
fn exp010_a_command_that_hard_codes_every_interface() {
    let text = replace(
        MODELS_COMMAND,
        "command = [\"python3\", \"-m\", \"http.server\", \"--bind\", \"0.0.0.0\"]",
    );
    let d = check(&text);
    let (line, column) = pos(&text, "\"0.0.0.0\"");
    assert_eq!(found(&d), [("EXP010", W, line, column)]);
    assert!(
        d[0].message.contains("`models`") && d[0].message.contains("0.0.0.0 (every interface)"),
        "{}",
        d[0].message
    );
}

#[test]
fn exp010_placeholders_and_matching_literals_are_clean() {
    for command in [
        "[\"python3\", \"-m\", \"http.server\", \"--bind\", \"{bind}\", \"{port}\"]",
        "[\"srv\", \"--listen=[{bind}]:{port}\"]",
        "[\"srv\", \"--host\", \"127.0.0.1\", \"--port=11434\"]",
        "[\"srv\", \"--bind\", \"localhost:11434\"]",
        // Reads HOST/PORT (or its own default): nothing to see in the text.
        "[\"/usr/bin/ollama\", \"serve\"]",
        // Not a listen flag: an upstream it connects to.
        "[\"proxy\", \"--upstream\", \"10.0.0.5:80\"]",
    ] {
        let d = check(&replace(MODELS_COMMAND, &format!("command = {command}")));
        assert_eq!(found(&d), [], "{command}");
    }
}

#[test]
fn exp010_other_hard_coded_addresses_and_ports() {
    for (command, bad) in [
        ("[\"srv\", \"--host=0.0.0.0\"]", "\"--host=0.0.0.0\""),
        ("[\"srv\", \"-b\", \"192.168.1.10\"]", "\"192.168.1.10\""),
        ("[\"srv\", \"--port\", \"8000\"]", "\"8000\""),
        ("[\"srv\", \"--listen\", \":11434\"]", "\":11434\""),
        (
            "[\"srv\", \"--listen\", \"127.0.0.1:9\"]",
            "\"127.0.0.1:9\"",
        ),
        ("[\"php\", \"-S\", \"0.0.0.0:8000\"]", "\"0.0.0.0:8000\""),
        ("[\"srv\", \"[::]:11434\"]", "\"[::]:11434\""),
    ] {
        let text = replace(MODELS_COMMAND, &format!("command = {command}"));
        let d = check(&text);
        let (line, column) = pos(&text, bad);
        assert_eq!(found(&d), [("EXP010", W, line, column)], "{command}");
    }
}

#[test]
fn exp010_env_host_or_port_that_disagrees_and_a_placeholder_without_a_value() {
    let text = format!("{BASE}env = {{ HOST = \"0.0.0.0\", PORT = \"11434\" }}\n");
    let d = check(&text);
    assert_eq!(found(&d), [("EXP010", W, 40, 9)]);
    assert!(d[0].message.contains("env HOST"), "{}", d[0].message);
    let text = format!(
        "{BASE}\n[[workload]]\nname = \"job\"\nplane = \"host\"\ncommand = [\"run\", \"--port={{port}}\"]\nschedule = \"0 3 * * *\"\n"
    );
    let d = check(&text);
    let (line, column) = pos(&text, "\"--port={port}\"");
    assert_eq!(found(&d), [("EXP010", W, line, column)]);
    assert!(d[0].message.contains("sets no `port`"), "{}", d[0].message);
}

// Regression (issue 14): an inline secret in the config was reported twice, at the config line
// and again in the rendered compose file the user never wrote. One problem, one finding.
#[test]
fn inline_secret_is_reported_once_at_the_config() {
    let text = replace(
        "secrets = [\"DATABASE_URL\"]\n",
        "secrets = [\"DATABASE_URL\"]\nenv = { PAYMENTS = \"sk_live_aB3dE5fG7hJ9kL2mN4pQ6rS8\", API_SECRET = \"q8Zr2LmX0vTw9KpB4sYd7Hn\", LOG_LEVEL = \"info\" }\n",
    );
    let loaded = load_str("alembic.toml", &text);
    let t = loaded.topology.as_ref().expect("validates");
    let at_config = check(&text);
    assert_eq!(
        found(&at_config),
        [("SEC001", E, 33, 21), ("SEC001", E, 33, 70)]
    );
    let set = alembic_render::render(t);
    let compose = set
        .iter()
        .find(|a| a.path.ends_with("compose.yaml"))
        .expect("a compose file");
    // The rendered compose does carry the values (so a scan without the config would flag them)...
    assert_eq!(
        alembic_policy::scan_text(&compose.path, compose.text(), None)
            .iter()
            .filter(|d| d.code == Code::Sec001)
            .count(),
        2
    );
    // ...but judged as the config's artifacts, they are not reported again.
    let rendered = alembic_policy::scan_artifacts(&set, &alembic_policy::ScanContext::of(t));
    assert!(
        rendered.iter().all(|d| d.code != Code::Sec001),
        "{rendered:#?}"
    );
}

// Regression: admin_cidrs that cover the internet were reported at the config and again at the
// rendered firewall's SSH rule built from them. A firewall rule with other world sources is
// still reported.
#[test]
fn world_admin_cidrs_are_reported_once_at_the_config() {
    let text = replace(
        "admin_cidrs = [\"203.0.113.10/32\"]",
        "admin_cidrs = [\"0.0.0.0/1\", \"128.0.0.0/1\"]",
    );
    let loaded = load_str("alembic.toml", &text);
    let t = loaded.topology.as_ref().expect("validates");
    assert_eq!(found(&check(&text)), [("EXP005", E, 16, 16)]);
    let ctx = alembic_policy::ScanContext::of(t);
    let set = alembic_render::render(t);
    let rendered = alembic_policy::scan_artifacts(&set, &ctx);
    assert!(
        rendered.iter().all(|d| d.code != Code::Exp005),
        "{rendered:#?}"
    );
    let other = "resource \"digitalocean_firewall\" \"x\" {\n  inbound_rule {\n    protocol         = \"tcp\"\n    port_range       = \"22\"\n    source_addresses = [\"0.0.0.0/0\"]\n  }\n}\n";
    let d = alembic_policy::scan_text_with("extra.tf", other, None, &ctx);
    assert_eq!(found(&d), [("EXP005", E, 5, 25)]);
}
