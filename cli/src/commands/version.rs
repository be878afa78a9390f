//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
pub fn short_version() -> String { String::new() }
pub async fn version(gw: &crate::client::Gateway, a: crate::cli::FormatArgs) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("version not written yet")) }
