//! A string-keyed map that serialises in insertion order (compose services, workflow jobs,
//! `with:`, `env:`, permissions): deterministic output that reads in the order it was built.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// An ordered string-keyed map (job ids, `with:`, `env:`, permissions) that serialises in
/// insertion order, so the output is deterministic and reads in the order it was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    /// Append `k: v`.
    pub fn with(mut self, k: impl Into<String>, v: V) -> Self {
        self.0.push((k.into(), v));
        self
    }
    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
