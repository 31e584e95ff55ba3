//! `Topology -> ArtifactSet`: every file that runs the three planes. Pure and deterministic: no
//! I/O, no clock, no environment; only the `render` command writes.
//!
//! Structured formats go through real serializers (HCL via `hcl-rs`, YAML via `yaml_serde`,
//! plists via `plist`, JSON via `serde_json`). Caddyfile and systemd units have no serializer
//! crate, so they have small typed writers here, verified by the real tools in the tests.

#![warn(unreachable_pub, missing_docs)]

pub mod bootstrap;
pub mod caddy;
pub mod compose;
pub mod github;
pub mod gitignore;
mod hclfmt;
pub mod k8s;
pub mod known;
pub mod launchd;
pub mod launcher;
pub mod manifest;
mod ordered;
pub mod swarm;
pub mod systemd;
pub mod terraform;
pub mod terraform_scale;

use std::collections::BTreeMap;

use alembic_config::{Engine, Plane, Topology};
use serde::Serialize;

/// What kind of file an artifact is (which checker accepts it, which scan rules apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// Terraform (`.tf`).
    Terraform,
    /// The droplet's docker compose file.
    Compose,
    /// The edge's Caddyfile.
    Caddyfile,
    /// A launchd job (macOS host).
    LaunchdPlist,
    /// A systemd unit (Linux host).
    SystemdUnit,
    /// A GitHub Actions workflow.
    Workflow,
    /// The manifest of the rendered set (`infra/MANIFEST.json`).
    Manifest,
    /// A helper script shipped with an artifact (e.g. the host secrets launcher).
    Script,
    /// The managed block of the output root's `.gitignore` (merged into the user's file).
    Gitignore,
    /// cloud-init user-data (`#cloud-config`).
    CloudInit,
    /// Kubernetes manifests (`infra/k8s/*.yaml`).
    Kubernetes,
}

/// One rendered file. `path` is relative to the output root, with `/` separators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// Relative to the output root, `/`-separated.
    pub path: String,
    #[serde(skip)]
    /// The file's content.
    pub bytes: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
    /// The plane the file belongs to.
    pub plane: Plane,
    /// What kind of file it is.
    pub kind: ArtifactKind,
}

impl Artifact {
    /// A file of mode 0644.
    pub fn new(
        path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
        plane: Plane,
        kind: ArtifactKind,
    ) -> Self {
        Artifact {
            path: path.into(),
            bytes: bytes.into(),
            mode: 0o644,
            plane,
            kind,
        }
    }

    /// The content as text (empty when it is not UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }
}

/// Every artifact, keyed by relative path (sorted, so iteration order is stable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactSet {
    /// The artifacts by path.
    pub artifacts: BTreeMap<String, Artifact>,
}

impl ArtifactSet {
    /// Add (or replace) the artifact at its path.
    pub fn insert(&mut self, a: Artifact) {
        self.artifacts.insert(a.path.clone(), a);
    }

    /// The artifact at `path`.
    pub fn get(&self, path: &str) -> Option<&Artifact> {
        self.artifacts.get(path)
    }

    /// Every artifact, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = &Artifact> {
        self.artifacts.values()
    }

    /// The number of artifacts.
    pub fn len(&self) -> usize {
        self.artifacts.len()
    }

    /// No artifacts?
    pub fn is_empty(&self) -> bool {
        self.artifacts.is_empty()
    }
}

/// Render every plane's artifacts and the `.gitignore` block, plus `infra/MANIFEST.json` over
/// them. Every path is in the known set ([`known::is_known`]).
pub fn render(t: &Topology) -> ArtifactSet {
    let mut set = ArtifactSet::default();
    for a in terraform::render(t)
        .into_iter()
        .chain(match t.droplet.scale.engine {
            Engine::Compose => compose::render(t),
            Engine::Swarm => swarm::render(t),
            Engine::Kubernetes => k8s::render(t),
        })
        .chain(caddy::render(t))
        .chain(launchd::render(t))
        .chain(systemd::render(t))
        .chain(github::render(t))
        .chain(std::iter::once(gitignore::render()))
        .chain(bootstrap::render(t))
    {
        set.insert(a);
    }
    let m = manifest::render(&set);
    set.insert(m);
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    // The writer refuses paths outside the known set: every renderable path must be in it.
    #[test]
    fn every_rendered_path_is_in_the_known_set() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for e in std::fs::read_dir(fixtures).expect("fixtures dir") {
            let path = e.expect("dir entry").path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("fixture");
            let Some(t) = alembic_config::load_str("alembic.toml", &text).topology else {
                continue;
            };
            for a in render(&t).iter() {
                assert!(known::is_known(&a.path), "{}: {}", path.display(), a.path);
                seen += 1;
            }
        }
        assert!(
            seen > 20,
            "only {seen} artifacts rendered from the fixtures"
        );
    }
}
