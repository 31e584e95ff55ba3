//! Findings in YAML that a line-based index could not locate: values reached through an alias
//! (located at the anchor's node), flow collections spread over several lines, non-ASCII text
//! before the finding. Positions come from the YAML parser's spans.

use alembic_config::Diagnostic;
use alembic_policy::{scan_text, FileKind};

fn found(diags: &[Diagnostic]) -> Vec<(&'static str, usize, usize)> {
    diags
        .iter()
        .map(|d| (d.code.as_str(), d.line, d.column))
        .collect()
}

// An aliased ports list used to be reported at the `ports:` key; now at the anchor's element.
#[test]
fn alias_is_located_at_the_anchor() {
    let text = "\
x-ports: &public
  - \"0.0.0.0:8080:8080\"
services:
  api:
    image: ghcr.io/acme/api:1
    ports: *public
";
    let d = scan_text("compose.yaml", text, Some(FileKind::Compose));
    assert_eq!(found(&d), vec![("EXP003", 2, 5)], "{d:#?}");
}

// A flow sequence over several lines: the element's own line, not the first match of its text.
#[test]
fn multi_line_flow_element() {
    let text = "\
services:
  api:
    image: ghcr.io/acme/api:1
    ports: [
      \"127.0.0.1:1:1\",
      \"3000:3000\"
      ]
";
    let d = scan_text("compose.yaml", text, Some(FileKind::Compose));
    assert_eq!(found(&d), vec![("EXP003", 6, 7)], "{d:#?}");
}

// Columns count characters: multi-byte text before the finding on an earlier line and in the key.
#[test]
fn non_ascii_text_before_the_finding() {
    let text = "\
# Ünïcödé comment
services:
  café:
    image: ghcr.io/acme/api:1
    privileged: true
";
    let d = scan_text("compose.yaml", text, Some(FileKind::Compose));
    assert_eq!(found(&d), vec![("EXP008", 5, 17)], "{d:#?}");
}

// Merge keys: the scanner sees the value, and the merged key is located where the anchor wrote
// it (the value API's apply_merge resolves `<<` like serde_yaml did).
#[test]
fn merge_key_value_and_position() {
    let text = "\
x-base: &base
  privileged: true
services:
  api:
    <<: *base
    image: ghcr.io/acme/api:1
";
    let (mut v, ix) = alembic_policy::yaml::parse(text).unwrap();
    v.apply_merge().unwrap();
    assert_eq!(
        v["services"]["api"]["privileged"],
        alembic_policy::yaml::Value::Bool(true)
    );
    let span = ix.value_span(&["services", "api", "privileged"]);
    assert_eq!(&text[span.clone()], "true");
    assert_eq!(span.start, text.find("true").unwrap());
}
