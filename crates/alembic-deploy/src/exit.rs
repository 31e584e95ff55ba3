//! Exit codes the façade's failures carry (DESIGN.md, "Commands").

/// The user's config or artifacts have problems.
pub(crate) const PROBLEMS: i32 = 1;
/// An operation failed at run time: tool missing, SSH unreachable, deploy failed.
pub(crate) const RUNTIME: i32 = 3;
/// Stopped by a signal after cleaning up (128 + SIGINT).
pub(crate) const INTERRUPTED: i32 = 130;
