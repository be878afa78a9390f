//! `containerd.services.containers.v1.Containers`: reads are forwarded;
//! Create and Update forward only what admission decided and hardened
//! (boundary rule 3).

use berth_gateway::upstream::Upstream;
use std::sync::Arc;

use berth_gateway::admission;
use berth_proto::containerd::containers::containers_server;
use berth_proto::Empty;
use containerd_client::services::v1 as api;
use tonic::Request;

use super::{method, relay_stream, reply, BoxStream, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;
use berth_gateway::admission::image::Action;

const GET: Method = method!(
    "containerd.services.containers.v1.Containers",
    "Get",
    "containers.get"
);
const LIST: Method = method!(
    "containerd.services.containers.v1.Containers",
    "List",
    "containers.list"
);
const LIST_STREAM: Method = method!(
    "containerd.services.containers.v1.Containers",
    "ListStream",
    "containers.list_stream"
);
const CREATE: Method = method!(
    "containerd.services.containers.v1.Containers",
    "Create",
    "containers.create"
);
const UPDATE: Method = method!(
    "containerd.services.containers.v1.Containers",
    "Update",
    "containers.update"
);
const DELETE: Method = method!(
    "containerd.services.containers.v1.Containers",
    "Delete",
    "containers.delete"
);

pub struct Containers(pub Arc<Ctx>);

#[tonic::async_trait]
impl containers_server::Containers for Containers {
    async fn get(
        &self,
        req: Request<api::GetContainerRequest>,
    ) -> Reply<api::GetContainerResponse> {
        let peer = Peer::of(&req);
        reply(self.get(peer, req.into_inner()).await)
    }

    async fn list(
        &self,
        req: Request<api::ListContainersRequest>,
    ) -> Reply<api::ListContainersResponse> {
        let peer = Peer::of(&req);
        reply(self.list(peer, req.into_inner()).await)
    }

    type ListStreamStream = BoxStream<api::ListContainerMessage>;

    async fn list_stream(
        &self,
        req: Request<api::ListContainersRequest>,
    ) -> Reply<Self::ListStreamStream> {
        let peer = Peer::of(&req);
        reply(self.list_stream(peer, req.into_inner()).await)
    }

    async fn create(
        &self,
        req: Request<api::CreateContainerRequest>,
    ) -> Reply<api::CreateContainerResponse> {
        let peer = Peer::of(&req);
        reply(self.create(peer, req.into_inner()).await)
    }

    async fn update(
        &self,
        req: Request<api::UpdateContainerRequest>,
    ) -> Reply<api::UpdateContainerResponse> {
        let peer = Peer::of(&req);
        reply(self.update(peer, req.into_inner()).await)
    }

    async fn delete(&self, req: Request<api::DeleteContainerRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        reply(self.delete(peer, req.into_inner()).await)
    }
}

impl Containers {
    async fn get(
        &self,
        peer: Peer,
        req: api::GetContainerRequest,
    ) -> Result<api::GetContainerResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &GET, &req.id)?;
        Ok(ctx
            .up
            .containers()
            .get(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn list(
        &self,
        peer: Peer,
        req: api::ListContainersRequest,
    ) -> Result<api::ListContainersResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &LIST, "")?;
        Ok(ctx
            .up
            .containers()
            .list(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn list_stream(
        &self,
        peer: Peer,
        req: api::ListContainersRequest,
    ) -> Result<BoxStream<api::ListContainerMessage>> {
        let ctx = &self.0;
        ctx.decide(peer, &LIST_STREAM, "")?;
        Ok(relay_stream(
            ctx.up
                .containers()
                .list_stream(ctx.up.request(req))
                .await?
                .into_inner(),
        ))
    }

    async fn create(
        &self,
        peer: Peer,
        req: api::CreateContainerRequest,
    ) -> Result<api::CreateContainerResponse> {
        let ctx = &self.0;
        let container = req
            .container
            .ok_or_else(|| GatewayError::invalid("container create without a container"))?;
        let id = container.id.clone();
        // The image it runs, by name (a container without an image names
        // none); the spec is decided below.
        if !container.image.is_empty() {
            ctx.admit_image(peer, &CREATE, Action::Run, &container.image, None)?;
        }
        let hardened = ctx.admitted(
            peer,
            &CREATE,
            &id,
            admission::container_create(&ctx.engine, &ctx.sb, container),
        )?;
        let lease = Upstream::prepare_lease_id(&hardened.snapshot_key);
        let msg = api::CreateContainerRequest {
            container: Some(hardened),
        };
        let created = ctx
            .up
            .containers()
            .create(ctx.up.request(msg))
            .await?
            .into_inner();
        // The container now keeps its snapshot; the gateway's Prepare lease
        // has done its job.
        // A failure here only delays the lease's expiry; the container exists.
        if let Err(status) = ctx.up.drop_lease(&lease).await {
            crate::audit::warn(&format!("dropping lease {lease}: {}", status.message()));
        }
        Ok(created)
    }

    async fn update(
        &self,
        peer: Peer,
        req: api::UpdateContainerRequest,
    ) -> Result<api::UpdateContainerResponse> {
        let ctx = &self.0;
        let id = req
            .container
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        if id.is_empty() {
            return Err(GatewayError::invalid(
                "container update without a container id",
            ));
        }
        // Admission compares against what containerd holds, not what the
        // client claims the container is.
        let current = ctx
            .up
            .containers()
            .get(ctx.up.request(api::GetContainerRequest { id: id.clone() }))
            .await?
            .into_inner()
            .container
            .ok_or_else(|| GatewayError::not_found(format!("container {id}: not found")))?;
        let msg = ctx.admitted(
            peer,
            &UPDATE,
            &id,
            admission::container_update(&ctx.engine, &ctx.sb, &current, req),
        )?;
        Ok(ctx
            .up
            .containers()
            .update(ctx.up.request(msg))
            .await?
            .into_inner())
    }

    async fn delete(&self, peer: Peer, req: api::DeleteContainerRequest) -> Result<Empty> {
        let ctx = &self.0;
        let id = req.id.clone();
        ctx.decide(peer, &DELETE, &id)?;
        ctx.up.containers().delete(ctx.up.request(req)).await?;
        // containerd refuses to delete a container with a task, so its
        // processes are gone: their relays, FIFOs and the log go too.
        ctx.relays.remove_container(&id);
        Ok(())
    }
}
