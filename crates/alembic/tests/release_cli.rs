//! What a release ships besides the binary's commands: a version line that names the package
//! (so it is told apart from Python's SQLAlchemy Alembic on the same PATH) and the man page,
//! rendered by the real groff and linted by the real mandoc.

use std::process::Command as Process;

use assert_cmd::Command;

// Python's Alembic prints `alembic X.Y.Z` for `alembic --version`; ours must say which tool it is.
#[test]
fn version_names_the_package() {
    let out = Command::cargo_bin("alembic")
        .unwrap()
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("alembic {} (alembic-infra)\n", env!("CARGO_PKG_VERSION"))
    );
}

fn man_page() -> Vec<u8> {
    let out = Command::cargo_bin("alembic")
        .unwrap()
        .arg("man")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    out.stdout
}

#[test]
fn man_page_renders_with_groff_and_lists_every_command() {
    let Some(groff) = alembic_testkit::tool("groff") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("alembic.1");
    std::fs::write(&page, man_page()).unwrap();
    // -ww: every warning; -z: parse and format, write nothing.
    let out = Process::new(&groff)
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
    let text = Process::new(&groff)
        .args(["-man", "-Tascii", "-P-cbou"])
        .arg(&page)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("DevOps-as-code"), "{text}");
    assert!(text.contains("alembic-infra"), "{text}");
    for cmd in [
        "init", "validate", "check", "scan", "topology", "render", "plan", "apply", "rollback",
        "doctor", "secrets", "schema", "man",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("alembic-{cmd}("))),
            "man page lists no `{cmd}`:\n{text}"
        );
    }
}

#[test]
fn man_page_passes_mandoc_lint() {
    let Some(mandoc) = alembic_testkit::tool("mandoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("alembic.1");
    std::fs::write(&page, man_page()).unwrap();
    let out = Process::new(&mandoc)
        .args(["-T", "lint", "-W", "warning"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mandoc: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
