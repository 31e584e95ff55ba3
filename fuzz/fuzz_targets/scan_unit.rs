//! Fuzz target `scan_unit`: any text scanned as a systemd unit (`FileKind::Unit`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as("app.service", alembic_policy::FileKind::Unit, data);
});
