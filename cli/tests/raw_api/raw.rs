//! containerd's messages sent straight to the gateway socket, for requests
//! `ctr` cannot make through the gateway (it needs Introspection, snapshot
//! mounts and `containerd.io/` labels on its leases, all of which the
//! gateway refuses before the request under test is sent) or cannot express
//! at all (JSON with case-variant or duplicate keys). The connection comes
//! from the test process (root, on the host), not the agent: the gateway
//! serves one sandbox and decides on the request alone.

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{PrepareSnapshotRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    container, ApplyRequest, CheckpointTaskRequest, Container, CreateContainerRequest,
    CreateTaskRequest, DiffRequest, UpdateTaskRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::{Descriptor, Mount};
use sha2::{Digest, Sha256};
use tonic::transport::{Channel, Endpoint};

use super::common::{BUSYBOX_REF, GATEWAY_SOCKET};

/// The type URL containerd gives an OCI runtime spec.
const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

pub async fn channel() -> Channel {
    Endpoint::try_from("http://gateway.invalid")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(|_| async {
            let stream = tokio::net::UnixStream::connect(GATEWAY_SOCKET).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }))
        .await
        .expect("connecting to the gateway socket")
}

/// A container record as a well-behaved client would send it (busybox,
/// runc v2 without options, the sandbox's snapshotter), with `spec_json` as
/// the exact spec bytes.
pub fn container(id: &str, spec_json: &str) -> Container {
    Container {
        id: id.to_string(),
        image: BUSYBOX_REF.to_string(),
        runtime: Some(container::Runtime {
            name: "io.containerd.runc.v2".to_string(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: SPEC_TYPE.to_string(),
            value: spec_json.as_bytes().to_vec(),
        }),
        snapshotter: "overlayfs".to_string(),
        snapshot_key: id.to_string(),
        ..Default::default()
    }
}

pub async fn create_container(container: Container) -> Result<(), tonic::Status> {
    let mut client = ContainersClient::new(channel().await);
    let req = CreateContainerRequest {
        container: Some(container),
    };
    client.create(req).await.map(|_| ())
}

pub fn bind(source: &str) -> Mount {
    Mount {
        r#type: "bind".to_string(),
        source: source.to_string(),
        target: String::new(),
        options: vec!["rbind".to_string(), "rw".to_string()],
    }
}

pub async fn create_task(req: CreateTaskRequest) -> Result<(), tonic::Status> {
    let mut client = TasksClient::new(channel().await);
    client.create(req).await.map(|_| ())
}

pub async fn checkpoint(container_id: &str) -> Result<(), tonic::Status> {
    let mut client = TasksClient::new(channel().await);
    let req = CheckpointTaskRequest {
        container_id: container_id.to_string(),
        ..Default::default()
    };
    client.checkpoint(req).await.map(|_| ())
}

pub async fn update_task(container_id: &str) -> Result<(), tonic::Status> {
    let mut client = TasksClient::new(channel().await);
    let req = UpdateTaskRequest {
        container_id: container_id.to_string(),
        ..Default::default()
    };
    client.update(req).await.map(|_| ())
}

/// Snapshots.Prepare without labels; returns the mounts handed back.
pub async fn prepare(
    snapshotter: &str,
    key: &str,
    parent: &str,
) -> Result<Vec<Mount>, tonic::Status> {
    let mut client = SnapshotsClient::new(channel().await);
    let req = PrepareSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        key: key.to_string(),
        parent: parent.to_string(),
        ..Default::default()
    };
    Ok(client.prepare(req).await?.into_inner().mounts)
}

pub async fn remove_snapshot(key: &str) -> Result<(), tonic::Status> {
    let mut client = SnapshotsClient::new(channel().await);
    let req = RemoveSnapshotRequest {
        snapshotter: "overlayfs".to_string(),
        key: key.to_string(),
    };
    client.remove(req).await.map(|_| ())
}

/// Diff.Apply of `layer` onto a bind mount of a host directory.
pub async fn apply(layer: Descriptor, host_dir: &str) -> Result<(), tonic::Status> {
    let mut client = DiffClient::new(channel().await);
    let req = ApplyRequest {
        diff: Some(layer),
        mounts: vec![bind(host_dir)],
        ..Default::default()
    };
    client.apply(req).await.map(|_| ())
}

/// Diff.Diff between two host directories.
pub async fn diff(left: &str, right: &str) -> Result<(), tonic::Status> {
    let mut client = DiffClient::new(channel().await);
    let req = DiffRequest {
        left: vec![bind(left)],
        right: vec![bind(right)],
        ..Default::default()
    };
    client.diff(req).await.map(|_| ())
}

/// Content.Write of `data` as one committed write, reading the reply stream
/// to its end so a refusal sent as the stream's status is seen.
pub async fn write_content(reference: &str, data: &[u8]) -> Result<(), tonic::Status> {
    let req = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: reference.to_string(),
        total: data.len() as i64,
        expected: format!("sha256:{}", hex::encode(Sha256::digest(data))),
        offset: 0,
        data: data.to_vec(),
        ..Default::default()
    };
    let mut client = ContentClient::new(channel().await);
    let mut replies = client
        .write(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    while replies.message().await?.is_some() {}
    Ok(())
}

/// Snapshots.Prepare with `labels`.
pub async fn prepare_labelled(
    key: &str,
    parent: &str,
    labels: &[(&str, &str)],
) -> Result<(), tonic::Status> {
    let mut client = SnapshotsClient::new(channel().await);
    let req = PrepareSnapshotRequest {
        snapshotter: "overlayfs".to_string(),
        key: key.to_string(),
        parent: parent.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    client.prepare(req).await.map(|_| ())
}

/// Leases.Create with `id` and `labels`.
pub async fn create_lease(id: &str, labels: &[(&str, &str)]) -> Result<(), tonic::Status> {
    use containerd_client::services::v1::leases_client::LeasesClient;
    let mut client = LeasesClient::new(channel().await);
    let req = containerd_client::services::v1::CreateRequest {
        id: id.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    client.create(req).await.map(|_| ())
}

/// Leases.Delete of `id` (cleanup after a lease that was wrongly accepted).
pub async fn delete_lease(id: &str) -> Result<(), tonic::Status> {
    use containerd_client::services::v1::leases_client::LeasesClient;
    let mut client = LeasesClient::new(channel().await);
    let req = containerd_client::services::v1::DeleteRequest {
        id: id.to_string(),
        sync: false,
    };
    client.delete(req).await.map(|_| ())
}
