use crate::cli::{Global, PlaneArg};
use std::path::Path;
pub fn run(_g: &Global, _p: Option<PlaneArg>, _d: bool, _out: Option<&Path>) -> i32 {
    super::unavailable("plan")
}
