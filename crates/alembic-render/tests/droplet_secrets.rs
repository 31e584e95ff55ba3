//! Secrets in the droplet plane are names, never values: with every secret name set to a
//! canary value in the environment, no rendered byte of any fixture contains one, and every
//! workload secret is a `${NAME:?}` reference in compose.

mod droplet_support;

use alembic_render::compose;
use droplet_support::*;

#[test]
fn canary_values_never_reach_rendered_bytes() {
    for (name, t) in fixtures() {
        let canaries: Vec<(String, String)> = secret_names(&t)
            .into_iter()
            .map(|n| {
                let v = canary(&n);
                (n, v)
            })
            .collect();
        // Rendering is pure and must not read the environment; set the canaries anyway so a
        // future renderer that did would be caught.
        for (n, v) in &canaries {
            std::env::set_var(n, v);
        }
        let set = alembic_render::render(&t);
        for a in set.iter() {
            let text = String::from_utf8_lossy(&a.bytes);
            for (n, v) in &canaries {
                assert!(
                    !text.contains(v.as_str()),
                    "{name}: {} contains the value of {n}",
                    a.path
                );
                assert!(
                    !text.contains("CANARY-"),
                    "{name}: {} contains a canary",
                    a.path
                );
            }
        }
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
            }
        }
        for (n, _) in &canaries {
            std::env::remove_var(n);
        }
    }
}
