//! The built image into the sandbox: the `oci` exporter's archive, as
//! BuildKit sends it over `FileSend`, streamed straight into the gateway's
//! image import (`berth.v1.Images/Load`), with no temporary file.

use berth_proto::berth::v1::images_client::ImagesClient;
use berth_proto::berth::v1::{load_response, LoadRequest, LoadedImage};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::progress::{SolveStatus, Time, Vertex, VertexStatus};
use crate::client::Gateway;
use crate::error::CliError;

/// Chunks of the archive are gathered to this size per load message.
const CHUNK: usize = 1 << 20;

/// An import running alongside the solve.
pub struct Import {
    task: JoinHandle<Result<Imported, CliError>>,
}

/// What the gateway imported.
#[derive(Debug, Default)]
pub struct Imported {
    /// When the first byte of the archive arrived; `None` when BuildKit
    /// exported nothing.
    pub started: Option<Time>,
    pub images: Vec<LoadedImage>,
}

impl Import {
    /// Starts importing what arrives on `archive` once its first chunk does.
    /// The channel is always drained, so a failed import never stalls
    /// BuildKit's export.
    pub fn start(gw: &Gateway, mut archive: mpsc::Receiver<Vec<u8>>) -> Import {
        let channel = gw.channel.clone();
        let task = tokio::spawn(async move {
            let Some(first) = archive.recv().await else {
                return Ok(Imported::default());
            };
            let started = Some(chrono::Utc::now());
            let (tx, rx) = mpsc::channel::<LoadRequest>(4);
            let forward = tokio::spawn(async move {
                let mut buf = first;
                let mut open = true;
                while let Some(chunk) = archive.recv().await {
                    if !open {
                        continue;
                    }
                    buf.extend_from_slice(&chunk);
                    if buf.len() >= CHUNK {
                        let chunk = std::mem::take(&mut buf);
                        open = tx.send(LoadRequest { chunk }).await.is_ok();
                    }
                }
                if open && !buf.is_empty() {
                    let _ = tx.send(LoadRequest { chunk: buf }).await;
                }
            });
            let mut client = ImagesClient::new(channel);
            let result = async {
                let mut stream = client.load(ReceiverStream::new(rx)).await?.into_inner();
                let mut images = Vec::new();
                while let Some(msg) = stream.message().await? {
                    if let Some(load_response::Payload::Loaded(img)) = msg.payload {
                        images.push(img);
                    }
                }
                Ok::<_, tonic::Status>(images)
            }
            .await;
            // Whatever the gateway said, the rest of the archive is read.
            let _ = forward.await;
            match result {
                Ok(images) => Ok(Imported { started, images }),
                Err(s) => Err(CliError::general(format!(
                    "importing the image into the sandbox: {}",
                    CliError::from_status(&s).message
                ))),
            }
        });
        Import { task }
    }

    /// Waits for the import to end (after the solve, which ends the archive).
    pub async fn finish(self) -> Result<Imported, CliError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(CliError::general(format!(
                "importing the image into the sandbox: {e}"
            ))),
        }
    }
}

/// The image ID of an import: its config digest.
pub fn image_id(images: &[LoadedImage]) -> Option<String> {
    images
        .iter()
        .map(|i| i.config_digest.clone())
        .find(|d| !d.is_empty())
}

/// The import as a vertex of the build's progress, shown after BuildKit's
/// own (as buildx shows loading a build result into docker): writing the
/// image, then each name it got.
pub fn progress(build_ref: &str, imported: &Imported, done: Time) -> Vec<SolveStatus> {
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(format!("berth-import:{build_ref}")))
    );
    let started = imported.started.unwrap_or(done);
    let vertex = |completed| Vertex {
        digest: digest.clone(),
        name: "importing to docker".into(),
        started: Some(started),
        completed,
        ..Default::default()
    };
    let mut statuses = Vec::new();
    if let Some(id) = image_id(&imported.images) {
        statuses.push(format!("writing image {id}"));
    }
    for img in &imported.images {
        if !img.name.is_empty() {
            statuses.push(format!("naming to {}", img.name));
        }
    }
    let statuses: Vec<VertexStatus> = statuses
        .into_iter()
        .map(|id| VertexStatus {
            id,
            vertex: digest.clone(),
            timestamp: Some(done),
            started: Some(done),
            completed: Some(done),
            ..Default::default()
        })
        .collect();
    vec![
        SolveStatus {
            vertexes: vec![vertex(None)],
            statuses,
            ..Default::default()
        },
        SolveStatus {
            vertexes: vec![vertex(Some(done))],
            ..Default::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_the_image_and_its_tags() {
        let imported = Imported {
            started: None,
            images: vec![
                LoadedImage {
                    name: "docker.io/library/a:latest".into(),
                    config_digest: "sha256:c0".into(),
                    target_digest: "sha256:m0".into(),
                },
                LoadedImage {
                    name: "docker.io/library/a:v2".into(),
                    config_digest: "sha256:c0".into(),
                    target_digest: "sha256:m0".into(),
                },
            ],
        };
        let now = chrono::Utc::now();
        let p = progress("r1", &imported, now);
        let ids: Vec<&str> = p[0].statuses.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "writing image sha256:c0",
                "naming to docker.io/library/a:latest",
                "naming to docker.io/library/a:v2"
            ]
        );
        assert_eq!(p[1].vertexes[0].completed, Some(now));
        assert_eq!(image_id(&imported.images).as_deref(), Some("sha256:c0"));
    }

    #[test]
    fn untagged_images_get_no_naming_line() {
        let imported = Imported {
            started: None,
            images: vec![LoadedImage {
                name: String::new(),
                config_digest: "sha256:c1".into(),
                target_digest: "sha256:m1".into(),
            }],
        };
        let p = progress("r", &imported, chrono::Utc::now());
        assert_eq!(p[0].statuses.len(), 1);
    }
}
