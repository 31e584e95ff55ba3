//! The CI and image-shipping fields: `ci.toolchain` and its version fields, `ci.alembic_version`,
//! `droplet.registry` and a droplet workload's `build`. Defaults, what each accepts, and a
//! located diagnostic (line, column, width) for each kind of bad value.

use alembic_config::{load_str, Code, Diagnostic, Severity, Toolchain, Topology};

/// A minimal valid config: `[ci]` is last, so extra ci keys can be appended; line 13 onwards.
const BASE: &str = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\naddress = \"203.0.113.20\"\n\n[ci]\nrepository = \"acme/demo\"\n";

fn load_ok(text: &str) -> (Topology, Vec<Diagnostic>) {
    let loaded = load_str("alembic.toml", text);
    let t = loaded
        .topology
        .unwrap_or_else(|| panic!("valid: {:#?}", loaded.diagnostics));
    (t, loaded.diagnostics)
}

#[track_caller]
fn located(text: &str, code: Code, severity: Severity, line: usize, column: usize, what: &str) {
    let loaded = load_str("alembic.toml", text);
    let d: Vec<&Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == code && d.severity == severity)
        .collect();
    assert_eq!(d.len(), 1, "{:#?}", loaded.diagnostics);
    assert_eq!((d[0].line, d[0].column), (line, column), "{}", d[0].message);
    let span = d[0].span.clone().expect("located");
    assert_eq!(&text[span], what, "{}", d[0].message);
    if severity == Severity::Error {
        assert!(loaded.topology.is_none());
    } else {
        assert!(loaded.topology.is_some());
    }
}

#[test]
fn toolchain_defaults_to_pnpm_only_when_a_node_version_is_named() {
    let (t, _) = load_ok(BASE);
    assert_eq!(t.ci.toolchain, Toolchain::None);
    let (t, _) = load_ok(&format!("{BASE}node_version = \"20\"\n"));
    assert_eq!(t.ci.toolchain, Toolchain::Pnpm);
    assert_eq!(t.ci.node_version.as_str(), "20");
    // The embedded default names node 22 and so keeps its pnpm setup.
    assert_eq!(
        alembic_config::default_topology().ci.toolchain,
        Toolchain::Pnpm
    );
}

#[test]
fn every_toolchain_parses_with_its_version_field_and_defaults() {
    for tc in Toolchain::ALL {
        let mut text = format!("{BASE}toolchain = \"{tc}\"\n");
        if let Some(field) = tc.version_field() {
            text.push_str(&format!("{field} = \"1.23\"\n"));
        }
        let (t, diags) = load_ok(&text);
        assert_eq!(t.ci.toolchain, tc);
        assert!(diags.is_empty(), "{tc}: {diags:#?}");
        let got = match tc.version_field() {
            Some("node_version") => &t.ci.node_version,
            Some("python_version") => &t.ci.python_version,
            Some("go_version") => &t.ci.go_version,
            Some("rust_toolchain") => &t.ci.rust_toolchain,
            _ => continue,
        };
        assert_eq!(got.as_str(), "1.23", "{tc}");
    }
    let (t, _) = load_ok(BASE);
    assert_eq!(t.ci.python_version.as_str(), "3.12");
    assert_eq!(t.ci.go_version.as_str(), "stable");
    assert_eq!(t.ci.rust_toolchain.as_str(), "stable");
    assert_eq!(t.ci.alembic_version, None);
}

#[test]
fn unknown_toolchain_is_a_located_error() {
    let text = format!("{BASE}toolchain = \"bun\"\n");
    located(&text, Code::Cfg004, Severity::Error, 13, 13, "\"bun\"");
    let msg = &load_str("a.toml", &text).diagnostics[0].message;
    assert!(
        msg.contains("\"pnpm\"") && msg.contains("\"none\""),
        "{msg}"
    );
}

#[test]
fn a_version_field_the_toolchain_ignores_is_a_located_warning() {
    let text = format!("{BASE}toolchain = \"cargo\"\npython_version = \"3.13\"\n");
    located(&text, Code::Cfg004, Severity::Warning, 14, 18, "\"3.13\"");
}

#[test]
fn alembic_version_is_exact() {
    let (t, _) = load_ok(&format!("{BASE}alembic_version = \"0.2.0\"\n"));
    assert_eq!(t.ci.alembic_version.unwrap().as_str(), "0.2.0");
    for bad in ["^0.2", "v0.2.0", "latest", "0.2", ">=0.2.0"] {
        let text = format!("{BASE}alembic_version = \"{bad}\"\n");
        located(
            &text,
            Code::Cfg004,
            Severity::Error,
            13,
            19,
            &format!("\"{bad}\""),
        );
    }
}

/// BASE with a registry in `[droplet]` (line 10) and the given workload appended (its
/// `[[workload]]` on line 14 without a registry).
fn droplet_with(registry: &str, workload: &str) -> String {
    BASE.replace(
        "address = \"203.0.113.20\"\n",
        &format!("address = \"203.0.113.20\"\n{registry}"),
    ) + workload
}

#[test]
fn build_workload_and_registry_parse() {
    let text = droplet_with(
        "registry = \"ghcr.io/acme\"\n",
        "\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\nbuild = \"services/api\"\n",
    );
    let (t, _) = load_ok(&text);
    assert_eq!(
        t.droplet.registry.as_ref().unwrap().as_str(),
        "ghcr.io/acme"
    );
    let w = t.workload("api").unwrap();
    assert_eq!(w.build.as_ref().unwrap().as_str(), "services/api");
    assert_eq!(w.image, None);
    // Without a registry the same workload is valid too (its image is shipped over ssh).
    let (t, _) = load_ok(&droplet_with(
        "",
        "\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\nbuild = \".\"\n",
    ));
    assert_eq!(t.droplet.registry, None);
}

#[test]
fn bad_registry_is_a_located_error() {
    let text = droplet_with("registry = \"https://ghcr.io/acme\"\n", "");
    located(
        &text,
        Code::Cfg004,
        Severity::Error,
        10,
        12,
        "\"https://ghcr.io/acme\"",
    );
}

#[test]
fn build_outside_the_project_is_a_located_error() {
    for bad in ["../api", "/srv/api", "services/../../x"] {
        let text = droplet_with(
            "",
            &format!("\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\nbuild = \"{bad}\"\n"),
        );
        located(
            &text,
            Code::Cfg004,
            Severity::Error,
            17,
            9,
            &format!("\"{bad}\""),
        );
    }
}

#[test]
fn build_and_image_together_is_a_located_error() {
    let text = droplet_with(
        "",
        "\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\nimage = \"nginx:1\"\nbuild = \"api\"\n",
    );
    located(
        &text,
        Code::Cfg004,
        Severity::Error,
        18,
        1,
        "build = \"api\"",
    );
}

#[test]
fn droplet_workload_without_image_or_build_names_both() {
    let text = droplet_with("", "\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\n");
    let loaded = load_str("alembic.toml", &text);
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == Code::Cfg003)
        .unwrap();
    assert!(d.message.contains("`image` or `build`"), "{}", d.message);
    assert_eq!(d.line, 15);
}

#[test]
fn build_on_a_host_or_ci_workload_is_a_located_error() {
    for (plane, extra) in [
        ("host", "command = [\"/bin/x\"]\n"),
        ("ci", "command = [\"make\"]\n"),
    ] {
        let text = droplet_with(
            "",
            &format!("\n[[workload]]\nname = \"x\"\nplane = \"{plane}\"\n{extra}build = \"x\"\n"),
        );
        located(&text, Code::Cfg004, Severity::Error, 18, 1, "build = \"x\"");
    }
}
