//! The bootstrap and the first journey on a real fresh machine: a qemu VM booting the stock
//! Debian 13 image that `scripts/vm-image.sh` builds once per machine (debootstrap: kernel,
//! systemd, openssh-server, cloud-init; nothing alembic-specific; cached under
//! /var/cache/alembic-vm, keyed by its recipe). Each test boots its own copy-on-write overlay
//! in a temp dir (the cached image is never written), forwards ssh (and the edge's ports) to
//! free loopback ports, keeps the serial console log for failure messages, and kills qemu on
//! drop, even when an assertion fails (and through its parent-death signal when the test
//! process dies without unwinding); the temp dir goes after it.
//!
//! - `cloud_init_journey`: the NoCloud seed is the rendered `infra/droplet/cloud-init.yaml`
//!   (plus only the meta-data). After the wait apply runs (`cloud-init status`, polled) the deploy user runs docker
//!   without sudo, sshd refuses root and passwords (`sshd -T`, and real login attempts), the
//!   release root belongs to the deploy user, Docker rotates logs, and a second run of the
//!   script changes nothing. Then the deploy: `alembic apply --plane droplet` ships the two
//!   built workloads over ssh (no registry), HTTPS answers through the forwarded edge port
//!   (`tls = "internal"`: no ACME server is reachable, so the edge's own CA, fetched from the
//!   edge container, is the one trusted, as in the Docker E2E), a redeploy serves the new
//!   answer, a release whose container exits is rolled back, and the named volume's data (a
//!   UUID the `data` workload wrote on first start) is the same throughout.
//! - `bootstrap_command_on_an_existing_server`: the seed holds only a root key; `alembic
//!   bootstrap --yes` installs everything, a second run (`--user deploy`) reports every step
//!   unchanged, and root can no longer log in.
//!
//! Part of the whole suite (`bash scripts/test.sh`, which starts this binary in the background
//! once every test binary is built, since its VMs mostly wait on the guest, and runs the rest
//! beside it; `bash scripts/test-vm.sh` runs it alone). Booting and installing Docker under TCG
//! takes minutes, and a guest with two vCPUs once stalled in its kernel (RCU stall on CPU 1)
//! under TCG, so each VM gets one vCPU. KVM is tried first when /dev/kvm
//! opens, falling back to TCG when the guest cannot run under it ([`Accel`]). Skipped, printing
//! why, when qemu, the image tools or ssh are missing, unless `ALEMBIC_REQUIRE_E2E=1`, which
//! turns the skip into a failure. `ALEMBIC_VM_TIMEOUT` (seconds, default 2700) bounds every
//! wait; `ALEMBIC_VM_ACCEL=kvm|tcg` forces an accelerator.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::droplet::{code, curl, free_port, run, skip, text};

/// Print a line where `cargo test` shows it (figures for the report, progress of slow steps).
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn timeout() -> Duration {
    let secs = std::env::var("ALEMBIC_VM_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2700);
    Duration::from_secs(secs)
}

/// The cached image directory (disk.img, vmlinuz, initrd), built on first use.
fn vm_image(test: &str) -> Option<PathBuf> {
    for tool in [
        "qemu-system-x86_64",
        "qemu-img",
        "cloud-localds",
        "setpriv",
        "ssh",
        "ssh-keygen",
    ] {
        if alembic_testkit::which(tool).is_none() {
            skip(
                test,
                &format!("`{tool}` is not on PATH (scripts/install-tools.sh installs it)"),
            );
            return None;
        }
    }
    let script = alembic_testkit::workspace_root().join("scripts/vm-image.sh");
    let o = run(Command::new("bash").arg(script).stdin(Stdio::null()));
    if !o.status.success() {
        skip(
            test,
            &format!(
                "scripts/vm-image.sh cannot build the VM image: {}",
                text(&o)
            ),
        );
        return None;
    }
    // The script's last line of stdout is the image directory.
    let stdout = String::from_utf8_lossy(&o.stdout);
    let dir = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    for f in ["disk.img", "vmlinuz", "initrd"] {
        assert!(dir.join(f).is_file(), "{} lacks {f}", dir.display());
    }
    Some(dir)
}

/// How qemu runs the guest. KVM when `/dev/kvm` opens read-write (we run as root) and is not
/// the PVM flavour, with a fallback to TCG at boot: a /dev/kvm can open and create VMs fine
/// and still stop a stock kernel early (this machine's nested PVM hypervisor, `kvm_pvm`,
/// reports "KVM internal error ... emulation failure" in the kernel's decompressor), so
/// usability is only known once a guest runs. `ALEMBIC_VM_ACCEL=kvm|tcg` forces one (no
/// fallback; `kvm` is how to try PVM again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    fn args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => &["-accel", "tcg,thread=multi"],
        }
    }

    /// The first choice, and whether falling back to TCG is allowed.
    fn choose() -> (Accel, bool) {
        match std::env::var("ALEMBIC_VM_ACCEL").as_deref() {
            Ok("kvm") => (Accel::Kvm, false),
            Ok("tcg") => (Accel::Tcg, false),
            _ => {
                let opens = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/kvm")
                    .is_ok();
                // PVM (a KVM for nested guests without hardware virtualisation) runs only
                // kernels built as PVM guests: every stock-kernel boot ended in its emulation
                // failure here, 30 to 50 s in. Known, so not tried again.
                let pvm = Path::new("/sys/module/kvm_pvm").exists();
                if opens && !pvm {
                    (Accel::Kvm, true)
                } else {
                    (Accel::Tcg, false)
                }
            }
        }
    }
}

/// How long a KVM boot may take to show sshd's banner before the VM is booted again under TCG
/// (a KVM guest that hangs instead of stopping with an error). Generous: KVM boots in seconds.
const KVM_BANNER_GRACE: Duration = Duration::from_secs(180);

/// One booted VM. Dropping it kills qemu (the temp dir holding its overlay, seed and logs is
/// removed by its owner afterwards).
struct Vm {
    name: &'static str,
    dir: PathBuf,
    image: PathBuf,
    nic: String,
    qemu: Child,
    accel: Accel,
    fallback: bool,
    ssh_port: u16,
    booted: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

impl Vm {
    /// Boot `image` with a NoCloud seed of `user_data`, forwarding ssh and `ports` (same port
    /// number on the host's loopback and in the guest).
    fn boot(
        name: &'static str,
        image: &Path,
        dir: &Path,
        user_data: &str,
        ssh_port: u16,
        ports: &[u16],
    ) -> Vm {
        std::fs::write(dir.join("user-data"), user_data).unwrap();
        std::fs::write(
            dir.join("meta-data"),
            format!(
                "instance-id: alembic-{name}-{}\nlocal-hostname: droplet\n",
                std::process::id()
            ),
        )
        .unwrap();
        let o = run(Command::new("cloud-localds")
            .arg(dir.join("seed.img"))
            .arg(dir.join("user-data"))
            .arg(dir.join("meta-data")));
        assert!(o.status.success(), "cloud-localds: {}", text(&o));
        let mut nic = format!("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{ssh_port}-:22");
        for p in ports {
            nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{p}-:{p}"));
        }
        let (accel, fallback) = Accel::choose();
        let qemu = Self::spawn(dir, image, &nic, accel);
        note(&format!("{name}: qemu started with {accel:?}"));
        Vm {
            name,
            dir: dir.to_owned(),
            image: image.to_owned(),
            nic,
            qemu,
            accel,
            fallback,
            ssh_port,
            booted: Instant::now(),
        }
    }

    /// Start qemu on a fresh copy-on-write overlay of the image (the cached image is never
    /// written).
    fn spawn(dir: &Path, image: &Path, nic: &str, accel: Accel) -> Child {
        let overlay = dir.join("overlay.qcow2");
        let _ = std::fs::remove_file(&overlay);
        let o = run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(image.join("disk.img"))
            .arg(&overlay));
        assert!(o.status.success(), "qemu-img: {}", text(&o));
        // `setpriv --pdeathsig KILL` (util-linux) execs qemu with the kernel's parent-death
        // signal set: should the test process die without unwinding (SIGKILL, a timeout's
        // SIGTERM), qemu dies with it instead of running on.
        Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "qemu-system-x86_64"])
            .args(accel.args())
            .args(["-m", "2048", "-smp", "1"])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", dir.join("console.log").display()))
            .arg("-kernel")
            .arg(image.join("vmlinuz"))
            .arg("-initrd")
            .arg(image.join("initrd"))
            .args(["-append", "root=/dev/vda rw console=ttyS0"])
            // `cache=unsafe`: qemu ignores the guest's flushes. The overlay is thrown away
            // after the test, and dpkg's fsync after every unpacked file is much of what
            // installing Docker costs under TCG otherwise.
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=qcow2,cache=unsafe",
                overlay.display()
            ))
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw",
                dir.join("seed.img").display()
            ))
            .args(["-nic", nic])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("qemu.stderr")).unwrap())
            .spawn()
            .expect("qemu-system-x86_64 starts")
    }

    /// Under KVM with a fallback allowed: when the guest stopped (qemu exited, or reported a
    /// KVM error and paused) or shows no banner within [`KVM_BANNER_GRACE`], boot it again
    /// under TCG. Returns whether it did.
    fn fall_back_if_kvm_failed(&mut self) -> bool {
        if self.accel != Accel::Kvm || !self.fallback {
            return false;
        }
        let exited = matches!(self.qemu.try_wait(), Ok(Some(_)));
        let err = std::fs::read_to_string(self.dir.join("qemu.stderr")).unwrap_or_default();
        let failed = exited
            || [
                "KVM internal error",
                "failed to initialize kvm",
                "Could not access KVM",
            ]
            .iter()
            .any(|m| err.contains(m));
        if !failed && self.booted.elapsed() < KVM_BANNER_GRACE {
            return false;
        }
        let why = err
            .lines()
            .next()
            .unwrap_or("no ssh banner in time")
            .to_owned();
        note(&format!(
            "{}: KVM unusable after {:.0} s ({why}); booting again under TCG",
            self.name,
            self.elapsed()
        ));
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        let _ = std::fs::rename(
            self.dir.join("console.log"),
            self.dir.join("console-kvm.log"),
        );
        self.accel = Accel::Tcg;
        self.qemu = Self::spawn(&self.dir, &self.image, &self.nic, Accel::Tcg);
        self.booted = Instant::now();
        true
    }

    fn console_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let qemu = std::fs::read_to_string(self.dir.join("qemu.stderr")).unwrap_or_default();
        format!(
            "--- {} serial console (last 40 lines)\n{}\n--- qemu stderr\n{qemu}",
            self.name,
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }

    fn elapsed(&self) -> f64 {
        self.booted.elapsed().as_secs_f64()
    }

    /// Wait until sshd answers with its banner (qemu's forwarder accepts connections before
    /// the guest listens, so a connect alone proves nothing). Bounded.
    fn wait_banner(&mut self) {
        let deadline = Instant::now() + timeout();
        loop {
            if self.fall_back_if_kvm_failed() {
                continue;
            }
            if let Ok(Some(status)) = self.qemu.try_wait() {
                panic!(
                    "qemu ({:?}) exited ({status})\n{}",
                    self.accel,
                    self.console_tail()
                );
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.ssh_port)) {
                // Short while KVM may still fail, so its error is noticed within seconds.
                let wait = if self.accel == Accel::Kvm { 2 } else { 10 };
                let _ = s.set_read_timeout(Some(Duration::from_secs(wait)));
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no ssh banner within {:?}\n{}",
                timeout(),
                self.console_tail()
            );
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// The ssh client config for this VM: the test's key, its own known_hosts. The VM makes
    /// its host key at first boot, so the first contact records it (in this temp file only).
    fn ssh_config(&self, key: &Path) -> PathBuf {
        let p = self.dir.join("ssh_config");
        std::fs::write(
            &p,
            format!(
                "Host 127.0.0.1\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
                 StrictHostKeyChecking accept-new\n  BatchMode yes\n  ConnectTimeout 30\n  \
                 ServerAliveInterval 10\n  ServerAliveCountMax 6\n  LogLevel ERROR\n",
                key.display(),
                self.dir.join("known_hosts").display()
            ),
        )
        .unwrap();
        p
    }

    /// Every ssh the test runs is bounded by coreutils `timeout`: a hung session fails.
    fn ssh_cmd(&self, cfg: &Path, user: &str, remote: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["--kill-after=10", "600", "ssh"])
            .arg("-F")
            .arg(cfg)
            .args(["-p", &self.ssh_port.to_string()])
            .arg(format!("{user}@127.0.0.1"))
            .arg(remote)
            .stdin(Stdio::null());
        c
    }

    fn ssh(&self, cfg: &Path, user: &str, remote: &str) -> Output {
        run(&mut self.ssh_cmd(cfg, user, remote))
    }

    /// Run `remote` as `user` and return its stdout; panics (with the console) on failure.
    #[track_caller]
    fn ssh_ok(&self, cfg: &Path, user: &str, remote: &str) -> String {
        let o = self.ssh(cfg, user, remote);
        assert!(
            o.status.success(),
            "{user}@vm `{remote}` failed: {}\n{}",
            text(&o),
            self.console_tail()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Poll until `user` can log in (bounded).
    fn wait_login(&mut self, cfg: &Path, user: &str) {
        let deadline = Instant::now() + timeout();
        loop {
            if let Ok(Some(status)) = self.qemu.try_wait() {
                panic!("qemu exited ({status})\n{}", self.console_tail());
            }
            let o = self.ssh(cfg, user, "true");
            if o.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{user} cannot log in within {:?}: {}\n{}",
                timeout(),
                text(&o),
                self.console_tail()
            );
            std::thread::sleep(Duration::from_secs(5));
        }
    }
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key));
    assert!(o.status.success(), "{}", text(&o));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// An alembic.toml whose droplet is the VM (an existing server at 127.0.0.1:`ssh_port`), for
/// project `project` with edge image `edge` and the `[[workload]]` tables in `workloads`.
/// Inside the VM the edge listens on all addresses: qemu's forwarder delivers to the guest's
/// NIC, not its loopback; only the host's loopback reaches it.
fn config(
    project: &str,
    ssh_port: u16,
    public_key: &str,
    (http, https): (u16, u16),
    edge: &str,
    workloads: &str,
) -> String {
    format!(
        r#"version = 1

[project]
name   = "{project}"
domain = "vm.test"

[droplet]
name            = "vm-droplet"
ssh_user        = "deploy"
ssh_port        = {ssh_port}
authorized_keys = [{key}]
admin_cidrs     = ["127.0.0.1/32"]
tls             = "internal"
root            = "/opt/alembic-vm"
edge_image      = "{edge}"
edge_bind       = "0.0.0.0"
http_port       = {http}
https_port      = {https}
address         = "127.0.0.1"

[ci]
repository = "acme/vmtest"
{workloads}"#,
        key = serde_json::to_string(public_key).unwrap()
    )
}

/// The one workload of the `bootstrap` test's config (never deployed there).
const STUB_WORKLOAD: &str = r#"
[[workload]]
name     = "api"
plane    = "droplet"
exposure = "public"
image    = "alembic-vm/caddy:edge"
command  = ["caddy", "respond", "--listen", ":8080", "--body", "hello from the vm"]
port     = 8080
route    = "api.vm.test"
"#;

/// The journey's workloads, both built from the `app` context (shipped over ssh, no
/// registry): `api` answers `api_cmd` on its health path; `data` seeds its named volume on
/// first start (a random UUID written only when the file is absent) and serves it; `REV` in its
/// environment makes each release recreate its container.
fn journey_workloads(api_cmd: &[&str], rev: u32) -> String {
    let cmd: Vec<String> = api_cmd.iter().map(|s| format!("{s:?}")).collect();
    format!(
        r#"
[[workload]]
name     = "api"
plane    = "droplet"
exposure = "public"
build    = "app"
command  = [{cmd}]
port     = 8080
route    = "api.vm.test"
health   = "/healthz"

[[workload]]
name     = "data"
plane    = "droplet"
exposure = "public"
build    = "app"
command  = ["/bin/busybox", "sh", "-c", "/bin/busybox test -s /srv/data/index.html || /bin/busybox cat /proc/sys/kernel/random/uuid > /srv/data/index.html; exec /usr/bin/caddy file-server --root /srv/data --listen :8082"]
port     = 8082
route    = "data.vm.test"
volumes  = ["store:/srv/data"]
env      = {{ REV = "{rev}" }}
"#,
        cmd = cmd.join(", ")
    )
}

/// alembic, bounded like every wait here (a first bootstrap installs packages for minutes).
fn alembic(dir: &Path, ssh_config: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("--kill-after=10")
        .arg(timeout().as_secs().to_string())
        .arg(env!("CARGO_BIN_EXE_alembic"))
        .current_dir(dir)
        .arg("-c")
        .arg(dir.join("alembic.toml"))
        .env("ALEMBIC_SSH_CONFIG", ssh_config)
        .stdin(Stdio::null());
    c
}

/// Every report line of the script in `out`, as (step, status).
fn report(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.strip_prefix("alembic-bootstrap: "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect()
}

/// The state the bootstrap promises, checked from outside over ssh.
fn assert_bootstrapped(vm: &Vm, cfg: &Path) {
    // Docker and compose v2 for the deploy user, without sudo.
    let v = vm.ssh_ok(
        cfg,
        "deploy",
        "docker info --format '{{.ServerVersion}} {{.LoggingDriver}}' && docker compose version --short",
    );
    note(&format!(
        "{}: docker/compose for deploy: {}",
        vm.name,
        v.replace('\n', " ")
    ));
    assert!(v.contains(" json-file\n"), "{v}");
    // sshd's effective configuration.
    let eff = vm.ssh_ok(cfg, "deploy", "sudo -n /usr/sbin/sshd -T");
    for want in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitrootlogin no",
    ] {
        assert!(eff.lines().any(|l| l == want), "sshd -T lacks {want:?}");
    }
    // Root is refused even holding an authorized key.
    vm.ssh_ok(
        cfg,
        "deploy",
        "sudo -n install -d -m 700 /root/.ssh && cat ~/.ssh/authorized_keys | sudo -n tee /root/.ssh/authorized_keys >/dev/null",
    );
    let o = vm.ssh(cfg, "root", "true");
    assert_eq!(code(&o), 255, "root logged in: {}", text(&o));
    // Password logins are not offered at all.
    let o = run(Command::new("timeout")
        .args(["--kill-after=10", "120", "ssh", "-F"])
        .arg(cfg)
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ])
        .args([
            "-o",
            "LogLevel=INFO",
            "-p",
            &vm.ssh_port.to_string(),
            "deploy@127.0.0.1",
            "true",
        ])
        .stdin(Stdio::null()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Permission denied (publickey)"),
        "password auth offered: {err}"
    );
    // The release root.
    let owner = vm.ssh_ok(cfg, "deploy", "stat -c '%U %G' /opt/alembic-vm");
    assert_eq!(owner.trim(), "deploy deploy");
    // Docker log rotation.
    let daemon = vm.ssh_ok(cfg, "deploy", "cat /etc/docker/daemon.json");
    let daemon: serde_json::Value = serde_json::from_str(&daemon).unwrap();
    assert_eq!(daemon["log-opts"]["max-size"], "10m", "{daemon}");
    assert_eq!(daemon["log-opts"]["max-file"], "3", "{daemon}");
    // Unattended security upgrades.
    let apt = vm.ssh_ok(
        cfg,
        "deploy",
        "dpkg-query -W -f '${db:Status-Status}' unattended-upgrades && apt-config dump APT::Periodic::Unattended-Upgrade",
    );
    assert!(apt.starts_with("installed"), "{apt}");
    assert!(
        apt.contains("APT::Periodic::Unattended-Upgrade \"1\";"),
        "{apt}"
    );
}

#[test]
fn cloud_init_journey() {
    let test = "vm_bootstrap::cloud_init_journey";
    let Some(image) = vm_image(test) else {
        return;
    };
    let t0 = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("alembic-vm-a-")
        .tempdir()
        .unwrap();
    let (key, public) = keygen(dir.path(), "deploy-key");
    let (http, https) = (free_port(), free_port());
    let ssh_port = free_port();
    let pid = std::process::id();
    let project = format!("vm{pid}");
    let local = LocalImages {
        project: project.clone(),
        edge: format!("alembic-vm/caddy:edge{pid}"),
    };
    let Some(caddy) = caddy_binary() else {
        skip(test, "no caddy binary (run scripts/install-tools.sh)");
        return;
    };
    let busybox = Path::new("/bin/busybox");
    if !run(Command::new(busybox).arg("true")).status.success() {
        skip(test, "no static /bin/busybox (Debian busybox-static)");
        return;
    }
    write_app_context(&dir.path().join("app"), &caddy, busybox);
    import_edge_image(&dir.path().join("edge-image"), &caddy, &local.edge);
    let write_config = |api_cmd: &[&str], rev: u32| {
        std::fs::write(
            dir.path().join("alembic.toml"),
            config(
                &project,
                ssh_port,
                &public,
                (http, https),
                &local.edge,
                &journey_workloads(api_cmd, rev),
            ),
        )
        .unwrap();
    };
    write_config(&api_cmd("api v1"), 1);
    let o = run(alembic(dir.path(), Path::new("/dev/null"))
        .args(["render", "--out"])
        .arg(dir.path()));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let user_data =
        std::fs::read_to_string(dir.path().join("infra/droplet/cloud-init.yaml")).unwrap();
    let vm_dir = dir.path().join("vm");
    std::fs::create_dir(&vm_dir).unwrap();
    let mut vm = Vm::boot(
        "vm-a",
        &image,
        &vm_dir,
        &user_data,
        ssh_port,
        &[http, https],
    );
    let cfg = vm.ssh_config(&key);
    vm.wait_banner();
    let banner = vm.elapsed();
    note(&format!(
        "vm-a: ssh banner {banner:.0} s after qemu started"
    ));
    vm.wait_login(&cfg, "deploy");
    let login = vm.elapsed();
    note(&format!(
        "vm-a: deploy can log in {login:.0} s after qemu started"
    ));
    // The wait alembic itself uses (a read-only op over its ssh options).
    let login = alembic_deploy::session::SshLogin {
        user: "deploy".into(),
        host: "127.0.0.1".into(),
        port: ssh_port,
        config: Some(cfg.clone()),
        control_dir: vm.dir.join("cm"),
    };
    let waited =
        alembic_deploy::session::wait_for_cloud_init(&login, timeout().as_secs() as u32).unwrap();
    let done = vm.elapsed();
    let o = vm.ssh(&cfg, "deploy", "cloud-init status --long");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let log = vm.ssh(&cfg, "deploy", "sudo -n cat /var/log/cloud-init-output.log");
    assert!(
        waited.success && o.status.success() && out.contains("status: done"),
        "cloud-init did not finish cleanly: {}{}\n{}\n--- cloud-init-output.log\n{}\n{}",
        waited.stdout,
        waited.stderr,
        text(&o),
        String::from_utf8_lossy(&log.stdout),
        vm.console_tail()
    );
    note(&format!(
        "vm-a: cloud-init done {done:.0} s after qemu started"
    ));
    let first = report(&String::from_utf8_lossy(&log.stdout));
    assert!(
        first
            .iter()
            .any(|(s, st)| s == "packages" && st == "changed"),
        "the first boot installed the packages: {first:?}"
    );

    assert_bootstrapped(&vm, &cfg);

    // Idempotent: the same script again changes nothing and says so.
    let t = Instant::now();
    let again = vm.ssh_ok(&cfg, "deploy", "sudo -n sh /var/lib/alembic/bootstrap.sh");
    note(&format!(
        "vm-a: second run of the script {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let steps = report(&again);
    assert_eq!(
        steps.len(),
        alembic_render::bootstrap::STEPS.len() + 1,
        "{again}"
    );
    for (step, status) in &steps {
        if step == "done" {
            assert_eq!(status, "changed=0", "{again}");
        } else {
            assert_eq!(
                status, "unchanged",
                "{step} changed on a second run: {again}"
            );
        }
    }

    // The deploy. Wait for the bootstrap as apply would (done above: `cloud-init status
    // --wait`), then ship the edge's image by hand, as the one image a real droplet would pull
    // from Docker Hub (no registry is reachable here); the built workloads go over alembic's
    // own ssh (`docker save | docker load`).
    let t = Instant::now();
    let mut save = Command::new("docker")
        .args(["save", &local.edge])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = vm
        .ssh_cmd(&cfg, "deploy", "docker load")
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success());
    assert!(o.status.success(), "docker load of the edge: {}", text(&o));
    note(&format!(
        "vm-a: edge image loaded over ssh in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let apply = |what: &str| {
        let t = Instant::now();
        let o = run(alembic(dir.path(), &cfg)
            .args(["apply", "--plane", "droplet", "--yes"])
            .env("ALEMBIC_PROBE_TIMEOUT", "180"));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let sent: Vec<&str> = err.lines().filter(|l| l.contains("image sent (")).collect();
        note(&format!(
            "vm-a: {what}: exit {} in {:.1} s; {sent:?}",
            code(&o),
            t.elapsed().as_secs_f64()
        ));
        o
    };
    let o = apply("first deploy");
    assert_eq!(
        code(&o),
        0,
        "first apply\n{}\n{}",
        text(&o),
        vm.console_tail()
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("image sent ("),
        "the built images went over ssh: {err}"
    );

    // HTTPS through the forwarded edge port, trusting only the edge's internal CA (no ACME
    // server is reachable: `tls = "internal"`, as in the Docker E2E).
    let ca = dir.path().join("edge-root.crt");
    let pem = vm.ssh_ok(
        &cfg,
        "deploy",
        &format!(
            "c=$(docker ps -q --filter label=com.docker.compose.project={project} \
             --filter label=com.docker.compose.service=edge | head -n 1) && \
             docker cp \"$c:/data/caddy/pki/authorities/local/root.crt\" - | tar -xO"
        ),
    );
    assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
    std::fs::write(&ca, pem).unwrap();
    let get = |host: &str| -> String {
        let mut last = String::new();
        for _ in 0..10 {
            match curl(host, https, &ca) {
                Ok(body) => return body,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_secs(3));
        }
        panic!("https://{host}:{https}/ through the VM's edge: {last}");
    };
    assert_eq!(get("api.vm.test"), "api v1");
    let seed = get("data.vm.test");
    assert_eq!(seed.trim().len(), 36, "a UUID: {seed:?}");

    // Redeploy: a new api answer, a recreated data container, the same data.
    write_config(&api_cmd("api v2"), 2);
    let o = apply("redeploy");
    assert_eq!(code(&o), 0, "redeploy\n{}", text(&o));
    assert_eq!(get("api.vm.test"), "api v2");
    assert_eq!(get("data.vm.test"), seed, "after a redeploy");

    // A failing release (api exits at once) that also recreates data: rolled back, the
    // previous release serves again, same data.
    write_config(&["/bin/busybox", "false"], 3);
    let o = apply("failing release");
    assert_eq!(code(&o), 3, "failing release\n{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rolled back to release 2"),
        "{}",
        text(&o)
    );
    assert_eq!(get("api.vm.test"), "api v2", "after the rollback");
    assert_eq!(get("data.vm.test"), seed, "after a failed release");
    let vols = vm.ssh_ok(&cfg, "deploy", "docker volume ls -q");
    assert!(
        vols.lines().any(|l| l.trim() == format!("{project}_store")),
        "the volume {project}_store is gone: {vols}"
    );
    note(&format!(
        "vm-a: cloud_init_journey total {:.0} s",
        t0.elapsed().as_secs_f64()
    ));
    drop(vm);
    drop(local);
}

/// The api's command: answer every path (the health path too) with `body`.
fn api_cmd(body: &str) -> Vec<&str> {
    vec!["caddy", "respond", "--listen", ":8080", "--body", body]
}

/// Images the journey made on the applying side's engine: the edge image it imports and the
/// tags alembic's builds create under `<project>/`. Removed on drop, even when an assertion
/// failed (the VM and everything in it go with its temp dir).
struct LocalImages {
    project: String,
    edge: String,
}

impl Drop for LocalImages {
    fn drop(&mut self) {
        let mut refs = vec![self.edge.clone()];
        if let Ok(o) = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter"])
            .arg(format!("reference={}/*", self.project))
            .output()
        {
            refs.extend(
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned),
            );
        }
        let _ = Command::new("docker").arg("rmi").args(&refs).output();
    }
}

fn caddy_binary() -> Option<PathBuf> {
    let local = alembic_testkit::workspace_root().join(".tools/bin/caddy");
    let p = if local.exists() {
        local
    } else {
        alembic_testkit::which("caddy")?
    };
    std::fs::canonicalize(p).ok()
}

/// The workloads' build context: `FROM scratch`, the static caddy and busybox.
fn write_app_context(ctx: &Path, caddy: &Path, busybox: &Path) {
    std::fs::create_dir_all(ctx).unwrap();
    std::fs::copy(caddy, ctx.join("caddy")).unwrap();
    std::fs::copy(busybox, ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY caddy /usr/bin/caddy\nCOPY busybox /bin/busybox\n\
         ENV XDG_DATA_HOME=/tmp/data XDG_CONFIG_HOME=/tmp/config\n",
    )
    .unwrap();
}

/// The edge's image, as the Docker E2E makes it: the static caddy alone, imported.
fn import_edge_image(root: &Path, caddy: &Path, tag: &str) {
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::copy(caddy, root.join("usr/bin/caddy")).unwrap();
    let tar = run(Command::new("tar").arg("-C").arg(root).args(["-c", "."]));
    assert!(tar.status.success(), "{}", text(&tar));
    let mut import = Command::new("docker")
        .args([
            "import",
            "--change",
            "ENV XDG_DATA_HOME=/data",
            "--change",
            "ENV XDG_CONFIG_HOME=/config",
            "-",
            tag,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success(), "docker import failed");
}

#[test]
fn bootstrap_command_on_an_existing_server() {
    let test = "vm_bootstrap::bootstrap_command_on_an_existing_server";
    let Some(image) = vm_image(test) else {
        return;
    };
    let t0 = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("alembic-vm-b-")
        .tempdir()
        .unwrap();
    let (key, public) = keygen(dir.path(), "admin-key");
    // A fresh server as a provider hands it over: root with one key, nothing else.
    let seed = format!(
        "#cloud-config\ndisable_root: false\nusers:\n  - name: root\n    ssh_authorized_keys:\n      - {public}\n"
    );
    let vm_dir = dir.path().join("vm");
    std::fs::create_dir(&vm_dir).unwrap();
    let mut vm = Vm::boot("vm-b", &image, &vm_dir, &seed, free_port(), &[]);
    let cfg = vm.ssh_config(&key);
    std::fs::write(
        dir.path().join("alembic.toml"),
        config(
            "vmtest",
            vm.ssh_port,
            &public,
            (free_port(), free_port()),
            "alembic-vm/caddy:edge",
            STUB_WORKLOAD,
        ),
    )
    .unwrap();
    vm.wait_banner();
    note(&format!(
        "vm-b: ssh banner {:.0} s after qemu started",
        vm.elapsed()
    ));
    vm.wait_login(&cfg, "root");
    note(&format!(
        "vm-b: root can log in {:.0} s after qemu started",
        vm.elapsed()
    ));
    // Nothing of the bootstrap is there yet.
    let o = vm.ssh(&cfg, "root", "id deploy || command -v docker");
    assert_ne!(code(&o), 0, "the image is not fresh: {}", text(&o));

    // Without --yes: the operation is shown, nothing runs.
    let o = run(alembic(dir.path(), &cfg).arg("bootstrap"));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("root@127.0.0.1") && shown.contains("sh -s"),
        "{shown}"
    );
    let o = vm.ssh(&cfg, "root", "id deploy");
    assert_ne!(code(&o), 0, "a dry run created the user");

    let t = Instant::now();
    let o = run(alembic(dir.path(), &cfg).args(["bootstrap", "--yes"]));
    note(&format!(
        "vm-b: alembic bootstrap, first run {:.0} s",
        t.elapsed().as_secs_f64()
    ));
    assert_eq!(code(&o), 0, "{}\n{}", text(&o), vm.console_tail());
    let first = String::from_utf8_lossy(&o.stdout).into_owned();
    for step in alembic_render::bootstrap::STEPS {
        assert!(
            first
                .lines()
                .any(|l| l.split_whitespace().next() == Some(step)),
            "step {step} missing from the report:\n{first}"
        );
    }
    assert!(
        first
            .lines()
            .any(|l| l.contains("packages") && l.contains(" changed ")),
        "{first}"
    );

    assert_bootstrapped(&vm, &cfg);

    // Root is refused now: the command says how to get in instead (exit 3).
    let o = run(alembic(dir.path(), &cfg).args(["bootstrap", "--yes"]));
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--user deploy"),
        "{}",
        text(&o)
    );

    // Second run, as the deploy user through sudo: every step unchanged, exit 0.
    let t = Instant::now();
    let o = run(alembic(dir.path(), &cfg).args(["bootstrap", "--yes", "--user", "deploy"]));
    note(&format!(
        "vm-b: alembic bootstrap, second run {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let second = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = second.lines().collect();
    assert_eq!(
        lines.len(),
        alembic_render::bootstrap::STEPS.len(),
        "{second}"
    );
    for l in &lines {
        assert_eq!(
            l.split_whitespace().nth(1),
            Some("unchanged"),
            "a second run changed something: {second}"
        );
    }
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing to change"),
        "{}",
        text(&o)
    );
    // The JSON form of the same answer.
    let o =
        run(alembic(dir.path(), &cfg).args(["--json", "bootstrap", "--yes", "--user", "deploy"]));
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"]["result"], "done");
    assert_eq!(v["outcome"]["changed"], 0);
    note(&format!(
        "vm-b: bootstrap_command_on_an_existing_server total {:.0} s",
        t0.elapsed().as_secs_f64()
    ));
}
