//! Snapshots of every droplet-plane artifact (Terraform, compose, Caddyfile) of every fixture,
//! so any change to rendered bytes is reviewed. Review with `cargo insta review`.

mod droplet_support;

#[test]
fn droplet_artifacts_of_every_fixture() {
    insta::glob!("fixtures/*.toml", |path| {
        let t = droplet_support::load(path);
        let mut arts = droplet_support::droplet_artifacts(&t);
        match t.droplet.scale.engine {
            alembic_config::Engine::Compose => {}
            alembic_config::Engine::Swarm => arts.extend(alembic_render::swarm::render(&t)),
            alembic_config::Engine::Kubernetes => arts.extend(alembic_render::k8s::render(&t)),
        }
        // The file list is part of the snapshot: BYO `address` fixtures render no Terraform.
        let listing: Vec<&str> = arts.iter().map(|a| a.path.as_str()).collect();
        insta::assert_snapshot!("files", listing.join("\n"));
        for a in &arts {
            insta::assert_snapshot!(a.path.replace('/', "__"), a.text());
        }
    });
}

// The `default` fixture mirrors the embedded default topology, so its snapshots are the
// default's; this keeps the copy honest.
#[test]
fn default_fixture_is_the_embedded_default() {
    let text = std::fs::read_to_string(droplet_support::fixtures_dir().join("default.toml"))
        .expect("default fixture");
    assert_eq!(text, alembic_config::DEFAULT_TOML);
}
