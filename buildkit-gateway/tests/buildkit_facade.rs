//! The BuildKit facade against the stack's real BuildKit host (Docker Engine
//! 26 behind `POST /grpc`, `architecture/stack-contract.md`).
//!
//! Each test starts its own `berth-gateway` on scratch sockets, with the
//! repository's policies, forwarding to the stack's BuildKit host, and talks
//! raw Control API to it: what any client in the sandbox could send. The
//! stack's own gateway is left alone. Fails loudly when the stack is down.
//! Whole builds through a session are tested with the real CLI in
//! `cli/tests/build.rs`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_proto::buildkit::control::{
    control_client::ControlClient, BytesMessage, Exporter, InfoRequest, ListWorkersRequest,
    SolveRequest, StatusRequest,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

/// The stack's BuildKit host (Docker Engine's API socket).
const BUILDHOST_SOCKET: &str = "/run/berth-stack/buildhost/docker.sock";
/// The stack's real containerd (the gateway needs one to start).
const CONTAINERD_SOCKET: &str = "/run/berth-stack/containerd/containerd.sock";

struct Gateway {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn require_stack() {
    for p in [BUILDHOST_SOCKET, CONTAINERD_SOCKET] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: the local stack is not up (run fixtures/stack/up.sh as root)"
        );
    }
}

fn start_gateway() -> Gateway {
    start_gateway_to(&format!("docker+unix://{BUILDHOST_SOCKET}"))
}

/// A gateway forwarding BuildKit calls to `upstream`.
fn start_gateway_to(upstream: &str) -> Gateway {
    require_stack();
    let dir = std::env::temp_dir().join(format!(
        "berth-bk-facade-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("buildkit.sock");
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let config = format!(
        r#"namespace = "berth-bk-facade-test"
containerd_socket = "{CONTAINERD_SOCKET}"
listen_containerd = "{ctrd}"
listen_buildkit = "{bk}"
buildkit_upstream = "{upstream}"
state_dir = "{state}"
policy_dir = "{policies}"
netns_path = "/run/netns/berth-sandbox"
proxy_url = "http://10.200.0.1:3128"
no_proxy = "localhost"
volume_roots = []
snapshotter = "overlayfs"
"#,
        ctrd = dir.join("containerd.sock").display(),
        bk = socket.display(),
        state = dir.join("state").display(),
        policies = policies.display(),
    );
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_berth-gateway"))
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("gateway.log")).unwrap())
        .spawn()
        .unwrap();
    let gw = Gateway { child, dir, socket };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the gateway did not serve {} within 10s; its log:\n{}",
            gw.socket.display(),
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    gw
}

impl Gateway {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    async fn client(&self) -> ControlClient<Channel> {
        let path = self.socket.clone();
        let channel = Endpoint::from_static("http://gateway.invalid")
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .unwrap();
        ControlClient::new(channel)
    }
}

fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[tokio::test]
async fn list_workers_and_info_reach_the_buildkit_host() {
    let gw = start_gateway();
    let mut c = gw.client().await;

    let workers = c
        .list_workers(ListWorkersRequest::default())
        .await
        .unwrap_or_else(|e| panic!("ListWorkers: {e}; gateway log:\n{}", gw.log()))
        .into_inner();
    assert!(!workers.record.is_empty(), "no workers");
    let platforms: Vec<String> = workers
        .record
        .iter()
        .flat_map(|w| w.platforms.iter())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    assert!(
        platforms.contains(&format!("linux/{}", native_arch())),
        "{platforms:?}"
    );

    let info = c.info(InfoRequest {}).await.unwrap().into_inner();
    let version = info.buildkit_version.expect("a version");
    assert!(version.version.starts_with('v'), "{version:?}");
    eprintln!("through the gateway: BuildKit {version:?}, worker platforms {platforms:?}");

    let log = gw.log();
    assert!(
        log.contains(r#""method":"/moby.buildkit.v1.Control/ListWorkers""#)
            && log.contains(r#""verdict":"allow""#),
        "no audit line for ListWorkers:\n{log}"
    );
}

fn insecure_build() -> SolveRequest {
    let out = Exporter {
        r#type: "oci".into(),
        attrs: Default::default(),
    };
    SolveRequest {
        r#ref: format!("berthtest{:x}", rand::random::<u32>()),
        frontend: "dockerfile.v0".into(),
        entitlements: vec!["security.insecure".into()],
        exporter_deprecated: "oci".into(),
        exporters: vec![out],
        ..Default::default()
    }
}

#[tokio::test]
async fn an_insecure_solve_is_refused_before_buildkit() {
    let gw = start_gateway();
    let mut c = gw.client().await;
    let req = insecure_build();
    let reference = req.r#ref.clone();
    let err = c.solve(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(
        err.message(),
        "refusing build: entitlement security.insecure is not allowed in this sandbox (rule control.solve)"
    );
    // BuildKit never heard of the build: asked for the ref's status it
    // answers "no such job" or waits for one that never comes; it must not
    // show a vertex.
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = c
            .status(StatusRequest {
                r#ref: reference.clone(),
            })
            .await?
            .into_inner();
        s.message().await
    })
    .await;
    assert!(
        !matches!(first, Ok(Ok(Some(ref s))) if !s.vertexes.is_empty()),
        "BuildKit saw the refused build: {first:?}"
    );
    let log = gw.log();
    assert!(
        log.contains(&format!(r#""object":"{reference}""#)) && log.contains(r#""verdict":"deny""#),
        "no deny audit line:\n{log}"
    );
}

#[tokio::test]
async fn a_host_network_override_is_refused() {
    let gw = start_gateway();
    let mut c = gw.client().await;
    let mut req = insecure_build();
    req.entitlements.clear();
    req.frontend_attrs
        .insert("force-network-mode".into(), "host".into());
    let err = c.solve(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message()
            .contains("frontend option force-network-mode is not allowed"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_session_without_its_id_is_refused() {
    let gw = start_gateway();
    let mut c = gw.client().await;
    let mut req = tonic::Request::new(tokio_stream::iter(vec![BytesMessage { data: vec![0] }]));
    req.metadata_mut().insert(
        "x-docker-expose-session-grpc-method",
        "/moby.filesync.v1.FileSync/DiffCopy".parse().unwrap(),
    );
    let err = c.session(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(
        err.message(),
        "refusing build session: session metadata x-docker-expose-session-uuid is missing (rule control.session)"
    );
}

/// A `POST /session` head (Docker's API spelling) with `extra` header lines.
fn session_head(extra: &str) -> String {
    format!(
        "POST /session HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// Sends `request` on a new connection to the gateway's BuildKit socket and
/// returns everything it answers until it closes (or the status line and
/// headers of a 101, which keeps the connection open).
async fn http_exchange(gw: &Gateway, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(&gw.socket).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the gateway answers within 10 s");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.starts_with(b"HTTP/1.1 101") && got.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A socket standing in for BuildKit's host that records whether anything
/// connected to it.
struct Upstream {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

impl Upstream {
    fn bind() -> Self {
        let path = std::env::temp_dir().join(format!(
            "berth-fake-engine-{:x}.sock",
            rand::random::<u64>()
        ));
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        Upstream { listener, path }
    }

    fn addr(&self) -> String {
        format!("docker+unix://{}", self.path.display())
    }

    async fn reached(&self) -> bool {
        tokio::time::timeout(Duration::from_millis(500), self.listener.accept())
            .await
            .is_ok()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test]
async fn a_session_over_http_without_its_id_is_refused_before_buildkit() {
    let up = Upstream::bind();
    let gw = start_gateway_to(&up.addr());
    let answer = http_exchange(
        &gw,
        &session_head(
            "X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy\r\n",
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nrefusing build session: session metadata x-docker-expose-session-uuid is missing (rule control.session)\n"),
        "{answer}"
    );
    assert!(
        !up.reached().await,
        "the refused session reached the upstream"
    );
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"rule\":\"control.session\"")
                && l.contains("\"verdict\":\"deny\"")),
        "no deny line in the log:\n{log}"
    );
}

#[tokio::test]
async fn other_http_requests_are_refused_before_buildkit() {
    let up = Upstream::bind();
    let gw = start_gateway_to(&up.addr());
    for (request, status, reason) in [
        (
            "GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n".to_string(),
            "404 Not Found",
            "GET /_ping is not served on this socket, only POST /session",
        ),
        (
            "POST /grpc HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                .to_string(),
            "404 Not Found",
            "POST /grpc is not served on this socket, only POST /session",
        ),
        (
            session_head("X-Docker-Expose-Session-Uuid: abc\r\n")
                .replace("Upgrade: h2c", "Upgrade: websocket"),
            "400 Bad Request",
            "POST /session must ask for Connection: Upgrade and Upgrade: h2c",
        ),
        (
            "this is not http\r\n\r\n".to_string(),
            "400 Bad Request",
            "malformed request: invalid HTTP version",
        ),
    ] {
        let answer = http_exchange(&gw, &request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request:?}: {answer}"
        );
        assert!(
            answer.ends_with(&format!("\r\n\r\n{reason}\n")),
            "{request:?}: {answer}"
        );
    }
    assert!(
        !up.reached().await,
        "a refused request reached the upstream"
    );
    // each refusal is one audit line, with what was asked for
    let log = gw.log();
    for object in ["GET /_ping", "POST /grpc"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("\"object\":\"{object}\""))
                    && l.contains("\"verdict\":\"deny\"")),
            "no deny line for {object}:\n{log}"
        );
    }
    let denies = log
        .lines()
        .filter(|l| l.contains("\"verdict\":\"deny\""))
        .count();
    assert_eq!(denies, 4, "{log}");
}

#[tokio::test]
async fn a_session_over_http_is_opened_on_the_buildkit_host() {
    let gw = start_gateway();
    let answer = http_exchange(
        &gw,
        &session_head(
            "X-Docker-Expose-Session-Uuid: berthtestsession1\r\nX-Docker-Expose-Session-Name: t\r\n\
X-Docker-Expose-Session-Sharedkey: k\r\nX-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check\r\n",
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"object\":\"berthtestsession1\"")
                && l.contains("\"verdict\":\"allow\"")),
        "no allow line in the log:\n{log}"
    );
}

/// A buildkitd stand-in for the framing of a session: its `Control.Session`
/// echoes every `BytesMessage` back and records the metadata it was
/// opened with. Every other method is unimplemented.
mod echo {
    use berth_proto::buildkit::control::{self as bk, control_server};
    use std::sync::{Arc, Mutex};
    use tonic::{Request, Response, Status, Streaming};

    type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

    #[derive(Clone, Default)]
    pub struct Echo {
        pub seen: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
    }

    #[tonic::async_trait]
    impl control_server::Control for Echo {
        async fn disk_usage(
            &self,
            _: Request<bk::DiskUsageRequest>,
        ) -> Result<Response<bk::DiskUsageResponse>, Status> {
            Err(Status::unimplemented(""))
        }
        type PruneStream = Stream<bk::UsageRecord>;
        async fn prune(
            &self,
            _: Request<bk::PruneRequest>,
        ) -> Result<Response<Self::PruneStream>, Status> {
            Err(Status::unimplemented(""))
        }
        async fn solve(
            &self,
            _: Request<bk::SolveRequest>,
        ) -> Result<Response<bk::SolveResponse>, Status> {
            Err(Status::unimplemented(""))
        }
        type StatusStream = Stream<bk::StatusResponse>;
        async fn status(
            &self,
            _: Request<bk::StatusRequest>,
        ) -> Result<Response<Self::StatusStream>, Status> {
            Err(Status::unimplemented(""))
        }
        type SessionStream = Stream<bk::BytesMessage>;
        async fn session(
            &self,
            req: Request<Streaming<bk::BytesMessage>>,
        ) -> Result<Response<Self::SessionStream>, Status> {
            self.seen.lock().unwrap().push(req.metadata().clone());
            Ok(Response::new(Box::pin(req.into_inner())))
        }
        async fn list_workers(
            &self,
            _: Request<bk::ListWorkersRequest>,
        ) -> Result<Response<bk::ListWorkersResponse>, Status> {
            Err(Status::unimplemented(""))
        }
        async fn info(
            &self,
            _: Request<bk::InfoRequest>,
        ) -> Result<Response<bk::InfoResponse>, Status> {
            Err(Status::unimplemented(""))
        }
    }

    /// Serves an `Echo` on `path` until the test ends.
    pub fn serve(path: &std::path::Path) -> Echo {
        let echo = Echo::default();
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let svc = control_server::ControlServer::new(echo.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
        );
        echo
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_http_to_a_buildkitd_is_framed_both_ways_with_only_checked_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = std::env::temp_dir().join(format!("berth-echo-bk-{:x}.sock", rand::random::<u64>()));
    let echo = echo::serve(&path);
    let gw = start_gateway_to(&format!("unix://{}", path.display()));
    let mut s = tokio::net::UnixStream::connect(&gw.socket).await.unwrap();
    let head = session_head(
        "X-Docker-Expose-Session-Uuid: berthechosession\r\nX-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check\r\nAuthorization: Bearer secret\r\nX-Other: 1\r\n",
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        answer.push(s.read_u8().await.unwrap());
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // 300 KiB both ways: more than one BytesMessage of the gateway's
    let payload: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut rd, mut wr) = s.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await.unwrap();
        wr
    });
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(10), rd.read_exact(&mut back))
        .await
        .expect("the echo comes back within 10 s")
        .unwrap();
    assert!(back == payload, "the bytes came back changed");
    drop(writer.await.unwrap());
    let seen = echo.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let md = &seen[0];
    assert_eq!(
        md.get("x-docker-expose-session-uuid").unwrap(),
        "berthechosession"
    );
    assert!(
        md.get("authorization").is_none() && md.get("x-other").is_none(),
        "{md:?}"
    );
    let _ = std::fs::remove_file(&path);
}
