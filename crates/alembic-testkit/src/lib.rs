//! Test support shared by every crate's tests.
//!
//! Real-tool tests call [`tool`]: it finds the program on PATH (which `scripts/test.sh` extends
//! with `.tools/bin`). When `ALEMBIC_REQUIRE_TOOLS=1` (set by the test script and CI) a missing
//! tool fails the test; otherwise the test is skipped with a line saying which tool and why.

use std::path::{Path, PathBuf};

pub mod sweep;

/// True when missing tools must fail tests instead of skipping them.
pub fn tools_required() -> bool {
    std::env::var("ALEMBIC_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Find `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Say that a test is skipped, and why, where `cargo test` shows it. libtest captures only
/// the `print!`/`eprint!` macros of a passing test, so this writes to the stderr handle
/// directly and the line appears even without `--nocapture`.
pub fn report_skip(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The path of a real tool, or `None` (after printing why) when it is absent and not required.
/// Panics when it is absent and required.
#[track_caller]
pub fn tool(name: &str) -> Option<PathBuf> {
    if let Some(p) = which(name) {
        return Some(p);
    }
    let caller = std::panic::Location::caller();
    if tools_required() {
        panic!(
            "required tool `{name}` is not on PATH (ALEMBIC_REQUIRE_TOOLS=1); run scripts/install-tools.sh"
        );
    }
    report_skip(&format!(
        "SKIPPED {}:{}: `{name}` is not on PATH; run scripts/install-tools.sh (or scripts/test.sh) to run this check",
        caller.file(),
        caller.line()
    ));
    None
}

/// Like [`tool`] for several tools at once: all present, or skip/fail naming the missing ones.
#[track_caller]
pub fn tools<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
    let found: Vec<Option<PathBuf>> = names.iter().map(|n| which(n)).collect();
    if found.iter().all(Option::is_some) {
        return Some(std::array::from_fn(|i| found[i].clone().expect("checked")));
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(n, _)| *n)
        .collect();
    let caller = std::panic::Location::caller();
    if tools_required() {
        panic!(
            "required tools {missing:?} are not on PATH (ALEMBIC_REQUIRE_TOOLS=1); run scripts/install-tools.sh"
        );
    }
    report_skip(&format!(
        "SKIPPED {}:{}: {missing:?} not on PATH; run scripts/install-tools.sh to run this check",
        caller.file(),
        caller.line()
    ));
    None
}

/// The workspace root (for fixtures shared across crates).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/alembic-testkit lives two levels below the root")
        .to_path_buf()
}

/// How many `.toml` configs `crates/alembic-config/tests/corpus` holds. The corpus tests (in
/// alembic-config and in the binary's `validate_cli`) assert exactly this many were read, so a
/// file that stops being picked up fails them; adding a corpus file means raising it.
pub const CONFIG_CORPUS_FILES: usize = 140;
