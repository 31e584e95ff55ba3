//! divan benchmarks of the pure pipeline stages at 1, 100, 1k and 10k workloads:
//! parse+validate (`load_str`), check (policy over the config, and the artifact rules over the
//! rendered set), render, and the whole `alembic check` pipeline in-process.
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

/// Policy over the config: SEC001 over the text plus every topology rule.
#[divan::bench(args = SIZES, sample_count = 20)]
fn check_config(bencher: divan::Bencher, n: usize) {
    let loaded = alembic_config::load_str("bench.toml", &generate(n));
    let topology = loaded.topology.as_ref().expect("valid");
    bencher.bench(|| alembic_policy::check_config(black_box(&loaded.source), Some(topology)));
}

/// The artifact rules (compose, Terraform, workflows, secret shapes) over a rendered set.
#[divan::bench(args = SIZES, sample_count = 20)]
fn check_artifacts(bencher: divan::Bencher, n: usize) {
    let set = alembic_render::render(&valid(n));
    let ctx = alembic_policy::ScanContext::default();
    bencher.bench(|| alembic_policy::scan_artifacts(black_box(&set), &ctx));
}

/// Text -> Topology -> policy -> ArtifactSet -> artifact rules: `alembic check` in-process.
#[divan::bench(args = SIZES, sample_count = 20)]
fn pipeline(bencher: divan::Bencher, n: usize) {
    let text = generate(n);
    bencher.bench(|| {
        let loaded = alembic_config::load_str("bench.toml", black_box(&text));
        let topology = loaded
            .topology
            .as_ref()
            .expect("generated config must be valid");
        let mut findings = alembic_policy::check_config(&loaded.source, Some(topology));
        let set = alembic_render::render(topology);
        findings.extend(alembic_policy::scan_artifacts(
            &set,
            &alembic_policy::ScanContext::default(),
        ));
        findings
    });
}

/// The embedded default topology through the whole `alembic check` pipeline.
#[divan::bench]
fn default_pipeline() -> usize {
    let loaded = alembic_config::load_str("default", black_box(alembic_config::DEFAULT_TOML));
    let topology = loaded.topology.as_ref().expect("default is valid");
    let findings = alembic_policy::check_config(&loaded.source, Some(topology));
    let set = alembic_render::render(topology);
    findings.len() + alembic_policy::scan_artifacts(&set, &Default::default()).len()
}

fn valid(n: usize) -> alembic_config::Topology {
    alembic_config::load_str("bench.toml", &generate(n))
        .topology
        .expect("generated config must be valid")
}
