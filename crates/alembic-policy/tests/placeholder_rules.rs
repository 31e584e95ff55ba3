//! CFG007, placeholders left from the `alembic init` template: position-exact over the template
//! itself, and the configs that must stay clean (the loopback E2E shape with `tls = "internal"`).

use alembic_config::{load_str, Code, Diagnostic, Severity};

#[track_caller]
fn cfg007(text: &str) -> Vec<(usize, usize, String)> {
    let loaded = load_str("alembic.toml", text);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let d: Vec<Diagnostic> = alembic_policy::check_config(&loaded.source, loaded.topology.as_ref());
    d.into_iter()
        .filter(|d| d.code == Code::Cfg007)
        .inspect(|d| assert_eq!(d.severity, Severity::Warning, "{d:?}"))
        .map(|d| (d.line, d.column, d.message))
        .collect()
}

// The untouched template passed `check` and went on to Terraform: every placeholder that would
// break a real deploy is now located, as a warning.
#[test]
fn the_init_template_warns_at_each_placeholder() {
    let found = cfg007(alembic_config::DEFAULT_TOML);
    let at: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    let line_of = |needle: &str| {
        alembic_config::DEFAULT_TOML
            .lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in the template"))
    };
    let col = |needle: &str, value: &str| {
        let line = alembic_config::DEFAULT_TOML
            .lines()
            .find(|l| l.starts_with(needle))
            .unwrap();
        line.find(value).unwrap() + 1
    };
    assert_eq!(
        at,
        [
            // A scalar is located at its key, an array item at the item.
            (line_of("domain = "), 1),
            (line_of("ssh_keys "), col("ssh_keys ", "\"3b")),
            (line_of("admin_cidrs "), col("admin_cidrs ", "\"203")),
            (line_of("acme_email "), 1),
            (line_of("repository "), 1),
        ],
        "{found:#?}"
    );
    let all: String = found.iter().map(|(_, _, m)| format!("{m}\n")).collect();
    for needle in [
        "alembic.example.com",
        "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
        "203.0.113.10/32",
        "ops@alembic.example.com",
        "acme/alembic",
    ] {
        assert!(all.contains(needle), "{needle} not named in\n{all}");
    }
}

/// The loopback E2E shape: `.test` domain with the private CA, 127.0.0.1 as the server.
const LOOPBACK: &str = r#"version = 1
[project]
name = "e2e"
domain = "e2e.test"
[droplet]
name = "e2e-droplet"
ssh_user = "root"
admin_cidrs = ["127.0.0.1/32"]
token_env = "DIGITALOCEAN_TOKEN"
tls = "internal"
root = "/tmp/e2e-root"
address = "127.0.0.1"
[ci]
repository = "acme/e2e"
environment = "production"
[[workload]]
name = "api"
plane = "droplet"
exposure = "public"
image = "caddy:2"
port = 8080
route = "api.e2e.test"
"#;

#[test]
fn loopback_tests_with_the_private_ca_stay_clean() {
    assert_eq!(cfg007(LOOPBACK), []);
    // A documentation admin range guards nothing on a loopback target either.
    assert_eq!(
        cfg007(&LOOPBACK.replace("127.0.0.1/32", "203.0.113.10/32")),
        []
    );
}

#[test]
fn reserved_domain_matters_only_with_a_public_ca() {
    let staging = LOOPBACK.replace("tls = \"internal\"", "tls = \"acme-staging\"");
    let found = cfg007(&staging);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (4, 1));
    assert!(found[0].2.contains("`e2e.test`"), "{}", found[0].2);
    let real = staging.replace("e2e.test", "e2e.alembic.dev");
    assert_eq!(cfg007(&real), []);
}

#[test]
fn documentation_address_of_a_real_target_is_flagged() {
    let text = LOOPBACK.replace("address = \"127.0.0.1\"", "address = \"203.0.113.20\"");
    let found = cfg007(&text);
    let lines: Vec<usize> = found.iter().map(|f| f.0).collect();
    assert_eq!(lines, [12], "{found:#?}");
    assert!(found[0].2.contains("203.0.113.20"), "{}", found[0].2);
    // Now the admin range guards a real server: a TEST-NET range there is flagged too.
    let both = text.replace("127.0.0.1/32", "2001:db8::/48");
    let lines: Vec<usize> = cfg007(&both).iter().map(|f| f.0).collect();
    assert_eq!(lines, [8, 12]);
}

#[test]
fn template_repository_in_any_case() {
    let found = cfg007(&LOOPBACK.replace("acme/e2e", "ACME/Alembic"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, 14);
}
