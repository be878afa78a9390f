//! `containerd.services.images.v1.Images`: image records of the sandbox's
//! namespace. Reads are forwarded; writes are decided by policy first: the
//! name and target of every record created or updated by the image policy
//! (rule `images.admit`).

use std::sync::Arc;

use berth_proto::containerd::images::images_server;
use berth_proto::Empty;
use containerd_client::services::v1 as api;
use tonic::Request;

use super::{method, reply, Method, Reply};
use crate::audit::Peer;
use crate::error::Result;
use crate::server::Ctx;
use berth_gateway::admission::image::Action;

const GET: Method = method!("containerd.services.images.v1.Images", "Get", "images.get");
const LIST: Method = method!(
    "containerd.services.images.v1.Images",
    "List",
    "images.list"
);
const CREATE: Method = method!(
    "containerd.services.images.v1.Images",
    "Create",
    "images.create"
);
const UPDATE: Method = method!(
    "containerd.services.images.v1.Images",
    "Update",
    "images.update"
);
const DELETE: Method = method!(
    "containerd.services.images.v1.Images",
    "Delete",
    "images.delete"
);

pub struct Images(pub Arc<Ctx>);

#[tonic::async_trait]
impl images_server::Images for Images {
    async fn get(&self, req: Request<api::GetImageRequest>) -> Reply<api::GetImageResponse> {
        let peer = Peer::of(&req);
        reply(self.get(peer, req.into_inner()).await)
    }

    async fn list(&self, req: Request<api::ListImagesRequest>) -> Reply<api::ListImagesResponse> {
        let peer = Peer::of(&req);
        reply(self.list(peer, req.into_inner()).await)
    }

    async fn create(
        &self,
        req: Request<api::CreateImageRequest>,
    ) -> Reply<api::CreateImageResponse> {
        let peer = Peer::of(&req);
        reply(self.create(peer, req.into_inner()).await)
    }

    async fn update(
        &self,
        req: Request<api::UpdateImageRequest>,
    ) -> Reply<api::UpdateImageResponse> {
        let peer = Peer::of(&req);
        reply(self.update(peer, req.into_inner()).await)
    }

    async fn delete(&self, req: Request<api::DeleteImageRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        reply(self.delete(peer, req.into_inner()).await)
    }
}

impl Images {
    async fn get(&self, peer: Peer, req: api::GetImageRequest) -> Result<api::GetImageResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &GET, &req.name)?;
        Ok(ctx.up.images().get(ctx.up.request(req)).await?.into_inner())
    }

    async fn list(
        &self,
        peer: Peer,
        req: api::ListImagesRequest,
    ) -> Result<api::ListImagesResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &LIST, "")?;
        Ok(ctx
            .up
            .images()
            .list(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn create(
        &self,
        peer: Peer,
        req: api::CreateImageRequest,
    ) -> Result<api::CreateImageResponse> {
        let ctx = &self.0;
        let name = req
            .image
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or_default();
        let digest = req
            .image
            .as_ref()
            .and_then(|i| i.target.as_ref())
            .map(|t| t.digest.as_str());
        ctx.admit_image(peer, &CREATE, Action::Create, name, digest)?;
        if let Some(image) = &req.image {
            ctx.check_labels(peer, &CREATE, &format!("image {name}"), image.labels.keys())?;
        }
        Ok(ctx
            .up
            .images()
            .create(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn update(
        &self,
        peer: Peer,
        req: api::UpdateImageRequest,
    ) -> Result<api::UpdateImageResponse> {
        let ctx = &self.0;
        let name = req
            .image
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or_default();
        let digest = req
            .image
            .as_ref()
            .and_then(|i| i.target.as_ref())
            .map(|t| t.digest.as_str());
        ctx.admit_image(peer, &UPDATE, Action::Update, name, digest)?;
        if let Some(image) = &req.image {
            ctx.check_labels(peer, &UPDATE, &format!("image {name}"), image.labels.keys())?;
        }
        Ok(ctx
            .up
            .images()
            .update(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn delete(&self, peer: Peer, req: api::DeleteImageRequest) -> Result<Empty> {
        let ctx = &self.0;
        ctx.decide(peer, &DELETE, &req.name)?;
        ctx.up.images().delete(ctx.up.request(req)).await?;
        Ok(())
    }
}
