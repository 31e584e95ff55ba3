//! `droplet.authorized_keys`: OpenSSH public key lines are accepted (and normalized); private
//! keys, option prefixes, broken blobs and anything else get a located CFG004 that never repeats
//! the value.

use alembic_config::{load_str, Code};

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINpQAd57S3mxZrgNj4iST7EFLPZokviDaoJfZg+JQTSd ci deploy key";
const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBsAMAZJeKbAWthwsUsXHLryF69q/MSHsDpX66HiEnSPgnOOPK+qrbS1u6UFGYfYA6SepJ0NVoi4FjjB+YmdzzU=";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCbajhp6kDa82FOtqyOjboQlk2IYWPqgOXjHPMG5sBeoVf1riLLUV/8PwZZu5D5OmW8gMrh/WoQVVMCH40/WzyXQNt9iJIeJYoUKOf0dHZ6Vd0o4iqTSOPKQtARQJyve11hHN1LusaC0nmV8IhpEicbbzhpOgvWi0HW0wMlG9C2Ew== ops@laptop";
const PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDaUAHee0t5sWa4DY+Ikk+xBSz2aJL4g2qCX2YPiUE0nQAAAJD8QGhp/EBo
-----END OPENSSH PRIVATE KEY-----";

/// Line 9 holds the `authorized_keys` array; its first string starts at column 20.
fn config(keys_toml: &str) -> String {
    format!(
        "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\n\
         name = \"demo-prod\"\nauthorized_keys = [{keys_toml}]\naddress = \"203.0.113.20\"\n\n\
         [ci]\nrepository = \"acme/demo\"\n"
    )
}

fn toml_str(s: &str) -> String {
    // A JSON string literal is a valid TOML basic string for these inputs.
    serde_json::to_string(s).unwrap()
}

#[test]
fn public_key_lines_are_accepted_and_normalized() {
    let padded = format!("  {}   ", ED25519.replace(" ci ", "  ci   "));
    let keys = [padded.as_str(), ECDSA, RSA].map(toml_str).join(", ");
    let loaded = load_str("alembic.toml", &config(&keys));
    let topo = loaded
        .topology
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics));
    let got: Vec<&str> = topo
        .droplet
        .authorized_keys
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(got, [ED25519, ECDSA, RSA]);
}

#[track_caller]
fn refused(value: &str) -> alembic_config::Diagnostic {
    let src = config(&toml_str(value));
    let loaded = load_str("alembic.toml", &src);
    assert!(loaded.topology.is_none(), "{value:?} must be refused");
    let d: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::Cfg004)
        .collect();
    assert_eq!(d.len(), 1, "{:#?}", loaded.diagnostics);
    assert_eq!((d[0].line, d[0].column), (9, 20), "{}", d[0].message);
    assert!(d[0].message.contains("authorized_keys"), "{}", d[0].message);
    d[0].clone()
}

#[test]
fn a_private_key_is_refused_without_repeating_it() {
    let d = refused(PRIVATE);
    assert!(d.message.contains("private key"), "{}", d.message);
    let text = format!("{} {:?}", d.message, d.help);
    assert!(!text.contains("b3BlbnNzaC1rZXkt"), "{text}");
}

#[test]
fn anything_but_a_public_key_line_is_refused() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    for bad in [
        "",
        "ssh-ed25519",
        // options prefix: could restrict or redirect the key; not what this field is for
        &format!("command=\"/bin/sh\" {ED25519}"),
        // type and blob disagree
        &format!("ssh-rsa {blob}"),
        // blob that is not base64 / truncated key material
        "ssh-ed25519 not*base64",
        &format!("ssh-ed25519 {}", &blob[..40]),
        // a second line smuggled in
        &format!("{ED25519}\nssh-ed25519 {blob}"),
        "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
    ] {
        let d = refused(bad);
        assert!(
            bad.len() < 20 || !d.message.contains(bad),
            "the value is repeated back: {}",
            d.message
        );
    }
}

#[test]
fn duplicates_are_refused() {
    let src = config(&[ED25519, ED25519].map(toml_str).join(", "));
    let loaded = load_str("alembic.toml", &src);
    assert!(loaded.diagnostics.iter().any(|d| d.code == Code::Cfg005));
}
