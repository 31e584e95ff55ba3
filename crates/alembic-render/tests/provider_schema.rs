//! The rendered DigitalOcean Terraform against the provider's schema (kept as data in
//! `data/digitalocean-provider-<version>.json`), the way `terraform validate` would check it:
//! every fixture passes, `versions.tf` pins the release the data describes, and deliberate
//! mistakes (renamed, missing, misnested, repeated, mistyped, misreferenced) are each caught.

mod droplet_support;

use alembic_render::terraform;
use droplet_support::tf_schema::{check_module, load_schema, Finding, Kind, ProviderSchema};
use droplet_support::{fixture, fixtures};

/// The rendered `infra/terraform/*.tf` of a topology as `(file name, text)`.
fn tf_files(t: &alembic_config::Topology) -> Vec<(String, String)> {
    terraform::render(t)
        .into_iter()
        .map(|a| {
            let name = a.path.rsplit('/').next().unwrap_or_default().to_owned();
            (name, a.text().to_owned())
        })
        .collect()
}

fn findings(schema: &ProviderSchema, files: &[(String, String)]) -> Vec<Finding> {
    check_module(schema, files).findings
}

/// The default fixture's files with `main.tf` edited by `edit`, which must change it.
fn default_with_main(edit: impl Fn(&str) -> String) -> Vec<(String, String)> {
    let mut files = tf_files(&fixture("default"));
    let main = files
        .iter_mut()
        .find(|(n, _)| n == "main.tf")
        .expect("main.tf rendered");
    let edited = edit(&main.1);
    assert_ne!(edited, main.1, "the edit did not apply");
    main.1 = edited;
    files
}

/// Replace the first occurrence of `from`, which must exist.
fn first(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    text.replacen(from, to, 1)
}

/// Exactly one finding, of `kind`, at `at`: the checker names the mistake and nothing else.
fn assert_one(schema: &ProviderSchema, files: &[(String, String)], kind: Kind, at: &str) {
    let f = findings(schema, files);
    assert!(
        f.len() == 1 && f[0].kind == kind && f[0].at == at && f[0].file == "main.tf",
        "expected exactly one {kind:?} at {at}, got:\n{}",
        f.iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn schema_data_is_well_formed_and_names_its_sources() {
    let s = load_schema();
    assert_eq!(s.provider, terraform::PROVIDER_SOURCE);
    assert_eq!(s.version, terraform::PROVIDER_RELEASE);
    assert!(!s.about.is_empty());
    let mut arguments = 0;
    for (ty, r) in &s.resources {
        assert!(ty.starts_with("digitalocean_"), "{ty}");
        assert!(
            r.source.docs.starts_with("https://docs.digitalocean.com/")
                && r.source.docs.contains("generated from v2."),
            "{ty}: docs source {:?}",
            r.source.docs
        );
        assert!(!r.source.schema.is_empty(), "{ty}: no schema source");
        let nested = r.blocks.values().flat_map(|b| b.attributes.iter());
        for (name, a) in r.attributes.iter().chain(nested) {
            assert!(
                !(a.required && (a.optional || a.computed)),
                "{ty}.{name}: required and optional/computed"
            );
            assert!(
                a.required || a.optional || a.computed,
                "{ty}.{name}: neither settable nor computed"
            );
            arguments += 1;
        }
        for (name, b) in &r.blocks {
            assert!(
                b.max_items == 0 || b.max_items >= b.min_items.max(1),
                "{ty}.{name}: max_items"
            );
            assert!(
                !r.attributes.contains_key(name),
                "{ty}.{name}: both argument and block"
            );
        }
    }
    // Figures for the record: resources and arguments (nested included) the data holds.
    eprintln!(
        "{} {}: {} resources, {arguments} arguments/attributes",
        s.provider,
        s.version,
        s.resources.len()
    );
    assert!(s.resources.len() >= 7 && arguments >= 80);
}

#[test]
fn every_rendered_resource_type_is_in_the_data() {
    let s = load_schema();
    let mut seen = std::collections::BTreeSet::new();
    for (_, t) in fixtures() {
        for (_, text) in tf_files(&t) {
            let body = hcl::parse(&text).expect("rendered HCL parses");
            for b in body.blocks().filter(|b| b.identifier() == "resource") {
                seen.insert(b.labels()[0].as_str().to_owned());
            }
        }
    }
    for ty in &seen {
        assert!(
            s.resources.contains_key(ty),
            "{ty} rendered but not in the data"
        );
    }
    // What the renderer emits today; a new resource type must come with its schema data.
    for ty in [
        "digitalocean_droplet",
        "digitalocean_reserved_ip",
        "digitalocean_reserved_ip_assignment",
        "digitalocean_firewall",
        "digitalocean_domain",
        "digitalocean_record",
        "digitalocean_project",
        "digitalocean_vpc",
        "digitalocean_tag",
        "digitalocean_certificate",
        "digitalocean_loadbalancer",
        "digitalocean_kubernetes_cluster",
    ] {
        assert!(seen.contains(ty), "{ty} no longer rendered by any fixture");
    }
}

#[test]
fn every_fixture_passes_the_provider_schema() {
    let s = load_schema();
    let mut topologies = fixtures();
    let default = alembic_config::load_str("alembic.toml", alembic_config::DEFAULT_TOML)
        .topology
        .expect("the embedded default validates");
    topologies.push(("embedded default".to_owned(), default));
    let mut modules = 0;
    for (name, t) in topologies {
        let files = tf_files(&t);
        if files.is_empty() {
            continue;
        }
        let r = check_module(&s, &files);
        assert!(
            r.findings.is_empty(),
            "{name}:\n{}",
            r.findings
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        // Droplet, IP, assignment, firewall, domain, project (records: one per route host);
        // on Kubernetes: the versions data source, VPC, cluster, domain, project.
        assert!(
            r.resources_checked >= 5,
            "{name}: {} resources",
            r.resources_checked
        );
        assert!(
            r.references_checked >= 5,
            "{name}: {} references",
            r.references_checked
        );
        modules += 1;
    }
    assert!(modules >= 5, "only {modules} fixtures render Terraform");
}

#[test]
fn versions_tf_pins_exactly_the_release_the_data_describes() {
    let s = load_schema();
    for (name, t) in fixtures() {
        let Some((_, text)) = tf_files(&t).into_iter().find(|(n, _)| n == "versions.tf") else {
            continue;
        };
        let body = hcl::parse(&text).expect("versions.tf parses");
        let tf = body
            .blocks()
            .find(|b| b.identifier() == "terraform")
            .expect("terraform block");
        let rp = tf
            .body()
            .blocks()
            .find(|b| b.identifier() == "required_providers")
            .expect("required_providers");
        let attr = rp
            .body()
            .attributes()
            .find(|a| a.key() == "digitalocean")
            .expect("digitalocean provider");
        let hcl::Expression::Object(o) = attr.expr() else {
            panic!("{name}: provider requirement is not an object");
        };
        let get = |k: &str| {
            o.iter()
                .find(|(key, _)| key.to_string() == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("source"),
            Some(hcl::Expression::String(s.provider.clone())),
            "{name}"
        );
        assert_eq!(
            get("version"),
            Some(hcl::Expression::String(format!("= {}", s.version))),
            "{name}"
        );
    }
}

// The droplet argument another change adds (cloud-init `user_data`, kept out of the plan
// diff by `ignore_changes`) is in the data, so that change validates.
#[test]
fn droplet_user_data_with_ignore_changes_is_accepted() {
    // The droplet carries the bootstrap's cloud-init as user_data, ignored after creation.
    let s = load_schema();
    let files = tf_files(&fixture("default"));
    let main = &files
        .iter()
        .find(|(n, _)| n == "main.tf")
        .expect("main.tf")
        .1;
    assert!(main.contains("user_data  = file("), "{main}");
    assert!(main.contains("ignore_changes  = [user_data]"), "{main}");
    let f = findings(&s, &files);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn unmodified_default_has_no_findings() {
    let s = load_schema();
    let f = findings(&s, &tf_files(&fixture("default")));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn renamed_argument_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "  monitoring = true", "  monitored = true"));
    assert_one(
        &s,
        &files,
        Kind::UnsupportedArgument,
        "resource.digitalocean_droplet.main.monitored",
    );
}

#[test]
fn renamed_nested_argument_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "source_addresses =", "source_address ="));
    assert_one(
        &s,
        &files,
        Kind::UnsupportedArgument,
        "resource.digitalocean_firewall.edge.inbound_rule[0].source_address",
    );
}

#[test]
fn missing_required_argument_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "  size       = \"s-1vcpu-2gb\"\n", ""));
    assert_one(
        &s,
        &files,
        Kind::MissingRequiredArgument,
        "resource.digitalocean_droplet.main.size",
    );
}

#[test]
fn missing_required_nested_argument_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "    protocol              = \"icmp\"\n", ""));
    assert_one(
        &s,
        &files,
        Kind::MissingRequiredArgument,
        "resource.digitalocean_firewall.edge.outbound_rule[2].protocol",
    );
}

#[test]
fn block_written_as_an_argument_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "  inbound_rule {", "  inbound_rule = {"));
    assert_one(
        &s,
        &files,
        Kind::ArgumentWhereBlockExpected,
        "resource.digitalocean_firewall.edge.inbound_rule",
    );
}

#[test]
fn argument_written_as_a_block_is_caught() {
    let s = load_schema();
    let files =
        default_with_main(|t| first(t, "  tags       = [\"alembic\"]\n", "  tags {\n  }\n"));
    assert_one(
        &s,
        &files,
        Kind::BlockWhereArgumentExpected,
        "resource.digitalocean_droplet.main.tags[0]",
    );
}

#[test]
fn block_nested_in_the_wrong_block_is_caught() {
    let s = load_schema();
    // `lifecycle` belongs to the resource, not to a firewall rule.
    let files = default_with_main(|t| {
        first(
            t,
            "    port_range       = \"80\"\n",
            "    port_range       = \"80\"\n    lifecycle {\n      prevent_destroy = true\n    }\n",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UnsupportedBlock,
        "resource.digitalocean_firewall.edge.inbound_rule[0].lifecycle[0]",
    );
}

#[test]
fn block_in_the_wrong_resource_is_caught() {
    let s = load_schema();
    // `inbound_rule` is a firewall block; a droplet has none.
    let files = default_with_main(|t| {
        first(
            t,
            "  tags       = [\"alembic\"]\n",
            "  tags       = [\"alembic\"]\n  inbound_rule {\n    protocol = \"tcp\"\n  }\n",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UnsupportedBlock,
        "resource.digitalocean_droplet.main.inbound_rule[0]",
    );
}

#[test]
fn too_many_single_blocks_are_caught() {
    let s = load_schema();
    let policy = "  backup_policy {\n    plan = \"weekly\"\n  }\n";
    let files = default_with_main(|t| {
        first(
            t,
            "  tags       = [\"alembic\"]\n",
            &format!("  tags       = [\"alembic\"]\n  backups    = true\n{policy}{policy}"),
        )
    });
    assert_one(
        &s,
        &files,
        Kind::TooManyBlocks,
        "resource.digitalocean_droplet.main.backup_policy",
    );
    // The meta-argument block `lifecycle` takes one too.
    let files = default_with_main(|t| {
        first(
            t,
            "  lifecycle {\n",
            "  lifecycle {\n    create_before_destroy = false\n  }\n\n  lifecycle {\n",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::TooManyBlocks,
        "resource.digitalocean_droplet.main.lifecycle",
    );
}

#[test]
fn computed_only_attribute_set_in_configuration_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "  monitoring = true\n",
            "  monitoring = true\n  urn        = \"do:droplet:1\"\n",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UnconfigurableAttribute,
        "resource.digitalocean_droplet.main.urn",
    );
}

#[test]
fn wrongly_typed_literal_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "  monitoring = true", "  monitoring = [true]"));
    assert_one(
        &s,
        &files,
        Kind::TypeMismatch,
        "resource.digitalocean_droplet.main.monitoring",
    );
    let files = default_with_main(|t| first(t, "  ttl    = 300", "  ttl    = \"five minutes\""));
    assert_one(
        &s,
        &files,
        Kind::TypeMismatch,
        "resource.digitalocean_record.api.ttl",
    );
}

#[test]
fn unknown_resource_type_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "resource \"digitalocean_reserved_ip_assignment\" \"edge\"",
            "resource \"digitalocean_reserved_ip_attachment\" \"edge\"",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UnknownResourceType,
        "resource.digitalocean_reserved_ip_attachment.edge",
    );
}

#[test]
fn reference_to_an_unknown_attribute_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "digitalocean_droplet.main.urn",
            "digitalocean_droplet.main.uri",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UnsupportedAttributeReference,
        "digitalocean_droplet.main.uri",
    );
}

#[test]
fn reference_to_an_undeclared_resource_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "digitalocean_domain.zone.id",
            "digitalocean_domain.zones.id",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UndeclaredResource,
        "digitalocean_domain.zones.id",
    );
}

#[test]
fn ignore_changes_naming_no_argument_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "    ignore_changes  = [user_data]\n",
            "    ignore_changes  = [user_dta]\n",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::IgnoreChangesUnknown,
        "resource.digitalocean_droplet.main.lifecycle.ignore_changes",
    );
}

#[test]
fn argument_set_twice_is_caught() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "  monitoring = true\n",
            "  monitoring = true\n  monitoring = false\n",
        )
    });
    // The HCL parser refuses it (as Terraform's does); nothing else is reported after a parse
    // error, as `terraform validate` stops there too.
    let f = findings(&s, &files);
    assert!(
        f.len() == 1
            && f[0].kind == Kind::Parse
            && f[0].file == "main.tf"
            && f[0].message.contains("redefined"),
        "{f:#?}"
    );
}

#[test]
fn value_the_schema_validation_refuses_is_caught() {
    let s = load_schema();
    let cases: [(&str, &str, &str); 5] = [
        (
            "    protocol         = \"tcp\"",
            "    protocol         = \"tcpp\"",
            "resource.digitalocean_firewall.edge.inbound_rule[0].protocol",
        ),
        (
            "  type   = \"A\"",
            "  type   = \"ALIAS\"",
            "resource.digitalocean_record.api.type",
        ),
        (
            "  ttl    = 300",
            "  ttl    = 0",
            "resource.digitalocean_record.api.ttl",
        ),
        (
            "  environment = \"Production\"",
            "  environment = \"Prod\"",
            "resource.digitalocean_project.main.environment",
        ),
        (
            "  ssh_keys   = [\"",
            "  ssh_keys   = [\"\", \"",
            "resource.digitalocean_droplet.main.ssh_keys",
        ),
    ];
    for (from, to, at) in cases {
        let files = default_with_main(|t| first(t, from, to));
        assert_one(&s, &files, Kind::InvalidValue, at);
    }
    // Case does not matter for `environment` (the provider compares case-insensitively).
    let files = default_with_main(|t| first(t, "\"Production\"", "\"production\""));
    assert!(findings(&s, &files).is_empty());
}

#[test]
fn tcp_rule_without_port_range_fails_the_plan_check() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "    port_range       = \"80\"\n", ""));
    assert_one(
        &s,
        &files,
        Kind::PlanCheckFailed,
        "resource.digitalocean_firewall.edge.inbound_rule[0].port_range",
    );
}

#[test]
fn firewall_without_rules_fails_the_plan_check() {
    let s = load_schema();
    // Drop every rule block (each is its own blank-line separated paragraph; the last one
    // carries the resource's closing brace).
    let files = default_with_main(|t| {
        t.split("\n\n")
            .filter_map(|p| {
                if p.starts_with("  inbound_rule {") || p.starts_with("  outbound_rule {") {
                    p.ends_with("  }\n}").then(|| "}".to_owned())
                } else {
                    Some(p.to_owned())
                }
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    });
    assert_one(
        &s,
        &files,
        Kind::PlanCheckFailed,
        "resource.digitalocean_firewall.edge",
    );
}

#[test]
fn mx_record_without_priority_fails_the_plan_check() {
    let s = load_schema();
    let files = default_with_main(|t| first(t, "  type   = \"A\"", "  type   = \"MX\""));
    assert_one(
        &s,
        &files,
        Kind::PlanCheckFailed,
        "resource.digitalocean_record.api.priority",
    );
}

#[test]
fn reference_inside_a_template_is_checked() {
    let s = load_schema();
    let files = default_with_main(|t| {
        first(
            t,
            "\"alembic.example.com (managed by alembic)\"",
            "\"${digitalocean_droplet.main.nam} (managed by alembic)\"",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UnsupportedAttributeReference,
        "digitalocean_droplet.main.nam",
    );
}

/// The scale-compose fixture's files with `main.tf` edited by `edit`, which must change it.
fn scaled_with_main(edit: impl Fn(&str) -> String) -> Vec<(String, String)> {
    let mut files = tf_files(&fixture("scale-compose"));
    let main = files
        .iter_mut()
        .find(|(n, _)| n == "main.tf")
        .expect("main.tf rendered");
    let edited = edit(&main.1);
    assert_ne!(edited, main.1, "the edit did not apply");
    main.1 = edited;
    files
}

#[test]
fn scaled_layouts_have_no_findings() {
    let s = load_schema();
    for name in ["scale-compose", "scale-swarm", "scale-kubernetes"] {
        let f = findings(&s, &tf_files(&fixture(name)));
        assert!(f.is_empty(), "{name}: {f:?}");
    }
}

#[test]
fn load_balancer_health_check_without_path_is_caught() {
    let s = load_schema();
    let files = scaled_with_main(|m| {
        let start = m.find("    path ").expect("healthcheck path");
        let end = start + m[start..].find('\n').unwrap() + 1;
        format!("{}{}", &m[..start], &m[end..])
    });
    assert_one(
        &s,
        &files,
        Kind::PlanCheckFailed,
        "resource.digitalocean_loadbalancer.edge.healthcheck[0].path",
    );
}

#[test]
fn certificate_of_an_unknown_type_is_caught() {
    let s = load_schema();
    let files = scaled_with_main(|m| first(m, "\"lets_encrypt\"", "\"letsencrypt\""));
    assert_one(
        &s,
        &files,
        Kind::InvalidValue,
        "resource.digitalocean_certificate.edge.type",
    );
}

#[test]
fn firewall_source_from_an_undeclared_load_balancer_is_caught() {
    let s = load_schema();
    let files = scaled_with_main(|m| {
        first(
            m,
            "source_load_balancer_uids = [digitalocean_loadbalancer.edge.id]",
            "source_load_balancer_uids = [digitalocean_loadbalancer.front.id]",
        )
    });
    assert_one(
        &s,
        &files,
        Kind::UndeclaredResource,
        "digitalocean_loadbalancer.front.id",
    );
}
