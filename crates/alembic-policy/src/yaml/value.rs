//! The value model: [`Value`], [`Number`], [`Mapping`] with serde_yaml's shape and accessors,
//! and the merge-key expansion.

use super::*;

/// A YAML value, with serde_yaml's shape and accessors.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    #[default]
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer or a float.
    Number(Number),
    /// A string (every scalar that is not null, a boolean or a number).
    String(String),
    /// A sequence.
    Sequence(Sequence),
    /// A mapping, in file order.
    Mapping(Mapping),
}

/// A YAML sequence.
pub type Sequence = Vec<Value>;

/// A YAML number: an integer when it is one, else a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(N);

#[derive(Clone, Copy, Debug, PartialEq)]
enum N {
    Int(i64),
    Float(f64),
}

impl Number {
    /// The integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            N::Int(i) => Some(i),
            N::Float(_) => None,
        }
    }

    /// The integer, when it is one and not negative.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|i| u64::try_from(i).ok())
    }

    /// The value as a float.
    pub fn as_f64(&self) -> Option<f64> {
        Some(match self.0 {
            N::Int(i) => i as f64,
            N::Float(f) => f,
        })
    }

    /// Is it an integer?
    pub fn is_i64(&self) -> bool {
        matches!(self.0, N::Int(_))
    }

    /// Is it a float?
    pub fn is_f64(&self) -> bool {
        matches!(self.0, N::Float(_))
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Number(N::Int(i))
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Self {
        Number(N::Float(f))
    }
}

impl fmt::Display for Number {
    /// As serde_yaml writes numbers: `80`, `1.5`, `1.0`, `.inf`, `-.inf`, `.nan`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            N::Int(i) => write!(f, "{i}"),
            N::Float(x) if x.is_nan() => f.write_str(".nan"),
            N::Float(x) if x.is_infinite() => f.write_str(if x > 0.0 { ".inf" } else { "-.inf" }),
            N::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// An ordered YAML mapping (file order; keys merged by [`Value::apply_merge`] come last).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapping {
    pub(super) entries: Vec<(Value, Value)>,
}

/// What can look a value up: a string key (or a [`Value`] key) in a mapping, an index in a
/// sequence.
pub trait Index {
    /// The value this index names in `v`.
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value>;
    /// [`Index::index_into`], to change.
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value>;
}

impl Index for str {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_mapping()?.get(self)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_mapping_mut()?.get_mut(self)
    }
}

impl Index for String {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.as_str().index_into(v)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        self.as_str().index_into_mut(v)
    }
}

impl Index for Value {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_mapping()?.get(self)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_mapping_mut()?.get_mut(self)
    }
}

impl Index for usize {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_sequence()?.get(*self)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_sequence_mut()?.get_mut(*self)
    }
}

impl<T: Index + ?Sized> Index for &T {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        (**self).index_into(v)
    }
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        (**self).index_into_mut(v)
    }
}

/// Mapping keys compare by value: `"80"` and `80` are different keys.
pub trait Key {
    /// Is `k` this key?
    fn is_key(&self, k: &Value) -> bool;
}

impl Key for str {
    fn is_key(&self, k: &Value) -> bool {
        k.as_str() == Some(self)
    }
}

impl Key for String {
    fn is_key(&self, k: &Value) -> bool {
        k.as_str() == Some(self.as_str())
    }
}

impl Key for Value {
    fn is_key(&self, k: &Value) -> bool {
        k == self
    }
}

impl<T: Key + ?Sized> Key for &T {
    fn is_key(&self, k: &Value) -> bool {
        (**self).is_key(k)
    }
}

impl Mapping {
    /// An empty mapping.
    pub fn new() -> Mapping {
        Mapping::default()
    }

    /// The value under `key`.
    pub fn get<K: Key + ?Sized>(&self, key: &K) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| key.is_key(k))
            .map(|(_, v)| v)
    }

    /// The value under `key`, to change.
    pub fn get_mut<K: Key + ?Sized>(&mut self, key: &K) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| key.is_key(k))
            .map(|(_, v)| v)
    }

    /// Is there a value under `key`?
    pub fn contains_key<K: Key + ?Sized>(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Set `key` to `value`, returning the value it replaced (the entry keeps its place).
    pub fn insert(&mut self, key: Value, value: Value) -> Option<Value> {
        match self.get_mut(&key) {
            Some(v) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Remove `key`, returning its value.
    pub fn remove<K: Key + ?Sized>(&mut self, key: &K) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| key.is_key(k))?;
        Some(self.entries.remove(i).1)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The entries in order, values to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Value, &mut Value)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in order, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for &'a Mapping {
    type Item = (&'a Value, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Value, Value)>,
        fn(&'a (Value, Value)) -> (&'a Value, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl IntoIterator for Mapping {
    type Item = (Value, Value);
    type IntoIter = std::vec::IntoIter<(Value, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(Value, Value)> for Mapping {
    fn from_iter<I: IntoIterator<Item = (Value, Value)>>(iter: I) -> Self {
        let mut m = Mapping::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

static NULL: Value = Value::Null;

impl<I: Index> std::ops::Index<I> for Value {
    type Output = Value;
    /// Like serde_yaml: a missing key or index is `Null`, never a panic.
    fn index(&self, index: I) -> &Value {
        index.index_into(self).unwrap_or(&NULL)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Number(i.into())
    }
}

/// Why [`Value::apply_merge`] could not merge: a `<<` whose value is not a mapping or a
/// sequence of mappings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeError(&'static str);

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for MergeError {}

impl Value {
    /// The value at `index` (a key of a mapping or a position in a sequence).
    pub fn get<I: Index>(&self, index: I) -> Option<&Value> {
        index.index_into(self)
    }

    /// [`Value::get`], to change.
    pub fn get_mut<I: Index>(&mut self, index: I) -> Option<&mut Value> {
        index.index_into_mut(self)
    }

    /// Is it `null`?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, when it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The integer, when it is one and not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The number as a float, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// Is it a string?
    pub fn is_string(&self) -> bool {
        self.as_str().is_some()
    }

    /// The sequence, when it is one.
    pub fn as_sequence(&self) -> Option<&Sequence> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// The sequence, to change.
    pub fn as_sequence_mut(&mut self) -> Option<&mut Sequence> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// Is it a sequence?
    pub fn is_sequence(&self) -> bool {
        self.as_sequence().is_some()
    }

    /// The mapping, when it is one.
    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, to change.
    pub fn as_mapping_mut(&mut self) -> Option<&mut Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// Is it a mapping?
    pub fn is_mapping(&self) -> bool {
        self.as_mapping().is_some()
    }

    /// Resolve YAML merge keys (`<<: *base`, `<<: [*a, *b]`) everywhere in the value, as
    /// serde_yaml's `apply_merge` does: keys written in the mapping win over merged ones, and an
    /// earlier source wins over a later one; merged keys are appended in the source's order.
    /// The positions of merged keys are in the [`YamlIndex`] already (under the merging
    /// mapping's path), so a rule that merges first still reports exact locations.
    pub fn apply_merge(&mut self) -> Result<(), MergeError> {
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Value::Mapping(m) => {
                    match m.remove("<<") {
                        Some(Value::Mapping(src)) => merge_into(m, src),
                        Some(Value::Sequence(srcs)) => {
                            for src in srcs {
                                match src {
                                    Value::Mapping(src) => merge_into(m, src),
                                    Value::Sequence(_) => {
                                        return Err(MergeError(
                                            "expected a mapping for merging, but found a sequence",
                                        ))
                                    }
                                    _ => {
                                        return Err(MergeError(
                                            "expected a mapping for merging, but found a scalar",
                                        ))
                                    }
                                }
                            }
                        }
                        None => {}
                        Some(_) => {
                            return Err(MergeError(
                                "expected a mapping or list of mappings for merging, but found a scalar",
                            ))
                        }
                    }
                    stack.extend(m.values_mut());
                }
                Value::Sequence(s) => stack.extend(s.iter_mut()),
                _ => {}
            }
        }
        Ok(())
    }
}

fn merge_into(m: &mut Mapping, src: Mapping) {
    for (k, v) in src {
        if !m.contains_key(&k) {
            m.entries.push((k, v));
        }
    }
}
