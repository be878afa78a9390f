//! `docker build` through the gateway's BuildKit facade.
//!
//! The CLI is BuildKit's client: it opens a session (an HTTP/2 connection
//! tunnelled through `Control.Session`, on which the CLI is the server and
//! BuildKit the client), serves the build context, the Dockerfile, secrets,
//! SSH agents, exporter output and the sandbox's images as named contexts on
//! it, asks for a `Solve` with the Dockerfile frontend and shows the
//! `Status` stream. The built image is streamed into the sandbox's
//! containerd through the gateway's image import.

pub mod context;
pub mod daemon;
pub mod dockerfile;
pub mod early;
pub mod failure;
pub mod flags;
pub mod import;
pub mod named;
pub mod options;
pub mod progress;
pub mod session;
pub mod solve;
pub mod sources;
pub mod store;
