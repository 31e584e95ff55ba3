//! Position-exact tests for every code the artifact rules emit (compose, Terraform, workflows,
//! secret shapes in any text), and the planted/clean fixture sets under `tests/fixtures/scan`.

use alembic_config::{Diagnostic, Severity};
use alembic_policy::{scan_text, FileKind};

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

fn found(diags: &[Diagnostic]) -> Vec<(&'static str, Severity, usize, usize)> {
    diags
        .iter()
        .map(|d| (d.code.as_str(), d.severity, d.line, d.column))
        .collect()
}

// ---- compose -----------------------------------------------------------------------------

#[test]
fn exp003_short_and_long_port_syntax() {
    let text = "\
services:
  edge:
    image: caddy:2.10-alpine
    ports: [\"80:80\", \"443:443\"]
  models:
    image: ollama/ollama:0.6.0
    ports:
      - 11434
      - \"127.0.0.1:8080:8080\"
      - \"[::]:9000:9000\"
      - target: 5432
        host_ip: 0.0.0.0
      - target: 6379
        published: 6379
  api:
    image: ghcr.io/acme/api:1
    ports: [\"127.0.0.1:1:1\", \"3000:3000\"]
";
    let d = scan_text("compose.yaml", text, None);
    assert_eq!(
        found(&d),
        [
            ("EXP003", E, 8, 9),
            ("EXP003", E, 10, 9),
            ("EXP003", E, 12, 18),
            ("EXP003", E, 14, 20),
            ("EXP003", E, 17, 30),
        ]
    );
}

#[test]
fn exp008_privileged_host_namespaces_and_docker_socket() {
    let text = "\
services:
  a:
    image: x:1
    privileged: true
    network_mode: host
  b:
    image: x:1
    pid: \"host\"
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
      - data:/data
      - type: bind
        source: /run/docker.sock
        target: /var/run/docker.sock
";
    let d = scan_text("docker-compose.yml", text, None);
    assert_eq!(
        found(&d),
        [
            ("EXP008", E, 4, 17),
            ("EXP008", E, 5, 19),
            ("EXP008", E, 8, 10),
            ("EXP008", E, 10, 9),
            ("EXP008", E, 13, 17),
        ]
    );
}

// ---- Terraform ---------------------------------------------------------------------------

const FIREWALL: &str = r#"resource "digitalocean_firewall" "web" {
  name = "web"

  inbound_rule {
    protocol         = "tcp"
    port_range       = "80"
    source_addresses = ["0.0.0.0/0", "::/0"]
  }

  inbound_rule {
    protocol         = "tcp"
    port_range       = "443"
    source_addresses = ["0.0.0.0/0", "::/0"]
  }

  inbound_rule {
    protocol         = "tcp"
    port_range       = "5432"
    source_addresses = ["::/0"]
  }

  inbound_rule {
    protocol   = "tcp"
    port_range = "1-65535"
    source_addresses = [
      "10.0.0.0/8",
      "0.0.0.0/0",
    ]
  }

  inbound_rule {
    protocol         = "icmp"
    source_addresses = ["0.0.0.0/0"]
  }
}
"#;

#[test]
fn exp005_and_exp006_judged_per_rule_and_per_port() {
    let d = scan_text("infra/main.tf", FIREWALL, None);
    assert_eq!(
        found(&d),
        [
            ("EXP006", E, 18, 24),
            ("EXP006", E, 24, 18),
            ("EXP005", E, 27, 7),
        ]
    );
    assert!(d[2].message.contains("inbound rule #4"), "{}", d[2].message);
}

// If the file does not parse (here: an unterminated block elsewhere), text heuristics still
// find SSH open to the world in a non-first rule.
#[test]
fn exp005_text_fallback_when_hcl_does_not_parse() {
    let text = "resource \"digitalocean_firewall\" \"web\" {\n  inbound_rule {\n    protocol = \"tcp\"\n    port_range = \"443\"\n    source_addresses = [\"0.0.0.0/0\"]\n  }\n  inbound_rule {\n    protocol = \"tcp\"\n    port_range = \"22\"\n    source_addresses = [\"0.0.0.0/0\"]\n  }\n}\nlocals { x = = 1 }\n";
    assert!(hcl_edit::parser::parse_body(text).is_err());
    let d = scan_text("main.tf", text, None);
    // The parse failure itself is reported too, where the parser stopped.
    assert_eq!(found(&d), [("EXP005", E, 10, 25), ("CFG001", E, 13, 14)]);
}

#[test]
fn aws_style_ingress_and_ssh_port_context() {
    let text = r#"resource "aws_security_group" "sg" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"#;
    let d = scan_text("sg.tf", text, Some(FileKind::Terraform));
    assert_eq!(found(&d), [("EXP005", E, 6, 20)]);
    // With SSH on another port (droplet.ssh_port), port 22 is just an unneeded open port.
    let ctx = alembic_policy::ScanContext {
        ssh_port: 2222,
        public_ports: vec![80, 443],
        ..Default::default()
    };
    let d = alembic_policy::scan_text_with("sg.tf", text, None, &ctx);
    assert_eq!(found(&d), [("EXP006", E, 3, 19)]);
}

// ---- workflows ---------------------------------------------------------------------------

const WORKFLOW: &str = r#"name: ci
on: [push, issue_comment]
permissions: write-all
concurrency:
  group: ci
  cancel-in-progress: true
jobs:
  test:
    runs-on: ubuntu-24.04
    permissions: write-all
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/local
      - uses: docker://alpine:3.20
      - run: echo "${{ github.sha }} ${{ github.event.comment.body }}"
      - name: many lines
        run: |
          echo start
          git checkout "${{ github.head_ref }}"
  deploy:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    concurrency:
      group: deploy
      cancel-in-progress: true
    steps:
      - run: alembic apply --yes
"#;

#[test]
fn ci_rules_point_at_the_offending_values() {
    let d = scan_text(".github/workflows/ci.yml", WORKFLOW, None);
    assert_eq!(
        found(&d),
        [
            ("CI002", E, 3, 14),
            ("CI004", E, 6, 23),
            ("CI002", E, 10, 18),
            ("CI001", E, 12, 15),
            ("CI001", E, 14, 15),
            ("CI003", E, 15, 38),
            ("CI003", E, 19, 25),
            ("CI004", E, 20, 3),
            ("CI004", E, 26, 27),
        ]
    );
}

#[test]
fn ci002_missing_top_level_permissions_is_a_warning() {
    let text =
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo hi\n";
    let d = scan_text("wf.yml", text, None);
    assert_eq!(found(&d), [("CI002", W, 2, 1)]);
}

// ---- secrets in any text -----------------------------------------------------------------

#[test]
fn sec001_any_text_file_any_key() {
    let gh = format!("ghp_{}", "aB3".repeat(12));
    let text = format!("# notes\nthe value is {gh} ok\npassword=q8Zr2LmX0vTw9KpB4sYd7Hn\n");
    let d = scan_text("notes.txt", &text, None);
    assert_eq!(found(&d), [("SEC001", E, 2, 14), ("SEC001", W, 3, 10)]);
    for x in &d {
        assert!(!x.message.contains(&gh[4..]) && !x.message.contains("q8Zr2"));
    }
}

#[test]
fn redact_keeps_positions_and_hides_values() {
    let token = format!("dop_v1_{}", "0123456789abcdef".repeat(4));
    let text = format!("a: 1\ngreeting: {token}\n");
    let r = alembic_policy::redact(&text);
    assert_eq!(r.len(), text.len());
    assert!(!r.contains(&token[7..]));
    assert!(r.contains("greeting: dop_v1_****"));
}

// ---- fixture sets ------------------------------------------------------------------------

fn scan_dir(rel: &str) -> Vec<(String, &'static str, usize)> {
    let root = alembic_testkit::workspace_root()
        .join("tests/fixtures/scan")
        .join(rel);
    let files = [
        "terraform/firewall.tf",
        "app/settings.yaml",
        "docker/compose.yaml",
        ".github/workflows/ci.yml",
    ];
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(root.join(f)).expect("fixture exists");
        for d in scan_text(f, &text, None) {
            out.push((d.file.clone(), d.code.as_str(), d.line));
        }
    }
    out
}

// The acceptance set: each planted problem found at its line, nothing in the clean twins.
#[test]
fn planted_fixtures_are_all_found() {
    let s = |f: &str| f.to_owned();
    assert_eq!(
        scan_dir("planted"),
        [
            (s("terraform/firewall.tf"), "EXP005", 15),
            (s("app/settings.yaml"), "SEC001", 4),
            (s("docker/compose.yaml"), "EXP003", 10),
            (s("docker/compose.yaml"), "EXP008", 13),
            (s(".github/workflows/ci.yml"), "CI002", 6),
            (s(".github/workflows/ci.yml"), "CI001", 11),
            (s(".github/workflows/ci.yml"), "CI003", 15),
        ]
    );
}

#[test]
fn clean_twins_yield_nothing() {
    assert_eq!(scan_dir("clean"), []);
}

// Hostile files never crash the scanner; one it will not parse is reported (CFG001), never
// passed silently.
#[test]
fn hostile_nesting_never_crashes() {
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    for (name, kind, want) in [
        ("x.tf", FileKind::Terraform, vec![("CFG001", E, 1, 1)]),
        ("compose.yaml", FileKind::Compose, vec![("CFG001", E, 1, 1)]),
        (
            ".github/workflows/x.yml",
            FileKind::Workflow,
            vec![("CFG001", E, 1, 1)],
        ),
        ("x.txt", FileKind::Text, vec![]),
        ("Caddyfile", FileKind::Caddyfile, vec![]),
        ("x.service", FileKind::Unit, vec![]),
        ("x.plist", FileKind::Plist, vec![("CFG001", E, 1, 1)]),
    ] {
        let d = scan_text(name, &deep, Some(kind));
        assert_eq!(found(&d), want, "{name}");
    }
    // Each format's own nesting.
    let caddy = format!("{}{}", "a {\n".repeat(100_000), "}\n".repeat(100_000));
    assert_eq!(found(&scan_text("Caddyfile", &caddy, None)), []);
    let plist = format!(
        "<plist version=\"1.0\"><dict><key>ProgramArguments</key>{}{}</dict></plist>",
        "<array>".repeat(100_000),
        "</array>".repeat(100_000)
    );
    assert_eq!(
        found(&scan_text("x.plist", &plist, None)),
        [("CFG001", E, 1, 1)]
    );
}

// ---- the per-class fixture set -----------------------------------------------------------

/// `(code, line, is_warning)` as written in `expected.txt`: `EXP003:12` (an error) or
/// `EXP003:12:w` (a warning).
fn parse_expected(tok: &str) -> (String, usize, bool) {
    let mut parts = tok.split(':');
    let code = parts.next().unwrap_or_default().to_owned();
    let line = parts
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("bad expectation {tok:?}"));
    (code, line, parts.next() == Some("w"))
}

// Every file under tests/fixtures/scan (one folder per class of problem, `bad-*` planted and
// `good-*` clean twins) gets exactly the findings its line in expected.txt lists: the same
// codes at the same lines with the same severities, nothing more, and nothing at all for the
// clean ones. A fixture missing from the table fails too, so none is scanned without a check.
#[test]
fn fixture_classes_give_exactly_the_expected_findings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan");
    let table = std::fs::read_to_string(root.join("expected.txt")).expect("expected.txt");
    let mut expected = std::collections::BTreeMap::new();
    for line in table.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut toks = line.split_whitespace();
        let path = toks.next().unwrap().to_owned();
        let mut want: Vec<(String, usize, bool)> = toks.map(parse_expected).collect();
        want.sort();
        assert!(
            expected.insert(path.clone(), want).is_none(),
            "{path} listed twice"
        );
    }
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "expected.txt") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut failures = Vec::new();
    let (mut bad, mut good) = (0, 0);
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(f).unwrap();
        let mut got: Vec<(String, usize, bool)> = scan_text(&rel, &text, None)
            .iter()
            .map(|d| (d.code.as_str().to_owned(), d.line, d.severity == W))
            .collect();
        got.sort();
        let Some(want) = expected.get(&rel) else {
            failures.push(format!("{rel}: not in expected.txt (found {got:?})"));
            continue;
        };
        let name = f.file_name().unwrap().to_string_lossy();
        if name.starts_with("good-") {
            good += 1;
            if !want.is_empty() {
                failures.push(format!("{rel}: a good-* fixture must expect nothing"));
            }
        } else {
            bad += 1;
            if want.is_empty() {
                failures.push(format!("{rel}: a bad-* fixture must expect a finding"));
            }
        }
        if &got != want {
            failures.push(format!("{rel}:\n    want {want:?}\n    got  {got:?}"));
        }
    }
    for path in expected.keys() {
        if !files
            .iter()
            .any(|f| f.strip_prefix(&root).unwrap().to_string_lossy() == *path)
        {
            failures.push(format!("{path}: listed but missing"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(bad >= 20 && good >= 20, "{bad} bad, {good} good fixtures");
}

// ---- one problem, one finding; nothing secret in messages ---------------------------------

// A host daemon's bind that the config's EXP002 already reports is not reported again in the
// rendered unit; an address the config does not declare still is.
#[test]
fn host_bind_reported_once() {
    let unit = "[Service]\nExecStart=/usr/bin/app\nEnvironment=HOST=0.0.0.0 PORT=8000\n";
    let d = scan_text("app.service", unit, None);
    assert_eq!(found(&d), [("EXP002", E, 3, 18)]);
    let ctx = alembic_policy::ScanContext {
        config_host_binds: vec!["0.0.0.0".parse().unwrap()],
        ..Default::default()
    };
    assert_eq!(
        found(&alembic_policy::scan_text_with(
            "app.service",
            unit,
            None,
            &ctx
        )),
        []
    );
    let other = unit.replace("0.0.0.0", "203.0.113.9");
    assert_eq!(
        found(&alembic_policy::scan_text_with(
            "app.service",
            &other,
            None,
            &ctx
        )),
        [("EXP002", E, 3, 18)]
    );
}

// Rules quote text from the file (an upstream, a label): a token-shaped one never reaches a
// message whole.
#[test]
fn messages_never_carry_a_token() {
    let gh = format!("ghp_{}", "aB3".repeat(12));
    let caddy = format!("api.example.com {{\n\treverse_proxy {gh}.example.net:80\n}}\n");
    let d = scan_text("Caddyfile", &caddy, None);
    assert_eq!(
        found(&d),
        [("EXP001", E, 2, 16), ("SEC001", E, 2, 16)],
        "{d:#?}"
    );
    for x in &d {
        assert!(!x.message.contains(&gh[4..]), "{}", x.message);
    }
}

// Behind a balancer that terminates TLS the edge's route sites are `http://<host>`: clear
// text only when the config has no such balancer. A site answering only fixed responses (the
// balancer's health path) serves no route.
#[test]
fn http_route_sites_are_cleartext_unless_a_balancer_terminates_tls() {
    let caddy = "http://api.example.com {\n\treverse_proxy api:8080\n}\n\nhttp:// {\n\t@drained file {\n\t\troot /srv/alembic/drain\n\t\ttry_files drained\n\t}\n\thandle /healthz {\n\t\trespond @drained 503\n\t\trespond 200\n\t}\n\thandle {\n\t\trespond 404\n\t}\n}\n";
    assert_eq!(
        found(&scan_text("Caddyfile", caddy, None)),
        [("EXP004", E, 1, 1)]
    );
    let ctx = alembic_policy::ScanContext {
        tls_at_balancer: true,
        ..Default::default()
    };
    assert_eq!(
        found(&alembic_policy::scan_text_with(
            "Caddyfile",
            caddy,
            None,
            &ctx
        )),
        []
    );
    // A catch-all plain HTTP site that proxies is clear text, balancer or not.
    let proxy_all = "http:// {\n\treverse_proxy api:8080\n}\n";
    assert_eq!(
        found(&alembic_policy::scan_text_with(
            "Caddyfile",
            proxy_all,
            None,
            &ctx
        )),
        [("EXP004", E, 1, 1)]
    );
}

// ---- EXP009: a load balancer's droplets reachable around it --------------------------------

const LB_MODULE: &str = "\
resource \"digitalocean_loadbalancer\" \"edge\" {
  name   = \"lb\"
  region = \"ams3\"
}

resource \"digitalocean_firewall\" \"edge\" {
  name = \"fw\"
  tags = [\"edge\"]

  inbound_rule {
    protocol                  = \"tcp\"
    port_range                = \"80\"
    source_load_balancer_uids = [digitalocean_loadbalancer.edge.id]
  }

  inbound_rule {
    protocol         = \"tcp\"
    port_range       = \"443\"
    source_addresses = [\"10.0.0.0/8\"]
  }

  inbound_rule {
    protocol    = \"tcp\"
    port_range  = \"80-443\"
    source_tags = [\"edge\"]
  }

  inbound_rule {
    protocol    = \"tcp\"
    port_range  = \"2377\"
    source_tags = [\"edge\"]
  }
}
";

#[test]
fn exp009_edge_ports_from_anything_but_the_load_balancer() {
    let d = scan_text("main.tf", LB_MODULE, None);
    // 443 from a private range and 80-443 from a tag: both skip the balancer. The rule from the
    // balancer and the swarm port between tagged droplets are fine.
    assert_eq!(found(&d), [("EXP009", E, 19, 25), ("EXP009", E, 25, 19)]);
    assert!(
        d[0].message.contains("port 443 from 10.0.0.0/8"),
        "{}",
        d[0].message
    );
}

#[test]
fn exp009_needs_a_load_balancer_in_the_module() {
    let text = LB_MODULE.replace(
        "digitalocean_loadbalancer\" \"edge\"",
        "digitalocean_vpc\" \"edge\"",
    );
    let d = scan_text("main.tf", &text, None);
    assert!(d.iter().all(|d| d.code.as_str() != "EXP009"), "{d:?}");
}

#[test]
fn exp009_text_fallback_when_hcl_does_not_parse() {
    let text = LB_MODULE.replace("name   = \"lb\"", "name   = \"lb\" {{");
    let d = scan_text("main.tf", &text, None);
    let codes: Vec<_> = d.iter().map(|d| (d.code.as_str(), d.line)).collect();
    assert!(codes.contains(&("EXP009", 19)), "{codes:?}");
    assert!(codes.contains(&("EXP009", 25)), "{codes:?}");
}
