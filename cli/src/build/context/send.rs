//! `FileSync/DiffCopy`: the sender side of fsutil's protocol, serving the
//! build context and the Dockerfile.
//!
//! The conversation, as BuildKit's receiver expects it: the sender streams a
//! STAT packet per entry (its ID is its index in the walk) and an empty STAT
//! to end the list; the receiver compares each stat with its cache and sends
//! REQ packets only for files it lacks; each requested file goes back as
//! DATA packets ending with an empty one; the receiver's FIN is answered
//! with FIN and the call ends.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_proto::buildkit::filesync::file_sync_server::{FileSync, FileSyncServer};
use berth_proto::buildkit::fsutil::packet::PacketType;
use berth_proto::buildkit::fsutil::Packet;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::walker::{walk, Filter};
use super::{gomode, metadata_values, ContextError, LocalDirs, TransferCount, TransferStats};

/// Metadata keys of a FileSync call (BuildKit's session/filesync).
const KEY_DIR_NAME: &str = "dir-name";
const KEY_INCLUDE: &str = "include-patterns";
const KEY_EXCLUDE: &str = "exclude-patterns";
const KEY_FOLLOW: &str = "followpaths";

/// Size of the DATA chunks, fsutil's copy buffer.
const CHUNK: usize = 32 * 1024;
/// Files read at once, as fsutil's four send workers.
const PARALLEL_FILES: usize = 4;

type Out = mpsc::Sender<Result<Packet, Status>>;

/// The `FileSync` service serving `dirs`, counting what it sends in `stats`.
pub fn file_sync(dirs: LocalDirs, stats: TransferStats) -> FileSyncServer<impl FileSync> {
    FileSyncServer::new(Sync { dirs, stats })
}

struct Sync {
    dirs: LocalDirs,
    stats: TransferStats,
}

/// What one DiffCopy call asks for, from its metadata.
#[derive(Debug, PartialEq)]
struct TransferRequest {
    dir_name: String,
    include: Vec<String>,
    exclude: Vec<String>,
    follow: Vec<String>,
}

impl TransferRequest {
    fn decode(md: &tonic::metadata::MetadataMap) -> Self {
        Self {
            dir_name: metadata_values(md, KEY_DIR_NAME)
                .into_iter()
                .next()
                .unwrap_or_default(),
            include: metadata_values(md, KEY_INCLUDE),
            exclude: metadata_values(md, KEY_EXCLUDE),
            follow: metadata_values(md, KEY_FOLLOW),
        }
    }
}

impl Sync {
    /// Decides the request (an unknown directory is refused before anything
    /// is read) and starts the transfer.
    async fn start<S>(
        &self,
        request: Request<S>,
    ) -> Result<Response<ReceiverStream<Result<Packet, Status>>>, Status>
    where
        S: Stream<Item = Result<Packet, Status>> + Unpin + Send + 'static,
    {
        let req = TransferRequest::decode(request.metadata());
        let Some(root) = self.dirs.get(&req.dir_name).cloned() else {
            return Err(Status::not_found(format!(
                "no access allowed to dir {:?}",
                req.dir_name
            )));
        };
        let filter = {
            let root = root.clone();
            tokio::task::spawn_blocking(move || {
                Filter::new(&root, &req.include, &req.exclude, &req.follow)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::invalid_argument(e.to_string()))?
        };
        let (tx, rx) = mpsc::channel(1024);
        let count = self.stats.begin(&req.dir_name);
        let incoming = request.into_inner();
        tokio::spawn(async move {
            let out = tx.clone();
            let res = send_tree(root, filter, incoming, tx, count.clone()).await;
            count.finish();
            if let Err(e) = res {
                fail(&out, &e.to_string()).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl FileSync for Sync {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;
    type TarStreamStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        self.start(request).await
    }

    /// BuildKit's client side negotiates only `diffcopy`; the tar protocol
    /// is never asked for.
    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "tarstream is not served, use diffcopy",
        ))
    }
}

/// Tells the receiver the transfer failed: an ERR packet (which fsutil
/// reports as `error from sender: …`), then the call's status.
async fn fail(out: &Out, message: &str) {
    let _ = out
        .send(Ok(Packet {
            r#type: PacketType::PacketErr as i32,
            data: message.as_bytes().to_vec(),
            ..Packet::default()
        }))
        .await;
    let _ = out.send(Err(Status::unknown(message.to_string()))).await;
}

/// Runs one DiffCopy: walks `root` through `filter`, answers the requests
/// arriving on `incoming`, writes every packet to `out`.
pub(crate) async fn send_tree<S>(
    root: PathBuf,
    filter: Filter,
    mut incoming: S,
    out: Out,
    stats: TransferCount,
) -> Result<(), ContextError>
where
    S: Stream<Item = Result<Packet, Status>> + Unpin + Send,
{
    // ID → file, for regular files only: nothing else can be requested
    let files: Arc<Mutex<HashMap<u32, PathBuf>>> = Arc::default();

    let mut walker = {
        let files = Arc::clone(&files);
        let out = out.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ContextError> {
            let mut id: u32 = 0;
            walk(&root, &filter, &mut |entry| {
                if gomode::is_regular(entry.stat.mode) {
                    files.lock().expect("file table").insert(id, entry.source);
                }
                id += 1;
                let packet = Packet {
                    r#type: PacketType::PacketStat as i32,
                    stat: Some(entry.stat),
                    ..Packet::default()
                };
                out.blocking_send(Ok(packet)).map_err(|_| gone())
            })?;
            out.blocking_send(Ok(Packet {
                r#type: PacketType::PacketStat as i32,
                ..Packet::default()
            }))
            .map_err(|_| gone())
        })
    };
    let mut walk_done = false;
    let (err_tx, mut err_rx) = mpsc::channel::<ContextError>(1);
    let mut readers: Option<Readers> = None;

    loop {
        tokio::select! {
            res = &mut walker, if !walk_done => {
                walk_done = true;
                res.map_err(|e| ContextError::Protocol(format!("walking the context: {e}")))??;
            }
            Some(e) = err_rx.recv() => return Err(e),
            msg = incoming.next() => {
                let packet = match msg {
                    Some(Ok(p)) => p,
                    Some(Err(status)) => return Err(ContextError::Protocol(format!("receiving from the daemon: {}", status.message()))),
                    None => return Err(ContextError::Protocol("the daemon closed the transfer before it finished".into())),
                };
                match PacketType::try_from(packet.r#type) {
                    Ok(PacketType::PacketReq) => {
                        let source = files.lock().expect("file table").remove(&packet.id);
                        let Some(source) = source else {
                            return Err(ContextError::Protocol(format!("invalid file id {}", packet.id)));
                        };
                        // queued, not awaited here: this loop must keep
                        // reading, or a receiver that blocks on sending its
                        // requests while we block on sending data deadlocks
                        readers
                            .get_or_insert_with(|| Readers::start(&out, &stats, &err_tx))
                            .queue(packet.id, source);
                    }
                    Ok(PacketType::PacketFin) => {
                        let _ = out.send(Ok(Packet { r#type: PacketType::PacketFin as i32, ..Packet::default() })).await;
                        return Ok(());
                    }
                    Ok(PacketType::PacketErr) => {
                        return Err(ContextError::Protocol(format!(
                            "error from receiver: {}",
                            String::from_utf8_lossy(&packet.data)
                        )));
                    }
                    // hash requests belong to a protocol version BuildKit does
                    // not negotiate here; anything else is ignored as fsutil does
                    _ => {}
                }
            }
        }
    }
}

fn gone() -> ContextError {
    ContextError::Protocol("the daemon closed the transfer".into())
}

/// The threads that read requested files, as fsutil's four send workers:
/// started at the first request, fed through one queue, ended when it is
/// dropped. Long-lived threads, not a task per file: for contexts of many
/// small files the per-file hand-offs between threads cost more than the
/// reads.
struct Readers {
    queue: std::sync::mpsc::Sender<(u32, PathBuf)>,
}

impl Readers {
    fn start(out: &Out, stats: &TransferCount, failed: &mpsc::Sender<ContextError>) -> Self {
        let (queue, jobs) = std::sync::mpsc::channel::<(u32, PathBuf)>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..PARALLEL_FILES {
            let (jobs, out, stats, failed) = (
                Arc::clone(&jobs),
                out.clone(),
                stats.clone(),
                failed.clone(),
            );
            tokio::task::spawn_blocking(move || loop {
                let next = jobs.lock().expect("job queue").recv();
                let Ok((id, source)) = next else { return };
                if let Err(e) = send_file(id, &source, &out, &stats) {
                    let _ = failed.blocking_send(e);
                    return;
                }
            });
        }
        Readers { queue }
    }

    fn queue(&self, id: u32, source: PathBuf) {
        // the readers only stop early after reporting an error, which
        // ends the transfer anyway
        let _ = self.queue.send((id, source));
    }
}

/// Streams one file as DATA packets and the empty DATA that ends it.
fn send_file(
    id: u32,
    source: &std::path::Path,
    out: &Out,
    stats: &TransferCount,
) -> Result<(), ContextError> {
    let data = |data: Vec<u8>| Packet {
        r#type: PacketType::PacketData as i32,
        id,
        data,
        ..Packet::default()
    };
    // never through a symlink swapped in since the walk
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(source)
    {
        Ok(f) => {
            let mut f = f.take(0);
            loop {
                // not zeroed first: `read_to_end` fills only what it reads
                let mut buf = Vec::with_capacity(CHUNK);
                f.set_limit(CHUNK as u64);
                f.read_to_end(&mut buf)
                    .map_err(|e| ContextError::io("reading", source.display(), e))?;
                let n = buf.len();
                if n > 0 {
                    stats.add_bytes(n as u64);
                    out.blocking_send(Ok(data(buf))).map_err(|_| gone())?;
                }
                // a short chunk is the end: `read_to_end` read up to EOF
                if n < CHUNK {
                    break;
                }
            }
        }
        // removed since the walk, or a socket (which fsutil sends as an
        // empty regular file): fsutil sends it empty
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENXIO) => {}
        Err(e) => return Err(ContextError::io("opening", source.display(), e)),
    }
    // counted before the last packet, which lets the receiver finish
    stats.add_file();
    out.blocking_send(Ok(data(Vec::new()))).map_err(|_| gone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::build::context::walker::tests::sample_tree;
    use berth_proto::buildkit::fsutil::Stat;
    use std::collections::BTreeMap;

    /// A receiver as BuildKit runs it: reads the stats, requests the
    /// regular files `want` selects, collects their bytes, then FIN.
    pub async fn receive(
        root: PathBuf,
        filter: Filter,
        stats: TransferStats,
        want: impl Fn(&Stat) -> bool,
    ) -> (Vec<Stat>, BTreeMap<String, Vec<u8>>) {
        let (to_sender, from_test) = mpsc::channel(16);
        let (out, mut from_sender) = mpsc::channel(16);
        let sender = tokio::spawn(send_tree(
            root,
            filter,
            ReceiverStream::new(from_test),
            out,
            stats.begin("context"),
        ));

        let mut entries = Vec::new();
        let mut pending: HashMap<u32, String> = HashMap::new();
        let mut files = BTreeMap::new();
        let mut stats_done = false;
        let mut fin_sent = false;
        while let Some(msg) = from_sender.recv().await {
            let p = msg.expect("sender status");
            match PacketType::try_from(p.r#type).unwrap() {
                PacketType::PacketStat => match p.stat {
                    Some(st) => {
                        let id = entries.len() as u32;
                        if gomode::is_regular(st.mode) && st.linkname.is_empty() && want(&st) {
                            pending.insert(id, st.path.clone());
                            files.insert(st.path.clone(), Vec::new());
                            to_sender
                                .send(Ok(Packet {
                                    r#type: PacketType::PacketReq as i32,
                                    id,
                                    ..Packet::default()
                                }))
                                .await
                                .unwrap();
                        }
                        entries.push(st);
                    }
                    None => stats_done = true,
                },
                PacketType::PacketData => {
                    let path = pending
                        .get(&p.id)
                        .expect("data for a requested file")
                        .clone();
                    if p.data.is_empty() {
                        pending.remove(&p.id);
                    } else {
                        files.get_mut(&path).unwrap().extend_from_slice(&p.data);
                    }
                }
                PacketType::PacketFin => break,
                other => panic!("unexpected packet {other:?}"),
            }
            if stats_done && pending.is_empty() && !fin_sent {
                fin_sent = true;
                to_sender
                    .send(Ok(Packet {
                        r#type: PacketType::PacketFin as i32,
                        ..Packet::default()
                    }))
                    .await
                    .unwrap();
            }
        }
        sender.await.unwrap().expect("sender succeeds");
        (entries, files)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_requested_file_arrives_intact() {
        let tmp = sample_tree();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(tmp.path().join("big.bin"), &big).unwrap();
        let stats = TransferStats::new();
        let (entries, files) = receive(
            tmp.path().to_path_buf(),
            Filter::default(),
            stats.clone(),
            |_| true,
        )
        .await;

        assert_eq!(entries.len(), 12);
        assert_eq!(files["big.bin"], big);
        assert_eq!(files["a/sub/deep.txt"], b"deep");
        assert_eq!(files["run.sh"], b"#!/bin/sh\n");
        // the hard link and the symlink carry no data
        assert!(!files.contains_key("b/hard") && !files.contains_key("b/outside"));
        let total: usize = files.values().map(Vec::len).sum();
        assert_eq!(stats.bytes_sent(), total as u64);
        assert_eq!(stats.files_sent(), files.len() as u64);
    }

    /// Regression: the request loop once waited for a free file worker, so a
    /// receiver blocked on sending requests while the workers were blocked
    /// on sending data hung the transfer for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_requests_at_once_do_not_deadlock() {
        let tmp = tempfile::tempdir().unwrap();
        let body = vec![7u8; 3 * CHUNK];
        for i in 0..300 {
            std::fs::write(tmp.path().join(format!("f{i:03}")), &body).unwrap();
        }
        let stats = TransferStats::new();
        let run = receive(
            tmp.path().to_path_buf(),
            Filter::default(),
            stats.clone(),
            |_| true,
        );
        let (_, files) = tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("the transfer finishes");
        assert_eq!(files.len(), 300);
        assert_eq!(stats.bytes_sent(), 300 * body.len() as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_incremental_send_carries_only_the_changed_file() {
        let tmp = sample_tree();
        let root = tmp.path().to_path_buf();
        let (first, _) = receive(
            root.clone(),
            Filter::default(),
            TransferStats::new(),
            |_| true,
        )
        .await;

        // change one file; a receiver with the first transfer cached asks for
        // what differs, as BuildKit's does
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(root.join("a/x.md"), "changed markdown").unwrap();
        let cached: HashMap<String, Stat> =
            first.into_iter().map(|s| (s.path.clone(), s)).collect();
        let stats = TransferStats::new();
        let (second, files) = receive(root, Filter::default(), stats.clone(), |st| {
            cached.get(&st.path) != Some(st)
        })
        .await;

        assert_eq!(second.len(), cached.len());
        assert_eq!(files.keys().collect::<Vec<_>>(), ["a/x.md"]);
        assert_eq!(stats.files_sent(), 1);
        assert_eq!(stats.bytes_sent(), "changed markdown".len() as u64);
    }

    #[tokio::test]
    async fn a_request_for_an_unknown_or_non_file_id_fails() {
        let tmp = sample_tree();
        let (to_sender, from_test) = mpsc::channel(4);
        let (out, mut from_sender) = mpsc::channel(64);
        let sender = tokio::spawn(send_tree(
            tmp.path().to_path_buf(),
            Filter::default(),
            ReceiverStream::new(from_test),
            out,
            TransferStats::new().begin("context"),
        ));
        // ID 1 is the directory `a`
        to_sender
            .send(Ok(Packet {
                r#type: PacketType::PacketReq as i32,
                id: 1,
                ..Packet::default()
            }))
            .await
            .unwrap();
        let err = sender.await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "invalid file id 1");
        while from_sender.recv().await.is_some() {}
    }

    #[test]
    fn requests_are_decoded_from_metadata() {
        use tonic::metadata::{MetadataMap, MetadataValue};
        let mut md = MetadataMap::new();
        md.append("dir-name", MetadataValue::from_static("context"));
        md.append("exclude-patterns", MetadataValue::from_static("*.md"));
        md.append("exclude-patterns", MetadataValue::from_static("!README.md"));
        md.append("followpaths", MetadataValue::from_static("Dockerfile"));
        assert_eq!(
            TransferRequest::decode(&md),
            TransferRequest {
                dir_name: "context".into(),
                include: vec![],
                exclude: vec!["*.md".into(), "!README.md".into()],
                follow: vec!["Dockerfile".into()],
            }
        );
        assert_eq!(TransferRequest::decode(&MetadataMap::new()).dir_name, "");
    }

    #[tokio::test]
    async fn unknown_dir_names_are_refused() {
        let mut dirs = LocalDirs::new();
        dirs.add("context", PathBuf::from("/nonexistent"));
        let svc = Sync {
            dirs,
            stats: TransferStats::new(),
        };
        let (_tx, rx) = mpsc::channel::<Result<Packet, Status>>(1);
        let mut req = Request::new(ReceiverStream::new(rx));
        req.metadata_mut()
            .insert("dir-name", "secret-dir".parse().unwrap());
        let status = svc.start(req).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "no access allowed to dir \"secret-dir\"");
    }
}
