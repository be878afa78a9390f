//! The BuildKit socket's accept loop, and sessions opened with `POST
//! /session` (`berth_gateway::buildkit::upgrade`).
//!
//! Each connection's first bytes say what it speaks (read with `MSG_PEEK`,
//! so they stay for whoever serves it): the HTTP/2 preface goes to the
//! Control service, anything else is read as one HTTP/1.1 request head.
//! A session request is decided as `Control.Session` is, opened upstream,
//! answered `101`, and from then on the gateway copies bytes both ways
//! until either side closes. Every other request is answered with its
//! status and a one-line reason, and closed.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use berth_gateway::buildkit::upgrade::{self, Protocol, RequestError};
use berth_proto::buildkit::control as bk;
use nix::sys::socket::{recv, MsgFlags};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::audit::{self, Peer};
use crate::buildkit_facade::{Facade, SessionPipe};
use crate::error::GatewayError;

/// How long a new connection may take to say what it wants: its first
/// bytes and, for HTTP/1.1, its whole request head (one deadline for both).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Copy buffer per direction of a session.
const COPY_BUF: usize = 64 << 10;
/// Connections not yet past their first bytes or request head; more are
/// closed at once (a sandbox opening connections and saying nothing).
const MAX_PENDING: usize = 64;
/// Sessions open at once through this gateway; one more is answered 503.
/// A build holds one.
const MAX_SESSIONS: usize = 32;
/// Largest `BytesMessage` made from a client's bytes (buildkitd upstream).
const FRAME: usize = 64 << 10;

/// Accepts connections until the task is aborted, handing gRPC ones to
/// `grpc` (the Control service's incoming stream).
pub async fn accept(
    listener: UnixListener,
    facade: Arc<Facade>,
    grpc: mpsc::Sender<std::io::Result<UnixStream>>,
) {
    let limits = Limits {
        pending: Arc::new(Semaphore::new(MAX_PENDING)),
        sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
    };
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: wait rather than spin, and say so
                // once a minute at most.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    audit::warn(&format!("accepting on the BuildKit socket: {e}"));
                    last_warning = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(pending) = limits.pending.clone().try_acquire_owned() else {
            continue; // dropped: closed
        };
        let (facade, grpc, sessions) = (facade.clone(), grpc.clone(), limits.sessions.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
            match tokio::time::timeout_at(deadline, first_bytes(&stream)).await {
                Ok(Ok(Protocol::Http2)) => {
                    drop(pending);
                    let _ = grpc.send(Ok(stream)).await;
                }
                Ok(Ok(Protocol::Http1)) => {
                    serve_http(&facade, stream, deadline, pending, &sessions).await
                }
                // Closed, failed or silent before saying anything.
                Ok(Err(_)) | Err(_) => {}
            }
        });
    }
}

/// The caps on what one sandbox can hold open on the socket.
struct Limits {
    pending: Arc<Semaphore>,
    sessions: Arc<Semaphore>,
}

/// Peeks until the first bytes tell the protocol.
async fn first_bytes(stream: &UnixStream) -> std::io::Result<Protocol> {
    let mut buf = [0u8; 4];
    loop {
        stream.readable().await?;
        let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
            recv(stream.as_raw_fd(), &mut buf, MsgFlags::MSG_PEEK).map_err(std::io::Error::from)
        });
        match peeked {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => match upgrade::classify(&buf[..n]) {
                Some(p) => return Ok(p),
                // A prefix of the preface: the rest is on its way.
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn peer_of(stream: &UnixStream) -> Peer {
    let cred = stream.peer_cred().ok();
    Peer {
        uid: cred.map(|c| c.uid()),
        pid: cred.and_then(|c| c.pid()),
    }
}

/// One HTTP/1.1 connection: a session, or a refusal. `pending` is held
/// until the head is read, a session permit while the session lasts.
async fn serve_http(
    facade: &Facade,
    mut stream: UnixStream,
    deadline: tokio::time::Instant,
    pending: OwnedSemaphorePermit,
    sessions: &Arc<Semaphore>,
) {
    let peer = peer_of(&stream);
    let read = tokio::time::timeout_at(deadline, read_head(&mut stream)).await;
    drop(pending);
    let (headers, early) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(ReadError::Request(e))) => {
            let status = e.status();
            let message = match e {
                // decided and logged as Control.Session's metadata is
                RequestError::Session(e) => {
                    Status::from(facade.admit_session(peer, Err(e)).unwrap_err())
                        .message()
                        .to_string()
                }
                other => {
                    let reason = other.to_string();
                    facade.refused_request(peer, &other.request_line(), &reason);
                    reason
                }
            };
            let _ = stream.write_all(&upgrade::answer(status, &message)).await;
            return;
        }
        Ok(Err(ReadError::Io)) | Err(_) => return,
    };
    let headers = match facade.admit_session(peer, Ok(headers)) {
        Ok(h) => h,
        Err(e) => return refuse(&mut stream, e).await,
    };
    let Ok(_session) = sessions.clone().try_acquire_owned() else {
        let message =
            format!("too many build sessions open through this gateway (at most {MAX_SESSIONS})");
        audit::warn(&message);
        let _ = stream.write_all(&upgrade::answer(503, &message)).await;
        return;
    };
    let pipe = match facade.session_pipe(&headers).await {
        Ok(p) => p,
        Err(e) => return refuse(&mut stream, e).await,
    };
    if stream.write_all(upgrade::SWITCHED).await.is_err() {
        return;
    }
    match pipe {
        SessionPipe::Raw(mut up) => {
            if up.write_all(&early).await.is_ok() {
                splice_both(stream, up).await;
            }
        }
        SessionPipe::Framed(tx, rx) => frame_both(stream, early, tx, rx).await,
    }
}

/// Answers a refused or failed session with the status the gRPC form gives.
async fn refuse(stream: &mut UnixStream, e: GatewayError) {
    let status = Status::from(e);
    let code = match status.code() {
        tonic::Code::PermissionDenied => 403,
        tonic::Code::Unavailable => 503,
        tonic::Code::InvalidArgument => 400,
        // BuildKit's host answered the session with something else
        tonic::Code::Unknown => 502,
        _ => 500,
    };
    let _ = stream
        .write_all(&upgrade::answer(code, status.message()))
        .await;
}

enum ReadError {
    Request(RequestError),
    Io,
}

/// Reads until a whole request head is in; returns the session's headers
/// and the bytes that came after the head.
async fn read_head(
    stream: &mut UnixStream,
) -> Result<(berth_gateway::buildkit::session::SessionHeaders, Vec<u8>), ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Io);
        }
        // the blank line may straddle two reads
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        let ended = buf[from..].windows(4).any(|w| w == b"\r\n\r\n");
        if !ended && buf.len() < upgrade::MAX_HEAD {
            continue;
        }
        if let Some((headers, len)) = upgrade::parse(&buf).map_err(ReadError::Request)? {
            return Ok((headers, buf.split_off(len)));
        }
    }
}

/// Copies bytes both ways until either side closes, then drops both.
async fn splice_both(client: UnixStream, upstream: UnixStream) {
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    tokio::select! {
        () = copy(cr, uw) => {}
        () = copy(ur, cw) => {}
    }
}

async fn copy(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The client's bytes as `BytesMessage`s to buildkitd, and buildkitd's
/// messages as bytes to the client, until either side closes.
async fn frame_both(
    client: UnixStream,
    early: Vec<u8>,
    tx: mpsc::Sender<bk::BytesMessage>,
    mut rx: Box<tonic::Streaming<bk::BytesMessage>>,
) {
    let (mut cr, mut cw) = client.into_split();
    let up = async move {
        if !early.is_empty() && tx.send(bk::BytesMessage { data: early }).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; FRAME];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tx
                .send(bk::BytesMessage {
                    data: buf[..n].to_vec(),
                })
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let down = async move {
        while let Ok(Some(m)) = rx.message().await {
            if cw.write_all(&m.data).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
