//! The gRPC services of the gateway: one module per containerd service the
//! facade serves (`proto/build.rs` lists their methods), and berth's own
//! `berth.v1` services.
//!
//! Every handler reads the caller's credentials, decides (an admission
//! function, or `admission::generic` with the method's rule name, e.g.
//! `tasks.kill`), logs the decision, and only then acts. Every upstream call
//! is built by `Upstream::request`: nothing of the client's metadata is ever
//! forwarded (boundary rule 1).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Response, Status};

use crate::error::{GatewayError, Result};

pub mod attach;
pub mod containers;
pub mod content;
pub mod events;
pub mod images;
pub mod leases;
pub mod load;
pub mod logs;
pub mod namespaces;
pub mod snapshots;
pub mod tasks;
pub mod version;

/// A served method: its full gRPC path (for the audit line) and the rule
/// name the policy sees.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub path: &'static str,
    pub rule: &'static str,
}

macro_rules! method {
    ($service:literal, $route:literal, $rule:literal) => {
        $crate::services::Method {
            path: concat!("/", $service, "/", $route),
            rule: $rule,
        }
    };
}
pub(crate) use method;

pub type Reply<T> = std::result::Result<Response<T>, Status>;

pub type BoxStream<T> =
    Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send + 'static>>;

pub fn reply<T>(r: Result<T>) -> Reply<T> {
    r.map(Response::new).map_err(Status::from)
}

/// containerd's response stream, each error passed through `error.rs`.
pub fn relay_stream<T: Send + 'static>(s: tonic::Streaming<T>) -> BoxStream<T> {
    Box::pin(s.map(|item| item.map_err(|e| Status::from(GatewayError::Upstream(e)))))
}

/// `container` or `container/exec` for the audit line.
pub fn process_object(container: &str, exec: &str) -> String {
    if exec.is_empty() {
        container.to_string()
    } else {
        format!("{container}/{exec}")
    }
}
