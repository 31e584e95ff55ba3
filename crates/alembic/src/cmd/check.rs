//! `alembic check`: validation, every policy over the config, the same artifact rules `scan`
//! runs over the artifacts `render` would write (so a renderer bug that opened a port or inlined
//! a secret is caught), and over the rendered artifacts already on disk next to the config.
//!
//! Also the gate `plan`, `apply` and `rollback` pass first ([`gate`]): the very same findings,
//! with the template's placeholders (CFG007) promoted to errors; any error stops the command
//! before a single terraform, ssh, launchctl or systemctl step.

use alembic_config::{Code, Diagnostic, Loaded, Severity, SourceFile, Topology};
use alembic_policy::ScanContext;

use alembic_config::diag::sort_diagnostics;

use crate::cli::{DiagFormat, Global};
use crate::config::Origin;
use crate::exit;
use crate::output::{Diagnostics, GateRefused};
use crate::view::{CmdResult, Mode, Outcome};

use super::scan::read_text;

pub fn run(g: &Global, format: DiagFormat) -> CmdResult {
    let (origin, loaded) = crate::config::open(g.config.as_deref())?;
    let (diags, sources) = findings(&origin, &loaded);
    let mut view = view_of(diags, sources, format);
    if !view.diags.iter().any(|d| d.is_error()) {
        if let Some(t) = &loaded.topology {
            view.before.push(format!(
                "{}: policy ok ({} workloads, rendered artifacts checked)",
                loaded.source.name,
                t.workloads.len()
            ));
        }
    }
    Ok(Outcome::new(view.code(), view))
}

/// Everything `check` reports for a loaded config, with the sources its views may print (raw:
/// the view redacts the ones it shows): validation, config policy, the rendered artifacts' rules, and the rules over
/// artifacts on disk that differ from the render.
pub(crate) fn findings(origin: &Origin, loaded: &Loaded) -> (Vec<Diagnostic>, Vec<SourceFile>) {
    let mut diags = loaded.diagnostics.clone();
    diags.extend(alembic_policy::check_config(
        &loaded.source,
        loaded.topology.as_ref(),
    ));
    let mut sources = vec![loaded.source.clone()];
    if let Some(t) = &loaded.topology {
        let ctx = ScanContext::of(t);
        let set = alembic_render::render(t);
        let rendered = alembic_policy::scan_artifacts(&set, &ctx);
        // Only files with findings are shown, so only those are kept.
        for a in set
            .iter()
            .filter(|a| rendered.iter().any(|d| d.file == a.path))
        {
            sources.push(SourceFile::new(a.path.clone(), a.text()));
        }
        diags.extend(rendered);
        // Artifacts on disk that differ from what render produces (hand edits, an older
        // render) are judged too; identical ones would only repeat the findings above.
        if let Origin::File(_) = origin {
            let base = origin.base_dir();
            for a in set.iter() {
                let path = base.join(&a.path);
                let Some(text) = read_text(&path) else {
                    continue;
                };
                if text.as_bytes() == a.bytes.as_slice() {
                    continue;
                }
                let name = path.to_string_lossy().replace('\\', "/");
                let name = name.strip_prefix("./").unwrap_or(&name).to_owned();
                let kind = alembic_policy::artifacts::kind_of(a.kind);
                let found = alembic_policy::scan_text_with(&name, &text, Some(kind), &ctx);
                if !found.is_empty() {
                    sources.push(SourceFile::new(name, text));
                    diags.extend(found);
                }
            }
        }
    }
    (diags, sources)
}

/// Codes that are warnings in `check` but stop `plan`, `apply` and `rollback`: a placeholder
/// left from the template would break or endanger the real deploy they are about to run.
const ERRORS_BEFORE_DEPLOY: [Code; 1] = [Code::Cfg007];

/// Load the config and run `check` before `verb` does anything: on any error (CFG007 counts
/// as one here) the outcome is the findings saying that nothing ran, exit 1: for humans on
/// stderr; with `--json` the error envelope (`check_failed`) with the diagnostics document's
/// `diagnostics` and `summary` beside it. On success, the loaded config and its topology.
pub(crate) fn gate(g: &Global, verb: &str) -> Result<(Origin, Loaded, Topology), Outcome> {
    let mode = if g.json { Mode::Json } else { Mode::Human };
    let (origin, mut loaded) = crate::config::open(g.config.as_deref())?;
    let (mut diags, sources) = findings(&origin, &loaded);
    for d in diags
        .iter_mut()
        .filter(|d| ERRORS_BEFORE_DEPLOY.contains(&d.code))
    {
        d.severity = Severity::Error;
    }
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    if errors.is_empty() {
        if let Some(t) = loaded.topology.take() {
            return Ok((origin, loaded, t));
        }
    }
    let mut codes: Vec<&str> = errors.iter().map(|d| d.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    let count = errors.len();
    let message = format!(
        "{verb} refused: `alembic check` found {count} error(s) ({}); nothing was run",
        codes.join(", ")
    );
    let mut diags = view_of(diags, sources, DiagFormat::Human);
    // After the diagnostics for humans; on stderr beside the JSON document too.
    let refusal = format!("error: {message}");
    if mode == Mode::Human {
        diags.after.push(refusal);
        Err(Outcome::new(exit::PROBLEMS, GateRefused { diags, message }))
    } else {
        Err(Outcome::new(exit::PROBLEMS, GateRefused { diags, message }).note(refusal))
    }
}

/// The diagnostics view `check` and `scan` share: sorted, duplicates dropped, and
/// `no findings` said when there are none.
pub(super) fn view_of(
    mut diags: Vec<Diagnostic>,
    sources: Vec<SourceFile>,
    format: DiagFormat,
) -> Diagnostics {
    sort_diagnostics(&mut diags);
    diags.dedup();
    let empty = diags.is_empty();
    let mut view = Diagnostics::new(diags, sources);
    view.sarif = format == DiagFormat::Sarif;
    if empty {
        view.after.push("no findings".to_owned());
    }
    view
}
