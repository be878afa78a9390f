//! berth-gateway: the only thing between a sandbox and its daemons.
//!
//! It serves the sandbox a containerd facade (and later a BuildKit facade),
//! decides every request with Rego policy, hardens what it forwards and
//! refuses everything else. See `architecture/README.md`.

pub mod admission;
pub mod buildkit;
pub mod config;
pub mod events;
pub mod load;
pub mod policy;
pub mod quota;
pub mod sandbox;
pub mod upstream;
pub mod userns;
