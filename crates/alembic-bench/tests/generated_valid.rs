//! The generator's contract: every size it produces is a valid config with exactly that many
//! workloads and no diagnostics, so benchmarks measure the success path.

use alembic_bench::generate;

#[test]
fn generated_configs_are_valid_at_every_benchmarked_size() {
    for n in [0, 1, 2, 7, 100, 1_000, 10_000] {
        let loaded = alembic_config::load_str("gen.toml", &generate(n));
        assert!(
            loaded.diagnostics.is_empty(),
            "n={n}: {:?}",
            loaded.diagnostics.first()
        );
        let t = loaded.topology.as_ref().expect("valid");
        // Policy-clean too, so `alembic check` benchmarks measure a passing run.
        let findings = alembic_policy::check_config(&loaded.source, Some(t));
        assert!(findings.is_empty(), "n={n}: {:?}", findings.first());
        assert_eq!(t.workloads.len(), n);
        if n >= 10 {
            for plane in alembic_config::Plane::ALL {
                assert!(t.on_plane(plane).count() > 0, "n={n}: no {plane} workload");
            }
            assert!(t.routes().count() > 0);
        }
    }
}
