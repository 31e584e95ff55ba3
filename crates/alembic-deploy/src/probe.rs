//! Probing public routes through the edge the way users reach them: an HTTPS request with
//! SNI/Host = the route's host, sent to the droplet's address and https port, by `curl`
//! (`--resolve`, `--cacert` for a private CA, a bounded `--max-time`). Ops are built here; the
//! droplet deploy runs them and retries within a deadline.

use std::net::IpAddr;
use std::path::Path;

use crate::ops::Op;

/// Where a route is probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeTarget {
    /// Workload behind the route (for its logs when the probe fails).
    pub workload: String,
    pub host: String,
    /// Path requested: route prefix + health path, or `/`.
    pub path: String,
}

impl ProbeTarget {
    /// The URL over `scheme` (`http` behind a balancer that terminates TLS).
    pub(crate) fn url_with(&self, scheme: &str, port: u16) -> String {
        format!("{scheme}://{}:{}{}", self.host, port, self.path)
    }
}

/// The curl op for one probe. `ca` is the private CA's root cert (`tls = "internal"`);
/// `scheme` is `https`, or `http` where a balancer terminates TLS in front of the edge.
pub(crate) fn curl_op(
    plane: crate::stage::Stage,
    t: &ProbeTarget,
    address: IpAddr,
    (scheme, port): (&str, u16),
    ca: Option<&Path>,
    max_time_secs: u32,
) -> Op {
    let addr = match address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    curl_op_to(plane, t, &addr, (scheme, port), ca, max_time_secs)
}

/// [`curl_op`] with the `--resolve` address given as text: a plan made before the droplet's
/// address is known shows a placeholder there.
pub(crate) fn curl_op_to(
    plane: crate::stage::Stage,
    t: &ProbeTarget,
    addr: &str,
    (scheme, port): (&str, u16),
    ca: Option<&Path>,
    max_time_secs: u32,
) -> Op {
    let mut args = vec![
        "--silent".to_owned(),
        "--show-error".to_owned(),
        "--output".to_owned(),
        "/dev/null".to_owned(),
        "--write-out".to_owned(),
        "%{http_code}".to_owned(),
        "--max-time".to_owned(),
        max_time_secs.to_string(),
        "--resolve".to_owned(),
        format!("{}:{}:{}", t.host, port, addr),
    ];
    if let Some(ca) = ca {
        args.push("--cacert".to_owned());
        args.push(ca.display().to_string());
    }
    args.push(t.url_with(scheme, port));
    Op::new(plane, format!("probe {}{}", t.host, t.path), "curl", args).read_only()
}

/// A probe's result, as shown when it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    Healthy(u16),
    /// The edge answered with an error status.
    Status(u16),
    /// No HTTP answer: connection refused, TLS failure, timeout (curl's message).
    Error(String),
    /// Up and failing for the whole settle window (see `settle`): why, in words.
    Settled(String),
}

impl ProbeResult {
    pub(crate) fn is_healthy(&self) -> bool {
        matches!(self, ProbeResult::Healthy(_))
    }
}

impl std::fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeResult::Healthy(s) => write!(f, "HTTP {s}"),
            ProbeResult::Status(s) => write!(f, "HTTP {s}"),
            ProbeResult::Error(e) => write!(f, "no HTTP answer: {e}"),
            ProbeResult::Settled(why) => f.write_str(why),
        }
    }
}

/// Read curl's `--write-out %{http_code}` answer: 2xx/3xx is healthy.
pub(crate) fn interpret(status: i32, stdout: &str, stderr: &str) -> ProbeResult {
    let code: u16 = stdout.trim().parse().unwrap_or(0);
    if status == 0 && (200..400).contains(&code) {
        return ProbeResult::Healthy(code);
    }
    if code >= 400 {
        return ProbeResult::Status(code);
    }
    let msg = stderr.trim();
    ProbeResult::Error(if msg.is_empty() {
        format!("curl exited with status {status}")
    } else {
        msg.lines().last().unwrap_or(msg).to_owned()
    })
}

/// The first regular file in a tar stream (what `docker cp CONTAINER:FILE -` writes).
pub(crate) fn first_file_in_tar(tar: &[u8]) -> Option<Vec<u8>> {
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&h[124..136]).ok()?;
        let size =
            usize::from_str_radix(size_field.trim_matches(|c| c == '\0' || c == ' '), 8).ok()?;
        let body = off + 512;
        let end = body.checked_add(size)?;
        if end > tar.len() {
            return None;
        }
        if matches!(h[156], b'0' | 0) {
            return Some(tar[body..end].to_vec());
        }
        // Directories, pax headers, links: skip to the next header (bodies pad to 512).
        off = body + size.div_ceil(512) * 512;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_argv_pins_sni_and_address() {
        let t = ProbeTarget {
            workload: "api".into(),
            host: "api.example.com".into(),
            path: "/healthz".into(),
        };
        let op = curl_op(
            crate::stage::Stage::Droplet,
            &t,
            "127.0.0.1".parse().unwrap(),
            ("https", 8443),
            Some(Path::new("/tmp/ca.crt")),
            5,
        );
        assert!(!op.mutating);
        assert_eq!(
            op.command_line(),
            "curl --silent --show-error --output /dev/null --write-out '%{http_code}' --max-time 5 \
             --resolve api.example.com:8443:127.0.0.1 --cacert /tmp/ca.crt https://api.example.com:8443/healthz"
        );
        let v6 = curl_op(
            crate::stage::Stage::Droplet,
            &t,
            "::1".parse().unwrap(),
            ("https", 443),
            None,
            5,
        );
        assert!(v6.args.contains(&"api.example.com:443:[::1]".to_owned()));
        // Behind a balancer that terminates TLS the edge serves plain HTTP on its http port.
        let plain = curl_op(
            crate::stage::Stage::Droplet,
            &t,
            "127.0.0.2".parse().unwrap(),
            ("http", 8080),
            None,
            5,
        );
        assert_eq!(
            plain.args.last().map(String::as_str),
            Some("http://api.example.com:8080/healthz")
        );
    }

    #[test]
    fn interprets_codes_and_errors() {
        assert_eq!(interpret(0, "200", ""), ProbeResult::Healthy(200));
        assert_eq!(interpret(0, "500", ""), ProbeResult::Status(500));
        assert_eq!(
            interpret(7, "000", "curl: (7) Failed to connect\n"),
            ProbeResult::Error("curl: (7) Failed to connect".into())
        );
        assert!(!interpret(0, "", "").is_healthy());
    }

    #[test]
    fn reads_a_file_out_of_a_tar_stream() {
        let mut tar = vec![0u8; 512];
        tar[..8].copy_from_slice(b"root.crt");
        tar[124..135].copy_from_slice(b"00000000005");
        tar[156] = b'0';
        tar.extend_from_slice(b"hello");
        tar.resize(1024 + 1024, 0);
        assert_eq!(first_file_in_tar(&tar).unwrap(), b"hello");
        assert_eq!(first_file_in_tar(&[0u8; 1024]), None);
        assert_eq!(first_file_in_tar(b"short"), None);
    }
}
