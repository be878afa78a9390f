//! The gateway's own connection to the real containerd.
//!
//! Every request the gateway sends carries exactly the sandbox's namespace;
//! nothing the client sent as metadata is ever copied here.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1 as api;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// The header containerd reads the namespace from.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The header containerd reads a lease from.
pub const LEASE_HEADER: &str = "containerd-lease";
/// Lease label after which containerd's GC removes the lease itself.
pub const LABEL_GC_EXPIRE: &str = "containerd.io/gc.expire";

/// How long a call whose answer outlives a containerd restart waits for
/// containerd to come back (a restart takes a second or two; a containerd
/// that stays away this long is down, and the client is told so).
pub const RESTART_WINDOW: Duration = Duration::from_secs(30);
/// Pause between attempts while containerd is away.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Whether `s` says the connection to the daemon failed or broke, not that
/// the daemon answered. tonic reports a refused or lost connection as
/// Unavailable; a stream cut by the peer going away surfaces as Unknown,
/// Cancelled or Internal with hyper's or h2's words at the start (a
/// daemon's own errors may name connections further in: a registry's
/// `dial tcp: connection refused` is an answer, not a lost daemon).
pub fn connection_failed(s: &tonic::Status) -> bool {
    use tonic::Code;
    const CUT: [&str; 7] = [
        "transport error",
        "transport is closing",
        "h2 protocol error",
        "error reading a body from connection",
        "connection error",
        "connection closed",
        "stream closed",
    ];
    match s.code() {
        Code::Unavailable => true,
        Code::Unknown | Code::Cancelled | Code::Internal => {
            let m = s.message().trim_start().to_ascii_lowercase();
            CUT.iter().any(|w| m.starts_with(w))
        }
        _ => false,
    }
}

/// Calls `call` again while containerd is unreachable, for at most
/// `window`. For calls whose answer survives a containerd restart: a
/// task's process lives in its shim, containerd reconnects to the shim
/// when it starts again, and `Tasks.Wait` then returns the real exit status
/// (as dockerd's own wait does across a containerd restart). Any answer of
/// containerd, and the last failure after `window`, is returned as it is.
pub async fn retry_while_away<T, F, Fut>(window: Duration, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match call().await {
            Err(s) if connection_failed(&s) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            res => return res,
        }
    }
}

#[derive(Clone)]
pub struct Upstream {
    channel: Channel,
    namespace: String,
    socket: PathBuf,
}

impl Upstream {
    /// Connects lazily: the gateway starts even when containerd is not up yet,
    /// and reconnects after a containerd restart.
    pub fn new(socket: &Path, namespace: &str) -> anyhow::Result<Self> {
        let path = socket.to_path_buf();
        let channel = Endpoint::try_from("http://containerd.invalid")?.connect_with_connector_lazy(
            tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }),
        );
        Ok(Self {
            channel,
            namespace: namespace.to_string(),
            socket: socket.to_path_buf(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Wraps a message in a request pinned to the sandbox's namespace.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        let value: MetadataValue<_> = self
            .namespace
            .parse()
            .expect("namespace names are valid header values (checked at start-up)");
        req.metadata_mut().insert(NAMESPACE_HEADER, value);
        req
    }

    /// A request pinned to the sandbox's namespace and to a lease.
    pub fn request_leased<T>(&self, message: T, lease: &str) -> tonic::Request<T> {
        let mut req = self.request(message);
        let value: MetadataValue<_> = lease.parse().expect("lease ids are plain ASCII");
        req.metadata_mut().insert(LEASE_HEADER, value);
        req
    }

    /// Creates (or keeps, if it exists) the lease `id`, which containerd's GC
    /// drops by itself after `lifetime`. Resources created under it survive
    /// GC until something else (a container, an image) refers to them.
    pub async fn expiring_lease(
        &self,
        id: &str,
        lifetime: chrono::Duration,
    ) -> Result<(), tonic::Status> {
        let expire = chrono::Utc::now() + lifetime;
        let labels = std::collections::HashMap::from([(
            LABEL_GC_EXPIRE.to_string(),
            expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )]);
        let created = self
            .leases()
            .create(self.request(api::CreateRequest {
                id: id.to_string(),
                labels,
            }))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(s),
        }
    }

    /// Deletes the lease `id`; a lease that is already gone is fine.
    pub async fn drop_lease(&self, id: &str) -> Result<(), tonic::Status> {
        let deleted = self
            .leases()
            .delete(self.request(api::DeleteRequest {
                id: id.to_string(),
                sync: false,
            }))
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(s),
        }
    }

    /// The lease the gateway holds on a client's prepared snapshot from
    /// Snapshots.Prepare until a container refers to it (or it is removed).
    pub fn prepare_lease_id(snapshot_key: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(snapshot_key.as_bytes());
        format!("berth-prepare-{}", &hex::encode(digest)[..32])
    }

    pub fn containers(&self) -> api::containers_client::ContainersClient<Channel> {
        api::containers_client::ContainersClient::new(self.channel())
    }
    pub fn images(&self) -> api::images_client::ImagesClient<Channel> {
        api::images_client::ImagesClient::new(self.channel())
    }
    pub fn content(&self) -> api::content_client::ContentClient<Channel> {
        api::content_client::ContentClient::new(self.channel()).max_decoding_message_size(64 << 20)
    }
    pub fn snapshots(&self) -> api::snapshots::snapshots_client::SnapshotsClient<Channel> {
        api::snapshots::snapshots_client::SnapshotsClient::new(self.channel())
    }
    pub fn tasks(&self) -> api::tasks_client::TasksClient<Channel> {
        api::tasks_client::TasksClient::new(self.channel())
    }
    pub fn leases(&self) -> api::leases_client::LeasesClient<Channel> {
        api::leases_client::LeasesClient::new(self.channel())
    }
    pub fn diff(&self) -> api::diff_client::DiffClient<Channel> {
        api::diff_client::DiffClient::new(self.channel())
    }
    pub fn namespaces(&self) -> api::namespaces_client::NamespacesClient<Channel> {
        api::namespaces_client::NamespacesClient::new(self.channel())
    }
    pub fn events(&self) -> api::events_client::EventsClient<Channel> {
        api::events_client::EventsClient::new(self.channel())
    }
    pub fn version(&self) -> api::version_client::VersionClient<Channel> {
        api::version_client::VersionClient::new(self.channel())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tonic::{Code, Status};

    #[test]
    fn transport_failures_are_told_from_answers() {
        assert!(connection_failed(&Status::unavailable(
            "error trying to connect"
        )));
        assert!(connection_failed(&Status::unknown(
            "h2 protocol error: error reading a body from connection"
        )));
        assert!(connection_failed(&Status::cancelled(
            "transport is closing"
        )));
        assert!(!connection_failed(&Status::not_found("task x not found")));
        assert!(!connection_failed(&Status::unknown(
            "runc did not terminate successfully"
        )));
        assert!(!connection_failed(&Status::cancelled("context canceled")));
        assert!(!connection_failed(&Status::unknown(
            "failed to do request: dial tcp 10.201.0.4:5000: connection refused"
        )));
    }

    #[tokio::test]
    async fn retries_until_containerd_answers() {
        let calls = AtomicUsize::new(0);
        let res = retry_while_away(RESTART_WINDOW, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(Status::unavailable("connection refused"))
                } else {
                    Ok(137u32)
                }
            }
        })
        .await;
        assert_eq!(res.unwrap(), 137);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn answers_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let res: Result<u32, _> = retry_while_away(RESTART_WINDOW, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Status::not_found("no such task")) }
        })
        .await;
        assert_eq!(res.unwrap_err().code(), Code::NotFound);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_the_window() {
        let start = tokio::time::Instant::now();
        let res: Result<u32, _> = retry_while_away(Duration::from_secs(1), || async {
            Err(Status::unavailable("down"))
        })
        .await;
        assert_eq!(res.unwrap_err().code(), Code::Unavailable);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }
}
