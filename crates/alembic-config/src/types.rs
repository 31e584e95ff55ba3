//! Validated newtypes. Each is checked once, at the border, so that past the parser a value is
//! safe to put into a path, a label, a YAML/HCL/Caddyfile/XML string or a shell argument without
//! further escaping decisions about *what* it may contain.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// Longest string value accepted anywhere in the config. Keeps hostile 10 MB values out of
/// every renderer and every terminal.
pub const MAX_STRING: usize = 4096;

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s)
            }
        }
    };
}

fn check_len(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.len() > max {
        return Err(format!(
            "{what} is {} bytes long; the limit is {max}",
            s.len()
        ));
    }
    Ok(())
}

/// `[a-z][a-z0-9-]*`, no trailing or doubled hyphen.
fn slug(s: &str, max: usize, what: &str) -> Result<(), String> {
    check_len(s, max, what)?;
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let first = s.as_bytes()[0];
    if !ok_chars || !first.is_ascii_lowercase() || s.ends_with('-') || s.contains("--") {
        return Err(format!(
            "{what} {s:?} must match [a-z][a-z0-9-]* (lowercase letters, digits, single hyphens; no trailing hyphen)"
        ));
    }
    Ok(())
}

string_newtype!(
    /// A workload's name: `[a-z][a-z0-9-]{0,62}`. Safe as a file name, a compose service, a DNS
    /// label, a launchd label segment and a systemd unit name. `edge` is reserved for Caddy.
    WorkloadName
);

impl WorkloadName {
    pub const RESERVED: &'static [&'static str] = &["edge"];

    pub fn parse(s: &str) -> Result<Self, String> {
        slug(s, 63, "workload name")?;
        if Self::RESERVED.contains(&s) {
            return Err(format!(
                "workload name {s:?} is reserved for the implicit edge (Caddy)"
            ));
        }
        Ok(WorkloadName(s.to_owned()))
    }

    /// The implicit edge workload's name, which `parse` refuses for user workloads.
    pub fn edge() -> Self {
        WorkloadName("edge".to_owned())
    }
}

string_newtype!(
    /// The project's name: `[a-z][a-z0-9-]{0,39}`.
    ProjectName
);

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self, String> {
        slug(s, 40, "project name")?;
        Ok(ProjectName(s.to_owned()))
    }
}

string_newtype!(
    /// A lowercase DNS name: labels of `[a-z0-9-]`, 1-63 bytes, no leading/trailing hyphen, at
    /// most 253 bytes, at least two labels.
    Hostname
);

impl Hostname {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 253, "hostname")?;
        let bad = || {
            format!(
                "{s:?} is not a lowercase DNS name (labels of a-z, 0-9 and '-', separated by dots)"
            )
        };
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(format!("{s:?} needs at least two labels, like example.com"));
        }
        for l in &labels {
            if l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad());
            }
        }
        if labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("{s:?} looks like an address, not a DNS name"));
        }
        Ok(Hostname(s.to_owned()))
    }

    /// True when this name is `zone` or lies under it.
    pub fn is_within(&self, zone: &Hostname) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(zone.as_str())
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The part before the zone (`api` for `api.example.com` in `example.com`), `@` at the apex;
    /// `None` when this name is not in the zone (policy reports such a route as EXP004).
    pub fn record_name(&self, zone: &Hostname) -> Option<String> {
        if self.0 == zone.0 {
            Some("@".to_owned())
        } else if self.is_within(zone) {
            Some(self.0[..self.0.len() - zone.0.len() - 1].to_owned())
        } else {
            None
        }
    }
}

string_newtype!(
    /// An environment variable name: `[A-Z_][A-Z0-9_]{0,127}`. Safe in YAML, HCL, shell and
    /// `${NAME}` interpolation.
    EnvVarName
);

impl EnvVarName {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 128, "env var name")?;
        let first = s.as_bytes()[0];
        if !(first.is_ascii_uppercase() || first == b'_')
            || !s
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            // The value is not echoed: a pasted secret is the usual wrong value here.
            return Err(
                "not a valid env var name: use [A-Z_][A-Z0-9_]* (uppercase, digits, underscore)"
                    .to_owned(),
            );
        }
        Ok(EnvVarName(s.to_owned()))
    }
}

string_newtype!(
    /// An HTTP path: starts with `/`, then unreserved URL characters only
    /// (`A-Za-z0-9-._~/`), at most 256 bytes, no `..` segment.
    HttpPath
);

impl HttpPath {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 256, "path")?;
        if !s.starts_with('/')
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
            || s.split('/').any(|seg| seg == "..")
        {
            return Err(format!(
                "{s:?} must be an absolute URL path of letters, digits and -._~/ (no '..', no spaces or quotes)"
            ));
        }
        Ok(HttpPath(s.to_owned()))
    }
}

/// `host[/path-prefix]` on the edge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Route {
    pub host: Hostname,
    pub path: Option<HttpPath>,
}

impl Route {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 512, "route")?;
        let (host, path) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let host = Hostname::parse(host)?;
        let path = match path {
            Some("/") | None => None,
            Some(p) => Some(HttpPath::parse(p.trim_end_matches('/'))?),
        };
        Ok(Route { host, path })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}{}", self.host, p),
            None => write!(f, "{}", self.host),
        }
    }
}

/// An IPv4 or IPv6 network in CIDR notation, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not a CIDR: write it as ADDRESS/PREFIX, like 203.0.113.10/32")
        })?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("prefix {p:?} must be a number from 0 to {max}"))?;
        let masked = mask(addr, prefix);
        if masked != addr {
            return Err(format!(
                "{s:?} has host bits set; the network is {masked}/{prefix}"
            ));
        }
        Ok(Cidr { addr, prefix })
    }

    /// True for 0.0.0.0/0 and ::/0 (and any prefix short enough to be "the internet").
    pub fn is_whole_internet(&self) -> bool {
        self.prefix == 0
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v) => {
            let bits = u128::from(v);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Is this address loopback or in a private range (RFC 1918, CGNAT 100.64/10 for tailnets,
/// IPv6 ULA fc00::/7)? Host workloads may bind only to these.
pub fn is_private_or_loopback(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v) => {
            v.is_loopback()
                || v.is_private()
                || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v) => v.is_loopback() || (v.segments()[0] & 0xfe00) == 0xfc00,
    }
}

string_newtype!(
    /// A container image reference: `[a-zA-Z0-9._/:@+-]`, at most 255 bytes, not starting with
    /// `-` (it is passed as an argument).
    ImageRef
);

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "image")?;
        if s.starts_with('-')
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/:@+-".contains(&b))
        {
            return Err(format!(
                "{s:?} is not an image reference (registry/name:tag or name@sha256:..., no spaces or quotes)"
            ));
        }
        Ok(ImageRef(s.to_owned()))
    }
}

string_newtype!(
    /// A DigitalOcean slug (region, size, image): `[a-z0-9][a-z0-9-]*`.
    Slug
);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 64, "slug")?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || s.starts_with('-')
        {
            return Err(format!(
                "{s:?} must be a lowercase slug like nyc3 or s-1vcpu-2gb"
            ));
        }
        Ok(Slug(s.to_owned()))
    }
}

string_newtype!(
    /// A POSIX user name: `[a-z_][a-z0-9_-]{0,31}`.
    UserName
);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 32, "user name")?;
        let first = s.as_bytes()[0];
        if !(first.is_ascii_lowercase() || first == b'_')
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(format!("{s:?} must be a POSIX user name like deploy"));
        }
        Ok(UserName(s.to_owned()))
    }
}

string_newtype!(
    /// An SSH key reference in the DigitalOcean account: an MD5 fingerprint
    /// (`aa:bb:...`, 16 pairs) or a numeric key id.
    SshKeyRef
);

impl SshKeyRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let is_id = !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        let pairs: Vec<&str> = s.split(':').collect();
        let is_fp = pairs.len() == 16
            && pairs
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if !(is_id || is_fp) {
            return Err(format!(
                "{s:?} is not an SSH key fingerprint (16 hex pairs joined by ':') or a numeric key id"
            ));
        }
        Ok(SshKeyRef(s.to_ascii_lowercase()))
    }
}

string_newtype!(
    /// One OpenSSH public key line for `authorized_keys`: `TYPE BASE64 [COMMENT]`, with the key
    /// blob decoded and checked against its type by `ssh-key`. No options prefix, no control
    /// characters, one line. Stored normalized (single spaces).
    AuthorizedKey
);

impl AuthorizedKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        // Never echo the value: a pasted private key (or anything else) is not repeated back.
        if s.contains("PRIVATE KEY") {
            return Err(concat!(
                "this is a private key: authorized_keys takes public key lines only (the ",
                "contents of the `.pub` file); remove it from the config and treat it as leaked"
            )
            .to_owned());
        }
        check_len(s, 16 * 1024, "public key line")?;
        if s.chars().any(char::is_control) {
            return Err("a public key line must be one line without control characters".to_owned());
        }
        let mut fields = s.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            return Err(concat!(
                "not an OpenSSH public key line (`TYPE BASE64 [COMMENT]`, like ",
                "\"ssh-ed25519 AAAAC3... ops@laptop\")"
            )
            .to_owned());
        };
        let comment: Vec<&str> = fields.collect();
        let line = if comment.is_empty() {
            format!("{kind} {blob}")
        } else {
            format!("{kind} {blob} {}", comment.join(" "))
        };
        // ssh-key decodes the base64 blob and checks that its algorithm matches `kind` and that
        // the key material has the algorithm's shape.
        match ssh_key::PublicKey::from_openssh(&line) {
            Ok(_) => Ok(AuthorizedKey(line)),
            Err(_) => Err(format!(
                "not an OpenSSH public key line: expected `TYPE BASE64 [COMMENT]` with a key \
                 blob that decodes to a {} key (options before the type are not accepted)",
                if kind.len() <= 64
                    && ["ssh-", "ecdsa-", "sk-"]
                        .iter()
                        .any(|p| kind.starts_with(p))
                    && kind.bytes().all(|b| b.is_ascii_graphic())
                {
                    format!("`{kind}`")
                } else {
                    "known".to_owned()
                }
            )),
        }
    }
}

string_newtype!(
    /// An absolute POSIX path of safe characters (`A-Za-z0-9._/-`), no `..` segment, no
    /// trailing slash, at most 255 bytes.
    AbsPath
);

impl AbsPath {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "path")?;
        if !s.starts_with('/')
            || s.len() < 2
            || s.ends_with('/')
            || s.contains("//")
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
            || s.split('/').any(|seg| seg == ".." || seg == ".")
        {
            return Err(format!(
                "{s:?} must be an absolute path of letters, digits and ._-/ (no '..', spaces or quotes)"
            ));
        }
        Ok(AbsPath(s.to_owned()))
    }
}

string_newtype!(
    /// A DigitalOcean Spaces (S3) bucket name: 3-63 bytes of `[a-z0-9-]`, starting and ending
    /// with a letter or digit, no doubled hyphen. A single DNS label, so it is safe in the
    /// virtual-host endpoint `<bucket>.<region>.digitaloceanspaces.com` and in HCL.
    BucketName
);

impl BucketName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (3..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if !ok {
            return Err(format!(
                "{s:?} is not a Spaces bucket name: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
            ));
        }
        Ok(BucketName(s.to_owned()))
    }
}

string_newtype!(
    /// An object key inside a bucket (the Terraform state's path): segments of
    /// `A-Za-z0-9._-` joined by single `/`, no leading or trailing `/`, no `.`/`..` segment, at
    /// most 255 bytes. The S3 backend refuses empty keys, `//` and a leading or trailing `/`.
    ObjectKey
);

impl ObjectKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "object key")?;
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
            && s.split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !ok {
            return Err(format!(
                "{s:?} must be a relative key of letters, digits and ._-, segments joined by single '/', like \"alembic/terraform.tfstate\""
            ));
        }
        Ok(ObjectKey(s.to_owned()))
    }
}

string_newtype!(
    /// A GitHub `owner/name`.
    Repository
);

impl Repository {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 140, "repository")?;
        let ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match s.split_once('/') {
            Some((o, n)) if ok(o) && ok(n) => Ok(Repository(s.to_owned())),
            _ => Err(format!("{s:?} must be a GitHub repository as owner/name")),
        }
    }
}

string_newtype!(
    /// A git branch name of safe characters (`A-Za-z0-9._/-`), no `..`, not starting with `-`.
    BranchName
);

impl BranchName {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 200, "branch")?;
        if s.starts_with('-')
            || s.starts_with('/')
            || s.ends_with('/')
            || s.contains("..")
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        {
            return Err(format!(
                "{s:?} must be a branch name of letters, digits and ._/-"
            ));
        }
        Ok(BranchName(s.to_owned()))
    }
}

string_newtype!(
    /// A plain token (runner label, node version, GitHub environment): `[A-Za-z0-9._-]`.
    Token
);

impl Token {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 100, "value")?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!("{s:?} may contain only letters, digits and ._-"));
        }
        Ok(Token(s.to_owned()))
    }
}

string_newtype!(
    /// An e-mail address for ACME: `local@domain`, local part of `[A-Za-z0-9._+-]`.
    Email
);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 254, "email")?;
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && local
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
                    && Hostname::parse(&domain.to_ascii_lowercase()).is_ok() =>
            {
                Ok(Email(s.to_owned()))
            }
            _ => Err(format!(
                "{s:?} is not an e-mail address like ops@example.com"
            )),
        }
    }
}

string_newtype!(
    /// Free text that ends up inside generated files (a command argument, a plain env value, a
    /// CI step). Printable only: no control characters (newlines, NUL, escapes), at most
    /// MAX_STRING bytes. Renderers still quote it with their format's serializer; this type
    /// guarantees it is a single line they can quote.
    Text
);

impl Text {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_STRING {
            return Err(format!(
                "value is {} bytes long; the limit is {MAX_STRING}",
                s.len()
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!(
                "value contains the control character {c:?}; only printable single-line text is allowed"
            ));
        }
        if let Some(c) = s.chars().find(|c| is_invisible_format(*c)) {
            return Err(format!(
                "value contains the invisible character U+{:04X}; it can break lines or reorder text in generated files",
                c as u32
            ));
        }
        Ok(Text(s.to_owned()))
    }

    /// Text that may not contain a GitHub Actions expression (`${{`), for values rendered into
    /// workflow `run:` steps.
    pub fn parse_ci(s: &str) -> Result<Self, String> {
        let t = Self::parse(s)?;
        if s.contains("${{") {
            return Err(format!(
                "{s:?} contains a GitHub Actions expression; pass values through env: instead"
            ));
        }
        if s.trim().is_empty() {
            return Err("command must not be empty".to_owned());
        }
        Ok(t)
    }
}

/// Characters that are not `is_control()` yet change how text reads or splits: the Unicode line
/// and paragraph separators (line breaks for YAML 1.1 and JavaScript), bidirectional overrides
/// and isolates (Trojan Source, CVE-2021-42574), zero-width characters and the BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
    )
}

string_newtype!(
    /// An exact release version, `MAJOR.MINOR.PATCH` with an optional `-pre` part (semver 2.0
    /// without build metadata): numbers without leading zeros, pre-release identifiers of
    /// `[0-9A-Za-z-]` joined by dots. It is rendered after `=` in `cargo install --version`,
    /// so it can never be a range or a moving name like `latest`. Checked by hand: the grammar
    /// is five lines and the `semver` crate would be a new dependency for one check.
    Version
);

impl Version {
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
    Malformed(String),
    HostPath(String),
}

/// A named volume mounted into a droplet container: `name:/path[:ro]`. Named volumes only:
/// a host path (bind mount) or the docker socket is refused, since either hands the container
/// files of the droplet itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct VolumeMount {
    /// The volume's name in the compose file (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
    pub name: String,
    pub target: ContainerPath,
    pub read_only: bool,
}

impl VolumeMount {
    /// Names the edge's certificate volumes use: a workload mounting them would read the
    /// edge's TLS private keys.
    pub const RESERVED: &'static [&'static str] = &["caddy_data", "caddy_config"];

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

/// A TCP port, 1..=65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=65535).contains(&n) {
            Ok(Port(n as u16))
        } else {
            Err(format!("port {n} is out of range 1-65535"))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for s in [
            "../etc", "a\nb", "a\"b", "$(id)", "a\0b", "", "Upper", "edge", "a--b", "a-",
        ] {
            assert!(WorkloadName::parse(s).is_err(), "{s:?}");
        }
        assert!(WorkloadName::parse("council-api").is_ok());
    }

    #[test]
    fn hostnames() {
        assert!(Hostname::parse("api.example.com").is_ok());
        for s in [
            "example", "-a.com", "a..com", "a.com.", "A.com", "1.2.3.4", "a b.com",
        ] {
            assert!(Hostname::parse(s).is_err(), "{s:?}");
        }
        let zone = Hostname::parse("example.com").unwrap();
        assert!(Hostname::parse("api.example.com").unwrap().is_within(&zone));
        assert!(!Hostname::parse("badexample.com").unwrap().is_within(&zone));
        assert_eq!(
            Hostname::parse("a.b.example.com")
                .unwrap()
                .record_name(&zone)
                .as_deref(),
            Some("a.b")
        );
        // A host outside the zone has no record name (it once panicked on slicing).
        assert_eq!(
            Hostname::parse("lab.example.net")
                .unwrap()
                .record_name(&Hostname::parse("lab.examle.tenp").unwrap()),
            None
        );
    }

    #[test]
    fn cidrs() {
        assert!(Cidr::parse("0.0.0.0/0").unwrap().is_whole_internet());
        assert!(Cidr::parse("::/0").unwrap().is_whole_internet());
        assert!(Cidr::parse("203.0.113.10/32").is_ok());
        assert!(Cidr::parse("203.0.113.10/24").is_err());
        assert!(Cidr::parse("203.0.113.10").is_err());
        assert!(Cidr::parse("1.2.3.4/33").is_err());
    }

    #[test]
    fn routes() {
        let r = Route::parse("api.example.com/v1").unwrap();
        assert_eq!(r.path.unwrap().as_str(), "/v1");
        assert!(Route::parse("api.example.com/../x").is_err());
        assert!(Route::parse("api.example.com/a b").is_err());
    }

    #[test]
    fn bucket_names_and_object_keys() {
        for ok in ["abc", "alembic-tfstate", "a1-b2", &"a".repeat(63)] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "Abc",
            "a.b.c",
            "a_b",
            &"a".repeat(64),
            "",
        ] {
            assert!(BucketName::parse(bad).is_err(), "{bad}");
        }
        for ok in [
            "terraform.tfstate",
            "alembic/terraform.tfstate",
            "a/b-c/d_e.1",
        ] {
            assert!(ObjectKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "./a", "a b", "a\"b", "a\nb", "${x}",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        for ok in [
            "0.2.0",
            "1.0.0",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0-alpha-1.0",
        ] {
            assert!(Version::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "v1.0.0",
            "=1.0.0",
            "^1.0.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0-a..b",
            "1.0.0+build",
            "latest",
            "1.0.0 ",
            "1.*.0",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn build_contexts() {
        for ok in [".", "services/api", "api", "a/b-c/d_e.1", ".docker/x"] {
            assert!(BuildContext::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/srv/api", "../api", "a/../b", "a/..", "./a", "a/./b", "a//b", "a/", "a b",
            "a\"b", "-rf", "${{ x }}", "~/x",
        ] {
            assert!(BuildContext::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registries() {
        for ok in [
            "ghcr.io/acme",
            "ghcr.io",
            "registry.digitalocean.com/acme/team",
            "localhost:5000/x",
            "reg.example.com:5000",
            "ghcr.io/acme-corp/a_b.c",
        ] {
            assert!(Registry::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "acme",
            "https://ghcr.io/acme",
            "ghcr.io/Acme",
            "ghcr.io/acme:1.0",
            "ghcr.io/acme@sha256:00",
            "ghcr.io/",
            "ghcr.io//a",
            "-ghcr.io/a",
            "ghcr.io/a b",
            "ghcr.io:0/a",
            "ghcr.io:99999/a",
        ] {
            assert!(Registry::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Registry::parse("ghcr.io/acme").unwrap().host(), "ghcr.io");
        assert_eq!(
            Registry::parse("localhost:5000/x").unwrap().host(),
            "localhost:5000"
        );
    }

    #[test]
    fn private_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "100.100.1.1",
            "::1",
            "fd00::1",
        ] {
            assert!(is_private_or_loopback(&a.parse().unwrap()), "{a}");
        }
        for a in ["0.0.0.0", "8.8.8.8", "::"] {
            assert!(!is_private_or_loopback(&a.parse().unwrap()), "{a}");
        }
    }
}
