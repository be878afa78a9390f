//! Writing the sandbox's image records (tag, rmi, prune) and the facts
//! those commands decide on: which names an image ID has, and which
//! containers use it.
//!
//! An image is its records: containerd keeps content only while a record
//! (or a lease, or a container's snapshot) roots it, so deleting the last
//! record of an image deletes the image. An image that loses its last name
//! while a container still uses it keeps a dangling record, as docker's
//! containerd image store does, so the container's image stays inspectable.

use std::collections::BTreeMap;

use containerd_client::services::v1 as api;
use containerd_client::services::v1::images_client::ImagesClient;
use tonic::Code;

use super::{parse_name, ImageError, Resolved, DANGLING_PREFIX};
use crate::client::Gateway;
use crate::containers;
use crate::refs::Reference;

/// Every image ID of the sandbox with its records, as read at one moment.
pub(crate) struct Catalog {
    pub images: Vec<Image>,
}

/// One image ID (config digest) and every record pointing at it.
pub(crate) struct Image {
    pub id: String,
    /// One readable description (any record's).
    pub resolved: Resolved,
    /// Every record of this ID, named or dangling.
    pub records: Vec<api::Image>,
}

impl Image {
    /// The records that are references docker would show (not dangling).
    pub fn references(&self) -> Vec<(String, Reference)> {
        self.records
            .iter()
            .filter_map(|r| parse_name(&r.name).map(|p| (r.name.clone(), p)))
            .collect()
    }

    pub fn is_dangling(&self) -> bool {
        self.references().is_empty()
    }

    /// docker's short image ID: 12 hex digits.
    pub fn short_id(&self) -> String {
        short(&self.id)
    }
}

/// The first 12 hex digits of an ID, without its algorithm.
pub(crate) fn short(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

impl Catalog {
    /// Reads every record; a record whose content cannot be read is left
    /// out (it names no image ID).
    pub async fn read(gw: &Gateway) -> Result<Self, ImageError> {
        let mut images: Vec<Image> = Vec::new();
        for (record, r) in super::list(gw).await? {
            let Ok(r) = r else { continue };
            match images.iter_mut().find(|i| i.id == r.config_digest) {
                Some(i) => i.records.push(record),
                None => images.push(Image {
                    id: r.config_digest.clone(),
                    resolved: r,
                    records: vec![record],
                }),
            }
        }
        Ok(Self { images })
    }

    pub fn by_id(&self, id: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }

    /// The image a stored record name belongs to.
    pub fn by_record(&self, name: &str) -> Option<&Image> {
        self.images
            .iter()
            .find(|i| i.records.iter().any(|r| r.name == name))
    }
}

/// A container as image commands see it: which image ID it uses and
/// whether its task runs.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub image_id: String,
    pub running: bool,
}

/// Every container of the sandbox with the image ID it was created from
/// (its recorded ID, else what its image record points to now).
pub(crate) async fn users(gw: &Gateway, catalog: &Catalog) -> crate::error::Result<Vec<User>> {
    let live = containers::list_live(gw).await?;
    Ok(live
        .into_iter()
        .map(|(c, state)| {
            let image_id = if c.record.image_id.is_empty() {
                catalog
                    .by_record(&c.image_name)
                    .map(|i| i.id.clone())
                    .unwrap_or_default()
            } else {
                c.record.image_id.clone()
            };
            User {
                id: c.id,
                image_id,
                running: state.is_running(),
            }
        })
        .collect())
}

fn images_api(gw: &Gateway) -> ImagesClient<tonic::transport::Channel> {
    ImagesClient::new(gw.channel.clone())
}

/// Points the record `name` at `target`: creates it, or moves an existing
/// one (docker tag over an existing tag).
pub(crate) async fn put(
    gw: &Gateway,
    name: &str,
    target: &containerd_client::types::Descriptor,
) -> Result<(), tonic::Status> {
    let image = api::Image {
        name: name.to_string(),
        labels: Default::default(),
        target: Some(target.clone()),
        created_at: None,
        updated_at: None,
    };
    match images_api(gw)
        .create(api::CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        })
        .await
    {
        Ok(_) => return Ok(()),
        Err(s) if s.code() == Code::AlreadyExists => {}
        Err(s) => return Err(s),
    }
    images_api(gw)
        .update(api::UpdateImageRequest {
            image: Some(image),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".to_string()],
            }),
            source_date_epoch: None,
        })
        .await
        .map(|_| ())
}

/// Deletes the record `name`. `sync`: containerd collects what no record
/// roots any more before answering, so the space is free when rmi returns.
pub(crate) async fn delete(gw: &Gateway, name: &str, sync: bool) -> Result<(), tonic::Status> {
    match images_api(gw)
        .delete(api::DeleteImageRequest {
            name: name.to_string(),
            sync,
            target: None,
        })
        .await
    {
        Ok(_) => Ok(()),
        // Someone else removed it meanwhile: the wanted state holds.
        Err(s) if s.code() == Code::NotFound => Ok(()),
        Err(s) => Err(s),
    }
}

/// The dangling record's name for a target, as the gateway's loader and
/// docker's containerd store name them.
pub(crate) fn dangling_name(target_digest: &str) -> String {
    format!("{DANGLING_PREFIX}{target_digest}")
}

/// Keeps an image that is about to lose its last name: gives it a dangling
/// record first. Best effort: a refusal leaves the image to lose its content
/// (the container's own snapshot is kept by containerd either way).
pub(crate) async fn keep_dangling(gw: &Gateway, image: &Image) {
    let Some(target) = image.resolved.record.target.as_ref() else {
        return;
    };
    let name = dangling_name(&target.digest);
    if image.records.iter().any(|r| r.name == name) {
        return;
    }
    let _ = put(gw, &name, target).await;
}

/// docker's `isSingleReference`: true when the references are one tag (plus
/// any digests) or only digests, all of one repository. No reference at all
/// is not a single reference.
pub(crate) fn is_single_reference(refs: &[Reference]) -> bool {
    let mut repos: BTreeMap<String, ()> = BTreeMap::new();
    let mut tagged: Option<&Reference> = None;
    for r in refs {
        if r.digest.is_some() {
            repos.insert(r.name(), ());
        } else if tagged.is_none() {
            repos.insert(r.name(), ());
            tagged = Some(r);
        } else {
            return false;
        }
    }
    let Some(first) = tagged.or(refs.first()) else {
        return false;
    };
    repos.len() == 1 && repos.contains_key(&first.name())
}

/// An image with the given record names and nothing readable, for
/// decision tests.
#[cfg(test)]
pub(crate) fn test_image(id: &str, names: &[&str]) -> Image {
    let empty = super::manifest::Descriptor {
        media_type: String::new(),
        digest: String::new(),
        size: 0,
        platform: None,
    };
    let record = |n: &str| api::Image {
        name: n.to_string(),
        ..Default::default()
    };
    Image {
        id: id.to_string(),
        resolved: Resolved {
            record: record(names.first().copied().unwrap_or_default()),
            manifest_digest: String::new(),
            manifest: super::manifest::Manifest {
                config: empty,
                layers: Vec::new(),
            },
            config_digest: id.to_string(),
            raw_config: serde_json::Value::Null,
            config: Default::default(),
            chain_ids: Vec::new(),
        },
        records: names.iter().map(|n| record(n)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e05ea467e33766fe8f66bf9839d3e0328013bbf5937525da101e15936a7973d2";

    fn refs(names: &[&str]) -> Vec<Reference> {
        names
            .iter()
            .map(|n| Reference::parse_normalized(n).unwrap().with_default_tag())
            .collect()
    }

    #[test]
    fn single_reference_like_docker() {
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&["busybox"], true),
            (&["busybox:1", "busybox:2"], false),
            (&["busybox:1", "other:1"], false),
            (&["busybox:1", &format!("busybox@{D}")], true),
            (&[&format!("busybox@{D}")], true),
            (&["busybox:1", &format!("other@{D}")], false),
        ];
        for (names, want) in cases {
            assert_eq!(is_single_reference(&refs(names)), *want, "{names:?}");
        }
    }

    #[test]
    fn short_ids() {
        assert_eq!(short(D), "e05ea467e337");
        assert_eq!(short("abc"), "abc");
    }
}
