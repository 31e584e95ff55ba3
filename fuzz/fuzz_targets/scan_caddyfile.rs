//! Fuzz target `scan_caddyfile`: any text scanned as a Caddyfile (`FileKind::Caddyfile`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as("Caddyfile", alembic_policy::FileKind::Caddyfile, data);
});
