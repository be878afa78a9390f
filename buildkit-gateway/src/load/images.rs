//! Image records, written last: once they exist they root the blobs and
//! snapshots the lease was holding.

use containerd_client::services::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, UpdateImageRequest,
};
use containerd_client::types::Descriptor as WireDescriptor;
use tonic::Code;

use super::content::Session;
use super::plan::Target;
use super::{upstream_error, LoadError};

/// Record name of an image the archive gives no name, as docker's
/// containerd image store names dangling images: the prefix and the target
/// digest. The load reports it with an empty name.
pub const DANGLING_PREFIX: &str = "moby-dangling@";

pub fn record_name(name: &str, target: &Target) -> String {
    if name.is_empty() {
        format!("{DANGLING_PREFIX}{}", target.digest)
    } else {
        name.to_string()
    }
}

/// What publishing changed, so a later failure can undo it.
#[derive(Default)]
pub struct Published {
    created: Vec<String>,
    retargeted: Vec<Image>,
}

/// Creates the record `name` → `target`, or points an existing record of
/// that name at it (docker load retags).
pub async fn publish(
    s: &Session,
    name: &str,
    target: &Target,
    done: &mut Published,
) -> Result<(), LoadError> {
    let image = Image {
        name: name.to_string(),
        labels: Default::default(),
        target: Some(WireDescriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.to_string(),
            size: target.size as i64,
            annotations: Default::default(),
        }),
        created_at: None,
        updated_at: None,
    };
    let images = || s.upstream().images();
    let context = || format!("recording image {name}");
    match images()
        .create(s.request(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await
    {
        Ok(_) => {
            done.created.push(name.to_string());
            return Ok(());
        }
        Err(status) if status.code() == Code::AlreadyExists => {}
        Err(status) => return Err(upstream_error(&context(), status)),
    }
    let previous = images()
        .get(s.request(GetImageRequest {
            name: name.to_string(),
        }))
        .await
        .map_err(|st| upstream_error(&context(), st))?
        .into_inner()
        .image;
    let update = UpdateImageRequest {
        image: Some(image),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["target".to_string()],
        }),
        source_date_epoch: None,
    };
    images()
        .update(s.request(update))
        .await
        .map_err(|st| upstream_error(&context(), st))?;
    if let Some(previous) = previous {
        done.retargeted.push(previous);
    }
    Ok(())
}

/// Undoes `done` after a later record failed: no half-imported load.
pub async fn unpublish(s: &Session, done: Published) {
    let images = || s.upstream().images();
    for name in done.created {
        let _ = images()
            .delete(s.request(DeleteImageRequest {
                name,
                sync: false,
                target: None,
            }))
            .await;
    }
    for previous in done.retargeted {
        let update = UpdateImageRequest {
            image: Some(previous),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".to_string()],
            }),
            source_date_epoch: None,
        };
        let _ = images().update(s.request(update)).await;
    }
}
