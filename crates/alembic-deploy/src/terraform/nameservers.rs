//! What the user must do outside alembic after the first release of a provisioned droplet:
//! the infra stage creates the domain's zone in DigitalOcean's DNS, which only answers once the
//! registrar delegates the domain to DigitalOcean's nameservers. The domain's NS records are
//! looked up with `dig` (an op through the executor, read-only); the answer only shapes a note,
//! never a failure: a lookup that fails says it could not check.

use crate::exec::{Executor, Goal, SecretSource};
use crate::ops::Op;
use crate::progress::{Event, Progress};
use crate::stage::Stage;

/// DigitalOcean's nameservers, as its DNS documentation lists them.
pub(crate) const DIGITALOCEAN: [&str; 3] = [
    "ns1.digitalocean.com",
    "ns2.digitalocean.com",
    "ns3.digitalocean.com",
];
/// `host:port` of the DNS server `dig` asks instead of the system's resolver (tests point it at
/// loopback: they have no network).
pub(crate) const DNS_SERVER_ENV: &str = "ALEMBIC_DNS_SERVER";

/// `dig +short NS <domain>`, bounded (2 s, one try), at `server` (`host:port`) when given.
pub(crate) fn lookup_op(domain: &str, server: Option<&str>) -> Op {
    let mut args = Vec::new();
    if let Some(s) = server {
        let (host, port) = s.rsplit_once(':').unwrap_or((s, "53"));
        args.extend([format!("@{host}"), "-p".to_owned(), port.to_owned()]);
    }
    args.extend(
        ["+short", "+time=2", "+tries=1", "NS", domain]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    Op::new(
        Stage::Infra,
        format!("look up {domain}'s nameservers"),
        "dig",
        args,
    )
    .read_only()
}

/// The note for `domain` from the lookup's outcome: `Ok(stdout)` of a successful `dig`, or
/// why it could not be asked. None when the domain is already delegated to DigitalOcean.
pub(crate) fn note(domain: &str, lookup: Result<String, String>) -> Option<String> {
    let wanted = DIGITALOCEAN.join(", ");
    let found: Vec<String> = match lookup {
        Ok(text) => text
            .lines()
            .map(|l| l.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .collect(),
        Err(why) => {
            return Some(format!(
                "next, outside alembic: could not check {domain}'s nameservers ({why}); at your \
                 registrar, make sure they are DigitalOcean's ({wanted}), or the records the \
                 infra stage created are never asked"
            ))
        }
    };
    if !found.is_empty() && found.iter().all(|n| DIGITALOCEAN.contains(&n.as_str())) {
        return None;
    }
    let now = if found.is_empty() {
        "none are published".to_owned()
    } else {
        format!("they are {}", found.join(", "))
    };
    Some(format!(
        "next, outside alembic: point {domain}'s nameservers at DigitalOcean ({wanted}) at your \
         registrar ({now}); until then the records the infra stage created are never asked"
    ))
}

/// Run the lookup `op` (read-only, through the executor) and tell `view` what the user must do
/// about `domain`'s nameservers, if anything. A lookup that fails only says it could not check.
pub(crate) fn tell(domain: &str, op: &Op, secrets: &dyn SecretSource, view: &mut dyn Progress) {
    let mut ex = Executor::new(Goal::Apply, secrets);
    let lookup = match ex.query(op) {
        Ok(out) if out.success() => Ok(out.stdout_text()),
        Ok(out) => Err(format!(
            "`{}` exited {}: {}",
            op.command_line(),
            out.status,
            out.stdout_text()
                .lines()
                .chain(out.stderr_text().lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no answer")
        )),
        Err(e) => Err(e.to_string()),
    };
    if let Some(message) = note(domain, lookup) {
        view.event(Event::Info { message });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_domains_need_no_note() {
        let dig = "ns2.digitalocean.com.\nns1.digitalocean.com.\nNS3.digitalocean.com.\n";
        assert_eq!(note("example.com", Ok(dig.to_owned())), None);
    }

    #[test]
    fn other_nameservers_are_named_in_the_note() {
        let n = note("example.com", Ok("a.iana-servers.net.\n".to_owned())).unwrap();
        assert!(n.contains("they are a.iana-servers.net"), "{n}");
        assert!(n.contains("ns1.digitalocean.com, ns2.digitalocean.com, ns3.digitalocean.com"));
        let n = note("example.com", Ok(String::new())).unwrap();
        assert!(n.contains("none are published"), "{n}");
        let n = note("example.com", Err("dig exited 9".into())).unwrap();
        assert!(n.contains("could not check example.com's nameservers (dig exited 9)"));
    }

    #[test]
    fn the_lookup_is_bounded_and_can_ask_a_given_server() {
        let op = lookup_op("example.com", Some("127.0.0.1:5353"));
        assert_eq!(
            op.command_line(),
            "dig @127.0.0.1 -p 5353 +short '+time=2' '+tries=1' NS example.com"
        );
        assert!(!op.mutating);
        assert_eq!(
            lookup_op("example.com", None).command_line(),
            "dig +short '+time=2' '+tries=1' NS example.com"
        );
    }
}
