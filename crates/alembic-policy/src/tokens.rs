//! Secret shapes: known credential formats found anywhere in a text (whatever the key, or no
//! key at all), and high-entropy values under secret-like keys. Hand-written matchers instead
//! of a regex engine: each shape is a fixed prefix plus a character class and a length, found
//! in one pass over the bytes (a table of the prefixes' first bytes), and key/value pairs are
//! read only around `=`/`:` separators (`memchr`), so multi-megabyte files stay fast.
//!
//! A finding carries only the shape's public prefix (`dop_v1_`), never the matched value, so
//! nothing built from it can leak the secret.

use std::ops::Range;

mod entropy;

pub use entropy::*;

/// A credential shape found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHit {
    /// What it looks like, for the message ("DigitalOcean personal access token").
    pub what: &'static str,
    /// The shape's public prefix, safe to print (`dop_v1_`).
    pub prefix: &'static str,
    /// Byte range of the whole secret in the text (to redact it, never to print it).
    pub span: Range<usize>,
}

#[derive(Clone, Copy)]
enum Class {
    Hex,
    Alnum,
    /// `[A-Za-z0-9_]`
    Word,
    /// `[A-Za-z0-9_-]`
    WordDash,
    /// `[A-Z0-9]`
    UpperDigit,
    /// `[A-Za-z0-9-]`
    AlnumDash,
    /// `[A-Za-z0-9_.-]`
    WordDashDot,
    /// `[A-Za-z0-9/]`
    AlnumSlash,
}

impl Class {
    fn has(self, b: u8) -> bool {
        match self {
            Class::Hex => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            Class::Alnum => b.is_ascii_alphanumeric(),
            Class::Word => b.is_ascii_alphanumeric() || b == b'_',
            Class::WordDash => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
            Class::UpperDigit => b.is_ascii_uppercase() || b.is_ascii_digit(),
            Class::AlnumDash => b.is_ascii_alphanumeric() || b == b'-',
            Class::WordDashDot => b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.',
            Class::AlnumSlash => b.is_ascii_alphanumeric() || b == b'/',
        }
    }
}

struct Shape {
    prefix: &'static str,
    class: Class,
    min: usize,
    /// Exact length when `Some` (the body must then end at a non-class byte).
    exact: Option<usize>,
    /// A marker the body must contain (OpenAI's `T3BlbkFJ`).
    contains: Option<&'static str>,
    what: &'static str,
}

const fn shape(prefix: &'static str, class: Class, min: usize, what: &'static str) -> Shape {
    Shape {
        prefix,
        class,
        min,
        exact: None,
        contains: None,
        what,
    }
}

const fn exact(prefix: &'static str, class: Class, n: usize, what: &'static str) -> Shape {
    Shape {
        prefix,
        class,
        min: n,
        exact: Some(n),
        contains: None,
        what,
    }
}

/// Most specific first: a text position claimed by one shape is not matched again.
const SHAPES: &[Shape] = &[
    exact(
        "dop_v1_",
        Class::Hex,
        64,
        "DigitalOcean personal access token",
    ),
    exact("doo_v1_", Class::Hex, 64, "DigitalOcean OAuth token"),
    exact("dor_v1_", Class::Hex, 64, "DigitalOcean refresh token"),
    exact("ghp_", Class::Alnum, 36, "GitHub personal access token"),
    exact("gho_", Class::Alnum, 36, "GitHub OAuth token"),
    exact("ghu_", Class::Alnum, 36, "GitHub user-to-server token"),
    exact("ghs_", Class::Alnum, 36, "GitHub server-to-server token"),
    exact("ghr_", Class::Alnum, 36, "GitHub refresh token"),
    shape("github_pat_", Class::Word, 40, "GitHub fine-grained token"),
    shape("sk-ant-", Class::WordDash, 32, "Anthropic API key"),
    shape("sk-proj-", Class::WordDash, 40, "OpenAI project API key"),
    shape("sk_live_", Class::Alnum, 16, "Stripe live secret key"),
    shape("sk_test_", Class::Alnum, 16, "Stripe test secret key"),
    shape("rk_live_", Class::Alnum, 16, "Stripe live restricted key"),
    shape("rk_test_", Class::Alnum, 16, "Stripe test restricted key"),
    // Secret keys in the dashed spelling many services use: the prefix says what it is, so
    // the body is not judged by its randomness (`sk-live-FAKEFAKE...` is still a key shape).
    shape("sk-live-", Class::WordDash, 16, "live secret key"),
    shape("sk-test-", Class::WordDash, 16, "test secret key"),
    exact("AIza", Class::WordDash, 35, "Google API key"),
    exact("SK", Class::Hex, 32, "Twilio API key"),
    exact("npm_", Class::Alnum, 36, "npm access token"),
    shape(
        "pypi-AgEIcHlwaS5vcmc",
        Class::WordDash,
        50,
        "PyPI API token",
    ),
    shape(
        "glpat-",
        Class::WordDash,
        20,
        "GitLab personal access token",
    ),
    exact("SG.", Class::WordDashDot, 66, "SendGrid API key"),
    Shape {
        prefix: "sk-",
        class: Class::WordDash,
        min: 40,
        exact: None,
        contains: Some("T3BlbkFJ"),
        what: "OpenAI API key",
    },
    exact("AKIA", Class::UpperDigit, 16, "AWS access key ID"),
    exact("ASIA", Class::UpperDigit, 16, "AWS temporary access key ID"),
    shape("xoxb-", Class::AlnumDash, 10, "Slack bot token"),
    shape("xoxp-", Class::AlnumDash, 10, "Slack user token"),
    shape("xoxa-", Class::AlnumDash, 10, "Slack app token"),
    shape("xoxr-", Class::AlnumDash, 10, "Slack refresh token"),
    shape("xoxs-", Class::AlnumDash, 10, "Slack session token"),
    // Whoever holds the URL can post to the channel: `T…/B…/` and a 24-character secret.
    Shape {
        prefix: "hooks.slack.com/services/",
        class: Class::AlnumSlash,
        min: 40,
        exact: None,
        contains: Some("/B"),
        what: "Slack incoming webhook URL",
    },
    // A JSON Web Token: `{"` base64url-encoded twice (header and claims), then the signature.
    Shape {
        prefix: "eyJ",
        class: Class::WordDashDot,
        min: 30,
        exact: None,
        contains: Some(".eyJ"),
        what: "JSON Web Token",
    },
];

/// For each byte, the shapes (bit `k` = `SHAPES[k]`) whose prefix starts with it: a position
/// is tried only against those.
const BY_FIRST_BYTE: [u64; 256] = {
    assert!(SHAPES.len() <= 64);
    let mut t = [0u64; 256];
    let mut k = 0;
    while k < SHAPES.len() {
        let first = SHAPES[k].prefix.as_bytes()[0];
        // `find_tokens` relies on it: a prefix starts with a word byte.
        assert!(WORD_DASH[first as usize]);
        t[first as usize] |= 1 << k;
        k += 1;
    }
    t
};

/// For each byte, the shapes whose prefix has it second (every prefix has two bytes or more):
/// with [`BY_FIRST_BYTE`], a word start is tried only against the shapes its first two bytes
/// fit.
const BY_SECOND_BYTE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut k = 0;
    while k < SHAPES.len() {
        assert!(SHAPES[k].prefix.len() >= 2);
        t[SHAPES[k].prefix.as_bytes()[1] as usize] |= 1 << k;
        k += 1;
    }
    t
};

/// `[A-Za-z0-9_-]` as a table: the byte before a token's prefix must not be one of these.
const WORD_DASH: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    t
};

/// Every known credential shape in `text`, in order of position. One pass over the text: at
/// each position that starts a word with a prefix's first byte, the shapes are tried in order
/// (most specific first, the first that matches claims the position).
pub fn find_tokens(text: &str) -> Vec<TokenHit> {
    let bytes = text.as_bytes();
    let mut hits: Vec<TokenHit> = Vec::new();
    // This loop runs over every byte of every scanned text (and of every text the views
    // redact): it only finds word starts with a prefix's first byte, skipping the rest of each
    // word in a tight loop; the shapes are tried out of line. The prefix must start a word
    // (`xdop_v1_` or `task-` are not tokens); the bytes after a word are looked at too, but
    // no prefix starts with a byte outside words (asserted where `BY_FIRST_BYTE` is built).
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if BY_FIRST_BYTE[byte as usize] != 0 {
            if let Some(hit) = shape_at(text, i) {
                hits.push(hit);
            }
        }
        i += 1;
        if WORD_DASH[byte as usize] {
            while bytes.get(i).is_some_and(|b| WORD_DASH[*b as usize]) {
                i += 1;
            }
        }
    }
    for start in memchr::memmem::find_iter(bytes, b"-----BEGIN ") {
        // Searches are bounded so a hostile file full of markers stays linear.
        let header = window(text, start, 128);
        // The header line ends at a newline, or at an escaped one (`\n` in JSON, YAML and
        // TOML strings) or the string's closing quote.
        let line_end = start
            + header
                .find(['\n', '"'])
                .into_iter()
                .chain(header.find("\\n"))
                .min()
                .unwrap_or(header.len());
        let line = &text[start..line_end];
        // A header with no key body (documentation, a template) is not a key. Counting stops
        // at the next `-` (the END marker) or after 64 key characters: linear on hostile text.
        let has_body = || {
            let mut n = 0;
            for b in window(text, line_end, 4096).bytes() {
                if b == b'-' {
                    break;
                }
                if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') {
                    n += 1;
                    if n >= 64 {
                        return true;
                    }
                }
            }
            false
        };
        if line.contains("PRIVATE KEY-----") && has_body() {
            // The span runs to the END marker so redaction covers the key body too.
            let end = window(text, line_end, 64 * 1024)
                .find("-----END ")
                .map(|j| line_end + j)
                .unwrap_or(line_end);
            hits.push(TokenHit {
                what: "PEM private key",
                prefix: "-----BEGIN ",
                span: start..end,
            });
        }
    }
    url_passwords(text, &mut hits);
    hits.sort_by_key(|h| h.span.start);
    hits
}

/// Connection URLs whose schemes take a password, with what a finding calls it.
const URL_SCHEMES: &[(&str, &str)] = &[
    ("postgres://", "password in a PostgreSQL URL"),
    ("postgresql://", "password in a PostgreSQL URL"),
    ("mysql://", "password in a MySQL URL"),
    ("mariadb://", "password in a MariaDB URL"),
    ("mongodb://", "password in a MongoDB URL"),
    ("mongodb+srv://", "password in a MongoDB URL"),
    ("redis://", "password in a Redis URL"),
    ("rediss://", "password in a Redis URL"),
    ("amqp://", "password in an AMQP URL"),
    ("amqps://", "password in an AMQP URL"),
    ("https://", "password in a URL"),
    ("http://", "password in a URL"),
    ("ftp://", "password in an FTP URL"),
    ("smtp://", "password in an SMTP URL"),
    ("smtps://", "password in an SMTP URL"),
];

/// Passwords written into URLs (`postgres://app:s3cret@db/app`): the span runs from the scheme
/// to the end of the password (the scheme is the printed prefix; the user and the password are
/// redacted). A password that is a reference (`${DB_PASSWORD}`, `$PASS`, `{{ … }}`, `%(…)s`),
/// a placeholder (`<password>`, `****`, `xxxx`, `password`, `changeme`) or empty is not one.
/// Bounded: the userinfo is read at most 256 bytes past `://`, so hostile text stays linear.
fn url_passwords(text: &str, hits: &mut Vec<TokenHit>) {
    let bytes = text.as_bytes();
    for sep in memchr::memmem::find_iter(bytes, b"://") {
        // The scheme: the letters right before `://`, starting a word.
        let mut start = sep;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'+') {
            start -= 1;
            if sep - start > 16 {
                break;
            }
        }
        if start > 0 && WORD_DASH[bytes[start - 1] as usize] {
            continue;
        }
        let scheme = &text[start..sep + 3];
        let Some((prefix, what)) = URL_SCHEMES
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(scheme))
        else {
            continue;
        };
        // The userinfo ends at `@`, before any `/`, `?`, `#`, whitespace or quote.
        let rest = window(text, sep + 3, 256).as_bytes();
        let Some(at) = rest.iter().position(|b| {
            matches!(
                b,
                b'@' | b'/' | b'?' | b'#' | b'"' | b'\'' | b'`' | b'<' | b'>'
            ) || b.is_ascii_whitespace()
        }) else {
            continue;
        };
        if rest[at] != b'@' {
            continue;
        }
        let Some(colon) = rest[..at].iter().position(|b| *b == b':') else {
            continue;
        };
        let password = &text[sep + 3 + colon + 1..sep + 3 + at];
        if !is_literal_password(password) {
            continue;
        }
        let span = start..sep + 3 + at;
        if hits
            .iter()
            .any(|h| h.span.start < span.end && span.start < h.span.end)
        {
            continue;
        }
        hits.push(TokenHit { what, prefix, span });
    }
}

/// A password as written, not a reference to one or a documentation stand-in.
fn is_literal_password(p: &str) -> bool {
    const STAND_INS: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "changeme",
        "change_me",
        "redacted",
        "example",
        "placeholder",
    ];
    !p.is_empty()
        && !p.starts_with(['$', '{', '<', '%', '*', '['])
        && !STAND_INS.iter().any(|s| p.eq_ignore_ascii_case(s))
        && !is_placeholder(p, None)
}

/// The first shape (most specific first) whose prefix starts at `start`, where a word starts
/// with one of the prefixes' first bytes. A placeholder claims the position and gives `None`.
#[inline(never)]
fn shape_at(text: &str, start: usize) -> Option<TokenHit> {
    let bytes = text.as_bytes();
    let second = bytes
        .get(start + 1)
        .map_or(0, |b| BY_SECOND_BYTE[*b as usize]);
    let mut candidates = BY_FIRST_BYTE[bytes[start] as usize] & second;
    while candidates != 0 {
        let k = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        let s = &SHAPES[k];
        // Compared byte by byte: prefixes are a few bytes, a library call costs more.
        let p = s.prefix.as_bytes();
        if bytes.len() - start < p.len() || p.iter().zip(&bytes[start..]).any(|(a, b)| a != b) {
            continue;
        }
        let body_start = start + s.prefix.len();
        let body_len = bytes[body_start..]
            .iter()
            .take_while(|b| s.class.has(**b))
            .count();
        let ok = match s.exact {
            Some(n) => body_len == n,
            None => body_len >= s.min,
        };
        if !ok {
            continue;
        }
        let span = start..body_start + body_len;
        if let Some(m) = s.contains {
            if !text[span.clone()].contains(m) {
                continue;
            }
        }
        let after = bytes.get(body_start + body_len).copied();
        if is_placeholder(&text[body_start..span.end], after) {
            // The position is claimed: a placeholder is not re-read as a shorter shape.
            return None;
        }
        return Some(TokenHit {
            what: s.what,
            prefix: s.prefix,
            span,
        });
    }
    None
}

/// Documentation and template values in a token's shape: `AKIAXXXXXXXXXXXXXXXX`,
/// `AKIAIOSFODNN7EXAMPLE`, `ghp_xxxx...`, `xoxb-xxxxxxxxx-...`, `sk_live_YourKeyHere`, a body
/// cut short by `####` or `<...>`. Such a value is not a secret and is not reported (a value
/// merely *labelled* fake, like `FAKEFAKE...`, still is: nothing but its author says so).
pub fn is_placeholder(body: &str, after: Option<u8>) -> bool {
    if matches!(after, Some(b'#' | b'*' | b'<' | b'{')) {
        return true;
    }
    let lower = body.to_ascii_lowercase();
    if lower.contains("example") || lower.ends_with("here") || lower.starts_with("your") {
        return true;
    }
    let core: Vec<u8> = body
        .bytes()
        .filter(|b| !matches!(b, b'-' | b'_' | b'.'))
        .collect();
    let mut distinct = core.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 2 {
        return true;
    }
    // A run of four or more filler characters.
    core.windows(4)
        .any(|w| matches!(w[0], b'x' | b'X' | b'*' | b'#') && w.iter().all(|b| *b == w[0]))
}

/// At most `n` bytes of `text` from `start`, cut at a character boundary.
fn window(text: &str, start: usize, n: usize) -> &str {
    let mut end = (start + n).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex64() -> String {
        "0123456789abcdef".repeat(4)
    }

    #[test]
    fn digitalocean_token_under_any_key() {
        let t = format!("greeting: dop_v1_{}\n", hex64());
        let h = find_tokens(&t);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].prefix, "dop_v1_");
        assert_eq!(h[0].span, 10..10 + 7 + 64);
    }

    #[test]
    fn shapes_need_their_full_length() {
        assert!(find_tokens("dop_v1_abc").is_empty());
        assert!(find_tokens(&format!("ghp_{}", "a".repeat(35))).is_empty());
        assert_eq!(
            find_tokens(&format!("x ghp_{} y", "aB3".repeat(12))).len(),
            1
        );
        assert!(find_tokens(&format!("xghp_{}", "aB3".repeat(12))).is_empty());
        // Built at run time so the repository itself carries no token-shaped literal.
        assert_eq!(find_tokens(&format!("AKIA{}", "ABCDEFGHIJKLMNOP")).len(), 1);
        assert_eq!(
            find_tokens(&format!(
                "k=sk-{}T3BlbkFJ{}",
                "a1".repeat(10),
                "b2".repeat(10)
            ))[0]
                .what,
            "OpenAI API key"
        );
        assert_eq!(
            find_tokens(&format!("sk-ant-api03-{}", "Zz9_".repeat(10)))[0].what,
            "Anthropic API key"
        );
        assert_eq!(
            find_tokens(&format!("xoxb{}", "-1234567890-abcdef")).len(),
            1
        );
        let pem = [
            "-----BEGIN",
            "OPENSSH PRIVATE",
            &format!(
                "KEY-----\n{}\n-----END",
                "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
            ),
            "x",
        ]
        .join(" ");
        let h = find_tokens(&pem);
        assert_eq!(h.len(), 1);
        assert_eq!(
            &pem[h[0].span.clone()],
            &pem[..pem.find("-----END").unwrap()]
        );
        assert!(find_tokens("-----BEGIN CERTIFICATE-----").is_empty());
    }

    // Hostile inputs full of separators or markers must stay linear (these took minutes before
    // the searches were bounded).
    #[test]
    fn pathological_inputs_are_linear() {
        let t = std::time::Instant::now();
        let seps = "token:a".repeat(300_000);
        assert!(find_entropy_secrets(&seps).is_empty());
        let pems = "-----BEGIN x".repeat(200_000);
        assert!(find_tokens(&pems).is_empty());
        assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    }

    #[test]
    fn entropy_under_secret_like_keys_only() {
        let random = "q8Zr2LmX0vTw9KpB4sYd7Hn";
        let t = format!("api_token = \"{random}\"\nnote = \"{random}\"\ntoken_env = \"DIGITALOCEAN_TOKEN\"\nenv = {{ APP_SECRET = \"{random}\" }}\n");
        let h = find_entropy_secrets(&t);
        let keys: Vec<&str> = h.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["api_token", "APP_SECRET"]);
        assert_eq!(&t[h[0].value_span.clone()], random);
        assert!(find_entropy_secrets("password: changeme\n").is_empty());
        assert!(find_entropy_secrets("token: ${{ secrets.DEPLOY_TOKEN }}\n").is_empty());
        assert!(find_entropy_secrets(
            "ssh_keys = [\"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa\"]\n"
        )
        .is_empty());
    }

    // A list of secret NAMES with a digit (`["E2E_CANARY_TOKEN"]`) was judged with its bracket
    // and quotes as one random-looking value: SEC001 on a config that inlines nothing.
    #[test]
    fn arrays_are_judged_by_their_elements() {
        assert!(
            find_entropy_secrets("secrets  = [\"E2E_CANARY_TOKEN\", \"S3_KEY_2\"]\n").is_empty()
        );
        let random = "q8Zr2LmX0vTw9KpB4sYd7Hn";
        let t = format!("secrets = [ \"{random}\"]\n");
        let h = find_entropy_secrets(&t);
        assert_eq!(h.len(), 1);
        assert_eq!(&t[h[0].value_span.clone()], random);
    }

    // The pair search jumps from separator to separator: spans must still be those of the
    // line around each one (CRLF endings, a last line without a newline, lines without any).
    #[test]
    fn pairs_are_located_around_their_separators() {
        let random = "q8Zr2LmX0vTw9KpB4sYd7Hn";
        let t = format!("# no pair here\r\napi_token: {random}\r\nplain text\nAPP_SECRET={random}");
        let h = find_entropy_secrets(&t);
        let keys: Vec<&str> = h.iter().map(|h| &t[h.key_span.clone()]).collect();
        assert_eq!(keys, ["api_token", "APP_SECRET"]);
        assert!(h.iter().all(|h| &t[h.value_span.clone()] == random));
    }

    // Only word starts are tried: a prefix inside a word is not a token, one after a
    // separator or at the start of the text is.
    #[test]
    fn webhooks_jwts_and_url_passwords() {
        let what =
            |t: &str| -> Vec<&'static str> { find_tokens(t).iter().map(|h| h.what).collect() };
        let hook = format!(
            "url: https://hooks.slack.com/services/T0{}/B0{}/{}",
            "A1B2C3D4", "E5F6G7H8", "x7Kq2LmN9pR4sT6vW8yZ1bC3"
        );
        assert_eq!(what(&hook), ["Slack incoming webhook URL"]);
        let jwt = "token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcGkifQ.Zm9vYmFyYmF6cXV4cXV1eA";
        assert_eq!(what(jwt), ["JSON Web Token"]);
        // Only a header, no claims: not a token.
        assert!(what("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9").is_empty());
        let url = "DATABASE_URL=postgres://app:Zq8vN2kLw5Rt@db:5432/app";
        let hits = find_tokens(url);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].what, "password in a PostgreSQL URL");
        assert_eq!(&url[hits[0].span.clone()], "postgres://app:Zq8vN2kLw5Rt");
        assert_eq!(hits[0].prefix, "postgres://");
        for clean in [
            "postgres://app:${DB_PASSWORD}@db/app",
            "redis://:$REDIS_PASS@cache:6379",
            "mysql://root:<password>@localhost/db",
            "postgres://user:password@localhost/db",
            "postgres://app@db/app",
            "https://example.com/a:b@c",
            "amqp://guest:****@mq",
            "mongodb://u:{{ mongo_password }}@m",
        ] {
            assert!(what(clean).is_empty(), "{clean}: {:?}", what(clean));
        }
        assert_eq!(
            what("redis://:s3cr3tR3dis@cache:6379"),
            ["password in a Redis URL"]
        );
        // A PEM key inside a JSON string (escaped newlines) is still a key.
        let body = "MIIEowIBAAKCAQEAuAxmaT3Yg1QWcB9Ryzmp2k6FJnEj0W0pLtJUVsWo+V5wTr3yeNeq3dW8aqK7";
        let json = format!(
            r#"{{"private_key": "-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"}}"#
        );
        assert_eq!(what(&json), ["PEM private key"]);
    }

    #[test]
    fn tokens_start_words() {
        let body = "aB3dE5fG7h".repeat(4);
        let tok = format!("ghp_{}", &body[..36]);
        for (t, n) in [
            (tok.clone(), 1),
            (format!("x{tok}"), 0),
            (format!("x-{tok}"), 0),
            (format!("x.{tok}"), 1),
            (format!("a: \"{tok}\" {tok}"), 2),
        ] {
            assert_eq!(find_tokens(&t).len(), n, "{t}");
        }
    }
}
