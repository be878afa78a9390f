//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
pub async fn logs(gw: &crate::client::Gateway, a: crate::cli::LogsArgs) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("logs not written yet")) }
