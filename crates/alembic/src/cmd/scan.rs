use crate::cli::{DiagFormat, Global};
use std::path::PathBuf;
pub fn run(_g: &Global, _p: &[PathBuf], _f: DiagFormat) -> i32 {
    super::unavailable("scan")
}
