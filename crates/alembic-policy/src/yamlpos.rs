//! Positions for YAML documents, by path (`services` / `api` / `ports` / `0`), recorded by
//! [`crate::yaml::parse`] from the parser's own spans: block and flow collections, quoted and
//! block scalars (`run: |`, whose range lets a rule point inside a script), aliases (located at
//! the anchor's nodes) and merge keys (a merged key is found under the merging mapping's path).
//! Rules evaluate the parsed value, then ask this index where the offending node is, so a
//! finding carries an exact line and column.

use std::ops::Range;

/// Where one node is: the key (or the `-` of a sequence item) and its value text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlPos {
    /// The key (or the `-` of a sequence item).
    pub key: Range<usize>,
    /// The value's text.
    pub value: Range<usize>,
}

/// The positions of every node of the first document, as a tree shaped like the document:
/// built from the parser's spans in the same pass as the value, and looked up by path only
/// when a rule reports a finding (most files have none, so no path is ever joined or hashed).
#[derive(Debug, Default)]
pub struct YamlIndex {
    /// The document's text: plain keys are kept as ranges into it instead of copies.
    text: Box<str>,
    root: Children,
}

/// The positions of a node's children.
#[derive(Clone, Debug, Default)]
pub(crate) enum Children {
    /// A scalar (or an empty document).
    #[default]
    Leaf,
    /// A sequence's items, in order.
    Seq(Vec<Located>),
    /// A mapping's entries, in file order (merge keys unresolved: see [`YamlIndex::get`]).
    Map(Vec<Located>),
}

/// One child: its path segment (mapping entries), where it is, and its own children.
#[derive(Clone, Debug)]
pub(crate) struct Located {
    pub(crate) key: KeyText,
    pub(crate) pos: YamlPos,
    pub(crate) children: Children,
}

/// A mapping key as a path segment.
#[derive(Clone, Debug)]
pub(crate) enum KeyText {
    /// No segment: a sequence item, or a collection used as a key.
    None,
    /// The key is this range of the text, as written (plain and simply quoted keys).
    Text(Range<usize>),
    /// The key's segment when the text does not spell it (escapes, numbers, booleans, null).
    Owned(Box<str>),
}

impl YamlIndex {
    /// The index of a document whose root's children are `root`.
    pub(crate) fn from_tree(text: &str, root: Children) -> YamlIndex {
        YamlIndex {
            text: text.into(),
            root,
        }
    }

    fn is(&self, key: &KeyText, seg: &str) -> bool {
        match key {
            KeyText::None => false,
            KeyText::Text(r) => self.text.get(r.clone()) == Some(seg),
            KeyText::Owned(s) => &**s == seg,
        }
    }

    /// The child of `node` named `seg`: a sequence item by its decimal index; a mapping's own
    /// key first (the first entry spelled `seg`), else a key merged in by `<<`, located where
    /// its source wrote it (the first source that has it, as `apply_merge` resolves it).
    fn child<'a>(&'a self, node: &'a Children, seg: &str) -> Option<&'a Located> {
        match node {
            Children::Leaf => None,
            Children::Seq(items) => items.get(item_index(seg)?),
            Children::Map(entries) => {
                if let Some(e) = entries.iter().find(|e| self.is(&e.key, seg)) {
                    return Some(e);
                }
                let merge = entries.iter().find(|e| self.is(&e.key, "<<"))?;
                let in_source = |src: &'a Children| match src {
                    Children::Map(src) => src.iter().find(|e| self.is(&e.key, seg)),
                    _ => None,
                };
                match &merge.children {
                    Children::Seq(sources) => sources.iter().find_map(|s| in_source(&s.children)),
                    map => in_source(map),
                }
            }
        }
    }

    /// The position of the node at `path` (the empty path names a top-level key `""`, as a
    /// joined path would).
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<&YamlPos> {
        if path.is_empty() {
            return self.child(&self.root, "").map(|e| &e.pos);
        }
        let mut node = &self.root;
        let mut pos = None;
        for seg in path {
            let e = self.child(node, seg.as_ref())?;
            pos = Some(&e.pos);
            node = &e.children;
        }
        pos
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

/// A sequence index written as a path segment: decimal, without leading zeros.
fn item_index(seg: &str) -> Option<usize> {
    let canonical = !seg.is_empty()
        && seg.bytes().all(|b| b.is_ascii_digit())
        && (seg.len() == 1 || !seg.starts_with('0'));
    canonical.then(|| seg.parse().ok()).flatten()
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
