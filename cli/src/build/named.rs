//! The sandbox's own images as `FROM` bases, with no registry.
//!
//! Before the solve, every base image the Dockerfile names is looked up
//! among the sandbox's images. Each one found is passed to the Dockerfile
//! frontend as a named context, `context:<name>=oci-layout://<store>:<tag>@<digest>`,
//! and the session serves a content store under `<store>` that reads the
//! image's index, manifests, config and layers through the gateway's
//! containerd facade. Names not found are left to BuildKit.

use std::collections::BTreeMap;
use std::pin::Pin;

use berth_proto::containerd::content::content_server::{Content, ContentServer};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::dockerfile::BaseImage;
use crate::client::Gateway;
use crate::image::{self, ImageError};
use crate::refs::Reference;

/// The gRPC metadata key naming the store a content request is for
/// (BuildKit's `session/content` attachable).
pub const STORE_HEADER: &str = "buildkit-attachable-store-id";

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
}

/// The value of a named-context attribute for an image in `store`.
pub fn layout_value(store: &str, tag: &str, target_digest: &str) -> String {
    format!("oci-layout://{store}:{tag}@{target_digest}")
}

/// Looks up each base image (native platform only) and, for
/// `--build-context name=docker-image://ref`, each ref; returns the
/// named contexts for those found.
pub async fn offer(
    gw: &Gateway,
    store: &str,
    bases: &[BaseImage],
    extra: &[(String, String)],
    native: &str,
) -> Result<Vec<Offered>, ImageError> {
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
        out.push(Offered {
            name,
            attr: (
                format!("context:{key}"),
                layout_value(store, &tag, found.target_digest()),
            ),
        });
    }
    Ok(out)
}

/// The session's content store: the sandbox's content, read through the
/// gateway, for requests naming `store`.
pub fn content_store(gw: &Gateway, store: &str) -> ContentServer<SandboxContent> {
    ContentServer::new(SandboxContent {
        client: ContentClient::new(gw.channel.clone()),
        store: store.to_string(),
    })
}

pub struct SandboxContent {
    client: ContentClient<tonic::transport::Channel>,
    store: String,
}

impl SandboxContent {
    fn check<T>(&self, r: &Request<T>) -> Result<(), Status> {
        let asked = r
            .metadata()
            .get(STORE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if asked == self.store {
            Ok(())
        } else {
            Err(Status::not_found(format!("unknown store {asked}")))
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Content for SandboxContent {
    async fn info(
        &self,
        request: Request<api::InfoRequest>,
    ) -> Result<Response<api::InfoResponse>, Status> {
        self.check(&request)?;
        let mut c = self.client.clone();
        c.info(request.into_inner()).await
    }

    type ListStream = BoxStream<api::ListContentResponse>;

    async fn list(
        &self,
        request: Request<api::ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        self.check(&request)?;
        let mut c = self.client.clone();
        let s = c.list(request.into_inner()).await?.into_inner();
        Ok(Response::new(s.boxed()))
    }

    type ReadStream = BoxStream<api::ReadContentResponse>;

    async fn read(
        &self,
        request: Request<api::ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        self.check(&request)?;
        let mut c = self.client.clone();
        let s = c.read(request.into_inner()).await?.into_inner();
        Ok(Response::new(s.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
