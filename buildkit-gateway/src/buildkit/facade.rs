//! `moby.buildkit.v1.Control` as the sandbox sees it, on `listen_buildkit`.
//!
//! Part of the binary (declared in `main.rs`), beside the containerd
//! facade's services, whose conventions it follows: every call is decided
//! and logged as one audit line before anything reaches BuildKit, a refusal
//! is PermissionDenied with the rule's words, an internal failure is
//! Internal without details. Served: Solve (decided by `berth.control.solve`
//! and hardened, `berth_gateway::buildkit`), Status, Session (the session's
//! metadata checked and copied, nothing else), ListWorkers, DiskUsage, Prune
//! and Info. The build-history methods are not in berth's protos, so tonic
//! answers Unimplemented for them as for any other method.

use std::future::Future;
use std::sync::Arc;

use berth_gateway::admission::{self, Denied};
use berth_gateway::buildkit::dial::UpstreamAddr;
use berth_gateway::buildkit::session::{SessionError, SessionHeaders};
use berth_gateway::buildkit::{self as decide, BuildSandbox};
use berth_gateway::policy::PolicyEngine;
use berth_gateway::sandbox::Sandbox;
use berth_proto::buildkit::control::{self as bk, control_client::ControlClient, control_server};
use berth_proto::RpcStatus;
use futures::StreamExt;
use tokio::net::UnixListener;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use crate::audit::{self, Peer, Verdict};
use crate::error::{GatewayError, Result};
use crate::services::{method, reply, BoxStream, Method, Reply};

const SOLVE: Method = method!("moby.buildkit.v1.Control", "Solve", "control.solve");
const STATUS: Method = method!("moby.buildkit.v1.Control", "Status", "control.status");
const SESSION: Method = method!("moby.buildkit.v1.Control", "Session", "control.session");
const LIST_WORKERS: Method = method!(
    "moby.buildkit.v1.Control",
    "ListWorkers",
    "control.list_workers"
);
const DISK_USAGE: Method = method!(
    "moby.buildkit.v1.Control",
    "DiskUsage",
    "control.disk_usage"
);
const PRUNE: Method = method!("moby.buildkit.v1.Control", "Prune", "control.prune");
const INFO: Method = method!("moby.buildkit.v1.Control", "Info", "control.info");

/// BuildKit's own limit on received messages (the Go daemon's and client's
/// default); tonic's 4 MiB would cut large status batches and session frames.
const MAX_MESSAGE: usize = 16 << 20;

/// What the BuildKit facade needs: the policies, the sandbox's facts and the
/// upstream connection.
pub struct Facade {
    engine: PolicyEngine,
    sb: Sandbox,
    build: BuildSandbox,
    up: ControlClient<Channel>,
    /// Where BuildKit is; a Docker Engine gets sessions on `POST /session`.
    addr: UpstreamAddr,
}

impl Facade {
    pub fn new(engine: PolicyEngine, sb: Sandbox, upstream: &UpstreamAddr) -> Self {
        let up = ControlClient::new(upstream.channel())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Self {
            build: BuildSandbox::from_sandbox(&sb).with_images(engine.image_patterns()),
            engine,
            sb,
            up,
            addr: upstream.clone(),
        }
    }

    fn client(&self) -> ControlClient<Channel> {
        self.up.clone()
    }

    /// Decides a method with the generic policy and logs the decision.
    fn decide(&self, peer: Peer, m: &Method, object: &str) -> Result<()> {
        match admission::generic(&self.engine, &self.sb, m.rule, object) {
            Ok(_) => {
                log(peer, m, object, Verdict::Allow, m.rule, &[]);
                Ok(())
            }
            Err(d) => Err(self.denied(peer, m, object, d)),
        }
    }

    fn denied(&self, peer: Peer, m: &Method, object: &str, d: Denied) -> GatewayError {
        log(peer, m, object, Verdict::Deny, &d.rule, &d.reasons);
        GatewayError::Denied(d)
    }
}

fn log(peer: Peer, m: &Method, object: &str, verdict: Verdict, rule: &str, reasons: &[String]) {
    audit::decision(&audit::Decision {
        peer,
        method: m.path,
        object,
        verdict,
        rule,
        reasons,
    });
}

/// BuildKit's answer, with its code and words (the CLI shows why a build
/// failed) and of its details only the `errdefs.Source` ones: where in the
/// client's own Dockerfile the failure is, which the CLI prints as docker
/// does. The other details carry Go stack traces and the daemon's paths. An
/// unreachable daemon is reworded, since the transport error names the
/// gateway's upstream socket.
fn upstream(s: Status) -> GatewayError {
    if berth_gateway::upstream::connection_failed(&s) {
        audit::internal_error(&format!("buildkit unavailable: {}", s.message()));
        return GatewayError::client(
            Code::Unavailable,
            "buildkit is not reachable from the gateway",
        );
    }
    match source_details(&s) {
        Some(details) => {
            GatewayError::Relayed(Status::with_details(s.code(), s.message(), details.into()))
        }
        None => GatewayError::client(s.code(), s.message()),
    }
}

/// The details of `s` re-encoded with only its `errdefs.Source` entries,
/// or None when it has none.
fn source_details(s: &Status) -> Option<Vec<u8>> {
    use prost::Message;
    let mut st = RpcStatus::decode(s.details()).ok()?;
    // Protobuf (`…errdefs.Source`) from a buildkitd, Go's JSON
    // (`…errdefs.Source+json`) from Docker Engine's embedded BuildKit.
    st.details.retain(|a| {
        a.type_url.ends_with("errdefs.Source") || a.type_url.ends_with("errdefs.Source+json")
    });
    if st.details.is_empty() {
        return None;
    }
    Some(st.encode_to_vec())
}

fn relay<T: Send + 'static>(s: Streaming<T>) -> BoxStream<T> {
    Box::pin(s.map(|item| item.map_err(|e| Status::from(upstream(e)))))
}

pub struct Control(pub Arc<Facade>);

#[tonic::async_trait]
impl control_server::Control for Control {
    async fn solve(&self, req: Request<bk::SolveRequest>) -> Reply<bk::SolveResponse> {
        let peer = Peer::of(&req);
        reply(self.solve(peer, req.into_inner()).await)
    }

    type StatusStream = BoxStream<bk::StatusResponse>;

    async fn status(&self, req: Request<bk::StatusRequest>) -> Reply<Self::StatusStream> {
        let peer = Peer::of(&req);
        reply(self.status(peer, req.into_inner()).await)
    }

    type SessionStream = BoxStream<bk::BytesMessage>;

    async fn session(
        &self,
        req: Request<Streaming<bk::BytesMessage>>,
    ) -> Reply<Self::SessionStream> {
        let peer = Peer::of(&req);
        reply(self.session(peer, req).await)
    }

    async fn list_workers(
        &self,
        req: Request<bk::ListWorkersRequest>,
    ) -> Reply<bk::ListWorkersResponse> {
        let peer = Peer::of(&req);
        let f = &self.0;
        reply(
            async {
                f.decide(peer, &LIST_WORKERS, "")?;
                Ok(f.client()
                    .list_workers(req.into_inner())
                    .await
                    .map_err(upstream)?
                    .into_inner())
            }
            .await,
        )
    }

    async fn disk_usage(&self, req: Request<bk::DiskUsageRequest>) -> Reply<bk::DiskUsageResponse> {
        let peer = Peer::of(&req);
        let f = &self.0;
        reply(
            async {
                f.decide(peer, &DISK_USAGE, "")?;
                Ok(f.client()
                    .disk_usage(req.into_inner())
                    .await
                    .map_err(upstream)?
                    .into_inner())
            }
            .await,
        )
    }

    type PruneStream = BoxStream<bk::UsageRecord>;

    async fn prune(&self, req: Request<bk::PruneRequest>) -> Reply<Self::PruneStream> {
        let peer = Peer::of(&req);
        let f = &self.0;
        reply(
            async {
                f.decide(peer, &PRUNE, "")?;
                let s = f.client().prune(req.into_inner()).await.map_err(upstream)?;
                Ok(relay(s.into_inner()))
            }
            .await,
        )
    }

    async fn info(&self, req: Request<bk::InfoRequest>) -> Reply<bk::InfoResponse> {
        let peer = Peer::of(&req);
        let f = &self.0;
        reply(
            async {
                f.decide(peer, &INFO, "")?;
                Ok(f.client()
                    .info(req.into_inner())
                    .await
                    .map_err(upstream)?
                    .into_inner())
            }
            .await,
        )
    }
}

impl Control {
    async fn solve(&self, peer: Peer, req: bk::SolveRequest) -> Result<bk::SolveResponse> {
        let f = &self.0;
        let object = req.r#ref.clone();
        let (hardened, v) = match decide::solve(&f.engine, &f.sb, &f.build, req) {
            Ok(ok) => ok,
            Err(d) => return Err(f.denied(peer, &SOLVE, &object, d)),
        };
        log(peer, &SOLVE, &v.object, Verdict::Allow, &v.rule, &v.reasons);
        // Dropping this future (the client went away) resets the upstream
        // stream, which cancels the build.
        Ok(f.client()
            .solve(hardened)
            .await
            .map_err(upstream)?
            .into_inner())
    }

    async fn status(
        &self,
        peer: Peer,
        req: bk::StatusRequest,
    ) -> Result<BoxStream<bk::StatusResponse>> {
        let f = &self.0;
        f.decide(peer, &STATUS, &req.r#ref)?;
        let s = f.client().status(req).await.map_err(upstream)?;
        Ok(relay(s.into_inner()))
    }

    /// The session is an HTTP/2 connection tunnelled in BytesMessage frames
    /// between the daemon and the client; the gateway passes the frames on
    /// unchanged and decides only who opens it and with which metadata.
    async fn session(
        &self,
        peer: Peer,
        req: Request<Streaming<bk::BytesMessage>>,
    ) -> Result<BoxStream<bk::BytesMessage>> {
        let f = &self.0;
        let headers = f.admit_session(peer, SessionHeaders::from_metadata(req.metadata()))?;
        // A client error ends the upstream stream like a clean close would:
        // the daemon then closes its side and the session is over.
        let frames = req
            .into_inner()
            .take_while(|item| std::future::ready(item.is_ok()))
            .filter_map(|item| std::future::ready(item.ok()));
        if let UpstreamAddr::DockerUnix(path) = &f.addr {
            return docker_session(path, &headers, frames).await;
        }
        let upstream_req =
            Request::from_parts(headers.to_metadata(), tonic::Extensions::default(), frames);
        let s = f.client().session(upstream_req).await.map_err(upstream)?;
        Ok(relay(s.into_inner()))
    }
}

/// A session opened upstream for a client that sent `POST /session`.
pub enum SessionPipe {
    /// Docker Engine's `POST /session`: the connection is the session.
    Raw(tokio::net::UnixStream),
    /// buildkitd's `Control.Session`: the session's bytes in `BytesMessage`s,
    /// sent on the sender and received on the stream.
    Framed(
        tokio::sync::mpsc::Sender<bk::BytesMessage>,
        Box<Streaming<bk::BytesMessage>>,
    ),
}

impl Facade {
    /// Decides a session's metadata (`headers`, or why they are wrong) under
    /// the rule of `Control.Session`, however the session was asked for:
    /// one audit line either way.
    pub fn admit_session(
        &self,
        peer: Peer,
        headers: std::result::Result<SessionHeaders, SessionError>,
    ) -> Result<SessionHeaders> {
        match headers {
            Ok(h) => {
                self.decide(peer, &SESSION, &h.uuid)?;
                Ok(h)
            }
            Err(e) => {
                let d = decide::refusal("build session", SESSION.rule, vec![e.to_string()]);
                Err(self.denied(peer, &SESSION, "", d))
            }
        }
    }

    /// Logs a request on the BuildKit socket that is not a session at all
    /// (another path, no upgrade, a malformed head): refused by the
    /// gateway, under the session's rule, before anything went upstream.
    pub fn refused_request(&self, peer: Peer, object: &str, reason: &str) {
        log(
            peer,
            &SESSION,
            object,
            Verdict::Deny,
            SESSION.rule,
            &[reason.to_string()],
        );
    }

    /// Opens an admitted session on the upstream, with only its checked
    /// headers.
    pub async fn session_pipe(&self, headers: &SessionHeaders) -> Result<SessionPipe> {
        match &self.addr {
            UpstreamAddr::DockerUnix(path) => {
                berth_gateway::buildkit::dial::session_stream(path, headers)
                    .await
                    .map(SessionPipe::Raw)
                    .map_err(unreachable_session)
            }
            UpstreamAddr::Unix(_) => {
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let req = Request::from_parts(
                    headers.to_metadata(),
                    tonic::Extensions::default(),
                    tokio_stream::wrappers::ReceiverStream::new(rx),
                );
                let opened = tokio::time::timeout(SESSION_OPEN_TIMEOUT, self.client().session(req))
                    .await
                    .map_err(|_| {
                        audit::internal_error("buildkit session: no answer from buildkitd in 10 s");
                        GatewayError::client(
                            Code::Unavailable,
                            "buildkit is not reachable from the gateway",
                        )
                    })?;
                let s = opened.map_err(upstream)?;
                Ok(SessionPipe::Framed(tx, Box::new(s.into_inner())))
            }
        }
    }
}

/// How long a buildkitd may take to answer `Control.Session`'s headers.
const SESSION_OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The session could not be opened upstream: BuildKit's host is not there
/// (Unavailable), or it answered the upgrade with something other than
/// `101` (Unknown, its words in the gateway's log only).
fn unreachable_session(e: berth_gateway::buildkit::dial::DialError) -> GatewayError {
    use berth_gateway::buildkit::dial::DialError;
    audit::internal_error(&format!("buildkit session: {e}"));
    match &e {
        DialError::Upgrade { detail, .. } if detail.starts_with("expected 101") => {
            GatewayError::client(Code::Unknown, "buildkit refused the build session")
        }
        _ => GatewayError::client(
            Code::Unavailable,
            "buildkit is not reachable from the gateway",
        ),
    }
}

/// The largest chunk of the daemon's session bytes put into one
/// `BytesMessage` for the client.
const SESSION_CHUNK: usize = 64 << 10;

/// A session through Docker Engine's `POST /session` (`dial::session_stream`):
/// the client's `BytesMessage`s are the connection's bytes one way, the
/// connection's bytes become `BytesMessage`s the other. Either side closing
/// ends the session.
async fn docker_session(
    path: &std::path::Path,
    headers: &SessionHeaders,
    frames: impl futures::Stream<Item = bk::BytesMessage> + Send + 'static,
) -> Result<BoxStream<bk::BytesMessage>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let conn = berth_gateway::buildkit::dial::session_stream(path, headers)
        .await
        .map_err(unreachable_session)?;
    let (mut rd, mut wr) = conn.into_split();
    tokio::spawn(async move {
        let mut frames = std::pin::pin!(frames);
        while let Some(m) = frames.next().await {
            if wr.write_all(&m.data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut buf = vec![0u8; SESSION_CHUNK];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let msg = bk::BytesMessage {
                data: buf[..n].to_vec(),
            };
            if tx.send(Ok(msg)).await.is_err() {
                break;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// Serves the BuildKit facade on `listener` until `shutdown` resolves:
/// gRPC connections go to the Control service, HTTP/1.1 ones may only open
/// a session (`crate::buildkit_upgrade`).
pub async fn serve(
    facade: Arc<Facade>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let service = control_server::ControlServer::new(Control(facade.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let (grpc_tx, grpc_rx) = tokio::sync::mpsc::channel(64);
    let accept = tokio::spawn(crate::buildkit_upgrade::accept(listener, facade, grpc_tx));
    let served = tonic::transport::Server::builder()
        // Build contexts stream through the session as many tiny messages:
        // wide fixed windows (see `dial.rs` for why not adaptive ones).
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(64 << 20))
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(grpc_rx),
            shutdown,
        )
        .await;
    accept.abort();
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths_are_buildkits() {
        for m in [
            SOLVE,
            STATUS,
            SESSION,
            LIST_WORKERS,
            DISK_USAGE,
            PRUNE,
            INFO,
        ] {
            assert!(
                m.path.starts_with("/moby.buildkit.v1.Control/"),
                "{}",
                m.path
            );
            assert!(m.rule.starts_with("control."), "{}", m.rule);
        }
    }

    #[test]
    fn upstream_unavailable_hides_the_socket() {
        let s = Status::from(upstream(Status::unavailable(
            "error trying to connect: /run/berth-stack/buildhost/docker.sock",
        )));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("/run"), "{}", s.message());
    }

    #[test]
    fn upstream_failure_keeps_buildkits_words() {
        let msg = "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3";
        let s = Status::from(upstream(Status::with_details(
            Code::Unknown,
            msg,
            vec![1, 2, 3].into(),
        )));
        assert_eq!(s.code(), Code::Unknown);
        assert_eq!(s.message(), msg);
        assert!(s.details().is_empty());
    }

    #[test]
    fn upstream_failure_keeps_only_the_source_details() {
        use prost::Message;
        let any = |url: &str, value: &[u8]| prost_types::Any {
            type_url: url.into(),
            value: value.to_vec(),
        };
        let given = RpcStatus {
            code: 2,
            message: "m".into(),
            details: vec![
                any(
                    "github.com/moby/buildkit/util/stack.Stack",
                    b"/root/go/src/x.go",
                ),
                any(
                    "type.googleapis.com/moby.buildkit.v1.errdefs.Source",
                    b"src",
                ),
                any("type.googleapis.com/moby.buildkit.v1.errdefs.Vertex", b"v"),
                any("github.com/moby/buildkit/errdefs.Source+json", b"{}"),
            ],
        };
        let s = Status::from(upstream(Status::with_details(
            Code::Unknown,
            "m",
            given.encode_to_vec().into(),
        )));
        let kept = RpcStatus::decode(s.details()).unwrap();
        assert_eq!(kept.details.len(), 2);
        assert!(kept.details[0].type_url.ends_with("errdefs.Source"));
        assert!(kept.details[1].type_url.ends_with("errdefs.Source+json"));
        assert_eq!(s.message(), "m");
    }
}
