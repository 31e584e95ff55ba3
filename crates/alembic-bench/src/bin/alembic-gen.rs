//! `alembic-gen N`: print a valid synthetic `alembic.toml` with N workloads (for `bench/run.sh`
//! and anyone who wants a big config to try).

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let Ok(n) = arg.parse::<usize>() else {
        eprintln!("usage: alembic-gen N   (N = number of workloads)");
        std::process::exit(2);
    };
    print!("{}", alembic_bench::generate(n));
}
