//! Versions and what a container is built from and runs with: build contexts, container
//! paths, volume mounts, container users and registries.

use super::*;

string_newtype!(
    /// An exact release version, `MAJOR.MINOR.PATCH` with an optional `-pre` part (semver 2.0
    /// without build metadata): numbers without leading zeros, pre-release identifiers of
    /// `[0-9A-Za-z-]` joined by dots. It is rendered after `=` in `cargo install --version`,
    /// so it can never be a range or a moving name like `latest`. Checked by hand: the grammar
    /// is five lines and the `semver` crate would be a new dependency for one check.
    Version
);

impl Version {
    /// Parse a version, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 64, "version")?;
        let bad = || {
            format!("{s:?} is not an exact version like 0.2.0 or 1.0.0-rc.1 (no ranges, no `v`)")
        };
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let numeric = |n: &str| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
            return Err(bad());
        }
        if let Some(pre) = pre {
            let ok = pre.split('.').all(|id| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
            });
            if !ok {
                return Err(bad());
            }
        }
        Ok(Version(s.to_owned()))
    }
}

string_newtype!(
    /// A Docker build context relative to the config's directory: segments of `A-Za-z0-9._-`
    /// joined by single `/`, or `.` for the directory itself. Never absolute, never `..`, so
    /// it always names a directory inside the project, and is safe in a workflow `with:` value
    /// and as a shell argument.
    BuildContext
);

impl BuildContext {
    /// Parse a build context, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "build context")?;
        if s == "." {
            return Ok(BuildContext(s.to_owned()));
        }
        if s.starts_with('/') {
            return Err(format!(
                "{s:?} is absolute: `build` is a directory relative to alembic.toml, like \"services/api\""
            ));
        }
        let segments_ok = s.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
        if !segments_ok || s.starts_with('-') {
            return Err(format!(
                "{s:?} must be a directory inside the project, relative to alembic.toml: segments of letters, digits and ._- joined by '/', no '..'"
            ));
        }
        Ok(BuildContext(s.to_owned()))
    }
}

string_newtype!(
    /// An absolute path inside a container (a volume's or a tmpfs' mount point): `/` then
    /// segments of letters, digits and `._-@+`, no `.`/`..` segment, not `/` itself. Safe as a
    /// compose value without quoting decisions (no `:`, `,`, `$`, spaces or control bytes).
    ContainerPath
);

impl ContainerPath {
    /// Parse a container path, refusing anything the rules above do not allow (the error says
    /// which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "container path")?;
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!(
                "{s:?} is not an absolute path inside the container, like \"/var/lib/data\""
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let ok = !rest.is_empty()
            && rest.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b))
            });
        if !ok {
            return Err(format!(
                "{s:?} must be an absolute path below / inside the container: segments of letters, digits and ._-@+ joined by '/', no '.' or '..'"
            ));
        }
        Ok(ContainerPath(format!("/{rest}")))
    }
}

/// Why a `volumes` entry is refused: malformed (CFG004) or a host path/the docker socket
/// mounted into the container (EXP008, a policy refusal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeError {
    /// The entry is not `name:/path[:ro]` of valid parts (CFG004); says why.
    Malformed(String),
    /// The entry mounts a host path or the docker socket (EXP008); names it.
    HostPath(String),
}

/// A named volume mounted into a droplet container: `name:/path[:ro]`. Named volumes only:
/// a host path (bind mount) or the docker socket is refused, since either hands the container
/// files of the droplet itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct VolumeMount {
    /// The volume's name in the compose file (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
    pub name: String,
    /// Where it is mounted in the container.
    pub target: ContainerPath,
    /// Mounted read-only (`:ro`).
    pub read_only: bool,
}

impl VolumeMount {
    /// Names the edge's certificate volumes use: a workload mounting them would read the
    /// edge's TLS private keys.
    pub const RESERVED: &'static [&'static str] = &["caddy_data", "caddy_config"];

    /// Parse `name:/path[:ro]`, telling a malformed entry from a host mount.
    pub fn parse(s: &str) -> Result<Self, VolumeError> {
        let bad = |why: String| Err(VolumeError::Malformed(why));
        if let Err(e) = check_len(s, 512, "volume") {
            return bad(e);
        }
        let source = s.split(':').next().unwrap_or(s);
        if source.contains("docker.sock") {
            return Err(VolumeError::HostPath(format!(
                "{s:?} mounts the docker socket, which gives the container control of the droplet"
            )));
        }
        if source.starts_with(['/', '.', '~']) || source.contains('/') {
            return Err(VolumeError::HostPath(format!(
                "{s:?} bind-mounts the host path {source:?}: only named volumes are allowed, like \"data:/var/lib/data\""
            )));
        }
        let mut parts = s.split(':');
        let (name, target, mode) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            return bad(format!(
                "{s:?} has too many ':' parts; the form is name:/path[:ro]"
            ));
        }
        let (Some(name), Some(target)) = (name, target) else {
            return bad(format!(
                "{s:?} names no volume: the form is name:/path[:ro], like \"pgdata:/var/lib/postgresql/data\""
            ));
        };
        let name_ok = name.len() <= 64
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !name_ok {
            return bad(format!(
                "volume name {name:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 64 bytes)"
            ));
        }
        if Self::RESERVED.contains(&name) {
            return bad(format!(
                "volume name {name:?} is reserved for the edge's certificates"
            ));
        }
        let target = ContainerPath::parse(target).map_err(VolumeError::Malformed)?;
        let read_only = match mode {
            None => false,
            Some("ro") => true,
            Some(m) => {
                return bad(format!(
                    "{m:?} is not a volume option: only \":ro\" (read-only) is allowed"
                ))
            }
        };
        Ok(VolumeMount {
            name: name.to_owned(),
            target,
            read_only,
        })
    }
}

impl fmt::Display for VolumeMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.target)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

string_newtype!(
    /// The user a container runs as: `uid[:gid]` (numbers) or a user name (with an optional
    /// `:group`), each part `[0-9]+` or `[a-z_][a-z0-9_-]*`.
    ContainerUser
);

impl ContainerUser {
    /// Parse a container user, refusing anything the rules above do not allow (the error says
    /// which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 65, "user")?;
        let part_ok = |p: &str| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                return !p.is_empty() && p.parse::<u32>().is_ok_and(|n| n < u32::MAX);
            }
            p.len() <= 32
                && p.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
        };
        let ok = match s.split_once(':') {
            Some((u, g)) => part_ok(u) && part_ok(g),
            None => part_ok(s),
        };
        if !ok {
            return Err(format!(
                "{s:?} is not a user: uid[:gid] like \"70:70\", or a name like \"postgres\""
            ));
        }
        Ok(ContainerUser(s.to_owned()))
    }
}

string_newtype!(
    /// An image registry prefix that built images are pushed under: a registry host (with a
    /// dot, a port, or `localhost`), then optional lowercase path components, like
    /// `ghcr.io/acme` or `registry.digitalocean.com/acme`. No tag, no digest, no scheme.
    Registry
);

impl Registry {
    /// Parse a registry, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 200, "registry")?;
        let bad = || {
            format!(
                "{s:?} is not an image registry prefix like \"ghcr.io/acme\" (a registry host, then lowercase path components; no scheme, tag or digest)"
            )
        };
        let mut parts = s.split('/');
        let host = parts.next().unwrap_or("");
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let host_ok = name.split('.').all(label_ok)
            && (name.contains('.') || name == "localhost" || port.is_some())
            && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0) && !p.starts_with('0'));
        // Docker's path-component grammar: [a-z0-9]+ separated by one of `.`, `_`, `__`, `-`+.
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
                && !c.contains("..")
        };
        if !host_ok || !parts.all(component_ok) {
            return Err(bad());
        }
        Ok(Registry(s.to_owned()))
    }

    /// The registry host (with its port), the part `docker login` takes.
    pub fn host(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}
