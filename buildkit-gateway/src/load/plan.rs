//! Decides what an archive imports, before anything is written: which blobs
//! (children before parents, with their GC reference labels), which manifest
//! is unpacked for the host platform, and which names point where.
//!
//! Every JSON document is read bounded and checked against its digest before
//! it is believed. Layer bytes are checked later, while they are written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::archive::{Archive, Loc};
use super::names;
use super::oci::{self, Descriptor, Digest, DockerEntry, ImageConfig, Index, Layout, Manifest};
use super::{invalid, LoadError, MAX_BLOBS};

/// Indexes may nest (docker save writes index.json → image index →
/// manifests); deeper nesting is refused.
const MAX_INDEX_DEPTH: usize = 4;

pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// BuildKit marks attestation manifests inside an image index with this.
const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

pub const LABEL_GC_CONFIG: &str = "containerd.io/gc.ref.content.config";
pub const LABEL_GC_LAYER_PREFIX: &str = "containerd.io/gc.ref.content.l.";
pub const LABEL_GC_MANIFEST_PREFIX: &str = "containerd.io/gc.ref.content.m.";
pub const LABEL_UNCOMPRESSED: &str = "containerd.io/uncompressed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciLayout,
    DockerSave,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Layer,
    Config,
    Manifest,
    Index,
    Other,
}

#[derive(Debug, Clone)]
pub enum Source {
    Archive(Loc),
    /// A manifest berth wrote itself (legacy docker save).
    Bytes(Arc<[u8]>),
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub role: Role,
    pub source: Source,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
}

/// The manifest unpacked into snapshots for the host platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpack {
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Normalised names; empty when the archive names none.
    pub names: Vec<String>,
    pub target: Target,
    /// The config reported as the image ID: the unpacked manifest's, else
    /// the first one found.
    pub config: Option<Digest>,
    pub unpack: Option<Unpack>,
}

#[derive(Debug)]
pub struct Plan {
    pub format: Format,
    /// In write order: every blob after the blobs it references.
    pub blobs: Vec<Blob>,
    pub images: Vec<ImagePlan>,
}

impl Plan {
    pub fn layer_count(&self) -> usize {
        self.blobs.iter().filter(|b| b.role == Role::Layer).count()
    }
}

/// The platform layers are unpacked for: linux and the gateway's own
/// architecture, in OCI's spelling (linux/amd64 on x86-64).
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux", arch)
}

fn is_host(os: &str, arch: &str) -> bool {
    let (host_os, host_arch) = host_platform();
    os == host_os && arch == host_arch
}

pub fn plan(ar: &Archive) -> Result<Plan, LoadError> {
    let planner = Planner { ar, blobs: Vec::new(), position: HashMap::new(), visited: HashMap::new() };
    if ar.find("index.json")?.is_some() {
        planner.oci()
    } else if ar.find("manifest.json")?.is_some() {
        planner.docker_save()
    } else {
        Err(invalid("archive has neither index.json nor manifest.json (not an OCI layout or docker save archive)"))
    }
}

/// What visiting a manifest or index found.
#[derive(Debug, Clone)]
struct Visit {
    unpack: Option<Unpack>,
    config: Option<Digest>,
    /// Why the tree below is incomplete, if it is.
    missing: Option<String>,
}

struct Planner<'a> {
    ar: &'a Archive,
    blobs: Vec<Blob>,
    position: HashMap<Digest, usize>,
    visited: HashMap<Digest, Visit>,
}

impl Planner<'_> {
    fn oci(mut self) -> Result<Plan, LoadError> {
        if let Some(loc) = self.ar.find("oci-layout")? {
            let layout: Layout = parse_json(&self.ar.read_small(loc, "oci-layout")?, "oci-layout")?;
            if layout.version != "1.0.0" {
                return Err(invalid(format!("oci-layout version {:?} is not 1.0.0", layout.version)));
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
            return Err(invalid(format!("index.json lists more than {MAX_BLOBS} images")));
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
            let visit = self.visit(root, 0, true)?.expect("required blobs are present");
            let mut image_names = names_of(root)?;
            if image_names.is_empty() {
                if let Some(config) = &visit.config {
                    image_names = repo_tags.get(config).cloned().unwrap_or_default();
                }
            }
            let target = Target { media_type: root.media_type.clone(), digest: root.digest.clone(), size: root.size };
            match images.iter_mut().find(|i| i.target == target) {
                Some(image) => image.names.extend(image_names),
                None => images.push(ImagePlan { names: image_names, target, config: visit.config, unpack: visit.unpack }),
            }
        }
        finish_names(&mut images)?;
        Ok(Plan { format: Format::OciLayout, blobs: self.blobs, images })
    }

    fn docker_entries(&self) -> Result<Vec<DockerEntry>, LoadError> {
        let loc = self.ar.find("manifest.json")?.expect("checked by the caller");
        let entries: Vec<DockerEntry> = parse_json(&self.ar.read_small(loc, "manifest.json")?, "manifest.json")?;
        if entries.len() > MAX_BLOBS {
            return Err(invalid(format!("manifest.json lists more than {MAX_BLOBS} images")));
        }
        Ok(entries)
    }

    fn docker_tags_by_config(&self) -> Result<HashMap<Digest, Vec<String>>, LoadError> {
        let mut by_config: HashMap<Digest, Vec<String>> = HashMap::new();
        for entry in self.docker_entries()? {
            let Some(loc) = self.ar.find(&entry.config)? else { continue };
            let bytes = self.ar.read_small(loc, &format!("config {}", entry.config))?;
            let names = repo_tags(&entry)?;
            by_config.entry(Digest::of(&bytes)).or_default().extend(names);
        }
        Ok(by_config)
    }

    /// Legacy `docker save`: manifest.json, `<id>/layer.tar`, `<hex>.json`.
    /// There is no manifest blob, so berth writes a docker schema2 one.
    fn docker_save(mut self) -> Result<Plan, LoadError> {
        let entries = self.docker_entries()?;
        if entries.is_empty() {
            return Err(invalid("manifest.json lists no images"));
        }
        let mut images: Vec<ImagePlan> = Vec::new();
        for entry in &entries {
            let config_loc = self
                .ar
                .find(&entry.config)?
                .ok_or_else(|| invalid(format!("config {} listed in manifest.json is missing", entry.config)))?;
            let what = format!("config {}", entry.config);
            let bytes = self.ar.read_small(config_loc, &what)?;
            let config_digest = Digest::of(&bytes);
            let config: ImageConfig = parse_json(&bytes, &what)?;
            if entry.layer_sources.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(invalid("manifest.json lists foreign layers (LayerSources), which are not supported"));
            }
            if config.rootfs.kind != "layers" {
                return Err(invalid(format!("{what} has rootfs type {:?}, not layers", config.rootfs.kind)));
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
                let loc = self
                    .ar
                    .find(path)?
                    .ok_or_else(|| invalid(format!("layer {path} listed in manifest.json is missing")))?;
                let mut magic = [0u8; 4];
                let n = self.ar.head(loc, &mut magic)?;
                let mut labels = BTreeMap::new();
                let (digest, media_type) = match &magic[..n] {
                    [0x1f, 0x8b, ..] => {
                        labels.insert(LABEL_UNCOMPRESSED.to_string(), diff_id.to_string());
                        (self.ar.digest_of(loc)?, oci::DOCKER_LAYER_GZIP)
                    }
                    [0x28, 0xb5, 0x2f, 0xfd] => {
                        return Err(invalid(format!("layer {path} is zstd-compressed, which docker save never writes")))
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
                layers.push(Layer { digest, size: loc.size, media_type: media_type.to_string(), diff_id: diff_id.clone() });
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
                    .map(|l| oci::SynthDescriptor { media_type: &l.media_type, size: l.size, digest: l.digest.as_str() })
                    .collect(),
            };
            let bytes: Arc<[u8]> = serde_json::to_vec(&manifest).expect("serialising a manifest cannot fail").into();
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
            let target = Target { media_type: oci::DOCKER_MANIFEST.to_string(), digest: manifest_digest, size };
            let names = repo_tags(entry)?;
            match images.iter_mut().find(|i| i.target == target) {
                Some(image) => image.names.extend(names),
                None => images.push(ImagePlan { names, target, config: Some(config_digest), unpack }),
            }
        }
        finish_names(&mut images)?;
        Ok(Plan { format: Format::DockerSave, blobs: self.blobs, images })
    }

    /// Visits the manifest or index `d` and everything below it that the
    /// archive holds. `required`: `d` and (for a manifest) its config and
    /// layers must all be present. `Ok(None)`: `d` itself is absent.
    fn visit(&mut self, d: &Descriptor, depth: usize, required: bool) -> Result<Option<Visit>, LoadError> {
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

    fn visit_index(&mut self, d: &Descriptor, depth: usize, required: bool) -> Result<Option<Visit>, LoadError> {
        if depth >= MAX_INDEX_DEPTH {
            return Err(invalid(format!("image indexes nested deeper than {MAX_INDEX_DEPTH}")));
        }
        let Some(loc) = self.locate(d, "index", required)? else { return Ok(None) };
        let what = format!("index {}", d.digest);
        let index: Index = self.read_verified_json(d, loc, &what)?;
        if index.schema_version != 2 {
            return Err(invalid(format!("{what} is not schema version 2")));
        }
        check_media_type(&what, index.media_type.as_deref(), &d.media_type)?;
        if index.manifests.len() > MAX_BLOBS {
            return Err(invalid(format!("{what} lists more than {MAX_BLOBS} manifests")));
        }
        let mut labels = BTreeMap::new();
        let mut unpack = None;
        let mut first_config = None;
        let mut missing = None;
        for (i, child) in index.manifests.iter().enumerate() {
            labels.insert(format!("{LABEL_GC_MANIFEST_PREFIX}{i}"), child.digest.to_string());
            let attestation = child.annotation(ANNOTATION_REFERENCE_TYPE).is_some();
            let platform = child.platform.as_ref().map(|p| (p.os.as_str(), p.architecture.as_str()));
            // Only the host platform's manifest must be complete: archives
            // of multi-platform images usually hold just one platform.
            let for_host = !attestation && platform.is_some_and(|(os, arch)| is_host(os, arch));
            let Some(visit) = self.visit(child, depth + 1, for_host)? else { continue };
            if for_host && missing.is_none() {
                missing = visit.missing.clone();
            }
            if unpack.is_none() && !attestation && platform.is_none_or(|(os, arch)| is_host(os, arch)) {
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
        let config = unpack.as_ref().map(|u: &Unpack| u.config.clone()).or(first_config);
        Ok(Some(Visit { unpack, config, missing }))
    }

    fn visit_manifest(&mut self, d: &Descriptor, required: bool) -> Result<Option<Visit>, LoadError> {
        let Some(loc) = self.locate(d, "manifest", required)? else { return Ok(None) };
        let what = format!("manifest {}", d.digest);
        let manifest: Manifest = self.read_verified_json(d, loc, &what)?;
        if manifest.schema_version != 2 {
            return Err(invalid(format!("{what} is not schema version 2")));
        }
        check_media_type(&what, manifest.media_type.as_deref(), &d.media_type)?;
        if manifest.layers.len() > MAX_BLOBS {
            return Err(invalid(format!("{what} lists more than {MAX_BLOBS} layers")));
        }

        let config_loc = self.locate(&manifest.config, "config", required)?;
        let mut missing = config_loc
            .is_none()
            .then(|| format!("blob {} is missing (config of {what})", manifest.config.digest));
        let mut layer_locs = Vec::new();
        for (i, layer) in manifest.layers.iter().enumerate() {
            let loc = self.locate(layer, "layer", false)?;
            if loc.is_none() && missing.is_none() {
                missing = Some(format!("blob {} is missing (layer {} of {what})", layer.digest, i + 1));
            }
            layer_locs.push(loc);
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
                let parsed = self.read_verified_json::<ImageConfig>(&manifest.config, cloc, &format!("config of {what}"));
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
        for (i, (layer, loc)) in manifest.layers.iter().zip(layer_locs).enumerate() {
            let Some(loc) = loc else { continue };
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
                source: Source::Archive(loc),
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
        Ok(Some(Visit { unpack, config: Some(manifest.config.digest.clone()), missing }))
    }

    /// Finds `blobs/sha256/<hex>` and checks its size against `d`.
    fn locate(&self, d: &Descriptor, what: &str, required: bool) -> Result<Option<Loc>, LoadError> {
        let path = format!("blobs/sha256/{}", d.digest.hex());
        match self.ar.find(&path)? {
            Some(loc) if loc.size != d.size => Err(invalid(format!(
                "blob {} is {} bytes, its descriptor says {}",
                d.digest, loc.size, d.size
            ))),
            Some(loc) => Ok(Some(loc)),
            None if required => Err(invalid(format!("blob {} is missing ({what})", d.digest))),
            None => Ok(None),
        }
    }

    fn read_verified_json<T: serde::de::DeserializeOwned>(
        &self,
        d: &Descriptor,
        loc: Loc,
        what: &str,
    ) -> Result<T, LoadError> {
        let bytes = self.ar.read_small(loc, what)?;
        if Digest::of(&bytes) != d.digest {
            return Err(invalid(format!("blob {} does not match its digest", d.digest)));
        }
        parse_json(&bytes, what)
    }

    fn add(&mut self, blob: Blob) -> Result<(), LoadError> {
        if let Some(&i) = self.position.get(&blob.digest) {
            self.blobs[i].labels.extend(blob.labels);
            return Ok(());
        }
        if self.blobs.len() >= MAX_BLOBS {
            return Err(invalid(format!("more than {MAX_BLOBS} blobs")));
        }
        self.position.insert(blob.digest.clone(), self.blobs.len());
        self.blobs.push(blob);
        Ok(())
    }
}

fn unpack_of(manifest_digest: &Digest, manifest: &Manifest, config: &ImageConfig, what: &str) -> Result<Unpack, LoadError> {
    if config.rootfs.kind != "layers" {
        return Err(invalid(format!("config of {what} has rootfs type {:?}, not layers", config.rootfs.kind)));
    }
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(invalid(format!(
            "config of {what} lists {} diff_ids for {} layers",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let mut layers = Vec::new();
    for (i, (layer, diff_id)) in manifest.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
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
    Ok(Unpack { manifest: manifest_digest.clone(), config: manifest.config.digest.clone(), layers })
}

fn manifest_labels(config: &Digest, layers: &[Digest]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_GC_CONFIG.to_string(), config.to_string());
    for (i, layer) in layers.iter().enumerate() {
        labels.insert(format!("{LABEL_GC_LAYER_PREFIX}{i}"), layer.to_string());
    }
    labels
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

fn repo_tags(entry: &DockerEntry) -> Result<Vec<String>, LoadError> {
    entry
        .repo_tags
        .iter()
        .flatten()
        .map(|tag| names::normalize(tag).map_err(|e| invalid(format!("manifest.json: {e}"))))
        .collect()
}

/// Sorts and de-duplicates each image's names and refuses a name given to
/// two different images: which one would win is not the archive's to hide.
fn finish_names(images: &mut [ImagePlan]) -> Result<(), LoadError> {
    let mut owner: HashMap<String, Digest> = HashMap::new();
    for image in images.iter_mut() {
        image.names.sort();
        image.names.dedup();
        for name in &image.names {
            if let Some(other) = owner.insert(name.clone(), image.target.digest.clone()) {
                if other != image.target.digest {
                    return Err(invalid(format!("name {name} is given to two different images")));
                }
            }
        }
    }
    Ok(())
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, LoadError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{what} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testdata::{gzip, DockerSave, Entry, OciLayout, TempFile};

    fn plan_of(bytes: &[u8]) -> Result<Plan, LoadError> {
        let tmp = TempFile::with(bytes);
        let ar = Archive::open(tmp.path())?;
        plan(&ar)
    }

    fn err_of(bytes: &[u8]) -> String {
        match plan_of(bytes) {
            Ok(_) => panic!("archive was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn labels(blob: &Blob) -> Vec<(&str, &str)> {
        blob.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn plans_an_oci_layout() {
        let oci = OciLayout::busybox();
        let plan = plan_of(&oci.tar()).unwrap();
        assert_eq!(plan.format, Format::OciLayout);
        let roles: Vec<Role> = plan.blobs.iter().map(|b| b.role).collect();
        assert_eq!(roles, [Role::Layer, Role::Config, Role::Manifest]);
        let [image] = &plan.images[..] else { panic!("one image expected") };
        assert_eq!(image.names, ["docker.io/library/busybox:latest"]);
        assert_eq!(image.target.digest, oci.manifest_digest);
        assert_eq!(image.target.media_type, oci::OCI_MANIFEST);
        assert_eq!(image.config.as_ref(), Some(&oci.config_digest));
        let unpack = image.unpack.as_ref().expect("host platform is unpacked");
        assert_eq!(unpack.layers.len(), 1);
        assert_eq!(unpack.layers[0].diff_id, oci.diff_id);
        assert_eq!(
            labels(&plan.blobs[2]),
            [
                (LABEL_GC_CONFIG, oci.config_digest.as_str()),
                ("containerd.io/gc.ref.content.l.0", oci.layer_digest.as_str())
            ]
        );
        assert_eq!(labels(&plan.blobs[0]), [(LABEL_UNCOMPRESSED, oci.diff_id.as_str())]);
    }

    #[test]
    fn plans_a_gzip_compressed_oci_layout() {
        let oci = OciLayout::busybox();
        let plan = plan_of(&gzip(&oci.tar())).unwrap();
        assert_eq!(plan.images[0].names, ["docker.io/library/busybox:latest"]);
        assert_eq!(plan.blobs.len(), 3);
    }

    #[test]
    fn plans_an_index_of_platforms() {
        let mut oci = OciLayout::busybox();
        oci.wrap_in_index(&[("linux", "s390x-not-here")]);
        let plan = plan_of(&oci.tar()).unwrap();
        let roles: Vec<Role> = plan.blobs.iter().map(|b| b.role).collect();
        assert_eq!(roles, [Role::Layer, Role::Config, Role::Manifest, Role::Index]);
        let image = &plan.images[0];
        assert_eq!(image.target.media_type, oci::OCI_INDEX);
        assert_eq!(image.unpack.as_ref().unwrap().manifest, oci.manifest_digest);
        let index = &plan.blobs[3];
        assert_eq!(index.labels.get("containerd.io/gc.ref.content.m.0"), Some(&oci.manifest_digest.to_string()));
        assert!(index.labels.contains_key("containerd.io/gc.ref.content.m.1"));
    }

    #[test]
    fn names_come_from_ref_name_only_when_it_is_a_reference() {
        let mut oci = OciLayout::busybox();
        oci.annotations = vec![(ANNOTATION_REF_NAME, "latest")];
        let plan = plan_of(&oci.tar()).unwrap();
        assert!(plan.images[0].names.is_empty());
        oci.annotations = vec![(ANNOTATION_REF_NAME, "localhost:5000/app:1")];
        let plan = plan_of(&oci.tar()).unwrap();
        assert_eq!(plan.images[0].names, ["localhost:5000/app:1"]);
        oci.annotations = vec![(ANNOTATION_IMAGE_NAME, "Not A Name")];
        assert!(err_of(&oci.tar()).starts_with("invalid archive: image name \"Not A Name\" is not a valid reference"));
    }

    #[test]
    fn plans_a_legacy_docker_save() {
        let docker = DockerSave::two_images();
        let plan = plan_of(&docker.tar()).unwrap();
        assert_eq!(plan.format, Format::DockerSave);
        assert_eq!(plan.images.len(), 2);
        let first = &plan.images[0];
        assert_eq!(first.names, ["docker.io/library/busybox:latest", "localhost:5000/x:1"]);
        assert_eq!(first.target.media_type, oci::DOCKER_MANIFEST);
        assert_eq!(plan.images[1].names, ["docker.io/foo/bar:latest"]);
        // The shared base layer (a symlinked layer.tar in the second image) is
        // written once, uncompressed, under its diff_id.
        let layers: Vec<&Blob> = plan.blobs.iter().filter(|b| b.role == Role::Layer).collect();
        assert_eq!(layers.len(), 2);
        let unpacked = &plan.images[1].unpack.as_ref().unwrap().layers;
        assert!(unpacked.iter().all(|l| l.media_type == oci::DOCKER_LAYER));
        assert_eq!(layers[0].digest, docker.diff_ids[0]);
        // The synthesised manifest is well-formed and matches its digest.
        let manifest = plan.blobs.iter().find(|b| b.digest == first.target.digest).unwrap();
        let Source::Bytes(bytes) = &manifest.source else { panic!("synthesised manifest expected") };
        assert_eq!(Digest::of(bytes), first.target.digest);
        let parsed: Manifest = serde_json::from_slice(bytes).unwrap();
        assert_eq!(parsed.media_type.as_deref(), Some(oci::DOCKER_MANIFEST));
        assert_eq!(parsed.layers.len(), 1);
        assert_eq!(parsed.layers[0].digest, docker.diff_ids[0]);
        assert_eq!(manifest.labels.get(LABEL_GC_CONFIG), Some(&parsed.config.digest.to_string()));
        let second = plan.images[1].unpack.as_ref().unwrap();
        assert_eq!(second.layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>(), [&docker.diff_ids[0], &docker.diff_ids[1]]);
    }

    #[test]
    fn prefers_the_oci_index_and_takes_repo_tags_for_unnamed_entries() {
        let mut oci = OciLayout::busybox();
        oci.annotations = vec![(ANNOTATION_REF_NAME, "latest")];
        let manifest_json = format!(
            r#"[{{"Config":"blobs/sha256/{}","RepoTags":["busybox:1.36"],"Layers":["blobs/sha256/{}"]}}]"#,
            oci.config_digest.hex(),
            oci.layer_digest.hex()
        );
        oci.extra.push(Entry::file("manifest.json", manifest_json.as_bytes()));
        let plan = plan_of(&oci.tar()).unwrap();
        assert_eq!(plan.format, Format::OciLayout);
        assert_eq!(plan.images[0].names, ["docker.io/library/busybox:1.36"]);
    }

    #[test]
    fn refuses_a_missing_blob() {
        let mut oci = OciLayout::busybox();
        oci.omit = Some(oci.layer_digest.clone());
        assert_eq!(
            err_of(&oci.tar()),
            format!(
                "invalid archive: blob {} is missing (layer 1 of manifest {})",
                oci.layer_digest, oci.manifest_digest
            )
        );
    }

    #[test]
    fn tolerates_other_platforms_missing_from_an_index() {
        let mut oci = OciLayout::busybox();
        oci.wrap_in_index(&[("linux", "riscv-elsewhere")]);
        // The second platform's manifest is listed but absent: fine.
        assert!(plan_of(&oci.tar()).is_ok());
        // The host platform's layer missing is not.
        oci.omit = Some(oci.layer_digest.clone());
        assert!(err_of(&oci.tar()).contains(&format!("blob {} is missing", oci.layer_digest)));
    }

    #[test]
    fn refuses_a_manifest_that_does_not_match_its_digest() {
        let mut oci = OciLayout::busybox();
        oci.corrupt_manifest = true;
        assert_eq!(
            err_of(&oci.tar()),
            format!("invalid archive: blob {} does not match its digest", oci.manifest_digest)
        );
    }

    #[test]
    fn layer_digest_mismatch_is_caught_while_copying() {
        let mut oci = OciLayout::busybox();
        oci.corrupt_layer = true;
        let tmp = TempFile::with(&oci.tar());
        let ar = Archive::open(tmp.path()).unwrap();
        let plan = plan(&ar).unwrap();
        let layer = &plan.blobs[0];
        let Source::Archive(loc) = layer.source else { panic!("archive source expected") };
        let e = ar.copy_verified(loc, &layer.digest, |_| Ok(())).unwrap_err().to_string();
        assert!(e.starts_with(&format!("invalid archive: blob {} does not match its digest", oci.layer_digest)), "{e}");
    }

    #[test]
    fn refuses_bad_and_oversized_json() {
        let bad = crate::load::testdata::tar_of(&[Entry::file("index.json", b"{\"schemaVersion\": 2, ")]);
        assert!(err_of(&bad).starts_with("invalid archive: index.json is not valid JSON: "));
        let mut big = b"{\"schemaVersion\":2,\"manifests\":[],\"x\":\"".to_vec();
        big.resize(5 << 20, b'a');
        big.extend_from_slice(b"\"}");
        let big = crate::load::testdata::tar_of(&[Entry::file("index.json", &big)]);
        assert_eq!(err_of(&big), "invalid archive: index.json is larger than 4 MiB");
        let legacy = crate::load::testdata::tar_of(&[Entry::file("manifest.json", b"{\"Config\":1}")]);
        assert!(err_of(&legacy).starts_with("invalid archive: manifest.json is not valid JSON: "));
    }

    #[test]
    fn refuses_bad_digests_and_sizes_in_descriptors() {
        let mut oci = OciLayout::busybox();
        oci.index_override = Some(r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ABC","size":1}]}"#.into());
        assert!(err_of(&oci.tar()).contains("is not sha256:<64 lowercase hex>"));
        let mut oci = OciLayout::busybox();
        oci.manifest_size_delta = 1;
        assert!(err_of(&oci.tar()).contains("its descriptor says"));
    }

    #[test]
    fn refuses_a_name_given_to_two_images() {
        let docker = DockerSave::two_images().with_tags(&["a:1"], &["a:1"]);
        assert_eq!(err_of(&docker.tar()), "invalid archive: name docker.io/library/a:1 is given to two different images");
    }

    #[test]
    fn refuses_archives_of_neither_format() {
        let bytes = crate::load::testdata::tar_of(&[Entry::file("hello", b"x")]);
        assert_eq!(
            err_of(&bytes),
            "invalid archive: archive has neither index.json nor manifest.json (not an OCI layout or docker save archive)"
        );
    }
}
