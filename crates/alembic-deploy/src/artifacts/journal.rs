//! Finishing or undoing an interrupted render from its journal (never trusting its paths).

use super::*;

pub(crate) enum Step<'a> {
    Write(&'a JournalWrite),
    Remove(&'a str),
}

pub(crate) fn steps(j: &Journal) -> impl Iterator<Item = Step<'_>> {
    j.writes
        .iter()
        .map(Step::Write)
        .chain(j.removes.iter().map(|r| Step::Remove(r)))
}

impl Step<'_> {
    pub(crate) fn path(&self) -> &str {
        match self {
            Step::Write(w) => &w.path,
            Step::Remove(p) => p,
        }
    }

    pub(crate) fn forward(&self, root: &Path) -> io::Result<()> {
        let target = known_target(root, self.path())?;
        let rel = safe_relative(self.path())?;
        match self {
            Step::Write(_) => {
                let staged = root.join(STAGING).join("new").join(&rel);
                create_dirs(root, rel.parent().unwrap_or(Path::new("")), &mut Vec::new())?;
                match fs::rename(&staged, &target) {
                    // Rolled forward before (a kill between rename and journal removal).
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            && fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) =>
                    {
                        Ok(())
                    }
                    r => r,
                }
            }
            Step::Remove(_) => match fs::remove_file(&target) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        }
    }

    pub(crate) fn back(&self, root: &Path) -> io::Result<()> {
        let had_old = match self {
            Step::Write(w) => w.replaces,
            Step::Remove(_) => true,
        };
        let target = known_target(root, self.path())?;
        let rel = safe_relative(self.path())?;
        if had_old {
            fs::rename(root.join(STAGING).join("old").join(&rel), &target)
        } else {
            match fs::remove_file(&target) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        }
    }
}

/// After every step: make the renames durable, drop directories emptied by removals, then
/// delete the journal and the staging.
pub(crate) fn finish(root: &Path, j: &Journal) -> io::Result<()> {
    let mut dirs = BTreeSet::new();
    for step in steps(j) {
        if let Some(parent) = known_target(root, step.path())?.parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    for d in &dirs {
        if fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()) {
            sync_dir(d)?;
        }
    }
    for r in &j.removes {
        // Empty directories a removal left behind, up to (not including) the root.
        let mut d = known_target(root, r)?;
        while let Some(p) = d.parent() {
            if p == root || fs::remove_dir(p).is_err() {
                break;
            }
            d = p.to_path_buf();
        }
    }
    fs::remove_file(root.join(JOURNAL))?;
    sync_dir(root)?;
    fs::remove_dir_all(root.join(STAGING))
}

/// Why a journal must not be rolled forward, if it must not: a path outside the known set, a
/// merged file listed for removal, or a staged file that is not a regular file. A link on the
/// way to any of its paths is an error ([`Refused::Symlink`]).
pub(crate) fn untrusted_journal(root: &Path, j: &Journal) -> io::Result<Option<String>> {
    for step in steps(j) {
        let path = step.path();
        if !known::is_known(path) || safe_relative(path).is_err() {
            return Ok(Some(format!(
                "it names {path:?}, which is not an artifact alembic renders"
            )));
        }
        if matches!(step, Step::Remove(_)) && known::is_merged(path) {
            return Ok(Some(format!(
                "it removes {path:?}, which alembic only merges into"
            )));
        }
        no_symlink(root, &safe_relative(path)?)?;
        if let Step::Write(_) = step {
            let rel = Path::new(STAGING).join("new").join(path);
            no_symlink(root, &rel)?;
            let staged = fs::symlink_metadata(root.join(&rel));
            let target = fs::symlink_metadata(root.join(path));
            let ok = match (staged, target) {
                (Ok(m), _) => m.is_file(),
                // Renamed into place by the run that was killed.
                (Err(_), Ok(t)) => t.is_file(),
                (Err(_), Err(_)) => false,
            };
            if !ok {
                return Ok(Some(format!(
                    "its staged file for {path:?} is missing or not a regular file"
                )));
            }
        }
    }
    Ok(None)
}

pub(crate) fn discard(root: &Path) -> io::Result<()> {
    match fs::remove_file(root.join(JOURNAL)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if fs::symlink_metadata(root.join(STAGING)).is_ok() {
        fs::remove_dir_all(root.join(STAGING))?;
    }
    Ok(())
}

/// Finish or discard an interrupted render under `root` (see the module doc). A journal is
/// data found in the tree: it is rolled forward only when every path in it is a known artifact
/// path with no link on the way, and every staged file is a regular file.
pub fn recover(root: &Path) -> io::Result<Recovery> {
    for name in [JOURNAL, &format!("{JOURNAL}.tmp"), STAGING] {
        no_symlink_at_root(root, name)?;
    }
    let journal_path = root.join(JOURNAL);
    let staging = root.join(STAGING);
    let _ = fs::remove_file(root.join(format!("{JOURNAL}.tmp")));
    match read_no_follow(&journal_path) {
        Ok(bytes) => match serde_json::from_slice::<Journal>(&bytes) {
            Ok(j) if j.format_version == 1 => {
                if let Some(why) = untrusted_journal(root, &j)? {
                    discard(root)?;
                    return Ok(Recovery::Ignored(why));
                }
                let n = j.writes.len() + j.removes.len();
                for step in steps(&j) {
                    step.forward(root)?;
                }
                if fs::symlink_metadata(&staging).is_err() {
                    fs::create_dir(&staging)?;
                }
                finish(root, &j)?;
                Ok(Recovery::RolledForward(n))
            }
            _ => {
                discard(root)?;
                Ok(Recovery::Discarded)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(&staging).is_ok() {
                fs::remove_dir_all(&staging)?;
                Ok(Recovery::Discarded)
            } else {
                Ok(Recovery::Clean)
            }
        }
        Err(e) => Err(e),
    }
}
