//! `containerd.services.namespaces.v1.Namespaces`: the sandbox sees exactly
//! its own namespace and changes none (boundary rule 1).

use std::sync::Arc;

use berth_proto::containerd::namespaces::namespaces_server;
use berth_proto::Empty;
use containerd_client::services::v1 as api;
use tonic::{Code, Request};

use super::{method, reply, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;

const GET: Method = method!(
    "containerd.services.namespaces.v1.Namespaces",
    "Get",
    "namespaces.get"
);
const LIST: Method = method!(
    "containerd.services.namespaces.v1.Namespaces",
    "List",
    "namespaces.list"
);
const CREATE: Method = method!(
    "containerd.services.namespaces.v1.Namespaces",
    "Create",
    "namespaces.create"
);
const UPDATE: Method = method!(
    "containerd.services.namespaces.v1.Namespaces",
    "Update",
    "namespaces.update"
);
const DELETE: Method = method!(
    "containerd.services.namespaces.v1.Namespaces",
    "Delete",
    "namespaces.delete"
);

pub struct Namespaces(pub Arc<Ctx>);

#[tonic::async_trait]
impl namespaces_server::Namespaces for Namespaces {
    async fn get(
        &self,
        req: Request<api::GetNamespaceRequest>,
    ) -> Reply<api::GetNamespaceResponse> {
        let peer = Peer::of(&req);
        reply(self.get(peer, req.into_inner()).await)
    }

    async fn list(
        &self,
        req: Request<api::ListNamespacesRequest>,
    ) -> Reply<api::ListNamespacesResponse> {
        let peer = Peer::of(&req);
        reply(self.list(peer).await)
    }

    async fn create(
        &self,
        req: Request<api::CreateNamespaceRequest>,
    ) -> Reply<api::CreateNamespaceResponse> {
        let peer = Peer::of(&req);
        let name = req
            .into_inner()
            .namespace
            .map(|n| n.name)
            .unwrap_or_default();
        reply(self.refuse_write(peer, &CREATE, &name))
    }

    async fn update(
        &self,
        req: Request<api::UpdateNamespaceRequest>,
    ) -> Reply<api::UpdateNamespaceResponse> {
        let peer = Peer::of(&req);
        let name = req
            .into_inner()
            .namespace
            .map(|n| n.name)
            .unwrap_or_default();
        reply(self.refuse_write(peer, &UPDATE, &name))
    }

    async fn delete(&self, req: Request<api::DeleteNamespaceRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        reply(self.refuse_write(peer, &DELETE, &req.into_inner().name))
    }
}

impl Namespaces {
    async fn get(
        &self,
        peer: Peer,
        req: api::GetNamespaceRequest,
    ) -> Result<api::GetNamespaceResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &GET, &req.name)?;
        if req.name != ctx.sb.namespace {
            // Others' namespaces do not exist as far as the sandbox knows.
            return Err(GatewayError::not_found(format!(
                "namespace {}: not found",
                req.name
            )));
        }
        let msg = api::GetNamespaceRequest {
            name: ctx.sb.namespace.clone(),
        };
        Ok(ctx
            .up
            .namespaces()
            .get(ctx.up.request(msg))
            .await?
            .into_inner())
    }

    async fn list(&self, peer: Peer) -> Result<api::ListNamespacesResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &LIST, "")?;
        let msg = api::GetNamespaceRequest {
            name: ctx.sb.namespace.clone(),
        };
        match ctx.up.namespaces().get(ctx.up.request(msg)).await {
            Ok(r) => Ok(api::ListNamespacesResponse {
                namespaces: r.into_inner().namespace.into_iter().collect(),
            }),
            // containerd creates a namespace on first use; until then there is none.
            Err(s) if s.code() == Code::NotFound => {
                Ok(api::ListNamespacesResponse { namespaces: vec![] })
            }
            Err(s) => Err(s.into()),
        }
    }

    /// Namespace writes: the policy decides (and refuses them); should it
    /// ever allow one, the gateway still does not carry it out.
    fn refuse_write<T>(&self, peer: Peer, m: &Method, name: &str) -> Result<T> {
        let ctx = &self.0;
        ctx.decide(peer, m, name)?;
        Err(ctx.refuse(
            peer,
            m,
            name,
            "namespaces.write",
            format!(
                "refusing namespace {name}: the sandbox cannot create, change or delete namespaces"
            ),
        ))
    }
}
