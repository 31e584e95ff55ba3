//! Reading HCL text without its parser: skipping `"..."` strings and `#`/`//` comments, shared by
//! the nesting pre-check and the Terraform text fallback.

/// When `b[i]` opens a `"..."` string (ending at its quote or the line's end) or a `#`/`//`
/// comment (ending before the newline), the index of its last byte; else `None`.
pub(crate) fn skip_string_or_comment(b: &[u8], mut i: usize) -> Option<usize> {
    match b[i] {
        b'"' => {
            i += 1;
            while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
        }
        b'#' => {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        }
        b'/' if b.get(i + 1) == Some(&b'/') => {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        }
        _ => return None,
    }
    Some(i)
}

/// The deepest bracket nesting in HCL `text`, skipping `"..."` strings and `#`/`//` comments
/// (a run of `[` in a string must not keep the file from the parser).
pub(crate) fn nesting_depth(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        if let Some(end) = skip_string_or_comment(b, i) {
            i = end + 1;
            continue;
        }
        match b[i] {
            b'{' | b'[' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}
