use crate::cli::Global;
pub fn run(_g: &Global, _online: bool) -> i32 {
    super::unavailable("doctor")
}
