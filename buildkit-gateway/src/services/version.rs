//! `containerd.services.version.v1.Version`: forwarded.

use std::sync::Arc;

use berth_proto::containerd::version::version_server;
use berth_proto::Empty;
use containerd_client::services::v1 as api;
use tonic::Request;

use super::{method, reply, Method, Reply};
use crate::audit::Peer;
use crate::error::Result;
use crate::server::Ctx;

const VERSION: Method = method!(
    "containerd.services.version.v1.Version",
    "Version",
    "version.version"
);

pub struct Version(pub Arc<Ctx>);

#[tonic::async_trait]
impl version_server::Version for Version {
    async fn version(&self, req: Request<Empty>) -> Reply<api::VersionResponse> {
        let peer = Peer::of(&req);
        reply(self.forward(peer).await)
    }
}

impl Version {
    async fn forward(&self, peer: Peer) -> Result<api::VersionResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &VERSION, "")?;
        Ok(ctx
            .up
            .version()
            .version(ctx.up.request(()))
            .await?
            .into_inner())
    }
}
