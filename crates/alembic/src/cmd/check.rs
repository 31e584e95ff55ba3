use crate::cli::{DiagFormat, Global};
pub fn run(_g: &Global, _f: DiagFormat) -> i32 {
    super::unavailable("check")
}
