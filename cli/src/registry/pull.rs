//! A pull: resolve the reference at the registry (index → this platform's
//! manifest), ask the sandbox which layers it already has, download the
//! rest concurrently with their digests verified, then hand one OCI layout
//! to the gateway's `Images/Load`. The import is all-or-nothing on the
//! gateway's side, so an interrupted or failed pull leaves no image.

use std::io::Write as _;
use std::sync::Arc;

use berth_proto::berth::v1::images_client::ImagesClient as LoadClient;
use berth_proto::berth::v1::{load_response, CheckImageRequest, LoadRequest};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::client::{Access, Client};
use super::config::ConfigFile;
use super::digest::{Digest, Verifier};
use super::endpoint::Repository;
use super::error::RegistryError;
use super::layout::{BlobSource, ChunkWriter, Layout};
use super::manifest::{self, Kind, Platform};
use super::progress::Progress;
use super::proxy::ProxyConfig;
use super::scratch::Scratch;
use super::transport;
use crate::client::Gateway;
use crate::refs::Reference;

/// docker's default `max-concurrent-downloads`.
const CONCURRENT_DOWNLOADS: usize = 3;
/// Size of the pieces the layout is streamed to the gateway in.
const LOAD_CHUNK: usize = 1 << 20;

/// Why a pull failed, worded for the user (without docker's
/// `Error response from daemon:` prefix, which the command adds).
#[derive(Debug)]
pub struct PullError(pub String);

impl From<RegistryError> for PullError {
    fn from(e: RegistryError) -> Self {
        Self(e.to_string())
    }
}

impl From<std::io::Error> for PullError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<tonic::Status> for PullError {
    fn from(s: tonic::Status) -> Self {
        Self(crate::error::CliError::from_status(&s).message)
    }
}

/// Pulls `reference` (normalised, with a tag or digest) for `platform`.
pub async fn pull(
    gw: &Gateway,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<(), PullError> {
    // A refused name fails before anything crosses the network.
    check(
        gw,
        "pull",
        &reference.to_string(),
        reference.digest.as_deref().unwrap_or(""),
    )
    .await?;
    let repo = Repository::of(reference);
    let creds = ConfigFile::load()
        .ok()
        .and_then(|c| c.credentials(&repo.registry));
    let http = transport::client(ProxyConfig::from_env().map_err(PullError)?);
    let client = Client::open(http, repo.clone(), Access::Pull, creds, &[]).await?;

    let tag_or_digest = reference
        .digest
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| crate::refs::DEFAULT_TAG.to_string());
    progress.message(&format!("{tag_or_digest}: Pulling from {}", repo.path));
    let full_name = reference.to_string();
    let root = client.manifest(&tag_or_digest, &full_name).await?;

    let platform_manifest = match root.kind {
        Kind::Manifest => root.clone(),
        Kind::Index => {
            let index: manifest::Index = serde_json::from_slice(&root.bytes)
                .map_err(|e| PullError(format!("invalid index {}: {e}", root.digest)))?;
            let chosen = manifest::choose(&index, platform).ok_or_else(|| {
                PullError(format!(
                    "no matching manifest for {} in the manifest list entries",
                    platform.display()
                ))
            })?;
            let m = client.manifest(&chosen.digest, &full_name).await?;
            if m.kind != Kind::Manifest {
                return Err(PullError(format!(
                    "{}: a manifest list entry is not an image manifest",
                    chosen.digest
                )));
            }
            m
        }
    };
    let m: manifest::Manifest = serde_json::from_slice(&platform_manifest.bytes).map_err(|e| {
        PullError(format!(
            "invalid manifest {}: {e}",
            platform_manifest.digest
        ))
    })?;

    let shown = reference.familiar_string();
    if local_target(gw, &full_name).await.as_deref() == Some(root.digest.as_str()) {
        progress.message(&format!("Digest: {}", root.digest));
        progress.message(&format!("Status: Image is up to date for {shown}"));
        return Ok(());
    }

    let config_digest = Digest::parse(&m.config.digest).map_err(PullError)?;
    let config = client.blob_bytes(&config_digest, m.config.size).await?;

    // Layers: in the sandbox already, or to download (each digest once).
    let mut layers: Vec<(Digest, u64)> = Vec::new();
    for l in &m.layers {
        let d = Digest::parse(&l.digest).map_err(PullError)?;
        if !layers.iter().any(|(x, _)| *x == d) {
            layers.push((d, l.size));
        }
    }
    let mut missing = Vec::new();
    for (d, size) in &layers {
        if in_sandbox(gw, d).await {
            progress.layer(d.short(), "Already exists");
        } else {
            progress.layer(d.short(), "Pulling fs layer");
            missing.push((d.clone(), *size));
        }
    }
    for (d, _) in missing.iter().skip(CONCURRENT_DOWNLOADS) {
        progress.layer(d.short(), "Waiting");
    }

    let scratch = Scratch::create("pull")?;
    let client = Arc::new(client);
    let results: Vec<Result<(), PullError>> = futures::stream::iter(missing.iter().cloned())
        .map(|(d, size)| {
            let client = client.clone();
            let path = scratch.path().join(d.hex());
            async move { download(&client, &d, size, &path, progress).await }
        })
        .buffer_unordered(CONCURRENT_DOWNLOADS)
        .collect()
        .await;
    for r in results {
        r?;
    }

    let mut blobs = vec![(
        root.digest.clone(),
        root.bytes.len() as u64,
        BlobSource::Bytes(root.bytes.clone()),
    )];
    if root.kind == Kind::Index {
        blobs.push((
            platform_manifest.digest.clone(),
            platform_manifest.bytes.len() as u64,
            BlobSource::Bytes(platform_manifest.bytes.clone()),
        ));
    }
    blobs.push((
        config_digest,
        config.len() as u64,
        BlobSource::Bytes(config),
    ));
    for (d, size) in &missing {
        blobs.push((
            d.clone(),
            *size,
            BlobSource::File(scratch.path().join(d.hex())),
        ));
    }
    let layout = Layout {
        root_media_type: root.media_type.clone(),
        root_digest: root.digest.clone(),
        root_size: root.bytes.len() as u64,
        name: full_name.clone(),
        tag: reference.tag.clone().filter(|_| reference.digest.is_none()),
        blobs,
    };
    load(gw, layout).await?;
    drop(scratch);

    for (d, _) in &missing {
        progress.layer(d.short(), "Pull complete");
    }
    progress.finish();
    progress.message(&format!("Digest: {}", root.digest));
    progress.message(&format!("Status: Downloaded newer image for {shown}"));
    Ok(())
}

/// Asks the gateway whether its image policy allows `action` on `name`
/// (advisory: the gateway decides again when the image enters the
/// sandbox; the proxy decides what crosses the network).
pub async fn check(gw: &Gateway, action: &str, name: &str, digest: &str) -> Result<(), PullError> {
    let mut c = LoadClient::new(gw.channel.clone());
    c.check(CheckImageRequest {
        action: action.to_string(),
        name: name.to_string(),
        digest: digest.to_string(),
    })
    .await?;
    Ok(())
}

/// Downloads one layer to `path`, verifying size and digest as it streams.
async fn download(
    client: &Client,
    digest: &Digest,
    size: u64,
    path: &std::path::Path,
    progress: &dyn Progress,
) -> Result<(), PullError> {
    let id = digest.short();
    let resp = client.blob(digest).await?;
    let mut file = tokio::fs::File::create(path).await?;
    let mut verifier = Verifier::new(digest, Some(size));
    let mut body = resp.into_body();
    progress.bytes(id, "Downloading", 0, size);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| PullError(format!("downloading {digest}: {e}")))?;
        if let Ok(data) = frame.into_data() {
            verifier
                .update(&data)
                .map_err(|e| PullError(format!("filesystem layer verification failed: {e}")))?;
            file.write_all(&data).await?;
            progress.bytes(id, "Downloading", verifier.seen(), size);
        }
    }
    file.flush().await?;
    progress.layer(id, "Verifying Checksum");
    verifier.finish().map_err(|e| {
        PullError(format!(
            "filesystem layer verification failed for digest {digest}: {e}"
        ))
    })?;
    progress.layer(id, "Download complete");
    Ok(())
}

/// The digest the sandbox's image `name` points to, if it has one.
pub async fn local_target(gw: &Gateway, name: &str) -> Option<String> {
    let mut c = ImagesClient::new(gw.channel.clone());
    let r = c
        .get(api::GetImageRequest {
            name: name.to_string(),
        })
        .await
        .ok()?;
    r.into_inner().image?.target.map(|t| t.digest)
}

/// Whether the sandbox's content store holds `digest` (docker's
/// `Already exists`); the gateway's loader takes such layers from there.
async fn in_sandbox(gw: &Gateway, digest: &Digest) -> bool {
    let mut c = ContentClient::new(gw.channel.clone());
    match c
        .info(api::InfoRequest {
            digest: digest.to_string(),
        })
        .await
    {
        Ok(_) => true,
        Err(s) if s.code() == Code::NotFound => false,
        Err(_) => false,
    }
}

/// Streams the layout to `Images/Load` and waits for the import.
async fn load(gw: &Gateway, layout: Layout) -> Result<(), PullError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut w = layout.write_tar(ChunkWriter::new(tx, LOAD_CHUNK))?;
        w.flush()
    });
    let requests = ReceiverStream::new(rx).map(|chunk| LoadRequest { chunk });
    let mut client = LoadClient::new(gw.channel.clone());
    let mut stream = client.load(requests).await?.into_inner();
    let mut loaded = false;
    while let Some(msg) = stream.message().await? {
        if let Some(load_response::Payload::Loaded(_)) = msg.payload {
            loaded = true;
        }
    }
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(PullError(format!("sending the image to the gateway: {e}"))),
        Err(e) => return Err(PullError(format!("sending the image to the gateway: {e}"))),
    }
    if !loaded {
        return Err(PullError("the gateway imported no image".into()));
    }
    Ok(())
}
