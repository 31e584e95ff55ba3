//! The `alembic` binary: all logic lives in the library so tests can call it.

fn main() {
    std::process::exit(alembic::run(std::env::args_os()));
}

/// mimalloc instead of the system allocator: parsing (YAML, HCL, TOML) allocates a node per
/// value, and with it `scan` runs about a sixth fewer instructions and takes a third of the
/// page faults (measured in bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
