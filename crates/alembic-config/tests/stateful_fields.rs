//! A droplet workload's stateful fields: `volumes` (named volumes only), `read_only`, `tmpfs`,
//! `user`. Defaults, what each accepts, and a located diagnostic for each kind of bad value:
//! CFG004 when malformed, EXP008 when a host path or the docker socket would be mounted.

use alembic_config::{load_str, Code, Diagnostic, Topology};

/// A minimal valid config ending in a droplet workload, so its keys can be appended (line 18+).
const BASE: &str = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\naddress = \"203.0.113.20\"\n\n[ci]\nrepository = \"acme/demo\"\n\n[[workload]]\nname = \"db\"\nplane = \"droplet\"\nimage = \"postgres:16-alpine\"\n";

fn load_ok(text: &str) -> Topology {
    let loaded = load_str("alembic.toml", text);
    loaded
        .topology
        .unwrap_or_else(|| panic!("valid: {:#?}", loaded.diagnostics))
}

/// The one error of `code` points at `what` on line 18 (the appended line); nothing loads.
#[track_caller]
fn refused(tail: &str, code: Code, what: &str) -> Diagnostic {
    let text = format!("{BASE}{tail}\n");
    let loaded = load_str("alembic.toml", &text);
    assert!(loaded.topology.is_none(), "{tail} loaded");
    let d: Vec<&Diagnostic> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(d.len(), 1, "{tail}: {:#?}", loaded.diagnostics);
    assert_eq!(d[0].code, code, "{tail}: {}", d[0].message);
    assert_eq!(d[0].line, 18, "{tail}: {}", d[0].message);
    let span = d[0].span.clone().expect("located");
    assert_eq!(&text[span], what, "{tail}: {}", d[0].message);
    d[0].clone()
}

#[test]
fn defaults_are_a_read_only_root_without_volumes_or_user() {
    let t = load_ok(BASE);
    let w = t.workload("db").unwrap();
    assert!(w.read_only);
    assert!(w.volumes.is_empty() && w.tmpfs.is_empty() && w.user.is_none());
}

#[test]
fn the_documented_database_example_loads() {
    let t = load_ok(&format!(
        "{BASE}volumes = [\"pgdata:/var/lib/postgresql/data\", \"seed.v1:/seed/:ro\"]\nread_only = false\ntmpfs = [\"/run/postgresql\"]\nuser = \"70:70\"\n"
    ));
    let w = t.workload("db").unwrap();
    assert!(!w.read_only);
    let v: Vec<String> = w.volumes.iter().map(ToString::to_string).collect();
    assert_eq!(v, ["pgdata:/var/lib/postgresql/data", "seed.v1:/seed:ro"]);
    assert_eq!(w.volumes[0].name, "pgdata");
    assert!(!w.volumes[0].read_only && w.volumes[1].read_only);
    assert_eq!(w.tmpfs[0].as_str(), "/run/postgresql");
    assert_eq!(w.user.as_ref().unwrap().as_str(), "70:70");
    for user in ["postgres", "1000", "app:staff", "_svc:100"] {
        let t = load_ok(&format!("{BASE}user = \"{user}\"\n"));
        assert_eq!(
            t.workload("db").unwrap().user.as_ref().unwrap().as_str(),
            user
        );
    }
}

#[test]
fn host_paths_and_the_docker_socket_are_refused_by_policy() {
    for (entry, says) in [
        ("/var/lib/app:/data", "bind-mounts the host path"),
        ("./data:/data", "bind-mounts the host path"),
        ("~/data:/data", "bind-mounts the host path"),
        ("/:/host", "bind-mounts the host path"),
        ("/var/run/docker.sock:/var/run/docker.sock", "docker socket"),
        ("/run/docker.sock:/sock:ro", "docker socket"),
        ("docker.sock:/x", "docker socket"),
        ("data/sub:/x", "bind-mounts the host path"),
    ] {
        let d = refused(
            &format!("volumes = [\"ok:/ok\", \"{entry}\"]"),
            Code::Exp008,
            &format!("\"{entry}\""),
        );
        assert!(d.message.contains(says), "{entry}: {}", d.message);
    }
}

#[test]
fn malformed_entries_are_cfg004_at_the_item() {
    for entry in [
        "pgdata",
        "pgdata:",
        "pgdata:relative/path",
        "pgdata:/",
        "pgdata:/a/../etc",
        "pgdata:/data:rw",
        "pgdata:/data:ro:z",
        "-bad:/data",
        "bad name:/data",
        "${HOME}:/data",
        "caddy_data:/steal",
        "caddy_config:/steal",
        ":/data",
    ] {
        refused(
            &format!("volumes = [\"{entry}\"]"),
            Code::Cfg004,
            &format!("\"{entry}\""),
        );
    }
    refused("tmpfs = [\"run/x\"]", Code::Cfg004, "\"run/x\"");
    refused("tmpfs = [\"/run x\"]", Code::Cfg004, "\"/run x\"");
    for user in ["", "0:", ":0", "Root", "a b", "1:2:3", "99999999999"] {
        refused(
            &format!("user = \"{user}\""),
            Code::Cfg004,
            &format!("\"{user}\""),
        );
    }
    refused("read_only = \"no\"", Code::Cfg004, "\"no\"");
}

#[test]
fn two_mounts_at_one_path_are_cfg005() {
    refused(
        "volumes = [\"a:/data\", \"b:/data/\"]",
        Code::Cfg005,
        "\"b:/data/\"",
    );
}

#[test]
fn the_fields_apply_only_to_droplet_workloads() {
    let host = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\naddress = \"203.0.113.20\"\n\n[ci]\nrepository = \"acme/demo\"\n\n[[workload]]\nname = \"job\"\nplane = \"host\"\ncommand = [\"/bin/true\"]\n";
    for tail in [
        "volumes = [\"a:/data\"]",
        "read_only = false",
        "tmpfs = [\"/run\"]",
        "user = \"1000\"",
    ] {
        let loaded = load_str("alembic.toml", &format!("{host}{tail}\n"));
        assert!(loaded.topology.is_none(), "{tail}");
        let key = tail.split(' ').next().unwrap();
        assert!(
            loaded.diagnostics.iter().any(|d| d.code == Code::Cfg004
                && d.message.contains(&format!("`{key}` does not apply"))),
            "{tail}: {:#?}",
            loaded.diagnostics
        );
    }
}
