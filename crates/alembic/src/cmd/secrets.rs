//! `alembic secrets [--check] [--plane P] [--json]`: every secret name, which plane and workload
//! consume it, where it must be set, and whether it is set now (empty counts as unset, SEC003).
//! Never a value: the inventory holds booleans only.

use alembic_deploy::session::{self as secrets, Context};

use crate::cli::{Global, PlaneArg};
use crate::exit;
use crate::view::{CmdResult, Outcome, Rendered};

pub fn run(g: &Global, check: bool, plane: Option<PlaneArg>) -> CmdResult {
    let (_, _, t) = crate::config::topology(g.config.as_deref())?;
    let get = |n: &str| std::env::var(n).ok();
    let ctx = Context::from_env(&get);
    let rows = secrets::inventory(&t, ctx, plane, &get);
    let missing: Vec<&str> = secrets::missing(&rows).map(|r| r.name.as_str()).collect();
    let talk: String = missing
        .iter()
        .map(|name| format!("error[SEC003]: secret {name} is unset or empty in the environment\n"))
        .collect();
    let code = if check && !missing.is_empty() {
        exit::PROBLEMS
    } else {
        exit::OK
    };
    let view = Rendered::new(
        secrets::to_human(ctx, &rows),
        talk,
        secrets::to_json(ctx, &rows),
    );
    Ok(Outcome::new(code, view))
}
