//! Online checks (`doctor --online`): the droplet's address, its open ports, each route's
//! TLS certificate. Only ever the configured droplet address.

use super::*;

// online

/// Ports that must not answer from outside, besides SSH and the edge's: common databases,
/// dev servers, docker's API, and every droplet workload's own port.
pub(crate) const COMMON_PORTS: &[u16] = &[
    21, 23, 25, 111, 2375, 2376, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 9000, 9090, 9200,
    11211, 27017,
];

/// The droplet's address: `droplet.address`, else the `reserved_ip` output of the applied
/// Terraform state in `<root>/infra/terraform`, read with the infra stage's own op and reader
/// (`terraform::Runner::output_op`, `terraform::reserved_ip`), which the droplet
/// plane uses too.
pub fn droplet_address(t: &Topology, root: &Path, probe: &dyn Probe) -> Option<IpAddr> {
    if let Some(a) = t.droplet.address {
        return Some(a);
    }
    let (status, out, err) = ["terraform", "tofu"].into_iter().find_map(|p| {
        let op = crate::terraform::Runner::for_topology(p, root, t).output_op();
        probe.run_op(&op)
    })?;
    crate::terraform::reserved_ip(status, &out, &err).ok()
}

/// Whether a TCP connect to `addr:port` succeeds within `timeout` (through the executor).
pub(crate) fn port_open(addr: IpAddr, port: u16, timeout: Duration) -> bool {
    crate::exec::tcp_connects(addr, port, timeout)
}

/// Which of `ports` accept a connection (scanned in parallel, each bounded by `timeout`).
pub(crate) fn open_ports(addr: IpAddr, ports: &[u16], timeout: Duration) -> Vec<u16> {
    let mut open: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = ports
            .iter()
            .map(|&p| s.spawn(move || (p, port_open(addr, p, timeout))))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .filter(|(_, o)| *o)
            .map(|(p, _)| p)
            .collect()
    });
    open.sort_unstable();
    open
}

/// What `openssl s_client` + `openssl x509 -checkend` said about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertFacts {
    /// `Verify return code: N (text)` from s_client.
    pub(crate) verify: Option<(i64, String)>,
    /// `notAfter=...` from x509 -enddate.
    pub(crate) not_after: Option<String>,
    /// x509 -checkend: still valid in 14 days.
    pub(crate) valid_14_days: bool,
}

/// Parse s_client's "Verify return code" line.
pub(crate) fn parse_verify_code(s_client_out: &str) -> Option<(i64, String)> {
    let line = s_client_out
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Verify return code:"))?;
    let line = line.trim();
    let (num, rest) = line.split_once(' ').unwrap_or((line, ""));
    Some((
        num.parse().ok()?,
        rest.trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_owned(),
    ))
}

/// The first PEM certificate block in s_client's output.
pub(crate) fn first_pem(s_client_out: &str) -> Option<String> {
    let start = s_client_out.find("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = s_client_out[start..].find(end_marker)? + start + end_marker.len();
    Some(format!("{}\n", &s_client_out[start..end]))
}

/// Fetch and judge the certificate served for `host` at `addr:port` with the system openssl
/// (each step bounded by [`PROBE_TIMEOUT`]).
pub(crate) fn cert_facts(addr: IpAddr, port: u16, host: &str) -> Option<CertFacts> {
    use crate::ops::{Op, Stdin};
    let connect = std::net::SocketAddr::new(addr, port).to_string();
    let s_client = Op::new(
        crate::stage::Stage::Droplet,
        format!("read the certificate of {host}"),
        "openssl",
        [
            "s_client",
            "-connect",
            &connect,
            "-servername",
            host,
            "-verify_hostname",
            host,
            "-showcerts",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .read_only();
    let (_, out, _) = crate::exec::run_bounded(&s_client, PROBE_TIMEOUT)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let pem = first_pem(&text)?;
    let x509 = Op::new(
        crate::stage::Stage::Droplet,
        format!("judge the certificate of {host}"),
        "openssl",
        ["x509", "-noout", "-enddate", "-checkend", "1209600"]
            .map(str::to_owned)
            .to_vec(),
    )
    .read_only()
    .with_stdin(Stdin::Bytes {
        data: pem.into_bytes(),
    });
    let (status, out, _) = crate::exec::run_bounded(&x509, PROBE_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&out);
    Some(CertFacts {
        verify: parse_verify_code(&text),
        not_after: stdout
            .lines()
            .find_map(|l| l.strip_prefix("notAfter="))
            .map(str::to_owned),
        valid_14_days: status == 0,
    })
}

/// Judge certificate facts for one route.
pub(crate) fn tls_check(route: &str, facts: Option<&CertFacts>, internal_ca: bool) -> Check {
    let id = format!("online.tls.{route}");
    let Some(f) = facts else {
        return Check::new(
            id,
            Status::Fail,
            format!("no TLS certificate could be read for {route}"),
        )
        .hint("check that the edge is up and the route's DNS points at the droplet");
    };
    let until = f.not_after.clone().unwrap_or_else(|| "unknown".into());
    if !f.valid_14_days && internal_ca {
        // Caddy's internal CA issues short-lived leaves (hours) and renews them itself.
        return Check::new(
            id,
            Status::Warn,
            format!("certificate for {route} is a short-lived internal-CA certificate (notAfter {until})"),
        )
        .hint("expected with droplet.tls = \"internal\"; use \"acme\" for public traffic");
    }
    if !f.valid_14_days {
        return Check::new(
            id,
            Status::Fail,
            format!("certificate for {route} expires within 14 days (notAfter {until})"),
        )
        .hint("check Caddy's logs for ACME renewal errors");
    }
    match &f.verify {
        Some((0, _)) => Check::new(
            id,
            Status::Pass,
            format!("certificate for {route} valid until {until}"),
        ),
        Some((code, why)) if internal_ca => Check::new(
            id,
            Status::Warn,
            format!("certificate for {route} is from the internal CA (verify {code}: {why}); valid until {until}"),
        ),
        Some((code, why)) => Check::new(
            id,
            Status::Fail,
            format!("certificate for {route} does not verify: {code} ({why})"),
        )
        .hint("check droplet.tls and that Caddy obtained a publicly trusted certificate"),
        None => Check::new(id, Status::Warn, format!("could not read the verification result for {route}")),
    }
}

/// The addresses `host` resolves to: asked with `dig` (A and AAAA, bounded like apply's
/// nameserver lookup) of the server `ALEMBIC_DNS_SERVER` names (`host:port`) when it is set,
/// else the system resolver's answer.
fn resolve(host: &str, probe: &dyn Probe) -> Vec<IpAddr> {
    let server = std::env::var(crate::terraform::nameservers::DNS_SERVER_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    let Some(server) = server else {
        return crate::exec::resolve(host);
    };
    let (at, port) = server.rsplit_once(':').unwrap_or((&server, "53"));
    let at = format!("@{at}");
    let mut out = Vec::new();
    for rr in ["A", "AAAA"] {
        let args = [&at, "-p", port, "+short", "+time=2", "+tries=1", rr, host];
        if let Some((0, stdout, _)) = probe.run("dig", &args) {
            // `+short` prints a CNAME chain's names before the addresses: only addresses count.
            out.extend(
                stdout
                    .lines()
                    .filter_map(|l| l.trim().parse::<IpAddr>().ok()),
            );
        }
    }
    out
}

/// The `--online` checks, all against `addr` (the configured droplet) only.
pub fn online_checks(t: &Topology, addr: Option<IpAddr>, probe: &dyn Probe) -> Vec<Check> {
    let Some(addr) = addr else {
        return vec![
            Check::new("online", Status::Skip, "the droplet's address is unknown").hint(
                "set droplet.address, or apply the infra plane so `terraform output` knows it",
            ),
        ];
    };
    let d = &t.droplet;
    let mut out = Vec::new();
    let target = format!("{}@{addr}", d.ssh_user);
    let port = d.ssh_port.to_string();
    // The same ssh_config the deploy's ssh uses, so both reach the droplet the same way.
    let config = crate::ssh::config_file().map(|p| p.display().to_string());
    let mut args: Vec<&str> = Vec::new();
    if let Some(c) = &config {
        args.extend(["-F", c.as_str()]);
    }
    args.extend([
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-p",
        &port,
        &target,
        "true",
    ]);
    out.push(match probe.run("ssh", &args) {
        Some((0, _, _)) => Check::new("online.ssh", Status::Pass, format!("ssh {target} works")),
        Some((code, _, err)) => Check::new(
            "online.ssh",
            Status::Fail,
            format!(
                "ssh {target} -p {port} failed (exit {code}): {}",
                err.lines().last().unwrap_or("").trim()
            ),
        )
        .hint("check admin_cidrs includes this machine, and your key is loaded (ssh-add)"),
        None => Check::new("online.ssh", Status::Skip, "ssh is not on PATH"),
    });
    for (_, route) in t.routes() {
        let host = route.host.to_string();
        let resolved = resolve(&host, probe);
        out.push(if resolved.contains(&addr) {
            Check::new(
                format!("online.dns.{host}"),
                Status::Pass,
                format!("{host} resolves to {addr}"),
            )
        } else {
            let got: Vec<String> = resolved.iter().map(IpAddr::to_string).collect();
            Check::new(
                format!("online.dns.{host}"),
                Status::Fail,
                format!(
                    "{host} resolves to [{}], not the droplet {addr}",
                    got.join(", ")
                ),
            )
            .hint(format!("point an A/AAAA record for {host} at {addr}"))
        });
    }
    let https = d.https_port.get();
    let http = d.http_port.get();
    let edge_open = open_ports(addr, &[http, https], Duration::from_secs(3));
    // open_ports answers sorted; the configured ports may be in either order.
    let mut want = vec![http, https];
    want.sort_unstable();
    want.dedup();
    out.push(if edge_open == want {
        Check::new(
            "online.ports.edge",
            Status::Pass,
            format!("{http} and {https} are open"),
        )
    } else {
        Check::new(
            "online.ports.edge",
            Status::Fail,
            format!("edge ports open: {edge_open:?}; expected {http} and {https}"),
        )
        .hint("check the firewall and that the edge container is running")
    });
    if edge_open.contains(&https) {
        for (_, route) in t.routes() {
            let host = route.host.to_string();
            let facts = cert_facts(addr, https, &host);
            out.push(tls_check(
                &host,
                facts.as_ref(),
                d.tls == alembic_config::Tls::Internal,
            ));
        }
    }
    let mut others: Vec<u16> = COMMON_PORTS.to_vec();
    others.extend(
        t.on_plane(alembic_config::Plane::Droplet)
            .filter_map(|w| w.port.map(|p| p.get())),
    );
    others.retain(|p| ![d.ssh_port.get(), http, https].contains(p));
    others.sort_unstable();
    others.dedup();
    let stray = open_ports(addr, &others, Duration::from_secs(2));
    out.push(if stray.is_empty() {
        Check::new(
            "online.ports.closed",
            Status::Pass,
            format!("none of {} other common ports answers", others.len()),
        )
    } else {
        Check::new(
            "online.ports.closed",
            Status::Fail,
            format!("ports answering besides ssh and the edge: {stray:?}"),
        )
        .hint("only the edge (80/443) and ssh from admin_cidrs may be reachable: check the firewall and compose `ports:`")
    });
    out
}
