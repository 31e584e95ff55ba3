//! `[droplet]` remote Terraform state keys (`state_bucket`, `state_key`, `state_region`,
//! `state_access_key_env`, `state_secret_key_env`): defaults, overrides, the validation of each
//! value at its exact position, and how the key pair joins `Topology::secret_names`.

use alembic_config::{load_str, Code, Plane, Severity, Topology};

/// A provisioned droplet; `[droplet]` keys end on line 13, so an appended key is line 14.
const BASE: &str = r#"version = 1

[project]
name = "shop"
domain = "shop.example.com"

[droplet]
name = "shop-prod"
region = "sfo3"
size = "s-1vcpu-2gb"
image = "ubuntu-24-04-x64"
ssh_keys = ["12345"]
admin_cidrs = ["203.0.113.10/32"]
"#;
const CI: &str = "\n[ci]\nrepository = \"acme/shop\"\n";

fn config(droplet_extra: &str) -> String {
    format!("{BASE}{droplet_extra}{CI}")
}

#[track_caller]
fn load(text: &str) -> Topology {
    let loaded = load_str("alembic.toml", text);
    match loaded.topology {
        Some(t) if !loaded.has_errors() => t,
        _ => panic!("must validate: {:#?}", loaded.diagnostics),
    }
}

/// The one error `text` yields: (code, line, column, the spanned text).
#[track_caller]
fn one_error(text: &str) -> (Code, usize, usize, String, String) {
    let loaded = load_str("alembic.toml", text);
    assert!(loaded.topology.is_none(), "an error yields no topology");
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let d = errors[0];
    let span = d.span.clone().expect("located");
    (
        d.code,
        d.line,
        d.column,
        text[span].to_owned(),
        d.message.clone(),
    )
}

#[test]
fn without_a_bucket_the_state_is_local() {
    let t = load(&config(""));
    assert_eq!(t.droplet.state_bucket, None);
    assert!(t.droplet.remote_state().is_none());
    // The defaults are still resolved (and shown by `alembic topology`).
    assert_eq!(t.droplet.state_key.as_str(), "shop/terraform.tfstate");
    assert_eq!(t.droplet.state_region.as_ref().unwrap().as_str(), "sfo3");
    assert!(!t
        .secret_names()
        .keys()
        .any(|k| k.as_str().starts_with("SPACES_")));
}

#[test]
fn a_bucket_alone_takes_every_default() {
    let t = load(&config("state_bucket = \"shop-state\"\n"));
    let s = t.droplet.remote_state().expect("remote state");
    assert_eq!(s.bucket.as_str(), "shop-state");
    assert_eq!(s.key.as_str(), "shop/terraform.tfstate");
    assert_eq!(s.region.as_str(), "sfo3");
    assert_eq!(s.endpoint(), "https://sfo3.digitaloceanspaces.com");
    assert_eq!(s.access_key_env.as_str(), "SPACES_ACCESS_KEY_ID");
    assert_eq!(s.secret_key_env.as_str(), "SPACES_SECRET_ACCESS_KEY");
    let names = t.secret_names();
    for n in ["SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY"] {
        let uses = names
            .iter()
            .find(|(k, _)| k.as_str() == n)
            .map(|(_, u)| u)
            .expect(n);
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].plane, Plane::Droplet);
        assert_eq!(uses[0].consumer, "terraform state");
    }
}

#[test]
fn every_key_can_be_set() {
    let t = load(&config(
        "state_bucket = \"a1b\"\nstate_key = \"x/y_z/state.tfstate\"\nstate_region = \"ams3\"\nstate_access_key_env = \"K_ID\"\nstate_secret_key_env = \"K_SECRET\"\n",
    ));
    let s = t.droplet.remote_state().unwrap();
    assert_eq!(
        (s.bucket.as_str(), s.key.as_str(), s.region.as_str()),
        ("a1b", "x/y_z/state.tfstate", "ams3")
    );
    assert_eq!(
        (s.access_key_env.as_str(), s.secret_key_env.as_str()),
        ("K_ID", "K_SECRET")
    );
    let names: Vec<String> = t.secret_names().keys().map(|k| k.to_string()).collect();
    assert!(names.contains(&"K_ID".to_owned()) && names.contains(&"K_SECRET".to_owned()));
}

#[test]
fn an_existing_server_has_no_remote_state() {
    let text = config("state_bucket = \"shop-state\"\naddress = \"203.0.113.20\"\n");
    let t = load(&text);
    assert!(t.droplet.state_bucket.is_some());
    assert!(t.droplet.remote_state().is_none(), "no Terraform runs");
    assert!(!t
        .secret_names()
        .keys()
        .any(|k| k.as_str().starts_with("SPACES_")));
}

#[test]
fn bad_bucket_names_are_cfg004_at_the_value() {
    for bad in [
        "ab",
        "Shop",
        "shop_state",
        "shop.state",
        "-shop",
        "shop-",
        "a--b",
    ] {
        let (code, line, col, spanned, msg) =
            one_error(&config(&format!("state_bucket = \"{bad}\"\n")));
        assert_eq!((code, line, col), (Code::Cfg004, 14, 16), "{bad}: {msg}");
        assert_eq!(spanned, format!("\"{bad}\""));
        assert!(msg.contains("Spaces bucket name"), "{msg}");
    }
    let long = "a".repeat(64);
    let (code, ..) = one_error(&config(&format!("state_bucket = \"{long}\"\n")));
    assert_eq!(code, Code::Cfg004);
}

#[test]
fn bad_state_keys_and_regions_are_cfg004() {
    for bad in [
        "/abs",
        "trailing/",
        "a//b",
        "a/../b",
        "has space",
        "q\\\"uote",
        "${x}",
    ] {
        let (code, line, col, _, msg) = one_error(&config(&format!(
            "state_bucket = \"ok-bucket\"\nstate_key = \"{bad}\"\n"
        )));
        assert_eq!((code, line, col), (Code::Cfg004, 15, 13), "{bad}: {msg}");
    }
    let (code, line, col, spanned, _) = one_error(&config(
        "state_bucket = \"ok-bucket\"\nstate_region = \"NYC3\"\n",
    ));
    assert_eq!(
        (code, line, col, spanned.as_str()),
        (Code::Cfg004, 15, 16, "\"NYC3\"")
    );
}

#[test]
fn bad_credential_env_names_are_sec002() {
    let (code, line, col, spanned, _) = one_error(&config(
        "state_bucket = \"ok-bucket\"\nstate_access_key_env = \"spaces-key\"\n",
    ));
    assert_eq!(
        (code, line, col, spanned.as_str()),
        (Code::Sec002, 15, 24, "\"spaces-key\"")
    );
    let (code, line, ..) = one_error(&config("state_secret_key_env = \"1BAD\"\n"));
    assert_eq!((code, line), (Code::Sec002, 14));
    // One name for both halves of the key pair is a mistake too.
    let (code, line, col, _, msg) = one_error(&config(
        "state_access_key_env = \"SPACES_KEY\"\nstate_secret_key_env = \"SPACES_KEY\"\n",
    ));
    assert_eq!((code, line, col), (Code::Sec002, 15, 24), "{msg}");
}

#[test]
fn a_value_is_never_mistaken_for_a_name() {
    // A secret pasted where its name belongs is refused (SEC002), never taken as a name.
    let (code, ..) = one_error(&config(
        "state_bucket = \"ok-bucket\"\nstate_secret_key_env = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCY\"\n",
    ));
    assert_eq!(code, Code::Sec002);
}

#[test]
fn the_embedded_default_keeps_its_state_in_spaces() {
    let t = alembic_config::default_topology();
    let s = t
        .droplet
        .remote_state()
        .expect("the default sets state_bucket");
    assert_eq!(s.bucket.as_str(), "alembic-tfstate");
    assert_eq!(s.key.as_str(), "alembic/terraform.tfstate");
    assert_eq!(s.region.as_str(), "nyc3");
    // The deploy job can pass the key pair on: both names are in ci.secrets.
    for n in [s.access_key_env, s.secret_key_env] {
        assert!(t.ci.secrets.contains(n), "{n} in ci.secrets");
    }
    // The commented lines show the real defaults (uncommenting them changes nothing).
    let uncommented = alembic_config::DEFAULT_TOML
        .lines()
        .map(|l| match l.strip_prefix("# state_") {
            Some(rest) => format!("state_{rest}"),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(uncommented, alembic_config::DEFAULT_TOML);
    let t2 = load(&uncommented);
    assert_eq!(t2.droplet, t.droplet);
}
