//! PLACEHOLDER interface, owned by the policy helper: the versioned,
//! documented input document the Rego policies see.
#![allow(dead_code)]

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PolicyInput {
    /// Schema version of this document.
    pub version: u32,
    /// e.g. "containers.create", "tasks.exec", "namespaces.create".
    pub method: String,
    pub sandbox: serde_json::Value,
    pub request: serde_json::Value,
}
