//! The remote-state `backend "s3"` (DigitalOcean Spaces) rendered into `versions.tf`:
//! - it parses (the `hcl` crate) with exactly the arguments Spaces needs and no credentials;
//! - it is rendered only for a provisioned droplet with `state_bucket`;
//! - the real `terraform` accepts it. `init -backend=false` + `validate` do not look at backend
//!   arguments at all (checked below with a misspelled one), so the proof is a real `init` of
//!   the provider-free fixture `tests/fixtures/terraform/spaces-backend` (the same block) against
//!   127.0.0.1 on a closed port: it must get as far as connecting, failing with "connection
//!   refused", while a misspelled argument fails before that as a configuration error.

mod droplet_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use alembic_render::terraform;
use droplet_support::{fixture, fixtures, terraform_cmd};
use hcl::{Body, Expression};

/// The `backend "s3"` block's attributes in `body`'s `terraform` block, if any.
fn backend_of(body: &Body) -> Option<BTreeMap<String, Expression>> {
    let tf = body.blocks().find(|b| b.identifier() == "terraform")?;
    let backend = tf.body().blocks().find(|b| b.identifier() == "backend")?;
    let labels: Vec<&str> = backend.labels().iter().map(|l| l.as_str()).collect();
    assert_eq!(labels, ["s3"], "backend type");
    Some(
        backend
            .body()
            .attributes()
            .map(|a| (a.key().to_owned(), a.expr().clone()))
            .collect(),
    )
}

fn rendered_versions(t: &alembic_config::Topology) -> Option<Body> {
    terraform::render(t)
        .into_iter()
        .find(|a| a.path == "infra/terraform/versions.tf")
        .map(|a| hcl::parse(a.text()).expect("versions.tf parses"))
}

fn endpoint_of(attrs: &BTreeMap<String, Expression>) -> String {
    let Some(Expression::Object(o)) = attrs.get("endpoints") else {
        panic!("endpoints is an object: {attrs:?}");
    };
    assert_eq!(o.len(), 1, "only the s3 endpoint: {o:?}");
    let (k, v) = o.iter().next().unwrap();
    assert_eq!(k.to_string(), "s3");
    match v {
        Expression::String(s) => s.clone(),
        other => panic!("endpoint is a string: {other:?}"),
    }
}

#[test]
fn backend_block_parses_with_the_spaces_arguments() {
    let t = fixture("remote-state");
    let attrs = backend_of(&rendered_versions(&t).expect("provisioned")).expect("a backend");
    let s = |v: &str| Expression::String(v.to_owned());
    let b = Expression::Bool;
    let mut want: BTreeMap<String, Expression> = [
        ("bucket", s("ledger-tfstate-01")),
        ("key", s("envs/prod/ledger.tfstate")),
        ("region", s("us-east-1")),
        ("skip_credentials_validation", b(true)),
        ("skip_requesting_account_id", b(true)),
        ("skip_metadata_api_check", b(true)),
        ("skip_region_validation", b(true)),
        ("skip_s3_checksum", b(true)),
        ("use_path_style", b(false)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(endpoint_of(&attrs), "https://ams3.digitaloceanspaces.com");
    let mut got = attrs.clone();
    got.remove("endpoints");
    assert_eq!(got, want);

    // The default: key from the project, region from the droplet.
    let t = alembic_config::default_topology();
    let attrs = backend_of(&rendered_versions(&t).expect("provisioned")).expect("a backend");
    assert_eq!(endpoint_of(&attrs), "https://nyc3.digitaloceanspaces.com");
    want.insert("bucket".into(), s("alembic-tfstate"));
    want.insert("key".into(), s("alembic/terraform.tfstate"));
    let mut got = attrs.clone();
    got.remove("endpoints");
    assert_eq!(got, want);
}

#[test]
fn no_credentials_in_any_rendered_terraform() {
    for (name, t) in fixtures() {
        for a in terraform::render(&t) {
            let text = a.text();
            for word in ["access_key", "secret_key", "SPACES_", "AWS_"] {
                assert!(!text.contains(word), "{name} {}: {word}\n{text}", a.path);
            }
        }
    }
}

#[test]
fn backend_only_with_a_state_bucket_on_a_provisioned_droplet() {
    let mut with = Vec::new();
    for (name, t) in fixtures() {
        let backend = rendered_versions(&t).and_then(|b| backend_of(&b));
        assert_eq!(
            backend.is_some(),
            t.droplet.is_provisioned() && t.droplet.state_bucket.is_some(),
            "{name}"
        );
        if backend.is_some() {
            with.push(name);
        }
    }
    assert_eq!(with, ["default", "remote-state"]);
    // A BYO address with a bucket renders no Terraform at all.
    let text = std::fs::read_to_string(droplet_support::fixtures_dir().join("byo-address.toml"))
        .unwrap()
        .replacen(
            "[droplet]\n",
            "[droplet]\nstate_bucket = \"unused-bucket\"\n",
            1,
        );
    let loaded = alembic_config::load_str("byo.toml", &text);
    let t = loaded.topology.expect("validates");
    assert!(t.droplet.state_bucket.is_some() && t.droplet.remote_state().is_none());
    assert!(terraform::render(&t).is_empty());
}

/// The committed fixture's backend is the rendered default's, so what terraform checks below
/// is what alembic writes.
#[test]
fn fixture_backend_is_the_rendered_one() {
    let path =
        alembic_testkit::workspace_root().join("tests/fixtures/terraform/spaces-backend/main.tf");
    let fixture = hcl::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rendered = rendered_versions(&alembic_config::default_topology()).unwrap();
    assert_eq!(backend_of(&fixture), backend_of(&rendered));
    assert!(backend_of(&fixture).is_some());
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Run with a deadline (a backend that hangs must fail the test, not stall it).
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn terraform");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "terraform did not finish in {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

const CANARY_ACCESS: &str = "DO00CANARYACCESS7Q2W";
const CANARY_SECRET: &str = "canary-spaces-secret-5d1e9b";

/// `terraform` in `dir`, offline, with canary Spaces credentials where the runner puts them
/// and no AWS configuration from this machine.
fn tf(bin: &Path, dir: &Path, home: &Path, args: &[&str]) -> (bool, String) {
    let mut c = terraform_cmd(bin);
    c.arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", CANARY_ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", CANARY_SECRET)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for v in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "TF_DATA_DIR",
    ] {
        c.env_remove(v);
    }
    let out = run_bounded(&mut c, Duration::from_secs(90));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(CANARY_ACCESS) && !text.contains(CANARY_SECRET),
        "a credential was printed:\n{text}"
    );
    (out.status.success(), text)
}

/// A copy of the fixture in a fresh directory, with `edit` applied to its text.
fn copy_fixture(root: &Path, name: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let src =
        alembic_testkit::workspace_root().join("tests/fixtures/terraform/spaces-backend/main.tf");
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = edit(std::fs::read_to_string(src).unwrap());
    std::fs::write(dir.join("main.tf"), text).unwrap();
    dir
}

/// Point the fixture's backend at `127.0.0.1:<port>` (path-style, so no `<bucket>.<host>` name
/// needs resolving) with a single attempt. Everything else stays as rendered.
fn at_loopback(port: u16) -> impl Fn(String) -> String {
    move |text: String| {
        let out = text
            .replacen(
                "https://nyc3.digitaloceanspaces.com",
                &format!("http://127.0.0.1:{port}"),
                1,
            )
            .replacen(
                "use_path_style              = false",
                "use_path_style              = true\n    max_retries                 = 1",
                1,
            );
        assert!(out.contains(&format!("127.0.0.1:{port}")) && out.contains("max_retries"));
        out
    }
}

#[test]
fn real_terraform_accepts_the_backend_and_gets_as_far_as_connecting() {
    let Some(bin) = alembic_testkit::tool("terraform") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // The whole configuration is valid Terraform (backend left out of init).
    let dir = copy_fixture(tmp.path(), "validate", |t| t);
    let (ok, text) = tf(
        &bin,
        &dir,
        &home,
        &["init", "-backend=false", "-input=false", "-no-color"],
    );
    assert!(ok, "init -backend=false:\n{text}");
    let (ok, text) = tf(&bin, &dir, &home, &["validate", "-no-color"]);
    assert!(ok, "validate:\n{text}");
    // ...but `validate` does not look at backend arguments: a misspelled one passes it.
    let dir = copy_fixture(tmp.path(), "validate-misspelled", |t| {
        t.replacen("skip_s3_checksum ", "skip_s3_checksums", 1)
    });
    let (ok, _) = tf(
        &bin,
        &dir,
        &home,
        &["init", "-backend=false", "-input=false", "-no-color"],
    );
    assert!(ok);
    let (ok, text) = tf(&bin, &dir, &home, &["validate", "-no-color"]);
    assert!(ok, "validate now checks backend arguments; use it:\n{text}");

    // A real `init` parses and configures the backend, then lists the bucket: against a closed
    // loopback port that fails as a connection error, after every argument was accepted.
    let port = closed_port();
    let dir = copy_fixture(tmp.path(), "init", at_loopback(port));
    let (ok, text) = tf(&bin, &dir, &home, &["init", "-input=false", "-no-color"]);
    assert!(!ok, "nothing listens on {port}:\n{text}");
    assert!(
        text.contains("connection refused") && text.contains(&format!("127.0.0.1:{port}")),
        "expected a connection error:\n{text}"
    );
    assert!(
        text.contains("alembic-tfstate"),
        "the bucket was asked for:\n{text}"
    );
    for config_error in [
        "Unsupported argument",
        "Invalid",
        "Missing required argument",
        "credential",
    ] {
        assert!(!text.contains(config_error), "{config_error}:\n{text}");
    }

    // Control: the same init with a misspelled argument is a configuration error, reported
    // before any connection, so the success above means the names were checked.
    let dir = copy_fixture(tmp.path(), "init-misspelled", |t| {
        at_loopback(port)(t.replacen("skip_s3_checksum ", "skip_s3_checksums", 1))
    });
    let (ok, text) = tf(&bin, &dir, &home, &["init", "-input=false", "-no-color"]);
    assert!(!ok);
    assert!(
        text.contains("Unsupported argument") && text.contains("skip_s3_checksums"),
        "{text}"
    );
    assert!(!text.contains("connection refused"), "{text}");
}
