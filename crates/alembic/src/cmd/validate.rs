//! `alembic validate`: parse + validate, every problem at once.

use crate::cli::Global;
use crate::{exit, output};

pub fn run(g: &Global) -> i32 {
    let (_, loaded) = match crate::config::load(g.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::PROBLEMS;
        }
    };
    if g.json {
        output::print_json(&loaded.diagnostics);
    } else {
        output::print_human(&loaded.diagnostics, &[&loaded.source]);
        if let Some(t) = &loaded.topology {
            eprintln!(
                "{}: valid ({} workloads: {} host, {} droplet, {} ci)",
                loaded.source.name,
                t.workloads.len(),
                t.on_plane(alembic_config::Plane::Host).count(),
                t.on_plane(alembic_config::Plane::Droplet).count(),
                t.on_plane(alembic_config::Plane::Ci).count(),
            );
        }
    }
    if loaded.has_errors() {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}
