//! The `export` store: what BuildKit's image exporter writes with
//! `tar=false`, minus what the sandbox already has.
//!
//! The write protocol is containerd's `Content.Write` as its proxy client
//! drives it: the first message names the ref (and usually the expected
//! digest and size), `STAT` reports the offset, `WRITE`s append at the
//! current offset, `COMMIT` checks size and digest. Answering the first
//! message with `AlreadyExists` makes the client skip the blob.

use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::BTreeSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::WriteAction;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use super::named::valid_digest;
use super::{BoxStream, StoreError};
use crate::client::Gateway;

/// Most bytes one build may spool: the gateway refuses larger archives.
pub const MAX_EXPORT_BYTES: u64 = 8 << 30;
/// Size of the pieces `Read` answers with.
const READ_CHUNK: usize = 1 << 20;

/// A handle on the export store; clones share it. The spool directory is
/// removed when the last handle goes.
#[derive(Clone)]
pub struct ExportStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    lookup: Lookup,
    state: Mutex<State>,
}

/// Where "does the sandbox have it" is asked.
pub(super) enum Lookup {
    Gateway(ContentClient<Channel>),
    /// Digests and sizes the sandbox is taken to hold (tests).
    #[cfg(test)]
    Fixed(BTreeMap<String, i64>),
}

#[derive(Default)]
struct State {
    /// Committed blobs: digest → size.
    blobs: BTreeMap<String, i64>,
    /// Digests BuildKit was told to skip because the sandbox has them,
    /// with their size in the sandbox.
    in_sandbox: BTreeMap<String, i64>,
    /// Ingests in progress, by ref.
    writing: BTreeMap<String, Ingest>,
    /// Bytes written so far, aborted ingests included.
    spooled: u64,
    next_id: u64,
}

#[derive(Clone)]
struct Ingest {
    id: u64,
    path: PathBuf,
    offset: i64,
    total: i64,
    expected: String,
    started: SystemTime,
    updated: SystemTime,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn already_exists(digest: &str) -> Status {
    Status::already_exists(format!("content {digest}: already exists"))
}

impl ExportStore {
    /// A fresh store spooling to a private directory under the system's
    /// temporary directory; the sandbox is asked through the gateway.
    pub fn new(gw: &Gateway) -> Result<Self, StoreError> {
        Self::with_lookup(
            &std::env::temp_dir(),
            Lookup::Gateway(ContentClient::new(gw.channel.clone())),
        )
    }

    pub(super) fn with_lookup(parent: &Path, lookup: Lookup) -> Result<Self, StoreError> {
        let dir = parent.join(format!("berth-export-{:016x}", rand::random::<u64>()));
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o700);
        b.create(&dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let inner = Inner {
            dir,
            lookup,
            state: Mutex::new(State::default()),
        };
        for sub in ["blobs/sha256", "ingest"] {
            let path = inner.dir.join(sub);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        }
        Ok(ExportStore {
            inner: Arc::new(inner),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("not poisoned")
    }

    /// Where a committed blob is.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.inner.dir.join("blobs/sha256").join(hex)
    }

    /// The committed blobs (digest → size).
    pub fn blobs(&self) -> BTreeMap<String, i64> {
        self.state().blobs.clone()
    }

    /// Digests BuildKit skipped because the sandbox has them.
    #[cfg(test)]
    pub fn skipped(&self) -> BTreeSet<String> {
        self.state().in_sandbox.keys().cloned().collect()
    }

    /// The size of `digest` if BuildKit skipped it because the sandbox has
    /// it: an early import reads such a document back from the sandbox.
    pub(super) fn skipped_size(&self, digest: &str) -> Option<i64> {
        self.state().in_sandbox.get(digest).copied()
    }

    pub(super) fn channel(&self) -> Option<ContentClient<Channel>> {
        match &self.inner.lookup {
            Lookup::Gateway(c) => Some(c.clone()),
            #[cfg(test)]
            Lookup::Fixed(_) => None,
        }
    }

    /// The size of `digest` in the sandbox if it holds it (of `size`
    /// bytes, when known).
    async fn sandbox_size(&self, digest: &str, size: i64) -> Result<Option<i64>, Status> {
        let found = match &self.inner.lookup {
            Lookup::Gateway(client) => {
                let mut c = client.clone();
                let req = api::InfoRequest {
                    digest: digest.to_string(),
                };
                match c.info(req).await {
                    Ok(r) => r.into_inner().info.map(|i| i.size),
                    Err(s) if s.code() == tonic::Code::NotFound => None,
                    // Not Unavailable: containerd's client retries that
                    // code forever, taking it for a locked ref.
                    Err(s) => {
                        return Err(Status::internal(format!(
                            "looking up {digest} in the sandbox: {}",
                            s.message()
                        )))
                    }
                }
            }
            #[cfg(test)]
            Lookup::Fixed(m) => m.get(digest).copied(),
        };
        Ok(found.filter(|&s| size <= 0 || s == size))
    }

    pub(super) fn info(&self, digest: &str) -> Result<api::Info, Status> {
        match self.state().blobs.get(digest) {
            Some(&size) => Ok(api::Info {
                digest: digest.to_string(),
                size,
                ..Default::default()
            }),
            None => Err(Status::not_found(format!("content {digest}: not found"))),
        }
    }

    pub(super) fn list(&self) -> Vec<api::Info> {
        self.state()
            .blobs
            .iter()
            .map(|(d, &size)| api::Info {
                digest: d.clone(),
                size,
                ..Default::default()
            })
            .collect()
    }

    pub(super) fn read(
        &self,
        req: api::ReadContentRequest,
    ) -> Result<BoxStream<api::ReadContentResponse>, Status> {
        let size = self.info(&req.digest)?.size;
        if req.offset < 0 || req.offset > size || req.size < 0 {
            return Err(Status::out_of_range(format!(
                "reading {} at {} (+{}) of {size} bytes",
                req.digest, req.offset, req.size
            )));
        }
        let end = if req.size == 0 {
            size
        } else {
            (req.offset + req.size).min(size)
        };
        let path = self.blob_path(&req.digest);
        let (tx, rx) = mpsc::channel(2);
        let start = req.offset;
        tokio::spawn(async move {
            let result = async {
                let mut f = tokio::fs::File::open(&path).await?;
                f.seek(std::io::SeekFrom::Start(start as u64)).await?;
                let mut at = start;
                while at < end {
                    let n = ((end - at) as usize).min(READ_CHUNK);
                    let mut buf = vec![0u8; n];
                    f.read_exact(&mut buf).await?;
                    let msg = api::ReadContentResponse {
                        offset: at,
                        data: buf,
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        break;
                    }
                    at += n as i64;
                }
                Ok::<_, std::io::Error>(())
            }
            .await;
            if let Err(e) = result {
                let _ = tx
                    .send(Err(Status::internal(format!("reading the spool: {e}"))))
                    .await;
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    pub(super) fn status(&self, r: &str) -> Result<api::Status, Status> {
        self.state()
            .writing
            .get(r)
            .map(|i| status_of(r, i))
            .ok_or_else(|| Status::not_found(format!("ref {r}: not found")))
    }

    pub(super) fn statuses(&self) -> Vec<api::Status> {
        self.state()
            .writing
            .iter()
            .map(|(r, i)| status_of(r, i))
            .collect()
    }

    pub(super) fn abort(&self, r: &str) -> Result<(), Status> {
        let ingest = self.state().writing.remove(r);
        match ingest {
            Some(i) => {
                let _ = std::fs::remove_file(&i.path);
                Ok(())
            }
            None => Err(Status::not_found(format!("ref {r}: not found"))),
        }
    }

    /// Serves one `Write` stream. The first message decides: a blob the
    /// store or the sandbox has is answered `AlreadyExists`, a ref being
    /// written by another stream `Unavailable` (the client retries, as
    /// containerd's store answers for a locked ref).
    pub(super) async fn write(
        &self,
        mut inbound: Streaming<api::WriteContentRequest>,
    ) -> Result<BoxStream<api::WriteContentResponse>, Status> {
        let first = inbound.message().await?.ok_or_else(|| {
            Status::invalid_argument("write stream ended before its first message")
        })?;
        let mut writer = self.open(&first).await?;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut next = Some(first);
            loop {
                let msg = match next.take() {
                    Some(m) => m,
                    None => match inbound.message().await {
                        Ok(Some(m)) => m,
                        // The client went away: the ingest is dropped.
                        Ok(None) | Err(_) => break,
                    },
                };
                let commit = msg.action == WriteAction::Commit as i32;
                let result = writer.handle(msg).await;
                let failed = result.is_err();
                if tx.send(result).await.is_err() || failed || commit {
                    break;
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn open(&self, first: &api::WriteContentRequest) -> Result<Writer, Status> {
        let r = first.r#ref.clone();
        if r.is_empty() {
            return Err(Status::invalid_argument(
                "first message must have a reference",
            ));
        }
        let expected = first.expected.clone();
        if !expected.is_empty() {
            if !valid_digest(&expected) {
                return Err(Status::invalid_argument(format!(
                    "expected digest {expected:?} is not sha256:<64 lowercase hex>"
                )));
            }
            if self.state().blobs.contains_key(&expected) {
                return Err(already_exists(&expected));
            }
            if let Some(size) = self.sandbox_size(&expected, first.total).await? {
                self.state().in_sandbox.insert(expected.clone(), size);
                return Err(already_exists(&expected));
            }
        }
        let mut st = self.state();
        if st.writing.contains_key(&r) {
            return Err(Status::unavailable(format!("ref {r} locked")));
        }
        st.next_id += 1;
        let id = st.next_id;
        let path = self.inner.dir.join("ingest").join(id.to_string());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Status::internal(format!("creating the spool file for {r}: {e}")))?;
        let now = SystemTime::now();
        st.writing.insert(
            r.clone(),
            Ingest {
                id,
                path: path.clone(),
                offset: 0,
                total: first.total.max(0),
                expected,
                started: now,
                updated: now,
            },
        );
        Ok(Writer {
            store: self.clone(),
            r#ref: r,
            id,
            file: tokio::fs::File::from_std(file),
            hasher: Sha256::new(),
            done: false,
        })
    }
}

fn status_of(r: &str, i: &Ingest) -> api::Status {
    api::Status {
        started_at: Some(i.started.into()),
        updated_at: Some(i.updated.into()),
        r#ref: r.to_string(),
        offset: i.offset,
        total: i.total,
        expected: i.expected.clone(),
    }
}

/// One ingest, owned by its stream's task. Dropped uncommitted, its file
/// and its ref go.
struct Writer {
    store: ExportStore,
    r#ref: String,
    id: u64,
    file: tokio::fs::File,
    hasher: Sha256,
    done: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.store.state();
        if st.writing.get(&self.r#ref).is_some_and(|i| i.id == self.id) {
            if let Some(i) = st.writing.remove(&self.r#ref) {
                let _ = std::fs::remove_file(i.path);
            }
        }
    }
}

impl Writer {
    /// This ingest's record, unless it was aborted meanwhile.
    fn ingest(&self) -> Result<Ingest, Status> {
        match self.store.state().writing.get(&self.r#ref) {
            Some(i) if i.id == self.id => Ok(i.clone()),
            _ => Err(Status::not_found(format!("ref {} was aborted", self.r#ref))),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Ingest)) {
        if let Some(i) = self.store.state().writing.get_mut(&self.r#ref) {
            if i.id == self.id {
                f(i);
                i.updated = SystemTime::now();
            }
        }
    }

    fn response(
        &self,
        action: WriteAction,
        i: &Ingest,
        digest: String,
    ) -> api::WriteContentResponse {
        api::WriteContentResponse {
            action: action as i32,
            started_at: Some(i.started.into()),
            updated_at: Some(i.updated.into()),
            offset: i.offset,
            total: i.total,
            digest,
        }
    }

    async fn handle(
        &mut self,
        msg: api::WriteContentRequest,
    ) -> Result<api::WriteContentResponse, Status> {
        let mut ingest = self.ingest()?;
        if msg.total > 0 {
            ingest.total = msg.total;
        }
        if !msg.expected.is_empty() {
            if !valid_digest(&msg.expected) {
                return Err(Status::invalid_argument(format!(
                    "expected digest {:?} is not sha256:<64 lowercase hex>",
                    msg.expected
                )));
            }
            ingest.expected = msg.expected.clone();
        }
        let action = WriteAction::try_from(msg.action).map_err(|_| {
            Status::invalid_argument(format!("unknown write action {}", msg.action))
        })?;
        match action {
            WriteAction::Stat => {}
            WriteAction::Write => self.append(&mut ingest, &msg).await?,
            WriteAction::Commit => {
                let digest = self.commit(&ingest).await?;
                return Ok(self.response(action, &ingest, digest));
            }
        }
        let (total, expected, offset) = (ingest.total, ingest.expected.clone(), ingest.offset);
        self.update(|i| {
            i.total = total;
            i.expected = expected;
            i.offset = offset;
        });
        let ingest = self.ingest()?;
        Ok(self.response(action, &ingest, String::new()))
    }

    async fn append(
        &mut self,
        ingest: &mut Ingest,
        msg: &api::WriteContentRequest,
    ) -> Result<(), Status> {
        let io = |e: std::io::Error| Status::internal(format!("spooling {}: {e}", self.r#ref));
        if msg.offset != ingest.offset {
            // Starting over is the one rewind containerd's stores allow.
            if msg.offset != 0 {
                return Err(Status::out_of_range(format!(
                    "write of {} at offset {}, the ingest is at {}",
                    self.r#ref, msg.offset, ingest.offset
                )));
            }
            self.file.set_len(0).await.map_err(io)?;
            self.file
                .seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(io)?;
            self.hasher = Sha256::new();
            ingest.offset = 0;
        }
        let len = msg.data.len() as i64;
        if ingest.total > 0 && ingest.offset + len > ingest.total {
            return Err(Status::invalid_argument(format!(
                "write of {} goes past its size of {} bytes",
                self.r#ref, ingest.total
            )));
        }
        {
            let mut st = self.store.state();
            st.spooled += len as u64;
            if st.spooled > MAX_EXPORT_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "the exported image is larger than {} GiB",
                    MAX_EXPORT_BYTES >> 30
                )));
            }
        }
        self.file.write_all(&msg.data).await.map_err(io)?;
        self.hasher.update(&msg.data);
        ingest.offset += len;
        Ok(())
    }

    /// Checks size and digest, then moves the file into the store. Errors
    /// use containerd's codes, which its client acts on.
    async fn commit(&mut self, ingest: &Ingest) -> Result<String, Status> {
        self.file
            .flush()
            .await
            .map_err(|e| Status::internal(format!("spooling {}: {e}", self.r#ref)))?;
        if ingest.total > 0 && ingest.offset != ingest.total {
            return Err(Status::failed_precondition(format!(
                "unexpected commit size {}, expected {}",
                ingest.offset, ingest.total
            )));
        }
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if !ingest.expected.is_empty() && digest != ingest.expected {
            return Err(Status::failed_precondition(format!(
                "unexpected commit digest {digest}, expected {}",
                ingest.expected
            )));
        }
        let target = self.store.blob_path(&digest);
        let mut st = self.store.state();
        st.writing.remove(&self.r#ref);
        self.done = true;
        if st.blobs.contains_key(&digest) {
            let _ = std::fs::remove_file(&ingest.path);
            return Err(already_exists(&digest));
        }
        std::fs::rename(&ingest.path, &target)
            .map_err(|e| Status::internal(format!("storing {digest}: {e}")))?;
        st.blobs.insert(digest.clone(), ingest.offset);
        Ok(digest)
    }
}
