//! CFG007: values left from the `alembic init` template where they would break or endanger a
//! real deploy. The template is a working example, so every value in it is syntactically valid;
//! this rule knows which of them only make sense as examples:
//!
//! - a reserved example domain (RFC 2606 / RFC 6761: `example.com/.net/.org`, `.example`,
//!   `.test`, `.invalid`, `.localhost`) as the project's zone or the ACME contact while the edge
//!   asks a public CA for certificates (`tls = "acme"`/`"acme-staging"`): the CA refuses them;
//! - a documentation address (RFC 5737 TEST-NET-1/2/3, RFC 3849 `2001:db8::/32`) in
//!   `droplet.admin_cidrs` or `droplet.address` when the droplet is not a loopback test target:
//!   SSH would be open to nobody real (or to whoever gets those ranges routed);
//! - the template's SSH key fingerprint on a provisioned droplet (nobody holds its key);
//! - the template's repository in `ci.repository`.
//!
//! `check` reports these as warnings (the template must check clean enough to edit); `plan`,
//! `apply` and `rollback` promote them to errors before anything runs.

use std::net::IpAddr;

use alembic_config::types::Cidr;
use alembic_config::{Code, Diagnostic, Severity, SourceFile, Tls, Topology};

use crate::rule::{Rule, TopologyRule};

/// The SSH key fingerprint the template ships with (`droplet.ssh_keys`).
pub const TEMPLATE_SSH_KEY: &str = "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa";
/// The repository the embedded default topology ships with (`ci.repository`).
pub const TEMPLATE_REPOSITORY: &str = "acme/alembic";
/// Every repository a template ships with: the embedded default's and `alembic init`'s.
pub const TEMPLATE_REPOSITORIES: [&str; 2] = [TEMPLATE_REPOSITORY, "acme/myapp"];

/// Second-level names reserved for documentation (RFC 2606 section 3).
const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.net", "example.org"];
/// Top-level names that never resolve publicly (RFC 2606 section 2, RFC 6761).
const RESERVED_TLDS: [&str; 4] = ["example", "test", "invalid", "localhost"];

/// CFG007: placeholder left from the template where it would break or endanger a real deploy.
pub static CFG007: TopologyRule = TopologyRule {
    rule: Rule {
        code: Code::Cfg007,
        severity: Severity::Warning,
        summary: "placeholder left from the template where it would break or endanger a real deploy",
        help: "replace the template's example value with your own (your domain, your operators' addresses, your SSH key, your repository); `plan` and `apply` refuse to run while it is there",
    },
    check: placeholders,
};

/// True for a reserved example domain or any name under one.
pub fn is_reserved_domain(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let under = |zone: &str| name == zone || name.ends_with(&format!(".{zone}"));
    EXAMPLE_DOMAINS.iter().any(|z| under(z)) || RESERVED_TLDS.iter().any(|z| under(z))
}

/// True when every address of `cidr` lies in a documentation range.
pub fn is_documentation(cidr: &Cidr) -> bool {
    let within = |net: &str| {
        let net = Cidr::parse(net).expect("documentation ranges are valid CIDRs");
        cidr.addr.is_ipv4() == net.addr.is_ipv4()
            && cidr.prefix >= net.prefix
            && Cidr::parse(&format!("{}/{}", masked(cidr.addr, net.prefix), net.prefix))
                .is_ok_and(|c| c == net)
    };
    [
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
    ]
    .into_iter()
    .any(within)
}

/// `addr` with its host bits (past `prefix`) cleared.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

fn single(addr: IpAddr) -> Cidr {
    Cidr {
        addr,
        prefix: if addr.is_ipv4() { 32 } else { 128 },
    }
}

fn placeholders(r: &Rule, t: &Topology, src: &SourceFile) -> Vec<Diagnostic> {
    let d = &t.droplet;
    let span = |key: &str| t.spans.get(key).unwrap_or(0..0);
    let mut out = Vec::new();
    let public_ca = matches!(d.tls, Tls::Acme | Tls::AcmeStaging);
    if public_ca && is_reserved_domain(t.project.domain.as_str()) {
        out.push(r.at(
            src,
            span("project.domain"),
            format!(
                "project.domain `{}` is a reserved example domain: with tls = \"{}\" the edge asks a public CA for certificates it will never issue, and the DNS records would be for a zone nobody owns",
                t.project.domain,
                tls_name(d.tls)
            ),
        ));
    }
    if let Some(email) = d.acme_email.as_ref().filter(|_| public_ca) {
        let domain = email.as_str().rsplit('@').next().unwrap_or_default();
        if is_reserved_domain(domain) {
            out.push(r.at(
                src,
                span("droplet.acme_email"),
                format!(
                    "droplet.acme_email `{email}` is at a reserved example domain: the CA refuses the account"
                ),
            ));
        }
    }
    // A loopback address is a test target: its admin list guards nothing public.
    let loopback = d.address.is_some_and(|a| a.is_loopback());
    if !loopback {
        for (i, c) in d.admin_cidrs.iter().enumerate() {
            if is_documentation(c) {
                out.push(r.at(
                    src,
                    span(&format!("droplet.admin_cidrs.{i}")),
                    format!(
                        "droplet.admin_cidrs contains {c}, a documentation range: no operator connects from it, so SSH (port {}) would be closed to you",
                        d.ssh_port
                    ),
                ));
            }
        }
        if let Some(a) = d.address.filter(|a| is_documentation(&single(*a))) {
            out.push(r.at(
                src,
                span("droplet.address"),
                format!(
                    "droplet.address {a} is a documentation address: apply would try to deploy to a server that does not exist"
                ),
            ));
        }
    }
    if d.is_provisioned() {
        for (i, k) in d.ssh_keys.iter().enumerate() {
            if k.as_str().eq_ignore_ascii_case(TEMPLATE_SSH_KEY) {
                out.push(r.at(
                    src,
                    span(&format!("droplet.ssh_keys.{i}")),
                    format!(
                        "droplet.ssh_keys contains the template's fingerprint {k}: nobody holds its private key, so the new droplet would be unreachable"
                    ),
                ));
            }
        }
    }
    if TEMPLATE_REPOSITORIES
        .iter()
        .any(|r| t.ci.repository.as_str().eq_ignore_ascii_case(r))
    {
        out.push(r.at(
            src,
            span("ci.repository"),
            format!(
                "ci.repository `{}` is the template's: the rendered workflows and the deploy environment would name someone else's repository",
                t.ci.repository
            ),
        ));
    }
    out
}

fn tls_name(tls: Tls) -> &'static str {
    match tls {
        Tls::Acme => "acme",
        Tls::AcmeStaging => "acme-staging",
        Tls::Internal => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_domains() {
        for d in [
            "example.com",
            "api.example.com",
            "alembic.example.org",
            "x.example.net",
            "shop.example",
            "e2e.test",
            "a.b.invalid",
            "app.localhost",
        ] {
            assert!(is_reserved_domain(d), "{d}");
        }
        for d in [
            "example.co",
            "myexample.com",
            "example.com.au",
            "tested.io",
            "localhost.dev",
        ] {
            assert!(!is_reserved_domain(d), "{d}");
        }
    }

    #[test]
    fn documentation_ranges() {
        let doc = |s: &str| is_documentation(&Cidr::parse(s).unwrap());
        for c in [
            "203.0.113.10/32",
            "203.0.113.0/24",
            "192.0.2.128/25",
            "198.51.100.7/32",
            "2001:db8::1/128",
            "2001:db8:1::/48",
        ] {
            assert!(doc(c), "{c}");
        }
        // Wider than a documentation range, or outside one: real networks.
        for c in [
            "203.0.0.0/16",
            "203.0.114.0/24",
            "0.0.0.0/0",
            "2001:db9::/32",
            "10.0.0.0/8",
        ] {
            assert!(!doc(c), "{c}");
        }
    }
}
