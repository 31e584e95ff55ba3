//! `render --check`: what differs between the fresh render and the files on disk.

use super::*;

/// How a file on disk differs from the render.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Drift {
    /// The render has it, the disk does not.
    Missing {
        /// The artifact's path, relative to the output root.
        path: String,
        /// A unified diff from nothing to the rendered file.
        diff: String,
    },
    /// Different bytes (a hand edit or a stale render); the diff goes from disk to render.
    Changed {
        /// The artifact's path, relative to the output root.
        path: String,
        /// A unified diff from the disk's file to the rendered one.
        diff: String,
    },
    /// Same bytes, different permission bits.
    Mode {
        /// The artifact's path, relative to the output root.
        path: String,
        /// The file's mode on disk, in octal.
        disk: String,
        /// The mode the render gives it, in octal.
        render: String,
    },
    /// A previous render wrote it, this one would remove it.
    Extra {
        /// The stale file's path, relative to the output root.
        path: String,
        /// A unified diff from the disk's file to nothing.
        diff: String,
    },
}

impl Drift {
    /// The path the difference is about, relative to the output root.
    pub fn path(&self) -> &str {
        match self {
            Drift::Missing { path, .. }
            | Drift::Changed { path, .. }
            | Drift::Mode { path, .. }
            | Drift::Extra { path, .. } => path,
        }
    }

    /// The unified diff, or a one-line note for a mode change.
    pub fn diff(&self) -> String {
        match self {
            Drift::Missing { diff, .. }
            | Drift::Changed { diff, .. }
            | Drift::Extra { diff, .. } => diff.clone(),
            Drift::Mode { path, disk, render } => {
                format!("mode of {path}: {disk} on disk, {render} rendered\n")
            }
        }
    }
}

pub(crate) fn unified(path: &str, old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{old_name}/{path}"), &format!("{new_name}/{path}"))
        .to_string()
}

/// Compare the files under `root` with `set` (and with the previous manifest, for extras).
/// Reads only, and never through a link: a link on the way to an artifact is an error
/// ([`Refused::Symlink`]), so a diff never shows a file outside the root.
pub fn check(root: &Path, set: &ArtifactSet) -> io::Result<Vec<Drift>> {
    let mut out = Vec::new();
    for a in set.iter() {
        let target = known_target(root, &a.path)?;
        let (want, mode) = desired_on_disk(root, a)?;
        let new = String::from_utf8_lossy(&want);
        match regular_or_absent(&target)? {
            Some(m) if m.is_file() => {
                let bytes = read_no_follow(&target)?;
                if bytes != *want {
                    out.push(Drift::Changed {
                        path: a.path.clone(),
                        diff: unified(
                            &a.path,
                            &String::from_utf8_lossy(&bytes),
                            &new,
                            "disk",
                            "render",
                        ),
                    });
                } else if mode_of(&m) != mode {
                    out.push(Drift::Mode {
                        path: a.path.clone(),
                        disk: format!("{:04o}", mode_of(&m)),
                        render: format!("{mode:04o}"),
                    });
                }
            }
            _ => out.push(Drift::Missing {
                path: a.path.clone(),
                diff: unified(&a.path, "", &new, "disk", "render"),
            }),
        }
    }
    for old in previous_paths(root).0 {
        if set.get(&old).is_some() {
            continue;
        }
        let target = known_target(root, &old)?;
        if let Ok(Some(m)) = regular_or_absent(&target) {
            if m.is_file() {
                let bytes = read_no_follow(&target)?;
                out.push(Drift::Extra {
                    diff: unified(&old, &String::from_utf8_lossy(&bytes), "", "disk", "render"),
                    path: old,
                });
            }
        }
    }
    Ok(out)
}

/// True when an interrupted render left a journal or staging under `root`.
pub fn interrupted(root: &Path) -> bool {
    fs::symlink_metadata(root.join(JOURNAL)).is_ok()
        || fs::symlink_metadata(root.join(STAGING)).is_ok()
}
