//! The bootstrap of a droplet, one implementation with two deliveries:
//!
//! - `infra/droplet/bootstrap.sh`: a POSIX sh script that prepares a fresh Debian 13 or Ubuntu
//!   24.04 server (Docker engine + compose v2 from the distribution, the `ssh_user` with
//!   `droplet.authorized_keys`, membership of the `docker` group, passwordless sudo, the
//!   `root` directory, Docker log rotation, sshd hardening, unattended security upgrades).
//!   `alembic bootstrap` pipes it to `sh -s` over ssh on an existing server.
//! - `infra/droplet/cloud-init.yaml`: `#cloud-config` user-data for a provisioned droplet
//!   (Terraform's `user_data`) that writes the same script root-only and runs it at first boot.
//!
//! Every step checks before it changes and prints `alembic-bootstrap: STEP changed|unchanged`,
//! so a second run changes nothing and says so. The steps are static text
//! (`src/bootstrap.sh`, checked by shellcheck in the tests); the topology only contributes
//! three shell variables, quoted by `shlex`.

use alembic_config::{Plane, Topology};
use serde::Serialize;

use crate::{Artifact, ArtifactKind};

/// The script artifact, relative to the output root.
pub const SCRIPT_PATH: &str = "infra/droplet/bootstrap.sh";
/// The cloud-init user-data artifact (DESIGN.md's artifact list).
pub const CLOUD_INIT_PATH: &str = "infra/droplet/cloud-init.yaml";
/// Where cloud-init writes the script on the droplet (root-only) before running it.
pub const ON_SERVER_PATH: &str = "/var/lib/alembic/bootstrap.sh";
/// Every report line of the script starts with this.
pub const REPORT_PREFIX: &str = "alembic-bootstrap: ";

/// The steps, in order, as the script names them in its report lines.
pub const STEPS: &[&str] = &[
    "hostname",
    "user",
    "authorized-keys",
    "packages",
    "docker-service",
    "docker-log-rotation",
    "docker-group",
    "sudo",
    "root-dir",
    "sshd",
    "unattended-upgrades",
];

const BODY: &str = include_str!("bootstrap.sh");

/// Both artifacts. The user-data is rendered for an existing server (`address`) too: no
/// Terraform uses it then, but it is what to paste as user-data when creating that server.
pub fn render(t: &Topology) -> Vec<Artifact> {
    let text = script(t);
    let user_data = cloud_init(&text);
    let mut script = Artifact::new(SCRIPT_PATH, text, Plane::Droplet, ArtifactKind::Script);
    script.mode = 0o755;
    vec![
        script,
        Artifact::new(
            CLOUD_INIT_PATH,
            user_data,
            Plane::Droplet,
            ArtifactKind::CloudInit,
        ),
    ]
}

/// The bootstrap script for this topology.
pub fn script(t: &Topology) -> String {
    let d = &t.droplet;
    let keys: Vec<&str> = d.authorized_keys.iter().map(|k| k.as_str()).collect();
    // With ssh_user = root the deploy user *is* root: forbidding root logins would lock it out,
    // so root keeps key-only logins instead.
    let permit_root = if d.ssh_user.as_str() == "root" {
        "prohibit-password"
    } else {
        "no"
    };
    let mut s = String::with_capacity(BODY.len() + 1024);
    s.push_str("#!/bin/sh\n");
    s.push_str(&format!(
        "# alembic bootstrap for project {}: Docker + compose, the deploy user and its keys,\n",
        t.project.name
    ));
    s.push_str(
        "# sshd hardening, the release root, Docker log rotation, unattended security upgrades.\n\
         # Rendered by alembic; run by `alembic bootstrap` over ssh, or at first boot by\n\
         # infra/droplet/cloud-init.yaml. Idempotent. Do not edit.\n\
         set -eu\n",
    );
    for (name, value) in [
        ("ALEMBIC_USER", d.ssh_user.as_str().to_owned()),
        ("ALEMBIC_ROOT", d.root.as_str().to_owned()),
        ("ALEMBIC_PERMIT_ROOT_LOGIN", permit_root.to_owned()),
        ("ALEMBIC_AUTHORIZED_KEYS", keys.join("\n")),
    ] {
        if name == "ALEMBIC_AUTHORIZED_KEYS" {
            // Key comments may hold `$(...)` or backticks: single quotes keep them literal.
            s.push_str("# shellcheck disable=SC2016 # literal on purpose\n");
        }
        s.push_str(name);
        s.push('=');
        s.push_str(&quote(&value));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(BODY);
    s
}

/// Values are validated at the config border (user names, absolute paths, key lines without
/// control characters), so the only quoting failure (a NUL byte) cannot happen; an empty
/// string is the safe fallback either way.
fn quote(value: &str) -> String {
    shlex::try_quote(value)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| "''".to_owned())
}

#[derive(Serialize)]
struct CloudConfig<'a> {
    write_files: Vec<WriteFile<'a>>,
    runcmd: Vec<Vec<&'a str>>,
}

#[derive(Serialize)]
struct WriteFile<'a> {
    path: &'a str,
    owner: &'a str,
    permissions: &'a str,
    content: &'a str,
}

/// `#cloud-config` user-data: the script written root-only, then run once by `runcmd`.
pub fn cloud_init(script: &str) -> String {
    let doc = CloudConfig {
        write_files: vec![WriteFile {
            path: ON_SERVER_PATH,
            owner: "root:root",
            permissions: "0700",
            content: script,
        }],
        runcmd: vec![vec!["sh", ON_SERVER_PATH]],
    };
    let yaml = yaml_serde::to_string(&doc).unwrap_or_default();
    format!(
        "#cloud-config\n\
         # Rendered by alembic: runs {SCRIPT_PATH} at first boot (the same steps as\n\
         # `alembic bootstrap`). `cloud-init status --wait` reports when it is done.\n\
         {yaml}"
    )
}

/// One line of the script's report, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReportLine {
    /// A step ran.
    Step {
        /// The step's name.
        step: String,
        /// Whether it changed anything.
        changed: bool,
        /// What it did.
        detail: String,
    },
    /// The script finished.
    Done {
        /// How many steps changed something.
        changed: u32,
    },
    /// A step failed; the script stopped.
    Failed {
        /// The step's name.
        step: String,
        /// Why it failed.
        reason: String,
    },
}

/// Parse one output line of the script; `None` for anything that is not a report line (apt's
/// chatter goes to /dev/null, but sshd -t or systemctl may still print).
pub fn parse_report_line(line: &str) -> Option<ReportLine> {
    let rest = line.strip_prefix(REPORT_PREFIX)?;
    if let Some(n) = rest.strip_prefix("done changed=") {
        return n
            .trim()
            .parse()
            .ok()
            .map(|changed| ReportLine::Done { changed });
    }
    if let Some(f) = rest.strip_prefix("failed ") {
        let (step, reason) = f.split_once(": ").unwrap_or((f, ""));
        return Some(ReportLine::Failed {
            step: step.to_owned(),
            reason: reason.to_owned(),
        });
    }
    let mut parts = rest.splitn(3, ' ');
    let step = parts.next()?;
    let changed = match parts.next()? {
        "changed" => true,
        "unchanged" => false,
        _ => return None,
    };
    Some(ReportLine::Step {
        step: step.to_owned(),
        changed,
        detail: parts.next().unwrap_or("").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse() {
        assert_eq!(
            parse_report_line("alembic-bootstrap: sshd changed PermitRootLogin no"),
            Some(ReportLine::Step {
                step: "sshd".into(),
                changed: true,
                detail: "PermitRootLogin no".into()
            })
        );
        assert_eq!(
            parse_report_line("alembic-bootstrap: user unchanged"),
            Some(ReportLine::Step {
                step: "user".into(),
                changed: false,
                detail: String::new()
            })
        );
        assert_eq!(
            parse_report_line("alembic-bootstrap: done changed=0"),
            Some(ReportLine::Done { changed: 0 })
        );
        assert_eq!(
            parse_report_line("alembic-bootstrap: failed packages: unsupported distribution"),
            Some(ReportLine::Failed {
                step: "packages".into(),
                reason: "unsupported distribution".into()
            })
        );
        assert_eq!(parse_report_line("Reading package lists..."), None);
        assert_eq!(parse_report_line("alembic-bootstrap: x maybe"), None);
    }
}
