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
            /// The validated string.
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

mod container;
mod refs;
#[cfg(test)]
mod tests;

pub use container::*;
pub use refs::*;

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
    /// Names a workload may not take (`edge` is the Caddy service).
    pub const RESERVED: &'static [&'static str] = &["edge"];

    /// Parse a workload name, refusing anything the rules above do not allow (the error says which
    /// rule).
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
    /// Parse a project name, refusing anything the rules above do not allow (the error says which
    /// rule).
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
    /// Parse a host name, refusing anything the rules above do not allow (the error says which
    /// rule).
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
    /// Parse an env var name, refusing anything the rules above do not allow (the error says which
    /// rule).
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
    /// Parse an HTTP path prefix, refusing anything the rules above do not allow (the error says
    /// which rule).
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
    /// The host the edge serves the route on.
    pub host: Hostname,
    /// The path prefix, when the route is not the whole host.
    pub path: Option<HttpPath>,
}

impl Route {
    /// Parse `host[/path-prefix]` (a trailing `/` is dropped; `/` alone means the whole host).
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
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length (0-32 for IPv4, 0-128 for IPv6).
    pub prefix: u8,
}

impl Cidr {
    /// Parse `addr/prefix`, refusing host bits set or a prefix too long for the address family.
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

/// A TCP port, 1..=65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    /// The port `n`, or why it is not in 1-65535.
    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=65535).contains(&n) {
            Ok(Port(n as u16))
        } else {
            Err(format!("port {n} is out of range 1-65535"))
        }
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
