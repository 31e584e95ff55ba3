//! The `alembic init` template made deployable: its placeholders (CFG007: the example domain,
//! the documentation admin range, the example key fingerprint, the template's repository)
//! replaced by values `plan` and `apply` accept.

/// The zone the deployable template uses instead of `alembic.example.com`.
pub const DOMAIN: &str = "alembic-e2e.dev";

/// `text` (the template or an edit of it) with every template placeholder replaced.
#[track_caller]
pub fn deployable(text: &str) -> String {
    let mut out = text.to_owned();
    for (from, to) in [
        ("alembic.example.com", DOMAIN),
        ("203.0.113.10/32", "100.64.10.10/32"),
        (
            alembic_policy::topology::placeholders::TEMPLATE_SSH_KEY,
            "5e:2a:90:11:c4:7d:3f:a8:06:b2:e9:51:7c:48:d0:1f",
        ),
        (
            alembic_policy::topology::placeholders::TEMPLATE_REPOSITORY,
            "alembic-infra/site",
        ),
    ] {
        assert!(
            out.contains(from),
            "{from} not in the template: update this helper"
        );
        out = out.replace(from, to);
    }
    out
}
