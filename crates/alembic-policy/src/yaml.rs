//! YAML documents for the artifact rules. `saphyr-parser` (a maintained YAML 1.2 parser in safe
//! Rust) reads the text once; its events build a [`Value`] shaped like serde_yaml's and, from the
//! same pass, the position of every node ([`YamlIndex`]), so anchors, aliases, merge keys and
//! flow collections are located by the parser instead of guessed from lines.
//!
//! Hand-written on purpose: no maintained safe-Rust crate offers serde_yaml's `Value` API (which
//! the rules are written against, `apply_merge` included) together with source positions.
//! Scalars are resolved by the YAML 1.2 core schema (spec 10.3.2), written out here because the
//! `saphyr` crate that has it needs a newer compiler (through ordered-float) than this
//! workspace's MSRV, for one table.
//!
//! Hostile input is bounded: nesting deeper than [`MAX_DEPTH`] and alias expansion beyond
//! [`ALIAS_BUDGET`] nodes make the document unparsed (`None`), never a deep recursion.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::yamlpos::{Children, KeyText, Located, YamlIndex, YamlPos};

mod value;

pub use value::*;

/// Deeper nesting than this (counting what aliases expand to) is not parsed.
pub const MAX_DEPTH: usize = 64;

/// Nodes that alias expansion may produce in one document ("billion laughs" bound).
pub const ALIAS_BUDGET: usize = 100_000;

/// A parsed node: its value, its byte span and the positions of its children.
#[derive(Clone, Debug)]
struct Node {
    value: Value,
    span: Range<usize>,
    children: Children,
    /// Nesting levels of collections inside (0 for a scalar).
    height: usize,
    /// Nodes in this subtree (for the alias budget).
    size: usize,
}

/// A collection being built.
struct Open {
    /// A mapping (else a sequence).
    map: bool,
    /// Sequence items.
    items: Vec<Value>,
    /// Mapping entries.
    entries: Vec<(Value, Value)>,
    /// Where each item or entry is.
    located: Vec<Located>,
    start: usize,
    anchor: usize,
    /// Map only: the key read, waiting for its value.
    key: Option<Node>,
    /// Map only, past [`LINEAR_KEYS`] entries: hashes of the keys seen.
    seen: Option<HashSet<u64, foldhash::fast::FixedState>>,
    height: usize,
    size: usize,
}

/// Up to this many entries a duplicate key is looked for by comparing the keys; beyond it,
/// by their hashes first (most mappings are small, and need no set at all).
const LINEAR_KEYS: usize = 16;

impl Open {
    fn new(map: bool, start: usize, anchor: usize) -> Open {
        Open {
            map,
            items: Vec::new(),
            entries: Vec::new(),
            located: Vec::new(),
            start,
            anchor,
            key: None,
            seen: None,
            height: 1,
            size: 1,
        }
    }

    fn count(&mut self, n: &Node) {
        self.height = self.height.max(n.height + 1);
        self.size += n.size;
    }

    /// Whether `key` is already a key of this mapping (keys equal as typed values).
    fn has_key(&mut self, key: &Value) -> bool {
        if self.entries.len() < LINEAR_KEYS {
            return self.entries.iter().any(|(k, _)| same_key(k, key));
        }
        let seen = self.seen.get_or_insert_with(|| {
            let mut set = HashSet::with_capacity_and_hasher(64, Default::default());
            set.extend(self.entries.iter().map(|(k, _)| key_hash(k)));
            set
        });
        // A hash seen before is confirmed against the keys (a collision is not a duplicate).
        !seen.insert(key_hash(key)) && self.entries.iter().any(|(k, _)| same_key(k, key))
    }
}

/// Byte offsets for the parser's character offsets.
struct Offsets<'t> {
    text: &'t str,
    /// Byte offset of each character, only built for non-ASCII text.
    table: Option<Vec<usize>>,
}

impl Offsets<'_> {
    fn new(text: &str) -> Offsets<'_> {
        let table = (!text.is_ascii()).then(|| {
            let mut t: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            t.push(text.len());
            t
        });
        Offsets { text, table }
    }

    fn byte(&self, chars: usize) -> usize {
        match &self.table {
            None => chars.min(self.text.len()),
            Some(t) => t.get(chars).copied().unwrap_or(self.text.len()),
        }
    }

    fn span(&self, s: &Span) -> Range<usize> {
        self.byte(s.start.index())..self.byte(s.end.index())
    }
}

/// Why a document did not parse, and where (a byte offset) when the parser said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The byte offset the parser stopped at, when it said.
    pub at: Option<usize>,
    /// The parser's reason.
    pub why: String,
}

impl ParseError {
    fn new(at: Option<usize>, why: impl Into<String>) -> ParseError {
        ParseError {
            at,
            why: why.into(),
        }
    }
}

impl YamlIndex {
    /// Index the first document of `text`; empty when it does not parse
    /// ([`parse`] gives the value and the index together).
    pub fn new(text: &str) -> YamlIndex {
        parse(text).map(|(_, ix)| ix).unwrap_or_default()
    }
}

/// Parse the first YAML document of `text` into its value and the positions of its nodes.
/// `None` when the document does not parse (syntax error, duplicate key, nesting deeper than
/// [`MAX_DEPTH`], alias expansion beyond [`ALIAS_BUDGET`]).
pub fn parse(text: &str) -> Option<(Value, YamlIndex)> {
    parse_located(text).ok()
}

/// [`parse`], saying why and where a document did not parse.
pub fn parse_located(text: &str) -> Result<(Value, YamlIndex), ParseError> {
    let offsets = Offsets::new(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut budget = ALIAS_BUDGET;
    let mut root: Option<Node> = None;
    for ev in Parser::new_from_str(text) {
        let (ev, span) =
            ev.map_err(|e| ParseError::new(Some(offsets.byte(e.marker().index())), e.info()))?;
        let at = offsets.span(&span);
        let node = match ev {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => continue,
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::new(
                        Some(at.start),
                        format!("nested more than {MAX_DEPTH} levels deep"),
                    ));
                }
                let map = matches!(ev, Event::MappingStart(..));
                stack.push(Open::new(map, at.start, anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = stack
                    .pop()
                    .ok_or_else(|| ParseError::new(Some(at.start), "unbalanced collection end"))?;
                if open.key.is_some() {
                    return Err(ParseError::new(Some(at.start), "a key without a value"));
                }
                // A block collection's end event sits where the next token starts: end the span
                // at its last child instead, so it never covers the following lines.
                let flow = text
                    .get(open.start..)
                    .is_some_and(|t| t.starts_with(['[', '{']));
                let last = open.located.last().map(|l| l.pos.value.end);
                let end = if flow { at.end } else { last.unwrap_or(at.end) };
                let (value, children) = if open.map {
                    let value = Value::Mapping(Mapping {
                        entries: open.entries,
                    });
                    (value, Children::Map(open.located))
                } else {
                    (Value::Sequence(open.items), Children::Seq(open.located))
                };
                let node = Node {
                    value,
                    span: open.start..end.max(open.start),
                    children,
                    height: open.height,
                    size: open.size,
                };
                if open.anchor > 0 {
                    anchors.insert(open.anchor, node.clone());
                }
                node
            }
            Event::Scalar(v, style, anchor, tag) => {
                let core_tag = tag
                    .as_ref()
                    .filter(|t| t.is_yaml_core_schema())
                    .map(|t| t.suffix.as_str());
                let value = resolve_scalar(v, style == ScalarStyle::Plain, core_tag);
                // A block scalar's span runs to the next token: keep only its text.
                let end = at.start + text.get(at.clone()).map_or(0, |t| t.trim_end().len());
                let node = Node {
                    value,
                    span: at.start..end,
                    children: Children::Leaf,
                    height: 0,
                    size: 1,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Alias(id) => {
                let target = anchors.get(&id).ok_or_else(|| {
                    ParseError::new(Some(at.start), "an alias to an unknown anchor")
                })?;
                if target.size > budget || stack.len() + target.height > MAX_DEPTH {
                    return Err(ParseError::new(
                        Some(at.start),
                        "aliases expand beyond the size or nesting limits",
                    ));
                }
                budget -= target.size;
                let mut node = target.clone();
                node.span = at;
                node
            }
        };
        let Some(open) = stack.last_mut() else {
            root = Some(node);
            continue;
        };
        if !open.map {
            open.count(&node);
            open.located.push(Located {
                key: KeyText::None,
                pos: YamlPos {
                    key: dash_span(text, &node.span),
                    value: node.span,
                },
                children: node.children,
            });
            open.items.push(node.value);
            continue;
        }
        let Some(key) = open.key.take() else {
            open.key = Some(node);
            continue;
        };
        if open.has_key(&key.value) {
            return Err(ParseError::new(Some(key.span.start), "duplicate key"));
        }
        open.count(&key);
        open.count(&node);
        open.located.push(Located {
            key: key_text(text, &key),
            pos: YamlPos {
                key: key.span,
                value: node.span,
            },
            children: node.children,
        });
        open.entries.push((key.value, node.value));
    }
    if !stack.is_empty() {
        return Err(ParseError::new(
            None,
            "the document ends inside a collection",
        ));
    }
    let root = root.unwrap_or(Node {
        value: Value::Null,
        span: 0..0,
        children: Children::Leaf,
        height: 0,
        size: 1,
    });
    Ok((root.value, YamlIndex::from_tree(text, root.children)))
}

/// The YAML 1.2 core schema's resolution of a scalar (spec 10.3.2): quoted and block scalars
/// are strings; a plain one is null, a bool, an int (decimal, `0o`, `0x`), a float (`.inf`,
/// `.nan` included) or else a string. A core tag (`!!str`, `!!int`, ...) decides the type; a
/// value that does not fit its tag stays a string. Other tags resolve as if untagged.
fn resolve_scalar<'a>(
    scalar: impl Into<Cow<'a, str>>,
    plain: bool,
    core_tag: Option<&str>,
) -> Value {
    let scalar = scalar.into();
    let v: &str = &scalar;
    let null = || matches!(v, "" | "~" | "null" | "Null" | "NULL").then_some(Value::Null);
    let boolean = || match v {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    };
    let int = || {
        let parsed = if let Some(o) = v.strip_prefix("0o") {
            i64::from_str_radix(o, 8).ok()
        } else if let Some(h) = v.strip_prefix("0x") {
            i64::from_str_radix(h, 16).ok()
        } else {
            let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<i64>().ok())
                .flatten()
        };
        parsed.map(|i| Value::Number(i.into()))
    };
    let float = || {
        let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
        let negative = v.starts_with('-');
        let special = match unsigned {
            ".inf" | ".Inf" | ".INF" => Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            ".nan" | ".NaN" | ".NAN" if unsigned.len() == v.len() => Some(f64::NAN),
            _ => None,
        };
        let number = || {
            // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
            let (mantissa, exp) = match unsigned.find(['e', 'E']) {
                Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
                None => (unsigned, None),
            };
            let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            let mantissa_ok = digits(whole)
                && digits(frac)
                && (!whole.is_empty() || (mantissa.contains('.') && !frac.is_empty()));
            let exp_ok = exp.is_none_or(|e| {
                let e = e.strip_prefix(['-', '+']).unwrap_or(e);
                !e.is_empty() && digits(e)
            });
            (mantissa_ok && exp_ok)
                .then(|| v.parse::<f64>().ok())
                .flatten()
        };
        special.or_else(number).map(|f| Value::Number(f.into()))
    };
    let typed = match core_tag {
        Some("str") => None,
        Some("null") => null(),
        Some("bool") => boolean(),
        Some("int") => int(),
        Some("float") => float().or_else(int),
        _ if !plain => None,
        // No null, bool or number starts with another letter: most plain scalars (names,
        // images, commands) are settled here without trying each type.
        _ if v
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() && !b"nNtTfF".contains(b)) =>
        {
            None
        }
        _ => null().or_else(boolean).or_else(int).or_else(float),
    };
    // The parser's own string is kept when it has one (no copy).
    typed.unwrap_or_else(|| Value::String(scalar.into_owned()))
}

/// Keys are the same key when their typed values are: strings (nearly all keys) by their
/// text, other values by their debug form (a string key never equals a non-string one).
fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::String(_), _) | (_, Value::String(_)) => false,
        _ => format!("{a:?}") == format!("{b:?}"),
    }
}

/// A hash consistent with [`same_key`].
fn key_hash(k: &Value) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    match k {
        Value::String(s) => {
            0u8.hash(&mut h);
            s.hash(&mut h);
        }
        other => {
            1u8.hash(&mut h);
            format!("{other:?}").hash(&mut h);
        }
    }
    h.finish()
}

/// The path segment of a mapping key: scalar keys as their text (a range of `text` when it
/// spells the key, plain or simply quoted, so most keys cost no copy); collection keys have
/// none.
fn key_text(text: &str, key: &Node) -> KeyText {
    match &key.value {
        Value::String(s) => {
            let written = text.get(key.span.clone()).unwrap_or_default();
            let quoted = written.len() >= 2
                && (written.starts_with('"') && written.ends_with('"')
                    || written.starts_with('\'') && written.ends_with('\''));
            let inner = match quoted {
                true => key.span.start + 1..key.span.end - 1,
                false => key.span.clone(),
            };
            match text.get(inner.clone()) == Some(s.as_str()) {
                true => KeyText::Text(inner),
                false => KeyText::Owned(s.as_str().into()),
            }
        }
        Value::Number(n) => KeyText::Owned(n.to_string().into()),
        Value::Bool(b) => KeyText::Owned(if *b { "true" } else { "false" }.into()),
        Value::Null => KeyText::Owned("null".into()),
        Value::Sequence(_) | Value::Mapping(_) => KeyText::None,
    }
}

/// The `-` before a block sequence item, else the item itself (flow sequences have no dash).
fn dash_span(text: &str, item: &Range<usize>) -> Range<usize> {
    let before = text.get(..item.start).unwrap_or_default();
    let trimmed = before.trim_end_matches([' ', '\t']);
    if trimmed.ends_with('-') {
        trimmed.len() - 1..trimmed.len()
    } else {
        item.start..item.end.max(item.start + 1).min(text.len().max(item.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_like_serde_yaml() {
        let (v, _) = parse("a: 1\nb: true\nc: ~\nd: '80'\ne: [x, 2.5]\nf: {g: h}\n").unwrap();
        assert_eq!(v["a"].as_i64(), Some(1));
        assert_eq!(v["b"], Value::Bool(true));
        assert!(v["c"].is_null());
        assert_eq!(v["d"].as_str(), Some("80"));
        assert_eq!(v["e"][1].as_f64(), Some(2.5));
        assert_eq!(v["f"]["g"].as_str(), Some("h"));
        assert!(v["missing"]["deeper"].is_null());
        let Value::Number(n) = &v["a"] else { panic!() };
        assert_eq!(n.to_string(), "1");
    }

    #[test]
    fn core_schema_scalars() {
        let r = |s: &str| resolve_scalar(s, true, None);
        assert_eq!(r("0x1F").as_i64(), Some(31));
        assert_eq!(r("0o17").as_i64(), Some(15));
        assert_eq!(r("-12").as_i64(), Some(-12));
        assert_eq!(r("1e3").as_f64(), Some(1000.0));
        assert_eq!(r(".5").as_f64(), Some(0.5));
        assert_eq!(r("-.inf").as_f64(), Some(f64::NEG_INFINITY));
        assert!(r(".NaN").as_f64().is_some_and(f64::is_nan));
        assert_eq!(r("False"), Value::Bool(false));
        assert!(r("~").is_null());
        // YAML 1.1 spellings are strings in 1.2 (docker compose's `on`/`yes` pitfalls).
        assert_eq!(r("yes").as_str(), Some("yes"));
        assert_eq!(r("on").as_str(), Some("on"));
        assert_eq!(r("1.2.3").as_str(), Some("1.2.3"));
        assert_eq!(r("80:80").as_str(), Some("80:80"));
        assert_eq!(r("inf").as_str(), Some("inf"));
        assert_eq!(r(".").as_str(), Some("."));
        assert_eq!(resolve_scalar("80", false, None).as_str(), Some("80"));
        assert_eq!(resolve_scalar("80", true, Some("str")).as_str(), Some("80"));
        assert_eq!(resolve_scalar("x", true, Some("int")).as_str(), Some("x"));
    }

    #[test]
    fn merge_keys_resolve_with_positions() {
        let text = "base: &b\n  privileged: true\n  image: x\nsvc:\n  <<: *b\n  image: y\n";
        let (mut v, ix) = parse(text).unwrap();
        v.apply_merge().unwrap();
        assert_eq!(v["svc"]["privileged"], Value::Bool(true));
        assert_eq!(v["svc"]["image"].as_str(), Some("y"));
        assert!(v["svc"].get("<<").is_none());
        // The merged key is located where the anchor wrote it; the written one where it is.
        let p = ix.get(&["svc", "privileged"]).unwrap();
        assert_eq!(&text[p.value.clone()], "true");
        assert_eq!(p.key.start, text.find("privileged").unwrap());
        let p = ix.get(&["svc", "image"]).unwrap();
        assert_eq!(&text[p.value.clone()], "y");
    }

    #[test]
    fn merge_of_a_scalar_is_an_error() {
        let (mut v, _) = parse("a:\n  <<: 1\n").unwrap();
        assert!(v.apply_merge().is_err());
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_do_not_parse() {
        assert!(parse("a: 1\na: 2\n").is_none());
        assert!(parse("a: [1, 2\n").is_none());
        assert!(parse("a: *missing\n").is_none());
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!(
                "l{i}: &l{i} [{}]\n",
                vec![format!("*{prev}"); 10].join(", ")
            ));
        }
        assert!(parse(&bomb).is_none());
        assert!(parse(&"- ".repeat(1_000_000)).is_none());
        // Aliases may not nest deeper than parsing would allow either.
        let mut chain = String::from("a0: &a0 [x]\n");
        for i in 1..200 {
            chain.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        assert!(parse(&chain).is_none());
    }

    #[test]
    fn non_ascii_text_keeps_byte_positions() {
        let text = "name: \"é ü\"\nports:\n  - \"0.0.0.0:1:1\"\n";
        let (_, ix) = parse(text).unwrap();
        let p = ix.get(&["ports", "0"]).unwrap();
        assert_eq!(&text[p.value.clone()], "\"0.0.0.0:1:1\"");
        assert_eq!(&text[p.key.clone()], "-");
    }

    #[test]
    fn only_the_first_document() {
        let (v, _) = parse("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(v["a"].as_i64(), Some(1));
        assert!(v.get("b").is_none());
    }
}
