//! Host-plane artifacts (launchd plists, systemd user units and timers, the secrets launcher)
//! checked by the real tools: `plistutil` and python `plistlib`, `systemd-analyze verify --user`
//! and `calendar`, `shellcheck`, and a real run of the launcher with a canary secret.

use std::path::{Path, PathBuf};
use std::process::Command;

use alembic_config::{default_topology, load_str, Topology};
use alembic_render::{launcher, ArtifactKind, ArtifactSet};
use alembic_testkit::{tool, tools};

fn fixture(name: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let loaded = load_str(name, &text);
    loaded
        .topology
        .unwrap_or_else(|| panic!("{name} is valid: {:#?}", loaded.diagnostics))
}

/// Every topology whose host artifacts are tested: the default (macos) and the host fixtures.
fn topologies() -> Vec<(&'static str, Topology)> {
    vec![
        ("default", default_topology()),
        ("host-macos", fixture("host-macos.toml")),
        ("host-linux", fixture("host-linux.toml")),
    ]
}

fn write_all(set: &ArtifactSet, root: &Path) {
    for a in set.iter() {
        let p = root.join(&a.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &a.bytes).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(a.mode)).unwrap();
    }
}

fn host_paths(set: &ArtifactSet, kind: ArtifactKind) -> Vec<String> {
    set.iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.path.clone())
        .collect()
}

#[test]
fn macos_renders_one_plist_per_host_workload_and_linux_renders_units() {
    let mac = alembic_render::render(&fixture("host-macos.toml"));
    assert_eq!(
        host_paths(&mac, ArtifactKind::LaunchdPlist),
        [
            "infra/host/launchd/com.alembic.labmac.agent-browser.plist",
            "infra/host/launchd/com.alembic.labmac.local-models.plist",
            "infra/host/launchd/com.alembic.labmac.nightly-digest.plist",
            "infra/host/launchd/com.alembic.labmac.workday-sync.plist",
        ]
    );
    assert!(host_paths(&mac, ArtifactKind::SystemdUnit).is_empty());
    let linux = alembic_render::render(&fixture("host-linux.toml"));
    assert_eq!(
        host_paths(&linux, ArtifactKind::SystemdUnit),
        [
            "infra/host/systemd/alembic-lab--agent-browser.service",
            "infra/host/systemd/alembic-lab--local-models.service",
            "infra/host/systemd/alembic-lab--nightly-digest.service",
            "infra/host/systemd/alembic-lab--nightly-digest.timer",
            "infra/host/systemd/alembic-lab--workday-sync.service",
            "infra/host/systemd/alembic-lab--workday-sync.timer",
        ]
    );
    assert!(host_paths(&linux, ArtifactKind::LaunchdPlist).is_empty());
    for set in [&mac, &linux] {
        let l = set.get(launcher::PATH).expect("launcher rendered");
        assert_eq!(l.mode, 0o755);
        assert_eq!(l.kind, ArtifactKind::Script);
    }
}

#[test]
fn plists_parse_with_plistutil() {
    let Some(plistutil) = tool("plistutil") else {
        return;
    };
    for (name, t) in topologies() {
        let set = alembic_render::render(&t);
        let dir = tempfile::tempdir().unwrap();
        write_all(&set, dir.path());
        for p in host_paths(&set, ArtifactKind::LaunchdPlist) {
            // plistutil exits 0 even on a parse error; the error is on stderr.
            let out = Command::new(&plistutil)
                .args(["-i"])
                .arg(dir.path().join(&p))
                .args(["-f", "bin", "-o", "-"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success()
                    && stderr.trim().is_empty()
                    && out.stdout.starts_with(b"bplist00"),
                "{name}: plistutil rejected {p}: {stderr}"
            );
        }
    }
}

/// Python's plistlib reads every plist back to exactly the values alembic meant, including
/// arguments and environment values with characters special to XML and shell.
#[test]
fn plists_read_back_unchanged_with_plistlib() {
    let Some(python) = tool("python3") else {
        return;
    };
    for (name, t) in topologies() {
        if t.host.os != alembic_config::HostOs::Macos {
            continue;
        }
        let set = alembic_render::render(&t);
        let dir = tempfile::tempdir().unwrap();
        write_all(&set, dir.path());
        for w in t.on_plane(alembic_config::Plane::Host) {
            let label = alembic_render::launchd::label(&t, w);
            let path = dir.path().join(format!("infra/host/launchd/{label}.plist"));
            let out = Command::new(&python)
                .args([
                    "-c",
                    "import json, plistlib, sys\nwith open(sys.argv[1], 'rb') as f: print(json.dumps(plistlib.load(f)))",
                ])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: plistlib rejected {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["Label"], label.as_str());
            let args: Vec<String> = serde_json::from_value(v["ProgramArguments"].clone()).unwrap();
            assert_eq!(args, alembic_render::launchd::program_arguments(&t, w));
            let command = launcher::command(w);
            assert_eq!(&args[args.len() - command.len()..], command.as_slice());
            for (k, val) in launcher::environment(w) {
                assert_eq!(v["EnvironmentVariables"][&k], val, "{name}/{label}");
            }
            match &w.schedule {
                Some(s) => {
                    assert_eq!(v["RunAtLoad"], false);
                    assert_eq!(v["ProcessType"], "Background");
                    assert!(v.get("KeepAlive").is_none());
                    let entries = s.calendar_entries();
                    let got = &v["StartCalendarInterval"];
                    let got: Vec<serde_json::Value> = if entries.len() == 1 {
                        vec![got.clone()]
                    } else {
                        serde_json::from_value(got.clone()).expect("an array of dicts")
                    };
                    assert_eq!(got.len(), entries.len());
                    for (g, e) in got.iter().zip(&entries) {
                        for (k, n) in e {
                            assert_eq!(g[*k], *n as u64, "{label} {k}");
                        }
                    }
                }
                None => {
                    assert_eq!(v["RunAtLoad"], true);
                    assert_eq!(v["KeepAlive"], w.keep_alive);
                    assert_eq!(v["ProcessType"], "Standard");
                }
            }
        }
    }
}

#[test]
fn workday_schedule_expands_to_one_calendar_dict_per_fire_time() {
    let t = fixture("host-macos.toml");
    let set = alembic_render::render(&t);
    let text = set
        .get("infra/host/launchd/com.alembic.labmac.workday-sync.plist")
        .unwrap()
        .text()
        .to_owned();
    // 30 9,17 * * 1-5: two hours times five weekdays.
    assert_eq!(text.matches("<key>Weekday</key>").count(), 10);
    assert_eq!(text.matches("<key>Minute</key>").count(), 10);
}

fn install_units(t: &Topology, set: &ArtifactSet, home: &Path) -> Vec<PathBuf> {
    let unit_dir = home.join(".config/systemd/user");
    std::fs::create_dir_all(&unit_dir).unwrap();
    let bin = home.join(launcher::install_path_in_home(t));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let l = set.get(launcher::PATH).unwrap();
    std::fs::write(&bin, &l.bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut units = Vec::new();
    for a in set.iter().filter(|a| a.kind == ArtifactKind::SystemdUnit) {
        let p = unit_dir.join(a.path.rsplit('/').next().unwrap());
        std::fs::write(&p, &a.bytes).unwrap();
        units.push(p);
    }
    units
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let t = fixture("host-linux.toml");
    let set = alembic_render::render(&t);
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let units = install_units(&t, &set, home.path());
    assert_eq!(units.len(), 6);
    let out = Command::new(&analyze)
        .args(["verify", "--user", "--man=no"])
        .args(&units)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and bad escapes (it only warns): any line naming one of
    // our units is a finding.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("alembic-")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: status {:?}\n{stderr}",
        out.status
    );
}

/// A quoting bug shows up as a warning from verify: prove the check can fail by feeding it a
/// unit with a bad escape and an unknown key.
#[test]
fn systemd_analyze_verify_reports_a_broken_unit() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let unit = home.path().join("alembic-broken.service");
    std::fs::write(
        &unit,
        "[Service]\nExecStart=/bin/true \"unterminated\nFrobnicate=yes\n",
    )
    .unwrap();
    let out = Command::new(&analyze)
        .args(["verify", "--user", "--man=no"])
        .arg(&unit)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("alembic-broken")),
        "verify said nothing about a broken unit: {stderr}"
    );
}

#[test]
fn timer_calendars_are_accepted_by_systemd() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let t = fixture("host-linux.toml");
    for w in t.on_plane(alembic_config::Plane::Host) {
        let Some(s) = &w.schedule else { continue };
        let expr = s.on_calendar();
        let out = Command::new(&analyze)
            .args(["calendar", &expr])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd rejected OnCalendar={expr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let timer = alembic_render::systemd::timer(&t, w).unwrap().to_text();
        assert!(timer.contains(&format!("OnCalendar={expr}\n")));
        assert!(timer.contains("Persistent=true\n"));
    }
}

#[test]
fn launcher_is_shellcheck_clean() {
    let Some(shellcheck) = tool("shellcheck") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alembic-launch");
    std::fs::write(&p, launcher::SCRIPT).unwrap();
    let out = Command::new(shellcheck)
        .args(["--shell=sh", "--severity=style"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck findings:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

struct Launcher {
    _dir: tempfile::TempDir,
    home: PathBuf,
    script: PathBuf,
    secrets: PathBuf,
}

fn launcher_with_secrets(contents: &str, mode: u32) -> Launcher {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let script = dir.path().join("alembic-launch");
    std::fs::write(&script, launcher::SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secrets = dir.path().join("secrets.env");
    std::fs::write(&secrets, contents).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(mode)).unwrap();
    Launcher {
        _dir: dir,
        home,
        script,
        secrets,
    }
}

impl Launcher {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("/bin/sh")
            .arg(&self.script)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("ALEMBIC_SECRETS_FILE", &self.secrets)
            .output()
            .unwrap()
    }
}

const CANARY: &str = "canary-sk-4f1b9e7c=with spaces 'quotes' $dollar";

#[test]
fn launcher_exports_only_declared_secrets_to_the_child() {
    let l = launcher_with_secrets(
        &format!("# comment\n\nOPENAI_API_KEY={CANARY}\nOTHER_SECRET=must-not-leak\n"),
        0o600,
    );
    let out = l.run(&[
        "--secrets",
        "OPENAI_API_KEY",
        "--",
        "/bin/sh",
        "-c",
        "printf '%s|%s' \"$OPENAI_API_KEY\" \"${OTHER_SECRET-unset}\"",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{CANARY}|unset")
    );
}

#[test]
fn launcher_refuses_a_secrets_file_readable_by_others() {
    let l = launcher_with_secrets(&format!("OPENAI_API_KEY={CANARY}\n"), 0o644);
    let out = l.run(&["--secrets", "OPENAI_API_KEY", "--", "/bin/echo", "ran"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "the command must not run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mode 0600"), "{stderr}");
    assert!(!stderr.contains("canary"), "a secret value reached stderr");
}

#[test]
fn launcher_names_missing_secrets_without_values() {
    let l = launcher_with_secrets(&format!("OPENAI_API_KEY={CANARY}\n"), 0o600);
    let out = l.run(&[
        "--secrets",
        "OPENAI_API_KEY,ANTHROPIC_API_KEY",
        "--",
        "/bin/true",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");
    assert!(!stderr.contains("canary"), "a secret value reached stderr");
}

#[test]
fn launcher_without_secrets_does_not_need_the_file_and_logs_under_home() {
    let l = launcher_with_secrets("", 0o644);
    let out = l.run(&[
        "--log",
        "Library/Logs/alembic/demo.log",
        "--",
        "/bin/sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(l.home.join("Library/Logs/alembic/demo.log")).unwrap();
    assert_eq!(log, "out\nerr\n");
}

#[test]
fn launcher_rejects_bad_usage() {
    let l = launcher_with_secrets("", 0o600);
    for args in [&[][..], &["--"][..], &["--bogus", "--", "/bin/true"][..]] {
        let out = l.run(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    }
}

#[test]
fn host_artifact_snapshots() {
    for (name, t) in topologies() {
        let set = alembic_render::render(&t);
        for a in set
            .iter()
            .filter(|a| a.plane == alembic_config::Plane::Host)
        {
            insta::assert_snapshot!(format!("{name}__{}", a.path.replace('/', "__")), a.text());
        }
    }
}

/// The two plist checkers read the same files the same way: plistutil converts every rendered
/// plist to the binary format, and python's plistlib reads both the rendered XML and
/// plistutil's binary to identical values (so a plist one parser accepted with a different
/// meaning, e.g. a mangled escape, fails here).
#[test]
fn both_checkers_run_on_the_same_files() {
    let Some([plistutil, python]) = tools(["plistutil", "python3"]) else {
        return;
    };
    let read = |path: &Path| -> serde_json::Value {
        let out = Command::new(&python)
            .args([
                "-c",
                "import json, plistlib, sys\nwith open(sys.argv[1], 'rb') as f: print(json.dumps(plistlib.load(f), sort_keys=True))",
            ])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "plistlib rejected {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mut checked = 0;
    for (name, t) in topologies() {
        let set = alembic_render::render(&t);
        let dir = tempfile::tempdir().unwrap();
        write_all(&set, dir.path());
        for p in host_paths(&set, ArtifactKind::LaunchdPlist) {
            let xml = dir.path().join(&p);
            let bin = dir.path().join(format!("{p}.bin"));
            let out = Command::new(&plistutil)
                .arg("-i")
                .arg(&xml)
                .args(["-f", "bin", "-o"])
                .arg(&bin)
                .output()
                .unwrap();
            // plistutil exits 0 even on a parse error; the error is on stderr.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{name}: plistutil rejected {p}: {stderr}"
            );
            assert!(
                std::fs::read(&bin).unwrap().starts_with(b"bplist00"),
                "{name}: plistutil wrote no binary plist for {p}"
            );
            let (a, b) = (read(&xml), read(&bin));
            assert_eq!(a, b, "{name}: {p} reads differently through plistutil");
            assert!(a["Label"].is_string(), "{name}: {p} has no Label: {a}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no plist was rendered by any fixture");
}

/// The plist's `ProgramArguments`, run as launchd would (argv as is, a bare environment with
/// HOME), finds the installed launcher through `$HOME`, passes the command's arguments
/// unchanged and writes the log under `$HOME/Library/Logs/alembic/`.
#[test]
fn plist_program_arguments_start_the_installed_launcher() {
    use std::os::unix::fs::PermissionsExt;
    let t = fixture("host-macos.toml");
    let set = alembic_render::render(&t);
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(launcher::install_path_in_home(&t));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, &set.get(launcher::PATH).unwrap().bytes).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut w = t.workload("local-models").unwrap().clone();
    // Same words after the program, printed one per line instead of starting ollama.
    let mut command = vec![alembic_config::types::Text::parse("/usr/bin/printf").unwrap()];
    command.push(alembic_config::types::Text::parse("%s\\n").unwrap());
    command.extend(w.command.iter().skip(1).cloned());
    w.command = command;
    let argv = alembic_render::launchd::program_arguments(&t, &w);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(
        home.path()
            .join("Library/Logs/alembic/labmac/local-models.log"),
    )
    .unwrap();
    let expected: Vec<&str> = t.workload("local-models").unwrap().command[1..]
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(log.lines().collect::<Vec<_>>(), expected);
}

/// `fixture` with the project renamed and the host OS set.
fn with_project(name: &str, project: &str, os: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .replacen("name   = \"lab\"", &format!("name   = \"{project}\""), 1)
        .replacen("name   = \"labmac\"", &format!("name   = \"{project}\""), 1)
        .replace("os = \"linux\"", &format!("os = \"{os}\""))
        .replace("os = \"macos\"", &format!("os = \"{os}\""));
    let loaded = load_str(name, &text);
    let t = loaded.topology.expect("valid");
    assert_eq!(t.project.name.as_str(), project);
    t
}

fn unit_and_label_paths(t: &Topology) -> Vec<String> {
    alembic_render::render(t)
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ArtifactKind::SystemdUnit | ArtifactKind::LaunchdPlist
            )
        })
        .map(|a| a.path.clone())
        .collect()
}

// Regression: unit names were `alembic-<workload>` whatever the project, so two projects on one
// machine overwrote each other's units; `-` alone as separator would still collide for a-b/c and
// a/b-c.
#[test]
fn two_projects_render_distinct_unit_names_and_labels() {
    for os in ["linux", "macos"] {
        let a = with_project("host-linux.toml", "alpha", os);
        let b = with_project("host-linux.toml", "beta", os);
        let (pa, pb) = (unit_and_label_paths(&a), unit_and_label_paths(&b));
        assert!(!pa.is_empty());
        assert!(
            pa.iter().all(|p| !pb.contains(p)),
            "{os}: shared paths {pa:?} / {pb:?}"
        );
        assert!(pa.iter().all(|p| p.contains("alpha")), "{pa:?}");
        // Hyphens split differently still give different names.
        let mut ab = with_project("host-linux.toml", "a-b", os);
        let mut a2 = with_project("host-linux.toml", "a", os);
        let rename = |t: &mut Topology, to: &str| {
            let w = t
                .workloads
                .iter_mut()
                .find(|w| w.name.as_str() == "workday-sync")
                .unwrap();
            w.name = alembic_config::types::WorkloadName::parse(to).unwrap();
        };
        rename(&mut ab, "c");
        rename(&mut a2, "b-c");
        let (x, y) = (unit_and_label_paths(&ab), unit_and_label_paths(&a2));
        assert!(x.iter().all(|p| !y.contains(p)), "{os}: {x:?} / {y:?}");
    }
    let t = with_project("host-linux.toml", "alpha", "linux");
    let w = t.workload("local-models").unwrap();
    assert_eq!(
        alembic_render::systemd::unit_name(&t, w),
        "alembic-alpha--local-models"
    );
    let t = with_project("host-linux.toml", "alpha", "macos");
    let w = t.workload("local-models").unwrap();
    assert_eq!(
        alembic_render::launchd::label(&t, w),
        "com.alembic.alpha.local-models"
    );
    // The dependency ordering names the project's own unit.
    let linux = fixture("host-linux.toml");
    let unit = alembic_render::systemd::service(&linux, linux.workload("agent-browser").unwrap());
    assert!(unit
        .to_text()
        .contains("After=alembic-lab--local-models.service\n"));
}

// Regression: a host workload's bind/port never reached the process (no HOST/PORT, and
// `{bind}`/`{port}` stayed literal), so a daemon listened wherever its command said.
#[test]
fn bind_and_port_reach_a_launchd_agent() {
    use std::os::unix::fs::PermissionsExt;
    let Some(python) = tool("python3") else {
        return;
    };
    let mut t = fixture("host-macos.toml");
    {
        let w = t
            .workloads
            .iter_mut()
            .find(|w| w.name.as_str() == "agent-browser")
            .unwrap();
        w.bind = Some("127.0.0.2".parse().unwrap());
        // Print the environment's HOST/PORT and every argument, one per line.
        w.command = [
            "/bin/sh",
            "-c",
            "printf '%s\\n' \"$HOST\" \"$PORT\" \"$@\"",
            "sh",
            "--bind={bind}",
            "{port}",
            "[{bind}]:{port}",
            "{{port}}",
        ]
        .iter()
        .map(|s| alembic_config::types::Text::parse(s).unwrap())
        .collect();
    }
    let set = alembic_render::render(&t);
    let dir = tempfile::tempdir().unwrap();
    write_all(&set, dir.path());
    let plist = dir
        .path()
        .join("infra/host/launchd/com.alembic.labmac.agent-browser.plist");
    // What launchd would read: the real plist parser's view of the file.
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, plistlib, sys\nwith open(sys.argv[1], 'rb') as f: print(json.dumps(plistlib.load(f)))",
        ])
        .arg(&plist)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["EnvironmentVariables"]["HOST"], "127.0.0.2");
    assert_eq!(v["EnvironmentVariables"]["PORT"], "9222");
    let argv: Vec<String> = serde_json::from_value(v["ProgramArguments"].clone()).unwrap();
    let env: std::collections::BTreeMap<String, String> =
        serde_json::from_value(v["EnvironmentVariables"].clone()).unwrap();
    // Start it as launchd would: argv and EnvironmentVariables as is, HOME set.
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(launcher::install_path_in_home(&t));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, launcher::SCRIPT).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(&env)
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(
        home.path()
            .join("Library/Logs/alembic/labmac/agent-browser.log"),
    )
    .unwrap();
    assert_eq!(
        log,
        "127.0.0.2\n9222\n--bind=127.0.0.2\n9222\n[127.0.0.2]:9222\n{9222}\n"
    );
}

// Regression: as above, for systemd units, checked by `systemd-analyze verify`.
#[test]
fn bind_and_port_reach_a_systemd_unit() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let t = fixture("host-linux.toml");
    let set = alembic_render::render(&t);
    let unit = set
        .get("infra/host/systemd/alembic-lab--agent-browser.service")
        .unwrap()
        .text()
        .to_owned();
    assert!(unit.contains("Environment=\"HOST=127.0.0.1\"\n"), "{unit}");
    assert!(unit.contains("Environment=\"PORT=9222\"\n"), "{unit}");
    assert!(
        unit.contains("\"--\" \"/bin/true\" \"serve\" \"--host=127.0.0.1\" \"--port\" \"9222\"\n"),
        "{unit}"
    );
    assert!(!unit.contains("{bind}") && !unit.contains("{port}"));
    // A scheduled job without a port gets neither variable.
    let job = set
        .get("infra/host/systemd/alembic-lab--nightly-digest.service")
        .unwrap()
        .text();
    assert!(!job.contains("HOST=") && !job.contains("PORT="));
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let units = install_units(&t, &set, home.path());
    let out = Command::new(&analyze)
        .args(["verify", "--user", "--man=no"])
        .args(&units)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("alembic-")).collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}

// The launcher reads the project's own secrets file, and refuses a project name that is not
// a slug (it becomes a path segment).
#[test]
fn launcher_reads_the_projects_secrets_file() {
    use std::os::unix::fs::PermissionsExt;
    let l = launcher_with_secrets("", 0o600);
    let dir = l.home.join(".config/alembic/proj-a");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secrets.env");
    std::fs::write(&file, format!("OPENAI_API_KEY={CANARY}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |project: &str| {
        Command::new("/bin/sh")
            .arg(&l.script)
            .args(["--project", project, "--secrets", "OPENAI_API_KEY", "--"])
            .args(["/bin/sh", "-c", "printf '%s' \"$OPENAI_API_KEY\""])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &l.home)
            .output()
            .unwrap()
    };
    let out = run("proj-a");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), CANARY);
    // Another project's file is not this one's.
    let out = run("proj-b");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("proj-b/secrets.env"));
    for bad in ["../proj-a", "Proj", "a--b", "a/b", "-a"] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid project name"),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
