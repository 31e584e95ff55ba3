//! `alembic init`: write a commented starting `alembic.toml` (a generic project: an API with a
//! health path, a worker without a port, a nightly host job, CI) and next to it
//! `alembic.schema.json`, which the template's `#:schema ./alembic.schema.json` line points
//! editors at (taplo / Even Better TOML complete and check the file against it). The embedded
//! default topology (what `alembic topology` shows without a config) is a different file.

use std::path::Path;

use alembic_deploy::facade::{check_output_dir, write_output};
use serde_json::json;

use crate::exit;
use crate::view::{CmdResult, Failure, Human, Outcome, View};

/// The template `init` writes. Every field is commented; lines stay under 100 characters.
pub const TEMPLATE: &str = include_str!("init.toml");
/// The schema file the template's `#:schema` line names, relative to `alembic.toml`.
pub const SCHEMA_FILE: &str = "alembic.schema.json";

pub fn run(dir: &Path, force: bool) -> CmdResult {
    if let Err(e) = check_output_dir(dir) {
        return Err(
            Failure::usage("bad_output_dir", format!("--dir {}: {e}", dir.display()))
                .at(dir.display().to_string())
                .into(),
        );
    }
    let path = dir.join("alembic.toml");
    if std::fs::symlink_metadata(&path).is_ok() && !force {
        return Err(Failure::config(
            "config_exists",
            format!("{} already exists", path.display()),
        )
        .at(path.display().to_string())
        .hint("pass --force to overwrite it")
        .into());
    }
    let schema_path = dir.join(SCHEMA_FILE);
    let schema = alembic_config::schema::schema_json();
    // An existing schema file is the user's until --force: it may be pinned on purpose.
    let schema_exists = std::fs::symlink_metadata(&schema_path).is_ok();
    let write_schema = force || !schema_exists;
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| write_output(&path, TEMPLATE.as_bytes(), 0o644))
        .map_err(|e| (path.clone(), e))
        .and_then(|_| match write_schema {
            true => write_output(&schema_path, schema.as_bytes(), 0o644)
                .map(|_| ())
                .map_err(|e| (schema_path.clone(), e)),
            false => Ok(()),
        });
    if let Err((p, e)) = result {
        return Err(
            Failure::runtime("write_failed", format!("cannot write {}: {e}", p.display()))
                .at(p.display().to_string())
                .into(),
        );
    }
    let schema_kept_differs =
        !write_schema && std::fs::read(&schema_path).map_or(true, |b| b != schema.as_bytes());
    Ok(Outcome::new(
        exit::OK,
        Init {
            config: path.display().to_string(),
            schema: schema_path.display().to_string(),
            schema_written: write_schema,
            schema_kept_differs,
        },
    ))
}

/// What `init` wrote.
struct Init {
    config: String,
    schema: String,
    schema_written: bool,
    schema_kept_differs: bool,
}

impl View for Init {
    fn human(&self, h: &mut Human) {
        if self.schema_kept_differs {
            h.say(format!(
                "note: kept the existing {}; it differs from this alembic's schema (--force rewrites it)",
                self.schema
            ));
        }
        h.say(format!(
            "wrote {} and {}\n\nhint: replace the values marked placeholder, then run `alembic check`",
            self.config, self.schema
        ));
    }

    fn json(&self) -> serde_json::Value {
        let mut written = vec![&self.config];
        if self.schema_written {
            written.push(&self.schema);
        }
        json!({
            "format_version": 1,
            "config": self.config,
            "schema": self.schema,
            "written": written,
            "schema_kept_differs": self.schema_kept_differs,
        })
    }
}
