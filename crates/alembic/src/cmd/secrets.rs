use crate::cli::{Global, PlaneArg};
pub fn run(_g: &Global, _c: bool, _p: Option<PlaneArg>) -> i32 {
    super::unavailable("secrets")
}
