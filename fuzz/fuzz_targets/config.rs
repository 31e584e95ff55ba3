//! Fuzz target `config`: any bytes -> `load_bytes` (parse + validate) -> the config policy ->
//! when a topology comes out, `render` it and scan the rendered artifacts: everything
//! `alembic check` does in-process. No stage may panic, and an accepted topology must render.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = alembic_config::load_bytes("fuzz.toml", data);
    let _ = alembic_policy::check_config(&loaded.source, loaded.topology.as_ref());
    // A topology and an error diagnostic together would mean validation let a bad config through.
    if let Some(t) = &loaded.topology {
        assert!(
            !loaded.has_errors(),
            "topology returned alongside error diagnostics"
        );
        let set = alembic_render::render(t);
        assert!(set.get("infra/MANIFEST.json").is_some());
        let _ = alembic_policy::scan_artifacts(&set, &alembic_policy::ScanContext::default());
    } else {
        assert!(loaded.has_errors(), "no topology and no error diagnostic");
    }
});
