//! High-entropy values under secret-like keys: `key = "value"`, `key: value`, `KEY=value`,
//! `"key": "value"` pairs in any text format, found around their `=`/`:` separators.

use std::ops::Range;

use super::{is_placeholder, window};

/// Longest value the entropy check looks at (longer ones are data, not credentials).
const MAX_VALUE: usize = 4096;

/// A value under a secret-like key that looks random enough to be a real secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntropyHit {
    /// The key, as written.
    pub key: String,
    /// Where the key is in the text.
    pub key_span: Range<usize>,
    /// Where the value is in the text.
    pub value_span: Range<usize>,
}

/// Does this key name suggest it holds a secret value?
pub fn is_secret_like_key(key: &str) -> bool {
    // This runs for every key/value pair with a long value: the key is lower-cased into a
    // stack buffer and searched byte-wise (`str::contains` sets up a two-way searcher per call).
    let mut buf = [0u8; 128];
    let owned;
    let k: &[u8] = if key.len() <= buf.len() {
        let b = &mut buf[..key.len()];
        b.copy_from_slice(key.as_bytes());
        b.make_ascii_lowercase();
        b
    } else {
        owned = key.to_ascii_lowercase();
        owned.as_bytes()
    };
    let ends = |p: &[u8]| k.ends_with(p);
    // Keys that hold a *name* or a location of a secret, not the secret.
    if [
        &b"_env"[..],
        b"_name",
        b"_file",
        b"_path",
        b"_names",
        b"_id",
        b"_url",
        b"_ref",
    ]
    .iter()
    .any(|s| ends(s))
        || key.ends_with("Id")
        || key.ends_with("ID")
        || ends(b"-id")
        || ends(b"uuid")
    {
        return false;
    }
    // One pass over the key for every part (only where a part's first byte is), instead of one
    // pass per part.
    let (mut public, mut secret) = (false, false);
    for (i, b) in k.iter().enumerate() {
        if !PART_FIRST_BYTES[*b as usize] {
            continue;
        }
        let rest = &k[i..];
        public |= PUBLIC_PARTS.iter().any(|p| rest.starts_with(p));
        secret |= SECRET_PARTS.iter().any(|p| rest.starts_with(p));
    }
    if public {
        return false;
    }
    secret || ends(b"auth") || k == b"key" || ends(b"_key") || ends(b"-key") || key.ends_with("Key")
}

/// Parts of a (lower-cased) key that make it name something public: never a secret.
const PUBLIC_PARTS: &[&[u8]] = &[b"public", b"pubkey"];

/// Parts of a (lower-cased) key that make it secret-like.
const SECRET_PARTS: &[&[u8]] = &[
    b"token",
    b"secret",
    b"passw",
    b"pwd",
    b"apikey",
    b"api_key",
    b"api-key",
    b"credential",
    b"private_key",
    b"privatekey",
    b"access_key",
    b"accesskey",
    b"auth_key",
    b"signing_key",
    b"client_key",
    b"authorization",
];

/// The first bytes of [`PUBLIC_PARTS`] and [`SECRET_PARTS`].
const PART_FIRST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < PUBLIC_PARTS.len() {
        t[PUBLIC_PARTS[i][0] as usize] = true;
        i += 1;
    }
    let mut i = 0;
    while i < SECRET_PARTS.len() {
        t[SECRET_PARTS[i][0] as usize] = true;
        i += 1;
    }
    t
};

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Would this value be a plausible secret (long, random, not a reference to one)?
pub fn looks_random(v: &str) -> bool {
    if v.len() < 16 || v.len() > MAX_VALUE {
        return false;
    }
    if v.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return false;
    }
    // References and placeholders: env var names, interpolations, paths, URLs.
    let env_name = v
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if env_name
        || v.contains("${")
        || v.contains("$(")
        || v.contains("{{")
        || v.contains("://")
        || v.starts_with('/')
        || v.starts_with('.')
        || v.starts_with('<')
    {
        return false;
    }
    // A UUID names something (a credentials id, a tenant); an SSH public key blob is public.
    if is_uuid(v)
        || ["AAAAC3NzaC1", "AAAAB3NzaC1", "AAAAE2VjZHNh"]
            .iter()
            .any(|p| v.starts_with(p))
    {
        return false;
    }
    let letters = v.bytes().any(|b| b.is_ascii_alphabetic());
    let digits = v.bytes().any(|b| b.is_ascii_digit());
    letters && digits && shannon_entropy(v) >= 3.5
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `key = "value"`, `key: value`, `KEY=value`, `"key": "value"` pairs whose key is secret-like
/// and whose value looks random. Works line by line on any text format.
pub fn find_entropy_secrets(text: &str) -> Vec<EntropyHit> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    // Only lines with a separator can hold a pair: jump from separator to separator and read
    // the line around each one once (most lines of prose, scripts and PEM bodies have none).
    let mut next = 0;
    while let Some(rel) = memchr::memchr2(b'=', b':', &bytes[next..]) {
        let at = next + rel;
        let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let line = text[start..end].trim_end_matches('\r');
        scan_line(line, start, &mut out);
        next = end;
    }
    out
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

fn scan_line(line: &str, offset: usize, out: &mut Vec<EntropyHit>) {
    let b = line.as_bytes();
    // Separators inside a value already read are part of that value; skipping them keeps the
    // scan linear on lines like `token:a` repeated a million times.
    let mut resume = 0;
    for i in memchr::memchr2_iter(b'=', b':', b) {
        if i < resume {
            continue;
        }
        // `==`, `:=`, `=>`, `://` are not key/value separators.
        if b.get(i + 1)
            .is_some_and(|n| matches!(n, b'=' | b'>' | b'/'))
            || (i > 0 && matches!(b[i - 1], b'=' | b'!' | b'<' | b'>' | b':'))
        {
            continue;
        }
        // Key: identifier right before the separator (skipping spaces and a closing quote).
        let mut k_end = i;
        while k_end > 0 && b[k_end - 1] == b' ' {
            k_end -= 1;
        }
        if k_end > 0 && matches!(b[k_end - 1], b'"' | b'\'') {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0 && k_end - k_start < 256 && is_key_byte(b[k_start - 1]) {
            k_start -= 1;
        }
        if k_start == k_end {
            continue;
        }
        // Most values are short: a value that cannot be a secret (under 16 bytes, not a list)
        // settles the separator before the key is judged, the costlier test.
        let mut peek = i + 1;
        while peek < b.len() && b[peek] == b' ' {
            peek += 1;
        }
        let short = match b.get(peek) {
            None => true,
            Some(b'[') => false,
            Some(q @ (b'"' | b'\'')) => !b[peek + 1..].iter().take(16).all(|c| c != q),
            Some(_) => {
                b[peek..]
                    .iter()
                    .take(16)
                    .any(|c| matches!(c, b' ' | b',' | b'}' | b']' | b'#'))
                    || b.len() - peek < 16
            }
        };
        if short {
            continue;
        }
        let key = &line[k_start..k_end];
        // Dotted YAML/TOML keys: judge the last segment (`db.password`).
        let last = key.rsplit('.').next().unwrap_or(key);
        if !is_secret_like_key(last) {
            continue;
        }
        // Value: a quoted string, a bare run up to a space, comma or brace, or a flow list of
        // those (each element judged alone: `secrets = ["BACKUP_S3_KEY"]` lists names).
        let mut v_start = i + 1;
        while v_start < b.len() && b[v_start] == b' ' {
            v_start += 1;
        }
        let list = b.get(v_start) == Some(&b'[');
        if list {
            v_start += 1;
        }
        loop {
            while v_start < b.len() && matches!(b[v_start], b' ' | b',') {
                v_start += 1;
            }
            let (vs, ve, next) = match b.get(v_start) {
                Some(q @ (b'"' | b'\'')) => {
                    let Some(close) = window(line, v_start + 1, MAX_VALUE + 1).find(*q as char)
                    else {
                        break;
                    };
                    let ve = v_start + 1 + close;
                    (v_start + 1, ve, ve + 1)
                }
                Some(b']') if list => break,
                Some(_) => {
                    let len = b[v_start..]
                        .iter()
                        .take(MAX_VALUE + 1)
                        .take_while(|c| !matches!(c, b' ' | b',' | b'}' | b']' | b'#'))
                        .count();
                    (v_start, v_start + len, v_start + len)
                }
                None => break,
            };
            resume = ve;
            if looks_random(&line[vs..ve]) && !is_placeholder(&line[vs..ve], b.get(ve).copied()) {
                out.push(EntropyHit {
                    key: key.to_owned(),
                    key_span: offset + k_start..offset + k_end,
                    value_span: offset + vs..offset + ve,
                });
            }
            if !list || next <= v_start {
                break;
            }
            v_start = next;
        }
    }
}
