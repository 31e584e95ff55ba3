//! `alembic init`: write the commented default topology as alembic.toml.

use std::path::Path;

use crate::exit;

pub fn run(dir: &Path, force: bool) -> i32 {
    let path = dir.join("alembic.toml");
    if path.exists() && !force {
        eprintln!(
            "error: {} already exists\n\nhint: pass --force to overwrite it",
            path.display()
        );
        return exit::PROBLEMS;
    }
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| {
        alembic_deploy::fsio::write_atomic(&path, alembic_config::DEFAULT_TOML.as_bytes(), 0o644)
    }) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return exit::RUNTIME;
    }
    eprintln!(
        "wrote {}\n\nhint: edit the project, droplet and ci tables, then run `alembic check`",
        path.display()
    );
    exit::OK
}
