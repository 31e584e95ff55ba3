use crate::cli::{Global, PlaneArg};
pub fn run(_g: &Global, _p: PlaneArg, _to: Option<u64>, _yes: bool) -> i32 {
    super::unavailable("rollback")
}
