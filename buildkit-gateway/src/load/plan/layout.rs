//! OCI image layouts: index.json, then indexes and manifests from
//! `blobs/sha256/`, down to the host platform's layers.

use std::collections::{BTreeMap, HashMap};

use super::{
    finish_names, is_host, manifest_labels, parse_json, Blob, Format, ImagePlan, Layer, Plan,
    Planner, Role, Source, Target, Unpack, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
    LABEL_GC_MANIFEST_PREFIX, LABEL_UNCOMPRESSED,
};
use crate::load::names;
use crate::load::oci::{self, Descriptor, Digest, ImageConfig, Index, Layout, Manifest};
use crate::load::{invalid, LoadError, MAX_BLOBS};

/// Indexes may nest (docker save writes index.json → image index →
/// manifests); deeper nesting is refused.
const MAX_INDEX_DEPTH: usize = 4;

/// BuildKit marks attestation manifests inside an image index with this.
const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What visiting a manifest or index found.
#[derive(Debug, Clone)]
pub(super) struct Visit {
    unpack: Option<Unpack>,
    config: Option<Digest>,
    /// Why the tree below is incomplete, if it is.
    missing: Option<String>,
}

impl Planner<'_> {
    pub(super) fn oci(mut self) -> Result<Plan, LoadError> {
        if let Some(loc) = self.ar.find("oci-layout")? {
            let layout: Layout = parse_json(&self.ar.read_small(loc, "oci-layout")?, "oci-layout")?;
            if layout.version != "1.0.0" {
                return Err(invalid(format!(
                    "oci-layout version {:?} is not 1.0.0",
                    layout.version
                )));
            }
        }
        let loc = self.ar.find("index.json")?.expect("checked by plan()");
        let index: Index = parse_json(&self.ar.read_small(loc, "index.json")?, "index.json")?;
        if index.schema_version != 2 {
            return Err(invalid("index.json is not schema version 2"));
        }
        if index.manifests.is_empty() {
            return Err(invalid("index.json lists no images"));
        }
        if index.manifests.len() > MAX_BLOBS {
            return Err(invalid(format!(
                "index.json lists more than {MAX_BLOBS} images"
            )));
        }
        // Modern docker save also writes manifest.json; its RepoTags name
        // images whose index entry carries no name.
        let repo_tags = match self.ar.find("manifest.json")? {
            Some(_) => self.docker_tags_by_config()?,
            None => HashMap::new(),
        };
        let mut images: Vec<ImagePlan> = Vec::new();
        for root in &index.manifests {
            if !oci::is_index(&root.media_type) && !oci::is_manifest(&root.media_type) {
                return Err(invalid(format!(
                    "index.json entry {} has unsupported media type {:?}",
                    root.digest, root.media_type
                )));
            }
            let visit = self
                .visit(root, 0, true)?
                .expect("required blobs are present");
            let mut image_names = names_of(root)?;
            if image_names.is_empty() {
                if let Some(config) = &visit.config {
                    image_names = repo_tags.get(config).cloned().unwrap_or_default();
                }
            }
            let target = Target {
                media_type: root.media_type.clone(),
                digest: root.digest.clone(),
                size: root.size,
            };
            match images.iter_mut().find(|i| i.target == target) {
                Some(image) => image.names.extend(image_names),
                None => images.push(ImagePlan {
                    names: image_names,
                    target,
                    config: visit.config,
                    unpack: visit.unpack,
                }),
            }
        }
        finish_names(&mut images)?;
        Ok(Plan {
            format: Format::OciLayout,
            blobs: self.blobs,
            images,
        })
    }

    /// Visits the manifest or index `d` and everything below it that the
    /// archive holds. `required`: `d` and (for a manifest) its config and
    /// layers must all be present. `Ok(None)`: `d` itself is absent.
    fn visit(
        &mut self,
        d: &Descriptor,
        depth: usize,
        required: bool,
    ) -> Result<Option<Visit>, LoadError> {
        if let Some(seen) = self.visited.get(&d.digest) {
            if required {
                if let Some(missing) = &seen.missing {
                    return Err(invalid(missing.clone()));
                }
            }
            return Ok(Some(seen.clone()));
        }
        let visit = if oci::is_index(&d.media_type) {
            self.visit_index(d, depth, required)?
        } else if oci::is_manifest(&d.media_type) {
            self.visit_manifest(d, required)?
        } else {
            // Something else listed in an index (an artifact): stored if
            // present, not interpreted.
            if let Some(loc) = self.locate(d, "blob", required)? {
                self.add(Blob {
                    digest: d.digest.clone(),
                    size: d.size,
                    role: Role::Other,
                    source: Source::Archive(loc),
                    labels: BTreeMap::new(),
                })?;
            }
            return Ok(None);
        };
        if let Some(visit) = &visit {
            self.visited.insert(d.digest.clone(), visit.clone());
        }
        Ok(visit)
    }

    fn visit_index(
        &mut self,
        d: &Descriptor,
        depth: usize,
        required: bool,
    ) -> Result<Option<Visit>, LoadError> {
        if depth >= MAX_INDEX_DEPTH {
            return Err(invalid(format!(
                "image indexes nested deeper than {MAX_INDEX_DEPTH}"
            )));
        }
        let Some(loc) = self.locate(d, "index", required)? else {
            return Ok(None);
        };
        let what = format!("index {}", d.digest);
        let index: Index = self.read_verified_json(d, loc, &what)?;
        if index.schema_version != 2 {
            return Err(invalid(format!("{what} is not schema version 2")));
        }
        check_media_type(&what, index.media_type.as_deref(), &d.media_type)?;
        if index.manifests.len() > MAX_BLOBS {
            return Err(invalid(format!(
                "{what} lists more than {MAX_BLOBS} manifests"
            )));
        }
        let mut labels = BTreeMap::new();
        let mut unpack = None;
        let mut first_config = None;
        let mut missing = None;
        for (i, child) in index.manifests.iter().enumerate() {
            labels.insert(
                format!("{LABEL_GC_MANIFEST_PREFIX}{i}"),
                child.digest.to_string(),
            );
            let attestation = child.annotation(ANNOTATION_REFERENCE_TYPE).is_some();
            let platform = child
                .platform
                .as_ref()
                .map(|p| (p.os.as_str(), p.architecture.as_str()));
            // Only the host platform's manifest must be complete: archives
            // of multi-platform images usually hold just one platform.
            let for_host = !attestation && platform.is_some_and(|(os, arch)| is_host(os, arch));
            let Some(visit) = self.visit(child, depth + 1, for_host)? else {
                continue;
            };
            if for_host && missing.is_none() {
                missing = visit.missing.clone();
            }
            if unpack.is_none()
                && !attestation
                && platform.is_none_or(|(os, arch)| is_host(os, arch))
            {
                unpack = visit.unpack.clone();
            }
            if first_config.is_none() && !attestation {
                first_config = visit.config.clone();
            }
        }
        self.add(Blob {
            digest: d.digest.clone(),
            size: d.size,
            role: Role::Index,
            source: Source::Archive(loc),
            labels,
        })?;
        let config = unpack
            .as_ref()
            .map(|u: &Unpack| u.config.clone())
            .or(first_config);
        Ok(Some(Visit {
            unpack,
            config,
            missing,
        }))
    }

    fn visit_manifest(
        &mut self,
        d: &Descriptor,
        required: bool,
    ) -> Result<Option<Visit>, LoadError> {
        let Some(loc) = self.locate(d, "manifest", required)? else {
            return Ok(None);
        };
        let what = format!("manifest {}", d.digest);
        let manifest: Manifest = self.read_verified_json(d, loc, &what)?;
        if manifest.schema_version != 2 {
            return Err(invalid(format!("{what} is not schema version 2")));
        }
        check_media_type(&what, manifest.media_type.as_deref(), &d.media_type)?;
        if manifest.layers.len() > MAX_BLOBS {
            return Err(invalid(format!(
                "{what} lists more than {MAX_BLOBS} layers"
            )));
        }

        let config_loc = self.locate(&manifest.config, "config", required)?;
        let mut missing = config_loc.is_none().then(|| {
            format!(
                "blob {} is missing (config of {what})",
                manifest.config.digest
            )
        });
        let mut layer_sources = Vec::new();
        for (i, layer) in manifest.layers.iter().enumerate() {
            // A layer the archive leaves out of a manifest it must import
            // is the sandbox's to supply (a build's export sends only the
            // blobs the sandbox lacks); elsewhere it is just absent.
            let source = match self.locate(layer, "layer", false)? {
                Some(loc) => Some(Source::Archive(loc)),
                None if required => Some(Source::Sandbox),
                None => None,
            };
            if source.is_none() && missing.is_none() {
                missing = Some(format!(
                    "blob {} is missing (layer {} of {what})",
                    layer.digest,
                    i + 1
                ));
            }
            layer_sources.push(source);
        }
        if required {
            if let Some(missing) = missing {
                return Err(invalid(missing));
            }
        }

        // The image config decides the platform when the descriptor does
        // not, and lists the diff_ids needed to unpack. Artifacts (such as
        // attestations) may carry other configs; only a required manifest's
        // config must parse.
        let config: Option<ImageConfig> = match config_loc {
            Some(cloc) => {
                let parsed = self.read_verified_json::<ImageConfig>(
                    &manifest.config,
                    cloc,
                    &format!("config of {what}"),
                );
                match parsed {
                    Ok(config) => Some(config),
                    Err(e) if required => return Err(e),
                    Err(_) => None,
                }
            }
            None => None,
        };
        let platform_is_host = match (&d.platform, &config) {
            (Some(p), _) => is_host(&p.os, &p.architecture),
            (None, Some(c)) => is_host(&c.os, &c.architecture),
            (None, None) => false,
        };
        let unpack = match (&config, missing.is_none() && platform_is_host) {
            (Some(config), true) => Some(unpack_of(&d.digest, &manifest, config, &what)?),
            _ => None,
        };

        let diff_ids: Option<&Vec<Digest>> = config
            .as_ref()
            .map(|c| &c.rootfs.diff_ids)
            .filter(|ids| ids.len() == manifest.layers.len());
        for (i, (layer, source)) in manifest.layers.iter().zip(layer_sources).enumerate() {
            let Some(source) = source else { continue };
            let mut labels = BTreeMap::new();
            if let Some(ids) = diff_ids {
                if oci::is_compressed_layer(&layer.media_type) {
                    labels.insert(LABEL_UNCOMPRESSED.to_string(), ids[i].to_string());
                }
            }
            self.add(Blob {
                digest: layer.digest.clone(),
                size: layer.size,
                role: Role::Layer,
                source,
                labels,
            })?;
        }
        if let Some(cloc) = config_loc {
            self.add(Blob {
                digest: manifest.config.digest.clone(),
                size: manifest.config.size,
                role: Role::Config,
                source: Source::Archive(cloc),
                labels: BTreeMap::new(),
            })?;
        }
        let layer_digests: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        self.add(Blob {
            digest: d.digest.clone(),
            size: d.size,
            role: Role::Manifest,
            source: Source::Archive(loc),
            labels: manifest_labels(&manifest.config.digest, &layer_digests),
        })?;
        Ok(Some(Visit {
            unpack,
            config: Some(manifest.config.digest.clone()),
            missing,
        }))
    }
}

fn unpack_of(
    manifest_digest: &Digest,
    manifest: &Manifest,
    config: &ImageConfig,
    what: &str,
) -> Result<Unpack, LoadError> {
    if config.rootfs.kind != "layers" {
        return Err(invalid(format!(
            "config of {what} has rootfs type {:?}, not layers",
            config.rootfs.kind
        )));
    }
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(invalid(format!(
            "config of {what} lists {} diff_ids for {} layers",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let mut layers = Vec::new();
    for (i, (layer, diff_id)) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        if !oci::is_layer(&layer.media_type) {
            return Err(invalid(format!(
                "layer {} of {what} has media type {:?}, which cannot be unpacked",
                i + 1,
                layer.media_type
            )));
        }
        layers.push(Layer {
            digest: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
            diff_id: diff_id.clone(),
        });
    }
    Ok(Unpack {
        manifest: manifest_digest.clone(),
        config: manifest.config.digest.clone(),
        layers,
    })
}

/// A document's own mediaType, when present, must agree with the
/// descriptor that led to it (a manifest must not pose as an index).
fn check_media_type(what: &str, own: Option<&str>, descriptor: &str) -> Result<(), LoadError> {
    match own {
        Some(own) if own != descriptor => Err(invalid(format!(
            "{what} has media type {own:?}, its descriptor says {descriptor:?}"
        ))),
        _ => Ok(()),
    }
}

/// Names from an index.json entry: the containerd annotation, else the OCI
/// ref name when it is a whole reference rather than a bare tag.
fn names_of(root: &Descriptor) -> Result<Vec<String>, LoadError> {
    if let Some(name) = root.annotation(ANNOTATION_IMAGE_NAME) {
        return Ok(vec![names::normalize(name).map_err(invalid)?]);
    }
    if let Some(name) = root.annotation(ANNOTATION_REF_NAME) {
        if name.contains('/') || name.contains(':') {
            if let Ok(name) = names::normalize(name) {
                return Ok(vec![name]);
            }
        }
    }
    Ok(Vec::new())
}
