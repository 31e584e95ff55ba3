//! HCL text in the exact layout `terraform fmt` produces.
//!
//! `hcl-rs` serializes a [`hcl::Body`] correctly but does not align the `=` of neighbouring
//! attributes the way `terraform fmt` (hclwrite) does, so its raw output fails
//! `terraform fmt -check`. [`format_body`] serializes with compact arrays (short lists stay on
//! one line, as people write them) and then runs [`align_equals`], a re-implementation of
//! hclwrite's `formatCells` rule:
//!
//! - a line "has an assignment" when it contains a top-level `=` after its first token and the
//!   rest of the line opens no bracket it does not close (so `tags = {` is *not* one: a
//!   multi-line value breaks the run, as does a blank line, a block header or a closing brace);
//! - each run of consecutive assignment lines pads its keys so every `=` sits one space after
//!   the longest key of the run.
//!
//! The real `terraform fmt -check` proves the result in the tests.

/// Serialize `body` and align it like `terraform fmt`.
pub(crate) fn format_body(body: &hcl::Body) -> String {
    let mut f = hcl::format::Formatter::builder()
        .compact_arrays(true)
        .prefer_ident_keys(true)
        .build_vec();
    // Serializing an in-memory Body only fails on I/O errors of the Vec writer, which cannot
    // happen; an empty string would make the checker tests fail loudly if it ever did.
    let raw = hcl::format::Format::format_string(body, &mut f).unwrap_or_default();
    let mut out = align_equals(&raw);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// One source line split at its assignment `=`: `lead` is the indented key, `rest` starts at the
/// `=`. `None` when the line is not a single-line assignment.
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    let indent = bytes.iter().take_while(|b| **b == b' ').count();
    let mut i = indent;
    // The first token: an identifier or a quoted string (object keys may be quoted).
    if i < bytes.len() && bytes[i] == b'"' {
        i = skip_string(bytes, i)?;
    } else {
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || b"_-".contains(&bytes[i])) {
            i += 1;
        }
    }
    if i == indent {
        return None;
    }
    let key_end = i;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    // `=` but not `==` (an operator, never an assignment).
    if i >= bytes.len() || bytes[i] != b'=' || bytes.get(i + 1) == Some(&b'=') {
        return None;
    }
    if net_brackets(&bytes[i..])? != 0 {
        return None;
    }
    Some((&line[..key_end], &line[i..]))
}

/// Index just past the quoted string starting at `start` (which holds `"`).
fn skip_string(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Opening minus closing brackets outside string literals; `None` for a heredoc opener (whose
/// body spans lines: never part of a run).
fn net_brackets(bytes: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Template interpolations inside strings are balanced by construction.
                i = skip_string(bytes, i)?;
                continue;
            }
            b'<' if bytes[i..].starts_with(b"<<") => return None,
            b'{' | b'[' | b'(' => n += 1,
            b'}' | b']' | b')' => n -= 1,
            _ => {}
        }
        i += 1;
    }
    Some(n)
}

/// Align the `=` of every run of consecutive single-line assignments (see the module doc).
pub(crate) fn align_equals(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let split: Vec<Option<(&str, &str)>> = lines.iter().map(|l| split_assignment(l)).collect();
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut i = 0;
    while i < lines.len() {
        if split[i].is_none() {
            out.push_str(lines[i]);
            i += 1;
            if i < lines.len() {
                out.push('\n');
            }
            continue;
        }
        let start = i;
        while i < lines.len() && split[i].is_some() {
            i += 1;
        }
        let width = split[start..i]
            .iter()
            .flatten()
            .map(|(lead, _)| lead.chars().count())
            .max()
            .unwrap_or(0);
        for (k, s) in split[start..i].iter().enumerate() {
            let (lead, rest) = s.expect("run holds assignments only");
            out.push_str(lead);
            for _ in lead.chars().count()..=width {
                out.push(' ');
            }
            out.push_str(rest);
            if start + k + 1 < lines.len() {
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_runs_and_breaks_them_at_multiline_values() {
        let raw = "resource \"a\" \"b\" {\n  name = \"x\"\n  instance_type = \"y\"\n  tags = {\n    a = 1\n    long_key = 2\n  }\n  z = [1, 2]\n}\n";
        let want = "resource \"a\" \"b\" {\n  name          = \"x\"\n  instance_type = \"y\"\n  tags = {\n    a        = 1\n    long_key = 2\n  }\n  z = [1, 2]\n}\n";
        assert_eq!(align_equals(raw), want);
    }

    #[test]
    fn equals_inside_strings_and_quoted_keys() {
        let raw = "  \"k=v\" = \"a = [b\"\n  x = \"}\"\n";
        let want = "  \"k=v\" = \"a = [b\"\n  x     = \"}\"\n";
        assert_eq!(align_equals(raw), want);
    }

    // Hostile strings must survive serialization and alignment unchanged: the pass only ever
    // adds spaces before a top-level `=`, never inside a string.
    #[test]
    fn strings_read_back_unchanged() {
        let nasty = [
            "a = b",
            "${not_interpolated}",
            "%{ if x }",
            "quote \" and \\ backslash",
            "brackets [{(",
            "unicode: é ✓ 🚀",
            "# not a comment",
            "<<EOT",
        ];
        let mut body = hcl::Body::builder();
        for (i, s) in nasty.iter().enumerate() {
            body = body.add_attribute((format!("k{i}"), *s));
        }
        let body = body
            .add_block(
                hcl::Block::builder("b")
                    .add_attribute(("list", hcl::Expression::from(nasty.to_vec())))
                    .add_attribute(("x", 1))
                    .build(),
            )
            .build();
        let text = format_body(&body);
        let back: hcl::Body = hcl::from_str(&text).expect("parses");
        let attrs: Vec<_> = back.attributes().collect();
        for (i, s) in nasty.iter().enumerate() {
            assert_eq!(attrs[i].expr, hcl::Expression::String((*s).to_owned()));
        }
        let b = back.blocks().next().expect("block");
        let list = b.body.attributes().next().expect("list");
        assert_eq!(list.expr, hcl::Expression::from(nasty.to_vec()));
    }
}
