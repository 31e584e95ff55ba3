//! `alembic init`: write a commented starting `alembic.toml` (a generic project: an API with a
//! health path, a worker without a port, a nightly host job, CI) and next to it
//! `alembic.schema.json`, which the template's `#:schema ./alembic.schema.json` line points
//! editors at (taplo / Even Better TOML complete and check the file against it). The embedded
//! default topology (what `alembic topology` shows without a config) is a different file.

use std::path::Path;

use alembic_deploy::fsio;

use crate::exit;

/// The template `init` writes. Every field is commented; lines stay under 100 characters.
pub const TEMPLATE: &str = include_str!("init.toml");
/// The schema file the template's `#:schema` line names, relative to `alembic.toml`.
pub const SCHEMA_FILE: &str = "alembic.schema.json";

pub fn run(dir: &Path, force: bool) -> i32 {
    if let Err(e) = fsio::check_output_dir(dir) {
        eprintln!("error: --dir {}: {e}", dir.display());
        return exit::USAGE;
    }
    let path = dir.join("alembic.toml");
    if std::fs::symlink_metadata(&path).is_ok() && !force {
        eprintln!(
            "error: {} already exists\n\nhint: pass --force to overwrite it",
            path.display()
        );
        return exit::PROBLEMS;
    }
    let schema_path = dir.join(SCHEMA_FILE);
    let schema = alembic_config::schema::schema_json();
    // An existing schema file is the user's until --force: it may be pinned on purpose.
    let schema_exists = std::fs::symlink_metadata(&schema_path).is_ok();
    let write_schema = force || !schema_exists;
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| fsio::write_output(&path, TEMPLATE.as_bytes(), 0o644))
        .map_err(|e| (path.clone(), e))
        .and_then(|_| match write_schema {
            true => fsio::write_output(&schema_path, schema.as_bytes(), 0o644)
                .map(|_| ())
                .map_err(|e| (schema_path.clone(), e)),
            false => Ok(()),
        });
    if let Err((p, e)) = result {
        eprintln!("error: cannot write {}: {e}", p.display());
        return exit::RUNTIME;
    }
    if !write_schema && std::fs::read(&schema_path).map_or(true, |b| b != schema.as_bytes()) {
        eprintln!(
            "note: kept the existing {}; it differs from this alembic's schema (--force rewrites it)",
            schema_path.display()
        );
    }
    eprintln!(
        "wrote {} and {}\n\nhint: replace the values marked placeholder, then run `alembic check`",
        path.display(),
        schema_path.display()
    );
    exit::OK
}
