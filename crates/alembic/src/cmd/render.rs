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

use alembic_deploy::facade::{
    artifacts_refusal, check_artifacts, recover_artifacts, render_interrupted, write_artifacts,
    Drift, Recovery, WriteReport as Report, JOURNAL, STAGING,
};
use serde_json::json;

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Failure, Human, Outcome, View};

pub fn run(g: &Global, out: Option<&Path>, check: bool) -> CmdResult {
    let (origin, _loaded, topology) = crate::config::topology(g.config.as_deref())?;
    let root: PathBuf = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| origin.base_dir());
    if let Err(e) = alembic_deploy::facade::check_output_dir(&root) {
        return Err(
            Failure::usage("bad_output_dir", format!("--out {}: {e}", root.display()))
                .at(root.display().to_string())
                .into(),
        );
    }
    let set = alembic_render::render(&topology);
    if check {
        run_check(&root, &set)
    } else {
        run_write(&root, &set)
    }
}

fn run_write(root: &Path, set: &alembic_render::ArtifactSet) -> CmdResult {
    let shown = root.display();
    std::fs::create_dir_all(root).map_err(|e| {
        Failure::runtime("write_failed", format!("cannot create {shown}: {e}"))
            .at(shown.to_string())
    })?;
    let note = match recover_artifacts(root) {
        Ok(Recovery::Clean) => None,
        Ok(Recovery::RolledForward(n)) => Some(format!(
            "note: finished an interrupted render in {shown} ({n} file operations)"
        )),
        Ok(Recovery::Discarded) => Some(format!(
            "note: discarded the staging of an interrupted render in {shown}; the previous files were untouched"
        )),
        Ok(Recovery::Ignored(why)) => Some(format!(
            "note: ignored the render journal {} in {shown}: {why}; it was removed, nothing it names was touched",
            JOURNAL,
        )),
        Err(e) if artifacts_refusal(&e).is_some() => return Err(refused(&e)),
        Err(e) => {
            return Err(Failure::runtime(
                "recovery_failed",
                format!("cannot recover the interrupted render in {shown}: {e}"),
            )
            .at(shown.to_string())
            .into())
        }
    };
    let report = match write_artifacts(root, set) {
        Ok(r) => r,
        Err(e) if artifacts_refusal(&e).is_some() => return Err(refused(&e)),
        Err(e) => {
            return Err(Failure::runtime(
                "write_failed",
                format!("render into {shown} failed: {e}"),
            )
            .at(shown.to_string())
            .hint("no file was changed; the previous artifacts are intact")
            .into())
        }
    };
    // Said in both modes: what the manifest or journal named and was not touched.
    let ignored: Vec<String> = report
        .ignored
        .iter()
        .map(|why| format!("note: ignored: {why}"))
        .collect();
    let mut outcome = Outcome::new(
        exit::OK,
        Written {
            report,
            total: set.len(),
            root: shown.to_string(),
        },
    );
    outcome.notes.extend(note);
    outcome.notes.extend(ignored);
    Ok(outcome)
}

/// What a render wrote, left alone and removed.
struct Written {
    report: Report,
    total: usize,
    root: String,
}

impl View for Written {
    fn human(&self, h: &mut Human) {
        let r = &self.report;
        for p in &r.written {
            h.say(format!("  wrote   {p}"));
        }
        for p in &r.removed {
            h.say(format!("  removed {p}"));
        }
        h.say(format!(
            "rendered {} artifacts into {}: {} written, {} unchanged, {} removed",
            self.total,
            self.root,
            r.written.len(),
            r.unchanged.len(),
            r.removed.len()
        ));
    }

    fn json(&self) -> serde_json::Value {
        let r = &self.report;
        json!({
            "format_version": 1,
            "written": r.written,
            "unchanged": r.unchanged,
            "removed": r.removed,
            "ignored": r.ignored,
        })
    }
}

fn run_check(root: &Path, set: &alembic_render::ArtifactSet) -> CmdResult {
    let shown = root.display();
    let note = render_interrupted(root).then(|| {
        format!(
            "warning: an interrupted render left {} or {} in {shown}; `alembic render` finishes or discards it",
            JOURNAL,
            STAGING,
        )
    });
    let drift = match check_artifacts(root, set) {
        Ok(d) => d,
        Err(e) if artifacts_refusal(&e).is_some() => return Err(refused(&e)),
        Err(e) => {
            return Err(Failure::runtime(
                "read_failed",
                format!("cannot read artifacts under {shown}: {e}"),
            )
            .at(shown.to_string())
            .into())
        }
    };
    let code = if drift.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    };
    let mut outcome = Outcome::new(
        code,
        Checked {
            drift,
            total: set.len(),
            root: shown.to_string(),
        },
    );
    outcome.notes.extend(note);
    Ok(outcome)
}

/// Where the files on disk differ from a fresh render.
struct Checked {
    drift: Vec<Drift>,
    total: usize,
    root: String,
}

impl View for Checked {
    fn human(&self, h: &mut Human) {
        for d in &self.drift {
            h.out.push_str(&d.diff());
        }
        if self.drift.is_empty() {
            h.say(format!(
                "{} artifacts in {} match the render",
                self.total, self.root
            ));
            return;
        }
        for d in &self.drift {
            let what = match d {
                Drift::Missing { .. } => "missing",
                Drift::Changed { .. } => "differs",
                Drift::Mode { .. } => "mode   ",
                Drift::Extra { .. } => "extra  ",
            };
            h.say(format!("  {what} {}", d.path()));
        }
        h.say(format!(
            "{} of {} artifacts in {} differ from the render\nhint: run `alembic render` to rewrite them",
            self.drift.len(),
            self.total,
            self.root
        ));
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "format_version": 1,
            "in_sync": self.drift.is_empty(),
            "drift": self.drift,
        })
    }
}

/// The tree under the root is not what alembic left there (a link, a device where a file goes).
fn refused(e: &std::io::Error) -> Outcome {
    Failure::refused("refused_path", e.to_string())
        .hint(
            "nothing was written or removed; replace it with a plain directory or file (or \
             remove it) and render again",
        )
        .into()
}
