//! Writing an [`ArtifactSet`] under an output root so that a failure or a kill never leaves a
//! mix of the old and the new set, and drift checks of files on disk against a render.
//!
//! Protocol (one render at a time per output root):
//! 1. **prepare**: every file that changes is written into `<root>/.alembic-render.staging/new/`
//!    with its mode and fsynced; every file about to be replaced or removed is hard-linked (or
//!    copied) into `staging/old/` so it can be restored; target directories are created and
//!    probed for writability, and a directory or a file in the way fails here, before anything
//!    visible has changed (the staging dir is removed again).
//! 2. **commit**: a journal listing the renames and removals is written to a temp file, fsynced
//!    and renamed to `<root>/.alembic-render.journal`. Its existence is the commit point.
//! 3. **apply**: rename each staged file into place, remove stale files, fsync the directories,
//!    then delete the journal and the staging dir. If a step fails, the steps already done are
//!    undone from `staging/old/` and the error is returned: the old set stays whole.
//!
//! A run killed after the commit point leaves the journal: the next [`recover`] rolls it
//! forward. A journal that does not parse (cannot normally happen, it is renamed into place
//! whole) or staging without a journal means the kill came before the commit point: the staging
//! is discarded and the old set is what is on disk.
//!
//! Stale files are the ones the previous render wrote (listed in its `infra/MANIFEST.json`) that
//! the new set lacks; nothing else under the root is ever touched.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use alembic_render::manifest::{Manifest, PATH as MANIFEST_PATH};
use alembic_render::ArtifactSet;
use serde::{Deserialize, Serialize};

use crate::fsio::sync_dir;

/// Staging directory, relative to the output root.
pub const STAGING: &str = ".alembic-render.staging";
/// Journal file, relative to the output root.
pub const JOURNAL: &str = ".alembic-render.journal";

/// What a render did. Paths are relative to the output root, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

/// What [`recover`] found from an interrupted render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was left over.
    Clean,
    /// A committed journal was rolled forward (this many renames and removals).
    RolledForward(usize),
    /// Staging from a render killed before its commit point was discarded.
    Discarded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Journal {
    format_version: u32,
    writes: Vec<JournalWrite>,
    removes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct JournalWrite {
    path: String,
    /// Whether a previous file was backed up into `staging/old/` (so a rollback restores it).
    replaces: bool,
}

/// A set staged under the root, not yet visible.
#[derive(Debug)]
pub struct Prepared {
    root: PathBuf,
    journal: Journal,
    report: Report,
    created_dirs: Vec<PathBuf>,
}

/// A staged set whose journal is on disk: it will be applied, now or by the next [`recover`].
#[derive(Debug)]
pub struct Committed {
    root: PathBuf,
    journal: Journal,
    report: Report,
}

/// Check that a relative path from a manifest or an artifact stays under the root.
pub fn safe_relative(path: &str) -> io::Result<PathBuf> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.starts_with(".alembic-render")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path:?} is not a relative path under the output root"),
        ))
    }
}

/// The paths the previous render wrote, from its manifest (empty when there is none or it does
/// not parse: then no file is treated as stale, which only ever leaves a file behind).
pub fn previous_paths(root: &Path) -> BTreeSet<String> {
    let Ok(bytes) = fs::read(root.join(MANIFEST_PATH)) else {
        return BTreeSet::new();
    };
    let Ok(m) = Manifest::parse(&bytes) else {
        return BTreeSet::new();
    };
    m.files
        .into_iter()
        .map(|f| f.path)
        .filter(|p| safe_relative(p).is_ok())
        .chain(std::iter::once(MANIFEST_PATH.to_owned()))
        .collect()
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_: &fs::Metadata) -> u32 {
    0o644
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// True when `path` is a regular file with exactly these bytes and mode.
fn is_current(path: &Path, bytes: &[u8], mode: u32) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == bytes.len() as u64 && mode_of(&m) == mode => {
            fs::read(path).is_ok_and(|b| b == bytes)
        }
        _ => false,
    }
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    set_mode(path, mode)?;
    f.sync_all()
}

/// Keep the previous version of `target` in `backup`: a hard link (no copy, same inode), or a
/// copy where the file system has no hard links.
fn back_up(target: &Path, backup: &Path) -> io::Result<()> {
    if let Some(d) = backup.parent() {
        fs::create_dir_all(d)?;
    }
    fs::hard_link(target, backup).or_else(|_| fs::copy(target, backup).map(|_| ()))
}

/// Create `dir` and its missing ancestors, remembering which ones were new.
fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut d = dir;
    while fs::symlink_metadata(d).is_err() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    for m in missing.into_iter().rev() {
        fs::create_dir(&m)?;
        created.push(m);
    }
    if !fs::metadata(dir)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        ));
    }
    Ok(())
}

/// Name of the empty file that proves a directory is writable. Fixed (not per process), so a
/// probe left by a render killed in that instant is replaced and removed by the next render.
pub const PROBE: &str = ".alembic-render-probe";

/// Prove a directory accepts new files before the commit point (a read-only directory fails
/// here instead of half way through the renames).
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(PROBE);
    fs::File::create(&probe).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write into {}: {e}", dir.display()),
        )
    })?;
    fs::remove_file(&probe)
}

/// Stage every changed file of `set` under `root` and check that the swap can happen.
pub fn prepare(root: &Path, set: &ArtifactSet) -> io::Result<Prepared> {
    let staging = root.join(STAGING);
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    let mut created_dirs = Vec::new();
    let result = stage(root, set, &staging, &mut created_dirs);
    match result {
        Ok((journal, report)) => Ok(Prepared {
            root: root.to_path_buf(),
            journal,
            report,
            created_dirs,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            remove_empty_dirs(&created_dirs);
            Err(e)
        }
    }
}

fn stage(
    root: &Path,
    set: &ArtifactSet,
    staging: &Path,
    created_dirs: &mut Vec<PathBuf>,
) -> io::Result<(Journal, Report)> {
    fs::create_dir_all(staging.join("new"))?;
    let mut journal = Journal {
        format_version: 1,
        writes: Vec::new(),
        removes: Vec::new(),
    };
    let mut report = Report::default();
    let mut probed = BTreeSet::new();
    for a in set.iter() {
        let rel = safe_relative(&a.path)?;
        let target = root.join(&rel);
        if is_current(&target, &a.bytes, a.mode) {
            report.unchanged.push(a.path.clone());
            continue;
        }
        let parent = target.parent().unwrap_or(root).to_path_buf();
        create_dirs(&parent, created_dirs)?;
        if probed.insert(parent.clone()) {
            probe_writable(&parent)?;
        }
        let replaces = match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is a directory; alembic writes a file there",
                        target.display()
                    ),
                ))
            }
            Ok(_) => {
                back_up(&target, &staging.join("old").join(&rel))?;
                true
            }
            Err(_) => false,
        };
        let staged = staging.join("new").join(&rel);
        fs::create_dir_all(staged.parent().expect("joined path has a parent"))?;
        write_synced(&staged, &a.bytes, a.mode)?;
        journal.writes.push(JournalWrite {
            path: a.path.clone(),
            replaces,
        });
        report.written.push(a.path.clone());
    }
    for old in previous_paths(root) {
        if set.get(&old).is_some() {
            continue;
        }
        let rel = safe_relative(&old)?;
        let target = root.join(&rel);
        match fs::symlink_metadata(&target) {
            Ok(m) if !m.is_dir() => {
                let parent = target.parent().unwrap_or(root).to_path_buf();
                if probed.insert(parent.clone()) {
                    probe_writable(&parent)?;
                }
                back_up(&target, &staging.join("old").join(&rel))?;
                journal.removes.push(old.clone());
                report.removed.push(old);
            }
            _ => {}
        }
    }
    sync_tree(staging)?;
    Ok((journal, report))
}

/// fsync every directory under `dir` (files were synced as they were written).
fn sync_tree(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_tree(&e.path())?;
        }
    }
    sync_dir(dir)
}

fn remove_empty_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

impl Prepared {
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Write the journal: from here on the new set wins, even across a kill.
    pub fn commit(self) -> io::Result<Committed> {
        let path = self.root.join(JOURNAL);
        let tmp = self.root.join(format!("{JOURNAL}.tmp"));
        let bytes = serde_json::to_vec(&self.journal).expect("journal serialises");
        let result = write_synced(&tmp, &bytes, 0o644)
            .and_then(|()| fs::rename(&tmp, &path))
            .and_then(|()| sync_dir(&self.root));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(&path);
            let _ = fs::remove_dir_all(self.root.join(STAGING));
            remove_empty_dirs(&self.created_dirs);
            return Err(e);
        }
        Ok(Committed {
            root: self.root,
            journal: self.journal,
            report: self.report,
        })
    }

    /// Give up before the commit point: remove the staging; the old set was never touched.
    pub fn abandon(self) -> io::Result<()> {
        fs::remove_dir_all(self.root.join(STAGING))?;
        remove_empty_dirs(&self.created_dirs);
        Ok(())
    }
}

impl Committed {
    /// Move the staged files into place and remove stale ones; on failure undo what was done.
    pub fn apply(self) -> io::Result<Report> {
        let mut done = 0;
        let result = (|| {
            for step in steps(&self.journal) {
                step.forward(&self.root)?;
                done += 1;
            }
            Ok::<(), io::Error>(())
        })();
        if let Err(e) = result {
            for step in steps(&self.journal)
                .take(done + 1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                let _ = step.back(&self.root);
            }
            let _ = fs::remove_file(self.root.join(JOURNAL));
            let _ = fs::remove_dir_all(self.root.join(STAGING));
            return Err(e);
        }
        finish(&self.root, &self.journal)?;
        Ok(self.report)
    }
}

enum Step<'a> {
    Write(&'a JournalWrite),
    Remove(&'a str),
}

fn steps(j: &Journal) -> impl Iterator<Item = Step<'_>> {
    j.writes
        .iter()
        .map(Step::Write)
        .chain(j.removes.iter().map(|r| Step::Remove(r)))
}

impl Step<'_> {
    fn forward(&self, root: &Path) -> io::Result<()> {
        match self {
            Step::Write(w) => {
                let rel = safe_relative(&w.path)?;
                let staged = root.join(STAGING).join("new").join(&rel);
                let target = root.join(&rel);
                if let Some(d) = target.parent() {
                    fs::create_dir_all(d)?;
                }
                match fs::rename(&staged, &target) {
                    // Rolled forward before (a kill between rename and journal removal).
                    Err(e) if e.kind() == io::ErrorKind::NotFound && target.is_file() => Ok(()),
                    r => r,
                }
            }
            Step::Remove(p) => match fs::remove_file(root.join(safe_relative(p)?)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        }
    }

    fn back(&self, root: &Path) -> io::Result<()> {
        let (path, had_old) = match self {
            Step::Write(w) => (w.path.as_str(), w.replaces),
            Step::Remove(p) => (*p, true),
        };
        let rel = safe_relative(path)?;
        let target = root.join(&rel);
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
fn finish(root: &Path, j: &Journal) -> io::Result<()> {
    let mut dirs = BTreeSet::new();
    for step in steps(j) {
        let path = match step {
            Step::Write(w) => w.path.as_str(),
            Step::Remove(p) => p,
        };
        if let Some(parent) = root.join(safe_relative(path)?).parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    for d in &dirs {
        if d.is_dir() {
            sync_dir(d)?;
        }
    }
    for r in &j.removes {
        // Empty directories a removal left behind, up to (not including) the root.
        let mut d = root.join(safe_relative(r)?);
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

/// Finish or discard an interrupted render under `root` (see the module doc).
pub fn recover(root: &Path) -> io::Result<Recovery> {
    let journal_path = root.join(JOURNAL);
    let staging = root.join(STAGING);
    let _ = fs::remove_file(root.join(format!("{JOURNAL}.tmp")));
    match fs::read(&journal_path) {
        Ok(bytes) => match serde_json::from_slice::<Journal>(&bytes) {
            Ok(j) if j.format_version == 1 => {
                let n = j.writes.len() + j.removes.len();
                for step in steps(&j) {
                    step.forward(root)?;
                }
                if !staging.exists() {
                    fs::create_dir_all(&staging)?;
                }
                finish(root, &j)?;
                Ok(Recovery::RolledForward(n))
            }
            _ => {
                fs::remove_file(&journal_path)?;
                if staging.exists() {
                    fs::remove_dir_all(&staging)?;
                }
                Ok(Recovery::Discarded)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if staging.exists() {
                fs::remove_dir_all(&staging)?;
                Ok(Recovery::Discarded)
            } else {
                Ok(Recovery::Clean)
            }
        }
        Err(e) => Err(e),
    }
}

/// Write `set` under `root` atomically (prepare, commit, apply). Nothing changes when every
/// file is already current.
pub fn write(root: &Path, set: &ArtifactSet) -> io::Result<Report> {
    fs::create_dir_all(root)?;
    let prepared = prepare(root, set)?;
    if prepared.journal.writes.is_empty() && prepared.journal.removes.is_empty() {
        let report = prepared.report.clone();
        prepared.abandon()?;
        return Ok(report);
    }
    prepared.commit()?.apply()
}

/// How a file on disk differs from the render.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Drift {
    /// The render has it, the disk does not.
    Missing { path: String, diff: String },
    /// Different bytes (a hand edit or a stale render); the diff goes from disk to render.
    Changed { path: String, diff: String },
    /// Same bytes, different permission bits.
    Mode {
        path: String,
        disk: String,
        render: String,
    },
    /// A previous render wrote it, this one would remove it.
    Extra { path: String, diff: String },
}

impl Drift {
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

fn unified(path: &str, old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{old_name}/{path}"), &format!("{new_name}/{path}"))
        .to_string()
}

/// Compare the files under `root` with `set` (and with the previous manifest, for extras).
/// Reads only.
pub fn check(root: &Path, set: &ArtifactSet) -> io::Result<Vec<Drift>> {
    let mut out = Vec::new();
    for a in set.iter() {
        let target = root.join(safe_relative(&a.path)?);
        let new = String::from_utf8_lossy(&a.bytes);
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_file() => {
                let bytes = fs::read(&target)?;
                if bytes != a.bytes {
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
                } else if mode_of(&m) != a.mode {
                    out.push(Drift::Mode {
                        path: a.path.clone(),
                        disk: format!("{:04o}", mode_of(&m)),
                        render: format!("{:04o}", a.mode),
                    });
                }
            }
            _ => out.push(Drift::Missing {
                path: a.path.clone(),
                diff: unified(&a.path, "", &new, "disk", "render"),
            }),
        }
    }
    for old in previous_paths(root) {
        if set.get(&old).is_some() {
            continue;
        }
        let target = root.join(safe_relative(&old)?);
        if let Ok(bytes) = fs::read(&target) {
            out.push(Drift::Extra {
                diff: unified(&old, &String::from_utf8_lossy(&bytes), "", "disk", "render"),
                path: old,
            });
        }
    }
    Ok(out)
}

/// True when an interrupted render left a journal or staging under `root`.
pub fn interrupted(root: &Path) -> bool {
    root.join(JOURNAL).exists() || root.join(STAGING).exists()
}
