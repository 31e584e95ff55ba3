//! The release bundle: the files a release uploads, their hashes, the secrets it names.

use super::*;

/// The release bundle built from the rendered artifacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bundle {
    /// File name in the release dir -> bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Names of the `.env` variables (sorted, unique).
    pub secrets: Vec<String>,
    pub images: Vec<String>,
    /// The images of `build` workloads for this release (see `images.rs`).
    pub pins: Vec<crate::images::Pin>,
    /// Docker names of the workloads' named volumes, recorded in the ledger entry.
    pub volumes: Vec<String>,
}

impl Bundle {
    /// Pin the images of `build` workloads: the release's compose file is rendered with each
    /// pinned reference in place of `${ALEMBIC_IMAGE_<NAME>:?...}`. The rendered artifact must
    /// be exactly what `compose::render` makes of `t` (it is the same topology), or this refuses.
    pub(crate) fn pin(
        mut self,
        t: &Topology,
        set: &ArtifactSet,
        pins: Vec<crate::images::Pin>,
    ) -> Result<Bundle, DeployError> {
        if pins.is_empty() {
            return Ok(self);
        }
        let plain = alembic_render::compose::render(t);
        let rendered = set.get(alembic_render::compose::PATH).map(|a| &a.bytes);
        if plain.first().map(|a| &a.bytes) != rendered {
            return Err(DeployError::Config(format!(
                "{} is not what this alembic.toml renders: render again before applying",
                alembic_render::compose::PATH
            )));
        }
        let map = crate::images::pin_map(&pins);
        let pinned = alembic_render::compose::render_pinned(t, &map);
        if let Some(a) = pinned.into_iter().next() {
            self.files.insert(COMPOSE.to_owned(), a.bytes);
        }
        self.images.extend(map.into_values());
        self.pins = pins;
        Ok(self)
    }

    pub(crate) fn from_artifacts(t: &Topology, set: &ArtifactSet) -> Result<Bundle, DeployError> {
        let mut files = BTreeMap::new();
        for (path, name) in [
            (alembic_render::compose::PATH, COMPOSE),
            ("infra/caddy/Caddyfile", CADDYFILE),
        ] {
            match set.get(path) {
                Some(a) if !a.bytes.is_empty() => {
                    files.insert(name.to_owned(), a.bytes.clone());
                }
                _ => {
                    return Err(DeployError::Config(format!(
                        "the rendered release lacks {path}: this build cannot deploy the droplet"
                    )))
                }
            }
        }
        let secrets = t.workload_secret_names(Plane::Droplet);
        let mut images = vec![t.droplet.edge_image.to_string()];
        images.extend(
            t.on_plane(Plane::Droplet)
                .filter_map(|w| w.image.as_ref().map(|i| i.to_string())),
        );
        Ok(Bundle {
            files,
            secrets,
            images,
            pins: Vec::new(),
            volumes: alembic_render::compose::workload_volume_names(t),
        })
    }

    /// The volumes' Docker names under the compose project `project` (`-p`), which names
    /// them: one droplet of several runs its own project.
    pub(crate) fn in_project(mut self, t: &Topology, project: &str) -> Bundle {
        let prefix = format!("{}_", t.project.name);
        for v in &mut self.volumes {
            if let Some(name) = v.strip_prefix(&prefix) {
                *v = format!("{project}_{name}");
            }
        }
        self
    }

    /// Artifacts as the plan compares them (files plus the `.env` names).
    pub(crate) fn comparable(&self) -> BTreeMap<String, Vec<u8>> {
        let mut m = self.files.clone();
        m.insert(ENV_NAMES.to_owned(), names_text(&self.secrets).into_bytes());
        m
    }

    pub(crate) fn hashes(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(k, v)| (k.clone(), ledger::sha256_hex(v)))
            .collect()
    }
}

pub(crate) fn names_text(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}
