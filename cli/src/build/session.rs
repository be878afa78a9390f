//! The build session: an HTTP/2 connection tunnelled through BuildKit's
//! `Control.Session` stream, on which BuildKit is the gRPC *client* and the
//! CLI the server.
//!
//! The stream's `BytesMessage`s are the connection's bytes in order. They
//! are pumped into one end of an in-memory duplex pipe; the other end is
//! the connection tonic's HTTP/2 server serves the session's services on.
//! The session's identity and the list of served methods travel as request
//! metadata; BuildKit calls only methods on that list.

use berth_proto::buildkit::control::control_client::ControlClient;
use berth_proto::buildkit::control::BytesMessage;
use futures::FutureExt;
use rand::Rng;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::Channel;

/// Session metadata keys. gRPC metadata keys are lower case on the wire;
/// BuildKit reads them case-insensitively.
pub const HEADER_UUID: &str = "x-docker-expose-session-uuid";
pub const HEADER_NAME: &str = "x-docker-expose-session-name";
pub const HEADER_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
pub const HEADER_METHOD: &str = "x-docker-expose-session-grpc-method";

/// Bytes buffered between the tunnel and the HTTP/2 server.
const PIPE: usize = 256 << 10;
/// The largest chunk put into one `BytesMessage`.
const CHUNK: usize = 64 << 10;
/// HTTP/2 windows of the session's server. BuildKit asks for context files
/// with one small message each, thousands at once for a large context; the
/// HTTP/2 implementation closes a connection on which more small DATA
/// frames wait than half the connection window allows (a guard against
/// framing floods), so the window is sized for the largest contexts.
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;
const MAX_FRAME: u32 = 1 << 20;

/// Methods of the session services, as BuildKit checks for them.
pub mod methods {
    pub const FILE_SYNC: &[&str] = &["DiffCopy"];
    pub const FILE_SEND: &[&str] = &["DiffCopy"];
    pub const HEALTH: &[&str] = &["Check", "Watch"];
    pub const SECRETS: &[&str] = &["GetSecret"];
    pub const SSH: &[&str] = &["CheckAgent", "ForwardAgent"];
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("invalid session metadata {0}")]
    Metadata(String),
    #[error("{0}")]
    Refused(tonic::Status),
}

/// A session's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Random; the solve names its session by it.
    pub id: String,
    pub name: String,
    /// Stable for one context directory, so that BuildKit finds what it
    /// already has of that directory and asks only for changed files.
    pub shared_key: String,
}

impl Identity {
    /// `context_key`: what identifies the sources across builds (the
    /// absolute context directory).
    pub fn new(name: &str, context_key: &str) -> Self {
        Identity {
            id: random_id(),
            name: name.to_string(),
            shared_key: hex::encode(&Sha256::digest(context_key.as_bytes())[..16]),
        }
    }
}

/// 25 characters of `[0-9a-z]`, like BuildKit's identity IDs; also usable
/// as a reference name (named-context store IDs must be).
pub fn random_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..25)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The services served on a session, with their method paths.
pub struct Services {
    routes: Routes,
    methods: Vec<String>,
}

impl Services {
    /// Health is always served: BuildKit checks it and drops a session
    /// whose check fails.
    pub fn new() -> Self {
        let (_reporter, health) = tonic_health::server::health_reporter();
        let mut s = Services {
            routes: Routes::default(),
            methods: Vec::new(),
        };
        s = s.add(health, methods::HEALTH);
        s
    }

    pub fn add<S>(mut self, svc: S, names: &[&str]) -> Self
    where
        S: tower::Service<
                tonic::codegen::http::Request<tonic::body::Body>,
                Response = tonic::codegen::http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        for m in names {
            self.methods.push(format!("/{}/{m}", S::NAME));
        }
        self.routes = self.routes.add_service(svc);
        self
    }

    pub fn methods(&self) -> &[String] {
        &self.methods
    }
}

/// The `Control.Session` request metadata for `who` serving `methods`.
pub fn metadata(who: &Identity, methods: &[String]) -> Result<MetadataMap, SessionError> {
    let value = |v: &str| {
        MetadataValue::try_from(v).map_err(|_| SessionError::Metadata(format!("value {v:?}")))
    };
    let mut md = MetadataMap::new();
    md.insert(HEADER_UUID, value(&who.id)?);
    md.insert(HEADER_NAME, value(&who.name)?);
    md.insert(HEADER_SHARED_KEY, value(&who.shared_key)?);
    for m in methods {
        md.append(HEADER_METHOD, value(m)?);
    }
    Ok(md)
}

/// A running session. Dropping the handle (or [`Session::close`]) ends the
/// tunnel and with it the HTTP/2 connection.
pub struct Session {
    outbound: Option<mpsc::Sender<BytesMessage>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// Opens the tunnel and serves `services` on it.
    pub async fn attach(
        control: &mut ControlClient<Channel>,
        who: &Identity,
        services: Services,
    ) -> Result<Session, SessionError> {
        let md = metadata(who, services.methods())?;
        let (tx, rx) = mpsc::channel::<BytesMessage>(16);
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        *request.metadata_mut() = md;
        let mut inbound = control
            .session(request)
            .await
            .map_err(SessionError::Refused)?
            .into_inner();

        let (conn, pipe) = tokio::io::duplex(PIPE);
        let (mut pipe_read, mut pipe_write) = tokio::io::split(pipe);
        let mut tasks = Vec::new();
        // BuildKit's bytes into the server's connection.
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if pipe_write.write_all(&msg.data).await.is_err() {
                    break;
                }
            }
            let _ = pipe_write.shutdown().await;
        }));
        // The server's bytes to BuildKit.
        let out = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let mut n = match pipe_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Whatever else is already written goes into the same
                // message: fewer, larger frames on every hop.
                while n < CHUNK {
                    match pipe_read.read(&mut buf[n..]).now_or_never() {
                        Some(Ok(m)) if m > 0 => n += m,
                        _ => break,
                    }
                }
                let msg = BytesMessage {
                    data: buf[..n].to_vec(),
                };
                if out.send(msg).await.is_err() {
                    break;
                }
            }
        }));
        let routes = services.routes;
        tasks.push(tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(routes);
            let served =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .initial_stream_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .max_frame_size(MAX_FRAME)
                    .serve_connection(hyper_util::rt::TokioIo::new(conn), service)
                    .await;
            // BuildKit sees the tunnel close; the solve reports why.
            drop(served);
        }));
        Ok(Session {
            outbound: Some(tx),
            tasks,
        })
    }

    /// Ends the session: BuildKit sees the tunnel close.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.outbound.take();
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lower_case_alphanumerics() {
        let a = random_id();
        assert_eq!(a.len(), 25);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert_ne!(a, random_id());
    }

    #[test]
    fn shared_key_is_stable_per_context() {
        let a = Identity::new("berth", "/work/app");
        let b = Identity::new("berth", "/work/app");
        let c = Identity::new("berth", "/work/other");
        assert_eq!(a.shared_key, b.shared_key);
        assert_ne!(a.shared_key, c.shared_key);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn metadata_names_identity_and_every_method() {
        let who = Identity {
            id: "abc".into(),
            name: "app".into(),
            shared_key: "k".into(),
        };
        let services = Services::new().add(
            berth_proto::buildkit::secrets::secrets_server::SecretsServer::new(NoSecrets),
            methods::SECRETS,
        );
        let md = metadata(&who, services.methods()).unwrap();
        let get =
            |k: &str| -> Vec<&str> { md.get_all(k).iter().map(|v| v.to_str().unwrap()).collect() };
        assert_eq!(get("x-docker-expose-session-uuid"), ["abc"]);
        assert_eq!(get("x-docker-expose-session-name"), ["app"]);
        assert_eq!(get("x-docker-expose-session-sharedkey"), ["k"]);
        assert_eq!(
            get("x-docker-expose-session-grpc-method"),
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/moby.buildkit.secrets.v1.Secrets/GetSecret",
            ]
        );
    }

    struct NoSecrets;

    #[tonic::async_trait]
    impl berth_proto::buildkit::secrets::secrets_server::Secrets for NoSecrets {
        async fn get_secret(
            &self,
            _: tonic::Request<berth_proto::buildkit::secrets::GetSecretRequest>,
        ) -> Result<tonic::Response<berth_proto::buildkit::secrets::GetSecretResponse>, tonic::Status>
        {
            Err(tonic::Status::not_found("no secrets"))
        }
    }
}
