//! A clean `alembic` process in a project holding the default topology, for CLI tests whose
//! answers depend on the environment (doctor, secrets).

use std::path::Path;

use assert_cmd::Command;

/// `alembic` in `dir` with no secret of the default topology set, no CI marker and no config
/// override, whatever the environment running the tests holds.
pub fn alembic(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("alembic").unwrap();
    c.current_dir(dir)
        .env_remove("ALEMBIC_CONFIG")
        .env_remove("CI")
        .env_remove("ALEMBIC_CONTEXT")
        .env_remove("GITHUB_ACTIONS");
    for name in alembic_config::default_topology().secret_names().keys() {
        c.env_remove(name.as_str());
    }
    c
}

/// A temp dir holding the default topology as `alembic.toml`.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alembic.toml"),
        alembic_config::DEFAULT_TOML,
    )
    .unwrap();
    dir
}
