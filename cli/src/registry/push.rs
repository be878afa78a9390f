//! A push: the image's platform manifest, config and layers are read from
//! the sandbox through the gateway (`Content.Read`) and uploaded: each blob
//! HEADed first (`Layer already exists`), mounted from another repository
//! of the same registry when a sandbox image from there has it, else
//! uploaded whole (POST, then PUT with the digest); the manifest last.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use tokio_stream::wrappers::ReceiverStream;

use super::client::{Access, Client, Mount};
use super::config::ConfigFile;
use super::digest::Digest;
use super::endpoint::Repository;
use super::manifest::{self, Kind};
use super::progress::Progress;
use super::proxy::ProxyConfig;
use super::pull::PullError;
use super::transport::{self, Body};
use crate::client::Gateway;
use crate::refs::Reference;

/// docker's default `max-concurrent-uploads`.
const CONCURRENT_UPLOADS: usize = 5;

/// What is pushed: read from the sandbox by the caller.
pub struct Local {
    pub manifest_digest: Digest,
    pub manifest: Vec<u8>,
    pub config: (Digest, u64),
    /// Bottom first.
    pub layers: Vec<(Digest, u64)>,
    /// Other repositories (paths) of the same registry each blob may be
    /// mounted from.
    pub mount_from: HashMap<Digest, String>,
}

pub struct Pushed {
    pub digest: Digest,
    pub size: usize,
}

pub async fn push(
    gw: &Gateway,
    reference: &Reference,
    local: Local,
    progress: Arc<dyn Progress>,
) -> Result<Pushed, PullError> {
    super::pull::check(
        gw,
        "push",
        &reference.to_string(),
        local.manifest_digest.as_str(),
    )
    .await?;
    let repo = Repository::of(reference);
    let creds = ConfigFile::load()
        .ok()
        .and_then(|c| c.credentials(&repo.registry));
    let http = transport::client(ProxyConfig::from_env().map_err(PullError)?);
    let mut sources: Vec<String> = local.mount_from.values().cloned().collect();
    sources.sort();
    sources.dedup();
    let client = Arc::new(Client::open(http, repo, Access::Push, creds, &sources).await?);

    // docker lists layers top first.
    let layers: Vec<(Digest, u64)> = local.layers.iter().rev().cloned().collect();
    for (d, _) in &layers {
        progress.layer(d.short(), "Preparing");
    }
    for (d, _) in layers.iter().skip(CONCURRENT_UPLOADS) {
        progress.layer(d.short(), "Waiting");
    }
    let mount_from = Arc::new(local.mount_from);
    let results: Vec<Result<(), PullError>> = {
        use futures::StreamExt as _;
        futures::stream::iter(layers.iter().cloned())
            .map(|(d, size)| {
                let client = client.clone();
                let progress = progress.clone();
                let mount_from = mount_from.clone();
                let gw = gw.clone();
                async move {
                    let status = push_blob(
                        &gw,
                        &client,
                        &d,
                        size,
                        mount_from.get(&d),
                        Some(progress.clone()),
                    )
                    .await?;
                    progress.layer(d.short(), &status);
                    Ok(())
                }
            })
            .buffer_unordered(CONCURRENT_UPLOADS)
            .collect()
            .await
    };
    for r in results {
        r?;
    }
    let (cd, csize) = &local.config;
    push_blob(gw, &client, cd, *csize, None, None).await?;

    let kind = manifest::kind("", &local.manifest).map_err(PullError)?;
    if kind != Kind::Manifest {
        return Err(PullError(format!(
            "{}: not an image manifest",
            local.manifest_digest
        )));
    }
    let media_type = manifest::media_type("", &local.manifest, kind);
    let tag = reference
        .tag
        .clone()
        .unwrap_or_else(|| crate::refs::DEFAULT_TAG.to_string());
    let size = local.manifest.len();
    let digest = client
        .put_manifest(&tag, &media_type, local.manifest)
        .await?;
    progress.finish();
    Ok(Pushed { digest, size })
}

/// Puts one blob in the repository; returns docker's status word for it.
async fn push_blob(
    gw: &Gateway,
    client: &Client,
    digest: &Digest,
    size: u64,
    mount_from: Option<&String>,
    progress: Option<Arc<dyn Progress>>,
) -> Result<String, PullError> {
    if client.has_blob(digest).await? {
        return Ok("Layer already exists".into());
    }
    let location = match mount_from {
        Some(from) => match client.mount(digest, from).await? {
            Mount::Mounted => return Ok(format!("Mounted from {from}")),
            Mount::Upload(location) => location,
        },
        None => client.start_upload().await?,
    };
    let body = sandbox_body(gw, digest, size, progress);
    client.finish_upload(&location, digest, size, body).await?;
    Ok("Pushed".into())
}

/// A request body streaming a blob from the sandbox's content store.
fn sandbox_body(
    gw: &Gateway,
    digest: &Digest,
    size: u64,
    progress: Option<Arc<dyn Progress>>,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let channel = gw.channel.clone();
    let digest = digest.clone();
    tokio::spawn(async move {
        let mut c = ContentClient::new(channel);
        let req = api::ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        };
        let fail = |s: tonic::Status| {
            std::io::Error::other(format!(
                "reading {digest} from the sandbox: {}",
                crate::error::CliError::from_status(&s)
            ))
        };
        let mut stream = match c.read(req).await {
            Ok(s) => s.into_inner(),
            Err(s) => {
                let _ = tx.send(Err(fail(s))).await;
                return;
            }
        };
        let mut sent = 0u64;
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    sent += m.data.len() as u64;
                    if tx.send(Ok(Frame::data(Bytes::from(m.data)))).await.is_err() {
                        return;
                    }
                    if let Some(p) = &progress {
                        p.bytes(digest.short(), "Pushing", sent, size);
                    }
                }
                Ok(None) => return,
                Err(s) => {
                    let _ = tx.send(Err(fail(s))).await;
                    return;
                }
            }
        }
    });
    StreamBody::new(ReceiverStream::new(rx)).boxed()
}

/// A small blob (manifest, config) read whole from the sandbox and checked.
pub async fn read_small(gw: &Gateway, digest: &Digest) -> Result<Vec<u8>, PullError> {
    let mut c = ContentClient::new(gw.channel.clone());
    let req = api::ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let mut stream = c.read(req).await?.into_inner();
    let mut data = Vec::new();
    while let Some(m) = stream.message().await? {
        data.extend_from_slice(&m.data);
        if data.len() > 4 << 20 {
            return Err(PullError(format!("{digest}: document larger than 4 MiB")));
        }
    }
    if Digest::of(&data) != *digest {
        return Err(PullError(format!(
            "{digest}: sandbox content does not match its digest"
        )));
    }
    Ok(data)
}
