//! Secret shapes in a config never reach any view: not the echoed source line, not a message
//! that quotes the bad value, in human, JSON or SARIF output.

use assert_cmd::Command;

fn token() -> String {
    // Built at run time so this source file itself holds no token shape.
    format!("dop_v1_{}", "0123456789abcdef".repeat(4))
}

fn run(config: &str, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alembic.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::cargo_bin("alembic")
        .unwrap()
        .arg("-c")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

// A token on a line with an unrelated error was printed in full under the caret.
#[test]
fn token_on_an_error_line_is_masked_in_every_format() {
    let config = format!("version = 1\nbogus_key = \"{}\"\n", token());
    for args in [
        &["validate"][..],
        &["validate", "--json"],
        &["check"],
        &["check", "--format", "sarif"],
    ] {
        let (code, text) = run(&config, args);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(
            !text.contains(&token()),
            "{args:?} leaked the token:\n{text}"
        );
        assert!(
            text.contains("bogus_key"),
            "{args:?} still reports the problem:\n{text}"
        );
    }
}

// Validation messages quote bad values; a token in the wrong field is still a secret.
#[test]
fn token_quoted_by_a_validation_message_is_masked() {
    let config = format!("version = 1\n[project]\nname = \"{}\"\n", token());
    for args in [
        &["validate"][..],
        &["validate", "--json"],
        &["check", "--format", "sarif"],
    ] {
        let (code, text) = run(&config, args);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(
            !text.contains(&token()),
            "{args:?} leaked the token:\n{text}"
        );
        assert!(text.contains("CFG004"), "{args:?}: {text}");
    }
}
