//! `containerd.services.leases.v1.Leases`: forwarded (leases only protect
//! the sandbox's own content from garbage collection).

use std::sync::Arc;

use berth_gateway::quota::{self, Gate};
use berth_proto::containerd::leases::leases_server;
use berth_proto::Empty;
use containerd_client::services::v1 as api;
use tonic::Request;

use super::{method, reply, Method, Reply};
use crate::audit::Peer;
use crate::error::Result;
use crate::server::Ctx;

const CREATE: Method = method!(
    "containerd.services.leases.v1.Leases",
    "Create",
    "leases.create"
);
const DELETE: Method = method!(
    "containerd.services.leases.v1.Leases",
    "Delete",
    "leases.delete"
);
const LIST: Method = method!(
    "containerd.services.leases.v1.Leases",
    "List",
    "leases.list"
);

pub struct Leases(pub Arc<Ctx>);

#[tonic::async_trait]
impl leases_server::Leases for Leases {
    async fn create(&self, req: Request<api::CreateRequest>) -> Reply<api::CreateResponse> {
        let peer = Peer::of(&req);
        reply(self.create(peer, req.into_inner()).await)
    }

    async fn delete(&self, req: Request<api::DeleteRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        reply(self.delete(peer, req.into_inner()).await)
    }

    async fn list(&self, req: Request<api::ListRequest>) -> Reply<api::ListResponse> {
        let peer = Peer::of(&req);
        reply(self.list(peer, req.into_inner()).await)
    }
}

/// Serialises the count and the Create it allows (quota `leases`).
static CREATE_GATE: Gate = Gate::new();

/// Prefix of the lease IDs the gateway creates for itself.
const GATEWAY_LEASE_PREFIX: &str = "berth-";

impl Leases {
    async fn create(&self, peer: Peer, req: api::CreateRequest) -> Result<api::CreateResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &CREATE, &req.id)?;
        // Lease IDs under `berth-` are the gateway's own (e.g. the lease on a
        // prepared snapshot): a client taking one could keep resources alive
        // past the gateway's expiry.
        if req.id.starts_with(GATEWAY_LEASE_PREFIX) {
            let message = format!(
                "refusing lease {}: lease ids starting with {GATEWAY_LEASE_PREFIX} are reserved for the gateway (rule {})",
                req.id, CREATE.rule
            );
            return Err(ctx.refuse(peer, &CREATE, &req.id, CREATE.rule, message));
        }
        ctx.check_labels(
            peer,
            &CREATE,
            &format!("lease {}", req.id),
            // A lease's own expiry only shortens its life (stock clients such
            // as ctr set it on every lease); other daemon-read labels are refused.
            req.labels
                .keys()
                .filter(|k| k.as_str() != berth_gateway::upstream::LABEL_GC_EXPIRE),
        )?;
        // The client's own leases count; the gateway's (its prefix) are
        // bounded by the loads and snapshots they hold.
        let _gate = CREATE_GATE.enter().await;
        let count = quota::lease_count(&ctx.up, |id| !id.starts_with(GATEWAY_LEASE_PREFIX)).await?;
        quota::check_count(
            &format!("lease {}", req.id),
            "leases",
            "quota.leases",
            count,
            1,
            ctx.quotas.leases,
        )
        .map_err(|e| ctx.over_quota(peer, &CREATE, &req.id, e))?;
        Ok(ctx
            .up
            .leases()
            .create(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn delete(&self, peer: Peer, req: api::DeleteRequest) -> Result<Empty> {
        let ctx = &self.0;
        ctx.decide(peer, &DELETE, &req.id)?;
        ctx.up.leases().delete(ctx.up.request(req)).await?;
        Ok(())
    }

    async fn list(&self, peer: Peer, req: api::ListRequest) -> Result<api::ListResponse> {
        let ctx = &self.0;
        ctx.decide(peer, &LIST, "")?;
        Ok(ctx
            .up
            .leases()
            .list(ctx.up.request(req))
            .await?
            .into_inner())
    }
}
