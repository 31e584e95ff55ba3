//! How much of the internet a set of source ranges reaches. Checking only for `0.0.0.0/0` is
//! trivially bypassed (`0.0.0.0/1` + `128.0.0.0/1` is the same set), so EXP005/EXP006 judge the
//! union of the sources, IPv4 and IPv6 apart.
//!
//! Threshold: a family's sources are "the world" when, after merging, they cover at least half
//! of that family's public space: half of the 2^32 IPv4 addresses, or half of IPv6 global
//! unicast (`2000::/3`, where every routable IPv6 address lives today). A single `/1` is
//! therefore the world, and so is `2000::/3` alone; a `/8` or a cloud provider's ranges are not.
//! Hand-written: a sorted interval merge over at most a few hundred ranges needs no crate.

use std::net::IpAddr;

use alembic_config::types::Cidr;

/// IPv6 global unicast, `2000::/3`.
const V6_PUBLIC: (u128, u128) = (0x2000 << 112, (0x4000 << 112) - 1);

/// The merged coverage of one address family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Coverage {
    /// Share of the family's public space covered, in 0.0..=1.0.
    pub(crate) share: f64,
}

impl Coverage {
    /// Half of the family's public space or more: treated as the whole internet.
    pub(crate) fn is_world(self) -> bool {
        self.share >= 0.5
    }

    /// "100%" / "50%" for messages.
    pub(crate) fn percent(self) -> String {
        let p = self.share * 100.0;
        if (p - p.round()).abs() < 0.05 {
            format!("{p:.0}%")
        } else {
            format!("{p:.1}%")
        }
    }
}

fn v4_range(c: &Cidr) -> Option<(u128, u128)> {
    let IpAddr::V4(a) = c.addr else { return None };
    let start = u128::from(u32::from(a));
    let size = 1u128 << (32 - u32::from(c.prefix.min(32)));
    Some((start, start + size - 1))
}

fn v6_range(c: &Cidr) -> Option<(u128, u128)> {
    let IpAddr::V6(a) = c.addr else { return None };
    let start = u128::from(a);
    let host_bits = 128 - u32::from(c.prefix.min(128));
    let last = if host_bits == 128 {
        u128::MAX
    } else {
        start | ((1u128 << host_bits) - 1)
    };
    // Clip to global unicast: only public addresses count.
    let (lo, hi) = (start.max(V6_PUBLIC.0), last.min(V6_PUBLIC.1));
    (lo <= hi).then_some((lo, hi))
}

/// Total size of the union of inclusive ranges.
fn union_size(mut ranges: Vec<(u128, u128)>) -> u128 {
    ranges.sort_unstable();
    let mut total = 0u128;
    let mut cur: Option<(u128, u128)> = None;
    for (a, b) in ranges {
        cur = match cur {
            Some((ca, cb)) if a <= cb.saturating_add(1) => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca + 1;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = cur {
        total += b - a + 1;
    }
    total
}

/// IPv4 coverage of `cidrs` (IPv6 entries ignored).
pub(crate) fn v4(cidrs: &[Cidr]) -> Coverage {
    let size = union_size(cidrs.iter().filter_map(v4_range).collect());
    Coverage {
        share: size as f64 / (1u128 << 32) as f64,
    }
}

/// IPv6 coverage of `cidrs` within global unicast (IPv4 entries ignored).
pub(crate) fn v6(cidrs: &[Cidr]) -> Coverage {
    let size = union_size(cidrs.iter().filter_map(v6_range).collect());
    Coverage {
        share: size as f64 / (V6_PUBLIC.1 - V6_PUBLIC.0 + 1) as f64,
    }
}

/// A source as written, read leniently: a bare address is a `/32` or `/128`, and host bits
/// set under the prefix are masked off (cloud APIs accept `1.2.3.4/0`, and it means the world).
pub(crate) fn parse_source(s: &str) -> Option<Cidr> {
    let s = s.trim();
    let (a, p) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a.parse().ok()?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = if p.is_empty() { max } else { p.parse().ok()? };
    if prefix > max {
        return None;
    }
    let addr = match addr {
        IpAddr::V4(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((u128::from(v) & m).into())
        }
    };
    Some(Cidr { addr, prefix })
}

/// Which families the sources open to the world: `(ipv4, ipv6)` coverage.
pub(crate) fn world(cidrs: &[Cidr]) -> (Coverage, Coverage) {
    (v4(cidrs), v6(cidrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| parse_source(s).unwrap()).collect()
    }

    #[test]
    fn halves_make_the_world() {
        let (a, b) = world(&cs(&["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]));
        assert_eq!(a.share, 1.0);
        assert_eq!(b.share, 1.0);
        assert!(v4(&cs(&["0.0.0.0/1"])).is_world());
        assert!(v6(&cs(&["2000::/3"])).is_world());
        assert!(v6(&cs(&["2000::/4"])).is_world());
        assert!(!v6(&cs(&["2000::/5"])).is_world());
        assert!(!v6(&cs(&["fc00::/7", "::1/128"])).is_world());
        assert!(!v4(&cs(&["10.0.0.0/8", "203.0.113.10/32"])).is_world());
        // 64 + 64 /8s overlap into exactly half.
        let many: Vec<String> = (0..128).map(|i| format!("{i}.0.0.0/8")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(v4(&cs(&many)).is_world());
        assert!(!v4(&cs(&many[..127])).is_world());
        assert!(v4(&cs(&["1.2.3.4/0"])).is_world());
        assert_eq!(v4(&cs(&["0.0.0.0/1", "0.0.0.0/2"])).percent(), "50%");
    }
}
