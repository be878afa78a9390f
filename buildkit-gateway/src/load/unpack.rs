//! Unpacking layers into snapshots, done by the gateway itself (boundary
//! rule 5): the mounts come from the gateway's own Prepare and go straight
//! to Diff.Apply; no client ever supplies or sees them.

use std::collections::BTreeMap;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::ApplyRequest;
use containerd_client::types::Descriptor as WireDescriptor;
use sha2::{Digest as _, Sha256};
use tonic::Code;

use super::content::{set_labels, Session};
use super::oci::Digest;
use super::plan::{Layer, Unpack};
use super::{invalid, progress_line, upstream_error, LoadError};

/// The chain IDs of a stack of layers: the first is its diff_id, each next
/// one `sha256("<parent chain id> <diff_id>")` (OCI image spec, "ChainID").
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => {
                Digest::from_sha256(Sha256::digest(format!("{parent} {diff_id}").as_bytes()).into())
            }
        };
        out.push(next);
    }
    out
}

/// GC label on a config naming the top snapshot of its unpacked layers.
pub fn snapshot_gc_label(snapshotter: &str) -> String {
    format!("containerd.io/gc.ref.snapshot.{snapshotter}")
}

/// Unpacks `unpack`'s layers into committed snapshots named by chain ID,
/// then labels the config so the snapshots live as long as the image.
pub async fn unpack(
    s: &Session,
    unpack: &Unpack,
    progress: &tokio::sync::mpsc::Sender<String>,
) -> Result<(), LoadError> {
    let diff_ids: Vec<Digest> = unpack.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chain = chain_ids(&diff_ids);
    let total = unpack.layers.len();
    for (i, layer) in unpack.layers.iter().enumerate() {
        let parent = if i == 0 {
            String::new()
        } else {
            chain[i - 1].to_string()
        };
        let outcome = if snapshot_exists(s, chain[i].as_str()).await? {
            s.lease_resource(&format!("snapshots/{}", s.snapshotter), chain[i].as_str())
                .await?;
            "already unpacked"
        } else {
            apply_layer(s, layer, chain[i].as_str(), &parent).await?;
            "unpacked"
        };
        progress_line(
            progress,
            format!(
                "Unpacking layer {} {}/{total} ({outcome})",
                layer.digest.short(),
                i + 1
            ),
        )
        .await;
    }
    if let Some(top) = chain.last() {
        let labels = BTreeMap::from([(snapshot_gc_label(&s.snapshotter), top.to_string())]);
        set_labels(s, unpack.config.as_str(), &labels).await?;
    }
    Ok(())
}

async fn snapshot_exists(s: &Session, key: &str) -> Result<bool, LoadError> {
    let req = StatSnapshotRequest {
        snapshotter: s.snapshotter.clone(),
        key: key.to_string(),
    };
    match s.upstream().snapshots().stat(s.request(req)).await {
        Ok(_) => Ok(true),
        Err(status) if status.code() == Code::NotFound => Ok(false),
        Err(status) => Err(upstream_error(
            &format!("looking up snapshot {key}"),
            status,
        )),
    }
}

/// Prepare → Diff.Apply → check the diff_id → Commit under the chain ID.
/// The extraction snapshot is removed if any step fails.
async fn apply_layer(
    s: &Session,
    layer: &Layer,
    chain_id: &str,
    parent: &str,
) -> Result<(), LoadError> {
    let key = format!("berth-extract-{:016x}-{chain_id}", rand::random::<u64>());
    s.track_extraction(&key);
    let result = apply_into(s, layer, chain_id, parent, &key).await;
    match &result {
        Ok(Committed::Yes) => {}
        // Failed, or another load committed the same chain first.
        Ok(Committed::AlreadyThere) | Err(_) => {
            let _ = s
                .upstream()
                .snapshots()
                .remove(s.request(RemoveSnapshotRequest {
                    snapshotter: s.snapshotter.clone(),
                    key: key.clone(),
                }))
                .await;
        }
    }
    s.untrack_extraction(&key);
    if let Ok(Committed::AlreadyThere) = result {
        s.lease_resource(&format!("snapshots/{}", s.snapshotter), chain_id)
            .await?;
    }
    result.map(|_| ())
}

enum Committed {
    Yes,
    AlreadyThere,
}

async fn apply_into(
    s: &Session,
    layer: &Layer,
    chain_id: &str,
    parent: &str,
    key: &str,
) -> Result<Committed, LoadError> {
    let snaps = || s.upstream().snapshots();
    let prepare = PrepareSnapshotRequest {
        snapshotter: s.snapshotter.clone(),
        key: key.to_string(),
        parent: parent.to_string(),
        labels: Default::default(),
    };
    let mounts = snaps()
        .prepare(s.request(prepare))
        .await
        .map_err(|st| {
            upstream_error(
                &format!("preparing snapshot for layer {}", layer.digest),
                st,
            )
        })?
        .into_inner()
        .mounts;

    let diff = WireDescriptor {
        media_type: layer.media_type.clone(),
        digest: layer.digest.to_string(),
        size: layer.size as i64,
        annotations: Default::default(),
    };
    let apply = ApplyRequest {
        diff: Some(diff),
        mounts,
        payloads: Default::default(),
        sync_fs: false,
    };
    let applied = s
        .upstream()
        .diff()
        .apply(s.request(apply))
        .await
        .map_err(|st| upstream_error(&format!("unpacking layer {}", layer.digest), st))?
        .into_inner()
        .applied
        .ok_or_else(|| {
            upstream_error(
                &format!("unpacking layer {}", layer.digest),
                tonic::Status::internal("no result"),
            )
        })?;
    if applied.digest != layer.diff_id.as_str() {
        return Err(invalid(format!(
            "layer {} unpacks to {}, but the config lists diff_id {}",
            layer.digest, applied.digest, layer.diff_id
        )));
    }

    let commit = CommitSnapshotRequest {
        snapshotter: s.snapshotter.clone(),
        name: chain_id.to_string(),
        key: key.to_string(),
        labels: Default::default(),
    };
    match snaps().commit(s.request(commit)).await {
        Ok(_) => Ok(Committed::Yes),
        Err(status) if status.code() == Code::AlreadyExists => Ok(Committed::AlreadyThere),
        Err(status) => Err(upstream_error(
            &format!("committing snapshot {chain_id}"),
            status,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = Digest::of(b"layer a");
        let b = Digest::of(b"layer b");
        let c = Digest::of(b"layer c");
        let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert_eq!(chain[2], Digest::of(format!("{} {c}", chain[1]).as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn chain_id_matches_a_known_value() {
        // printf 'sha256:<64×a> sha256:<64×b>' | sha256sum
        let a = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        assert_eq!(
            chain_ids(&[a, b])[1].as_str(),
            "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
        );
    }
}
