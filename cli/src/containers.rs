//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]

/// docker-shaped `inspect` JSON of a container, by name, ID or unique ID prefix.
pub async fn inspect_json(gw: &crate::client::Gateway, name: &str) -> crate::error::Result<serde_json::Value> { Err(crate::error::CliError::daemon("containers::inspect_json not written yet")) }
