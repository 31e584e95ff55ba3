//! `alembic validate`: parse + validate, every problem at once.

use crate::cli::Global;
use crate::output::Diagnostics;
use crate::view::{CmdResult, Outcome};

pub fn run(g: &Global) -> CmdResult {
    let (_, loaded) = crate::config::open(g.config.as_deref())?;
    let mut view = Diagnostics::new(loaded.diagnostics.clone(), vec![loaded.source.clone()]);
    if let Some(t) = &loaded.topology {
        view.after.push(format!(
            "{}: valid ({} workloads: {} host, {} droplet, {} ci)",
            loaded.source.name,
            t.workloads.len(),
            t.on_plane(alembic_config::Plane::Host).count(),
            t.on_plane(alembic_config::Plane::Droplet).count(),
            t.on_plane(alembic_config::Plane::Ci).count(),
        ));
    }
    Ok(Outcome::new(view.code(), view))
}
