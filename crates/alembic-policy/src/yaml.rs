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
use std::fmt::{self, Write as _};
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::yamlpos::{YamlIndex, YamlPos};

mod value;

pub use value::*;

/// Deeper nesting than this (counting what aliases expand to) is not parsed.
pub const MAX_DEPTH: usize = 64;

/// Nodes that alias expansion may produce in one document ("billion laughs" bound).
pub const ALIAS_BUDGET: usize = 100_000;

/// A parsed node with its byte span, kept until the value and the index are built.
#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    span: Range<usize>,
    /// Nesting levels of collections inside (0 for a scalar).
    height: usize,
    /// Nodes in this subtree (for the alias budget).
    size: usize,
}

#[derive(Clone, Debug)]
enum Kind {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A collection being built.
struct Open {
    kind: Kind,
    start: usize,
    anchor: usize,
    /// Map only: the key read, waiting for its value.
    key: Option<Node>,
    /// Map only: the keys seen, for duplicate detection.
    seen: HashSet<String, foldhash::fast::RandomState>,
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
        let at_start = at.start;
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
                let kind = match ev {
                    Event::SequenceStart(..) => Kind::Seq(Vec::new()),
                    _ => Kind::Map(Vec::new()),
                };
                stack.push(Open {
                    kind,
                    start: at.start,
                    anchor,
                    key: None,
                    seen: HashSet::default(),
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = stack
                    .pop()
                    .ok_or_else(|| ParseError::new(Some(at.start), "unbalanced collection end"))?;
                if open.key.is_some() {
                    return Err(ParseError::new(Some(at.start), "a key without a value"));
                }
                let (height, size) = match &open.kind {
                    Kind::Seq(items) => items
                        .iter()
                        .fold((1, 1), |(h, s), n| (h.max(n.height + 1), s + n.size)),
                    Kind::Map(entries) => entries.iter().fold((1, 1), |(h, s), (k, v)| {
                        (h.max(k.height + 1).max(v.height + 1), s + k.size + v.size)
                    }),
                    Kind::Scalar(_) => (0, 1),
                };
                // A block collection's end event sits where the next token starts: end the span
                // at its last child instead, so it never covers the following lines.
                let end = match &open.kind {
                    Kind::Seq(items) => items.last().map(|n| n.span.end),
                    Kind::Map(entries) => entries.last().map(|(_, v)| v.span.end),
                    Kind::Scalar(_) => None,
                };
                let flow = text
                    .get(open.start..)
                    .is_some_and(|t| t.starts_with(['[', '{']));
                let end = if flow { at.end } else { end.unwrap_or(at.end) };
                let node = Node {
                    kind: open.kind,
                    span: open.start..end.max(open.start),
                    height,
                    size,
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
                    kind: Kind::Scalar(value),
                    span: at.start..end,
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
        match stack.last_mut() {
            None => {
                root = Some(node);
            }
            Some(open) => match &mut open.kind {
                Kind::Seq(items) => items.push(node),
                Kind::Map(entries) => match open.key.take() {
                    None => open.key = Some(node),
                    Some(key) => {
                        let k = key_id(&key);
                        if !open.seen.insert(k) {
                            return Err(ParseError::new(Some(key.span.start), "duplicate key"));
                        }
                        entries.push((key, node));
                    }
                },
                Kind::Scalar(_) => {
                    return Err(ParseError::new(Some(at_start), "a value inside a scalar"))
                }
            },
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::new(
            None,
            "the document ends inside a collection",
        ));
    }
    let root = root.unwrap_or(Node {
        kind: Kind::Scalar(Value::Null),
        span: 0..0,
        height: 0,
        size: 1,
    });
    // About one entry per key/value pair or item: about half the nodes (sized once instead of
    // growing and rehashing; capped, since aliases count their expansion).
    let mut index = YamlIndex::with_capacity((root.size / 2).min(16_384));
    let mut path = PathBuf {
        joined: String::new(),
        depth: 0,
    };
    index_node(text, &root, &mut path, &mut index);
    Ok((to_value(root), index))
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

/// Identity of a key for duplicate detection: its value, typed. String keys (nearly all) are
/// their text behind a NUL, which no other value's debug form starts with; the rest are their
/// debug form (formatting every key cost more than parsing it).
fn key_id(key: &Node) -> String {
    match &key.kind {
        Kind::Scalar(Value::String(s)) => {
            let mut id = String::with_capacity(s.len() + 1);
            id.push('\0');
            id.push_str(s);
            id
        }
        _ => format!("{:?}", to_value(key.clone())),
    }
}

fn to_value(node: Node) -> Value {
    match node.kind {
        Kind::Scalar(v) => v,
        Kind::Seq(items) => Value::Sequence(items.into_iter().map(to_value).collect()),
        Kind::Map(entries) => Value::Mapping(Mapping {
            entries: entries
                .into_iter()
                .map(|(k, v)| (to_value(k), to_value(v)))
                .collect(),
        }),
    }
}

/// The path segment of a mapping key: scalar keys as their text; collection keys have none.
fn key_text(key: &Node) -> Option<Cow<'_, str>> {
    match &key.kind {
        Kind::Scalar(Value::String(s)) => Some(Cow::Borrowed(s)),
        Kind::Scalar(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
        Kind::Scalar(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Kind::Scalar(Value::Null) => Some(Cow::Borrowed("null")),
        _ => None,
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

/// The joined path of a node being indexed: one buffer for the whole walk (segments are pushed
/// and truncated), so indexing allocates one key per node instead of a path of strings.
struct PathBuf {
    joined: String,
    depth: usize,
}

impl PathBuf {
    /// Push `seg`, returning the length to truncate back to.
    fn push(&mut self, seg: &str) -> usize {
        let len = self.joined.len();
        if self.depth > 0 {
            self.joined.push(crate::yamlpos::SEP);
        }
        self.joined.push_str(seg);
        self.depth += 1;
        len
    }

    fn pop(&mut self, len: usize) {
        self.joined.truncate(len);
        self.depth -= 1;
    }
}

/// Record `node` and everything under it at `path`. Depth is bounded by [`MAX_DEPTH`].
fn index_node(text: &str, node: &Node, path: &mut PathBuf, index: &mut YamlIndex) {
    match &node.kind {
        Kind::Scalar(_) => {}
        Kind::Seq(items) => {
            let mut digits = String::new();
            for (i, item) in items.iter().enumerate() {
                digits.clear();
                let _ = write!(digits, "{i}");
                let len = path.push(&digits);
                index.insert_joined(
                    &path.joined,
                    YamlPos {
                        key: dash_span(text, &item.span),
                        value: item.span.clone(),
                    },
                );
                index_node(text, item, path, index);
                path.pop(len);
            }
        }
        Kind::Map(entries) => {
            let merge = entries
                .iter()
                .find(|(k, _)| matches!(&k.kind, Kind::Scalar(Value::String(s)) if s == "<<"));
            let Some((_, merge)) = merge else {
                for (k, v) in entries {
                    let Some(seg) = key_text(k) else { continue };
                    index_entry(text, &seg, k, v, path, index);
                }
                return;
            };
            let mut written: HashSet<Cow<'_, str>> = HashSet::new();
            for (k, v) in entries {
                let Some(seg) = key_text(k) else { continue };
                index_entry(text, &seg, k, v, path, index);
                written.insert(seg);
            }
            // Merge keys: a merged key is located where its source wrote it, under this path,
            // unless the mapping writes it itself (apply_merge's precedence).
            let sources: Vec<&Node> = match &merge.kind {
                Kind::Map(_) => vec![merge],
                Kind::Seq(items) => items.iter().collect(),
                Kind::Scalar(_) => Vec::new(),
            };
            for src in sources {
                let Kind::Map(src_entries) = &src.kind else {
                    continue;
                };
                for (k, v) in src_entries {
                    let Some(seg) = key_text(k) else { continue };
                    if seg == "<<" || written.contains(&seg) {
                        continue;
                    }
                    index_entry(text, &seg, k, v, path, index);
                    written.insert(seg);
                }
            }
        }
    }
}

fn index_entry(
    text: &str,
    seg: &str,
    k: &Node,
    v: &Node,
    path: &mut PathBuf,
    index: &mut YamlIndex,
) {
    let len = path.push(seg);
    index.insert_joined(
        &path.joined,
        YamlPos {
            key: k.span.clone(),
            value: v.span.clone(),
        },
    );
    index_node(text, v, path, index);
    path.pop(len);
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
