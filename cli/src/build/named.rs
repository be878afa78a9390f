//! The sandbox's own images as `FROM` bases, with no registry.
//!
//! Before the solve, every base image the Dockerfile names is looked up
//! among the sandbox's images. Each one found is passed to the Dockerfile
//! frontend as a named context, `context:<name>=oci-layout://<store>:<tag>@<digest>`,
//! and the session serves a content store under `<store>` that reads the
//! image's manifest, config and layers through the gateway's containerd
//! facade. Names not found are left to BuildKit.
//!
//! One adjustment: BuildKit's frontend keeps the base config's `created`
//! for an `oci-layout` context (it drops it for a registry image), and the
//! exporter then keeps it for the new image, which would look years old.
//! So the base is offered through a manifest whose config is the original
//! without `created`; both are made here and served from memory, the
//! layers stay the sandbox's. The built image's config and history are
//! then what a build from a registry base gives.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;

use berth_proto::session::content::content_server::{Content, ContentServer};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use futures::{Stream, StreamExt};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tonic::{Request, Response, Status};

use super::dockerfile::BaseImage;
use crate::build::store::{SessionContent, STORE_HEADER};
use crate::client::Gateway;
use crate::image::{self, ImageError};
use crate::refs::Reference;

/// The key the Dockerfile frontend looks a base image up by: the familiar
/// name without a `:latest` tag (`busybox`, `app:1`, `reg.io/x/y`).
pub fn context_key(name: &str) -> Option<String> {
    let r = Reference::parse_normalized(name).ok()?;
    let s = r.familiar_string();
    Some(s.strip_suffix(":latest").map(str::to_string).unwrap_or(s))
}

/// An image of the sandbox offered as a named context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// The name as the Dockerfile wrote it.
    pub name: String,
    /// Frontend attribute key (`context:busybox`) and value.
    pub attr: (String, String),
    /// The sandbox's digest the store must serve the image's blobs from
    /// (its manifest, or its index).
    pub source: String,
}

/// The largest manifest read to rewrite.
const MAX_MANIFEST: usize = 4 << 20;
/// Pieces in which blobs held in memory are read out.
const READ_CHUNK: usize = 1 << 20;

/// Blobs made for the session (digest → bytes).
pub type Made = HashMap<String, Vec<u8>>;

/// The value of a named-context attribute for an image in `store`.
pub fn layout_value(store: &str, tag: &str, target_digest: &str) -> String {
    format!("oci-layout://{store}:{tag}@{target_digest}")
}

/// Looks up each base image (native platform only) and, for
/// `--build-context name=docker-image://ref`, each ref; returns the
/// named contexts for those found, and the blobs made for them.
pub async fn offer(
    gw: &Gateway,
    store: &str,
    bases: &[BaseImage],
    extra: &[(String, String)],
    native: &str,
) -> Result<(Vec<Offered>, Made), ImageError> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for b in bases {
        if b.platform.as_deref().is_some_and(|p| p != native) {
            continue;
        }
        if let Some(key) = context_key(&b.name) {
            wanted.push((key, b.name.clone()));
        }
    }
    // An explicit --build-context wins over a FROM of the same name.
    for (name, reference) in extra {
        let key = context_key(name).unwrap_or_else(|| name.clone());
        wanted.retain(|(k, _)| k != &key);
        wanted.push((key, reference.clone()));
    }
    let mut out = Vec::new();
    let mut made = Made::new();
    let mut seen = BTreeMap::new();
    for (key, name) in wanted {
        if seen.insert(key.clone(), ()).is_some() {
            continue;
        }
        let found = match image::lookup(gw, &name).await {
            Ok(r) => r,
            Err(ImageError::NotFound(_) | ImageError::Reference(_) | ImageError::Broken { .. }) => {
                continue
            }
            Err(e) => return Err(e),
        };
        let tag = image::parse_name(&found.record.name)
            .and_then(|r| r.tag)
            .unwrap_or_else(|| "latest".to_string());
        let source = match without_created(&found.raw_config) {
            None => found.target_digest().to_string(),
            Some(_) => found.manifest_digest.clone(),
        };
        let digest = match without_created(&found.raw_config) {
            None => found.target_digest().to_string(),
            Some(config) => {
                let manifest = read_small(gw, &found.manifest_digest).await?;
                let (manifest, config_digest) =
                    rewrite_manifest(&manifest, &config).map_err(|reason| ImageError::Broken {
                        image: found.record.name.clone(),
                        reason,
                    })?;
                let manifest_digest = digest_of(&manifest);
                made.insert(config_digest, config);
                made.insert(manifest_digest.clone(), manifest);
                manifest_digest
            }
        };
        out.push(Offered {
            name,
            attr: (format!("context:{key}"), layout_value(store, &tag, &digest)),
            source,
        });
    }
    Ok((out, made))
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The config without its `created`, or `None` when it has none.
fn without_created(config: &Value) -> Option<Vec<u8>> {
    let mut c = config.clone();
    c.as_object_mut()?.remove("created")?;
    serde_json::to_vec(&c).ok()
}

/// The manifest pointing at `config` instead of its own config; returns it
/// with the new config's digest.
fn rewrite_manifest(manifest: &[u8], config: &[u8]) -> Result<(Vec<u8>, String), String> {
    let mut m: Value =
        serde_json::from_slice(manifest).map_err(|e| format!("invalid manifest: {e}"))?;
    let config_digest = digest_of(config);
    let obj = m.as_object_mut().ok_or("manifest is not an object")?;
    if !obj.contains_key("mediaType") {
        obj.insert(
            "mediaType".into(),
            Value::String("application/vnd.oci.image.manifest.v1+json".into()),
        );
    }
    let desc = obj
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or("manifest has no config")?;
    desc.insert("digest".into(), Value::String(config_digest.clone()));
    desc.insert("size".into(), Value::from(config.len()));
    let bytes = serde_json::to_vec(&m).map_err(|e| e.to_string())?;
    Ok((bytes, config_digest))
}

/// Reads a manifest through the gateway.
async fn read_small(gw: &Gateway, digest: &str) -> Result<Vec<u8>, ImageError> {
    let mut c = ContentClient::new(gw.channel.clone());
    let req = api::ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let mut stream = c.read(req).await?.into_inner();
    let mut data = Vec::new();
    while let Some(msg) = stream.message().await? {
        data.extend_from_slice(&msg.data);
        if data.len() > MAX_MANIFEST {
            return Err(ImageError::Broken {
                image: digest.to_string(),
                reason: format!("manifest larger than {MAX_MANIFEST} bytes"),
            });
        }
    }
    if digest_of(&data) != digest {
        return Err(ImageError::Broken {
            image: digest.to_string(),
            reason: "content does not match its digest".into(),
        });
    }
    Ok(data)
}

/// The session's content service: the blobs made here for the named
/// store `store`, then whatever the session's store serves (`inner`: the
/// named stores limited to their images, the export store).
pub fn content_service(inner: SessionContent, store: &str, made: Made) -> ContentServer<WithMade> {
    ContentServer::new(WithMade {
        inner,
        store: format!("{}{store}", crate::build::store::NAMED_PREFIX),
        made: Arc::new(made),
    })
}

pub struct WithMade {
    inner: SessionContent,
    /// The store header value of the named store (`oci:<id>`).
    store: String,
    made: Arc<Made>,
}

impl WithMade {
    /// The made blob a request is for, if it is one.
    fn made<T>(&self, r: &Request<T>, digest: &str) -> Option<&Vec<u8>> {
        let asked = r.metadata().get(STORE_HEADER)?.to_str().ok()?;
        if asked == self.store {
            self.made.get(digest)
        } else {
            None
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Content for WithMade {
    async fn info(
        &self,
        request: Request<api::InfoRequest>,
    ) -> Result<Response<api::InfoResponse>, Status> {
        let digest = request.get_ref().digest.clone();
        if let Some(blob) = self.made(&request, &digest) {
            let now = prost_types::Timestamp::from(std::time::SystemTime::now());
            return Ok(Response::new(api::InfoResponse {
                info: Some(api::Info {
                    digest,
                    size: blob.len() as i64,
                    created_at: Some(now),
                    updated_at: Some(now),
                    labels: HashMap::new(),
                }),
            }));
        }
        self.inner.info(request).await
    }

    async fn update(
        &self,
        request: Request<api::UpdateRequest>,
    ) -> Result<Response<api::UpdateResponse>, Status> {
        self.inner.update(request).await
    }

    type ListStream = <SessionContent as Content>::ListStream;

    async fn list(
        &self,
        request: Request<api::ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        self.inner.list(request).await
    }

    async fn delete(
        &self,
        request: Request<api::DeleteContentRequest>,
    ) -> Result<Response<()>, Status> {
        self.inner.delete(request).await
    }

    type ReadStream = BoxStream<api::ReadContentResponse>;

    async fn read(
        &self,
        request: Request<api::ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let digest = request.get_ref().digest.clone();
        if let Some(blob) = self.made(&request, &digest) {
            let req = request.get_ref();
            let chunks = slice(blob, req.offset, req.size)?
                .chunks(READ_CHUNK)
                .enumerate()
                .map(|(i, c)| {
                    Ok(api::ReadContentResponse {
                        offset: req.offset + (i * READ_CHUNK) as i64,
                        data: c.to_vec(),
                    })
                })
                .collect::<Vec<_>>();
            return Ok(Response::new(futures::stream::iter(chunks).boxed()));
        }
        let s = self.inner.read(request).await?.into_inner();
        Ok(Response::new(s.boxed()))
    }

    async fn status(
        &self,
        request: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        self.inner.status(request).await
    }

    async fn list_statuses(
        &self,
        request: Request<api::ListStatusesRequest>,
    ) -> Result<Response<api::ListStatusesResponse>, Status> {
        self.inner.list_statuses(request).await
    }

    type WriteStream = <SessionContent as Content>::WriteStream;

    async fn write(
        &self,
        request: Request<tonic::Streaming<api::WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        self.inner.write(request).await
    }

    async fn abort(&self, request: Request<api::AbortRequest>) -> Result<Response<()>, Status> {
        self.inner.abort(request).await
    }
}

/// `size` bytes from `offset` (0: to the end), as containerd's Read.
fn slice(blob: &[u8], offset: i64, size: i64) -> Result<&[u8], Status> {
    let len = blob.len() as i64;
    if offset < 0 || offset > len || size < 0 {
        return Err(Status::out_of_range(format!(
            "offset {offset} beyond {len}"
        )));
    }
    let end = if size == 0 {
        len
    } else {
        (offset + size).min(len)
    };
    Ok(&blob[offset as usize..end as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_loses_only_its_creation_time() {
        let config = serde_json::json!({
            "architecture": "amd64",
            "created": "2024-01-01T00:00:00Z",
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x"}],
            "os": "linux"
        });
        let made = without_created(&config).unwrap();
        let back: Value = serde_json::from_slice(&made).unwrap();
        assert!(back.get("created").is_none());
        assert_eq!(back["history"], config["history"]);
        let mut no_created = config.clone();
        no_created.as_object_mut().unwrap().remove("created");
        assert!(without_created(&no_created).is_none());
    }

    #[test]
    fn the_manifest_points_at_the_new_config() {
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":5},"layers":[{"digest":"sha256:11","size":9}]}"#;
        let (m, d) = rewrite_manifest(manifest, b"{}").unwrap();
        let v: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(d, digest_of(b"{}"));
        assert_eq!(v["config"]["digest"], d.as_str());
        assert_eq!(v["config"]["size"], 2);
        assert_eq!(v["layers"][0]["digest"], "sha256:11");
        assert!(rewrite_manifest(b"[]", b"{}").is_err());
    }

    #[test]
    fn reads_of_made_blobs_honour_offset_and_size() {
        let b = b"0123456789";
        assert_eq!(slice(b, 0, 0).unwrap(), b);
        assert_eq!(slice(b, 3, 4).unwrap(), b"3456");
        assert_eq!(slice(b, 8, 10).unwrap(), b"89");
        assert!(slice(b, 11, 0).is_err());
    }

    #[test]
    fn keys_are_the_frontends() {
        assert_eq!(context_key("busybox").as_deref(), Some("busybox"));
        assert_eq!(context_key("busybox:latest").as_deref(), Some("busybox"));
        assert_eq!(
            context_key("docker.io/library/busybox").as_deref(),
            Some("busybox")
        );
        assert_eq!(context_key("app:1.0").as_deref(), Some("app:1.0"));
        assert_eq!(
            context_key("localhost:5000/x/y").as_deref(),
            Some("localhost:5000/x/y")
        );
        assert_eq!(context_key("Bad"), None);
    }

    #[test]
    fn layout_values_name_store_tag_and_digest() {
        assert_eq!(
            layout_value("s0", "latest", "sha256:ab"),
            "oci-layout://s0:latest@sha256:ab"
        );
    }
}
