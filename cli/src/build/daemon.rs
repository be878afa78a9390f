//! The connection to the gateway's BuildKit facade (`BERTH_BUILDKIT_ADDR`).

use std::path::PathBuf;

use berth_proto::buildkit::control::control_client::ControlClient;
use tonic::transport::{Channel, Endpoint};

use crate::env;
use crate::error::{CliError, Result};

/// Status updates and logs of a big build can be large; BuildKit itself
/// allows 16 MiB messages on its control socket.
const MAX_MESSAGE: usize = 64 << 20;
/// HTTP/2 windows towards the gateway. The session tunnel brings BuildKit's
/// requests for context files as many small messages; the HTTP/2
/// implementation closes a connection on which more small DATA frames wait
/// than half the connection window allows, and a 64 KiB stream window
/// would also cap the tunnel at one window per round trip.
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;

pub fn socket_path() -> Result<PathBuf> {
    let addr = std::env::var(env::BUILDKIT_ADDR)
        .unwrap_or_else(|_| env::DEFAULT_BUILDKIT_ADDR.to_string());
    match addr.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(CliError::daemon(format!(
            "invalid {}={addr}: expected unix:///absolute/path",
            env::BUILDKIT_ADDR
        ))),
    }
}

/// Connects to the facade; docker's wording when it is not there (exit 125:
/// the build never started).
pub async fn connect() -> Result<ControlClient<Channel>> {
    let socket = socket_path()?;
    let path = socket.clone();
    let endpoint = Endpoint::try_from("http://buildkit.invalid")
        .map_err(|e| CliError::daemon(e.to_string()))?
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let channel = crate::client::connect_unix(endpoint, path)
        .await
        .map_err(|_| {
            CliError::daemon(format!(
                "Cannot connect to the berth gateway's BuildKit at unix://{}. Is the gateway running?",
                socket.display()
            ))
        })?;
    Ok(ControlClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}
