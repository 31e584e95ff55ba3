//! systemd artifacts (being written).

use alembic_config::Topology;

use crate::Artifact;

pub fn render(_t: &Topology) -> Vec<Artifact> {
    Vec::new()
}
