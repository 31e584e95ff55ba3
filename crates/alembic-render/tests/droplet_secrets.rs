//! Secrets in the droplet plane are names, never values: every workload secret is a
//! `${NAME:?}` reference in compose. (Canary values in the environment of the commands that do
//! read it are checked by the binary's `canary_cli.rs` and the E2E tests.)

mod droplet_support;

use alembic_render::compose;
use droplet_support::*;

// Values never reach rendering at all: `render` takes a Topology and reads no environment (the
// binary's `canary_cli.rs` proves the commands that do see secret values leak none). What a
// rendered compose file holds for a secret is the `${NAME:?}` reference, for every workload.
#[test]
fn workload_secrets_are_references_in_compose() {
    let mut seen = 0;
    for (name, t) in fixtures() {
        let yaml: yaml_serde::Value =
            yaml_serde::from_slice(&compose::render(&t)[0].bytes).expect("compose parses");
        for w in t.on_plane(alembic_config::Plane::Droplet) {
            for s in &w.secrets {
                let env = &yaml["services"][w.name.as_str()]["environment"][s.as_str()];
                assert_eq!(
                    env.as_str(),
                    Some(compose::secret_reference(s.as_str()).as_str()),
                    "{name}: {} {s}",
                    w.name
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no fixture has a droplet secret");
}
