//! Fuzz target `scan_workflow`: any text scanned as a GitHub workflow (`FileKind::Workflow`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as(
        ".github/workflows/ci.yml",
        alembic_policy::FileKind::Workflow,
        data,
    );
});
