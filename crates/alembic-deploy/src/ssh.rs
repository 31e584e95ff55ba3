//! Remote commands as data: an argv for the system `ssh`, with the remote command built as an
//! argv too and quoted by `shlex`. One ControlMaster connection per apply (its socket lives in a
//! per-process temp dir), BatchMode so nothing ever prompts, and the user's own `~/.ssh/config`,
//! agent and known_hosts left in charge of host keys: nothing here weakens host key checking.
//!
//! `ALEMBIC_SSH_CONFIG=FILE` adds `-F FILE` (tests point it at their own config and known_hosts).

use std::path::{Path, PathBuf};

use crate::ops::Op;

/// Env var naming an ssh_config file passed as `-F` (documented in `alembic apply --help` text).
pub(crate) const SSH_CONFIG_ENV: &str = "ALEMBIC_SSH_CONFIG";

/// The ssh_config file `ALEMBIC_SSH_CONFIG` names, if any: every ssh alembic runs gets it as
/// `-F` (the deploy's and `doctor --online`'s alike).
pub(crate) fn config_file() -> Option<PathBuf> {
    std::env::var_os(SSH_CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where and how to reach the droplet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// `-F` file, if any.
    pub config: Option<PathBuf>,
    /// Directory holding the ControlMaster socket (`cm-%C` inside it).
    pub control_dir: PathBuf,
}

impl SshTarget {
    /// A target with a ControlMaster socket dir private to this process.
    pub(crate) fn new(user: &str, host: &str, port: u16) -> SshTarget {
        SshTarget {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            config: config_file(),
            control_dir: default_control_dir(),
        }
    }

    fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// Options shared by every invocation (so all of them reuse the one master connection).
    pub(crate) fn options(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(cfg) = &self.config {
            v.push("-F".to_owned());
            v.push(cfg.display().to_string());
        }
        for o in [
            "ControlMaster=auto".to_owned(),
            format!("ControlPath={}", self.control_dir.join("cm-%C").display()),
            "ControlPersist=60".to_owned(),
            "BatchMode=yes".to_owned(),
            "ConnectTimeout=10".to_owned(),
            "ServerAliveInterval=5".to_owned(),
            "ServerAliveCountMax=2".to_owned(),
        ] {
            v.push("-o".to_owned());
            v.push(o);
        }
        v.push("-p".to_owned());
        v.push(self.port.to_string());
        v
    }

    /// An op running `remote_argv` on the droplet. The remote shell receives one string, the
    /// argv joined and quoted by `shlex`, so every word arrives intact.
    pub(crate) fn remote(
        &self,
        plane: crate::stage::Stage,
        step: &str,
        remote_argv: &[String],
    ) -> Op {
        let mut args = self.options();
        args.push("--".to_owned());
        args.push(self.destination());
        args.push(join(remote_argv));
        Op::new(plane, step, "ssh", args)
    }

    /// A fixed POSIX shell script run remotely with `args` as `$1..$n`: the script text never
    /// contains data, so nothing has to be escaped into it.
    pub(crate) fn script(
        &self,
        plane: crate::stage::Stage,
        step: &str,
        script: &str,
        args: &[String],
    ) -> Op {
        let mut argv = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        argv.push("alembic".to_owned());
        argv.extend(args.iter().cloned());
        self.remote(plane, step, &argv)
    }

    /// `ssh -O exit`: close the master connection at the end of an apply.
    pub(crate) fn close_master(&self, plane: crate::stage::Stage) -> Op {
        let mut args = self.options();
        args.extend(["-O".to_owned(), "exit".to_owned(), "--".to_owned()]);
        args.push(self.destination());
        Op::new(plane, "close ssh connection", "ssh", args).read_only()
    }

    /// Create the socket dir (0700) before the first connection.
    pub(crate) fn prepare(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.control_dir)?;
        set_private(&self.control_dir)
    }

    /// Remove the socket dir after the master is closed.
    pub(crate) fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

#[cfg(unix)]
fn set_private(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn set_private(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Unix socket paths are limited to ~104 bytes: keep the dir short (`/tmp` when TMPDIR is long).
fn default_control_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    let base = if tmp.as_os_str().len() > 40 {
        PathBuf::from("/tmp")
    } else {
        tmp
    };
    base.join(format!("alembic-ssh-{}", std::process::id()))
}

/// Quote an argv for a POSIX shell with `shlex`. NUL bytes (the only failure) never reach
/// here: every word comes from validated newtypes or fixed scripts.
pub(crate) fn join(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| String::from("false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            user: "deploy".into(),
            host: "203.0.113.20".into(),
            port: 2222,
            config: None,
            control_dir: PathBuf::from("/tmp/alembic-ssh-1"),
        }
    }

    #[test]
    fn remote_command_is_one_shlex_quoted_word() {
        let op = target().script(
            crate::stage::Stage::Droplet,
            "upload",
            r#"cat > "$1""#,
            &["/opt/a b/it's".to_owned()],
        );
        assert_eq!(op.program, "ssh");
        let last = op.args.last().unwrap();
        assert_eq!(
            last, r#"sh -c 'cat > "$1"' alembic "/opt/a b/it's""#,
            "the remote shell must see the script and each argument as single words"
        );
        let words = shlex::split(last).unwrap();
        assert_eq!(words[4], "/opt/a b/it's");
        assert!(op
            .args
            .windows(2)
            .any(|w| w[0] == "-o" && w[1] == "ControlPath=/tmp/alembic-ssh-1/cm-%C"));
        assert!(op.args.iter().any(|a| a == "BatchMode=yes"));
        assert!(!op.args.iter().any(|a| a.contains("StrictHostKeyChecking")));
    }

    #[test]
    fn close_master_is_read_only_and_targets_the_same_socket() {
        let t = target();
        let op = t.close_master(crate::stage::Stage::Droplet);
        assert!(!op.mutating);
        assert_eq!(
            op.command_line(),
            "ssh -o 'ControlMaster=auto' -o 'ControlPath=/tmp/alembic-ssh-1/cm-%C' \
             -o 'ControlPersist=60' -o 'BatchMode=yes' -o 'ConnectTimeout=10' \
             -o 'ServerAliveInterval=5' -o 'ServerAliveCountMax=2' -p 2222 -O exit -- deploy@203.0.113.20"
        );
    }
}
