//! Fuzz target `scan_text`: any text scanned as any text file (`FileKind::Text`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as("notes.txt", alembic_policy::FileKind::Text, data);
});
