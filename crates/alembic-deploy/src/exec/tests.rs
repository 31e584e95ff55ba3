//! Unit tests of `exec`.

use super::*;
use crate::stage::Stage;
use std::collections::HashMap;

struct Map(HashMap<String, String>);
impl SecretSource for Map {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[test]
fn bounded_runs_are_cut_off() {
    let sleep = Op::new(Stage::Host, "sleep", "sleep", vec!["30".into()]);
    let t = std::time::Instant::now();
    let (status, _, _) = run_bounded(&sleep, Duration::from_millis(200)).unwrap();
    assert_eq!(status, -1);
    assert!(t.elapsed() < Duration::from_secs(5));
    let cat = Op::new(Stage::Host, "cat", "cat", vec!["-".into()]).with_stdin(Stdin::Bytes {
        data: b"piped".to_vec(),
    });
    let (status, out, _) = run_bounded(&cat, Duration::from_secs(10)).unwrap();
    assert_eq!((status, out.as_slice()), (0, b"piped".as_slice()));
}

#[test]
fn dry_run_runs_nothing() {
    let s = Map(HashMap::new());
    let mut ex = Executor::new(Goal::DryRun, &s);
    let op = Op::new(
        crate::stage::Stage::Host,
        "boom",
        "/nonexistent/program",
        vec![],
    );
    assert!(ex.run(&op).unwrap().success());
    assert_eq!(ex.transcript.len(), 1);
}

#[test]
fn apply_runs_and_streams_env_file() {
    let s = Map(HashMap::from([("CANARY".to_owned(), "v4lue".to_owned())]));
    let mut ex = Executor::new(Goal::Apply, &s);
    let op = Op::new(crate::stage::Stage::Host, "cat", "cat", vec![]).with_stdin(Stdin::EnvFile {
        names: vec!["CANARY".into()],
    });
    let out = ex.run(&op).unwrap();
    assert_eq!(out.stdout_text(), "CANARY=v4lue\n");
    // The recorded op holds the name only.
    assert!(!format!("{:?}", ex.transcript).contains("v4lue"));
}

/// A piped op streams the producer's stdout into the consumer and counts the bytes; a
/// failing producer fails the pipe even when the consumer succeeds.
#[test]
fn a_piped_op_streams_counts_and_fails_with_its_producer() {
    let s = Map(HashMap::new());
    let from = Op::new(
        crate::stage::Stage::Host,
        "produce",
        "head",
        vec!["-c".into(), "300000".into()],
    )
    .with_stdin(Stdin::None);
    let from = Op {
        args: vec!["-c".into(), "300000".into(), "/dev/zero".into()],
        ..from
    };
    let to = Op::new(
        crate::stage::Stage::Host,
        "consume",
        "wc",
        vec!["-c".into()],
    )
    .with_stdin(Stdin::Pipe {
        from: Box::new(from.clone()),
    });
    let out = run_op(&to, &s).unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout_text().trim(), "300000");
    assert_eq!(out.piped, 300_000);
    assert_eq!(
        to.to_string(),
        "head -c 300000 /dev/zero | wc -c",
        "shown as a pipe"
    );
    let bad = Op::new(
        crate::stage::Stage::Host,
        "consume",
        "wc",
        vec!["-c".into()],
    )
    .with_stdin(Stdin::Pipe {
        from: Box::new(Op::new(
            crate::stage::Stage::Host,
            "fail",
            "sh",
            vec!["-c".into(), "exit 3".into()],
        )),
    });
    assert_eq!(run_op(&bad, &s).unwrap().status, 3);
}

/// `logs --follow` needs output as it is produced, not at exit.
#[test]
fn stream_hands_over_lines_from_both_pipes() {
    let s = Map(HashMap::new());
    let op = Op::new(
        crate::stage::Stage::Host,
        "x",
        "sh",
        vec!["-c".into(), "echo one; echo two >&2; exit 4".into()],
    );
    let mut seen = Vec::new();
    let status = stream_op(&op, &s, &mut |w, b| seen.push((w, b.to_vec()))).unwrap();
    assert_eq!(status, 4);
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (Stream::Stdout, b"one\n".to_vec()),
            (Stream::Stderr, b"two\n".to_vec())
        ]
    );
}

#[test]
fn unset_secret_is_an_error_naming_it() {
    let s = Map(HashMap::new());
    let op =
        Op::new(crate::stage::Stage::Host, "env", "env", vec![]).with_env(["MISSING".to_owned()]);
    let err = run_op(&op, &s).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secret MISSING is unset or empty in the environment"
    );
}

/// The droplet's `.env` once went through compose's dotenv reader, which changed values.
#[test]
fn shell_env_file_round_trips_hostile_values_through_sh() {
    let hostile =
        "  Pa$$w0rd$HOME #x 'sq' \"dq\" back\\slash\\\\ ${OTHER} $(id) `id` a=b é\n2nd line\t ";
    let s = Map(HashMap::from([
        ("HOSTILE".to_owned(), hostile.to_owned()),
        ("OTHER".to_owned(), "other".to_owned()),
    ]));
    let names = vec!["HOSTILE".to_owned(), "OTHER".to_owned()];
    let file = shell_env_file(&names, &s).unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(text.starts_with(alembic_render::compose::SECRETS_FILE_HEADER));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, &file).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#". "$1" && printf '%s' "$ALEMBIC_SECRET_HOSTILE""#)
        .arg("sh")
        .arg(&path)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), hostile);
    // NUL: refused naming the secret, not showing the value.
    let nul = Map(HashMap::from([("N".to_owned(), "se\0cret".to_owned())]));
    let err = shell_env_file(&["N".to_owned()], &nul).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secret N contains a NUL byte, which no environment variable can hold"
    );
    let err = shell_env_file(&["MISSING".to_owned()], &nul).unwrap_err();
    assert!(matches!(err, ExecError::SecretUnset { .. }));
}

/// A value docker could not carry byte for byte is refused by name, never shown.
#[test]
fn a_non_utf8_secret_is_refused_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let why = unusable_value(std::ffi::OsStr::from_bytes(b"se\xffcret"));
    assert!(why.is_some());
    assert_eq!(unusable_value(std::ffi::OsStr::new("plain é")), None);
    struct Bad;
    impl SecretSource for Bad {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
        fn unusable(&self, _: &str) -> Option<&'static str> {
            unusable_value(std::ffi::OsStr::from_bytes(b"se\xffcret"))
        }
    }
    let err = shell_env_file(&["RAW".to_owned()], &Bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secret RAW is not valid UTF-8: docker hands a container its environment as UTF-8 \
         text, so these bytes could not arrive unchanged"
    );
}

// `logs`/`exec` scrub a line at a time: no line of a multi-line value gets through.
#[test]
fn redactor_scrubs_every_line_of_a_multi_line_value() {
    struct One;
    impl SecretSource for One {
        fn get(&self, name: &str) -> Option<String> {
            (name == "S").then(|| "first line here\nsecond-line-canary\t x\nab".to_owned())
        }
    }
    let r = Redactor::new(&["S".to_owned()], &One);
    let whole = r.clean("S=first line here\nsecond-line-canary\t x\nab\n");
    assert_eq!(whole, "S=[S: redacted]\n");
    for line in ["S=first line here\n", "second-line-canary\t x\n"] {
        let out = r.clean(line);
        assert!(!out.contains("first line here") && !out.contains("second-line-canary"));
    }
}
