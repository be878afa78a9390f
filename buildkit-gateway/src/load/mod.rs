//! PLACEHOLDER interface, owned by the image-load helper.
#![allow(dead_code, unused_variables)]

use std::path::Path;

use berth_proto::berth::v1::LoadedImage;

use crate::sandbox::Sandbox;
use crate::upstream::Upstream;

/// Why a load failed; worded for the user, one line.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The archive is malformed, truncated, unsafe or inconsistent (InvalidArgument).
    #[error("{0}")]
    Invalid(String),
    /// containerd refused or failed (its status is passed on).
    #[error("{0}")]
    Upstream(#[from] tonic::Status),
    /// Local I/O failure in the gateway (Internal).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Imports the archive spooled at `path` (OCI layout or `docker save`, plain
/// or gzip) into the sandbox's namespace: blobs under a lease, layers
/// unpacked by the gateway, image records created last. On error nothing is
/// left behind. Progress lines go to `progress`.
pub async fn import_archive(
    up: &Upstream,
    sb: &Sandbox,
    path: &Path,
    progress: &tokio::sync::mpsc::Sender<String>,
) -> Result<Vec<LoadedImage>, LoadError> {
    Err(LoadError::Invalid("image load not written yet".into()))
}
