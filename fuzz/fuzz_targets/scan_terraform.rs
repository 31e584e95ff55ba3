//! Fuzz target `scan_terraform`: any text scanned as a terraform file (`FileKind::Terraform`) by the
//! artifact rules `alembic scan` runs (checks in `fuzz/src/lib.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alembic_fuzz::scan_as("main.tf", alembic_policy::FileKind::Terraform, data);
});
