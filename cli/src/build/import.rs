//! The import of a built image into the sandbox as the build's progress
//! shows it, and the image ID `-q` and `--iidfile` give. (The import
//! itself is the session export store's, `build::store`.)

use berth_proto::berth::v1::LoadedImage;
use sha2::{Digest as _, Sha256};

use super::progress::{SolveStatus, Time, Vertex, VertexStatus};

/// What the gateway imported.
#[derive(Debug, Default)]
pub struct Imported {
    /// When the import started.
    pub started: Option<Time>,
    pub images: Vec<LoadedImage>,
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
