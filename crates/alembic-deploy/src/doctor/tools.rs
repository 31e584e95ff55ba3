//! Tool checks: terraform/tofu, docker compose, ssh, caddy and the host's service manager,
//! each asked for its version through a [`Probe`].

use super::*;

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

/// The real probe: the program from PATH, stdin closed, killed after `PROBE_TIMEOUT` (20 s).
pub struct SystemProbe;

/// No probe may hang doctor: a silent server or a stuck tool is cut off after this long.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

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

pub(crate) fn text((status, out, err): (i32, Vec<u8>, Vec<u8>)) -> Option<(i32, String, String)> {
    Some((
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

/// `(major, minor, patch)` from the first `N.N[.N]` in `text` (leading `v` allowed).
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
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

pub(crate) fn fmt_version(v: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// Terraform/OpenTofu >= 1.5 (`import` blocks, `terraform_data`, stable JSON plan format).
pub(crate) fn terraform_check(probe: &dyn Probe) -> Check {
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

pub(crate) fn compose_check(probe: &dyn Probe) -> Check {
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

pub(crate) fn ssh_check(probe: &dyn Probe) -> Check {
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

pub(crate) fn host_tool_check(t: &Topology, ctx: Context, probe: &dyn Probe) -> Check {
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

pub(crate) fn caddy_check(probe: &dyn Probe) -> Check {
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
