//! PLACEHOLDER interface, owned by the policy helper: regorus engine loading
//! `policies/` once at start-up, cloned per decision.
#![allow(dead_code, unused_variables)]

use std::path::Path;

pub mod input;

pub use input::PolicyInput;

/// The outcome of one policy evaluation. Error, undefined or non-boolean
/// results are a deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// Why, in user-facing words (empty when allowed).
    pub reasons: Vec<String>,
}

pub struct PolicyEngine {}

impl PolicyEngine {
    /// Loads every `.rego` file and `data.json` from `dir`; fails on a parse error.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        anyhow::bail!("policy engine not written yet")
    }

    pub fn decide(&self, input: &PolicyInput) -> Decision {
        Decision { allow: false, reasons: vec!["policy engine not written yet".into()] }
    }
}
