//! Unit tests of `doctor`.

use super::*;
use alembic_config::default_topology;
use std::collections::HashMap;

struct Canned(HashMap<&'static str, (i32, &'static str, &'static str)>);
impl Probe for Canned {
    fn run(&self, program: &str, _: &[&str]) -> Option<(i32, String, String)> {
        self.0
            .get(program)
            .map(|(c, o, e)| (*c, (*o).to_owned(), (*e).to_owned()))
    }
}

// doctor read `terraform output` without the state backend's key pair, so a droplet
// address in remote state was never found.
#[test]
fn system_probe_passes_the_ops_env_through() {
    let op = crate::ops::Op::new(crate::stage::Stage::Infra, "env", "env", vec![])
        .read_only()
        .with_env_as("ALEMBIC_DOCTOR_CHILD", "PATH");
    let (status, out, _) = SystemProbe.run_op(&op).expect("env runs");
    assert_eq!(status, 0);
    let path = std::env::var("PATH").unwrap();
    assert!(
        out.lines()
            .any(|l| l == format!("ALEMBIC_DOCTOR_CHILD={path}")),
        "{out}"
    );
}

#[test]
fn versions() {
    assert_eq!(parse_version("1.11.2"), Some((1, 11, 2)));
    assert_eq!(parse_version("v2.11.1 h1:abc"), Some((2, 11, 1)));
    assert_eq!(parse_version("OpenSSH_9.2p1 Debian"), Some((9, 2, 0)));
    assert_eq!(parse_version("systemd 252 (252.39-1)"), Some((252, 39, 0)));
    assert_eq!(parse_version("nothing"), None);
}

#[test]
fn tool_checks_judge_versions() {
    let t = default_topology();
    let probe = Canned(HashMap::from([
        ("terraform", (0, r#"{"terraform_version":"1.4.6"}"#, "")),
        ("docker", (0, "2.29.1\n", "")),
        ("ssh", (0, "", "OpenSSH_9.2p1 Debian-2, OpenSSL 3.0.15\n")),
    ]));
    let checks = tool_checks(&t, Context::Deploy, &probe);
    let got: Vec<(&str, Status)> = checks.iter().map(|c| (c.id.as_str(), c.status)).collect();
    assert_eq!(
        got,
        [
            ("tools.terraform", Status::Fail),
            ("tools.docker-compose", Status::Pass),
            ("tools.ssh", Status::Pass),
            ("tools.launchctl", Status::Skip),
            ("tools.caddy", Status::Warn),
        ]
    );
    assert_eq!(checks[0].message, "terraform 1.4.6 is older than 1.5");
    // A CI job that does not deploy (gates) needs none of the apply tools.
    let gates = tool_checks(&t, Context::Ci, &probe);
    assert!(gates.iter().all(|c| c.status == Status::Skip), "{gates:?}");
}

#[test]
fn tofu_is_accepted_and_compose_v1_is_not() {
    let t = default_topology();
    let probe = Canned(HashMap::from([
        ("tofu", (0, r#"{"terraform_version":"1.8.3"}"#, "")),
        ("docker", (0, "1.29.2\n", "")),
    ]));
    let checks = tool_checks(&t, Context::Local, &probe);
    assert_eq!(
        (checks[0].id.as_str(), checks[0].status),
        ("tools.tofu", Status::Pass)
    );
    assert_eq!(checks[1].status, Status::Fail);
    assert_eq!(checks[2].status, Status::Fail, "no ssh");
}

#[test]
fn s_client_output_parsing() {
    let out = "CONNECTED(00000003)\n---\nCertificate chain\n 0 s:CN = api\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n 1 s:CN = ca\n-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n---\n    Verify return code: 18 (self-signed certificate)\n";
    assert_eq!(
        first_pem(out).unwrap(),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    );
    assert_eq!(
        parse_verify_code(out),
        Some((18, "self-signed certificate".into()))
    );
    let f = CertFacts {
        verify: Some((0, "ok".into())),
        not_after: Some("Jan  1 00:00:00 2031 GMT".into()),
        valid_14_days: true,
    };
    assert_eq!(tls_check("api.x", Some(&f), false).status, Status::Pass);
    let soon = CertFacts {
        valid_14_days: false,
        ..f.clone()
    };
    assert_eq!(tls_check("api.x", Some(&soon), false).status, Status::Fail);
    let selfsigned = CertFacts {
        verify: Some((18, "self-signed".into())),
        ..f
    };
    assert_eq!(
        tls_check("api.x", Some(&selfsigned), true).status,
        Status::Warn
    );
    assert_eq!(
        tls_check("api.x", Some(&selfsigned), false).status,
        Status::Fail
    );
    assert_eq!(tls_check("api.x", None, false).status, Status::Fail);
    let internal_short = CertFacts {
        verify: Some((19, "self-signed certificate in certificate chain".into())),
        not_after: None,
        valid_14_days: false,
    };
    assert_eq!(
        tls_check("api.x", Some(&internal_short), true).status,
        Status::Warn
    );
    assert_eq!(
        tls_check("api.x", Some(&internal_short), false).status,
        Status::Fail
    );
}

#[test]
fn terraform_outputs_give_the_address() {
    struct Tf;
    impl Probe for Tf {
        fn run(&self, program: &str, args: &[&str]) -> Option<(i32, String, String)> {
            assert_eq!(program, "terraform");
            assert_eq!(
                args,
                [
                    "-chdir=/srv/infra/terraform",
                    "output",
                    "-json",
                    "-no-color"
                ]
            );
            let j = r#"{"reserved_ip":{"sensitive":false,"type":"string","value":"203.0.113.9"}}"#;
            Some((0, j.to_owned(), String::new()))
        }
    }
    let t = alembic_config::default_topology();
    assert_eq!(
        droplet_address(&t, Path::new("/srv"), &Tf),
        Some("203.0.113.9".parse().unwrap())
    );
}

// Loopback only: a listener we own answers, a port we just closed does not.
#[test]
fn port_scan_on_loopback() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let closed = {
        let c = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        c.local_addr().unwrap().port()
    };
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        open_ports(lo, &[closed, open], Duration::from_secs(1)),
        [open]
    );
}

#[test]
fn unknown_address_skips_online_checks() {
    let t = default_topology();
    let c = online_checks(&t, None, &Canned(HashMap::new()));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, Status::Skip);
}

#[test]
fn report_json_shape() {
    let r = Report {
        checks: vec![
            Check::new("a", Status::Pass, "fine"),
            Check::new("secrets.X", Status::Fail, "SEC003: X is unset").hint("set X"),
        ],
    };
    assert_eq!(
        r.to_json().to_string(),
        r#"{"format_version":1,"ok":false,"checks":[{"id":"a","status":"pass","message":"fine","hint":""},{"id":"secrets.X","status":"fail","message":"SEC003: X is unset","hint":"set X"}]}"#
    );
}
