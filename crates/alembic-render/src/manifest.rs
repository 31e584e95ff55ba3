//! `infra/MANIFEST.json` (being written).

use crate::{Artifact, ArtifactSet};

pub fn render(_set: &ArtifactSet) -> Artifact {
    Artifact::new(
        "infra/MANIFEST.json",
        Vec::new(),
        alembic_config::Plane::Droplet,
        crate::ArtifactKind::Manifest,
    )
}
