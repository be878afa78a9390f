//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
pub async fn exec(gw: &crate::client::Gateway, a: crate::cli::ExecArgs) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("exec not written yet")) }
