//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]

use crate::client::Gateway;
use crate::error::{CliError, Result};
/// What `run` needs of an image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// Full name as stored in containerd (`docker.io/library/busybox:latest`).
    pub name: String,
    /// Digest of the manifest chosen for this platform.
    pub manifest_digest: String,
    /// Digest of the config ("image ID").
    pub config_digest: String,
    /// The parsed image config.
    pub config: oci_spec::image::ImageConfiguration,
    /// Chain ID of the top layer: the snapshot to prepare a container rootfs from.
    pub chain_id: String,
}
/// Resolves a user-typed reference (or image ID prefix) to an image of the sandbox.
/// A missing image is `Unable to find image ... locally` style error, exit 125.
pub async fn resolve(gw: &Gateway, reference: &str) -> Result<ImageInfo> { Err(CliError::daemon("image::resolve not written yet")) }
/// Resolves `-u name[:group]` against the image's /etc/passwd and /etc/group, read
/// from the image layers through the content store (never a mount). Returns
/// (uid, gid, additional gids).
pub async fn resolve_user(gw: &Gateway, image: &ImageInfo, user: &str) -> Result<(u32, u32, Vec<u32>)> { Err(CliError::daemon("image::resolve_user not written yet")) }
/// docker-shaped `inspect` JSON of an image.
pub async fn inspect_json(gw: &Gateway, reference: &str) -> Result<serde_json::Value> { Err(CliError::daemon("image::inspect_json not written yet")) }
