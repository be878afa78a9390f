//! `containerd.services.content.v1.Content`: read-only access to the blobs
//! of the sandbox's namespace (containerd runs with content_sharing_policy
//! isolated, so other namespaces' blobs are invisible). Writes go through
//! `berth.v1.Images/Load` only.

use std::sync::Arc;

use berth_proto::containerd::content::content_server;
use containerd_client::services::v1 as api;
use tonic::Request;

use super::{method, relay_stream, reply, BoxStream, Method, Reply};
use crate::audit::Peer;
use crate::error::Result;
use crate::server::Ctx;

const INFO: Method = method!(
    "containerd.services.content.v1.Content",
    "Info",
    "content.info"
);
const LIST: Method = method!(
    "containerd.services.content.v1.Content",
    "List",
    "content.list"
);
const READ: Method = method!(
    "containerd.services.content.v1.Content",
    "Read",
    "content.read"
);

pub struct Content(pub Arc<Ctx>);

#[tonic::async_trait]
impl content_server::Content for Content {
    async fn info(&self, req: Request<api::InfoRequest>) -> Reply<api::InfoResponse> {
        let peer = Peer::of(&req);
        reply(self.info(peer, req.into_inner()).await)
    }

    type ListStream = BoxStream<api::ListContentResponse>;

    async fn list(&self, req: Request<api::ListContentRequest>) -> Reply<Self::ListStream> {
        let peer = Peer::of(&req);
        reply(self.list(peer, req.into_inner()).await)
    }

    type ReadStream = BoxStream<api::ReadContentResponse>;

    async fn read(&self, req: Request<api::ReadContentRequest>) -> Reply<Self::ReadStream> {
        let peer = Peer::of(&req);
        reply(self.read(peer, req.into_inner()).await)
    }
}

impl Content {
    async fn info(&self, peer: Peer, req: api::InfoRequest) -> Result<api::InfoResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &INFO, &req.digest)?;
        Ok(ctx
            .up
            .content()
            .info(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn list(
        &self,
        peer: Peer,
        req: api::ListContentRequest,
    ) -> Result<BoxStream<api::ListContentResponse>> {
        let ctx = &self.0;
        ctx.decide(peer, &LIST, "")?;
        Ok(relay_stream(
            ctx.up
                .content()
                .list(ctx.up.request(req))
                .await?
                .into_inner(),
        ))
    }

    async fn read(
        &self,
        peer: Peer,
        req: api::ReadContentRequest,
    ) -> Result<BoxStream<api::ReadContentResponse>> {
        let ctx = &self.0;
        ctx.decide(peer, &READ, &req.digest)?;
        Ok(relay_stream(
            ctx.up
                .content()
                .read(ctx.up.request(req))
                .await?
                .into_inner(),
        ))
    }
}
