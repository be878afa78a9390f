//! containerd's messages the attacks send straight to the gateway socket,
//! beyond those of `raw_api/raw.rs`: requests with hand-set metadata,
//! Containers.Update, Tasks.Exec, Events.Publish/Forward, content reads.

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateRequest, ExecProcessRequest, ForwardRequest, GetNamespaceRequest, InfoRequest,
    PublishRequest, ReadContentRequest, StartRequest, UpdateContainerRequest, WaitRequest,
};
use tonic::metadata::MetadataValue;
use tonic::Status;

use crate::raw::channel;

/// `msg` with each of `headers` appended to its metadata (a name given
/// twice is sent twice).
pub fn with_headers<T>(msg: T, headers: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    for (name, value) in headers {
        let value: MetadataValue<_> = value.parse().expect("ASCII metadata value");
        req.metadata_mut().append(*name, value);
    }
    req
}

/// Leases.Create of `id` with `headers` in its metadata.
pub async fn create_lease_as(id: &str, headers: &[(&'static str, &str)]) -> Result<(), Status> {
    let mut client = LeasesClient::new(channel().await);
    let msg = CreateRequest {
        id: id.to_string(),
        labels: Default::default(),
    };
    client.create(with_headers(msg, headers)).await.map(|_| ())
}

/// Namespaces.Get of `name`.
pub async fn get_namespace(name: &str) -> Result<(), Status> {
    let mut client = NamespacesClient::new(channel().await);
    let msg = GetNamespaceRequest {
        name: name.to_string(),
    };
    client.get(msg).await.map(|_| ())
}

/// Containers.Update of `container` with the field mask `paths` (none when
/// empty: containerd then replaces every field).
pub async fn update_container(container: Container, paths: &[&str]) -> Result<(), Status> {
    let mut client = ContainersClient::new(channel().await);
    let mask = (!paths.is_empty()).then(|| prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    });
    let msg = UpdateContainerRequest {
        container: Some(container),
        update_mask: mask,
    };
    client.update(msg).await.map(|_| ())
}

/// Containers.Get of `id` through the gateway.
pub async fn get_container(id: &str) -> Result<Container, Status> {
    use containerd_client::services::v1::GetContainerRequest;
    let mut client = ContainersClient::new(channel().await);
    let msg = GetContainerRequest { id: id.to_string() };
    let reply = client.get(msg).await?.into_inner();
    reply
        .container
        .ok_or_else(|| Status::not_found("no container in the reply"))
}

/// Tasks.Exec of a process spec given as JSON text.
pub async fn exec(
    container_id: &str,
    exec_id: &str,
    process_json: &str,
    stdout: &str,
) -> Result<(), Status> {
    let mut client = TasksClient::new(channel().await);
    let msg = ExecProcessRequest {
        container_id: container_id.to_string(),
        exec_id: exec_id.to_string(),
        stdout: stdout.to_string(),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".to_string(),
            value: process_json.as_bytes().to_vec(),
        }),
        ..Default::default()
    };
    client.exec(msg).await.map(|_| ())
}

/// Tasks.Start then Tasks.Wait of an exec; returns its exit status.
pub async fn start_and_wait(container_id: &str, exec_id: &str) -> Result<u32, Status> {
    let mut client = TasksClient::new(channel().await);
    client
        .start(StartRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
        })
        .await?;
    let done = client
        .wait(WaitRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
        })
        .await?
        .into_inner();
    Ok(done.exit_status)
}

/// Events.Publish of an empty event on `topic`.
pub async fn publish(topic: &str) -> Result<(), Status> {
    let mut client = EventsClient::new(channel().await);
    let msg = PublishRequest {
        topic: topic.to_string(),
        event: Some(prost_types::Any {
            type_url: "containerd.events.ContainerDelete".to_string(),
            value: vec![],
        }),
    };
    client.publish(msg).await.map(|_| ())
}

/// Events.Forward of an envelope on `topic` in `namespace`.
pub async fn forward(namespace: &str, topic: &str) -> Result<(), Status> {
    let mut client = EventsClient::new(channel().await);
    let msg = ForwardRequest {
        envelope: Some(containerd_client::types::Envelope {
            timestamp: None,
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: Some(prost_types::Any {
                type_url: "containerd.events.ContainerDelete".to_string(),
                value: vec![],
            }),
        }),
    };
    client.forward(msg).await.map(|_| ())
}

/// Content.Info of `digest`.
pub async fn content_info(digest: &str) -> Result<(), Status> {
    let mut client = ContentClient::new(channel().await);
    let msg = InfoRequest {
        digest: digest.to_string(),
    };
    client.info(msg).await.map(|_| ())
}

/// Content.Read of `digest`, to the end of the stream; returns the bytes.
pub async fn content_read(digest: &str) -> Result<Vec<u8>, Status> {
    let mut client = ContentClient::new(channel().await);
    let msg = ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let mut stream = client.read(msg).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(bytes)
}

/// Images.Create of `name` pointing at `target`.
pub async fn create_image(
    name: &str,
    target: containerd_client::types::Descriptor,
) -> Result<(), Status> {
    use containerd_client::services::v1::images_client::ImagesClient;
    use containerd_client::services::v1::{CreateImageRequest, Image};
    let mut client = ImagesClient::new(channel().await);
    let msg = CreateImageRequest {
        image: Some(Image {
            name: name.to_string(),
            target: Some(target),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create(msg).await.map(|_| ())
}
