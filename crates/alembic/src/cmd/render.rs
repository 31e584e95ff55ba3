use crate::cli::Global;
use std::path::Path;
pub fn run(_g: &Global, _out: Option<&Path>, _check: bool) -> i32 {
    super::unavailable("render")
}
