//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]

/// A normalized image reference: `docker.io/library/busybox:latest`.
pub fn normalize(reference: &str) -> crate::error::Result<String> { Err(crate::error::CliError::daemon("refs::normalize not written yet")) }
/// The short, docker-style display form (`busybox`, `localhost:5000/app`), and the tag.
pub fn familiar(full: &str) -> (String, String) { (full.to_string(), String::new()) }
