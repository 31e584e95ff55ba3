//! `alembic check`: validation, every policy over the config, the same artifact rules `scan`
//! runs over the artifacts `render` would write (so a renderer bug that opened a port or inlined
//! a secret is caught), and over the rendered artifacts already on disk next to the config.

use alembic_config::SourceFile;
use alembic_policy::ScanContext;

use crate::cli::{DiagFormat, Global};
use crate::exit;

use super::scan::{effective_format, emit, read_text};

pub fn run(g: &Global, format: DiagFormat) -> i32 {
    let format = effective_format(g, format);
    let (origin, loaded) = match crate::config::load(g.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::PROBLEMS;
        }
    };
    let mut diags = loaded.diagnostics.clone();
    diags.extend(alembic_policy::check_config(
        &loaded.source,
        loaded.topology.as_ref(),
    ));
    // Views print source lines: every source they may print is redacted first.
    let mut sources = vec![SourceFile::new(
        loaded.source.name.clone(),
        alembic_policy::redact(&loaded.source.text),
    )];
    if let Some(t) = &loaded.topology {
        let ctx = ScanContext::of(t);
        let set = alembic_render::render(t);
        let rendered = alembic_policy::scan_artifacts(&set, &ctx);
        // Only files with findings are shown, so only those are redacted and kept.
        for a in set
            .iter()
            .filter(|a| rendered.iter().any(|d| d.file == a.path))
        {
            sources.push(SourceFile::new(
                a.path.clone(),
                alembic_policy::redact(a.text()),
            ));
        }
        diags.extend(rendered);
        // Artifacts on disk that differ from what render produces (hand edits, an older
        // render) are judged too; identical ones would only repeat the findings above.
        if let crate::config::Origin::File(_) = origin {
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
                    sources.push(SourceFile::new(name, alembic_policy::redact(&text)));
                    diags.extend(found);
                }
            }
        }
    }
    if format == DiagFormat::Human && !diags.iter().any(|d| d.is_error()) {
        if let Some(t) = &loaded.topology {
            eprintln!(
                "{}: policy ok ({} workloads, rendered artifacts checked)",
                loaded.source.name,
                t.workloads.len()
            );
        }
    }
    emit(diags, &sources, format)
}
