//! Writing blobs into the sandbox's content store under a lease.
//!
//! Every call carries the sandbox namespace (via `Upstream::request`) and the
//! load's lease, so containerd's GC keeps everything written so far until the
//! image records exist, and removes it if the load fails.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use containerd_client::services::v1::snapshots::RemoveSnapshotRequest;
use containerd_client::services::v1::{
    AbortRequest, AddResourceRequest, CreateRequest, DeleteRequest, Info, InfoRequest, Resource,
    UpdateRequest, WriteAction, WriteContentRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::Code;

use super::archive::Archive;
use super::plan::{Blob, Source};
use super::{invalid, upstream_error, LoadError};
use crate::upstream::Upstream;

/// The header containerd reads the lease from.
pub const LEASE_HEADER: &str = "containerd-lease";
/// A lease left behind (gateway killed mid-load) expires after this long.
const LEASE_LIFETIME_HOURS: i64 = 4;
const LABEL_GC_EXPIRE: &str = "containerd.io/gc.expire";
/// Chunk size of Content.Write messages (containerd accepts up to 16 MiB).
const WRITE_CHUNK: usize = 1 << 20;

/// One load's connection state: the lease and the extraction snapshots in
/// flight. Dropping it unfinished (the caller went away) still cleans up.
pub struct Session {
    up: Upstream,
    pub lease: String,
    pub snapshotter: String,
    extracting: Arc<Mutex<Vec<String>>>,
    finished: bool,
}

impl Session {
    pub async fn begin(up: &Upstream, snapshotter: &str) -> Result<Self, LoadError> {
        let lease = format!("berth-load-{:016x}", rand::random::<u64>());
        let expire = chrono::Utc::now() + chrono::Duration::hours(LEASE_LIFETIME_HOURS);
        let labels = HashMap::from([(
            LABEL_GC_EXPIRE.to_string(),
            expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )]);
        up.leases()
            .create(up.request(CreateRequest {
                id: lease.clone(),
                labels,
            }))
            .await
            .map_err(|s| upstream_error("creating a lease", s))?;
        Ok(Self {
            up: up.clone(),
            lease,
            snapshotter: snapshotter.to_string(),
            extracting: Arc::new(Mutex::new(Vec::new())),
            finished: false,
        })
    }

    pub fn upstream(&self) -> &Upstream {
        &self.up
    }

    /// A request pinned to the sandbox's namespace and this load's lease.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = self.up.request(message);
        let value: MetadataValue<_> = self.lease.parse().expect("lease ids are plain ASCII");
        req.metadata_mut().insert(LEASE_HEADER, value);
        req
    }

    /// Records an extraction snapshot so a failed or abandoned load removes it.
    pub fn track_extraction(&self, key: &str) {
        self.extracting
            .lock()
            .expect("not poisoned")
            .push(key.to_string());
    }

    pub fn untrack_extraction(&self, key: &str) {
        self.extracting
            .lock()
            .expect("not poisoned")
            .retain(|k| k != key);
    }

    /// Adds something that already existed to the lease, so GC cannot take
    /// it before the image records refer to it.
    pub async fn lease_resource(&self, kind: &str, id: &str) -> Result<(), LoadError> {
        let resource = Resource {
            id: id.to_string(),
            r#type: kind.to_string(),
        };
        self.up
            .leases()
            .add_resource(self.up.request(AddResourceRequest {
                id: self.lease.clone(),
                resource: Some(resource),
            }))
            .await
            .map_err(|s| upstream_error(&format!("leasing {id}"), s))?;
        Ok(())
    }

    /// Success: the image records now root everything, so the lease goes.
    /// Failing to delete it is harmless (it expires).
    pub async fn finish(mut self) {
        self.finished = true;
        let _ = self
            .up
            .leases()
            .delete(self.up.request(DeleteRequest {
                id: self.lease.clone(),
                sync: false,
            }))
            .await;
    }

    /// Failure: removes extraction snapshots and the lease, and has GC run
    /// before returning, so the partial blobs are gone when the error is seen.
    pub async fn abort(mut self) {
        self.finished = true;
        let keys = std::mem::take(&mut *self.extracting.lock().expect("not poisoned"));
        cleanup(
            self.up.clone(),
            self.lease.clone(),
            self.snapshotter.clone(),
            keys,
        )
        .await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The load future was dropped mid-way (client gone): clean up in
        // the background; the lease's expiry covers a gateway crash.
        let keys = std::mem::take(&mut *self.extracting.lock().expect("not poisoned"));
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(cleanup(
                self.up.clone(),
                self.lease.clone(),
                self.snapshotter.clone(),
                keys,
            ));
        }
    }
}

async fn cleanup(up: Upstream, lease: String, snapshotter: String, keys: Vec<String>) {
    for key in keys {
        let _ = up
            .snapshots()
            .remove(up.request(RemoveSnapshotRequest {
                snapshotter: snapshotter.clone(),
                key,
            }))
            .await;
    }
    let _ = up
        .leases()
        .delete(up.request(DeleteRequest {
            id: lease,
            sync: true,
        }))
        .await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Written,
    AlreadyPresent,
    /// Left out of the archive and taken from the sandbox's content store.
    FromSandbox,
}

/// Stores `blob` unless the namespace already has it; either way it ends
/// up leased and carrying `blob.labels`. A blob the archive leaves out
/// (`Source::Sandbox`) must be in the namespace already.
pub async fn store(s: &Session, archive: &Arc<Archive>, blob: &Blob) -> Result<Stored, LoadError> {
    if matches!(blob.source, Source::Sandbox) {
        return take_from_sandbox(s, blob).await;
    }
    if let Some(info) = info(s, &blob.digest.to_string()).await? {
        adopt(s, blob, &info).await?;
        return Ok(Stored::AlreadyPresent);
    }
    let reference = format!("{}-{}", s.lease, blob.digest.hex());
    match write(s, archive, blob, &reference).await {
        Ok(()) => Ok(Stored::Written),
        // Someone committed the same blob meanwhile; containerd has leased
        // it to us already (the write named the expected digest).
        Err(LoadError::Upstream(status)) if status.code() == Code::AlreadyExists => {
            let info = info(s, &blob.digest.to_string()).await?.ok_or_else(|| {
                LoadError::Upstream(tonic::Status::internal(format!(
                    "blob {} vanished while writing",
                    blob.digest
                )))
            })?;
            adopt(s, blob, &info).await?;
            Ok(Stored::AlreadyPresent)
        }
        Err(e) => {
            let _ = s
                .upstream()
                .content()
                .abort(s.request(AbortRequest { r#ref: reference }))
                .await;
            Err(e)
        }
    }
}

/// A blob left out of the archive. The lease is taken before looking, so
/// GC cannot collect it between the check and the image records. Every call
/// is pinned to the sandbox's namespace and containerd isolates content per
/// namespace, so an archive can name only blobs this sandbox already has.
async fn take_from_sandbox(s: &Session, blob: &Blob) -> Result<Stored, LoadError> {
    s.lease_resource("content", blob.digest.as_str()).await?;
    let Some(info) = info(s, blob.digest.as_str()).await? else {
        return Err(invalid(format!(
            "blob {} is neither in the archive nor in the sandbox",
            blob.digest
        )));
    };
    if info.size != blob.size as i64 {
        return Err(invalid(format!(
            "blob {} is {} bytes in the sandbox, its descriptor says {}",
            blob.digest, info.size, blob.size
        )));
    }
    let missing: BTreeMap<String, String> = blob
        .labels
        .iter()
        .filter(|(k, v)| info.labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    set_labels(s, blob.digest.as_str(), &missing).await?;
    Ok(Stored::FromSandbox)
}

pub async fn info(s: &Session, digest: &str) -> Result<Option<Info>, LoadError> {
    match s
        .upstream()
        .content()
        .info(s.request(InfoRequest {
            digest: digest.to_string(),
        }))
        .await
    {
        Ok(resp) => Ok(resp.into_inner().info),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(upstream_error(&format!("looking up blob {digest}"), status)),
    }
}

/// Takes an existing blob into this load: same size, leased, labelled.
async fn adopt(s: &Session, blob: &Blob, info: &Info) -> Result<(), LoadError> {
    if info.size != blob.size as i64 {
        return Err(invalid(format!(
            "blob {} is {} bytes in the archive but {} bytes in the content store",
            blob.digest, blob.size, info.size
        )));
    }
    s.lease_resource("content", blob.digest.as_str()).await?;
    let missing: BTreeMap<String, String> = blob
        .labels
        .iter()
        .filter(|(k, v)| info.labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    set_labels(s, blob.digest.as_str(), &missing).await
}

/// Sets labels on a committed blob, leaving its other labels alone.
pub async fn set_labels(
    s: &Session,
    digest: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), LoadError> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    let info = Info {
        digest: digest.to_string(),
        labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ..Default::default()
    };
    s.upstream()
        .content()
        .update(s.request(UpdateRequest {
            info: Some(info),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .map_err(|st| upstream_error(&format!("labelling blob {digest}"), st))?;
    Ok(())
}

/// Content.Write, lock-step: Stat, one Write per chunk, Commit with the
/// expected digest and size. Bytes from the archive are hashed as they are
/// read and Commit is sent only if they match, so a lying archive never
/// reaches the store (containerd checks the digest again at Commit).
async fn write(
    s: &Session,
    archive: &Arc<Archive>,
    blob: &Blob,
    reference: &str,
) -> Result<(), LoadError> {
    let context = || format!("writing blob {}", blob.digest);
    let (tx, rx) = mpsc::channel::<WriteContentRequest>(2);
    let base = WriteContentRequest {
        r#ref: reference.to_string(),
        total: blob.size as i64,
        expected: blob.digest.to_string(),
        ..Default::default()
    };
    // containerd answers the call only after the first message.
    tx.send(WriteContentRequest {
        action: WriteAction::Stat as i32,
        ..base.clone()
    })
    .await
    .expect("receiver alive");
    let mut responses = s
        .upstream()
        .content()
        .write(s.request(ReceiverStream::new(rx)))
        .await
        .map_err(|st| upstream_error(&context(), st))?
        .into_inner();
    next_response(&mut responses, &context).await?;

    let mut chunks = read_chunks(archive, blob);
    let mut offset: i64 = 0;
    while let Some(chunk) = chunks.recv().await {
        let data = chunk?;
        let len = data.len() as i64;
        let msg = WriteContentRequest {
            action: WriteAction::Write as i32,
            offset,
            data,
            ..base.clone()
        };
        if tx.send(msg).await.is_err() {
            next_response(&mut responses, &context).await?;
            return Err(upstream_error(
                &context(),
                tonic::Status::aborted("write stream closed"),
            ));
        }
        let resp = next_response(&mut responses, &context).await?;
        offset += len;
        if resp.offset != offset {
            return Err(upstream_error(
                &context(),
                tonic::Status::data_loss(format!(
                    "containerd is at offset {}, expected {offset}",
                    resp.offset
                )),
            ));
        }
    }
    if offset != blob.size as i64 {
        return Err(invalid(format!(
            "blob {} ended after {offset} of {} bytes",
            blob.digest, blob.size
        )));
    }
    let commit = WriteContentRequest {
        action: WriteAction::Commit as i32,
        offset,
        labels: blob
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..base.clone()
    };
    if tx.send(commit).await.is_err() {
        next_response(&mut responses, &context).await?;
        return Err(upstream_error(
            &context(),
            tonic::Status::aborted("write stream closed"),
        ));
    }
    let resp = next_response(&mut responses, &context).await?;
    if resp.digest != blob.digest.as_str() {
        return Err(upstream_error(
            &context(),
            tonic::Status::data_loss(format!("containerd committed {}", resp.digest)),
        ));
    }
    Ok(())
}

async fn next_response(
    responses: &mut tonic::Streaming<containerd_client::services::v1::WriteContentResponse>,
    context: &impl Fn() -> String,
) -> Result<containerd_client::services::v1::WriteContentResponse, LoadError> {
    match responses.message().await {
        Ok(Some(resp)) => Ok(resp),
        Ok(None) => Err(upstream_error(
            &context(),
            tonic::Status::aborted("containerd ended the write early"),
        )),
        Err(status) if status.code() == Code::AlreadyExists => Err(LoadError::Upstream(status)),
        Err(status) => Err(upstream_error(&context(), status)),
    }
}

/// Reads a blob's bytes on a blocking thread, verifying the digest; the
/// last item is an error if they do not match.
fn read_chunks(archive: &Arc<Archive>, blob: &Blob) -> mpsc::Receiver<Result<Vec<u8>, LoadError>> {
    let (tx, rx) = mpsc::channel(2);
    match &blob.source {
        Source::Bytes(bytes) => {
            let bytes = bytes.to_vec();
            tokio::spawn(async move {
                for chunk in bytes.chunks(WRITE_CHUNK) {
                    if tx.send(Ok(chunk.to_vec())).await.is_err() {
                        return;
                    }
                }
            });
        }
        Source::Sandbox => {
            // `store` never writes these; refuse rather than write nothing.
            let digest = blob.digest.clone();
            tokio::spawn(async move {
                let _ = tx
                    .send(Err(invalid(format!("blob {digest} is not in the archive"))))
                    .await;
            });
        }
        Source::Archive(loc) => {
            let (archive, loc, digest) = (archive.clone(), *loc, blob.digest.clone());
            tokio::task::spawn_blocking(move || {
                let result = archive.copy_verified(loc, &digest, |chunk| {
                    for piece in chunk.chunks(WRITE_CHUNK) {
                        // The writer gave up: stop reading.
                        tx.blocking_send(Ok(piece.to_vec()))
                            .map_err(|_| invalid("load cancelled"))?;
                    }
                    Ok(())
                });
                if let Err(e) = result {
                    let _ = tx.blocking_send(Err(e));
                }
            });
        }
    }
    rx
}
