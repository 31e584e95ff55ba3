//! The top-level tables: `version`, `[project]`, `[host]`, `[droplet]`, `[ci]`.

use super::*;

impl<'s> Cx<'s> {
    pub(super) fn topology(&mut self, root: &DeTable<'_>, span: Range<usize>) -> Option<Topology> {
        let root = self.open(root, String::new(), span.start..span.start, ROOT_KEYS);
        let version = match self.integer(&root, "version") {
            Some((1, _)) => Some(1),
            Some((n, sp)) => {
                self.err(
                    Code::Cfg004,
                    sp,
                    format!("unsupported config version {n}"),
                    Some("this alembic understands `version = 1`".to_owned()),
                );
                None
            }
            None => {
                if root.t.get("version").is_none() {
                    self.missing(&root, "version", "add `version = 1` at the top of the file");
                }
                None
            }
        };
        let project = self.project(&root);
        let host = self.host(&root);
        let droplet = self.droplet(&root, project.as_ref());
        let ci = self.ci(&root);
        let workloads = self.workloads(&root);
        Some(Topology {
            version: version?,
            project: project?,
            host: host?,
            droplet: droplet?,
            ci: ci?,
            workloads: workloads?,
            spans: std::mem::take(&mut self.spans),
            by_name: Default::default(),
        })
    }

    pub(super) fn project(&mut self, root: &Tbl<'_, '_>) -> Option<Project> {
        let t = self.sub_table(root, "project", PROJECT_KEYS, true)?;
        let name = self.string(
            &t,
            "name",
            Some("name the project, like name = \"alembic\""),
            Code::Cfg004,
            ProjectName::parse,
        );
        let domain = self.string(
            &t,
            "domain",
            Some("the DNS zone routes live under, like domain = \"example.com\""),
            Code::Cfg004,
            Hostname::parse,
        );
        Some(Project {
            name: name?,
            domain: domain?,
        })
    }

    pub(super) fn host(&mut self, root: &Tbl<'_, '_>) -> Option<Host> {
        let Some(t) = self.sub_table(root, "host", HOST_KEYS, false) else {
            // `[host]` is optional (macOS by default) unless it was present but malformed.
            return match root.t.get("host") {
                Some(_) => None,
                None => Some(Host { os: HostOs::Macos }),
            };
        };
        let os = self.string(&t, "os", None, Code::Cfg004, |s| match s {
            "macos" => Ok(HostOs::Macos),
            "linux" => Ok(HostOs::Linux),
            _ => Err(format!("{s:?} is not one of \"macos\", \"linux\"")),
        });
        match (t.t.get("os"), os) {
            (None, _) => Some(Host { os: HostOs::Macos }),
            (Some(_), Some(os)) => Some(Host { os }),
            (Some(_), None) => None,
        }
    }

    pub(super) fn droplet(
        &mut self,
        root: &Tbl<'_, '_>,
        project: Option<&Project>,
    ) -> Option<Droplet> {
        let t = self.sub_table(root, "droplet", DROPLET_KEYS, true)?;
        let mut ok = true;
        let address = self.string(&t, "address", None, Code::Cfg004, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an IP address"))
        });
        ok &= t.t.get("address").is_none() || address.is_some();
        let provisioned = t.t.get("address").is_none() && t.t.get("addresses").is_none();
        let need = |what: &'static str| if provisioned { Some(what) } else { None };
        let name = self.string(
            &t,
            "name",
            Some("name the droplet, like name = \"alembic-prod\""),
            Code::Cfg004,
            |s| WorkloadName::parse(s).map_err(|e| e.replace("workload name", "droplet name")),
        );
        let region = self.string(
            &t,
            "region",
            need("a DigitalOcean region slug, like region = \"nyc3\""),
            Code::Cfg004,
            Slug::parse,
        );
        let size = self.string(
            &t,
            "size",
            need("a droplet size slug, like size = \"s-1vcpu-2gb\""),
            Code::Cfg004,
            Slug::parse,
        );
        let image = self.string(
            &t,
            "image",
            need("an image slug, like image = \"ubuntu-24-04-x64\""),
            Code::Cfg004,
            Slug::parse,
        );
        ok &= !provisioned || (region.is_some() && size.is_some() && image.is_some());
        let ssh_user = match t.t.get("ssh_user") {
            Some(_) => self.string(&t, "ssh_user", None, Code::Cfg004, UserName::parse),
            None => UserName::parse("root").ok(),
        };
        let ssh_port = match t.t.get("ssh_port") {
            Some(_) => self.port(&t, "ssh_port"),
            None => Port::new(22).ok(),
        };
        let ssh_keys = self.string_list(&t, "ssh_keys", Code::Cfg004, true, SshKeyRef::parse);
        if provisioned && ssh_keys.is_empty() && t.no_items("ssh_keys") && !self.syntax_broken {
            let span = t.spans_of("ssh_keys");
            self.err(
                Code::Cfg003,
                span,
                "missing `droplet.ssh_keys`: a provisioned droplet needs at least one SSH key"
                    .to_owned(),
                Some(
                    "list the fingerprints of keys already in the DigitalOcean account".to_owned(),
                ),
            );
            ok = false;
        }
        let authorized_keys = self.string_list(
            &t,
            "authorized_keys",
            Code::Cfg004,
            true,
            AuthorizedKey::parse,
        );
        let admin_cidrs = self.string_list(&t, "admin_cidrs", Code::Cfg004, true, Cidr::parse);
        if provisioned && admin_cidrs.is_empty() && t.no_items("admin_cidrs") && !self.syntax_broken
        {
            let span = t.spans_of("admin_cidrs");
            self.err(
                Code::Cfg003,
                span,
                "missing `droplet.admin_cidrs`: the firewall needs the sources allowed to reach SSH".to_owned(),
                Some("list your admin networks, like admin_cidrs = [\"203.0.113.10/32\"]".to_owned()),
            );
            ok = false;
        }
        let token_env = match t.t.get("token_env") {
            Some(_) => self.string(&t, "token_env", None, Code::Sec002, EnvVarName::parse),
            None => EnvVarName::parse("DIGITALOCEAN_TOKEN").ok(),
        };
        let tls = match t.t.get("tls") {
            Some(_) => self.string(&t, "tls", None, Code::Cfg004, |s| match s {
                "acme" => Ok(Tls::Acme),
                "acme-staging" => Ok(Tls::AcmeStaging),
                "internal" => Ok(Tls::Internal),
                _ => Err(format!(
                    "{s:?} is not one of \"acme\", \"acme-staging\", \"internal\""
                )),
            }),
            None => Some(Tls::Acme),
        };
        let acme_email = self.string(&t, "acme_email", None, Code::Cfg004, Email::parse);
        ok &= t.t.get("acme_email").is_none() || acme_email.is_some();
        let root_dir = match t.t.get("root") {
            Some(_) => self.string(&t, "root", None, Code::Cfg004, AbsPath::parse),
            None => project.and_then(|p| AbsPath::parse(&format!("/opt/{}", p.name)).ok()),
        };
        let edge_image = match t.t.get("edge_image") {
            Some(_) => self.string(&t, "edge_image", None, Code::Cfg004, ImageRef::parse),
            None => ImageRef::parse("caddy:2.10-alpine").ok(),
        };
        let edge_bind = match t.t.get("edge_bind") {
            Some(_) => self.string(&t, "edge_bind", None, Code::Cfg004, |s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("{s:?} is not an IP address"))
            }),
            None => Some(IpAddr::from([0, 0, 0, 0])),
        };
        let http_port = match t.t.get("http_port") {
            Some(_) => self.port(&t, "http_port"),
            None => Port::new(80).ok(),
        };
        let https_port = match t.t.get("https_port") {
            Some(_) => self.port(&t, "https_port"),
            None => Port::new(443).ok(),
        };
        if let (Some(h), Some(s)) = (http_port, https_port) {
            if h == s {
                let span = t.spans_of("https_port");
                self.err(
                    Code::Cfg004,
                    span,
                    "`droplet.http_port` and `droplet.https_port` must differ",
                    None,
                );
                ok = false;
            }
        }
        let keep_releases = match self.integer(&t, "keep_releases") {
            Some((n, _)) if (1..=100).contains(&n) => Some(n as u32),
            Some((n, sp)) => {
                self.err(
                    Code::Cfg004,
                    sp,
                    format!("`droplet.keep_releases` = {n} must be from 1 to 100"),
                    None,
                );
                None
            }
            None if t.t.get("keep_releases").is_some() => None,
            None => Some(5),
        };
        // Remote Terraform state (DigitalOcean Spaces). Every key is optional; the defaults
        // follow the project and the droplet's region, so `state_bucket` alone is enough.
        let state_bucket = self.string(&t, "state_bucket", None, Code::Cfg004, BucketName::parse);
        ok &= t.t.get("state_bucket").is_none() || state_bucket.is_some();
        let state_key = match t.t.get("state_key") {
            Some(_) => self.string(&t, "state_key", None, Code::Cfg004, ObjectKey::parse),
            // A project name is a slug, so this default always parses.
            None => ObjectKey::parse(&format!(
                "{}/terraform.tfstate",
                project.map_or("alembic", |p| p.name.as_str())
            ))
            .ok(),
        };
        let state_region = match t.t.get("state_region") {
            Some(_) => {
                let r = self.string(&t, "state_region", None, Code::Cfg004, Slug::parse);
                ok &= r.is_some();
                r
            }
            None => region.clone(),
        };
        let env_name = |cx: &mut Self, key: &str, default: &str| match t.t.get(key) {
            Some(_) => cx.string(&t, key, None, Code::Sec002, EnvVarName::parse),
            None => EnvVarName::parse(default).ok(),
        };
        let state_access_key_env = env_name(self, "state_access_key_env", "SPACES_ACCESS_KEY_ID");
        let state_secret_key_env =
            env_name(self, "state_secret_key_env", "SPACES_SECRET_ACCESS_KEY");
        if let (Some(a), Some(s)) = (&state_access_key_env, &state_secret_key_env) {
            if a == s {
                let span = t.spans_of("state_secret_key_env");
                self.err(
                    Code::Sec002,
                    span,
                    format!(
                        "`droplet.state_access_key_env` and `droplet.state_secret_key_env` both name `{a}`: the access key id and the secret key are two values"
                    ),
                    Some("name two env vars, like SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY".to_owned()),
                );
                ok = false;
            }
        }
        let registry = self.string(&t, "registry", None, Code::Cfg004, Registry::parse);
        ok &= t.t.get("registry").is_none() || registry.is_some();
        let scale = self.scale(&t, t.t.get("address").is_some());
        ok &= scale.is_some();
        if !ok {
            return None;
        }
        Some(Droplet {
            name: name?,
            region,
            size,
            image,
            ssh_user: ssh_user?,
            ssh_port: ssh_port?,
            ssh_keys,
            authorized_keys,
            admin_cidrs,
            token_env: token_env?,
            tls: tls?,
            acme_email,
            root: root_dir?,
            edge_image: edge_image?,
            edge_bind: edge_bind?,
            http_port: http_port?,
            https_port: https_port?,
            address,
            keep_releases: keep_releases?,
            state_bucket,
            state_key: state_key?,
            state_region,
            state_access_key_env: state_access_key_env?,
            state_secret_key_env: state_secret_key_env?,
            registry,
            scale: scale?,
        })
    }

    pub(super) fn ci(&mut self, root: &Tbl<'_, '_>) -> Option<Ci> {
        let t = self.sub_table(root, "ci", CI_KEYS, true)?;
        let repository = self.string(
            &t,
            "repository",
            Some("the GitHub repository, like repository = \"acme/alembic\""),
            Code::Cfg004,
            Repository::parse,
        );
        let defaulted =
            |cx: &mut Self, key: &str, default: &str, p: fn(&str) -> Result<Token, String>| match t
                .t
                .get(key)
            {
                Some(_) => cx.string(&t, key, None, Code::Cfg004, p),
                None => p(default).ok(),
            };
        let runner = defaulted(self, "runner", "ubuntu-24.04", Token::parse);
        let node_version = defaulted(self, "node_version", "22", Token::parse);
        let python_version = defaulted(self, "python_version", "3.12", Token::parse);
        let go_version = defaulted(self, "go_version", "stable", Token::parse);
        let rust_toolchain = defaulted(self, "rust_toolchain", "stable", Token::parse);
        // Without `toolchain`, a file that names a Node version keeps the pnpm setup it always
        // had; one that names none gets no language setup at all.
        let toolchain = match t.t.get("toolchain") {
            Some(_) => self.string(&t, "toolchain", None, Code::Cfg004, |s| {
                Toolchain::parse(s).ok_or_else(|| {
                    let all: Vec<String> =
                        Toolchain::ALL.iter().map(|t| format!("\"{t}\"")).collect();
                    format!("{s:?} is not one of {}", all.join(", "))
                })
            }),
            None if t.t.get("node_version").is_some() => Some(Toolchain::Pnpm),
            None => Some(Toolchain::None),
        };
        // A version field the chosen toolchain never reads is a mistake worth saying (the
        // project may have meant another toolchain), but it breaks nothing: a warning.
        if let Some(tc) = toolchain {
            for field in [
                "node_version",
                "python_version",
                "go_version",
                "rust_toolchain",
            ] {
                if t.t.get(field).is_some() && tc.version_field() != Some(field) {
                    let span = t.spans_of(field);
                    let used = match tc.version_field() {
                        Some(f) => format!("it reads `ci.{f}`"),
                        None => "it sets up no language".to_owned(),
                    };
                    let d = self.src.diag(
                        Code::Cfg004,
                        Severity::Warning,
                        span,
                        format!("`ci.{field}` has no effect with `toolchain = \"{tc}\"`"),
                        Some(format!(
                            "{used}; remove `{field}` or set the toolchain that uses it"
                        )),
                    );
                    self.diags.push(d);
                }
            }
        }
        let alembic_version =
            self.string(&t, "alembic_version", None, Code::Cfg004, Version::parse);
        let environment = defaulted(self, "environment", "production", Token::parse);
        let branch = match t.t.get("branch") {
            Some(_) => self.string(&t, "branch", None, Code::Cfg004, BranchName::parse),
            None => BranchName::parse("main").ok(),
        };
        let n = self.diags.len();
        let checks = self.string_list(&t, "checks", Code::Cfg004, false, Text::parse_ci);
        let gates = self.string_list(&t, "gates", Code::Cfg004, false, Text::parse_ci);
        let secrets = self.string_list(&t, "secrets", Code::Sec002, true, EnvVarName::parse);
        if self.diags[n..].iter().any(Diagnostic::is_error) {
            return None;
        }
        if t.t.get("alembic_version").is_some() && alembic_version.is_none() {
            return None;
        }
        Some(Ci {
            repository: repository?,
            branch: branch?,
            runner: runner?,
            toolchain: toolchain?,
            node_version: node_version?,
            python_version: python_version?,
            go_version: go_version?,
            rust_toolchain: rust_toolchain?,
            alembic_version,
            checks,
            gates,
            environment: environment?,
            secrets,
        })
    }
}
