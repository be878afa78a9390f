//! `berth.v1.Logs/Read`: entries of a container's log (`stdio::log`), and
//! with `follow` what the init process writes next, until its output ends or
//! the client goes away.

use std::sync::Arc;

use berth_proto::berth::v1::{logs_server, LogEntry, LogStream, LogsRequest};
use containerd_client::services::v1 as api;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use super::{method, reply, BoxStream, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;
use crate::stdio::log::{Entry, LogReader, Query, Stream, Tail};

const READ: Method = method!("berth.v1.Logs", "Read", "logs.read");

pub struct Logs(pub Arc<Ctx>);

#[tonic::async_trait]
impl logs_server::Logs for Logs {
    type ReadStream = BoxStream<LogEntry>;

    async fn read(&self, req: Request<LogsRequest>) -> Reply<Self::ReadStream> {
        let peer = Peer::of(&req);
        reply(self.read(peer, req.into_inner()).await)
    }
}

/// What a follower watches: appends to the log, and the end of the output.
struct Live {
    logged: watch::Receiver<u64>,
    ended: watch::Receiver<bool>,
}

impl Logs {
    async fn read(&self, peer: Peer, req: LogsRequest) -> Result<BoxStream<LogEntry>> {
        let ctx = &self.0;
        let id = req.container_id.clone();
        ctx.decide(peer, &READ, &id)?;
        let path = ctx.relays.log_path(&id)?;
        let query = Query {
            tail: usize::try_from(req.tail).ok(),
            since: req.since,
            until: req.until,
        };
        // Subscribed before reading, so nothing appended in between is missed.
        let live = match ctx.relays.get(&id, "") {
            Ok(p) if req.follow => Some(Live {
                logged: p.logged(),
                ended: p.ended(),
            }),
            _ => None,
        };
        let reader = match LogReader::open(&path).await {
            Ok(r) => Some(r),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No output logged yet: an error only if there is no such container.
                let msg = api::GetContainerRequest { id: id.clone() };
                ctx.up.containers().get(ctx.up.request(msg)).await?;
                None
            }
            Err(e) => {
                return Err(GatewayError::internal(
                    &format!("opening {}", path.display()),
                    e,
                ))
            }
        };
        let (tx, rx) = mpsc::channel(64);
        if let Some(reader) = reader {
            tokio::spawn(async move {
                if let Err(e) = stream_log(reader, query, live, &tx).await {
                    let _ = tx
                        .send(Err(Status::from(GatewayError::internal(
                            &format!("reading log of {id}"),
                            e,
                        ))))
                        .await;
                }
            });
        }
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

type Tx = mpsc::Sender<std::result::Result<LogEntry, Status>>;

/// Sends what is logged (through the query), then follows. Returns quietly
/// when the client went away.
async fn stream_log(
    mut reader: LogReader,
    q: Query,
    live: Option<Live>,
    tx: &Tx,
) -> std::io::Result<()> {
    let mut tail = q.tail.map(Tail::new);
    while let Some(e) = reader.next().await? {
        if q.past_until(&e) {
            flush(tail, tx).await;
            return Ok(());
        }
        if !q.admits(&e) {
            continue;
        }
        match tail.as_mut() {
            Some(t) => t.push(e),
            None if !send(tx, e).await => return Ok(()),
            None => {}
        }
    }
    flush(tail, tx).await;

    let Some(mut live) = live else { return Ok(()) };
    loop {
        // Read after looking at `ended`: what was appended before the end is
        // then always seen.
        let ended = *live.ended.borrow_and_update();
        match reader.next().await? {
            Some(e) if q.past_until(&e) => return Ok(()),
            Some(e) if q.admits(&e) => {
                if !send(tx, e).await {
                    return Ok(());
                }
            }
            Some(_) => {}
            None if ended => return Ok(()),
            None => {
                tokio::select! {
                    r = live.logged.changed() => if r.is_err() { return Ok(()) },
                    _ = tx.closed() => return Ok(()),
                }
            }
        }
    }
}

async fn flush(tail: Option<Tail>, tx: &Tx) {
    for e in tail.map(Tail::into_entries).unwrap_or_default() {
        if !send(tx, e).await {
            return;
        }
    }
}

async fn send(tx: &Tx, e: Entry) -> bool {
    let stream = match e.stream {
        Stream::Stdout => LogStream::Stdout,
        Stream::Stderr => LogStream::Stderr,
    };
    tx.send(Ok(LogEntry {
        stream: stream as i32,
        data: e.data,
        time: e.time,
    }))
    .await
    .is_ok()
}
