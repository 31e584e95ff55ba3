//! Positions for YAML documents, by path (`services` / `api` / `ports` / `0`), recorded by
//! [`crate::yaml::parse`] from the parser's own spans: block and flow collections, quoted and
//! block scalars (`run: |`, whose range lets a rule point inside a script), aliases (located at
//! the anchor's nodes) and merge keys (a merged key is found under the merging mapping's path).
//! Rules evaluate the parsed value, then ask this index where the offending node is, so a
//! finding carries an exact line and column.

use std::collections::HashMap;
use std::ops::Range;

/// Where one node is: the key (or the `-` of a sequence item) and its value text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlPos {
    /// The key (or the `-` of a sequence item).
    pub key: Range<usize>,
    /// The value's text.
    pub value: Range<usize>,
}

/// Path -> position for every node of the first document.
#[derive(Debug, Default)]
pub struct YamlIndex {
    /// Hashed with foldhash: a joined path is hashed twice per node while indexing, and
    /// SipHash's flooding resistance is not needed for a map bounded by the file's own size.
    nodes: HashMap<String, YamlPos, foldhash::fast::RandomState>,
}

/// Separates the segments of a joined path.
pub(crate) const SEP: char = '\u{1f}';

fn join<S: AsRef<str>>(segs: &[S]) -> String {
    let mut out = String::new();
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.push_str(s.as_ref());
    }
    out
}

impl YamlIndex {
    /// An empty index with room for `n` nodes.
    pub(crate) fn with_capacity(n: usize) -> YamlIndex {
        YamlIndex {
            nodes: HashMap::with_capacity_and_hasher(n, foldhash::fast::RandomState::default()),
        }
    }

    /// Record `pos` at an already joined path (the first position recorded for a path wins).
    pub(crate) fn insert_joined(&mut self, joined: &str, pos: YamlPos) {
        if !self.nodes.contains_key(joined) {
            self.nodes.insert(joined.to_owned(), pos);
        }
    }

    /// The position of the node at `path`.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<&YamlPos> {
        self.nodes.get(&join(path))
    }

    /// The span to report for `path`: the node's key, else its nearest indexed ancestor's key,
    /// else the start of the file.
    pub fn key_span<S: AsRef<str>>(&self, path: &[S]) -> Range<usize> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.get(&path[..n]).map(|p| p.key.clone()))
            .unwrap_or(0..0)
    }

    /// The span of the value at `path` (falling back like [`Self::key_span`]).
    pub fn value_span<S: AsRef<str>>(&self, path: &[S]) -> Range<usize> {
        match self.get(path) {
            Some(p) => p.value.clone(),
            None => self.key_span(path),
        }
    }

    /// Locate element `i` of the sequence at `path`: its own entry when written in block style,
    /// else the first occurrence of `needle` inside the (flow) value, else the sequence's key.
    pub fn item_span<S: AsRef<str>>(
        &self,
        text: &str,
        path: &[S],
        i: usize,
        needle: &str,
    ) -> Range<usize> {
        let mut p: Vec<String> = path.iter().map(|s| s.as_ref().to_owned()).collect();
        p.push(i.to_string());
        if let Some(pos) = self.get(&p) {
            return pos.value.clone();
        }
        p.pop();
        // In a flow sequence, point at the element's opening quote, as block items do.
        [
            format!("\"{needle}\""),
            format!("'{needle}'"),
            needle.to_owned(),
        ]
        .iter()
        .find_map(|n| self.find_in(text, &p, n))
        .unwrap_or_else(|| self.key_span(&p))
    }

    /// First occurrence of `needle` inside the value of `path`.
    pub fn find_in<S: AsRef<str>>(
        &self,
        text: &str,
        path: &[S],
        needle: &str,
    ) -> Option<Range<usize>> {
        let v = self.get(path)?.value.clone();
        let hay = text.get(v.clone())?;
        hay.find(needle)
            .map(|i| v.start + i..v.start + i + needle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, r: Range<usize>) -> &str {
        &text[r]
    }

    #[test]
    fn keys_items_and_blocks() {
        let text = "services:\n  api:\n    image: x:1\n    ports:\n      - \"80:80\"\n      - target: 1\n        host_ip: 0.0.0.0\n    ports2:\n    - a\n    - b\n  db:\n    privileged: true\njobs:\n  t:\n    steps:\n      - run: |\n          echo one\n          echo two\n        shell: bash\n";
        let ix = YamlIndex::new(text);
        let p = ix.get(&["services", "api", "image"]).unwrap();
        assert_eq!(at(text, p.key.clone()), "image");
        assert_eq!(at(text, p.value.clone()), "x:1");
        let p = ix.get(&["services", "api", "ports", "0"]).unwrap();
        assert_eq!(at(text, p.value.clone()), "\"80:80\"");
        let p = ix
            .get(&["services", "api", "ports", "1", "host_ip"])
            .unwrap();
        assert_eq!(at(text, p.value.clone()), "0.0.0.0");
        let p = ix.get(&["services", "api", "ports2", "1"]).unwrap();
        assert_eq!(at(text, p.value.clone()), "b");
        let p = ix.get(&["services", "db", "privileged"]).unwrap();
        assert_eq!(at(text, p.value.clone()), "true");
        let p = ix.get(&["jobs", "t", "steps", "0", "run"]).unwrap();
        assert_eq!(
            at(text, p.value.clone()),
            "          echo one\n          echo two".trim_start()
        );
        let p = ix.get(&["jobs", "t", "steps", "0", "shell"]).unwrap();
        assert_eq!(at(text, p.value.clone()), "bash");
    }

    #[test]
    fn hostile_nesting_does_not_overflow() {
        // Refused at the depth limit instead of recursing a million levels.
        let text = "- ".repeat(1_000_000);
        let ix = YamlIndex::new(&text);
        assert!(ix.get(&["0"]).is_none());
    }

    // The line index this replaced could not see these: anchors/aliases, merge keys, flow
    // collections spread over lines.
    #[test]
    fn anchors_merges_and_multiline_flow() {
        let text = "x-base: &base\n  privileged: true\nservices:\n  api:\n    <<: *base\n    ports: [\n      \"1:1\",\n      \"0.0.0.0:2:2\"\n      ]\n";
        let ix = YamlIndex::new(text);
        let p = ix.get(&["services", "api", "privileged"]).unwrap();
        assert_eq!(at(text, p.value.clone()), "true");
        assert_eq!(p.key.start, text.find("privileged").unwrap());
        let p = ix.get(&["services", "api", "ports", "1"]).unwrap();
        assert_eq!(at(text, p.value.clone()), "\"0.0.0.0:2:2\"");
    }

    #[test]
    fn flow_values_and_quoted_keys() {
        let text = "\"on\": push\nports: [\"1:1\", \"0.0.0.0:2:2\"]\n";
        let ix = YamlIndex::new(text);
        assert_eq!(at(text, ix.key_span(&["on"])), "\"on\"");
        let r = ix.item_span(text, &["ports"], 1, "0.0.0.0:2:2");
        assert_eq!(at(text, r), "\"0.0.0.0:2:2\"");
    }
}
