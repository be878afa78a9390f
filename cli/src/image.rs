//! The sandbox's images: resolving what a user typed to an image, reading
//! its index, manifest and config, resolving `--user`, and docker's image
//! inspect JSON.
//!
//! Everything is read through the gateway's Images.Get/List and
//! Content.Read; nothing is mounted or unpacked by the CLI.

pub(crate) mod archive;
mod inspect;
mod layers;
mod manifest;
pub(crate) mod store;
mod user;

use std::collections::HashMap;
use std::io::{self, Read};

use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use oci_spec::image::ImageConfiguration;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tonic::Code;

use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::refs::{RefError, Reference};

pub(crate) use manifest::host_platform;
use manifest::Manifest;

/// The snapshotter the gateway unpacks layers with (the gateway fixes it;
/// the same value as the containers module's).
const SNAPSHOTTER: &str = "overlayfs";
/// The largest index, manifest or config berth reads.
const MAX_DOCUMENT: usize = 4 << 20;
/// How deep an index may nest indexes.
const MAX_INDEX_DEPTH: usize = 4;
/// Name prefix docker's containerd store gives images whose tag moved away.
const DANGLING_PREFIX: &str = "moby-dangling@";

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

/// Why an image could not be found or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// docker's wording; the reference as docker prints it (`busybox:latest`).
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    #[error("{0}")]
    Reference(#[from] RefError),
    /// The gateway refused or failed; its message is worded for users.
    #[error("{0}")]
    Gateway(String),
    #[error("image {image}: {reason}")]
    Broken { image: String, reason: String },
}

impl From<tonic::Status> for ImageError {
    fn from(s: tonic::Status) -> Self {
        ImageError::Gateway(CliError::from_status(&s).message)
    }
}

impl From<ImageError> for CliError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotFound(_) | ImageError::Ambiguous(_) => {
                CliError::general(format!("Error response from daemon: {e}"))
            }
            other => CliError::daemon(other.to_string()),
        }
    }
}

/// An image record with its platform manifest and config read.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub record: api::Image,
    pub manifest_digest: String,
    pub manifest: Manifest,
    pub config_digest: String,
    /// The config as stored, for the docker-only fields the OCI type drops.
    pub raw_config: Value,
    pub config: ImageConfiguration,
    /// Chain IDs of the layers, bottom first.
    pub chain_ids: Vec<String>,
}

impl Resolved {
    pub fn info(&self) -> ImageInfo {
        ImageInfo {
            name: self.record.name.clone(),
            manifest_digest: self.manifest_digest.clone(),
            config_digest: self.config_digest.clone(),
            config: self.config.clone(),
            chain_id: self.chain_ids.last().cloned().unwrap_or_default(),
        }
    }

    /// The digest the record points to (an index or a manifest).
    pub fn target_digest(&self) -> &str {
        self.record
            .target
            .as_ref()
            .map_or("", |t| t.digest.as_str())
    }
}

/// The reference a stored image name stands for, or `None` for a name
/// docker would show as `<none>` (a dangling or unparseable one).
pub(crate) fn parse_name(name: &str) -> Option<Reference> {
    if name.starts_with(DANGLING_PREFIX) || (!name.contains('/') && name.starts_with("sha256:")) {
        return None;
    }
    Reference::parse_normalized(name).ok()
}

/// Resolves a reference (or image ID prefix) to an image of the sandbox,
/// without pulling (`run` and `create` pull first, `commands::pull`). A
/// missing image is docker's `No such image: …`, exit 125.
pub async fn resolve(gw: &Gateway, reference: &str) -> Result<ImageInfo> {
    match lookup(gw, reference).await {
        Ok(r) => Ok(r.info()),
        Err(ImageError::NotFound(shown)) => {
            Err(CliError::daemon(format!("No such image: {shown}")))
        }
        Err(e) => Err(CliError::daemon(e.to_string())),
    }
}

/// Resolves `-u name[:group]` against the image's /etc/passwd and /etc/group, read
/// from the image layers through the content store (never a mount). Returns
/// (uid, gid, additional gids).
///
/// Failures are exit 125, as docker's: it resolves the user when starting
/// the container and `docker run` maps such start errors to 125 (only
/// "not found" and "permission denied" errors become 127 and 126).
pub async fn resolve_user(
    gw: &Gateway,
    image: &ImageInfo,
    user: &str,
) -> Result<(u32, u32, Vec<u32>)> {
    // `uid:gid`, both numeric, needs no files: runc keeps both numbers.
    if let Some((u, g)) = user.split_once(':') {
        if let (Ok(uid), Ok(gid)) = (u.parse::<u32>(), g.parse::<u32>()) {
            if uid as i64 <= 2_147_483_647 && gid as i64 <= 2_147_483_647 {
                return Ok((uid, gid, Vec::new()));
            }
        }
    }
    let doc = read_blob(gw, &image.manifest_digest, None)
        .await
        .map_err(CliError::from)?;
    let m: Manifest = serde_json::from_slice(&doc).map_err(|e| {
        CliError::daemon(format!(
            "image {}: invalid manifest {}: {e}",
            image.name, image.manifest_digest
        ))
    })?;
    let files = read_layer_files(gw, &m.layers, &["/etc/passwd", "/etc/group"])
        .await
        .map_err(|e| {
            CliError::daemon(format!("reading /etc/passwd of image {}: {e}", image.name))
        })?;
    let u = user::exec_user(user, files[0].as_deref(), files[1].as_deref())
        .map_err(|e| CliError::daemon(e.to_string()))?;
    Ok((u.uid, u.gid, u.sgids))
}

/// docker-shaped `inspect` JSON of an image; "not found" stays distinguishable.
pub(crate) async fn inspect_value(gw: &Gateway, reference: &str) -> Result<Value, ImageError> {
    let found = lookup(gw, reference).await?;
    let all = list(gw).await?;
    // Every name of the same image ID, with the digest it points to.
    let names: Vec<(String, String)> = all
        .iter()
        .filter_map(|(rec, r)| {
            let r = r
                .as_ref()
                .ok()
                .filter(|r| r.config_digest == found.config_digest)?;
            Some((rec.name.clone(), r.target_digest().to_string()))
        })
        .collect();
    let size = size(gw, &found).await;
    Ok(inspect::build(&found, &names, size))
}

/// Finds an image as docker does: a full image ID; a name (normalised, with
/// `:latest` added); `name@digest` (by the digest the record points to);
/// else a unique prefix of an image ID.
pub(crate) async fn lookup(gw: &Gateway, reference: &str) -> Result<Resolved, ImageError> {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex && hex.len() == 64 {
        return by_id_prefix(gw, hex, reference).await;
    }
    let parsed = Reference::parse_normalized(reference)?.with_default_tag();
    let shown = parsed.familiar_string();
    if let Some(digest) = &parsed.digest {
        if let Some(rec) = get_record(gw, &parsed.to_string()).await? {
            return describe(gw, rec, &mut HashMap::new()).await;
        }
        // Any record of the same repository pointing at that digest.
        let records = list_records(gw).await?;
        let rec = records.into_iter().find(|r| {
            parse_name(&r.name).is_some_and(|n| n.name() == parsed.name())
                && r.target.as_ref().is_some_and(|t| &t.digest == digest)
        });
        return match rec {
            Some(rec) => describe(gw, rec, &mut HashMap::new()).await,
            None => Err(ImageError::NotFound(shown)),
        };
    }
    if let Some(rec) = get_record(gw, &parsed.to_string()).await? {
        return describe(gw, rec, &mut HashMap::new()).await;
    }
    if is_hex {
        return match by_id_prefix(gw, hex, reference).await {
            Err(ImageError::NotFound(_)) => Err(ImageError::NotFound(shown)),
            other => other,
        };
    }
    Err(ImageError::NotFound(shown))
}

async fn by_id_prefix(gw: &Gateway, hex: &str, reference: &str) -> Result<Resolved, ImageError> {
    let want = format!("sha256:{hex}");
    let mut found: Option<Resolved> = None;
    for (_, r) in list(gw).await? {
        let Ok(r) = r else { continue };
        if !r.config_digest.starts_with(&want) {
            continue;
        }
        match &found {
            Some(f) if f.config_digest != r.config_digest => {
                return Err(ImageError::Ambiguous(reference.to_string()));
            }
            Some(_) => {}
            None => found = Some(r),
        }
    }
    found.ok_or_else(|| ImageError::NotFound(reference.to_string()))
}

async fn get_record(gw: &Gateway, name: &str) -> Result<Option<api::Image>, ImageError> {
    let mut c = ImagesClient::new(gw.channel.clone());
    match c
        .get(api::GetImageRequest {
            name: name.to_string(),
        })
        .await
    {
        Ok(r) => Ok(r.into_inner().image),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(s.into()),
    }
}

pub(crate) async fn list_records(gw: &Gateway) -> Result<Vec<api::Image>, ImageError> {
    let mut c = ImagesClient::new(gw.channel.clone());
    Ok(c.list(api::ListImagesRequest {
        filters: Vec::new(),
    })
    .await?
    .into_inner()
    .images)
}

/// Every image record with what could be read of it (an image whose
/// content is broken keeps its error).
pub(crate) async fn list(
    gw: &Gateway,
) -> Result<Vec<(api::Image, Result<Resolved, ImageError>)>, ImageError> {
    let mut cache = HashMap::new();
    let mut out = Vec::new();
    for rec in list_records(gw).await? {
        let r = describe(gw, rec.clone(), &mut cache).await;
        out.push((rec, r));
    }
    Ok(out)
}

/// Reads a record's target down to the platform manifest and its config.
/// `cache` maps target digests already read (images sharing a target).
async fn describe(
    gw: &Gateway,
    record: api::Image,
    cache: &mut HashMap<String, Resolved>,
) -> Result<Resolved, ImageError> {
    let broken = |reason: String| ImageError::Broken {
        image: record.name.clone(),
        reason,
    };
    let Some(target) = record.target.clone() else {
        return Err(broken("the record has no target".into()));
    };
    if let Some(r) = cache.get(&target.digest) {
        return Ok(Resolved {
            record,
            ..r.clone()
        });
    }
    let want = manifest::host_platform();
    let (mut media_type, mut digest) = (target.media_type.clone(), target.digest.clone());
    let mut blob = read_blob(gw, &digest, Some(target.size)).await?;
    let mut depth = 0;
    let m: Manifest = loop {
        match manifest::kind(&media_type, &blob) {
            Some(manifest::Kind::Index) if depth < MAX_INDEX_DEPTH => {
                depth += 1;
                let index: manifest::Index = serde_json::from_slice(&blob)
                    .map_err(|e| broken(format!("invalid index {digest}: {e}")))?;
                let Some(d) = manifest::choose(&index, &want) else {
                    return Err(broken(format!(
                        "no matching manifest for {}/{} in the manifest list entries",
                        want.os, want.architecture
                    )));
                };
                media_type = d.media_type.clone();
                digest = d.digest.clone();
                blob = read_blob(gw, &digest, Some(d.size)).await?;
            }
            Some(manifest::Kind::Manifest) => {
                break serde_json::from_slice(&blob)
                    .map_err(|e| broken(format!("invalid manifest {digest}: {e}")))?;
            }
            _ => {
                return Err(broken(format!(
                    "unsupported media type {media_type:?} of {digest}"
                )))
            }
        }
    };
    let config_blob = read_blob(gw, &m.config.digest, Some(m.config.size)).await?;
    let raw_config: Value = serde_json::from_slice(&config_blob)
        .map_err(|e| broken(format!("invalid config {}: {e}", m.config.digest)))?;
    let config = ImageConfiguration::from_reader(&config_blob[..])
        .map_err(|e| broken(format!("invalid config {}: {e}", m.config.digest)))?;
    let chain_ids = manifest::chain_ids(config.rootfs().diff_ids());
    let r = Resolved {
        record,
        manifest_digest: digest,
        config_digest: m.config.digest.clone(),
        manifest: m,
        raw_config,
        config,
        chain_ids,
    };
    cache.insert(target.digest, r.clone());
    Ok(r)
}

/// Reads a small blob (index, manifest, config) whole and checks its digest.
async fn read_blob(gw: &Gateway, digest: &str, size: Option<i64>) -> Result<Vec<u8>, ImageError> {
    let broken = |reason: String| ImageError::Broken {
        image: digest.to_string(),
        reason,
    };
    if size.is_some_and(|s| s < 0 || s as usize > MAX_DOCUMENT) {
        return Err(broken(format!("document larger than {MAX_DOCUMENT} bytes")));
    }
    let mut c = ContentClient::new(gw.channel.clone());
    let req = api::ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let mut stream = match c.read(req).await {
        Ok(s) => s.into_inner(),
        Err(s) if s.code() == Code::NotFound => {
            return Err(broken("content not found in the sandbox".into()))
        }
        Err(s) => return Err(s.into()),
    };
    let mut data = Vec::new();
    while let Some(msg) = stream.message().await? {
        data.extend_from_slice(&msg.data);
        if data.len() > MAX_DOCUMENT {
            return Err(broken(format!("document larger than {MAX_DOCUMENT} bytes")));
        }
    }
    if let Some(hex) = digest.strip_prefix("sha256:") {
        if hex::encode(Sha256::digest(&data)) != hex {
            return Err(broken("content does not match its digest".into()));
        }
    }
    Ok(data)
}

/// A blocking reader over a content stream, for the tar scanner.
struct ContentReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ContentReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams a layer blob from the gateway into a [`ContentReader`]; dropping
/// the reader cancels the stream.
fn open_layer(gw: &Gateway, handle: &tokio::runtime::Handle, digest: String) -> ContentReader {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let channel = gw.channel.clone();
    handle.spawn(async move {
        let mut c = ContentClient::new(channel);
        let req = api::ReadContentRequest {
            digest: digest.clone(),
            offset: 0,
            size: 0,
        };
        let mut stream = match c.read(req).await {
            Ok(s) => s.into_inner(),
            Err(s) => {
                let _ = tx
                    .send(Err(io::Error::other(format!(
                        "layer {digest}: {}",
                        CliError::from_status(&s)
                    ))))
                    .await;
                return;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    if tx.send(Ok(m.data)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(s) => {
                    let _ = tx
                        .send(Err(io::Error::other(format!(
                            "layer {digest}: {}",
                            CliError::from_status(&s)
                        ))))
                        .await;
                    return;
                }
            }
        }
    });
    ContentReader {
        rx,
        buf: Vec::new(),
        pos: 0,
    }
}

/// Reads files from the merged layers (top layer first), without mounting.
async fn read_layer_files(
    gw: &Gateway,
    layers: &[manifest::Descriptor],
    paths: &[&str],
) -> io::Result<Vec<Option<Vec<u8>>>> {
    let gw = gw.clone();
    let digests: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut open = |i: usize| -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(open_layer(&gw, &handle, digests[i].clone())))
        };
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        layers::find_files(digests.len(), &mut open, &refs)
    })
    .await
    .map_err(io::Error::other)?
}

/// The image's size as docker reports it: the unpacked size (the usage of
/// each layer's snapshot), or the compressed layer sizes when the gateway
/// cannot tell (layers not unpacked).
pub(crate) async fn size(gw: &Gateway, r: &Resolved) -> i64 {
    let mut c = SnapshotsClient::new(gw.channel.clone());
    let mut total = 0i64;
    for key in &r.chain_ids {
        let req = api::snapshots::UsageRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: key.clone(),
        };
        match c.usage(req).await {
            Ok(u) => total += u.into_inner().size,
            Err(_) => return r.manifest.layers.iter().map(|l| l.size.max(0)).sum(),
        }
    }
    total
}
