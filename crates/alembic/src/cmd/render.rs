//! `alembic render [--out DIR] [--check]`: write every artifact atomically under the output root
//! (default: the config's directory), or with `--check` write nothing and exit 1 with a unified
//! diff for every file that differs from a fresh render.
//!
//! stdout is data (the diff, or the JSON report with `--json`); the summary is talk, on stderr.
//!
//! The tree under the output root is data too (a checkout anyone could have written): a
//! symbolic link on the way to an artifact is refused with exit 1 and nothing written; a
//! manifest or journal entry outside the known artifact set is ignored with a note.

use std::path::{Path, PathBuf};

use alembic_deploy::artifacts::{self, Recovery};
use serde_json::json;

use crate::cli::Global;
use crate::{exit, output};

pub fn run(g: &Global, out: Option<&Path>, check: bool) -> i32 {
    let (origin, _loaded, topology) =
        match crate::config::load_topology(g.config.as_deref(), g.json) {
            Ok(l) => l,
            Err(code) => return code,
        };
    let root: PathBuf = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| origin.base_dir());
    if let Err(e) = alembic_deploy::fsio::check_output_dir(&root) {
        eprintln!("error: --out {}: {e}", root.display());
        return exit::USAGE;
    }
    let set = alembic_render::render(&topology);
    if check {
        run_check(g, &root, &set)
    } else {
        run_write(g, &root, &set)
    }
}

fn run_write(g: &Global, root: &Path, set: &alembic_render::ArtifactSet) -> i32 {
    if let Err(e) = std::fs::create_dir_all(root) {
        eprintln!("error: cannot create {}: {e}", root.display());
        return exit::RUNTIME;
    }
    match artifacts::recover(root) {
        Ok(Recovery::Clean) => {}
        Ok(Recovery::RolledForward(n)) => eprintln!(
            "note: finished an interrupted render in {} ({n} file operations)",
            root.display()
        ),
        Ok(Recovery::Discarded) => eprintln!(
            "note: discarded the staging of an interrupted render in {}; the previous files were untouched",
            root.display()
        ),
        Ok(Recovery::Ignored(why)) => eprintln!(
            "note: ignored the render journal {} in {}: {why}; it was removed, nothing it names was touched",
            artifacts::JOURNAL,
            root.display()
        ),
        Err(e) if artifacts::refusal(&e).is_some() => return refused(&e),
        Err(e) => {
            eprintln!(
                "error: cannot recover the interrupted render in {}: {e}",
                root.display()
            );
            return exit::RUNTIME;
        }
    }
    let report = match artifacts::write(root, set) {
        Ok(r) => r,
        Err(e) if artifacts::refusal(&e).is_some() => return refused(&e),
        Err(e) => {
            eprintln!(
                "error: render into {} failed: {e}\nhint: no file was changed; the previous artifacts are intact",
                root.display()
            );
            return exit::RUNTIME;
        }
    };
    if g.json {
        output::print_value(&json!({
            "format_version": 1,
            "written": report.written,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "ignored": report.ignored,
        }));
    }
    for why in &report.ignored {
        eprintln!("note: ignored: {why}");
    }
    for p in &report.written {
        eprintln!("  wrote   {p}");
    }
    for p in &report.removed {
        eprintln!("  removed {p}");
    }
    eprintln!(
        "rendered {} artifacts into {}: {} written, {} unchanged, {} removed",
        set.len(),
        root.display(),
        report.written.len(),
        report.unchanged.len(),
        report.removed.len()
    );
    exit::OK
}

fn run_check(g: &Global, root: &Path, set: &alembic_render::ArtifactSet) -> i32 {
    if artifacts::interrupted(root) {
        eprintln!(
            "warning: an interrupted render left {} or {} in {}; `alembic render` finishes or discards it",
            artifacts::JOURNAL,
            artifacts::STAGING,
            root.display()
        );
    }
    let drift = match artifacts::check(root, set) {
        Ok(d) => d,
        Err(e) if artifacts::refusal(&e).is_some() => return refused(&e),
        Err(e) => {
            eprintln!("error: cannot read artifacts under {}: {e}", root.display());
            return exit::RUNTIME;
        }
    };
    if g.json {
        output::print_value(&json!({
            "format_version": 1,
            "in_sync": drift.is_empty(),
            "drift": drift,
        }));
    } else {
        for d in &drift {
            print!("{}", d.diff());
        }
    }
    if drift.is_empty() {
        eprintln!(
            "{} artifacts in {} match the render",
            set.len(),
            root.display()
        );
        exit::OK
    } else {
        for d in &drift {
            let what = match d {
                artifacts::Drift::Missing { .. } => "missing",
                artifacts::Drift::Changed { .. } => "differs",
                artifacts::Drift::Mode { .. } => "mode   ",
                artifacts::Drift::Extra { .. } => "extra  ",
            };
            eprintln!("  {what} {}", d.path());
        }
        eprintln!(
            "{} of {} artifacts in {} differ from the render\nhint: run `alembic render` to rewrite them",
            drift.len(),
            set.len(),
            root.display()
        );
        exit::PROBLEMS
    }
}

/// The tree under the root is not what alembic left there (a link, a device where a file goes).
fn refused(e: &std::io::Error) -> i32 {
    eprintln!(
        "error: {e}\nhint: nothing was written or removed; replace it with a plain directory or \
         file (or remove it) and render again"
    );
    exit::PROBLEMS
}
