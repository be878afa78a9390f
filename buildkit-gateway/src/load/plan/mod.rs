//! Decides what an archive imports, before anything is written: which blobs
//! (children before parents, with their GC reference labels), which manifest
//! is unpacked for the host platform, and which names point where.
//!
//! Every JSON document is read bounded and checked against its digest before
//! it is believed. Layer bytes are checked later, while they are written.
//!
//! `layout` walks OCI image layouts, `docker` legacy `docker save` archives.
//!
//! An OCI layout may leave out layers of the manifests it must import: they
//! are planned as `Source::Sandbox` and taken from the sandbox's own content
//! store (never another namespace's) or refused when it lacks them. Indexes,
//! manifests and configs must be in the archive, since the plan reads them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::archive::{Archive, Loc};
use super::oci::{Descriptor, Digest};
use super::{invalid, LoadError, MAX_BLOBS};

mod docker;
mod layout;
#[cfg(test)]
mod tests;

pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

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
    /// A layer of a required manifest that the archive leaves out: it must
    /// already be in the sandbox's own content store (checked when stored).
    /// This is how a build exports only the blobs the sandbox lacks.
    Sandbox,
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
    let planner = Planner {
        ar,
        blobs: Vec::new(),
        position: HashMap::new(),
        visited: HashMap::new(),
    };
    if ar.find("index.json")?.is_some() {
        planner.oci()
    } else if ar.find("manifest.json")?.is_some() {
        planner.docker_save()
    } else {
        Err(invalid("archive has neither index.json nor manifest.json (not an OCI layout or docker save archive)"))
    }
}

struct Planner<'a> {
    ar: &'a Archive,
    blobs: Vec<Blob>,
    position: HashMap<Digest, usize>,
    visited: HashMap<Digest, layout::Visit>,
}

impl Planner<'_> {
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
            return Err(invalid(format!(
                "blob {} does not match its digest",
                d.digest
            )));
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

fn manifest_labels(config: &Digest, layers: &[Digest]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_GC_CONFIG.to_string(), config.to_string());
    for (i, layer) in layers.iter().enumerate() {
        labels.insert(format!("{LABEL_GC_LAYER_PREFIX}{i}"), layer.to_string());
    }
    labels
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
                    return Err(invalid(format!(
                        "name {name} is given to two different images"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, LoadError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{what} is not valid JSON: {e}")))
}
