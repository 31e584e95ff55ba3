//! Long explanations of the diagnostic codes, for `alembic explain CODE` and docs/codes.md:
//! what a code means, an example that triggers it, and the fix. The one-line summary stays in
//! [`Code::summary`] (what SARIF and the checks use); the binary adds the checks' own hints
//! (each rule's `help`) and default severity from alembic-policy's rule data.
//!
//! Every [`Code`] has an entry, and so does every code DESIGN.md reserves without a rule yet
//! (EXP009, for load-balanced droplets): tests hold both.

use crate::diag::Code;

/// One code's explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    /// The stable code, as printed (`EXP003`).
    pub code: &'static str,
    /// What the problem is and why alembic reports it.
    pub meaning: &'static str,
    /// A config or artifact excerpt that triggers it.
    pub example: &'static str,
    /// How to make it go away.
    pub fix: &'static str,
}

impl Explanation {
    /// The code as an enum, when a check emits it (reserved codes have none).
    pub fn code(&self) -> Option<Code> {
        Code::from_str_code(self.code)
    }

    /// The one-line summary: [`Code::summary`], or the reserved code's own.
    pub fn summary(&self) -> &'static str {
        match self.code() {
            Some(c) => c.summary(),
            None => RESERVED
                .iter()
                .find(|(c, _)| *c == self.code)
                .map_or("", |(_, s)| s),
        }
    }
}

/// Codes DESIGN.md defines that no check emits yet, with their summary.
pub const RESERVED: &[(&str, &str)] = &[];

/// The explanation of `code` (case-insensitive, surrounding blanks ignored).
pub fn explain(code: &str) -> Option<&'static Explanation> {
    let code = code.trim();
    EXPLANATIONS
        .iter()
        .find(|e| e.code.eq_ignore_ascii_case(code))
}

/// Every explanation, in the order DESIGN.md lists the codes.
pub static EXPLANATIONS: &[Explanation] = &[
    Explanation {
        code: "CFG001",
        meaning: "alembic.toml is not valid TOML, or not UTF-8. Every syntax error in the file \
                  is reported, not only the first; until the file parses, the checks that need \
                  its structure cannot run.",
        example: "[project\nname = \"shop\"",
        fix: "Close the table header (`[project]`), quote strings, and save the file as UTF-8.",
    },
    Explanation {
        code: "CFG002",
        meaning: "A key alembic does not know. A misspelt key would otherwise be ignored \
                  silently and its setting lost; the diagnostic suggests the nearest known key.",
        example: "[droplet]\nregoin = \"nyc3\"",
        fix: "Use the suggested key (`region`), or remove the line. `alembic schema` lists \
              every key.",
    },
    Explanation {
        code: "CFG003",
        meaning: "A field the plane needs is missing: a droplet workload without `image` or \
                  `build`, a host workload without `command`, a public workload without its \
                  port.",
        example: "[[workload]]\nname  = \"api\"\nplane = \"droplet\"",
        fix: "Add the field the message names (here `image = \"ghcr.io/acme/api:1.0\"` or \
              `build = \"services/api\"`).",
    },
    Explanation {
        code: "CFG004",
        meaning: "A value has the wrong type, is out of range, has the wrong format or holds \
                  characters that are unsafe where it ends up (a path, a unit name, a shell \
                  line).",
        example: "[droplet]\nssh_port = 70000",
        fix: "Give a value of the documented type and range (ports are 1-65535; names are \
              `[a-z][a-z0-9-]*`).",
    },
    Explanation {
        code: "CFG005",
        meaning: "Two workloads share a name (or a name is reserved, like `edge`). Names become \
                  compose services, unit files and labels, so they must be unique.",
        example: "[[workload]]\nname = \"api\"\n\n[[workload]]\nname = \"api\"",
        fix: "Rename one of them.",
    },
    Explanation {
        code: "CFG006",
        meaning: "A reference points at nothing: `depends_on` names no workload (or one on \
                  another plane), or a secret a job needs is not declared where it must be.",
        example: "[[workload]]\nname = \"api\"\ndepends_on = [\"gatewey\"]",
        fix: "Name an existing workload on the same plane, or declare what is referenced.",
    },
    Explanation {
        code: "CFG007",
        meaning: "A placeholder from the template (`example.com` domains, documentation \
                  addresses, the sample SSH key) is still in the config where it would break \
                  or endanger a real deploy. A warning in `check`; `plan`, `apply` and \
                  `rollback` refuse to run with it.",
        example: "[project]\ndomain = \"alembic.example.com\"",
        fix: "Replace the value with your own domain, addresses, key fingerprint and \
              repository.",
    },
    Explanation {
        code: "EXP001",
        meaning: "Only the droplet plane may be public, and only through the edge. A public \
                  host or ci workload would put the operator's machine or a CI job on the \
                  internet.",
        example: "[[workload]]\nname     = \"local-models\"\nplane    = \"host\"\nexposure = \"public\"",
        fix: "Set `exposure = \"private\"`, or move the workload to `plane = \"droplet\"` with \
              a route.",
    },
    Explanation {
        code: "EXP002",
        meaning: "A host workload listens on an address other than loopback or a private \
                  network, so anyone who can reach the machine can reach it.",
        example: "[[workload]]\nname  = \"local-models\"\nplane = \"host\"\nbind  = \"0.0.0.0\"",
        fix: "Bind to `127.0.0.1` (or a private/tailnet address) and reach it through a \
              private tunnel.",
    },
    Explanation {
        code: "EXP003",
        meaning: "A droplet service publishes a port itself, bypassing the edge (Caddy): no \
                  TLS, no security headers, no health-checked routing, and a port the firewall \
                  must open. Found in compose files `check` renders and `scan` reads.",
        example: "services:\n  api:\n    image: ghcr.io/acme/api:1.0\n    ports: [\"8080:8080\"]",
        fix: "Remove `ports`: the edge reaches services on the compose network. Publish on \
              loopback (`127.0.0.1:8080:8080`) only if a local tool needs it.",
    },
    Explanation {
        code: "EXP004",
        meaning: "A public workload has no route, a route outside the project's domain, or a \
                  route another workload already serves: the edge could not send traffic to it, \
                  or would send it to the wrong place.",
        example: "[project]\ndomain = \"shop.dev\"\n\n[[workload]]\nname     = \"api\"\nexposure = \"public\"\nroute    = \"api.other.dev\"",
        fix: "Give each public workload its own `route = \"name.<project.domain>[/prefix]\"`.",
    },
    Explanation {
        code: "EXP005",
        meaning: "SSH (port 22 or `droplet.ssh_port`) is open to the whole internet, in the \
                  config's `admin_cidrs` or in a Terraform firewall rule.",
        example: "[droplet]\nadmin_cidrs = [\"0.0.0.0/0\"]",
        fix: "List only the operators' addresses: `admin_cidrs = [\"203.0.113.10/32\"]`.",
    },
    Explanation {
        code: "EXP006",
        meaning: "The firewall opens a port no public workload needs. Only the edge's HTTP and \
                  HTTPS ports (and SSH from the admin networks) belong on the internet.",
        example: "inbound_rule {\n  protocol         = \"tcp\"\n  port_range       = \"5432\"\n  source_addresses = [\"0.0.0.0/0\"]\n}",
        fix: "Remove the rule; route the service through the edge or restrict its sources.",
    },
    Explanation {
        code: "EXP007",
        meaning: "A ci workload is a job on a stateless runner: it has no port, bind address, \
                  route or public exposure.",
        example: "[[workload]]\nname  = \"e2e\"\nplane = \"ci\"\nport  = 3000",
        fix: "Remove `port`, `bind`, `route` and `exposure` from the ci workload.",
    },
    Explanation {
        code: "EXP008",
        meaning: "A container gets control of the droplet: privileged mode, the host's \
                  network/PID/IPC/user namespace, added capabilities, seccomp or AppArmor \
                  unconfined, host devices, the Docker socket or a host root mounted, or a \
                  bind mount of a host path in a rendered service.",
        example: "services:\n  api:\n    privileged: true\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]",
        fix: "Remove the setting. Droplet workloads use named volumes only \
              (`volumes = [\"data:/var/lib/app\"]`).",
    },
    Explanation {
        code: "EXP009",
        meaning: "With a DigitalOcean load balancer in the rendered Terraform, a firewall rule \
                  admits the edge's ports (80/443) from addresses, tags or droplets rather than \
                  only from the balancer: requests can reach a droplet around the balancer, \
                  skipping its TLS and health gating.",
        example: "resource \"digitalocean_firewall\" \"web\" {\n  inbound_rule {\n    protocol         = \"tcp\"\n    port_range       = \"443\"\n    source_addresses = [\"0.0.0.0/0\"]\n  }\n}",
        fix: "Admit 80/443 only from the balancer: `source_load_balancer_uids = \
              [digitalocean_loadbalancer.<name>.id]` (what `alembic render` writes for \
              `droplet.count` > 1).",
    },
    Explanation {
        code: "EXP010",
        meaning: "A host daemon's command cannot learn its `bind` and `port`: it neither uses \
                  the `{bind}`/`{port}` placeholders nor reads `$HOST`/`$PORT`, so it may \
                  listen somewhere else than the config says (a warning).",
        example: "[[workload]]\nname    = \"agent\"\nplane   = \"host\"\ncommand = [\"/usr/local/bin/agent\", \"--listen\", \"0.0.0.0:9000\"]\nport    = 9000",
        fix: "Use the placeholders: `command = [\"/usr/local/bin/agent\", \"--listen\", \
              \"{bind}:{port}\"]`.",
    },
    Explanation {
        code: "SEC001",
        meaning: "A secret value is written inline: a known token shape (DigitalOcean, GitHub, \
                  OpenAI, Anthropic, AWS, Slack, PEM keys) anywhere, or a high-entropy value in \
                  a secret-like field. Output always shows it masked.",
        example: "[[workload]]\nname = \"api\"\nenv  = { API_KEY = \"sk-...\" }",
        fix: "Revoke the value (it may already be exposed), set it in the environment, and \
              reference it by name: `secrets = [\"API_KEY\"]`.",
    },
    Explanation {
        code: "SEC002",
        meaning: "A secret or environment variable name is not a valid env-var name \
                  (`[A-Z_][A-Z0-9_]*`), so it could not be passed to a process.",
        example: "[[workload]]\nsecrets = [\"database-url\"]",
        fix: "Use an upper-case name with underscores: `DATABASE_URL`.",
    },
    Explanation {
        code: "SEC003",
        meaning: "A secret the selected planes need is unset or empty in the environment of \
                  the command (only its name is ever shown).",
        example: "$ alembic secrets --check\nerror[SEC003]: secret DATABASE_URL is unset or empty in the environment",
        fix: "Export it before `apply` (`export DATABASE_URL=...`), or set it in the CI \
              environment `ci.environment` names.",
    },
    Explanation {
        code: "SEC004",
        meaning: "An artifact hands a secret to something that does not declare it: a \
                  workflow step or service receives a secret name its workload or `ci.secrets` \
                  does not list.",
        example: "env:\n  TOKEN: ${{ secrets.DIGITALOCEAN_TOKEN }}   # not in ci.secrets",
        fix: "Add the name to `ci.secrets` (or the workload's `secrets`), or stop passing it.",
    },
    Explanation {
        code: "CI001",
        meaning: "A workflow uses an action by tag or branch. Tags and branches can be moved to \
                  other code; a full commit SHA cannot.",
        example: "- uses: actions/checkout@v4",
        fix: "Pin the full 40-character SHA: `uses: actions/checkout@<sha> # v4.2.2`.",
    },
    Explanation {
        code: "CI002",
        meaning: "The workflow's token has more permissions than its jobs need (no top-level \
                  `permissions`, or `write-all`).",
        example: "on: push\npermissions: write-all",
        fix: "Set `permissions: {}` at the top and grant each job only what it needs \
              (`contents: read`).",
    },
    Explanation {
        code: "CI003",
        meaning: "Untrusted event input (an issue title, a branch name, a PR body) is \
                  interpolated into a `run:` script with `${{ }}`, so its text becomes shell \
                  code.",
        example: "- run: echo \"${{ github.event.issue.title }}\"",
        fix: "Pass it through the environment: `env: TITLE: ${{ github.event.issue.title }}` \
              and use `\"$TITLE\"` in the script.",
    },
    Explanation {
        code: "CI004",
        meaning: "A deploy job runs without a GitHub environment (so its secrets are not \
                  protected by the environment's rules), or with `cancel-in-progress: true` (a \
                  deploy cut off half-way).",
        example: "deploy:\n  runs-on: ubuntu-24.04\n  concurrency: { group: deploy, cancel-in-progress: true }",
        fix: "Add `environment: production` and queue instead of cancelling \
              (`cancel-in-progress: false`).",
    },
    Explanation {
        code: "CI005",
        meaning: "A `pull_request_target` or `workflow_run` workflow checks out or runs the \
                  pull request's code. Those triggers run with the base repository's secrets \
                  and a write token, so the pull request's author would run code with them.",
        example: "on: pull_request_target\njobs:\n  t:\n    steps:\n      - uses: actions/checkout@<sha>\n        with: { ref: \"${{ github.event.pull_request.head.sha }}\" }",
        fix: "Use `pull_request` for anything that runs the pull request's code; keep \
              `pull_request_target` to labelling and commenting.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_entry() {
        for c in Code::ALL {
            let e = explain(c.as_str()).unwrap_or_else(|| panic!("{c} has no explanation"));
            assert_eq!(e.code(), Some(c));
            assert!(!e.meaning.is_empty() && !e.example.is_empty() && !e.fix.is_empty());
        }
        for (code, _) in RESERVED {
            assert!(explain(code).is_some(), "{code}");
        }
        let mut codes: Vec<&str> = EXPLANATIONS.iter().map(|e| e.code).collect();
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "duplicate entries");
        assert_eq!(n, Code::ALL.len() + RESERVED.len(), "an entry for no code");
    }

    /// The design's codes table (docs/design.md, DESIGN.md's contract) is what outside tests
    /// match on: each of its codes must be explainable, and nothing explained may be missing
    /// from it.
    #[test]
    fn every_code_of_the_design_has_an_entry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/design.md");
        let design = std::fs::read_to_string(path).expect("docs/design.md is committed");
        let table = design
            .split("## Diagnostic codes")
            .nth(1)
            .expect("design.md has the codes table");
        let codes: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(" |").next())
            .filter(|c| {
                c.len() >= 5
                    && c.chars().take_while(char::is_ascii_uppercase).count() >= 2
                    && c.chars().rev().take(3).all(|d| d.is_ascii_digit())
            })
            .collect();
        assert_eq!(codes.len(), 26, "codes table changed: {codes:?}");
        for c in &codes {
            assert!(
                explain(c).is_some(),
                "{c} (docs/design.md) has no explanation"
            );
        }
        for e in EXPLANATIONS {
            assert!(
                codes.contains(&e.code),
                "{} is not in docs/design.md",
                e.code
            );
        }
    }

    #[test]
    fn lookup_ignores_case_and_blanks() {
        assert_eq!(explain(" exp003 ").map(|e| e.code), Some("EXP003"));
        assert!(explain("EXP999").is_none());
        assert!(explain("").is_none());
        assert!(!explain("EXP009")
            .map(Explanation::summary)
            .unwrap_or("")
            .is_empty());
    }
}
