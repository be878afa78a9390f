//! The gateway's own connection to the real containerd.
//!
//! Every request the gateway sends carries exactly the sandbox's namespace;
//! nothing the client sent as metadata is ever copied here.

use std::path::{Path, PathBuf};

use containerd_client::services::v1 as api;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// The header containerd reads the namespace from.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The header containerd reads a lease from.
pub const LEASE_HEADER: &str = "containerd-lease";
/// Lease label after which containerd's GC removes the lease itself.
pub const LABEL_GC_EXPIRE: &str = "containerd.io/gc.expire";

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
