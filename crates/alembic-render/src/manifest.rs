//! `infra/MANIFEST.json`: the generator version and the sha256, mode, plane and kind of every
//! other artifact, sorted by path. `render` uses the previous manifest to know which files it
//! wrote before (so it can remove the ones a new render no longer has), and drift checks compare
//! files on disk against it.
//!
//! Shape: `{"format_version":1,"generator":"alembic <version>","files":[{"path","sha256","mode",
//! "plane","kind"}]}`; `mode` is the octal permission string (`"0644"`, `"0755"`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Artifact, ArtifactKind, ArtifactSet};

/// Where the manifest is rendered, relative to the output root.
pub const PATH: &str = "infra/MANIFEST.json";

/// The generator string written into every manifest.
pub const GENERATOR: &str = concat!("alembic ", env!("CARGO_PKG_VERSION"));

/// The manifest: every rendered file with its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format (1).
    pub format_version: u32,
    /// The alembic that wrote it ([`GENERATOR`]).
    pub generator: String,
    /// Every file, sorted by path.
    pub files: Vec<ManifestEntry>,
}

/// One artifact. `plane` and `kind` are kept as strings when read back, so a manifest written
/// by a newer alembic with a new kind still parses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Relative to the output root.
    pub path: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Unix permission bits, octal.
    pub mode: String,
    /// The plane.
    pub plane: String,
    /// The artifact kind.
    pub kind: String,
}

impl Manifest {
    /// The manifest of `set`.
    pub fn of(set: &ArtifactSet) -> Manifest {
        let files = set
            .iter()
            .filter(|a| a.path != PATH)
            .map(|a| ManifestEntry {
                path: a.path.clone(),
                sha256: sha256_hex(&a.bytes),
                mode: format!("{:04o}", a.mode),
                plane: a.plane.as_str().to_owned(),
                kind: kind_name(a.kind),
            })
            .collect();
        Manifest {
            format_version: 1,
            generator: GENERATOR.to_owned(),
            files,
        }
    }

    /// Parse a manifest read from disk.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.format_version != 1 {
            return Err(format!(
                "format_version {} is not supported (expected 1)",
                m.format_version
            ));
        }
        Ok(m)
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn kind_name(k: ArtifactKind) -> String {
    match serde_json::to_value(k) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("ArtifactKind serialises as a string"),
    }
}

/// The manifest artifact over every other artifact of `set`.
pub fn render(set: &ArtifactSet) -> Artifact {
    let mut bytes = serde_json::to_vec_pretty(&Manifest::of(set))
        .expect("the manifest always serialises to JSON");
    bytes.push(b'\n');
    Artifact::new(
        PATH,
        bytes,
        alembic_config::Plane::Droplet,
        ArtifactKind::Manifest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_every_other_artifact_and_round_trips() {
        let set = crate::render(&alembic_config::default_topology());
        let m = Manifest::parse(&set.get(PATH).expect("manifest rendered").bytes).unwrap();
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        let expected: Vec<&str> = set
            .iter()
            .map(|a| a.path.as_str())
            .filter(|p| *p != PATH)
            .collect();
        assert_eq!(paths, expected);
        for f in &m.files {
            let a = set.get(&f.path).unwrap();
            assert_eq!(f.sha256, sha256_hex(&a.bytes));
            assert_eq!(f.mode, format!("{:04o}", a.mode));
        }
        assert_eq!(m.generator, GENERATOR);
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
