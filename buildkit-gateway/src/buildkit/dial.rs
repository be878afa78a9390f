//! The gateway's connection to BuildKit.
//!
//! Two shapes speak the same Control API:
//!
//! * `unix:///run/buildkit/buildkitd.sock`: a buildkitd serving gRPC on a
//!   unix socket (production: a rootless buildkitd per sandbox);
//! * `docker+unix:///var/run/docker.sock`: Docker Engine's embedded BuildKit,
//!   reached through its API socket with `POST /grpc` and an upgrade to h2c.
//!   Docker answers `101 Switching Protocols` and the same connection then
//!   carries HTTP/2 (the local stack).
//!
//! Connections are made lazily and again after a failure, so the gateway
//! starts before the daemon and survives its restarts.
//!
//! A build session is the one exception for Docker Engine: its `POST
//! /grpc` is gRPC served through Go's `net/http` handler, which allocates
//! per message, and `Control.Session` wraps every byte of the session in a
//! `BytesMessage` on top. For a 500 MiB context that cost the Engine about
//! a third more CPU than the same context sent by `docker buildx`, which
//! uses the Engine's own `POST /session`: an upgrade after which the
//! connection *is* the session's HTTP/2. So for a `docker+unix` upstream
//! the gateway opens the session the same way ([`session_stream`]) and
//! relays the bytes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

const SCHEME_UNIX: &str = "unix://";
const SCHEME_DOCKER_UNIX: &str = "docker+unix://";

/// The upgrade request Docker's API answers with a raw HTTP/2 connection to
/// its BuildKit. The body is empty; the Host is not checked on a unix socket.
const UPGRADE_REQUEST: &[u8] = b"POST /grpc HTTP/1.1\r\n\
Host: docker\r\n\
Connection: Upgrade\r\n\
Upgrade: h2c\r\n\
Content-Length: 0\r\n\
\r\n";

/// The session headers Docker's `POST /session` reads (its canonical
/// spelling of the `x-docker-expose-session-*` metadata keys).
const SESSION_HEADERS: [(&str, &str); 4] = [
    (
        "x-docker-expose-session-uuid",
        "X-Docker-Expose-Session-Uuid",
    ),
    (
        "x-docker-expose-session-name",
        "X-Docker-Expose-Session-Name",
    ),
    (
        "x-docker-expose-session-sharedkey",
        "X-Docker-Expose-Session-Sharedkey",
    ),
    (
        "x-docker-expose-session-grpc-method",
        "X-Docker-Expose-Session-Grpc-Method",
    ),
];

/// Longest response head accepted before the HTTP/2 preface.
const MAX_HEAD: usize = 16 * 1024;
/// How long connecting and upgrading may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where BuildKit is, from the config key `buildkit_upstream`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum UpstreamAddr {
    /// buildkitd's gRPC socket.
    Unix(PathBuf),
    /// Docker Engine's API socket; BuildKit behind `POST /grpc`.
    DockerUnix(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("buildkit address {0:?} is not unix:///path or docker+unix:///path")]
    Address(String),
    #[error("upgrading {path} to h2c: {detail}")]
    Upgrade { path: String, detail: String },
    #[error("connecting to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
}

impl TryFrom<String> for UpstreamAddr {
    type Error = DialError;

    fn try_from(s: String) -> Result<Self, DialError> {
        let (docker, path) = if let Some(p) = s.strip_prefix(SCHEME_DOCKER_UNIX) {
            (true, p)
        } else if let Some(p) = s.strip_prefix(SCHEME_UNIX) {
            (false, p)
        } else {
            return Err(DialError::Address(s));
        };
        if !path.starts_with('/') || path.contains('\0') {
            return Err(DialError::Address(s));
        }
        let path = PathBuf::from(path);
        Ok(if docker {
            Self::DockerUnix(path)
        } else {
            Self::Unix(path)
        })
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "{SCHEME_UNIX}{}", p.display()),
            Self::DockerUnix(p) => write!(f, "{SCHEME_DOCKER_UNIX}{}", p.display()),
        }
    }
}

/// HTTP/2 flow-control windows towards BuildKit (see `channel`).
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;

impl UpstreamAddr {
    /// A channel that connects on first use and reconnects after a failure.
    pub fn channel(&self) -> Channel {
        let addr = self.clone();
        Endpoint::from_static("http://buildkit.invalid")
            .connect_timeout(CONNECT_TIMEOUT)
            // Build contexts and exports are large streams, and BuildKit asks
            // for a context's files with one tiny session message each. h2
            // closes a connection (GOAWAY) on which more small DATA frames
            // are buffered than its window allows, which with adaptive
            // windows (starting at 64 KiB) ended builds of contexts with
            // thousands of files in `h2 protocol error`. Wide fixed windows
            // keep that guard far away.
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let addr = addr.clone();
                async move {
                    let io = tokio::time::timeout(CONNECT_TIMEOUT, addr.connect())
                        .await
                        .map_err(|_| std::io::Error::other("timed out"))?
                        .map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(TokioIo::new(io))
                }
            }))
    }

    /// One connection, ready for HTTP/2.
    pub async fn connect(&self) -> Result<UnixStream, DialError> {
        let path = match self {
            Self::Unix(p) | Self::DockerUnix(p) => p,
        };
        let mut stream = UnixStream::connect(path)
            .await
            .map_err(|source| DialError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        if let Self::DockerUnix(_) = self {
            upgrade(&mut stream)
                .await
                .map_err(|detail| DialError::Upgrade {
                    path: path.display().to_string(),
                    detail,
                })?;
        }
        Ok(stream)
    }
}

/// A connection to Docker Engine's `POST /session` for the session
/// `headers` (checked printable text, so they cannot break the request):
/// after the 101 it carries the session's own HTTP/2, the daemon being the
/// client of the services the sandbox serves.
pub async fn session_stream(
    path: &std::path::Path,
    headers: &super::session::SessionHeaders,
) -> Result<UnixStream, DialError> {
    let mut request = String::from(
        "POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n",
    );
    let mut header = |key: &str, value: &str| {
        let name = SESSION_HEADERS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(key, |(_, canonical)| canonical);
        request.push_str(&format!("{name}: {value}\r\n"));
    };
    header(super::session::KEY_UUID, &headers.uuid);
    if let Some(name) = &headers.name {
        header(super::session::KEY_NAME, name);
    }
    if let Some(key) = &headers.shared_key {
        header(super::session::KEY_SHARED_KEY, key);
    }
    for m in &headers.methods {
        header(super::session::KEY_METHOD, m);
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| DialError::Connect {
            path: path.display().to_string(),
            source,
        })?;
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        upgrade_with(&mut stream, request.as_bytes()),
    )
    .await
    .map_err(|_| "timed out".to_string())
    .and_then(|r| r)
    .map_err(|detail| DialError::Upgrade {
        path: path.display().to_string(),
        detail,
    })?;
    Ok(stream)
}

/// Sends the upgrade request and reads the response head, byte by byte so
/// that nothing after the blank line is consumed: the server may send its
/// HTTP/2 SETTINGS right behind the 101, and those bytes belong to the
/// HTTP/2 client.
pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) -> Result<(), String> {
    upgrade_with(io, UPGRADE_REQUEST).await
}

async fn upgrade_with<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    request: &[u8],
) -> Result<(), String> {
    io.write_all(request)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    io.flush()
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() == MAX_HEAD {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
        let b = io
            .read_u8()
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        head.push(b);
    }
    let status_line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code != "101" {
        return Err(format!(
            "expected 101 Switching Protocols, got {status_line:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    #[test]
    fn addresses_table() {
        for (s, want) in [
            (
                "unix:///run/b.sock",
                Some(UpstreamAddr::Unix("/run/b.sock".into())),
            ),
            (
                "docker+unix:///run/d.sock",
                Some(UpstreamAddr::DockerUnix("/run/d.sock".into())),
            ),
            ("unix://run/b.sock", None),
            ("tcp://127.0.0.1:1234", None),
            ("/run/b.sock", None),
            ("docker+tcp://x", None),
        ] {
            let got = UpstreamAddr::try_from(s.to_string()).ok();
            assert_eq!(got, want, "{s}");
            if let Some(a) = got {
                assert_eq!(a.to_string(), s);
            }
        }
    }

    struct TempSock(PathBuf);
    impl Drop for TempSock {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }
    fn temp_sock() -> TempSock {
        let dir = std::env::temp_dir().join(format!(
            "berth-dial-test-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempSock(dir.join("docker.sock"))
    }

    /// A Docker-like server: reads the request head byte-wise, checks it,
    /// answers `reply`, and when that is a 101 serves gRPC health on the same
    /// connection (writing the 101 and then HTTP/2 from one task, as dockerd
    /// does, so SETTINGS can follow the head immediately).
    async fn serve_once(listener: UnixListener, reply: &'static str) -> String {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(conn.read_u8().await.unwrap());
        }
        conn.write_all(reply.as_bytes()).await.unwrap();
        if reply.contains(" 101 ") {
            let (reporter, health) = tonic_health::server::health_reporter();
            reporter
                .set_service_status("", tonic_health::ServingStatus::Serving)
                .await;
            let incoming = tokio_stream::once(Ok::<_, std::io::Error>(conn));
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(health)
                    .serve_with_incoming(incoming),
            );
        }
        String::from_utf8(head).unwrap()
    }

    #[tokio::test]
    async fn docker_upgrade_then_grpc() {
        let sock = temp_sock();
        let listener = UnixListener::bind(&sock.0).unwrap();
        let server = tokio::spawn(serve_once(
            listener,
            "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        ));
        let addr = UpstreamAddr::DockerUnix(sock.0.clone());
        let mut client = HealthClient::new(addr.channel());
        let resp = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.status, ServingStatus::Serving as i32);
        let head = server.await.unwrap();
        assert!(head.starts_with("POST /grpc HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nUpgrade: h2c\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: Upgrade\r\n"), "{head}");
    }

    // Docker may write its HTTP/2 SETTINGS in the same segment as the 101;
    // reading the head in larger chunks would swallow them.
    #[tokio::test]
    async fn bytes_behind_the_101_are_left_for_http2() {
        let (mut client, mut server) = UnixStream::pair().unwrap();
        // The answer and an empty SETTINGS frame are in the socket before the
        // client reads anything.
        server
            .write_all(b"HTTP/1.1 101 UPGRADED\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .unwrap();
        upgrade(&mut client).await.unwrap();
        let mut rest = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut rest))
            .await
            .expect("the bytes behind the head were consumed with it")
            .unwrap();
        assert_eq!(rest, [0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let mut req = vec![0u8; UPGRADE_REQUEST.len()];
        server.read_exact(&mut req).await.unwrap();
        assert_eq!(req, UPGRADE_REQUEST);
    }

    #[tokio::test]
    async fn a_refused_upgrade_is_an_error_naming_the_status() {
        let sock = temp_sock();
        let listener = UnixListener::bind(&sock.0).unwrap();
        let server = tokio::spawn(serve_once(
            listener,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ));
        let err = UpstreamAddr::DockerUnix(sock.0.clone())
            .connect()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("got \"HTTP/1.1 404 Not Found\""),
            "{err}"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_connect_error() {
        let sock = temp_sock();
        let err = UpstreamAddr::Unix(sock.0.clone())
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, DialError::Connect { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_endless_head_is_cut() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let writer = tokio::spawn(async move {
            let mut req = vec![0u8; UPGRADE_REQUEST.len()];
            b.read_exact(&mut req).await.unwrap();
            let _ = b.write_all(&vec![b'x'; MAX_HEAD + 10]).await;
        });
        let err = upgrade(&mut a).await.unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_session_upgrade_carries_the_session_headers_then_raw_bytes() {
        let sock = temp_sock();
        let listener = UnixListener::bind(&sock.0).unwrap();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(conn.read_u8().await.unwrap());
            }
            conn.write_all(
                b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nfrom-daemon",
            )
            .await
            .unwrap();
            let mut got = [0u8; 11];
            conn.read_exact(&mut got).await.unwrap();
            (String::from_utf8(head).unwrap(), got)
        });
        let headers = crate::buildkit::session::SessionHeaders {
            uuid: "u1".into(),
            name: Some("ctx name".into()),
            shared_key: Some("k".into()),
            methods: vec![
                "/moby.filesync.v1.FileSync/DiffCopy".into(),
                "/grpc.health.v1.Health/Check".into(),
            ],
        };
        let mut conn = session_stream(&sock.0, &headers).await.unwrap();
        let mut first = [0u8; 11];
        conn.read_exact(&mut first).await.unwrap();
        assert_eq!(
            &first, b"from-daemon",
            "bytes behind the 101 are the session's"
        );
        conn.write_all(b"from-client").await.unwrap();
        let (head, got) = server.await.unwrap();
        assert_eq!(&got, b"from-client");
        assert!(head.starts_with("POST /session HTTP/1.1\r\n"), "{head}");
        for line in [
            "Upgrade: h2c",
            "X-Docker-Expose-Session-Uuid: u1",
            "X-Docker-Expose-Session-Name: ctx name",
            "X-Docker-Expose-Session-Sharedkey: k",
            "X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy",
            "X-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check",
        ] {
            assert!(head.contains(&format!("{line}\r\n")), "{line} in {head}");
        }
    }
}
