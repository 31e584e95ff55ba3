//! The executor: one interface, two goals. `Goal::DryRun` records and prints operations;
//! `Goal::Apply` runs them. Callers build the same ops either way (colmena's `Goal` enum).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ops::{Op, Stdin};

/// Whether the executor runs ops or only records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Record each op in the transcript; run nothing (`alembic plan`, `apply --dry-run`).
    DryRun,
    /// Record each op and run it.
    Apply,
}

/// What an op produced.
#[derive(Clone, Debug, Default)]
pub(crate) struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes that went from the producer to the consumer of a piped op (`Stdin::Pipe`).
    pub piped: u64,
}

impl Output {
    pub(crate) fn success(&self) -> bool {
        self.status == 0
    }

    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

#[derive(Debug)]
pub(crate) enum ExecError {
    /// The program could not be started (missing from PATH, not executable).
    Spawn {
        program: String,
        error: std::io::Error,
    },
    /// A secret named in an env file is unset or empty in the applying environment.
    SecretUnset { name: String },
    /// A secret's value cannot be carried (`why` describes the value's shape, never the value).
    SecretUnusable { name: String, why: &'static str },
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Spawn { program, error } => write!(f, "cannot run {program}: {error}"),
            ExecError::SecretUnset { name } => {
                write!(f, "secret {name} is unset or empty in the environment")
            }
            ExecError::SecretUnusable { name, why } => write!(f, "secret {name} {why}"),
        }
    }
}

impl std::error::Error for ExecError {}

/// Source of secret values at run time. The real one reads the process environment; tests pass
/// their own map. Values never leave the pipe they are written to.
pub(crate) trait SecretSource {
    fn get(&self, name: &str) -> Option<String>;

    /// Why a secret that is set cannot be used (its shape, never its value); None when it can
    /// be, or is simply unset.
    fn unusable(&self, _name: &str) -> Option<&'static str> {
        None
    }
}

pub(crate) struct ProcessEnv;

impl SecretSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn unusable(&self, name: &str) -> Option<&'static str> {
        unusable_value(&std::env::var_os(name)?)
    }
}

/// Why a set value cannot be carried to a container: docker takes the environment as UTF-8.
pub(crate) fn unusable_value(v: &std::ffi::OsStr) -> Option<&'static str> {
    v.to_str().is_none().then_some(
        "is not valid UTF-8: docker hands a container its environment as UTF-8 text, so these \
         bytes could not arrive unchanged",
    )
}

/// Runs (or records) operations.
pub(crate) struct Executor<'a> {
    pub goal: Goal,
    secrets: &'a dyn SecretSource,
    /// Every op seen, in order, exactly as planned (placeholders included, see [`Self::bind`]):
    /// the dry-run transcript, and an audit trail for apply.
    pub transcript: Vec<Op>,
    /// Values known only once apply runs (the lease's fencing token, the private plan
    /// directory): `(placeholder, value)`, substituted into an op's arguments when it is
    /// spawned. The plan shows the placeholder, and so does the transcript.
    bindings: Vec<(String, String)>,
}

impl<'a> Executor<'a> {
    pub(crate) fn new(goal: Goal, secrets: &'a dyn SecretSource) -> Self {
        Executor {
            goal,
            secrets,
            transcript: Vec::new(),
            bindings: Vec::new(),
        }
    }

    /// From now on, `placeholder` in an op's arguments stands for `value` when it runs (a
    /// dry run never learns such values; the plan shows the placeholder).
    /// A placeholder bound again (a second plan on the same executor) takes the new value.
    pub(crate) fn bind(&mut self, placeholder: impl Into<String>, value: impl Into<String>) {
        let placeholder = placeholder.into();
        self.bindings.retain(|(p, _)| *p != placeholder);
        self.bindings.push((placeholder, value.into()));
    }

    /// `op` with the bound values in place of their placeholders (see [`Self::bind`]).
    pub(crate) fn bound(&self, op: &Op) -> Op {
        if self.bindings.is_empty() {
            return op.clone();
        }
        let mut op = op.clone();
        for a in &mut op.args {
            for (p, v) in &self.bindings {
                if a.contains(p.as_str()) {
                    *a = a.replace(p.as_str(), v);
                }
            }
        }
        if let Stdin::Pipe { from } = &op.stdin {
            let from = Box::new(self.bound(from));
            op.stdin = Stdin::Pipe { from };
        }
        op
    }

    /// Run `op` (or record it in a dry run, returning a successful empty output).
    pub(crate) fn run(&mut self, op: &Op) -> Result<Output, ExecError> {
        self.transcript.push(op.clone());
        if self.goal == Goal::DryRun {
            return Ok(Output::default());
        }
        run_op(&self.bound(op), self.secrets)
    }

    /// Run a read-only op whose answer decides what runs next (is the image already on the
    /// droplet?), in a dry run too, and record it like [`Self::run`]: a dry run then takes
    /// the same branch the apply would.
    pub(crate) fn decide(&mut self, op: &Op) -> Result<Output, ExecError> {
        debug_assert!(!op.mutating, "decide() is for read-only ops");
        self.transcript.push(op.clone());
        run_op(&self.bound(op), self.secrets)
    }

    /// Run `op` (no stdin) handing its stdout and stderr to `sink` as they arrive, line by line
    /// (a `logs --follow` that never ends on its own); returns the exit status. Recorded like
    /// `run`, and a dry run runs nothing.
    pub(crate) fn stream(
        &mut self,
        op: &Op,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<i32, ExecError> {
        self.transcript.push(op.clone());
        if self.goal == Goal::DryRun {
            return Ok(0);
        }
        stream_op(&self.bound(op), self.secrets, sink)
    }

    /// Run a read-only op even in a dry run (probes, `show`, `print`): plans need the answers.
    pub(crate) fn query(&mut self, op: &Op) -> Result<Output, ExecError> {
        debug_assert!(!op.mutating, "query() is for read-only ops");
        run_op(&self.bound(op), self.secrets)
    }
}

/// Find `name` on PATH (an executable regular file); a name with a `/` is taken as a path.
/// The one lookup of programs: doctor's tool checks and Terraform's `terraform`/`tofu` use it.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| is_executable(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Whether a TCP connection to `addr:port` is accepted within `timeout` (doctor's port scan;
/// closed again at once, nothing is sent).
pub(crate) fn tcp_connects(addr: IpAddr, port: u16, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::new(addr, port), timeout).is_ok()
}

/// The addresses the system resolver gives for `host` (doctor's DNS check; empty when it
/// does not resolve).
pub(crate) fn resolve(host: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    (host, 443)
        .to_socket_addrs()
        .map(|it| it.map(|s| s.ip()).collect())
        .unwrap_or_default()
}

/// Run `op` (found on PATH; `Stdin::Bytes` fed to it, any other stdin closed), killing it
/// after `timeout` (status -1 then): doctor's probes, which must never hang. Env vars the op
/// names are passed from the process environment when set; an unset one is simply not passed
/// (the child reports what it lacks, and doctor's secret checks name every unset secret).
/// `None` when the program is not on PATH or cannot start.
pub(crate) fn run_bounded(op: &Op, timeout: Duration) -> Option<(i32, Vec<u8>, Vec<u8>)> {
    let mut cmd = Command::new(which(&op.program)?);
    cmd.args(&op.args);
    let env = ProcessEnv;
    for name in &op.env {
        if let Some(v) = env.get(name) {
            cmd.env(name, v);
        }
    }
    for (child, source) in &op.env_map {
        if let Some(v) = env.get(source) {
            cmd.env(child, v);
        }
    }
    let input = match &op.stdin {
        Stdin::Bytes { data } => Some(data.clone()),
        _ => None,
    };
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().ok()?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let mut out = child.stdout.take()?;
    let mut err = child.stderr.take()?;
    // Output is read on threads so a chatty child cannot block on a full pipe.
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
        }
    };
    Some((status, out_t.join().ok()?, err_t.join().ok()?))
}

/// `NAME=value` lines for the names `secrets` sets (non-empty), in order; unset names are
/// left out for the merge to keep from the file. A value with a newline or NUL cannot be one
/// line of the file: it is refused like an unset one, never written mangled.
pub(crate) fn env_lines_if_set(
    names: &[String],
    secrets: &dyn SecretSource,
) -> Result<Vec<u8>, ExecError> {
    let mut out = Vec::new();
    for name in names {
        let Some(v) = secrets.get(name).filter(|v| !v.is_empty()) else {
            continue;
        };
        if v.contains('\n') || v.contains('\0') {
            return Err(ExecError::SecretUnset { name: name.clone() });
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// Scrubs secret values out of anything shown (remote stderr, logs), as a second line of
/// defence: no code path prints a value on purpose.
#[derive(Clone)]
pub(crate) struct Redactor(Vec<(String, String)>);

impl Redactor {
    /// Output is often scrubbed a line at a time (`logs`, `exec` stream line by line), where a
    /// multi-line value never appears whole: each of its lines is scrubbed too. Longer values
    /// first, so a whole value is replaced before its parts.
    pub(crate) fn new(names: &[String], secrets: &dyn SecretSource) -> Redactor {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (n, v) in names
            .iter()
            .filter_map(|n| secrets.get(n).map(|v| (n.clone(), v)))
        {
            if v.contains('\n') {
                for part in v.split('\n').filter(|p| p.trim().len() >= 4) {
                    pairs.push((n.clone(), part.to_owned()));
                }
            }
            pairs.push((n, v));
        }
        pairs.retain(|(_, v)| v.len() >= 4);
        pairs.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        pairs.dedup();
        Redactor(pairs)
    }

    pub(crate) fn clean(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (name, value) in &self.0 {
            out = out.replace(value, &format!("[{name}: redacted]"));
        }
        out
    }
}

/// The applying user's id (`id -u`), for the host stage's service manager domain.
pub(crate) fn current_uid() -> Result<u32, String> {
    struct NoSecrets;
    impl SecretSource for NoSecrets {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    let op = Op::new(
        crate::stage::Stage::Host,
        "read the user id",
        "id",
        vec!["-u".into()],
    )
    .read_only();
    let out = run_op(&op, &NoSecrets).map_err(|e| e.to_string())?;
    out.stdout_text()
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())
}

/// Spawn `op` and wait. Env vars it names are passed through from the secret source only.
pub(crate) fn run_op(op: &Op, secrets: &dyn SecretSource) -> Result<Output, ExecError> {
    if let Stdin::Pipe { from } = &op.stdin {
        return run_pipe(from, op, secrets);
    }
    let mut cmd = command(op, secrets)?;
    let input: Option<Vec<u8>> = match &op.stdin {
        Stdin::None | Stdin::Pipe { .. } => None,
        Stdin::Bytes { data } => Some(data.clone()),
        Stdin::EnvFile { names } => Some(env_file(names, secrets)?),
        Stdin::EnvLinesIfSet { names } => Some(env_lines_if_set(names, secrets)?),
        Stdin::ShellEnv { names } => Some(shell_env_file(names, secrets)?),
    };
    let mut child = cmd.spawn().map_err(|error| ExecError::Spawn {
        program: op.program.clone(),
        error,
    })?;
    // Write stdin from a thread so a child that fills its stdout pipe cannot deadlock us.
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })),
        _ => None,
    };
    let out = child.wait_with_output().map_err(|error| ExecError::Spawn {
        program: op.program.clone(),
        error,
    })?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
        piped: 0,
    })
}

/// Which output a streamed chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    /// The child's standard output.
    Stdout,
    /// The child's standard error.
    Stderr,
}

/// Spawn `op` and pass every line of its stdout and stderr to `sink` as it arrives (a reader
/// thread per pipe feeding a channel, so neither pipe can fill and block the child).
pub(crate) fn stream_op(
    op: &Op,
    secrets: &dyn SecretSource,
    sink: &mut dyn FnMut(Stream, &[u8]),
) -> Result<i32, ExecError> {
    use std::io::BufRead;
    let mut child = command(op, secrets)?
        .stdin(Stdio::null())
        .spawn()
        .map_err(|error| ExecError::Spawn {
            program: op.program.clone(),
            error,
        })?;
    let (tx, rx) = std::sync::mpsc::channel::<(Stream, Vec<u8>)>();
    let mut readers = Vec::new();
    let pipes: [(Stream, Option<Box<dyn std::io::Read + Send>>); 2] = [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ),
        (
            Stream::Stderr,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ),
    ];
    for (which, pipe) in pipes {
        let Some(pipe) = pipe else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(pipe);
            let mut line = Vec::new();
            while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if tx.send((which, std::mem::take(&mut line))).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    for (which, chunk) in rx {
        sink(which, &chunk);
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().map_err(|error| ExecError::Spawn {
        program: op.program.clone(),
        error,
    })?;
    Ok(status.code().unwrap_or(-1))
}

/// `from | to`, without a shell: `from`'s stdout is copied into `to`'s stdin by a thread that
/// counts the bytes. The status is `to`'s, unless `from` failed (then `from`'s: a truncated
/// stream must not read as success); stderr holds both sides'.
fn run_pipe(from: &Op, to: &Op, secrets: &dyn SecretSource) -> Result<Output, ExecError> {
    let spawn_err = |op: &Op| {
        let program = op.program.clone();
        move |error| ExecError::Spawn { program, error }
    };
    let mut producer = command(from, secrets)?
        .stdin(Stdio::null())
        .spawn()
        .map_err(spawn_err(from))?;
    let mut consumer = match command(to, secrets)?.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = producer.kill();
            let _ = producer.wait();
            return Err(spawn_err(to)(e));
        }
    };
    let copier = match (producer.stdout.take(), consumer.stdin.take()) {
        (Some(mut src), Some(mut dst)) => Some(std::thread::spawn(move || {
            // Dropping `dst` at the end closes the consumer's stdin: its end of stream.
            std::io::copy(&mut src, &mut dst).unwrap_or(0)
        })),
        _ => None,
    };
    let producer_err = producer.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut e, &mut buf);
            buf
        })
    });
    let out = consumer.wait_with_output().map_err(spawn_err(to))?;
    let piped = copier.map(|c| c.join().unwrap_or(0)).unwrap_or(0);
    let pstatus = producer.wait().map_err(spawn_err(from))?;
    let mut stderr = producer_err
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    stderr.extend_from_slice(&out.stderr);
    let status = match pstatus.code() {
        Some(0) => out.status.code().unwrap_or(-1),
        other => other.unwrap_or(-1),
    };
    Ok(Output {
        status,
        stdout: out.stdout,
        stderr,
        piped,
    })
}

/// `op` as a `Command` with piped stdio and the env vars it names from the secret source.
fn command(op: &Op, secrets: &dyn SecretSource) -> Result<Command, ExecError> {
    let mut cmd = Command::new(&op.program);
    cmd.args(&op.args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match op.stdin {
            Stdin::None => Stdio::null(),
            _ => Stdio::piped(),
        });
    for name in &op.env {
        match secrets.get(name) {
            Some(v) => {
                cmd.env(name, v);
            }
            None => return Err(ExecError::SecretUnset { name: name.clone() }),
        }
    }
    for (child, source) in &op.env_map {
        match secrets.get(source) {
            Some(v) => {
                cmd.env(child, v);
            }
            None => {
                return Err(ExecError::SecretUnset {
                    name: source.clone(),
                })
            }
        }
    }
    Ok(cmd)
}

/// `NAME=value` lines for a compose `.env`. Values are written single-quoted-free: compose's
/// `.env` syntax takes the rest of the line literally when unquoted, so a value with a newline
/// is refused rather than mangled.
pub(crate) fn env_file(names: &[String], secrets: &dyn SecretSource) -> Result<Vec<u8>, ExecError> {
    let mut out = Vec::new();
    for name in names {
        let v = secrets
            .get(name)
            .filter(|v| !v.contains('\n') && !v.contains('\0'))
            .ok_or_else(|| ExecError::SecretUnset { name: name.clone() })?;
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// The droplet release's `.env`: a header line, then `export ALEMBIC_SECRET_<NAME>=<value>` per
/// secret with the value quoted for a POSIX shell by `shlex` (never by hand). The droplet
/// sources it before `docker compose` (see `alembic_render::compose`), so every byte a shell
/// variable can hold arrives unchanged, newlines included. A NUL byte cannot be in an
/// environment variable: such a value is refused naming the secret, never showing the value.
pub(crate) fn shell_env_file(
    names: &[String],
    secrets: &dyn SecretSource,
) -> Result<Vec<u8>, ExecError> {
    use alembic_render::compose::{secret_variable, SECRETS_FILE_HEADER};
    let mut out = format!("{SECRETS_FILE_HEADER}\n").into_bytes();
    for name in names {
        if let Some(why) = secrets.unusable(name) {
            return Err(ExecError::SecretUnusable {
                name: name.clone(),
                why,
            });
        }
        let v = secrets
            .get(name)
            .ok_or_else(|| ExecError::SecretUnset { name: name.clone() })?;
        let quoted = shlex::try_quote(&v).map_err(|_| ExecError::SecretUnusable {
            name: name.clone(),
            why: "contains a NUL byte, which no environment variable can hold",
        })?;
        out.extend_from_slice(format!("export {}=", secret_variable(name)).as_bytes());
        out.extend_from_slice(quoted.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
