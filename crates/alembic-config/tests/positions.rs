//! Position-exact diagnostics: for each code the parser emits (CFG001-CFG006, SEC002), an input,
//! the code, and the exact line, column and caret width, in the manner of just's
//! `analysis_error!`. Columns count characters, so inputs with multi-byte UTF-8 before the
//! problem pin that down too.

use alembic_config::{load_bytes, load_str, Code, Diagnostic};

/// A minimal valid config of 12 lines; appended text starts on line 13.
const BASE: &str = "version = 1\n\n[project]\nname = \"demo\"\ndomain = \"demo.example.com\"\n\n[droplet]\nname = \"demo-prod\"\naddress = \"203.0.113.20\"\n\n[ci]\nrepository = \"acme/demo\"\n";

/// A host workload appended to BASE: `[[workload]]` on line 14, its keys on lines 15-17.
const HOST: &str =
    "\n[[workload]]\nname = \"worker\"\nplane = \"host\"\ncommand = [\"/bin/worker\"]\n";

#[track_caller]
fn assert_one(
    diags: &[Diagnostic],
    src: &str,
    code: Code,
    line: usize,
    column: usize,
    width: usize,
) {
    let of_code: Vec<&Diagnostic> = diags.iter().filter(|d| d.code == code).collect();
    assert_eq!(
        of_code.len(),
        1,
        "expected exactly one {code}, got {diags:#?}"
    );
    let d = of_code[0];
    assert_eq!(
        (d.line, d.column),
        (line, column),
        "{code} at the wrong place: {}",
        d.message
    );
    let span = d.span.clone().expect("a located diagnostic has a span");
    let got_width = src
        .get(span.clone())
        .map(|t| t.chars().count())
        .unwrap_or(usize::MAX);
    assert_eq!(
        got_width,
        width,
        "{code} span {span:?} ({:?})",
        src.get(span.clone())
    );
}

macro_rules! diag_at {
    ($(#[$m:meta])* $name:ident { input: $input:expr, code: $code:ident, line: $line:expr, column: $col:expr, width: $width:expr $(,)? }) => {
        $(#[$m])*
        #[test]
        fn $name() {
            let input: String = $input;
            let loaded = load_str("alembic.toml", &input);
            assert!(loaded.topology.is_none(), "an error must not yield a topology");
            assert_one(&loaded.diagnostics, &input, Code::$code, $line, $col, $width);
        }
    };
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn host(extra: &str) -> String {
    format!("{BASE}{HOST}{extra}")
}

// ---------------------------------------------------------------------------- CFG001
diag_at!(cfg001_unterminated_string {
    input: with("branch = \"main\n"),
    code: Cfg001,
    line: 13,
    column: 15,
    width: 0,
});
diag_at!(cfg001_bare_word_value {
    input: with("branch = main\n"),
    code: Cfg001,
    line: 13,
    column: 10,
    width: 4,
});
diag_at!(cfg001_nesting_points_at_the_bracket_past_the_limit {
    input: with(&format!("x = {}{}\n", "[".repeat(40), "]".repeat(40))),
    code: Cfg001,
    line: 13,
    column: 5 + 32,
    width: 1,
});
diag_at!(
    /// `toml` reports over-long dotted keys with no span at all; the pre-pass locates them.
    cfg001_dotted_key_points_at_the_key {
        input: with(&format!("  a{} = 1\n", ".a".repeat(40))),
        code: Cfg001, line: 13, column: 3, width: 1,
    }
);

#[test]
fn cfg001_invalid_utf8_points_at_the_byte() {
    let mut bytes = with("branch = \"h\u{e9}\u{e9}").into_bytes();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\"\n");
    let loaded = load_bytes("alembic.toml", &bytes);
    // Column 14: `branch = "` is 10 characters, then h, é, é (5 bytes, 3 characters).
    let d = &loaded.diagnostics[0];
    assert_eq!((d.code, d.line, d.column), (Code::Cfg001, 13, 14));
    assert_eq!(loaded.diagnostics.len(), 1);
}

// ---------------------------------------------------------------------------- CFG002
diag_at!(cfg002_unknown_droplet_key {
    input: with("").replace("address", "adress"),
    code: Cfg002,
    line: 9,
    column: 1,
    width: 6,
});
diag_at!(cfg002_unknown_workload_key {
    input: host("  portt = 80\n"),
    code: Cfg002,
    line: 18,
    column: 3,
    width: 5,
});

#[test]
fn cfg002_says_did_you_mean_and_names_the_workload() {
    let loaded = load_str("alembic.toml", &host("portt = 80\n"));
    let d = &loaded.diagnostics[0];
    assert_eq!(
        d.message,
        "unknown key `portt` in [[workload]] #1 (`worker`)"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `port`?"));
}

// ---------------------------------------------------------------------------- CFG003
diag_at!(cfg003_missing_project_name_points_at_the_table {
    input: with("").replace("name = \"demo\"\n", ""),
    code: Cfg003,
    line: 3,
    column: 1,
    width: 9,
});
diag_at!(cfg003_host_workload_without_command_points_at_its_name {
    input: format!("{BASE}\n[[workload]]\nname = \"worker\"\nplane = \"host\"\n"),
    code: Cfg003,
    line: 15,
    column: 1,
    width: 15,
});

// ---------------------------------------------------------------------------- CFG004
diag_at!(cfg004_port_out_of_range {
    input: host("port = 70000\n"),
    code: Cfg004,
    line: 18,
    column: 8,
    width: 5,
});
diag_at!(cfg004_after_multibyte_text_counts_characters {
    // "é" and "ö" are two bytes each: a byte column would be 2 too far right.
    input: host("env = { NOTE = \"h\u{e9}llo w\u{f6}rld\", A = [\"x\"] }\n"),
    code: Cfg004,
    line: 18,
    column: 35,
    width: 5,
});
diag_at!(cfg004_cidr_host_bits {
    input: with("").replace(
        "address = \"203.0.113.20\"\n",
        "region = \"nyc3\"\nsize = \"s\"\nimage = \"u\"\nssh_keys = [\"1\"]\nadmin_cidrs = [\"10.0.0.1/8\"]\n"
    ),
    code: Cfg004, line: 13, column: 16, width: 12,
});

#[test]
fn cfg004_message_names_the_workload_in_user_terms() {
    let loaded = load_str("alembic.toml", &host("port = 0\n"));
    let d = &loaded.diagnostics[0];
    assert_eq!(
        d.message,
        "invalid `port` in [[workload]] #1 (`worker`): port 0 is out of range 1-65535"
    );
}

// ---------------------------------------------------------------------------- CFG005
diag_at!(cfg005_duplicate_workload_points_at_the_second_name {
    input: host(HOST),
    code: Cfg005,
    line: 20,
    column: 1,
    width: 15,
});
diag_at!(cfg005_duplicate_secret {
    input: host("secrets = [\"A\", \"A\"]\n"),
    code: Cfg005,
    line: 18,
    column: 17,
    width: 3,
});

// ---------------------------------------------------------------------------- CFG006
diag_at!(cfg006_unknown_dependency {
    input: host("depends_on = [\"wroker\"]\n"),
    code: Cfg006,
    line: 18,
    column: 15,
    width: 8,
});
diag_at!(cfg006_cross_plane_dependency {
    input: host("\n[[workload]]\nname = \"api\"\nplane = \"droplet\"\nimage = \"x:1\"\ndepends_on = [\"worker\"]\n"),
    code: Cfg006, line: 23, column: 15, width: 8,
});

// ---------------------------------------------------------------------------- SEC002
diag_at!(sec002_env_key {
    input: host("env = { \"log-level\" = \"info\" }\n"),
    code: Sec002,
    line: 18,
    column: 9,
    width: 11,
});
diag_at!(sec002_secret_name {
    input: host("secrets = [\"OK\", \"not ok\"]\n"),
    code: Sec002,
    line: 18,
    column: 18,
    width: 8,
});
