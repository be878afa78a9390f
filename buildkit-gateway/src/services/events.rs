//! `containerd.services.events.v1.Events/Subscribe`: containerd sends events
//! of every namespace unless filtered, so the gateway both asks for the
//! sandbox's namespace only and drops any envelope from another (boundary
//! rule 2). Task-create events carry host paths (bundle, rootfs mounts, FIFO
//! paths); those are removed too. The scoping and scrubbing themselves are
//! in the library (`berth_gateway::events`).

use std::sync::Arc;

use berth_gateway::events::{sandboxed, scoped_filters};
use berth_proto::containerd::events::events_server;
use containerd_client::services::v1 as api;
use containerd_client::types::Envelope;
use futures::StreamExt;
use tonic::{Request, Status};

use super::{method, reply, BoxStream, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;

const SUBSCRIBE: Method = method!(
    "containerd.services.events.v1.Events",
    "Subscribe",
    "events.subscribe"
);

pub struct Events(pub Arc<Ctx>);

#[tonic::async_trait]
impl events_server::Events for Events {
    type SubscribeStream = BoxStream<Envelope>;

    async fn subscribe(&self, req: Request<api::SubscribeRequest>) -> Reply<Self::SubscribeStream> {
        let peer = Peer::of(&req);
        reply(self.subscribe(peer, req.into_inner()).await)
    }
}

impl Events {
    async fn subscribe(
        &self,
        peer: Peer,
        req: api::SubscribeRequest,
    ) -> Result<BoxStream<Envelope>> {
        let ctx = &self.0;
        ctx.decide(peer, &SUBSCRIBE, "")?;
        let ns = ctx.sb.namespace.clone();
        let msg = api::SubscribeRequest {
            filters: scoped_filters(&req.filters, &ns),
        };
        let upstream = ctx
            .up
            .events()
            .subscribe(ctx.up.request(msg))
            .await?
            .into_inner();
        Ok(Box::pin(upstream.filter_map(move |item| {
            let out = match item {
                Ok(env) => sandboxed(env, &ns).map(Ok),
                Err(e) => Some(Err(Status::from(GatewayError::Upstream(e)))),
            };
            futures::future::ready(out)
        })))
    }
}
