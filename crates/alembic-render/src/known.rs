//! The known artifact set: every path alembic can render, as patterns. The writer uses it to
//! decide what it may ever write or remove under an output root, so that a manifest or a
//! render journal found in a checkout (data anyone could have planted) can never name a file
//! outside this set. A new artifact kind adds its path here (a test renders every fixture and
//! checks that each path is known).

/// Paths rendered as they are.
const EXACT: &[&str] = &[
    crate::github::CI_PATH,
    crate::github::DEPLOY_PATH,
    crate::gitignore::PATH,
    "infra/MANIFEST.json",
    "infra/caddy/Caddyfile",
    "infra/docker/compose.yaml",
    "infra/docker/stack.yaml",
    "infra/droplet/bootstrap.sh",
    "infra/droplet/cloud-init.yaml",
    "infra/host/bin/alembic-launch",
    "infra/terraform/main.tf",
    "infra/terraform/outputs.tf",
    "infra/terraform/variables.tf",
    "infra/terraform/versions.tf",
];

/// Directories whose files carry a name (a launchd label, a unit, a manifest), with the
/// extensions they may have.
const NAMED: &[(&str, &[&str])] = &[
    ("infra/host/launchd/", &["plist"]),
    ("infra/host/systemd/", &["service", "timer"]),
    ("infra/k8s/", &["yaml"]),
];

/// Files that are merged into, never replaced whole or removed: the user's own lines stay.
pub fn is_merged(path: &str) -> bool {
    path == crate::gitignore::PATH
}

/// True when `path` (relative, `/`-separated) is a file alembic can render.
pub fn is_known(path: &str) -> bool {
    if EXACT.contains(&path) {
        return true;
    }
    NAMED.iter().any(|(dir, exts)| {
        path.strip_prefix(dir)
            .and_then(|file| file.rsplit_once('.'))
            .is_some_and(|(stem, ext)| exts.contains(&ext) && is_plain_name(stem))
    })
}

/// A single path component made of the characters labels and unit names use, not starting
/// with a dot (so never `.`, `..` or a hidden file).
fn is_plain_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_named_directories_are_known_and_nothing_else() {
        assert!(is_known(
            "infra/host/launchd/com.alembic.local-models.plist"
        ));
        assert!(is_known("infra/host/systemd/alembic-nightly-digest.timer"));
        assert!(is_known("infra/caddy/Caddyfile"));
        for bad in [
            "infra/host/launchd/../../../etc/passwd.plist",
            "infra/host/launchd/x/y.plist",
            "infra/host/launchd/.hidden.plist",
            "infra/host/launchd/.plist",
            "infra/host/systemd/a.sh",
            "infra/caddy/Caddyfile/x",
            "/infra/caddy/Caddyfile",
            "infra/terraform/zz-extra.tf",
            ".github/workflows/release.yml",
            "README.md",
            "",
        ] {
            assert!(!is_known(bad), "{bad}");
        }
    }
}
