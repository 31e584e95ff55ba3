//! Positions for YAML documents. `serde_yaml_ng` gives values without spans, so this module
//! reads the text once, line by line, and records where each block-style key and sequence item
//! sits, by path (`services` / `api` / `ports` / `0`). Rules evaluate the parsed value, then ask
//! this index where the offending node is, so a finding carries an exact line and column.
//!
//! It understands what compose files and workflows use: block mappings, block sequences
//! (indented or not), `- key: value` items, and literal/folded block scalars (`run: |`), whose
//! content range is kept so a rule can point inside a script. Flow collections (`[a, b]`) are
//! kept as one value range; [`YamlIndex::find_in`] locates an element inside it.

use std::collections::HashMap;
use std::ops::Range;

/// Where one node is: the key (or the `-` of a sequence item) and its value text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlPos {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// Path -> position for every block-style node of the first document.
#[derive(Debug, Default)]
pub struct YamlIndex {
    nodes: HashMap<String, YamlPos>,
}

#[derive(Debug)]
struct Frame {
    indent: usize,
    seg: String,
    is_item: bool,
}

const SEP: char = '\u{1f}';

/// Deeper nesting than this is not indexed (hostile input must not exhaust the stack).
const MAX_DEPTH: usize = 128;

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
    /// Index `text`. Never fails: lines it does not understand are skipped.
    pub fn new(text: &str) -> YamlIndex {
        let mut b = Builder {
            text,
            idx: YamlIndex::default(),
            stack: Vec::new(),
            counters: HashMap::new(),
            block: None,
        };
        let mut offset = 0;
        for raw in text.split_inclusive('\n') {
            let line = raw.trim_end_matches(['\n', '\r']);
            if !b.line(offset, line) {
                break;
            }
            offset += raw.len();
        }
        b.idx
    }

    /// The position of the node at `path`, if it was written in block style.
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

struct Builder<'t> {
    text: &'t str,
    idx: YamlIndex,
    stack: Vec<Frame>,
    counters: HashMap<String, usize>,
    /// Inside a block scalar: (indent of its owner, path key of its node).
    block: Option<(usize, String)>,
}

impl Builder<'_> {
    /// Returns false at the end of the first document.
    fn line(&mut self, offset: usize, line: &str) -> bool {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if let Some((owner, key)) = &self.block {
            if content.trim().is_empty() || indent > *owner {
                if !content.trim().is_empty() {
                    if let Some(p) = self.idx.nodes.get_mut(key) {
                        if p.value.start == p.value.end {
                            p.value.start = offset + indent;
                        }
                        p.value.end = offset + line.len();
                    }
                }
                return true;
            }
            self.block = None;
        }
        if content.is_empty() || content.starts_with('#') {
            return true;
        }
        if indent == 0 && (content.starts_with("---") || content.starts_with("...")) {
            // A document marker after content ends the first document.
            return self.idx.nodes.is_empty() && self.stack.is_empty();
        }
        self.node(offset + indent, indent, content);
        true
    }

    fn path_with(&self, seg: &str) -> String {
        let mut segs: Vec<&str> = self.stack.iter().map(|f| f.seg.as_str()).collect();
        segs.push(seg);
        join(&segs)
    }

    /// One node starting at byte `at`, column `col` (0-based), text `content`.
    fn node(&mut self, at: usize, col: usize, content: &str) {
        // `- - - - ...` recurses once per dash; real files nest a handful deep.
        if self.stack.len() > MAX_DEPTH {
            return;
        }
        if content == "-" || content.starts_with("- ") {
            while self
                .stack
                .last()
                .is_some_and(|f| f.indent > col || (f.indent == col && f.is_item))
            {
                self.stack.pop();
            }
            let parent = join(
                &self
                    .stack
                    .iter()
                    .map(|f| f.seg.as_str())
                    .collect::<Vec<_>>(),
            );
            let n = self.counters.entry(parent).or_insert(0);
            let i = n.to_string();
            *n += 1;
            let rest = content[1..].trim_start_matches(' ');
            let rest_at = at + (content.len() - rest.len());
            let path = self.path_with(&i);
            let value = rest_at..at + content.trim_end().len().max(1);
            self.idx.nodes.entry(path.clone()).or_insert(YamlPos {
                key: at..at + 1,
                value: value.clone(),
            });
            self.stack.push(Frame {
                indent: col,
                seg: i,
                is_item: true,
            });
            if rest.starts_with('|') || rest.starts_with('>') {
                self.start_block(col, path, rest_at + rest.len());
            } else if !rest.is_empty() && !rest.starts_with('#') {
                let rest_col = col + (content.len() - rest.len());
                self.node(rest_at, rest_col, rest);
            }
            return;
        }
        let Some((key, key_len)) = split_key(content) else {
            return;
        };
        while self.stack.last().is_some_and(|f| f.indent >= col) {
            self.stack.pop();
        }
        let after = &content[key_len + 1..];
        let v = after.trim_start_matches(' ');
        let v_at = at + key_len + 1 + (after.len() - v.len());
        let v_end = at + content.trim_end().len();
        let value = if v.starts_with('#') {
            v_at..v_at
        } else {
            v_at..v_end.max(v_at)
        };
        let path = self.path_with(&key);
        self.idx.nodes.entry(path.clone()).or_insert(YamlPos {
            key: at..at + key_len,
            value,
        });
        self.stack.push(Frame {
            indent: col,
            seg: key,
            is_item: false,
        });
        if v.starts_with('|') || v.starts_with('>') {
            self.start_block(col, path, v_end);
        }
    }

    fn start_block(&mut self, owner: usize, path: String, at: usize) {
        // The content starts on the next line; until a content line is seen the value is empty.
        if let Some(p) = self.idx.nodes.get_mut(&path) {
            let next = self.text[at..].find('\n').map(|i| at + i + 1).unwrap_or(at);
            p.value = next..next;
        }
        self.block = Some((owner, path));
    }
}

/// Split `key: value` / `key:` / `"key": value`; returns the unquoted key and the byte length of
/// the key text (so `content[len]` is the colon).
fn split_key(content: &str) -> Option<(String, usize)> {
    let b = content.as_bytes();
    match b.first()? {
        q @ (b'"' | b'\'') => {
            let close = content[1..].find(*q as char)? + 1;
            let len = close + 1;
            let rest = &content[len..];
            let after = rest.strip_prefix(':')?;
            if after.is_empty() || after.starts_with(' ') {
                Some((content[1..close].to_owned(), len))
            } else {
                None
            }
        }
        b'[' | b'{' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' => None,
        _ => {
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b':' if i + 1 == b.len() || b[i + 1] == b' ' => {
                        let key = content[..i].trim_end();
                        return (!key.is_empty()).then(|| (key.to_owned(), i));
                    }
                    b'#' if i > 0 && b[i - 1] == b' ' => return None,
                    _ => {}
                }
                i += 1;
            }
            None
        }
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
        let text = "- ".repeat(1_000_000);
        let ix = YamlIndex::new(&text);
        assert!(ix.get(&["0"]).is_some());
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
