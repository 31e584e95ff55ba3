//! Live: the rendered Caddyfile of the `tls-internal` fixture, run by the real `caddy` on
//! loopback, terminates HTTPS with its private CA, proxies to stub upstreams (`caddy respond`)
//! on both the bare host and a path route, sets the security headers, hides `Server`, and holds
//! a request while its upstream restarts instead of failing it.
//!
//! The only changes to the rendered file: test global options (`admin off`, high
//! `http_port`/`https_port`) and the upstream addresses (compose service names -> loopback
//! ports). Certificates and the CA live in a temp dir via `XDG_DATA_HOME`.

mod droplet_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alembic_render::caddy::{self, Directive};
use droplet_support::*;

/// A child process killed and reaped when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}

fn spawn(mut cmd: Command, log: &Path) -> Guard {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    Guard(cmd.spawn().expect("spawn"))
}

fn stub(caddy_bin: &Path, home: &Path, port: u16, body: &str) -> Guard {
    let mut cmd = caddy_cmd(caddy_bin, home);
    cmd.args(["respond", "--listen", &format!("127.0.0.1:{port}"), body]);
    spawn(cmd, &home.join(format!("stub-{port}.log")))
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTPS request through the edge with curl, trusting only Caddy's local root.
fn get(
    curl: &Path,
    host: &str,
    port: u16,
    ca: &Path,
    path: &str,
    max_time: u32,
) -> Option<Response> {
    let out = Command::new(curl)
        .args(["-sS", "--max-time", &max_time.to_string(), "-D", "-"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Poll `f` up to `tries` times, `pause` apart.
fn retry<T>(tries: u32, pause: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..tries {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(pause);
    }
    None
}

fn logs(home: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(home).into_iter().flatten().flatten() {
        let p: PathBuf = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            s.push_str(&format!("--- {}\n", p.display()));
            s.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    s
}

#[test]
fn rendered_caddyfile_serves_https_and_proxies() {
    let Some([caddy_bin, curl]) = alembic_testkit::tools(["caddy", "curl"]) else {
        return;
    };
    let t = fixture("tls-internal");
    let home = tempfile::tempdir().expect("tempdir");
    let home = home.path();
    let (http, https, up_hello, up_echo) = (free_port(), free_port(), free_port(), free_port());

    let mut cf = caddy::caddyfile(&t);
    let test_globals = [
        Directive::new(["admin", "off"]),
        Directive::new(["http_port".to_owned(), http.to_string()]),
        Directive::new(["https_port".to_owned(), https.to_string()]),
    ];
    cf.global.splice(0..0, test_globals);
    let mut text = cf.write();
    for (from, port) in [("hello:8080", up_hello), ("echo:8081", up_echo)] {
        let from = format!("reverse_proxy {from} ");
        assert!(text.contains(&from), "rendered Caddyfile lacks {from:?}");
        text = text.replace(&from, &format!("reverse_proxy 127.0.0.1:{port} "));
    }
    let file = home.join("Caddyfile");
    std::fs::write(&file, &text).expect("write Caddyfile");

    let mut hello = stub(&caddy_bin, home, up_hello, "hello from alembic");
    let _echo = stub(&caddy_bin, home, up_echo, "echo");
    let mut run = caddy_cmd(&caddy_bin, home);
    run.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file);
    let mut edge = spawn(run, &home.join("edge.log"));

    let ca = home.join("data/caddy/pki/authorities/local/root.crt");
    let host = "hello.alembic.test";
    let first = retry(120, Duration::from_millis(250), || {
        if let Ok(Some(status)) = edge.0.try_wait() {
            panic!("caddy run exited with {status}:\n{}", logs(home));
        }
        if !ca.exists() {
            return None;
        }
        get(&curl, host, https, &ca, "/", 5).filter(|r| r.status == 200)
    })
    .unwrap_or_else(|| panic!("no 200 through the edge within 30s:\n{}", logs(home)));

    assert_eq!(first.body, "hello from alembic");
    for (name, value) in caddy::SECURITY_HEADERS {
        assert_eq!(first.header(name), Some(value), "{name}");
    }
    assert_eq!(
        first.header("server"),
        None,
        "the Server header must be removed"
    );

    let echo = get(&curl, host, https, &ca, "/echo/anything", 10).expect("path route");
    assert_eq!((echo.status, echo.body.as_str()), (200, "echo"));
    assert_eq!(echo.header("server"), None);

    // A restarting upstream: the request waits (lb_try_duration) and succeeds once it is back.
    drop(hello);
    let started = Instant::now();
    let waiter = {
        let (curl, ca) = (curl.clone(), ca.clone());
        std::thread::spawn(move || get(&curl, host, https, &ca, "/", 40))
    };
    std::thread::sleep(Duration::from_millis(1500));
    // The request is still in flight while the upstream is down: the edge holds it rather
    // than answering 502 at once (a finished request here would be that error).
    assert!(
        !waiter.is_finished(),
        "the request finished while the upstream was down: {:?}",
        waiter
            .join()
            .expect("curl thread")
            .map(|r| (r.status, r.body))
    );
    hello = stub(&caddy_bin, home, up_hello, "hello from alembic");
    let held = waiter.join().expect("curl thread");
    let waited = started.elapsed();
    let held = held.unwrap_or_else(|| panic!("request failed during the restart:\n{}", logs(home)));
    assert_eq!(
        (held.status, held.body.as_str()),
        (200, "hello from alembic")
    );
    eprintln!("request held across an upstream restart: {waited:?}");
    drop(hello);
}
