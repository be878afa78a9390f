//! What the gateway adds to one unary call (target: ≤ 1 ms median; see
//! architecture/benchmarks.md): the same call through the gateway's socket
//! and straight to the real containerd, from an in-process tonic client with
//! one connection per side reused across calls, so neither process start nor
//! connection set-up is timed.
//!
//! - `unary_version`: `Version.Version` — the gateway decides
//!   (`version.version`), logs and forwards.
//! - `unary_containers_list`: `Containers.List` of the sandbox's namespace —
//!   the direct call names the namespace itself, as the gateway does.
//!
//! Needs the local stack with berth-gateway running (fixtures/stack/up.sh)
//! and root (the real socket is root's). Skips with a message when either
//! socket does not answer. Run with
//! `cargo bench -p berth-gateway --bench unary` (or `make bench`).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use containerd_client::services::v1 as api;
use criterion::{criterion_group, criterion_main, Criterion};
use tonic::transport::{Channel, Endpoint};

/// The gateway's containerd socket (architecture/stack-contract.md).
const GATEWAY_SOCKET: &str = "/run/berth-stack/gateway/containerd.sock";
/// The real containerd's socket.
const CONTAINERD_SOCKET: &str = "/run/berth-stack/containerd/containerd.sock";
/// The sandbox's namespace, which the gateway pins every request to; the
/// direct calls name it themselves.
const NAMESPACE: &str = "berth-sandbox";
/// Overrides of the two sockets and of the gateway's namespace, for another
/// gateway on the same containerd (fixtures/bench/run.sh sets them).
const ENV_GATEWAY_SOCKET: &str = "BERTH_BENCH_GATEWAY_SOCKET";
const ENV_CONTAINERD_SOCKET: &str = "BERTH_BENCH_CONTAINERD_SOCKET";
const ENV_NAMESPACE: &str = "BERTH_BENCH_NAMESPACE";

fn socket(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| default.into())
}

async fn connect(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    Endpoint::try_from("http://containerd.invalid")?
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}

/// One side of the comparison. `namespace` is sent only on the direct side:
/// the gateway sets the sandbox's namespace itself.
#[derive(Clone)]
struct Side {
    name: &'static str,
    channel: Channel,
    namespace: Option<String>,
}

impl Side {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        if let Some(ns) = &self.namespace {
            req.metadata_mut().insert(
                "containerd-namespace",
                ns.parse().expect("namespace is a valid header value"),
            );
        }
        req
    }

    async fn version(&self) -> Result<api::VersionResponse, tonic::Status> {
        let mut client = api::version_client::VersionClient::new(self.channel.clone());
        Ok(client.version(self.request(())).await?.into_inner())
    }

    async fn list(&self) -> Result<api::ListContainersResponse, tonic::Status> {
        let mut client = api::containers_client::ContainersClient::new(self.channel.clone());
        let req = self.request(api::ListContainersRequest { filters: vec![] });
        Ok(client.list(req).await?.into_inner())
    }
}

/// Both sides, each checked with one call of each method; None (and why on
/// stderr) when a socket is absent or refuses.
fn sides(rt: &tokio::runtime::Runtime) -> Option<[Side; 2]> {
    let namespace = std::env::var(ENV_NAMESPACE).unwrap_or_else(|_| NAMESPACE.to_string());
    let targets = [
        ("gateway", socket(ENV_GATEWAY_SOCKET, GATEWAY_SOCKET), None),
        (
            "containerd",
            socket(ENV_CONTAINERD_SOCKET, CONTAINERD_SOCKET),
            Some(namespace),
        ),
    ];
    let mut out = Vec::new();
    for (name, path, namespace) in targets {
        let channel = match rt.block_on(connect(&path)) {
            Ok(c) => c,
            Err(e) => {
                let cause = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                eprintln!(
                    "skipping unary benches: cannot connect to the {name} at {}: {e}{cause}",
                    path.display()
                );
                return None;
            }
        };
        let side = Side {
            name,
            channel,
            namespace,
        };
        let check = rt.block_on(async {
            side.version().await.map(|_| ())?;
            side.list().await.map(|_| ())
        });
        if let Err(status) = check {
            eprintln!(
                "skipping unary benches: the {name} at {} refuses: {}",
                path.display(),
                status.message()
            );
            return None;
        }
        out.push(side);
    }
    out.try_into().ok()
}

fn unary(c: &mut Criterion) {
    // One thread drives client and connection alike, so the client adds as
    // little as it can to either side.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let Some(sides) = sides(&rt) else { return };

    let mut group = c.benchmark_group("unary_version");
    for side in &sides {
        group.bench_function(side.name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(side.version().await.expect("Version")) })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("unary_containers_list");
    for side in &sides {
        group.bench_function(side.name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(side.list().await.expect("Containers.List")) })
        });
    }
    group.finish();
}

criterion_group!(benches, unary);
criterion_main!(benches);
