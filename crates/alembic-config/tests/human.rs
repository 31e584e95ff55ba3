//! The human view of a diagnostic: the caret sits under the reported column (characters, not
//! bytes, and tabs kept), long lines are windowed around the column instead of flooding the
//! terminal, and raw control characters never reach it.

use alembic_config::diag::render_human;
use alembic_config::{load_bytes, load_str, Code, Diagnostic, Loaded};

const BASE: &str = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\naddress = \"203.0.113.20\"\n\n[ci]\nrepository = \"acme/demo\"\n";
const HOST: &str =
    "\n[[workload]]\nname = \"worker\"\nplane = \"host\"\ncommand = [\"/bin/worker\"]\n";

fn first(loaded: &Loaded, code: Code) -> &Diagnostic {
    loaded
        .diagnostics
        .iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", loaded.diagnostics))
}

/// The shown source line and the caret line, without their `N | ` gutters.
fn view(out: &str) -> (String, String) {
    let lines: Vec<&str> = out.lines().collect();
    let caret = lines
        .iter()
        .position(|l| l.trim_end().ends_with('^'))
        .unwrap_or_else(|| panic!("no caret line in:\n{out}"));
    let strip = |l: &str| {
        l.split_once(" | ")
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default()
    };
    (strip(lines[caret - 1]), strip(lines[caret]))
}

/// Where the caret starts, in characters (a tab in the padding counts as one, like the source).
fn caret_at(caret: &str) -> usize {
    caret.chars().position(|c| c == '^').expect("a caret")
}

#[test]
fn caret_under_the_column_after_multibyte_text() {
    let text = format!(
        "{BASE}{HOST}env = {{ NOTE = \"h\u{e9}llo w\u{f6}rld \u{1f600}\", A = [\"x\"] }}\n"
    );
    let loaded = load_str("alembic.toml", &text);
    let d = first(&loaded, Code::Cfg004);
    let out = render_human(d, Some(&loaded.source));
    let (src, caret) = view(&out);
    let want = src
        .chars()
        .position(|c| c == '[')
        .expect("the array in the shown line");
    assert_eq!(caret_at(&caret), want, "\n{out}");
    assert_eq!(
        caret.trim_start().len(),
        "[\"x\"]".len(),
        "caret as wide as the value:\n{out}"
    );
    assert!(out.contains("--> alembic.toml:18:37"), "{out}");
}

#[test]
fn caret_keeps_tabs_so_it_lines_up() {
    let text = format!("{BASE}{HOST}\tport\t=\t0\n");
    let loaded = load_str("alembic.toml", &text);
    let out = render_human(first(&loaded, Code::Cfg004), Some(&loaded.source));
    let (_, caret) = view(&out);
    assert_eq!(caret, "\t    \t \t^", "{out:?}");
}

#[test]
fn long_line_is_cut_with_an_ellipsis() {
    let text = format!("{BASE}{HOST}health = \"/{}\"\n", "x".repeat(5000));
    let loaded = load_str("alembic.toml", &text);
    let d = first(&loaded, Code::Cfg004);
    assert_eq!((d.line, d.column), (18, 10));
    let out = render_human(d, Some(&loaded.source));
    let (src, caret) = view(&out);
    assert!(src.starts_with("health = \"/xxx"), "{src}");
    assert!(src.ends_with('…'), "a cut line says so: {src}");
    assert_eq!(src.chars().count(), 161, "160 characters and the ellipsis");
    assert_eq!(caret_at(&caret), 9, "{out}");
    assert_eq!(
        caret.chars().count(),
        160,
        "the caret stops at the window's edge"
    );
}

// Regression: the view cut every line at 160 characters and parked the caret at the cut.
#[test]
fn long_line_with_the_problem_at_the_end_shows_the_end() {
    let pad = "a".repeat(3000);
    // A syntax error 3000 characters into the line.
    let text = format!("{BASE}x = [\"{pad}\", nope]\n");
    let loaded = load_str("alembic.toml", &text);
    let d = first(&loaded, Code::Cfg001);
    assert!(d.column > 3000, "{d:?}");
    let out = render_human(d, Some(&loaded.source));
    let (src, caret) = view(&out);
    assert!(
        src.starts_with('…'),
        "a window that starts mid-line says so: {src}"
    );
    assert!(src.chars().count() <= 162);
    let at = caret_at(&caret);
    let under: String = src.chars().skip(at).take(4).collect();
    assert_eq!(under, "nope", "\n{out}");
}

#[test]
fn ten_megabyte_line_renders_small() {
    let text = format!("{BASE}branch = \"{}\"\n", "b".repeat(10 * 1024 * 1024));
    let loaded = load_str("alembic.toml", &text);
    let d = first(&loaded, Code::Cfg004);
    assert_eq!((d.line, d.column), (13, 10));
    let out = render_human(d, Some(&loaded.source));
    assert!(out.len() < 2000, "{} bytes of output", out.len());
}

// Regression: unknown-key messages quoted the raw key, escape sequences and newlines included.
#[test]
fn control_characters_never_reach_the_terminal() {
    // A quoted key with an escape sequence, and a raw escape byte in a comment on the line.
    let text = format!("{BASE}\"\\u001b[2Jboom\\nerror[CFG000]: forged\" = 1 # \u{1b}[31m\n");
    let loaded = load_bytes("alembic.toml", text.as_bytes());
    let d = first(&loaded, Code::Cfg002);
    let out = render_human(d, Some(&loaded.source));
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "control character in:\n{out:?}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("error[")).count(),
        1,
        "a newline in a key forged a second diagnostic:\n{out}"
    );
}

// Regression: `column - 1` overflowed (a panic in debug builds) for a column of 0.
#[test]
fn column_zero_from_another_producer_does_not_panic() {
    // Diagnostic is public; policy and scan build their own.
    let loaded = load_str("alembic.toml", BASE);
    let d = Diagnostic {
        column: 0,
        ..loaded.source.diag(
            Code::Exp001,
            alembic_config::Severity::Error,
            0..1,
            "x",
            None,
        )
    };
    let out = render_human(&d, Some(&loaded.source));
    assert!(out.contains('^'), "{out}");
}
