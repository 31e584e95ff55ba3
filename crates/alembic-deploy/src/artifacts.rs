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
//!
//! What is under the root is data from a checkout that anyone could have written, so:
//! - only paths of the known artifact set ([`alembic_render::known`]) are ever written or
//!   removed; a manifest or journal entry naming anything else is ignored (and reported);
//! - no symbolic link is followed in any component of a path under the root: each component is
//!   checked with `symlink_metadata` right before the path is used, directories are created one
//!   component at a time, and files are opened with `O_NOFOLLOW`. A link is refused with an
//!   error naming it ([`Refused`], exit 1), before anything is written. (std has no `openat`;
//!   the remaining window between a check and its use only matters against a process racing
//!   the render inside the tree, which could as well write the artifacts itself.)
//! - `.gitignore` is merged into ([`alembic_render::gitignore`]): only its marked block is
//!   alembic's; it is never removed.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use alembic_render::manifest::{Manifest, PATH as MANIFEST_PATH};
use alembic_render::{gitignore, known, Artifact, ArtifactSet};
use serde::{Deserialize, Serialize};

use crate::fsio::sync_dir;

/// Staging directory, relative to the output root.
pub const STAGING: &str = ".alembic-render.staging";
/// Journal file, relative to the output root.
pub const JOURNAL: &str = ".alembic-render.journal";

/// What a render did. Paths are relative to the output root, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Files written (new or changed).
    pub written: Vec<String>,
    /// Files already as rendered, left untouched.
    pub unchanged: Vec<String>,
    /// Files of the previous render this one no longer produces, removed.
    pub removed: Vec<String>,
    /// Entries of the previous manifest that were not acted on, with the reason.
    pub ignored: Vec<String>,
}

/// What [`recover`] found from an interrupted render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was left over.
    Clean,
    /// A committed journal was rolled forward (this many renames and removals).
    RolledForward(usize),
    /// Staging from a render killed before its commit point was discarded.
    Discarded,
    /// A journal naming something alembic never renders (or a staged file that is not a
    /// regular file) was not rolled forward: journal and staging were discarded. The reason.
    Ignored(String),
}

/// Why the writer would not touch a path: the tree under the root is not what alembic left
/// there. Carried inside an [`io::Error`]; see [`refusal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `link` (a component of the path to `path`) is a symbolic link.
    Symlink {
        /// The link, under the root.
        link: PathBuf,
        /// The artifact path it is on the way to, relative to the root.
        path: String,
    },
    /// Something that is neither a regular file nor a directory sits where a file goes.
    NotRegular {
        /// What sits there.
        path: PathBuf,
    },
    /// A path outside the known artifact set.
    Unknown {
        /// The path asked for, relative to the root.
        path: String,
    },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Symlink { link, path } => write!(
                f,
                "{} is a symbolic link (on the way to {path}); alembic never writes or removes \
                 through a link under its output root",
                link.display()
            ),
            Refused::NotRegular { path } => write!(
                f,
                "{} is not a regular file; alembic only replaces files it rendered",
                path.display()
            ),
            Refused::Unknown { path } => {
                write!(f, "{path:?} is not a path of an artifact alembic renders")
            }
        }
    }
}

impl std::error::Error for Refused {}

fn refuse(r: Refused) -> io::Error {
    io::Error::other(r)
}

/// The [`Refused`] inside an error from this module, if that is what it is.
pub fn refusal(e: &io::Error) -> Option<&Refused> {
    e.get_ref()?.downcast_ref::<Refused>()
}

/// Fail with [`Refused::Symlink`] when any component of `root/rel` is a symbolic link. Stops at
/// the first component that does not exist (nothing below it can be a link). The root itself
/// is the user's choice and may be one.
fn no_symlink(root: &Path, rel: &Path) -> io::Result<()> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(Refused::Symlink {
                    link: p,
                    path: rel.to_string_lossy().into_owned(),
                }))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A relative path of the known set, with no link on the way to it.
fn known_target(root: &Path, path: &str) -> io::Result<PathBuf> {
    if !known::is_known(path) {
        return Err(refuse(Refused::Unknown {
            path: path.to_owned(),
        }));
    }
    let rel = safe_relative(path)?;
    no_symlink(root, &rel)?;
    Ok(root.join(rel))
}

/// Open flags that refuse a symbolic link as the last component (`O_NOFOLLOW`); the libc
/// constant is the one portable way to ask std's `open` for it.
#[cfg(unix)]
fn no_follow(o: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    o.custom_flags(libc::O_NOFOLLOW)
}

#[cfg(not(unix))]
fn no_follow(o: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    o
}

fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    no_follow(fs::OpenOptions::new().read(true))
        .open(path)?
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The bookkeeping names at the root must not be links either.
fn no_symlink_at_root(root: &Path, name: &str) -> io::Result<()> {
    no_symlink(root, Path::new(name))
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
pub(crate) fn safe_relative(path: &str) -> io::Result<PathBuf> {
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

/// The paths the previous render wrote that may be removed as stale, from its manifest (empty
/// when there is none, it does not parse or the way to it is a link: then no file is treated
/// as stale, which only ever leaves a file behind), and the entries ignored, with the reason.
/// Only paths of the known artifact set count; merged files (`.gitignore`) are never stale.
pub(crate) fn previous_paths(root: &Path) -> (BTreeSet<String>, Vec<String>) {
    let mut ignored = Vec::new();
    if no_symlink(root, Path::new(MANIFEST_PATH)).is_err() {
        return (BTreeSet::new(), ignored);
    }
    let Ok(bytes) = read_no_follow(&root.join(MANIFEST_PATH)) else {
        return (BTreeSet::new(), ignored);
    };
    let Ok(m) = Manifest::parse(&bytes) else {
        return (BTreeSet::new(), ignored);
    };
    let mut paths = BTreeSet::from([MANIFEST_PATH.to_owned()]);
    for f in m.files {
        if !known::is_known(&f.path) || safe_relative(&f.path).is_err() {
            ignored.push(format!(
                "{MANIFEST_PATH} lists {:?}, which is not an artifact alembic renders",
                f.path
            ));
        } else if !known::is_merged(&f.path) {
            paths.insert(f.path);
        }
    }
    (paths, ignored)
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
    let mut f = no_follow(
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
    )
    .open(path)?;
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

/// Create `root/rel` and its missing ancestors one component at a time, remembering which
/// ones were new. A link or a file in any component fails.
fn create_dirs(root: &Path, rel: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(Refused::Symlink {
                    link: p,
                    path: rel.to_string_lossy().into_owned(),
                }))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", p.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&p)?;
                created.push(p.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The bytes and mode `a` should have on disk: its own, or for a merged file (`.gitignore`)
/// the file on disk with the managed block replaced, keeping the file's mode. Compare files on
/// disk with this, not with `a.bytes`: a user's `.gitignore` lines are not drift.
pub(crate) fn desired_on_disk<'a>(
    root: &Path,
    a: &'a Artifact,
) -> io::Result<(Cow<'a, [u8]>, u32)> {
    if !known::is_merged(&a.path) {
        return Ok((Cow::Borrowed(&a.bytes), a.mode));
    }
    let target = root.join(safe_relative(&a.path)?);
    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_file() => {
            let merged = gitignore::merge(&read_no_follow(&target)?, a.text());
            Ok((Cow::Owned(merged), mode_of(&m)))
        }
        Ok(_) => Ok((Cow::Borrowed(&a.bytes), a.mode)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Cow::Borrowed(&a.bytes), a.mode)),
        Err(e) => Err(e),
    }
}

/// Refuse a node that is neither a regular file nor a directory (a FIFO, a device, a socket)
/// where an artifact goes: alembic never put it there.
fn regular_or_absent(target: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_file() || m.is_dir() => Ok(Some(m)),
        Ok(_) => Err(refuse(Refused::NotRegular {
            path: target.to_path_buf(),
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Name of the empty file that proves a directory is writable. Fixed (not per process), so a
/// probe left by a render killed in that instant is replaced and removed by the next render.
pub const PROBE: &str = ".alembic-render-probe";

/// Prove a directory accepts new files before the commit point (a read-only directory fails
/// here instead of half way through the renames).
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(PROBE);
    // A probe left by a kill (or planted: even a link) is removed, never opened.
    match fs::remove_file(&probe) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    no_follow(fs::OpenOptions::new().write(true).create_new(true))
        .open(&probe)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write into {}: {e}", dir.display()),
            )
        })?;
    fs::remove_file(&probe)
}

/// Stage every changed file of `set` under `root` and check that the swap can happen.
pub fn prepare(root: &Path, set: &ArtifactSet) -> io::Result<Prepared> {
    no_symlink_at_root(root, STAGING)?;
    let staging = root.join(STAGING);
    if fs::symlink_metadata(&staging).is_ok() {
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
    // Every target is checked before anything is created: a link anywhere refuses the whole
    // render with nothing written.
    for a in set.iter() {
        known_target(root, &a.path)?;
    }
    let (previous, ignored) = previous_paths(root);
    let stale: Vec<&String> = previous.iter().filter(|p| set.get(p).is_none()).collect();
    for old in &stale {
        known_target(root, old)?;
    }
    fs::create_dir(staging)?;
    fs::create_dir(staging.join("new"))?;
    let mut journal = Journal {
        format_version: 1,
        writes: Vec::new(),
        removes: Vec::new(),
    };
    let mut report = Report {
        ignored,
        ..Report::default()
    };
    let mut probed = BTreeSet::new();
    for a in set.iter() {
        let target = known_target(root, &a.path)?;
        let rel = safe_relative(&a.path)?;
        let existing = regular_or_absent(&target)?;
        let (bytes, mode) = desired_on_disk(root, a)?;
        if is_current(&target, &bytes, mode) {
            report.unchanged.push(a.path.clone());
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        create_dirs(root, &parent, created_dirs)?;
        let parent = root.join(parent);
        if probed.insert(parent.clone()) {
            probe_writable(&parent)?;
        }
        let replaces = match existing {
            Some(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is a directory; alembic writes a file there",
                        target.display()
                    ),
                ))
            }
            Some(_) => {
                back_up(&target, &staging.join("old").join(&rel))?;
                true
            }
            None => false,
        };
        let staged = staging.join("new").join(&rel);
        fs::create_dir_all(staged.parent().expect("joined path has a parent"))?;
        write_synced(&staged, &bytes, mode)?;
        journal.writes.push(JournalWrite {
            path: a.path.clone(),
            replaces,
        });
        report.written.push(a.path.clone());
    }
    for old in stale {
        let target = known_target(root, old)?;
        let rel = safe_relative(old)?;
        match regular_or_absent(&target)? {
            Some(m) if m.is_file() => {
                let parent = target.parent().unwrap_or(root).to_path_buf();
                if probed.insert(parent.clone()) {
                    probe_writable(&parent)?;
                }
                back_up(&target, &staging.join("old").join(&rel))?;
                journal.removes.push(old.clone());
                report.removed.push(old.clone());
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

mod drift;
mod journal;

#[allow(unused_imports)]
use drift::*;
pub use drift::{check, interrupted, Drift};
pub use journal::recover;
#[allow(unused_imports)]
use journal::*;
