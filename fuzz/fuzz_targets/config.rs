//! Fuzz target `config`: any bytes -> `load_bytes` (parse + validate) -> when a topology comes
//! out, `render` it. Neither stage may panic, and an accepted topology must render.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = alembic_config::load_bytes("fuzz.toml", data);
    // A topology and an error diagnostic together would mean validation let a bad config through.
    if let Some(t) = &loaded.topology {
        assert!(
            !loaded.has_errors(),
            "topology returned alongside error diagnostics"
        );
        let set = alembic_render::render(t);
        assert!(set.get("infra/MANIFEST.json").is_some());
    } else {
        assert!(
            loaded.has_errors(),
            "no topology and no error diagnostic"
        );
    }
});
