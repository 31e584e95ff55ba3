//! `.gitignore` at the output root: one block, between two marker lines, that alembic manages
//! inside a file that is otherwise the user's. The block ignores Terraform's working directory
//! and saved plan files, and the bookkeeping an interrupted `alembic render` can leave.
//!
//! Terraform state (`*.tfstate`) is deliberately not ignored: with `droplet.state_bucket` it
//! lives in Spaces and never on disk; without a bucket the local state is the only record of
//! what was created, and whether it is committed (it can hold sensitive values) is the user's
//! decision, not one to make silently. The block says so in a comment.
//!
//! [`merge`] keeps every line outside the block byte for byte and is idempotent.

use alembic_config::Plane;

use crate::{Artifact, ArtifactKind};

/// Where the file lives, relative to the output root.
pub const PATH: &str = ".gitignore";

/// First line of the managed block.
pub const BEGIN: &str = "# >>> alembic: managed by `alembic render`; edit outside this block";
/// Last line of the managed block.
pub const END: &str = "# <<< alembic";

const BODY: &[&str] = &[
    "# Terraform's working directory (providers, modules) and saved plan files.",
    "/infra/terraform/.terraform/",
    "/infra/terraform/.terraform.tfstate.lock.info",
    "*.tfplan",
    "# What an interrupted `alembic render` can leave (the next render finishes or removes it).",
    "/.alembic-render.staging/",
    "/.alembic-render.journal",
    "/.alembic-render.journal.tmp",
    "# Terraform state (*.tfstate) is not ignored: keep it in droplet.state_bucket, or decide",
    "# yourself whether to commit it (it can hold sensitive values).",
];

/// The managed block alone, as rendered into a new `.gitignore`.
pub fn block() -> String {
    let mut s = String::new();
    for line in std::iter::once(BEGIN)
        .chain(BODY.iter().copied())
        .chain(std::iter::once(END))
    {
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// The `.gitignore` artifact: the block alone. The writer merges it into an existing file.
pub fn render() -> Artifact {
    Artifact::new(PATH, block(), Plane::Droplet, ArtifactKind::Gitignore)
}

fn is_line(line: &[u8], marker: &str) -> bool {
    line.strip_suffix(b"\r").unwrap_or(line) == marker.as_bytes()
}

/// `existing` with its managed block replaced by `block` (or `block` appended when there is
/// none). Lines outside the block are kept as they are; merging twice changes nothing. A begin
/// marker without an end marker (a hand edit) is dropped and the block appended, so no user
/// line is ever taken for part of the block.
pub fn merge(existing: &[u8], block: &str) -> Vec<u8> {
    let lines: Vec<&[u8]> = if existing.is_empty() {
        Vec::new()
    } else {
        existing
            .strip_suffix(b"\n")
            .unwrap_or(existing)
            .split(|b| *b == b'\n')
            .collect()
    };
    let begin = lines.iter().position(|l| is_line(l, BEGIN));
    let end = begin.and_then(|b| {
        lines[b..]
            .iter()
            .position(|l| is_line(l, END))
            .map(|e| b + e)
    });
    let mut out = Vec::with_capacity(existing.len() + block.len() + 1);
    let mut push = |l: &[u8]| {
        out.extend_from_slice(l);
        out.push(b'\n');
    };
    match (begin, end) {
        (Some(b), Some(e)) => {
            lines[..b].iter().for_each(|l| push(l));
            block.lines().for_each(|l| push(l.as_bytes()));
            lines[e + 1..].iter().for_each(|l| push(l));
        }
        _ => {
            let kept: Vec<&&[u8]> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != begin)
                .map(|(_, l)| l)
                .collect();
            kept.iter().for_each(|l| push(l));
            if kept.last().is_some_and(|l| !l.is_empty()) {
                push(b"");
            }
            block.lines().for_each(|l| push(l.as_bytes()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_into_nothing_is_the_block() {
        assert_eq!(merge(b"", &block()), block().into_bytes());
    }

    // The user's lines are kept byte for byte, and merging again changes nothing.
    #[test]
    fn user_lines_are_kept_and_merge_is_idempotent() {
        let user = b"node_modules/\n# mine\n  spaced  \ndist\n".to_vec();
        let once = merge(&user, &block());
        assert!(once.starts_with(&user));
        assert!(String::from_utf8_lossy(&once).contains("/infra/terraform/.terraform/"));
        assert_eq!(merge(&once, &block()), once);
        let mut edited = once.clone();
        edited.extend_from_slice(b"after/\n");
        let again = merge(&edited, &block());
        assert_eq!(again, edited, "lines after the block stay where they are");
    }

    // An old block is replaced in place, not duplicated.
    #[test]
    fn an_old_block_is_replaced_in_place() {
        let old = format!("a\n{BEGIN}\n*.old\n{END}\nb\n");
        let merged = String::from_utf8(merge(old.as_bytes(), &block())).unwrap();
        assert_eq!(merged, format!("a\n{}b\n", block()));
        assert_eq!(merged.matches(BEGIN).count(), 1);
    }

    // A file without a final newline keeps its last line whole.
    #[test]
    fn a_missing_final_newline_is_added_before_the_block() {
        let merged = String::from_utf8(merge(b"target", &block())).unwrap();
        assert_eq!(merged, format!("target\n\n{}", block()));
    }

    // A begin marker without its end never swallows the lines after it.
    #[test]
    fn a_torn_block_keeps_every_user_line() {
        let torn = format!("a\n{BEGIN}\nkeep-me\n");
        let merged = String::from_utf8(merge(torn.as_bytes(), &block())).unwrap();
        assert_eq!(merged, format!("a\nkeep-me\n\n{}", block()));
    }
}
