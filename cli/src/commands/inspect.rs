//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind { Container, Image }
pub async fn inspect(gw: &crate::client::Gateway, a: crate::cli::InspectArgs, kind: Option<Kind>) -> crate::error::Result<i32> { Err(crate::error::CliError::daemon("inspect not written yet")) }
