//! berth's OCI distribution client: registries reached through the
//! sandbox's proxy (HTTP CONNECT, then TLS), Bearer and Basic auth with
//! docker's config.json credentials, manifests and indexes with platform
//! selection, every manifest and blob verified against its digest.
//!
//! Nothing here writes into the sandbox: a pull hands an OCI layout to the
//! gateway's `Images/Load`, a push reads content through the gateway.

pub mod challenge;
pub mod client;
pub mod config;
pub mod digest;
pub mod endpoint;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod proxy;
pub mod pull;
pub mod push;
pub mod scratch;
pub mod tls;
pub mod transport;

#[cfg(test)]
mod fake_test;
