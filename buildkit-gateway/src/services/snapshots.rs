//! `containerd.services.snapshots.v1.Snapshots`: only the sandbox's
//! snapshotter, and never a mount: Prepare's mounts are host paths, so the
//! client gets none (boundary rule 2; Snapshots.Mounts is not served — the
//! gateway computes a task's rootfs itself).

use berth_gateway::quota::{self, Gate};
use berth_gateway::upstream::Upstream;
use std::sync::Arc;

use berth_proto::containerd::snapshots::snapshots_server;
use berth_proto::Empty;
use containerd_client::services::v1::snapshots as api;
use tonic::Request;

use super::{method, relay_stream, reply, BoxStream, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;
use berth_gateway::userns::{self, remap};

const PREPARE: Method = method!(
    "containerd.services.snapshots.v1.Snapshots",
    "Prepare",
    "snapshots.prepare"
);
const REMOVE: Method = method!(
    "containerd.services.snapshots.v1.Snapshots",
    "Remove",
    "snapshots.remove"
);
const STAT: Method = method!(
    "containerd.services.snapshots.v1.Snapshots",
    "Stat",
    "snapshots.stat"
);
const LIST: Method = method!(
    "containerd.services.snapshots.v1.Snapshots",
    "List",
    "snapshots.list"
);
const USAGE: Method = method!(
    "containerd.services.snapshots.v1.Snapshots",
    "Usage",
    "snapshots.usage"
);

/// The gateway's rule name when it refuses another snapshotter.
const RULE_SNAPSHOTTER: &str = "snapshots.snapshotter";
/// The gateway's rule name when a client names one of its own snapshots.
const RULE_GATEWAY_NAMES: &str = "snapshots.gateway_names";

pub struct Snapshots(pub Arc<Ctx>);

#[tonic::async_trait]
impl snapshots_server::Snapshots for Snapshots {
    async fn prepare(
        &self,
        req: Request<api::PrepareSnapshotRequest>,
    ) -> Reply<api::PrepareSnapshotResponse> {
        let peer = Peer::of(&req);
        reply(self.prepare(peer, req.into_inner()).await)
    }

    async fn remove(&self, req: Request<api::RemoveSnapshotRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        reply(self.remove(peer, req.into_inner()).await)
    }

    async fn stat(
        &self,
        req: Request<api::StatSnapshotRequest>,
    ) -> Reply<api::StatSnapshotResponse> {
        let peer = Peer::of(&req);
        reply(self.stat(peer, req.into_inner()).await)
    }

    type ListStream = BoxStream<api::ListSnapshotsResponse>;

    async fn list(&self, req: Request<api::ListSnapshotsRequest>) -> Reply<Self::ListStream> {
        let peer = Peer::of(&req);
        reply(self.list(peer, req.into_inner()).await)
    }

    async fn usage(&self, req: Request<api::UsageRequest>) -> Reply<api::UsageResponse> {
        let peer = Peer::of(&req);
        reply(self.usage(peer, req.into_inner()).await)
    }
}

/// Serialises the count and the Prepare it allows (quota `snapshots`).
static PREPARE_GATE: Gate = Gate::new();

/// How long a prepared snapshot survives without a container referring to it.
const PREPARE_LEASE_MINUTES: i64 = 10;

impl Snapshots {
    /// The snapshotter to use: the sandbox's, whether named or left empty.
    fn snapshotter(&self, peer: Peer, m: &Method, object: &str, asked: &str) -> Result<String> {
        let ctx = &self.0;
        let ours = &ctx.sb.snapshotter;
        if asked.is_empty() || asked == ours {
            return Ok(ours.clone());
        }
        Err(ctx.refuse(
            peer,
            m,
            object,
            RULE_SNAPSHOTTER,
            format!(
                "refusing snapshotter {asked}: the sandbox uses {ours} (rule {RULE_SNAPSHOTTER})"
            ),
        ))
    }

    /// Refuses a client's key (or a parent of another mapping) under the
    /// gateway's own snapshot names (`userns::SNAPSHOT_PREFIX`).
    fn gateway_names(&self, peer: Peer, m: &Method, key: &str, parent: &str) -> Result<()> {
        let ctx = &self.0;
        let own_parent = |p: &str| {
            ctx.sb
                .userns
                .is_some_and(|map| p.starts_with(&format!("{}/", map.remapped_prefix())))
        };
        let name = if userns::is_gateway_snapshot(key) {
            key
        } else if userns::is_gateway_snapshot(parent) && !own_parent(parent) {
            parent
        } else {
            return Ok(());
        };
        Err(ctx.refuse(
            peer,
            m,
            key,
            RULE_GATEWAY_NAMES,
            format!(
                "refusing snapshot {name}: names under {} are the gateway's (rule {RULE_GATEWAY_NAMES})",
                userns::SNAPSHOT_PREFIX
            ),
        ))
    }

    /// With user namespaces on, a container's rootfs is prepared on the
    /// remapped copy of the image's chain (made once, `userns::remap`); a
    /// parent that already is one stays. Also refreshes the sandbox's sysfs
    /// that such containers bind.
    async fn userns_parent(&self, map: &userns::IdMap, parent: String) -> Result<String> {
        let ctx = &self.0;
        userns::ensure_sysfs(&ctx.sb.netns_path, &ctx.sb.state_dir)
            .map_err(|e| GatewayError::internal("mounting the sandbox's sysfs", e))?;
        if parent.is_empty() || userns::is_gateway_snapshot(&parent) {
            return Ok(parent);
        }
        let started = std::time::Instant::now();
        let (name, outcome) = remap::remapped_parent(
            &ctx.up,
            &ctx.sb.snapshotter,
            map,
            &ctx.sb.state_dir,
            &parent,
        )
        .await
        .map_err(|e| match e {
            remap::RemapError::Upstream(s) => GatewayError::Upstream(s),
            remap::RemapError::Internal(m) => GatewayError::internal("user namespace remap", m),
        })?;
        if let remap::Outcome::Made(done) = outcome {
            crate::audit::info(&format!(
                "remapped {parent} for uid {} gid {} as {name}: {} entries, {} relinked, {} with capabilities, {} ms",
                map.uid,
                map.gid,
                done.entries,
                done.relinked,
                done.capabilities,
                started.elapsed().as_millis()
            ));
        }
        Ok(name)
    }

    async fn prepare(
        &self,
        peer: Peer,
        mut req: api::PrepareSnapshotRequest,
    ) -> Result<api::PrepareSnapshotResponse> {
        let ctx = &self.0;
        req.snapshotter = self.snapshotter(peer, &PREPARE, &req.key, &req.snapshotter)?;
        ctx.decide(peer, &PREPARE, &req.key)?;
        ctx.check_labels(
            peer,
            &PREPARE,
            &format!("snapshot {}", req.key),
            req.labels.keys(),
        )?;
        self.gateway_names(peer, &PREPARE, &req.key, &req.parent)?;
        if let Some(map) = ctx.sb.userns {
            req.parent = self.userns_parent(&map, req.parent).await?;
        }
        // An active snapshot nothing refers to is garbage to containerd; the
        // client cannot hold a lease across Prepare and Containers.Create
        // (its metadata never reaches containerd), so the gateway takes a
        // short-lived one, dropped when a container names the snapshot
        // (Containers.Create) or the snapshot is removed.
        let _gate = PREPARE_GATE.enter().await;
        let count = quota::snapshot_count(&ctx.up, &req.snapshotter).await?;
        let object = format!("snapshot {}", req.key);
        quota::check_count(
            &object,
            "snapshots",
            "quota.snapshots",
            count,
            1,
            ctx.quotas.snapshots,
        )
        .map_err(|e| ctx.over_quota(peer, &PREPARE, &req.key, e))?;
        let lease = Upstream::prepare_lease_id(&req.key);
        ctx.up
            .expiring_lease(&lease, chrono::Duration::minutes(PREPARE_LEASE_MINUTES))
            .await?;
        let prepared = ctx
            .up
            .snapshots()
            .prepare(ctx.up.request_leased(req, &lease))
            .await;
        if let Err(status) = prepared {
            // Nothing was prepared for the lease to hold (e.g. a parent of
            // another namespace is not found); an existing key keeps the
            // lease that protects it.
            if status.code() != tonic::Code::AlreadyExists {
                if let Err(e) = ctx.up.drop_lease(&lease).await {
                    crate::audit::warn(&format!("dropping lease {lease}: {}", e.message()));
                }
            }
            return Err(status.into());
        }
        Ok(api::PrepareSnapshotResponse { mounts: Vec::new() })
    }

    async fn remove(&self, peer: Peer, mut req: api::RemoveSnapshotRequest) -> Result<Empty> {
        let ctx = &self.0;
        req.snapshotter = self.snapshotter(peer, &REMOVE, &req.key, &req.snapshotter)?;
        ctx.decide(peer, &REMOVE, &req.key)?;
        self.gateway_names(peer, &REMOVE, &req.key, "")?;
        let lease = Upstream::prepare_lease_id(&req.key);
        ctx.up.snapshots().remove(ctx.up.request(req)).await?;
        ctx.up.drop_lease(&lease).await?;
        Ok(())
    }

    async fn stat(
        &self,
        peer: Peer,
        mut req: api::StatSnapshotRequest,
    ) -> Result<api::StatSnapshotResponse> {
        let ctx = &self.0;
        req.snapshotter = self.snapshotter(peer, &STAT, &req.key, &req.snapshotter)?;
        ctx.decide(peer, &STAT, &req.key)?;
        Ok(ctx
            .up
            .snapshots()
            .stat(ctx.up.request(req))
            .await?
            .into_inner())
    }

    async fn list(
        &self,
        peer: Peer,
        mut req: api::ListSnapshotsRequest,
    ) -> Result<BoxStream<api::ListSnapshotsResponse>> {
        let ctx = &self.0;
        req.snapshotter = self.snapshotter(peer, &LIST, "", &req.snapshotter)?;
        ctx.decide(peer, &LIST, "")?;
        Ok(relay_stream(
            ctx.up
                .snapshots()
                .list(ctx.up.request(req))
                .await?
                .into_inner(),
        ))
    }

    async fn usage(&self, peer: Peer, mut req: api::UsageRequest) -> Result<api::UsageResponse> {
        let ctx = &self.0;
        req.snapshotter = self.snapshotter(peer, &USAGE, &req.key, &req.snapshotter)?;
        ctx.decide(peer, &USAGE, &req.key)?;
        Ok(ctx
            .up
            .snapshots()
            .usage(ctx.up.request(req))
            .await?
            .into_inner())
    }
}
