//! Inputs the cargo-fuzz targets (fuzz/fuzz_targets/scan_*.rs) crashed on, reduced to their
//! essence. Each test says which target found it and what went wrong.

use alembic_policy::{scan_text, FileKind};

// Found by fuzz target scan_terraform: `port_range = "0"` became the empty range 1..=0 and the
// EXP006 rule's `b - a` overflowed (a panic with overflow checks, a bogus count without).
#[test]
fn terraform_port_range_zero_does_not_overflow() {
    for range in ["0", "0-0", "00"] {
        let tf = format!(
            "resource \"digitalocean_firewall\" \"web\" {{\n  inbound_rule {{\n    protocol         = \"tcp\"\n    port_range       = \"{range}\"\n    source_addresses = [\"0.0.0.0/0\", \"::/0\"]\n  }}\n}}\n"
        );
        let findings = scan_text("main.tf", &tf, Some(FileKind::Terraform));
        for d in &findings {
            assert!(d.line >= 1, "{d:?}");
        }
    }
}

// Found by fuzz target scan_text: a key that is itself a DigitalOcean token
// (`dop_v1_<64 hex>_KEY: <random>`) was quoted whole in the SEC001 entropy message.
#[test]
fn secret_shaped_key_is_redacted_in_the_message() {
    let token = format!("dop_v1_{}", "0123456789abcdef".repeat(4));
    let text = format!("{token}_KEY: q7Zp2Lx9Vw4Rt8Ky3Hm6Nb1Jc5\n");
    let findings = scan_text("notes.txt", &text, Some(FileKind::Text));
    assert!(!findings.is_empty(), "the token must be reported");
    for d in &findings {
        assert!(
            !d.message.contains(&token) && !d.help.as_deref().unwrap_or("").contains(&token),
            "finding repeats the token: {d:?}"
        );
    }
}

// Found by fuzz target scan_text (second campaign): with the same characters once as a Slack
// token (`=xoxr-…`, line 1) and once inside a key (`dGINxoxr-…_KEY`, line 8), the finding for
// the key must not print a credential shape (it does not: inside the key it is no token).
#[test]
fn no_finding_prints_a_credential_shape() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let crash = std::fs::read(dir.join("scan_text-key-in-context.txt")).expect("crash input");
    let text = String::from_utf8_lossy(&crash);
    let findings = scan_text("notes.txt", &text, Some(FileKind::Text));
    assert!(!findings.is_empty());
    for d in &findings {
        for part in [d.message.as_str(), d.help.as_deref().unwrap_or("")] {
            let leaked = alembic_policy::tokens::find_tokens(part);
            assert!(leaked.is_empty(), "finding prints a token: {d:?}");
        }
    }
}
