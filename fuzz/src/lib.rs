//! What every scan fuzz target checks, in one place: any UTF-8 text scanned as one artifact
//! kind by the rules `alembic scan` runs must not panic, every finding must point inside the
//! file, and no finding's message or help may repeat a credential shape.

use alembic_policy::FileKind;

pub fn scan_as(file_name: &str, kind: FileKind, data: &[u8]) {
    // `alembic scan` skips files that are not UTF-8, so only text reaches the rules.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let findings = alembic_policy::scan_text(file_name, text, Some(kind));
    let lines = text.lines().count().max(1) + 1;
    for d in &findings {
        assert!(
            d.line >= 1 && d.line <= lines,
            "finding outside the file: {d:?}"
        );
        for part in [d.message.as_str(), d.help.as_deref().unwrap_or("")] {
            let leaked = alembic_policy::tokens::find_tokens(part);
            assert!(leaked.is_empty(), "finding repeats a secret: {d:?}");
        }
    }
}
