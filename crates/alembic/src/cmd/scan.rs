//! `alembic scan PATH...`: the artifact rules over existing files. Directories are walked
//! (skipping VCS, build and dependency folders, files over 5 MB, binary files, and symlinks
//! that lead outside the scanned tree); each text file gets SEC001 plus the rules of its kind.
//!

use std::path::{Path, PathBuf};

use alembic_config::{Diagnostic, SourceFile};

use crate::cli::DiagFormat;
use crate::view::{CmdResult, Failure, Outcome};

/// Files larger than this are skipped: generated or vendored data, not configuration.
pub const MAX_SCAN_BYTES: u64 = 5 * 1024 * 1024;

/// Directory names never descended into.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    "node_modules",
    ".terraform",
    ".venv",
    "__pycache__",
];

pub fn run(paths: &[PathBuf], format: DiagFormat) -> CmdResult {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(Failure::usage(
                "no_such_path",
                format!("{}: no such file or directory", p.display()),
            )
            .at(p.display().to_string())
            .into());
        }
        collect(p, p, &mut files, &mut notes);
    }
    let mut diags = Vec::new();
    let mut sources = Vec::new();
    // Only the human view prints source lines, so only it needs them (redacted by the workers).
    let human = format == DiagFormat::Human;
    for (name, text, found) in scan_files(&files, human).into_iter().flatten() {
        if !found.is_empty() && human {
            sources.push(SourceFile::new(name, text));
        }
        diags.extend(found);
    }
    let mut view = super::check::view_of(diags, sources, format);
    view.sources_redacted = true;
    view.before.push(format!("scanned {} file(s)", files.len()));
    let mut outcome = Outcome::new(view.code(), view);
    outcome.notes = notes;
    Ok(outcome)
}

/// One file read and scanned: its display name, its text (redacted when it is to be shown)
/// and the findings.
type Scanned = (String, String, Vec<Diagnostic>);

/// Read and scan `f`. When `shown` and something was found, the text comes back redacted
/// ([`alembic_policy::redact`], same length): the human view prints its lines, and redacting
/// here runs on the worker threads instead of after them.
fn scan_one(f: &Path, shown: bool) -> Option<Scanned> {
    let text = read_text(f)?;
    let name = display_name(f);
    let found = alembic_policy::scan_text(&name, &text, None);
    let text = match shown && !found.is_empty() {
        true => alembic_policy::redact(&text),
        false => text,
    };
    Some((name, text, found))
}

/// Every file read and scanned, in the order given. Files are independent, so they are spread
/// over the cores (each thread takes the next unscanned file, which balances one large file
/// against many small ones); a few files are not worth a thread.
fn scan_files(files: &[PathBuf], shown: bool) -> Vec<Option<Scanned>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const FILES_PER_THREAD: usize = 16;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().div_ceil(FILES_PER_THREAD))
        .min(8);
    if threads <= 1 {
        return files.iter().map(|f| scan_one(f, shown)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Scanned>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        done.push((i, scan_one(f, shown)));
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            match w.join() {
                Ok(done) => {
                    for (i, r) in done {
                        out[i] = r;
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    out
}

/// A path as diagnostics name it: as given, with `/` separators.
fn display_name(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    match s.strip_prefix("./") {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => s,
    }
}

/// Files under `p` (or `p` itself), sorted, never leaving `root` through a symlink.
fn collect(root: &Path, p: &Path, out: &mut Vec<PathBuf>, notes: &mut Vec<String>) {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return;
    };
    if meta.file_type().is_symlink() {
        // Follow a symlinked file only when it stays inside the scanned tree; never follow a
        // symlinked directory (loops, and trees that are not the user's).
        let (Ok(target), Ok(base)) = (std::fs::canonicalize(p), std::fs::canonicalize(root)) else {
            return;
        };
        let base = if base.is_file() {
            base.parent().map(Path::to_path_buf).unwrap_or(base)
        } else {
            base
        };
        if target.is_file() && target.starts_with(&base) {
            out.push(p.to_path_buf());
        }
        return;
    }
    if meta.is_file() {
        out.push(p.to_path_buf());
        return;
    }
    if !meta.is_dir() {
        return;
    }
    let Ok(rd) = std::fs::read_dir(p) else {
        notes.push(format!("warning: cannot read directory {}", p.display()));
        return;
    };
    // Sorted by name (entries of one directory differ only in their last component, so this
    // is the path order); the entry's own type comes with the listing, so a file costs no
    // extra stat before it is read.
    let mut entries: Vec<(std::ffi::OsString, std::fs::DirEntry)> = rd
        .filter_map(Result::ok)
        .map(|e| (e.file_name(), e))
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, e) in entries {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_file() => out.push(path),
            Ok(t) if t.is_dir() => {
                let skip = name.to_str().is_some_and(|n| SKIP_DIRS.contains(&n));
                if !skip {
                    collect(root, &path, out, notes);
                }
            }
            // Symlinks (checked against the root) and types the listing did not give.
            _ => collect(root, &path, out, notes),
        }
    }
}

/// The file's text, or `None` for files too large, unreadable, or binary (NUL bytes or not
/// UTF-8).
pub(super) fn read_text(p: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(p).ok()?;
    let len = f.metadata().ok()?.len();
    if len > MAX_SCAN_BYTES {
        return None;
    }
    // Sized from the metadata (`take` hides the file's size from `read_to_end`, which would
    // grow the buffer by doubling); one byte more so reaching the end needs no reallocation.
    let mut bytes = Vec::with_capacity(len as usize + 1);
    f.take(MAX_SCAN_BYTES + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_SCAN_BYTES || memchr::memchr(0, &bytes).is_some() {
        return None;
    }
    String::from_utf8(bytes).ok()
}
