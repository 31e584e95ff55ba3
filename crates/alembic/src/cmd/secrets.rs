//! `alembic secrets [--check] [--plane P] [--json]`: every secret name, which plane and workload
//! consume it, where it must be set, and whether it is set now (empty counts as unset, SEC003).
//! Never a value: the inventory holds booleans only.

use alembic_deploy::secrets::{self, Context};

use crate::cli::{Global, PlaneArg};
use crate::exit;

pub fn run(g: &Global, check: bool, plane: Option<PlaneArg>) -> i32 {
    let (_, _, t) = match crate::config::load_topology(g.config.as_deref(), g.json) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let get = |n: &str| std::env::var(n).ok();
    let ctx = Context::from_env(&get);
    let rows = secrets::inventory(&t, ctx, plane, &get);
    if g.json {
        crate::output::print_value(&secrets::to_json(ctx, &rows));
    } else {
        print!("{}", secrets::to_human(ctx, &rows));
    }
    let missing: Vec<&str> = secrets::missing(&rows).map(|r| r.name.as_str()).collect();
    if !g.json {
        for name in &missing {
            eprintln!("error[SEC003]: secret {name} is unset or empty in the environment");
        }
    }
    if check && !missing.is_empty() {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}
