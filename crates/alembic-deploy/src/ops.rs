//! Operations as data: the exact program, argv and env-var *names* that apply would run. Plans
//! hold these; the executor runs them; dry runs print them. Nothing here runs a process.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::stage::Stage;

/// What is fed to an operation's stdin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stdin {
    None,
    /// Non-secret bytes known at plan time (an uploaded artifact); shown by sha256 and length.
    Bytes {
        #[serde(with = "b64ish")]
        data: Vec<u8>,
    },
    /// `NAME=value` lines built from the applying process's environment at run time. Only the
    /// names are ever stored, printed or serialised; values exist only in the pipe.
    EnvFile {
        names: Vec<String>,
    },
    /// Like `EnvFile`, but names the environment does not set are left out rather than an
    /// error: the host secrets merge keeps their values from the file it updates
    /// (`host::secrets_file`). Names only are stored; values exist only in the pipe.
    EnvLinesIfSet {
        names: Vec<String>,
    },
    /// The droplet release's `.env`: a POSIX sh fragment (`export ALEMBIC_SECRET_<NAME>='value'`
    /// lines) built from the applying process's environment at run time and sourced on the
    /// droplet before `docker compose`. Names only, like `EnvFile`.
    ShellEnv {
        names: Vec<String>,
    },
    /// Another op's stdout, streamed as it is produced (`docker save ... | ssh ... docker
    /// load`): the executor runs both and counts the bytes that passed. Neither side is a shell.
    Pipe {
        from: Box<Op>,
    },
}

/// A single step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The stage this op belongs to (serialised as `infra`, `droplet`, `host`).
    pub plane: Stage,
    /// Short human label: "take lease", "upload compose.yaml", "docker compose up".
    pub step: String,
    /// The program run (`ssh`, `terraform`, `launchctl`, ...), looked up on `PATH`.
    pub program: String,
    /// Its arguments, each one argv word (never joined into a shell string).
    pub args: Vec<String>,
    /// Env var names the child needs from the applying environment (never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Env vars the child gets under another name: `(child_name, source_name)`, e.g.
    /// `("DIGITALOCEAN_TOKEN", "DO_API_TOKEN")`. Names only, like `env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_map: Vec<(String, String)>,
    /// What the child reads on stdin (bytes, or secret values by name, never in the op).
    pub stdin: Stdin,
    /// True when the op changes state anywhere (a read-only probe is false).
    pub mutating: bool,
}

impl Op {
    /// An op of `plane` labelled `step` running `program args`; mutating, no env, no stdin.
    pub fn new(
        plane: Stage,
        step: impl Into<String>,
        program: impl Into<String>,
        args: Vec<String>,
    ) -> Op {
        Op {
            plane,
            step: step.into(),
            program: program.into(),
            args,
            env: Vec::new(),
            env_map: Vec::new(),
            stdin: Stdin::None,
            mutating: true,
        }
    }

    /// Mark the op as read-only (a probe that changes nothing).
    pub fn read_only(mut self) -> Op {
        self.mutating = false;
        self
    }

    /// Pass these env var names (values from the applying environment) to the child.
    pub fn with_env(mut self, names: impl IntoIterator<Item = String>) -> Op {
        self.env.extend(names);
        self
    }

    /// Pass the value of `source` (from the applying environment) to the child as `child`.
    pub fn with_env_as(mut self, child: impl Into<String>, source: impl Into<String>) -> Op {
        self.env_map.push((child.into(), source.into()));
        self
    }

    /// Feed the child `stdin`.
    pub fn with_stdin(mut self, stdin: Stdin) -> Op {
        self.stdin = stdin;
        self
    }

    /// The command line, quoted for a POSIX shell by `shlex` (never by hand).
    pub fn command_line(&self) -> String {
        let words =
            std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str));
        shlex::try_join(words).unwrap_or_else(|_| {
            // Only NUL bytes make try_join fail; validated inputs never contain them.
            format!("{} <argv with NUL>", self.program)
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Stdin::Pipe { from } = &self.stdin {
            write!(f, "{from} | ")?;
        }
        if !self.env.is_empty() || !self.env_map.is_empty() {
            let names: Vec<String> = self
                .env
                .iter()
                .cloned()
                .chain(self.env_map.iter().map(|(c, s)| format!("{c}<-{s}")))
                .collect();
            write!(f, "[env: {}] ", names.join(", "))?;
        }
        f.write_str(&self.command_line())?;
        match &self.stdin {
            Stdin::None => Ok(()),
            Stdin::Bytes { data } => write!(f, " < ({} bytes)", data.len()),
            Stdin::EnvFile { names } => write!(f, " < (env file: {})", names.join(", ")),
            Stdin::EnvLinesIfSet { names } => {
                write!(f, " < (env lines where set: {})", names.join(", "))
            }
            Stdin::ShellEnv { names } => write!(f, " < (sh env file: {})", names.join(", ")),
            // Written before the command line, as a shell shows a pipe.
            Stdin::Pipe { .. } => Ok(()),
        }
    }
}

/// Bytes serialised as a UTF-8 string when they are text (artifacts are), else as an array.
mod b64ish {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Raw(Vec<u8>),
    }

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(v) {
            Ok(t) => Repr::Text(t.to_owned()).serialize(s),
            Err(_) => Repr::Raw(v.to_vec()).serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Text(t) => t.into_bytes(),
            Repr::Raw(r) => r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_by_shlex() {
        let op = Op::new(
            crate::stage::Stage::Droplet,
            "x",
            "ssh",
            vec!["host".into(), "echo 'a b'".into(), "$(id)".into()],
        );
        assert_eq!(op.command_line(), r#"ssh host "echo 'a b'" '$(id)'"#);
    }
}
