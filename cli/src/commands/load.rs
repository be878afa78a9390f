//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
pub async fn load(gw: &crate::client::Gateway, a: crate::cli::LoadArgs) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("load not written yet")) }
