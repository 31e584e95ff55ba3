//! References to things outside the config: images, DigitalOcean slugs, users, SSH keys,
//! absolute paths, buckets, repositories, branches, tokens, email addresses and free text.

use super::*;

string_newtype!(
    /// A container image reference: `[a-zA-Z0-9._/:@+-]`, at most 255 bytes, not starting with
    /// `-` (it is passed as an argument).
    ImageRef
);

impl ImageRef {
    /// Parse an image reference, refusing anything the rules above do not allow (the error says
    /// which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "image")?;
        if s.starts_with('-')
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/:@+-".contains(&b))
        {
            return Err(format!(
                "{s:?} is not an image reference (registry/name:tag or name@sha256:..., no spaces or quotes)"
            ));
        }
        Ok(ImageRef(s.to_owned()))
    }
}

string_newtype!(
    /// A DigitalOcean slug (region, size, image): `[a-z0-9][a-z0-9-]*`.
    Slug
);

impl Slug {
    /// Parse a slug, refusing anything the rules above do not allow (the error says which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 64, "slug")?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || s.starts_with('-')
        {
            return Err(format!(
                "{s:?} must be a lowercase slug like nyc3 or s-1vcpu-2gb"
            ));
        }
        Ok(Slug(s.to_owned()))
    }
}

string_newtype!(
    /// A POSIX user name: `[a-z_][a-z0-9_-]{0,31}`.
    UserName
);

impl UserName {
    /// Parse a user name, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 32, "user name")?;
        let first = s.as_bytes()[0];
        if !(first.is_ascii_lowercase() || first == b'_')
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(format!("{s:?} must be a POSIX user name like deploy"));
        }
        Ok(UserName(s.to_owned()))
    }
}

string_newtype!(
    /// An SSH key reference in the DigitalOcean account: an MD5 fingerprint
    /// (`aa:bb:...`, 16 pairs) or a numeric key id.
    SshKeyRef
);

impl SshKeyRef {
    /// Parse an SSH key reference, refusing anything the rules above do not allow (the error says
    /// which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        let is_id = !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        let pairs: Vec<&str> = s.split(':').collect();
        let is_fp = pairs.len() == 16
            && pairs
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if !(is_id || is_fp) {
            return Err(format!(
                "{s:?} is not an SSH key fingerprint (16 hex pairs joined by ':') or a numeric key id"
            ));
        }
        Ok(SshKeyRef(s.to_ascii_lowercase()))
    }
}

string_newtype!(
    /// One OpenSSH public key line for `authorized_keys`: `TYPE BASE64 [COMMENT]`, with the key
    /// blob decoded and checked against its type by `ssh-key`. No options prefix, no control
    /// characters, one line. Stored normalized (single spaces).
    AuthorizedKey
);

impl AuthorizedKey {
    /// Parse one public key line, decoding the key blob with `ssh-key` and normalizing its
    /// spacing.
    pub fn parse(s: &str) -> Result<Self, String> {
        // Never echo the value: a pasted private key (or anything else) is not repeated back.
        if s.contains("PRIVATE KEY") {
            return Err(concat!(
                "this is a private key: authorized_keys takes public key lines only (the ",
                "contents of the `.pub` file); remove it from the config and treat it as leaked"
            )
            .to_owned());
        }
        check_len(s, 16 * 1024, "public key line")?;
        if s.chars().any(char::is_control) {
            return Err("a public key line must be one line without control characters".to_owned());
        }
        let mut fields = s.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            return Err(concat!(
                "not an OpenSSH public key line (`TYPE BASE64 [COMMENT]`, like ",
                "\"ssh-ed25519 AAAAC3... ops@laptop\")"
            )
            .to_owned());
        };
        let comment: Vec<&str> = fields.collect();
        let line = if comment.is_empty() {
            format!("{kind} {blob}")
        } else {
            format!("{kind} {blob} {}", comment.join(" "))
        };
        // ssh-key decodes the base64 blob and checks that its algorithm matches `kind` and that
        // the key material has the algorithm's shape.
        match ssh_key::PublicKey::from_openssh(&line) {
            Ok(_) => Ok(AuthorizedKey(line)),
            Err(_) => Err(format!(
                "not an OpenSSH public key line: expected `TYPE BASE64 [COMMENT]` with a key \
                 blob that decodes to a {} key (options before the type are not accepted)",
                if kind.len() <= 64
                    && ["ssh-", "ecdsa-", "sk-"]
                        .iter()
                        .any(|p| kind.starts_with(p))
                    && kind.bytes().all(|b| b.is_ascii_graphic())
                {
                    format!("`{kind}`")
                } else {
                    "known".to_owned()
                }
            )),
        }
    }
}

string_newtype!(
    /// An absolute POSIX path of safe characters (`A-Za-z0-9._/-`), no `..` segment, no
    /// trailing slash, at most 255 bytes.
    AbsPath
);

impl AbsPath {
    /// Parse an absolute path, refusing anything the rules above do not allow (the error says
    /// which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "path")?;
        if !s.starts_with('/')
            || s.len() < 2
            || s.ends_with('/')
            || s.contains("//")
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
            || s.split('/').any(|seg| seg == ".." || seg == ".")
        {
            return Err(format!(
                "{s:?} must be an absolute path of letters, digits and ._-/ (no '..', spaces or quotes)"
            ));
        }
        Ok(AbsPath(s.to_owned()))
    }
}

string_newtype!(
    /// A DigitalOcean Spaces (S3) bucket name: 3-63 bytes of `[a-z0-9-]`, starting and ending
    /// with a letter or digit, no doubled hyphen. A single DNS label, so it is safe in the
    /// virtual-host endpoint `<bucket>.<region>.digitaloceanspaces.com` and in HCL.
    BucketName
);

impl BucketName {
    /// Parse a bucket name, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (3..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if !ok {
            return Err(format!(
                "{s:?} is not a Spaces bucket name: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
            ));
        }
        Ok(BucketName(s.to_owned()))
    }
}

string_newtype!(
    /// An object key inside a bucket (the Terraform state's path): segments of
    /// `A-Za-z0-9._-` joined by single `/`, no leading or trailing `/`, no `.`/`..` segment, at
    /// most 255 bytes. The S3 backend refuses empty keys, `//` and a leading or trailing `/`.
    ObjectKey
);

impl ObjectKey {
    /// Parse an object key, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 255, "object key")?;
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
            && s.split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !ok {
            return Err(format!(
                "{s:?} must be a relative key of letters, digits and ._-, segments joined by single '/', like \"alembic/terraform.tfstate\""
            ));
        }
        Ok(ObjectKey(s.to_owned()))
    }
}

string_newtype!(
    /// A GitHub `owner/name`.
    Repository
);

impl Repository {
    /// Parse an `owner/name`, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 140, "repository")?;
        let ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match s.split_once('/') {
            Some((o, n)) if ok(o) && ok(n) => Ok(Repository(s.to_owned())),
            _ => Err(format!("{s:?} must be a GitHub repository as owner/name")),
        }
    }
}

string_newtype!(
    /// A git branch name of safe characters (`A-Za-z0-9._/-`), no `..`, not starting with `-`.
    BranchName
);

impl BranchName {
    /// Parse a branch name, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 200, "branch")?;
        if s.starts_with('-')
            || s.starts_with('/')
            || s.ends_with('/')
            || s.contains("..")
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        {
            return Err(format!(
                "{s:?} must be a branch name of letters, digits and ._/-"
            ));
        }
        Ok(BranchName(s.to_owned()))
    }
}

string_newtype!(
    /// A plain token (runner label, node version, GitHub environment): `[A-Za-z0-9._-]`.
    Token
);

impl Token {
    /// Parse a token, refusing anything the rules above do not allow (the error says which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 100, "value")?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!("{s:?} may contain only letters, digits and ._-"));
        }
        Ok(Token(s.to_owned()))
    }
}

string_newtype!(
    /// An e-mail address for ACME: `local@domain`, local part of `[A-Za-z0-9._+-]`.
    Email
);

impl Email {
    /// Parse an e-mail address, refusing anything the rules above do not allow (the error says
    /// which rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        check_len(s, 254, "email")?;
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && local
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
                    && Hostname::parse(&domain.to_ascii_lowercase()).is_ok() =>
            {
                Ok(Email(s.to_owned()))
            }
            _ => Err(format!(
                "{s:?} is not an e-mail address like ops@example.com"
            )),
        }
    }
}

string_newtype!(
    /// Free text that ends up inside generated files (a command argument, a plain env value, a
    /// CI step). Printable only: no control characters (newlines, NUL, escapes), at most
    /// MAX_STRING bytes. Renderers still quote it with their format's serializer; this type
    /// guarantees it is a single line they can quote.
    Text
);

impl Text {
    /// Parse free text, refusing anything the rules above do not allow (the error says which
    /// rule).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_STRING {
            return Err(format!(
                "value is {} bytes long; the limit is {MAX_STRING}",
                s.len()
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!(
                "value contains the control character {c:?}; only printable single-line text is allowed"
            ));
        }
        if let Some(c) = s.chars().find(|c| is_invisible_format(*c)) {
            return Err(format!(
                "value contains the invisible character U+{:04X}; it can break lines or reorder text in generated files",
                c as u32
            ));
        }
        Ok(Text(s.to_owned()))
    }

    /// Text that may not contain a GitHub Actions expression (`${{`), for values rendered into
    /// workflow `run:` steps.
    pub fn parse_ci(s: &str) -> Result<Self, String> {
        let t = Self::parse(s)?;
        if s.contains("${{") {
            return Err(format!(
                "{s:?} contains a GitHub Actions expression; pass values through env: instead"
            ));
        }
        if s.trim().is_empty() {
            return Err("command must not be empty".to_owned());
        }
        Ok(t)
    }
}

/// Characters that are not `is_control()` yet change how text reads or splits: the Unicode line
/// and paragraph separators (line breaks for YAML 1.1 and JavaScript), bidirectional overrides
/// and isolates (Trojan Source, CVE-2021-42574), zero-width characters and the BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
    )
}
