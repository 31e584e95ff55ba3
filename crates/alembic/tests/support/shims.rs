//! Recording stand-ins for the programs a deploy would run, for tests proving that a program
//! did NOT run: each shim appends its argv to a log and exits 1. They are never used for a
//! positive result (the real programs are, in the E2E tests).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes a recording shim for each of `names` into `dir/bin` (created), logging to
/// `dir/calls.log`. Returns the `bin` directory, to put first on `PATH`.
pub fn install(dir: &Path, names: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    for name in names {
        let shim = bin.join(name);
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"{name} $*\" >> '{}'\nexit 1\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// `PATH` with `bin` first.
pub fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Every call the shims under `dir` recorded, one line each (empty when none ran).
pub fn calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default()
}

/// A loopback port nothing listens on (bound, read, released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
