//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]

/// Renders a Go text/template subset (`{{.Field.Sub}}`, `{{json .}}`, `table`) over a JSON value.
pub fn render(template: &str, value: &serde_json::Value) -> crate::error::Result<String> { Err(crate::error::CliError::daemon("format::render not written yet")) }
