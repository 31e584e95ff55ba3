use crate::cli::{Global, PlaneArg};
use std::path::Path;
pub fn run(_g: &Global, _f: Option<&Path>, _p: Option<PlaneArg>, _yes: bool, _r: bool) -> i32 {
    super::unavailable("apply")
}
