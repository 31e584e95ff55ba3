//! The `alembic` binary: all logic lives in the library so tests can call it.

fn main() {
    std::process::exit(alembic::run(std::env::args_os()));
}
