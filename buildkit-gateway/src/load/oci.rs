//! The JSON documents of an image archive, decoded strictly enough to trust:
//! digests are `sha256:<64 lowercase hex>`, sizes are unsigned, duplicate
//! fields are refused (serde's derive does that for known fields).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Layer media types containerd's applier unpacks on Linux.
const LAYER_TYPES: &[&str] = &[
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

pub fn is_layer(media_type: &str) -> bool {
    LAYER_TYPES.contains(&media_type)
}

pub fn is_compressed_layer(media_type: &str) -> bool {
    media_type.ends_with("+gzip")
        || media_type.ends_with("+zstd")
        || media_type == DOCKER_LAYER_GZIP
}

/// A content digest; only sha256 is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("sha256:").unwrap_or("");
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_string()))
        } else {
            let shown: String = s.chars().take(80).collect();
            Err(format!("digest {shown:?} is not sha256:<64 lowercase hex>"))
        }
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    pub fn from_sha256(sum: [u8; 32]) -> Self {
        Self(format!("sha256:{}", hex::encode(sum)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// `sha256:` and the first 12 hex digits, as docker shows IDs.
    pub fn short(&self) -> &str {
        &self.0[..("sha256:".len() + 12)]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

#[derive(Debug, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The parts of an image config the gateway needs to unpack it.
#[derive(Debug, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    pub rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// `oci-layout`.
#[derive(Debug, Deserialize)]
pub struct Layout {
    #[serde(rename = "imageLayoutVersion")]
    pub version: String,
}

/// One entry of docker save's `manifest.json`.
#[derive(Debug, Deserialize)]
pub struct DockerEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
    #[serde(rename = "LayerSources", default)]
    pub layer_sources: Option<BTreeMap<String, serde_json::Value>>,
}

/// The docker schema2 manifest berth writes for legacy docker-save images,
/// which have none (docker's own load does the same).
#[derive(serde::Serialize)]
pub struct SynthManifest<'a> {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub config: SynthDescriptor<'a>,
    pub layers: Vec<SynthDescriptor<'a>>,
}

#[derive(serde::Serialize)]
pub struct SynthDescriptor<'a> {
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub size: u64,
    pub digest: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_strict() {
        let ok = format!("sha256:{}", "0a".repeat(32));
        assert_eq!(Digest::parse(&ok).unwrap().hex(), "0a".repeat(32));
        for bad in [
            format!("sha256:{}", "0A".repeat(32)),
            format!("sha256:{}", "0a".repeat(31)),
            format!("sha512:{}", "0a".repeat(32)),
            format!("sha256:{}/../x", "0a".repeat(32)),
            "".to_string(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn descriptors_refuse_negative_sizes_and_duplicate_fields() {
        let d = format!("sha256:{}", "0".repeat(64));
        let neg = format!(r#"{{"mediaType":"x","digest":"{d}","size":-1}}"#);
        assert!(serde_json::from_str::<Descriptor>(&neg).is_err());
        let dup = format!(r#"{{"mediaType":"x","digest":"{d}","size":1,"size":2}}"#);
        assert!(serde_json::from_str::<Descriptor>(&dup).is_err());
    }
}
