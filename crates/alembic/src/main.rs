//! The `alembic` binary: all logic lives in the library so tests can call it.

fn main() {
    std::process::exit(alembic::run(std::env::args_os()));
}

/// mimalloc instead of the system allocator: parsing (YAML, HCL, TOML) allocates a node per
/// value, and with it `scan` runs about a sixth fewer instructions (bench/README.md). Built
/// without transparent huge pages (`no_thp`): with them a short run's resident memory doubled
/// (a 2 MB page committed per arena) for no measurable time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
