//! divan benchmarks of the pure pipeline stages at 1, 100, 1k and 10k workloads:
//! parse+validate (`load_str`), render, and the whole pipeline from text to artifacts.
//!
//! Inputs are generated once per size, outside the timed region, so only the stage itself is
//! measured. Run with `cargo bench -p alembic-bench`; whole-process timings are in `bench/run.sh`.

use std::hint::black_box;

use alembic_bench::generate;

const SIZES: [usize; 4] = [1, 100, 1_000, 10_000];

fn main() {
    divan::main();
}

/// Text -> Topology with every diagnostic collected.
#[divan::bench(args = SIZES, sample_count = 20)]
fn parse_validate(bencher: divan::Bencher, n: usize) {
    let text = generate(n);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| {
            let loaded = alembic_config::load_str("bench.toml", black_box(&text));
            assert!(loaded.topology.is_some(), "generated config must be valid");
            loaded
        });
}

/// Topology -> ArtifactSet (every renderer plus the manifest).
#[divan::bench(args = SIZES, sample_count = 20)]
fn render(bencher: divan::Bencher, n: usize) {
    let topology = valid(n);
    bencher.bench(|| alembic_render::render(black_box(&topology)));
}

/// Text -> Topology -> ArtifactSet: what `alembic render` does before it writes.
#[divan::bench(args = SIZES, sample_count = 20)]
fn pipeline(bencher: divan::Bencher, n: usize) {
    let text = generate(n);
    bencher.bench(|| {
        let loaded = alembic_config::load_str("bench.toml", black_box(&text));
        let topology = loaded.topology.expect("generated config must be valid");
        alembic_render::render(&topology)
    });
}

/// The embedded default topology through the whole pipeline (the `alembic check` case).
#[divan::bench]
fn default_pipeline() -> alembic_render::ArtifactSet {
    let loaded = alembic_config::load_str("default", black_box(alembic_config::DEFAULT_TOML));
    alembic_render::render(&loaded.topology.expect("default is valid"))
}

fn valid(n: usize) -> alembic_config::Topology {
    alembic_config::load_str("bench.toml", &generate(n))
        .topology
        .expect("generated config must be valid")
}
