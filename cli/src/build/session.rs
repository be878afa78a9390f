//! The build session: an HTTP/2 connection on which BuildKit is the gRPC
//! *client* and the CLI the server.
//!
//! It is opened as Docker's API opens one, on the gateway's BuildKit
//! socket: `POST /session`, upgraded to h2c; from the `101` on, the socket
//! is the session ([`Session::open`]). The gateway decides the request and
//! then only copies bytes to BuildKit. The session's identity and the list
//! of served methods travel as `X-Docker-Expose-Session-*` headers (the same
//! keys `Control.Session` takes as metadata); BuildKit calls only methods on
//! that list.

use rand::Rng;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService;
use tonic::service::Routes;

/// Session metadata keys. gRPC metadata keys are lower case on the wire;
/// BuildKit reads them case-insensitively.
pub const HEADER_UUID: &str = "x-docker-expose-session-uuid";
pub const HEADER_NAME: &str = "x-docker-expose-session-name";
pub const HEADER_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
pub const HEADER_METHOD: &str = "x-docker-expose-session-grpc-method";

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
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// Opens the session the way Docker's API does, on the gateway's
    /// BuildKit socket: `POST /session` with the session's identity and
    /// methods as `X-Docker-Expose-Session-*` headers, upgraded to h2c. After
    /// the `101` the connection itself is the session's HTTP/2, served here
    /// directly: no `BytesMessage` framing, no pipe. A refusal comes back as
    /// an HTTP status with the gateway's one-line reason.
    pub async fn open(
        socket: &std::path::Path,
        who: &Identity,
        services: Services,
    ) -> Result<Session, SessionError> {
        let md = metadata(who, services.methods())?;
        let opening = async {
            let mut stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
                SessionError::Refused(tonic::Status::unavailable(format!(
                    "connecting to {}: {e}",
                    socket.display()
                )))
            })?;
            stream
                .write_all(session_request(&md).as_bytes())
                .await
                .map_err(lost)?;
            read_switch(&mut stream).await?;
            Ok::<_, SessionError>(stream)
        };
        let stream = tokio::time::timeout(OPEN_TIMEOUT, opening)
            .await
            .map_err(|_| {
                SessionError::Refused(tonic::Status::unavailable(format!(
                    "the berth gateway did not open the build session within {} s",
                    OPEN_TIMEOUT.as_secs()
                )))
            })??;
        let routes = services.routes;
        let task = tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(routes);
            let served =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .initial_stream_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .max_frame_size(MAX_FRAME)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            // BuildKit sees the connection close; the solve reports why.
            drop(served);
        });
        Ok(Session { tasks: vec![task] })
    }

    /// Ends the session: BuildKit sees the tunnel close.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
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

/// Longest response head or refusal body read from the gateway.
const MAX_ANSWER: usize = 16 << 10;
/// How long the gateway may take to open a session (it waits up to 10 s
/// for BuildKit's host itself).
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The `POST /session` head for the checked metadata `md`, with the header
/// names as Docker's API spells them.
fn session_request(md: &MetadataMap) -> String {
    let mut head = String::from(
        "POST /session HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n",
    );
    for (key, name) in [
        (HEADER_UUID, "X-Docker-Expose-Session-Uuid"),
        (HEADER_NAME, "X-Docker-Expose-Session-Name"),
        (HEADER_SHARED_KEY, "X-Docker-Expose-Session-Sharedkey"),
        (HEADER_METHOD, "X-Docker-Expose-Session-Grpc-Method"),
    ] {
        for v in md.get_all(key) {
            let v = v.to_str().expect("metadata() checked the values");
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    head.push_str("Content-Length: 0\r\n\r\n");
    head
}

fn lost(e: std::io::Error) -> SessionError {
    SessionError::Refused(tonic::Status::unavailable(format!(
        "the gateway closed the build session: {e}"
    )))
}

/// Reads the answer to the session request: `Ok` on `101`, else the
/// refusal as the status the gRPC form of the session would have given.
/// The head is read byte by byte: what follows a `101` is BuildKit's
/// HTTP/2 and belongs to the server.
async fn read_switch<S: tokio::io::AsyncRead + Unpin>(io: &mut S) -> Result<(), SessionError> {
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() == MAX_ANSWER {
            return Err(SessionError::Metadata(
                "the gateway's answer is too long".into(),
            ));
        }
        head.push(io.read_u8().await.map_err(lost)?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") {
        return Err(SessionError::Refused(tonic::Status::unavailable(format!(
            "the berth gateway did not answer the build session in HTTP: {status_line:?}"
        ))));
    }
    let code: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if code == 101 {
        return Ok(());
    }
    // the words after the code, for a refusal whose body got lost
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or_default();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_ANSWER);
    let mut body = vec![0u8; length];
    let message = match io.read_exact(&mut body).await {
        Ok(_) => String::from_utf8_lossy(&body).trim().to_string(),
        Err(_) => reason.to_string(),
    };
    let code = match code {
        403 => tonic::Code::PermissionDenied,
        400 | 404 | 431 => tonic::Code::InvalidArgument,
        // the gateway or BuildKit's host failed: a daemon error
        _ => tonic::Code::Unavailable,
    };
    Err(SessionError::Refused(tonic::Status::new(code, message)))
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

    #[test]
    fn the_session_request_carries_the_checked_metadata() {
        let who = Identity {
            id: "abc".into(),
            name: "app".into(),
            shared_key: "k".into(),
        };
        let md = metadata(&who, &["/grpc.health.v1.Health/Check".to_string()]).unwrap();
        assert_eq!(
            session_request(&md),
            "POST /session HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
X-Docker-Expose-Session-Uuid: abc\r\nX-Docker-Expose-Session-Name: app\r\n\
X-Docker-Expose-Session-Sharedkey: k\r\n\
X-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_switch_leaves_the_sessions_bytes_unread() {
        let mut io: &[u8] = b"HTTP/1.1 101 UPGRADED\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0";
        read_switch(&mut io).await.unwrap();
        assert_eq!(io, b"PRI * HTTP/2.0");
    }

    #[tokio::test]
    async fn a_refusal_keeps_the_gateways_words_and_kind() {
        let body = "refusing build session: session metadata x-docker-expose-session-uuid is missing (rule control.session)\n";
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut io = answer.as_bytes();
        let Err(SessionError::Refused(s)) = read_switch(&mut io).await else {
            panic!("not refused");
        };
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        assert_eq!(s.message(), body.trim());

        let mut io: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\ngone\n";
        let Err(SessionError::Refused(s)) = read_switch(&mut io).await else {
            panic!("not refused");
        };
        assert_eq!((s.code(), s.message()), (tonic::Code::Unavailable, "gone"));

        let mut io: &[u8] =
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 40\r\n\r\nbuildkit refused";
        let Err(SessionError::Refused(s)) = read_switch(&mut io).await else {
            panic!("not refused");
        };
        // a short body: the status line's words stand in for it
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::Unavailable, "Bad Gateway")
        );

        let mut io: &[u8] = b"garbage\r\n\r\n";
        assert!(
            matches!(read_switch(&mut io).await, Err(SessionError::Refused(s)) if s.code() == tonic::Code::Unavailable)
        );

        let mut io: &[u8] = b"HTTP/1.1 101 UPGR";
        assert!(
            matches!(read_switch(&mut io).await, Err(SessionError::Refused(s)) if s.code() == tonic::Code::Unavailable)
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
