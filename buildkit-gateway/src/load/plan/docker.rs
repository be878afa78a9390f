//! Legacy `docker save` archives: manifest.json, `<id>/layer.tar`,
//! `<hex>.json`. They hold no manifest blob, so berth writes a docker
//! schema2 manifest itself, as docker's own load does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{
    finish_names, is_host, manifest_labels, parse_json, Blob, Format, ImagePlan, Layer, Plan,
    Planner, Role, Source, Target, Unpack, LABEL_UNCOMPRESSED,
};
use crate::load::names;
use crate::load::oci::{self, Digest, DockerEntry, ImageConfig};
use crate::load::{invalid, LoadError, MAX_BLOBS};

impl Planner<'_> {
    pub(super) fn docker_entries(&self) -> Result<Vec<DockerEntry>, LoadError> {
        let loc = self
            .ar
            .find("manifest.json")?
            .expect("checked by the caller");
        let entries: Vec<DockerEntry> =
            parse_json(&self.ar.read_small(loc, "manifest.json")?, "manifest.json")?;
        if entries.len() > MAX_BLOBS {
            return Err(invalid(format!(
                "manifest.json lists more than {MAX_BLOBS} images"
            )));
        }
        Ok(entries)
    }

    pub(super) fn docker_tags_by_config(&self) -> Result<HashMap<Digest, Vec<String>>, LoadError> {
        let mut by_config: HashMap<Digest, Vec<String>> = HashMap::new();
        for entry in self.docker_entries()? {
            let Some(loc) = self.ar.find(&entry.config)? else {
                continue;
            };
            let bytes = self
                .ar
                .read_small(loc, &format!("config {}", entry.config))?;
            let names = repo_tags(&entry)?;
            by_config
                .entry(Digest::of(&bytes))
                .or_default()
                .extend(names);
        }
        Ok(by_config)
    }

    /// Legacy `docker save`: manifest.json, `<id>/layer.tar`, `<hex>.json`.
    /// There is no manifest blob, so berth writes a docker schema2 one.
    pub(super) fn docker_save(mut self) -> Result<Plan, LoadError> {
        let entries = self.docker_entries()?;
        if entries.is_empty() {
            return Err(invalid("manifest.json lists no images"));
        }
        let mut images: Vec<ImagePlan> = Vec::new();
        for entry in &entries {
            let config_loc = self.ar.find(&entry.config)?.ok_or_else(|| {
                invalid(format!(
                    "config {} listed in manifest.json is missing",
                    entry.config
                ))
            })?;
            let what = format!("config {}", entry.config);
            let bytes = self.ar.read_small(config_loc, &what)?;
            let config_digest = Digest::of(&bytes);
            let config: ImageConfig = parse_json(&bytes, &what)?;
            if entry.layer_sources.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(invalid(
                    "manifest.json lists foreign layers (LayerSources), which are not supported",
                ));
            }
            if config.rootfs.kind != "layers" {
                return Err(invalid(format!(
                    "{what} has rootfs type {:?}, not layers",
                    config.rootfs.kind
                )));
            }
            if config.rootfs.diff_ids.len() != entry.layers.len() {
                return Err(invalid(format!(
                    "{what} lists {} diff_ids for {} layers",
                    config.rootfs.diff_ids.len(),
                    entry.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for (path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
                let loc = self.ar.find(path)?.ok_or_else(|| {
                    invalid(format!("layer {path} listed in manifest.json is missing"))
                })?;
                let mut magic = [0u8; 4];
                let n = self.ar.head(loc, &mut magic)?;
                let mut labels = BTreeMap::new();
                let (digest, media_type) = match &magic[..n] {
                    [0x1f, 0x8b, ..] => {
                        labels.insert(LABEL_UNCOMPRESSED.to_string(), diff_id.to_string());
                        (self.ar.digest_of(loc)?, oci::DOCKER_LAYER_GZIP)
                    }
                    [0x28, 0xb5, 0x2f, 0xfd] => {
                        return Err(invalid(format!(
                            "layer {path} is zstd-compressed, which docker save never writes"
                        )))
                    }
                    // Uncompressed: the blob is the diff itself. Its bytes are
                    // checked against the diff_id while they are written.
                    _ => (diff_id.clone(), oci::DOCKER_LAYER),
                };
                self.add(Blob {
                    digest: digest.clone(),
                    size: loc.size,
                    role: Role::Layer,
                    source: Source::Archive(loc),
                    labels,
                })?;
                layers.push(Layer {
                    digest,
                    size: loc.size,
                    media_type: media_type.to_string(),
                    diff_id: diff_id.clone(),
                });
            }
            self.add(Blob {
                digest: config_digest.clone(),
                size: config_loc.size,
                role: Role::Config,
                source: Source::Archive(config_loc),
                labels: BTreeMap::new(),
            })?;
            let manifest = oci::SynthManifest {
                schema_version: 2,
                media_type: oci::DOCKER_MANIFEST,
                config: oci::SynthDescriptor {
                    media_type: oci::DOCKER_CONFIG,
                    size: config_loc.size,
                    digest: config_digest.as_str(),
                },
                layers: layers
                    .iter()
                    .map(|l| oci::SynthDescriptor {
                        media_type: &l.media_type,
                        size: l.size,
                        digest: l.digest.as_str(),
                    })
                    .collect(),
            };
            let bytes: Arc<[u8]> = serde_json::to_vec(&manifest)
                .expect("serialising a manifest cannot fail")
                .into();
            let manifest_digest = Digest::of(&bytes);
            let size = bytes.len() as u64;
            let layer_digests: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
            self.add(Blob {
                digest: manifest_digest.clone(),
                size,
                role: Role::Manifest,
                source: Source::Bytes(bytes),
                labels: manifest_labels(&config_digest, &layer_digests),
            })?;
            let unpack = is_host(&config.os, &config.architecture).then(|| Unpack {
                manifest: manifest_digest.clone(),
                config: config_digest.clone(),
                layers,
            });
            let target = Target {
                media_type: oci::DOCKER_MANIFEST.to_string(),
                digest: manifest_digest,
                size,
            };
            let names = repo_tags(entry)?;
            match images.iter_mut().find(|i| i.target == target) {
                Some(image) => image.names.extend(names),
                None => images.push(ImagePlan {
                    names,
                    target,
                    config: Some(config_digest),
                    unpack,
                }),
            }
        }
        finish_names(&mut images)?;
        Ok(Plan {
            format: Format::DockerSave,
            blobs: self.blobs,
            images,
        })
    }
}

pub(super) fn repo_tags(entry: &DockerEntry) -> Result<Vec<String>, LoadError> {
    entry
        .repo_tags
        .iter()
        .flatten()
        .map(|tag| names::normalize(tag).map_err(|e| invalid(format!("manifest.json: {e}"))))
        .collect()
}
