//! Connection to berth-gateway's containerd facade.
//!
//! The gateway pins the namespace itself; the CLI sends none, since any value
//! it sent would be removed (boundary rule 1).

use std::path::PathBuf;

use tonic::transport::{Channel, Endpoint};

use crate::env;
use crate::error::{CliError, Result};

/// A channel to the gateway, shared by every service client of one command.
#[derive(Clone)]
pub struct Gateway {
    pub channel: Channel,
    pub socket: PathBuf,
}

/// Resolves the gateway socket path from `BERTH_CONTAINERD_ADDR`.
pub fn socket_path() -> Result<PathBuf> {
    let addr = std::env::var(env::CONTAINERD_ADDR)
        .unwrap_or_else(|_| env::DEFAULT_CONTAINERD_ADDR.to_string());
    match addr.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(CliError::daemon(format!(
            "invalid {}={addr}: expected unix:///absolute/path",
            env::CONTAINERD_ADDR
        ))),
    }
}

impl Gateway {
    /// Connects to the gateway. Fails with docker's wording when the socket is absent.
    pub async fn connect() -> Result<Self> {
        let socket = socket_path()?;
        let path = socket.clone();
        let endpoint = Endpoint::try_from("http://gateway.invalid")
            .map_err(|e| CliError::daemon(e.to_string()))?;
        let channel = connect_unix(endpoint, path).await.map_err(|_| {
            CliError::daemon(format!(
                "Cannot connect to the berth gateway at unix://{}. Is the gateway running?",
                socket.display()
            ))
        })?;
        Ok(Self { channel, socket })
    }
}

/// Connects `endpoint` over the unix socket `path`: both of the gateway's
/// sockets (containerd facade, BuildKit facade) are reached this way.
pub async fn connect_unix(
    endpoint: Endpoint,
    path: std::path::PathBuf,
) -> std::result::Result<tonic::transport::Channel, tonic::transport::Error> {
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}
