//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
pub async fn info(gw: &crate::client::Gateway, a: crate::cli::FormatArgs) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("info not written yet")) }
