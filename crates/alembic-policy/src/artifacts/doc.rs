//! What the artifact rules read: the kind of a file, the scan's context, the parsed file
//! ([`Doc`]) and the rule over one kind ([`FileRule`]).

use alembic_config::{Diagnostic, SourceFile};

use crate::rule::Rule;
use crate::tokens;
use crate::yamlpos::YamlIndex;

/// The file families the artifact rules understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A docker compose file.
    Compose,
    /// A Terraform (`.tf`) file.
    Terraform,
    /// A GitHub Actions workflow.
    Workflow,
    /// A Caddyfile.
    Caddyfile,
    /// A launchd job (`.plist`).
    Plist,
    /// A systemd unit (`.service`, `.socket`, `.timer`).
    Unit,
    /// Kubernetes manifests (`apiVersion` + `kind` documents).
    Kubernetes,
    /// Any other text: only the secret shapes apply.
    Text,
}

/// What "needed" means when judging a firewall: the SSH port and the ports the edge serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanContext {
    /// The port sshd listens on (a firewall rule for it is judged as SSH).
    pub ssh_port: u16,
    /// Ports a public workload needs open to the world (the edge's HTTP and HTTPS).
    pub public_ports: Vec<u16>,
    /// Values the config's own SEC001 already reports (inline env values that look like
    /// secrets). Rendered artifacts carry them too; one problem is one finding, reported where
    /// the user wrote it, so artifact findings on these exact values are dropped.
    pub config_secrets: Vec<String>,
    /// Host workloads' `bind` addresses that the config's own EXP002 already reports; a
    /// rendered plist or unit passing them on is the same problem, not a second one.
    pub config_host_binds: Vec<std::net::IpAddr>,
    /// `droplet.admin_cidrs` when the config's EXP005 already reports them as the whole
    /// internet: the rendered firewall's SSH rule built from them is the same problem.
    pub config_ssh_world: Vec<alembic_config::types::Cidr>,
    /// A load balancer terminates TLS in front of the edge (`droplet.lb.tls = "terminate"`):
    /// the edge's `http://<host>` sites are what the balancer forwards to, not clear text on
    /// the internet (the firewall admits 80 only from the balancer, EXP009).
    pub tls_at_balancer: bool,
}

impl Default for ScanContext {
    fn default() -> Self {
        ScanContext {
            ssh_port: 22,
            public_ports: vec![80, 443],
            config_secrets: Vec::new(),
            config_host_binds: Vec::new(),
            config_ssh_world: Vec::new(),
            tls_at_balancer: false,
        }
    }
}

impl ScanContext {
    /// The context of a topology: its SSH port and its edge's ports.
    pub fn of(t: &alembic_config::Topology) -> ScanContext {
        let mut public_ports = vec![
            80,
            443,
            t.droplet.http_port.get(),
            t.droplet.https_port.get(),
        ];
        public_ports.sort_unstable();
        public_ports.dedup();
        // The same judgement SEC001 makes over the config's `env = { KEY = "value" }` text.
        let config_secrets = t
            .workloads
            .iter()
            .flat_map(|w| w.env.iter())
            .filter(|(k, v)| {
                !tokens::find_tokens(v.as_str()).is_empty()
                    || (tokens::is_secret_like_key(k.as_str()) && tokens::looks_random(v.as_str()))
            })
            .map(|(_, v)| v.as_str().to_owned())
            .collect();
        let config_host_binds = t
            .on_plane(alembic_config::Plane::Host)
            .filter_map(|w| w.bind)
            .filter(|b| !alembic_config::types::is_private_or_loopback(b))
            .collect();
        let admin = &t.droplet.admin_cidrs;
        let (v4, v6) = crate::coverage::world(admin);
        let config_ssh_world = if v4.is_world() || v6.is_world() {
            admin.clone()
        } else {
            Vec::new()
        };
        ScanContext {
            ssh_port: t.droplet.ssh_port.get(),
            public_ports,
            config_secrets,
            config_host_binds,
            config_ssh_world,
            tls_at_balancer: t
                .droplet
                .scale
                .lb
                .as_ref()
                .is_some_and(|lb| lb.terminates_tls()),
        }
    }
}

/// One file, parsed as its kind allows, handed to every rule of that kind.
pub struct Doc<'a> {
    /// The file: its name and text.
    pub src: &'a SourceFile,
    /// What the scan knows about the topology.
    pub ctx: &'a ScanContext,
    /// The first YAML document (compose, workflow), when it parses.
    pub yaml: Option<crate::yaml::Value>,
    /// Positions of the YAML nodes.
    pub yindex: YamlIndex,
    /// The HCL body (Terraform), when it parses; `None` sends Terraform rules to text heuristics.
    pub hcl: Option<hcl_edit::structure::Body>,
    /// The top-level dictionary of a launchd plist, when it parses.
    pub plist: Option<plist::Dictionary>,
}

impl<'a> Doc<'a> {
    /// `(name, mapping)` for every entry of a top-level YAML mapping (`services`, `jobs`), in
    /// file order; entries that are not mappings are skipped.
    pub(crate) fn named_mappings(&self, key: &str) -> Vec<(&str, &crate::yaml::Mapping)> {
        self.yaml
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(crate::yaml::Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?, v.as_mapping()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Doc<'_> {
    /// The file's text.
    pub fn text(&self) -> &str {
        &self.src.text
    }
}

/// A rule over one artifact file of a given kind.
pub struct FileRule {
    /// The rule's identity and wording.
    pub rule: Rule,
    /// The file kind it applies to.
    pub kind: FileKind,
    /// The check: every finding in one file.
    pub check: fn(&Rule, &Doc<'_>) -> Vec<Diagnostic>,
}
