//! `Topology -> ArtifactSet`: every file that runs the three planes. Pure and deterministic: no
//! I/O, no clock, no environment; only the `render` command writes.
//!
//! Structured formats go through real serializers (HCL via `hcl-rs`, YAML via `yaml_serde`,
//! plists via `plist`, JSON via `serde_json`). Caddyfile and systemd units have no serializer
//! crate, so they have small typed writers here, verified by the real tools in the tests.

pub mod caddy;
pub mod compose;
pub mod github;
mod hclfmt;
pub mod launchd;
pub mod launcher;
pub mod manifest;
pub mod systemd;
pub mod terraform;

use std::collections::BTreeMap;

use alembic_config::{Plane, Topology};
use serde::Serialize;

/// What kind of file an artifact is (which checker accepts it, which scan rules apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    Terraform,
    Compose,
    Caddyfile,
    LaunchdPlist,
    SystemdUnit,
    Workflow,
    Manifest,
    /// A helper script shipped with an artifact (e.g. the host secrets launcher).
    Script,
}

/// One rendered file. `path` is relative to the output root, with `/` separators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub path: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
    pub plane: Plane,
    pub kind: ArtifactKind,
}

impl Artifact {
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

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }
}

/// Every artifact, keyed by relative path (sorted, so iteration order is stable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactSet {
    pub artifacts: BTreeMap<String, Artifact>,
}

impl ArtifactSet {
    pub fn insert(&mut self, a: Artifact) {
        self.artifacts.insert(a.path.clone(), a);
    }

    pub fn get(&self, path: &str) -> Option<&Artifact> {
        self.artifacts.get(path)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Artifact> {
        self.artifacts.values()
    }

    pub fn len(&self) -> usize {
        self.artifacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.artifacts.is_empty()
    }
}

/// Render every plane's artifacts, plus `infra/MANIFEST.json` over them.
pub fn render(t: &Topology) -> ArtifactSet {
    let mut set = ArtifactSet::default();
    for a in terraform::render(t)
        .into_iter()
        .chain(compose::render(t))
        .chain(caddy::render(t))
        .chain(launchd::render(t))
        .chain(systemd::render(t))
        .chain(github::render(t))
    {
        set.insert(a);
    }
    let m = manifest::render(&set);
    set.insert(m);
    set
}
