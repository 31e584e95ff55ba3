//! Generated-input tests for the config loader: whatever text arrives, `load_str`/`load_bytes`
//! terminate with either a topology (and no error) or at least one error diagnostic, and never
//! panic. Inputs are arbitrary strings and bytes, and structured mutations of the embedded
//! default (deleted lines, random keys, values of the wrong type, unicode, duplicated tables),
//! which reach much deeper into validation than random text does.

use alembic_config::{load_bytes, load_str, Loaded, DEFAULT_TOML};
use proptest::prelude::*;

/// The loader's contract, checked on every generated input.
fn assert_contract(loaded: &Loaded, text_len: usize) {
    match &loaded.topology {
        Some(_) => assert!(
            !loaded.has_errors(),
            "a topology came back together with error diagnostics: {:?}",
            loaded.diagnostics
        ),
        None => assert!(
            loaded.has_errors(),
            "no topology and no error diagnostic for a {text_len}-byte input"
        ),
    }
    for d in &loaded.diagnostics {
        // Positions are 1-based (a zero line would break every editor integration).
        assert!(d.line >= 1 && d.column >= 1, "bad position in {d:?}");
        assert!(!d.message.is_empty());
        // The human view (caret under the source line) must render without panicking either.
        let shown = alembic_config::diag::render_human(d, Some(&loaded.source));
        assert!(shown.contains(d.code.as_str()));
    }
}

/// Values of every TOML type, including ones that are hostile in the artifacts' formats.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        hostile_string().prop_map(|s| quote(&s)),
        prop::collection::vec(hostile_string().prop_map(|s| quote(&s)), 0..4)
            .prop_map(|v| format!("[{}]", v.join(", "))),
        (env_key(), hostile_string()).prop_map(|(k, v)| format!("{{ {k} = {} }}", quote(&v))),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("[[1, 2], [\"a\"]]".to_owned()),
        Just("{ a = { b = { c = 1 } } }".to_owned()),
        Just("\"\"\"\nmulti\nline\n\"\"\"".to_owned()),
        Just("'literal \\ string'".to_owned()),
        Just("inf".to_owned()),
        Just("nan".to_owned()),
    ]
}

/// Strings mixing safe text with what breaks YAML, HCL, Caddyfiles, shells and terminals.
fn hostile_string() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-z0-9.-]{0,12}",
        Just("../".to_owned()),
        Just("\n".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just("$(id)".to_owned()),
        Just("${HOME}".to_owned()),
        Just("${{ github.event.issue.title }}".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{1b}[31m".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("日本語".to_owned()),
        Just("🦀".to_owned()),
        Just("é".to_owned()),
        Just("{ }".to_owned()),
        Just("#".to_owned()),
        Just(" ".to_owned()),
        Just("0.0.0.0/0".to_owned()),
        Just("dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_owned()),
        "\\PC{0,6}",
    ];
    prop::collection::vec(pieces, 0..6).prop_map(|v| v.concat())
}

fn env_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z_][A-Z0-9_]{0,8}",
        "[a-z][a-z-]{0,6}",
        Just("\"\"".to_owned())
    ]
}

/// A TOML basic string with everything escaped that must be, so the *value* reaches validation.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every key the parser knows (from the parser itself, so the list cannot go stale), plus
/// near misses (for did-you-mean) and nonsense.
fn key_name() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = alembic_config::parse::known_keys()
        .values()
        .flat_map(|keys| keys.iter().map(|k| (*k).to_owned()))
        .collect();
    known.sort();
    known.dedup();
    known.extend(["expsure", "prot", "dependson"].map(str::to_owned));
    prop_oneof![
        prop::sample::select(known),
        "[a-z_]{1,10}",
        Just("\"quoted key\"".to_owned()),
        Just("a.b.c".to_owned()),
    ]
}

/// One structured edit of a config's lines.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    /// Replace the value of line `i` (if it is `key = value`) with a generated value.
    ReplaceValue(usize, String),
    /// Rename the key of line `i`.
    RenameKey(usize, String),
    InsertPair(usize, String, String),
    InsertTable(usize, String),
    /// Truncate the file at a byte fraction (cut mid-token, mid-string, mid-table).
    Truncate(u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), toml_value()).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        (any::<usize>(), key_name()).prop_map(|(i, k)| Mutation::RenameKey(i, k)),
        (any::<usize>(), key_name(), toml_value())
            .prop_map(|(i, k, v)| Mutation::InsertPair(i, k, v)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "[[workload]]",
                "[project]",
                "[droplet]",
                "[ci]",
                "[host]",
                "[workload]",
                "[[droplet]]",
                "[unknown]",
                "[droplet.nested]",
            ])
        )
            .prop_map(|(i, t)| Mutation::InsertTable(i, t.to_owned())),
        any::<u16>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut truncate_at = None;
    for m in muts {
        let n = lines.len().max(1);
        match m {
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::ReplaceValue(i, v) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                if let Some(eq) = l.find('=') {
                    *l = format!("{}= {v}", &l[..eq]);
                }
            }
            Mutation::RenameKey(i, k) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                if let Some(eq) = l.find('=') {
                    *l = format!("{k} {}", &l[eq..]);
                }
            }
            Mutation::InsertPair(i, k, v) => {
                lines.insert(i % (lines.len() + 1), format!("{k} = {v}"))
            }
            Mutation::InsertTable(i, t) => lines.insert(i % (lines.len() + 1), t.clone()),
            Mutation::Truncate(f) => truncate_at = Some(*f),
            _ => {}
        }
    }
    let mut out = lines.join("\n");
    if let Some(f) = truncate_at {
        let mut cut = out.len() * usize::from(f) / usize::from(u16::MAX);
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}|[\\[\\]{}=\"'a-z0-9 .,\\n#-]{0,400}") {
        let loaded = load_str("prop.toml", &text);
        assert_contract(&loaded, text.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let loaded = load_bytes("prop.toml", &bytes);
        assert_contract(&loaded, bytes.len());
    }

    #[test]
    fn mutated_default_never_panics(muts in prop::collection::vec(mutation(), 1..6)) {
        let text = apply(DEFAULT_TOML, &muts);
        let loaded = load_str("prop.toml", &text);
        assert_contract(&loaded, text.len());
    }

    #[test]
    fn bytes_spliced_into_default_never_panic(
        at in any::<usize>(),
        junk in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut bytes = DEFAULT_TOML.as_bytes().to_vec();
        let at = at % (bytes.len() + 1);
        bytes.splice(at..at, junk);
        let loaded = load_bytes("prop.toml", &bytes);
        assert_contract(&loaded, bytes.len());
    }
}

/// The mutation machinery itself must not be a no-op, or the property above tests only the
/// default: deleting the `[project]` header must make the default invalid.
#[test]
fn mutations_reach_validation() {
    let i = DEFAULT_TOML
        .lines()
        .position(|l| l.starts_with("[project]"))
        .expect("default has [project]");
    let text = apply(DEFAULT_TOML, &[Mutation::DeleteLine(i)]);
    assert!(load_str("m.toml", &text).has_errors());
    let text = apply(
        DEFAULT_TOML,
        &[Mutation::InsertPair(
            i + 1,
            "expsure".to_owned(),
            "1".to_owned(),
        )],
    );
    let loaded = load_str("m.toml", &text);
    assert!(loaded
        .diagnostics
        .iter()
        .any(|d| d.code == alembic_config::Code::Cfg002));
}
