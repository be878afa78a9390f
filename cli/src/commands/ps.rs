//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
pub async fn ps(gw: &crate::client::Gateway, a: crate::cli::PsArgs) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("ps not written yet")) }
