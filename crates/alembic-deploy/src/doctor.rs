//! `alembic doctor` checks, as data: one [`Check`] per concern, each `pass|warn|fail|skip` with
//! an id, a message and a hint. The binary gathers the inputs and renders the report.
//!
//! Facts that need a process (tool versions, ssh, openssl) are gathered through a [`Probe`] so
//! the judgement functions stay pure and are tested with canned answers; the real probe runs
//! the programs. Online checks only ever target the configured droplet address.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use alembic_config::{HostOs, Loaded, Topology};
use alembic_render::ArtifactSet;
use serde::Serialize;

use crate::secrets::{self, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: String,
    pub status: Status,
    pub message: String,
    /// What to do about it; empty for a pass.
    pub hint: String,
}

impl Check {
    pub fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status,
            message: message.into(),
            hint: String::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = hint.into();
        self
    }
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The DESIGN.md `doctor --json` document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": 1,
            "ok": self.ok(),
            "checks": self.checks,
        })
    }

    /// One line per check, hints indented below, and a count line.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{:<4}  {:<28} {}\n",
                c.status.as_str(),
                c.id,
                c.message
            ));
            if !c.hint.is_empty() && c.status != Status::Pass {
                out.push_str(&format!("      hint: {}\n", c.hint));
            }
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed, {} skipped\n",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        ));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// config, policy, drift

/// `config.found` and `config.valid`. `file`: the config path, `None` for the embedded default.
pub fn config_checks(file: Option<&Path>, loaded: &Loaded) -> Vec<Check> {
    let found = match file {
        Some(p) => Check::new(
            "config.found",
            Status::Pass,
            format!("using {}", p.display()),
        ),
        None => Check::new(
            "config.found",
            Status::Warn,
            "no alembic.toml found; using the embedded default topology",
        )
        .hint("run `alembic init` to write one, or point -c / $ALEMBIC_CONFIG at yours"),
    };
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let valid = match (&loaded.topology, errors) {
        (Some(t), 0) => Check::new(
            "config.valid",
            Status::Pass,
            format!(
                "valid: {} workloads, project {}",
                t.workloads.len(),
                t.project.name
            ),
        ),
        _ => {
            let first = loaded
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| format!("; first: {}:{}: {}", d.line, d.column, d.message))
                .unwrap_or_default();
            Check::new(
                "config.valid",
                Status::Fail,
                format!("{errors} error(s) in {}{first}", loaded.source.name),
            )
            .hint("run `alembic validate` for every problem with its location")
        }
    };
    vec![found, valid]
}

/// `config.found` when the file could not be read at all.
pub fn config_unreadable(error: &str) -> Check {
    Check::new("config.found", Status::Fail, error.to_owned())
        .hint("check the path given by -c or $ALEMBIC_CONFIG")
}

/// `policy.clean` from the policy findings: `(errors, warnings, first error message)`; `None`
/// when no policy engine is available to this build.
pub fn policy_check(findings: Option<(usize, usize, Option<String>)>) -> Check {
    match findings {
        None => Check::new(
            "policy.clean",
            Status::Skip,
            "no policy rules in this build; the config was validated only",
        )
        .hint("run `alembic check` once policies are available"),
        Some((0, 0, _)) => Check::new("policy.clean", Status::Pass, "no policy findings"),
        Some((0, w, _)) => Check::new(
            "policy.clean",
            Status::Warn,
            format!("{w} policy warning(s)"),
        )
        .hint("run `alembic check` to see them"),
        Some((e, w, first)) => Check::new(
            "policy.clean",
            Status::Fail,
            format!(
                "{e} policy error(s), {w} warning(s){}",
                first.map(|m| format!("; first: {m}")).unwrap_or_default()
            ),
        )
        .hint("run `alembic check` for each finding with its location"),
    }
}

/// The manifest whose presence says "artifacts were rendered here".
pub const MANIFEST: &str = "infra/MANIFEST.json";

use alembic_render::manifest::sha256_hex;

/// `artifacts.drift`: every freshly rendered artifact against the file on disk under `root`
/// (by sha256). Skipped when nothing was rendered there yet (no manifest).
pub fn drift_check(root: &Path, fresh: &ArtifactSet) -> Check {
    if !root.join(MANIFEST).is_file() {
        return Check::new(
            "artifacts.drift",
            Status::Skip,
            format!(
                "nothing rendered under {} yet (no {MANIFEST})",
                root.display()
            ),
        )
        .hint("run `alembic render` to write the artifacts");
    }
    let mut differ = Vec::new();
    let mut absent = Vec::new();
    for a in fresh.iter() {
        // `.gitignore` is merged into: only alembic's block of it is compared.
        let want = match crate::artifacts::desired_on_disk(root, a) {
            Ok((bytes, _)) => bytes,
            Err(_) => std::borrow::Cow::Borrowed(a.bytes.as_slice()),
        };
        match std::fs::read(root.join(&a.path)) {
            Ok(disk) if sha256_hex(&disk) == sha256_hex(&want) => {}
            Ok(_) => differ.push(a.path.as_str()),
            Err(_) => absent.push(a.path.as_str()),
        }
    }
    if differ.is_empty() && absent.is_empty() {
        return Check::new(
            "artifacts.drift",
            Status::Pass,
            format!("{} artifacts on disk match a fresh render", fresh.len()),
        );
    }
    let list = |v: &[&str]| {
        let mut s = v.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        if v.len() > 5 {
            s.push_str(&format!(" and {} more", v.len() - 5));
        }
        s
    };
    let mut parts = Vec::new();
    if !differ.is_empty() {
        parts.push(format!("{} differ ({})", differ.len(), list(&differ)));
    }
    if !absent.is_empty() {
        parts.push(format!("{} missing ({})", absent.len(), list(&absent)));
    }
    Check::new(
        "artifacts.drift",
        Status::Fail,
        format!(
            "artifacts on disk drifted from the config: {}",
            parts.join("; ")
        ),
    )
    .hint("run `alembic render --check` for the diff, then `alembic render` to rewrite them")
}

// ---------------------------------------------------------------------------------------------
// tools

/// Runs a program for its version (or a probe) and returns `(status, stdout, stderr)`; `None`
/// when the program is not on PATH.
pub trait Probe {
    fn run(&self, program: &str, args: &[&str]) -> Option<(i32, String, String)>;

    /// Run a built [`Op`], with the env vars it names passed through (terraform needs the
    /// state backend's key pair to read outputs from remote state). Values come from the
    /// process environment and are never part of what is returned or printed.
    fn run_op(&self, op: &crate::ops::Op) -> Option<(i32, String, String)> {
        let args: Vec<&str> = op.args.iter().map(String::as_str).collect();
        self.run(&op.program, &args)
    }
}

/// The real probe: the program from PATH, stdin closed, killed after [`PROBE_TIMEOUT`].
pub struct SystemProbe;

/// No probe may hang doctor: a silent server or a stuck tool is cut off after this long.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

impl Probe for SystemProbe {
    fn run(&self, program: &str, args: &[&str]) -> Option<(i32, String, String)> {
        let op = crate::ops::Op::new(
            crate::stage::Stage::Host,
            format!("{program} (doctor)"),
            program,
            args.iter().map(|a| (*a).to_owned()).collect(),
        )
        .read_only();
        text(crate::exec::run_bounded(&op, PROBE_TIMEOUT)?)
    }

    fn run_op(&self, op: &crate::ops::Op) -> Option<(i32, String, String)> {
        text(crate::exec::run_bounded(op, PROBE_TIMEOUT)?)
    }
}

fn text((status, out, err): (i32, Vec<u8>, Vec<u8>)) -> Option<(i32, String, String)> {
    Some((
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

/// `(major, minor, patch)` from the first `N.N[.N]` in `text` (leading `v` allowed).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0
                || !bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'v'
                || bytes[i - 1] == b'_')
        {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let nums: Vec<u32> = rest[..end]
                .split('.')
                .filter(|s| !s.is_empty())
                .map_while(|s| s.parse().ok())
                .collect();
            if nums.len() >= 2 {
                return Some((nums[0], nums[1], nums.get(2).copied().unwrap_or(0)));
            }
            i += end.max(1);
        } else {
            i += 1;
        }
    }
    None
}

fn fmt_version(v: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// Terraform/OpenTofu >= 1.5 (`import` blocks, `terraform_data`, stable JSON plan format).
fn terraform_check(probe: &dyn Probe) -> Check {
    for prog in ["terraform", "tofu"] {
        let Some((status, stdout, stderr)) = probe.run(prog, &["version", "-json"]) else {
            continue;
        };
        let v = serde_json::from_str::<serde_json::Value>(&stdout)
            .ok()
            .and_then(|j| j.get("terraform_version")?.as_str().map(str::to_owned))
            .and_then(|s| parse_version(&s))
            .or_else(|| parse_version(&stdout))
            .or_else(|| parse_version(&stderr));
        return match v {
            Some(v) if v >= (1, 5, 0) => Check::new(
                format!("tools.{prog}"),
                Status::Pass,
                format!("{prog} {}", fmt_version(v)),
            ),
            Some(v) => Check::new(
                format!("tools.{prog}"),
                Status::Fail,
                format!("{prog} {} is older than 1.5", fmt_version(v)),
            )
            .hint("install Terraform >= 1.5 or OpenTofu >= 1.6"),
            None => Check::new(
                format!("tools.{prog}"),
                Status::Fail,
                format!("`{prog} version` gave no version (exit {status})"),
            )
            .hint("reinstall Terraform or OpenTofu"),
        };
    }
    Check::new(
        "tools.terraform",
        Status::Fail,
        "neither terraform nor tofu is on PATH; the infra plane provisions the droplet with it",
    )
    .hint(
        "install Terraform >= 1.5 (or OpenTofu), or set droplet.address to use an existing server",
    )
}

fn compose_check(probe: &dyn Probe) -> Check {
    let id = "tools.docker-compose";
    match probe.run("docker", &["compose", "version", "--short"]) {
        Some((0, out, _)) => match parse_version(&out) {
            Some(v) if v.0 >= 2 => {
                Check::new(id, Status::Pass, format!("docker compose {}", fmt_version(v)))
            }
            Some(v) => Check::new(
                id,
                Status::Fail,
                format!("docker compose {} is older than v2", fmt_version(v)),
            )
            .hint("install the Compose v2 plugin"),
            None => Check::new(id, Status::Warn, "docker compose printed no version")
                .hint("check `docker compose version`"),
        },
        Some(_) => Check::new(id, Status::Warn, "docker is present but `docker compose` (v2) is not")
            .hint("install the Compose v2 plugin to validate compose.yaml locally (the droplet runs its own)"),
        None => Check::new(id, Status::Warn, "docker is not on PATH")
            .hint("install Docker with the Compose v2 plugin to validate compose.yaml locally (the droplet runs its own)"),
    }
}

fn ssh_check(probe: &dyn Probe) -> Check {
    match probe.run("ssh", &["-V"]) {
        // OpenSSH prints its version on stderr.
        Some((_, out, err)) => {
            let text = format!("{err}{out}");
            let first = text.lines().next().unwrap_or("").trim().to_owned();
            Check::new("tools.ssh", Status::Pass, first)
        }
        None => Check::new(
            "tools.ssh",
            Status::Fail,
            "ssh is not on PATH; the droplet plane deploys over ssh",
        )
        .hint("install OpenSSH's client"),
    }
}

fn host_tool_check(t: &Topology, ctx: Context, probe: &dyn Probe) -> Check {
    let (tool, os_name) = match t.host.os {
        HostOs::Macos => ("launchctl", "macos"),
        HostOs::Linux => ("systemctl", "linux"),
    };
    let id = format!("tools.{tool}");
    if ctx.is_ci() {
        return Check::new(
            id,
            Status::Skip,
            format!("the host plane ({os_name}) is never applied from CI"),
        );
    }
    let this_os = std::env::consts::OS;
    let this_os = if this_os == "macos" { "macos" } else { this_os };
    if this_os != os_name {
        return Check::new(
            id,
            Status::Skip,
            format!("the host plane targets {os_name}; this machine runs {this_os}"),
        )
        .hint("apply the host plane from the host machine itself");
    }
    let args: &[&str] = if tool == "launchctl" {
        &["version"]
    } else {
        &["--version"]
    };
    match probe.run(tool, args) {
        Some((_, out, err)) => {
            let first = format!("{out}{err}")
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            Check::new(
                id,
                Status::Pass,
                if first.is_empty() {
                    tool.to_owned()
                } else {
                    first
                },
            )
        }
        None => Check::new(
            id,
            Status::Fail,
            format!("{tool} is not on PATH; the host plane is driven by it"),
        )
        .hint(format!(
            "run doctor on the {os_name} host that runs the host workloads"
        )),
    }
}

fn caddy_check(probe: &dyn Probe) -> Check {
    match probe.run("caddy", &["version"]) {
        Some((0, out, _)) => Check::new(
            "tools.caddy",
            Status::Pass,
            format!(
                "caddy {}",
                out.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('v')
            ),
        ),
        _ => Check::new(
            "tools.caddy",
            Status::Warn,
            "caddy is not on PATH (optional: the edge runs in a container on the droplet)",
        )
        .hint("install caddy to validate the Caddyfile locally"),
    }
}

/// `tools.*`: what the planes need in this context.
pub fn tool_checks(t: &Topology, ctx: Context, probe: &dyn Probe) -> Vec<Check> {
    let mut out = Vec::new();
    if ctx == Context::Ci {
        // A CI job other than deploy (checks, gates) applies nothing: the apply tools are the
        // deploy job's concern, checked there (ALEMBIC_CONTEXT=deploy).
        for tool in ["terraform", "docker-compose", "ssh"] {
            out.push(Check::new(
                format!("tools.{tool}"),
                Status::Skip,
                "not needed in a CI job that does not deploy; the deploy job checks it",
            ));
        }
        out.push(host_tool_check(t, ctx, probe));
        return out;
    }
    if t.droplet.is_provisioned() {
        out.push(terraform_check(probe));
    } else {
        out.push(Check::new(
            "tools.terraform",
            Status::Skip,
            "droplet.address is set: no Terraform is used",
        ));
    }
    out.push(compose_check(probe));
    out.push(ssh_check(probe));
    out.push(host_tool_check(t, ctx, probe));
    out.push(caddy_check(probe));
    out
}

// ---------------------------------------------------------------------------------------------
// secrets

/// `secrets.<NAME>`: one check per secret the context needs (SEC003 when unset or empty).
pub fn secret_checks(
    t: &Topology,
    ctx: Context,
    get: &dyn Fn(&str) -> Option<String>,
) -> Vec<Check> {
    let rows = secrets::inventory(t, ctx, None, get);
    let needed: Vec<_> = rows.iter().filter(|r| r.needed).collect();
    if needed.is_empty() {
        return vec![Check::new(
            "secrets",
            Status::Pass,
            format!("no secrets needed in the {} context", ctx.as_str()),
        )];
    }
    needed
        .into_iter()
        .map(|r| {
            let used: Vec<String> = r.uses.iter().map(|u| u.consumer.clone()).collect();
            if r.set {
                Check::new(
                    format!("secrets.{}", r.name),
                    Status::Pass,
                    format!("{} is set (used by {})", r.name, used.join(", ")),
                )
            } else {
                Check::new(
                    format!("secrets.{}", r.name),
                    Status::Fail,
                    format!(
                        "SEC003: {} is unset or empty (used by {})",
                        r.name,
                        used.join(", ")
                    ),
                )
                .hint(format!("set it in: {}", r.set_in.join("; ")))
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// online

/// Ports that must not answer from outside, besides SSH and the edge's: common databases,
/// dev servers, docker's API, and every droplet workload's own port.
pub const COMMON_PORTS: &[u16] = &[
    21, 23, 25, 111, 2375, 2376, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 9000, 9090, 9200,
    11211, 27017,
];

/// The droplet's address: `droplet.address`, else the `reserved_ip` output of the applied
/// Terraform state in `<root>/infra/terraform`, read with the infra stage's own op and reader
/// ([`crate::terraform::Runner::output_op`], [`crate::terraform::reserved_ip`]), which the droplet
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
pub fn port_open(addr: IpAddr, port: u16, timeout: Duration) -> bool {
    crate::exec::tcp_connects(addr, port, timeout)
}

/// Which of `ports` accept a connection (scanned in parallel, each bounded by `timeout`).
pub fn open_ports(addr: IpAddr, ports: &[u16], timeout: Duration) -> Vec<u16> {
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
pub struct CertFacts {
    /// `Verify return code: N (text)` from s_client.
    pub verify: Option<(i64, String)>,
    /// `notAfter=...` from x509 -enddate.
    pub not_after: Option<String>,
    /// x509 -checkend: still valid in 14 days.
    pub valid_14_days: bool,
}

/// Parse s_client's "Verify return code" line.
pub fn parse_verify_code(s_client_out: &str) -> Option<(i64, String)> {
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
pub fn first_pem(s_client_out: &str) -> Option<String> {
    let start = s_client_out.find("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = s_client_out[start..].find(end_marker)? + start + end_marker.len();
    Some(format!("{}\n", &s_client_out[start..end]))
}

/// Fetch and judge the certificate served for `host` at `addr:port` with the system openssl
/// (each step bounded by [`PROBE_TIMEOUT`]).
fn cert_facts(addr: IpAddr, port: u16, host: &str) -> Option<CertFacts> {
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
pub fn tls_check(route: &str, facts: Option<&CertFacts>, internal_ca: bool) -> Check {
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
    out.push(
        match probe.run(
            "ssh",
            &[
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-p",
                &port,
                &target,
                "true",
            ],
        ) {
            Some((0, _, _)) => {
                Check::new("online.ssh", Status::Pass, format!("ssh {target} works"))
            }
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
        },
    );
    for (_, route) in t.routes() {
        let host = route.host.to_string();
        let resolved: Vec<IpAddr> = (host.as_str(), 443)
            .to_socket_addrs()
            .map(|it| it.map(|s| s.ip()).collect())
            .unwrap_or_default();
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

#[cfg(test)]
mod tests {
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
                let j =
                    r#"{"reserved_ip":{"sensitive":false,"type":"string","value":"203.0.113.9"}}"#;
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
}
