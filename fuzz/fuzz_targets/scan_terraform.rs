//! Fuzz target `scan_terraform`: any text scanned as a terraform file (`FileKind::Terraform`) by the artifact
//! rules `alembic scan` runs. Must never panic; every finding must point inside the file.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `alembic scan` skips files that are not UTF-8, so only text reaches the rules.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let findings =
        alembic_policy::scan_text("main.tf", text, Some(alembic_policy::FileKind::Terraform));
    let lines = text.lines().count().max(1) + 1;
    for d in &findings {
        assert!(
            d.line >= 1 && d.line <= lines,
            "finding outside the file: {d:?}"
        );
    }
    // Redaction must hold: no finding's message or help contains a credential shape itself.
    for d in &findings {
        for part in [d.message.as_str(), d.help.as_deref().unwrap_or("")] {
            let leaked = alembic_policy::tokens::find_tokens(part);
            assert!(leaked.is_empty(), "finding repeats a secret: {d:?}");
        }
    }
});
