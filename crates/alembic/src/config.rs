//! Config discovery and loading: `-c FILE`, else `$ALEMBIC_CONFIG`, else `./alembic.toml`, else
//! the embedded default (said on stderr).

use std::path::{Path, PathBuf};

use alembic_config::{Loaded, Topology, DEFAULT_NAME, DEFAULT_TOML};

use crate::exit;
use crate::output::{Diagnostics, InvalidConfig};
use crate::view::{Failure, Outcome};

/// Where the config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Embedded,
}

impl Origin {
    /// The directory artifacts are rendered into by default: the config's directory.
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Origin::File(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            Origin::Embedded => PathBuf::from("."),
        }
    }
}

/// Pick the config file. Pure: `env` is `$ALEMBIC_CONFIG`, `exists` answers for `./alembic.toml`.
pub fn discover(flag: Option<&Path>, env: Option<&str>, cwd_has_config: bool) -> Origin {
    if let Some(p) = flag {
        return Origin::File(p.to_path_buf());
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return Origin::File(PathBuf::from(e));
    }
    if cwd_has_config {
        return Origin::File(PathBuf::from("alembic.toml"));
    }
    Origin::Embedded
}

/// Discover and load the config; an unreadable file is a [`Failure`] (exit 1) naming it.
pub fn open(flag: Option<&Path>) -> Result<(Origin, Loaded), Failure> {
    let env = std::env::var("ALEMBIC_CONFIG").ok();
    let origin = discover(flag, env.as_deref(), Path::new("alembic.toml").is_file());
    match &origin {
        Origin::File(path) => {
            let name = path.display().to_string();
            let bytes = read_capped(path).map_err(|e| {
                Failure::config("config_unreadable", format!("cannot read {name}: {e}"))
                    .at(name.clone())
                    .hint("name the config with -c FILE or $ALEMBIC_CONFIG, or write one with `alembic init`")
            })?;
            let loaded = alembic_config::load_bytes(&name, &bytes);
            Ok((origin, loaded))
        }
        Origin::Embedded => {
            eprintln!("note: no alembic.toml found (-c, $ALEMBIC_CONFIG, ./alembic.toml); using the embedded default topology");
            Ok((origin, alembic_config::load_str(DEFAULT_NAME, DEFAULT_TOML)))
        }
    }
}

/// Discover and load the config. An unreadable file is an error string (exit 1 or 3 by caller).
pub fn load(flag: Option<&Path>) -> Result<(Origin, Loaded), String> {
    open(flag).map_err(|f| f.message)
}

/// Discover, load and require a valid topology; otherwise the outcome to end the command
/// with (the failure, or the invalid config's diagnostics).
pub fn topology(flag: Option<&Path>) -> Result<(Origin, Loaded, Topology), Outcome> {
    let (origin, mut loaded) = open(flag)?;
    match loaded.topology.take() {
        Some(t) => Ok((origin, loaded, t)),
        None => {
            let d = Diagnostics::new(
                std::mem::take(&mut loaded.diagnostics),
                vec![loaded.source.clone()],
            );
            Err(Outcome::new(exit::PROBLEMS, InvalidConfig(d)))
        }
    }
}

/// Read at most one byte past the size limit, so a huge file is refused without reading it all.
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(alembic_config::parse::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_order() {
        let f = Path::new("x.toml");
        assert_eq!(
            discover(Some(f), Some("y.toml"), true),
            Origin::File("x.toml".into())
        );
        assert_eq!(
            discover(None, Some("y.toml"), true),
            Origin::File("y.toml".into())
        );
        assert_eq!(
            discover(None, Some(""), true),
            Origin::File("alembic.toml".into())
        );
        assert_eq!(discover(None, None, false), Origin::Embedded);
    }
}
