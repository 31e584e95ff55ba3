//! The host plane's file installs run for real into a temporary home: modes are right (launcher
//! 0755, secrets file 0600, agents/units 0644), the installed plists parse with `plistutil` and
//! python `plistlib`, the installed units pass `systemd-analyze verify --user`, and the installed
//! launcher reads the installed secrets file (the canary value reaches the workload and nothing
//! else). launchctl/systemctl themselves cannot run here; their argv is covered by the
//! transcript tests.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::exec::{Executor, Goal, SecretSource};
use crate::host::{self, HostEnv};
use alembic_config::Topology;

const CANARY: &str = "sk-canary-host-real-51c7";

struct Canary;
impl SecretSource for Canary {
    fn get(&self, name: &str) -> Option<String> {
        (name == "OPENAI_API_KEY").then(|| CANARY.to_owned())
    }
}

fn linux_topology() -> Topology {
    let src = alembic_config::DEFAULT_TOML.replace("os = \"macos\"", "os = \"linux\"");
    alembic_config::load_str("linux.toml", &src)
        .topology
        .expect("valid")
}

fn uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Run only the file-writing ops (mkdir and the writer) for real; return the installed paths.
fn install_files(t: &Topology, home: &Path) -> Vec<std::path::PathBuf> {
    let env = HostEnv::for_home(home, uid());
    let set = alembic_render::render(t);
    let ops: Vec<_> = host::install_ops(t, &set, &env)
        .unwrap()
        .into_iter()
        .filter(|o| o.program == "mkdir" || o.program == "sh")
        .collect();
    let mut ex = Executor::new(Goal::Apply, &Canary);
    let mut out = Vec::new();
    for op in &ops {
        let r = ex.run(op).unwrap();
        assert!(r.success(), "{op}: {}", r.stderr_text());
        assert!(!r.stdout_text().contains(CANARY) && !r.stderr_text().contains(CANARY));
        // The writer (`sh -c WRITER alembic-install PATH MODE`) names the file it installs;
        // the secrets merge (`sh MERGER FILE NAMES`) the file it updates.
        match op.args.first().map(String::as_str) {
            Some("-c") => out.push(std::path::PathBuf::from(&op.args[3])),
            Some(_) if op.program == "sh" => out.push(std::path::PathBuf::from(&op.args[1])),
            _ => {}
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn check_launcher_and_secrets(home: &Path) {
    let launcher = home.join(".config/alembic/alembic/bin/alembic-launch");
    let secrets = home.join(".config/alembic/alembic/secrets.env");
    assert_eq!(mode(&launcher), 0o755);
    assert_eq!(mode(&secrets), 0o600);
    assert_eq!(
        std::fs::read_to_string(&secrets).unwrap(),
        format!("OPENAI_API_KEY={CANARY}\n")
    );
    // The installed launcher accepts the installed file and exports exactly the declared name.
    let out = Command::new(&launcher)
        .args([
            "--project",
            "alembic",
            "--secrets",
            "OPENAI_API_KEY",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!(
            r#"test "$OPENAI_API_KEY" = '{CANARY}' && echo matched"#
        ))
        .env("HOME", home)
        .env_remove("ALEMBIC_SECRETS_FILE")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "matched\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(CANARY));
}

#[test]
fn macos_plists_install_and_parse() {
    let Some([plistutil, python]) = alembic_testkit::tools(["plistutil", "python3"]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let t = alembic_config::default_topology();
    let installed = install_files(&t, home.path());
    let plists: Vec<_> = installed
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "plist"))
        .collect();
    assert_eq!(plists.len(), 3);
    for p in &plists {
        assert!(p.starts_with(home.path().join("Library/LaunchAgents")));
        assert_eq!(mode(p), 0o644);
        // plistutil exits 0 even on a parse error: its stderr says so.
        let out = Command::new(&plistutil)
            .arg("-i")
            .arg(p)
            .args(["-o", "-", "-f", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty() && !out.stdout.is_empty(),
            "plistutil rejected {}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&python)
            .args([
                "-c",
                "import plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); \
                 assert d['Label'] and d['ProgramArguments'], d; print(d['Label'])",
            ])
            .arg(p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let label = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            format!("{}.plist", label.trim()),
            p.file_name().unwrap().to_str().unwrap()
        );
    }
    check_launcher_and_secrets(home.path());
}

#[test]
fn linux_units_install_and_verify() {
    let Some([analyze]) = alembic_testkit::tools(["systemd-analyze"]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let t = linux_topology();
    let installed = install_files(&t, home.path());
    let units: Vec<_> = installed
        .iter()
        .filter(|p| p.starts_with(home.path().join(".config/systemd/user")))
        .collect();
    assert_eq!(units.len(), 4);
    for u in &units {
        assert_eq!(mode(u), 0o644);
    }
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new(&analyze)
        .args(["verify", "--user", "--man=no"])
        .args(&units)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    // verify only warns on some problems: none may concern our units (a missing ExecStart
    // binary would, which is why the launcher is installed first).
    for u in &units {
        let name = u.file_name().unwrap().to_str().unwrap();
        assert!(
            !stderr.lines().any(|l| l.contains(name)),
            "systemd-analyze complained about {name}:\n{stderr}"
        );
    }
    check_launcher_and_secrets(home.path());
}
