//! Fuzz target `scan_plist`: any text scanned as a launchd plist (`FileKind::Plist`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as("job.plist", alembic_policy::FileKind::Plist, data);
});
