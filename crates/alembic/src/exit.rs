//! Exit codes (DESIGN.md, "Commands").

/// Everything is fine.
pub const OK: i32 = 0;
/// The user's config or artifacts have problems: invalid, policy errors, drift, doctor failures.
pub const PROBLEMS: i32 = 1;
/// Usage error.
pub const USAGE: i32 = 2;
/// An operation failed at run time: tool missing, SSH unreachable, deploy failed (rolled back).
pub const RUNTIME: i32 = 3;
/// Stopped by SIGINT/SIGTERM/SIGHUP after cleaning up (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;
