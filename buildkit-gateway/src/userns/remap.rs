//! Remapped parents: an image chain's files with every owner shifted into
//! the sandbox's range, as a committed snapshot a container's rootfs is
//! prepared on.
//!
//! Made once per chain and mapping, by the gateway alone:
//! Prepare a temporary active snapshot on the chain (under a lease), mount
//! it privately, shift every owner ([`super::shift`]), unmount, Commit it as
//! `berth-userns/<uid>-<gid>-<size>/<chain>`. The chain then gets a GC
//! reference label to it, so the copy lives exactly as long as the chain
//! (i.e. the image) does; a container's snapshot keeps it as its parent.
//! Names under [`super::SNAPSHOT_PREFIX`] are refused to clients.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, Info, Kind, PrepareSnapshotRequest, RemoveSnapshotRequest,
    StatSnapshotRequest, UpdateSnapshotRequest,
};
use tonic::Code;

use super::{mount, shift, IdMap, SNAPSHOT_PREFIX, STATE_SUBDIR};
use crate::upstream::Upstream;

/// How long the gateway's lease on a remap in progress lasts, should the
/// gateway die before dropping it.
const LEASE_MINUTES: i64 = 30;

/// Label on a remapped parent: the mapping (`uid:gid:size`).
pub const LABEL_MAP: &str = "berth.userns/map";
/// Label on a remapped parent: the chain it is a copy of.
pub const LABEL_CHAIN: &str = "berth.userns/chain";

#[derive(Debug, thiserror::Error)]
pub enum RemapError {
    /// containerd's answer (e.g. the chain does not exist).
    #[error(transparent)]
    Upstream(#[from] tonic::Status),
    /// A failure inside the gateway (mounting, shifting).
    #[error("{0}")]
    Internal(String),
}

fn internal(what: &str, e: impl std::fmt::Display) -> RemapError {
    RemapError::Internal(format!("{what}: {e}"))
}

/// The label on a chain that keeps its remapped copy for `map` alive.
pub fn gc_label(snapshotter: &str, map: &IdMap) -> String {
    format!(
        "containerd.io/gc.ref.snapshot.{snapshotter}/{SNAPSHOT_PREFIX}-{}",
        map.tag()
    )
}

/// One lock per remapped name: two containers of one new image must not
/// both make its copy.
fn lock_for(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks.entry(name.to_string()).or_default().clone()
}

/// What containerd holds under `name`, if anything.
async fn stat(up: &Upstream, snapshotter: &str, name: &str) -> Result<Option<Info>, RemapError> {
    let req = StatSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        key: name.to_string(),
    };
    match up.snapshots().stat(up.request(req)).await {
        Ok(r) => Ok(r.into_inner().info),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(s.into()),
    }
}

/// How a remap went, for the gateway's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The copy existed already.
    Existing,
    /// The gateway made it now.
    Made(shift::Shifted),
}

/// The remapped parent for `chain` under `map`, made if missing.
/// `state_dir` is the gateway's private directory (mount points go below it).
pub async fn remapped_parent(
    up: &Upstream,
    snapshotter: &str,
    map: &IdMap,
    state_dir: &Path,
    chain: &str,
) -> Result<(String, Outcome), RemapError> {
    let name = map.remapped_name(chain);
    if existing(up, snapshotter, &name).await? {
        return Ok((name, Outcome::Existing));
    }
    let lock = lock_for(&name);
    let _held = lock.lock().await;
    if existing(up, snapshotter, &name).await? {
        return Ok((name, Outcome::Existing));
    }
    let lease = format!(
        "{SNAPSHOT_PREFIX}-{}",
        hex::encode(rand::random::<[u8; 16]>())
    );
    up.expiring_lease(&lease, chrono::Duration::minutes(LEASE_MINUTES))
        .await?;
    let remap = Remap {
        up,
        snapshotter,
        map,
        state_dir,
        chain,
        name: &name,
        lease: &lease,
    };
    let res = remap.make().await;
    if let Err(s) = up.drop_lease(&lease).await {
        // The lease expires by itself; the copy is referenced by its chain.
        eprintln!("berth-gateway: dropping lease {lease}: {}", s.message());
    }
    match res {
        Ok(shifted) => Ok((name, Outcome::Made(shifted))),
        // Another gateway of this namespace may have made it meanwhile.
        Err(e) => match existing(up, snapshotter, &name).await {
            Ok(true) => Ok((name, Outcome::Existing)),
            _ => Err(e),
        },
    }
}

/// Whether a committed `name` exists; anything else under it is an error
/// (nothing but the gateway makes names under the prefix).
async fn existing(up: &Upstream, snapshotter: &str, name: &str) -> Result<bool, RemapError> {
    match stat(up, snapshotter, name).await? {
        None => Ok(false),
        Some(info) if info.kind == Kind::Committed as i32 => Ok(true),
        Some(_) => Err(RemapError::Internal(format!(
            "snapshot {name} exists but is not committed"
        ))),
    }
}

/// One copy being made: what `make` and `shift_and_commit` both need.
struct Remap<'a> {
    up: &'a Upstream,
    snapshotter: &'a str,
    map: &'a IdMap,
    state_dir: &'a Path,
    chain: &'a str,
    /// The committed name of the copy.
    name: &'a str,
    /// The gateway's lease on the work in progress.
    lease: &'a str,
}

impl Remap<'_> {
    async fn make(&self) -> Result<shift::Shifted, RemapError> {
        let Remap {
            up,
            snapshotter,
            chain,
            lease,
            ..
        } = *self;
        let tmp_key = format!(
            "{SNAPSHOT_PREFIX}-tmp/{}",
            &lease[SNAPSHOT_PREFIX.len() + 1..]
        );
        let prepare = PrepareSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: tmp_key.clone(),
            parent: chain.to_string(),
            labels: HashMap::new(),
        };
        let mounts = up
            .snapshots()
            .prepare(up.request_leased(prepare, lease))
            .await?
            .into_inner()
            .mounts;
        let res = self.shift_and_commit(&tmp_key, mounts).await;
        if res.is_err() {
            let remove = RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: tmp_key,
            };
            let _ = up.snapshots().remove(up.request(remove)).await;
        }
        res
    }

    async fn shift_and_commit(
        &self,
        tmp_key: &str,
        mounts: Vec<containerd_client::types::Mount>,
    ) -> Result<shift::Shifted, RemapError> {
        let Remap {
            up,
            snapshotter,
            map,
            state_dir,
            chain,
            name,
            lease,
        } = *self;
        let target: PathBuf = state_dir
            .join(STATE_SUBDIR)
            .join("mnt")
            .join(&lease[SNAPSHOT_PREFIX.len() + 1..]);
        let map_copy = *map;
        let target_copy = target.clone();
        let shifted = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&target_copy)?;
            let res = mount::with_mount(&mounts, &target_copy, |root| {
                shift::shift_tree(root, &map_copy)
            });
            let _ = std::fs::remove_dir(&target_copy);
            res
        })
        .await
        .map_err(|e| internal("remap task", e))?
        .map_err(|e| internal(&format!("remapping {chain}"), e))?;

        let labels = HashMap::from([
            (
                LABEL_MAP.to_string(),
                format!("{}:{}:{}", map.uid, map.gid, map.size),
            ),
            (LABEL_CHAIN.to_string(), chain.to_string()),
        ]);
        let commit = CommitSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            name: name.to_string(),
            key: tmp_key.to_string(),
            labels,
        };
        up.snapshots()
            .commit(up.request_leased(commit, lease))
            .await?;
        // The chain keeps the copy: both go when the image's chain goes.
        let key = gc_label(snapshotter, map);
        let update = UpdateSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            info: Some(Info {
                name: chain.to_string(),
                labels: HashMap::from([(key.clone(), name.to_string())]),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![format!("labels.{key}")],
            }),
        };
        up.snapshots().update(up.request(update)).await?;
        Ok(shifted)
    }
}
