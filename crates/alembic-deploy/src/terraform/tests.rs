//! Unit tests of `terraform`.

use super::*;

// The runner against the real `terraform` binary on the provider-free fixtures.
mod address;
mod e2e;
mod relative;
mod state;
use alembic_config::default_topology;

/// The runner for a project at `/srv/site`, plan directories under `/tmp`.
fn runner() -> Runner {
    let mut tf = Runner::for_topology("terraform", Path::new("/srv/site"), &default_topology());
    tf.plan_parent = PathBuf::from("/tmp");
    tf
}

#[test]
fn dry_run_transcript_for_the_default_topology() {
    let lines: Vec<String> = runner().ops().iter().map(|o| o.to_string()).collect();
    assert_eq!(
        lines,
        [
            "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color",
            "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN, AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' plan '-input=false' -no-color -detailed-exitcode '-out=/tmp/alembic-tfplan-XXXXXX/alembic.tfplan'",
            "terraform '-chdir=/srv/site/infra/terraform' show -json -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
            "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN, AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' apply '-input=false' -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
        ]
    );
}

/// The default with its state bucket removed: local state, only the token.
fn local_state_topology() -> alembic_config::Topology {
    let text = alembic_config::DEFAULT_TOML.replacen("state_bucket = \"alembic-tfstate\"", "", 1);
    let loaded = alembic_config::load_str("alembic.toml", &text);
    let t = loaded.topology.expect("default without a bucket validates");
    assert!(t.droplet.remote_state().is_none());
    t
}

#[test]
fn local_state_passes_only_the_token() {
    let mut tf = Runner::for_topology("terraform", Path::new("/srv/site"), &local_state_topology());
    tf.plan_parent = PathBuf::from("/tmp");
    let lines: Vec<String> = tf.ops().iter().map(|o| o.to_string()).collect();
    assert_eq!(
        lines,
        [
            "terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color",
            "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN] terraform '-chdir=/srv/site/infra/terraform' plan '-input=false' -no-color -detailed-exitcode '-out=/tmp/alembic-tfplan-XXXXXX/alembic.tfplan'",
            "terraform '-chdir=/srv/site/infra/terraform' show -json -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
            "[env: DIGITALOCEAN_TOKEN<-DIGITALOCEAN_TOKEN] terraform '-chdir=/srv/site/infra/terraform' apply '-input=false' -no-color /tmp/alembic-tfplan-XXXXXX/alembic.tfplan",
        ]
    );
    assert_eq!(
        tf.output_op().to_string(),
        "terraform '-chdir=/srv/site/infra/terraform' output -json -no-color"
    );
}

#[test]
fn custom_state_key_names_reach_terraform_under_the_aws_names() {
    let text = alembic_config::DEFAULT_TOML.replacen(
        "state_bucket = \"alembic-tfstate\"",
        "state_bucket = \"alembic-tfstate\"\nstate_access_key_env = \"DO_SPACES_KEY\"\nstate_secret_key_env = \"DO_SPACES_SECRET\"",
        1,
    );
    let t = alembic_config::load_str("alembic.toml", &text)
        .topology
        .expect("validates");
    let tf = Runner::for_topology("terraform", Path::new("/srv/site"), &t);
    let plan = tf.shown_plan_file();
    for op in [
        tf.init_op(),
        tf.plan_op(&plan),
        tf.apply_op(&plan),
        tf.output_op(),
    ] {
        assert_eq!(
            &op.env_map[op.env_map.len() - 2..],
            [
                ("AWS_ACCESS_KEY_ID".to_owned(), "DO_SPACES_KEY".to_owned()),
                (
                    "AWS_SECRET_ACCESS_KEY".to_owned(),
                    "DO_SPACES_SECRET".to_owned()
                ),
            ],
            "{}",
            op.step
        );
        // Names only: the op carries no value and no argument mentions the credentials.
        assert!(!op.args.iter().any(|a| a.contains("SPACES")), "{op}");
    }
    assert!(
        tf.show_op(&plan).env_map.is_empty(),
        "show reads only the plan file"
    );
}

#[test]
fn dry_run_records_and_summarises_nothing() {
    struct None_;
    impl crate::exec::SecretSource for None_ {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    let mut ex = Executor::new(Goal::DryRun, &None_);
    // Nothing rendered and nothing on disk at /srv/site: the configuration check passes.
    let mut tf = runner();
    tf.expected.clear();
    let redact = Redactor::new(&[], &None_);
    let p = plan(&mut ex, &tf, &redact).unwrap();
    assert_eq!((&p.summary, p.plan_dir()), (&None, None));
    apply(&mut ex, &tf, p, false, &redact).unwrap();
    assert_eq!(ex.transcript, tf.ops());
}

/// A project directory holding exactly the default's rendered Terraform.
fn rendered_project() -> (tempfile::TempDir, Runner) {
    let tmp = tempfile::tempdir().unwrap();
    let tf = Runner::for_topology("terraform", tmp.path(), &default_topology());
    std::fs::create_dir_all(&tf.dir).unwrap();
    for (name, bytes) in &tf.expected {
        std::fs::write(tf.dir.join(name), bytes).unwrap();
    }
    (tmp, tf)
}

// A hand-added `zz-extra.tf` opening every port was planned and applied with the rest.
#[test]
fn unknown_terraform_file_is_refused_with_its_text() {
    let (_tmp, tf) = rendered_project();
    tf.verify_config().unwrap();
    // Not configuration: state, lock file, plan files, notes.
    for f in [
        "terraform.tfstate",
        ".terraform.lock.hcl",
        "old.tfplan",
        "README.md",
    ] {
        std::fs::write(tf.dir.join(f), "x").unwrap();
    }
    tf.verify_config().unwrap();
    let extra = "resource \"digitalocean_firewall\" \"open\" {\n  name = \"all\"\n}\n";
    std::fs::write(tf.dir.join("zz-extra.tf"), extra).unwrap();
    std::fs::write(tf.dir.join("prod.auto.tfvars"), "region = \"ams3\"\n").unwrap();
    let err = tf.verify_config().unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let TfError::Drift { files, .. } = &err else {
        panic!("{err:?}")
    };
    let names: Vec<(&str, &DriftKind)> = files.iter().map(|d| (d.name.as_str(), &d.kind)).collect();
    assert_eq!(
        names,
        [
            ("prod.auto.tfvars", &DriftKind::Unknown),
            ("zz-extra.tf", &DriftKind::Unknown)
        ]
    );
    let msg = err.to_string();
    assert!(msg.contains("unknown file zz-extra.tf"), "{msg}");
    assert!(
        msg.contains("+resource \"digitalocean_firewall\" \"open\" {"),
        "{msg}"
    );
    assert!(msg.contains("+region = \"ams3\""), "{msg}");
}

// An in-place edit of the rendered `main.tf` was planned and applied too.
#[test]
fn edited_and_missing_files_are_refused_with_a_diff() {
    let (_tmp, tf) = rendered_project();
    let main = String::from_utf8(tf.expected["main.tf"].clone()).unwrap();
    let edited = main.replacen("monitoring = true", "monitoring = false", 1);
    assert_ne!(main, edited);
    std::fs::write(tf.dir.join("main.tf"), &edited).unwrap();
    std::fs::remove_file(tf.dir.join("outputs.tf")).unwrap();
    let msg = tf.verify_config().unwrap_err().to_string();
    assert!(
        msg.contains("main.tf differs from the fresh render"),
        "{msg}"
    );
    assert!(msg.contains("outputs.tf is missing"), "{msg}");
    assert!(msg.contains("--- main.tf (rendered by alembic)"), "{msg}");
    assert!(msg.contains("+++ main.tf (on disk)"), "{msg}");
    assert!(msg.contains("-  monitoring = true"), "{msg}");
    assert!(msg.contains("+  monitoring = false"), "{msg}");
    assert!(msg.contains("hint: `alembic render`"), "{msg}");
}

#[test]
fn relative_roots_become_absolute_paths() {
    let tf = Runner::for_topology("terraform", Path::new("."), &default_topology());
    assert!(
        tf.dir.is_absolute() && tf.plan_parent.is_absolute(),
        "{tf:?}"
    );
    assert_eq!(
        tf.dir,
        std::env::current_dir().unwrap().join("./infra/terraform")
    );
    for op in tf.ops() {
        for a in &op.args {
            if let Some(p) = a.strip_prefix("-chdir=").or(a.strip_prefix("-out=")) {
                assert!(Path::new(p).is_absolute(), "{op}");
            }
        }
    }
}

#[test]
fn failures_are_redacted() {
    struct One;
    impl crate::exec::SecretSource for One {
        fn get(&self, name: &str) -> Option<String> {
            (name == "DO_API_TOKEN").then(|| "dop_v1_canary_unit".to_owned())
        }
    }
    let redact = Redactor::new(&["DO_API_TOKEN".to_owned()], &One);
    let op = runner().init_op();
    let out = Output {
        status: 1,
        stdout: b"token dop_v1_canary_unit on stdout".to_vec(),
        stderr: Vec::new(),
        ..Output::default()
    };
    let err = require(&op, out, &[0], &redact).unwrap_err().to_string();
    assert_eq!(
        err,
        "terraform init failed (exit 1): token [DO_API_TOKEN: redacted] on stdout"
    );
}

#[test]
fn reserved_ip_is_read_from_the_output_document() {
    let j = r#"{"droplet_ipv4":{"sensitive":false,"type":"string","value":"203.0.113.5"},
                "reserved_ip":{"sensitive":false,"type":"string","value":"203.0.113.9"},
                "name":{"sensitive":false,"type":"string","value":"x"}}"#;
    assert_eq!(reserved_ip(0, j, ""), Ok("203.0.113.9".parse().unwrap()));
    // No state yet: Terraform prints `{}` and exits 0.
    let none = reserved_ip(0, "{}\n", "").unwrap_err();
    assert!(none.contains("has not been applied"), "{none}");
    // Another IP-valued output is not taken for the droplet's address.
    assert!(reserved_ip(0, r#"{"droplet_ipv4":{"value":"203.0.113.5"}}"#, "").is_err());
    assert!(reserved_ip(0, r#"{"reserved_ip":{"value":"soon"}}"#, "").is_err());
    let failed = reserved_ip(
        1,
        "",
        "\n\u{2577}\n\u{2502} Error: bad\nError: chdir /x: no such file\n",
    )
    .unwrap_err();
    assert_eq!(failed, "`terraform output` failed (exit 1): Error: bad");
    assert_eq!(
        runner().output_op().to_string(),
        "[env: AWS_ACCESS_KEY_ID<-SPACES_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY<-SPACES_SECRET_ACCESS_KEY] terraform '-chdir=/srv/site/infra/terraform' output -json -no-color"
    );
    assert!(!runner().output_op().mutating);
}

#[test]
fn env_prefix_is_shown_in_the_command_line() {
    let mut tf = runner();
    tf.env = vec![("CHECKPOINT_DISABLE".into(), "1".into())];
    assert_eq!(
        tf.init_op().command_line(),
        "env 'CHECKPOINT_DISABLE=1' terraform '-chdir=/srv/site/infra/terraform' init '-input=false' -no-color"
    );
}

const DROPLET_REPLACED: &str = r#"{"format_version":"1.2","resource_changes":[
  {"address":"digitalocean_droplet.main","mode":"managed","type":"digitalocean_droplet",
   "change":{"actions":["delete","create"],"replace_paths":[["image"]]}},
  {"address":"digitalocean_firewall.main","mode":"managed","type":"digitalocean_firewall",
   "change":{"actions":["update"]}},
  {"address":"digitalocean_record.api","mode":"managed","type":"digitalocean_record",
   "change":{"actions":["create"]}},
  {"address":"data.digitalocean_ssh_key.k","mode":"data","type":"digitalocean_ssh_key",
   "change":{"actions":["read"]}},
  {"address":"digitalocean_project.p","mode":"managed","type":"digitalocean_project",
   "change":{"actions":["no-op"]}}],
  "output_changes":{"ipv4":{"actions":["update"]},"name":{"actions":["no-op"]}},
  "variables":{"do_token":{"value":"dop_v1_canary"}}}"#;

#[test]
fn summary_counts_like_terraform_and_holds_no_values() {
    let s = parse_show_json(DROPLET_REPLACED).unwrap();
    assert_eq!((s.add, s.change, s.destroy), (2, 1, 1));
    assert_eq!(s.outputs_changed, ["ipv4"]);
    let text = s.to_string();
    assert_eq!(
        text,
        "  -/+ digitalocean_droplet.main (replace (destroy, then create)) forced by image\n\
         \x20   ~ digitalocean_firewall.main (update in place)\n\
         \x20   + digitalocean_record.api (create)\n\
         \x20 output ipv4 changes\n\
         Plan: 2 to add, 1 to change, 1 to destroy.\n"
    );
    let json = serde_json::to_string(&s).unwrap();
    assert!(!text.contains("canary") && !json.contains("canary"));
}

#[test]
fn droplet_replacement_needs_allow_replace() {
    let s = parse_show_json(DROPLET_REPLACED).unwrap();
    let err = s.check_replacements(PROTECTED_TYPES, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to apply: the plan replaces digitalocean_droplet.main (replace (destroy, \
         then create), forced by image); replacing the droplet or its reserved IP destroys \
         the server or changes its public address; re-run with --allow-replace if that is \
         intended"
    );
    assert_eq!(
        err.exit_code(),
        1,
        "a refusal is the config's problem, not a crash"
    );
    s.check_replacements(PROTECTED_TYPES, true).unwrap();
}

#[test]
fn create_before_destroy_reserved_ip_is_also_protected() {
    let j = r#"{"format_version":"1.2","resource_changes":[{"address":"digitalocean_reserved_ip.edge",
      "mode":"managed","type":"digitalocean_reserved_ip","change":{"actions":["create","delete"]}}]}"#;
    let s = parse_show_json(j).unwrap();
    assert!(matches!(
        s.check_replacements(PROTECTED_TYPES, false),
        Err(TfError::ReplaceRefused(r)) if r[0].action == Action::CreateThenDelete
    ));
}

#[test]
fn unknown_documents_are_errors_not_panics() {
    assert!(parse_show_json("{}").is_err());
    assert!(parse_show_json(r#"{"format_version":"2.0"}"#).is_err());
    assert!(parse_show_json(
        r#"{"format_version":"1.0","resource_changes":[{"address":"a","type":"t","change":{"actions":["explode"]}}]}"#
    )
    .is_err());
}
