//! Fuzz target `scan_compose`: any text scanned as a compose file (`FileKind::Compose`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as("compose.yaml", alembic_policy::FileKind::Compose, data);
});
