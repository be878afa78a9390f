//! Image indexes, manifests and configs: decoding, platform choice, chain IDs.
//!
//! Docker schema 2 and OCI documents have the same shape for what berth
//! reads, so one set of types decodes both.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a descriptor's media type says the blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
}

/// Classifies a target by media type, falling back to the document's own
/// `mediaType` or shape (OCI allows omitting it).
pub fn kind(media_type: &str, blob: &[u8]) -> Option<Kind> {
    let by_type = |t: &str| match t {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    };
    if let Some(k) = by_type(media_type) {
        return Some(k);
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(blob).ok()?;
    by_type(&p.media_type).or(if p.manifests.is_some() {
        Some(Kind::Index)
    } else if p.config.is_some() {
        Some(Kind::Manifest)
    } else {
        None
    })
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The platform berth runs containers on: this machine's, in Go's names.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "x86" => ("386", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    };
    Platform {
        architecture: architecture.into(),
        os: std::env::consts::OS.into(),
        variant: variant.map(Into::into),
    }
}

/// Chooses the manifest for `want` from an index, as containerd's platform
/// matcher does: same OS and architecture; an exact variant beats a missing
/// one (arm64's `v8` is the default). Attestation entries (`unknown/unknown`)
/// never match.
pub fn choose<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let default_variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        (_, v) => v.map(str::to_string),
    };
    let want_variant = default_variant(want);
    let mut fallback = None;
    for d in &index.manifests {
        let Some(p) = &d.platform else { continue };
        if p.os != want.os || p.architecture != want.architecture {
            continue;
        }
        let v = default_variant(p);
        if v == want_variant {
            return Some(d);
        }
        if v.is_none() && fallback.is_none() {
            fallback = Some(d);
        }
    }
    fallback
}

/// Chain IDs of the layers, bottom first: the first is the first diff ID,
/// each next is `sha256(parent + " " + diff_id)` (the snapshot keys
/// containerd unpacks layers to).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {d}")))
            ),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, &str, Option<&str>)]) -> Index {
        Index {
            manifests: entries
                .iter()
                .enumerate()
                .map(|(i, (os, arch, variant))| Descriptor {
                    media_type: OCI_MANIFEST.into(),
                    digest: format!("sha256:{i}"),
                    size: 1,
                    platform: Some(Platform {
                        os: os.to_string(),
                        architecture: arch.to_string(),
                        variant: variant.map(str::to_string),
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn chooses_the_host_platform() {
        let amd64 = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        let arm64 = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        let idx = index(&[
            ("unknown", "unknown", None),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", None),
            ("linux", "amd64", None),
        ]);
        assert_eq!(
            choose(&idx, &amd64).map(|d| d.digest.as_str()),
            Some("sha256:3")
        );
        assert_eq!(
            choose(&idx, &arm64).map(|d| d.digest.as_str()),
            Some("sha256:2")
        );
        let none = index(&[("windows", "amd64", None), ("unknown", "unknown", None)]);
        assert!(choose(&none, &amd64).is_none());
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a =
            "sha256:e9651ac59cab88a7ff89ee3b5ffca2d57c287aef4ac81313da8434ce52582c26".to_string();
        let b =
            "sha256:0000000000000000000000000000000000000000000000000000000000000000".to_string();
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        let expect = format!("sha256:{}", hex::encode(Sha256::digest(format!("{a} {b}"))));
        assert_eq!(ids[1], expect);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn classifies_documents() {
        assert_eq!(kind(OCI_INDEX, b""), Some(Kind::Index));
        assert_eq!(kind(DOCKER_MANIFEST, b""), Some(Kind::Manifest));
        assert_eq!(kind("", br#"{"manifests":[]}"#), Some(Kind::Index));
        assert_eq!(
            kind("", br#"{"config":{"digest":"x"}}"#),
            Some(Kind::Manifest)
        );
        assert_eq!(kind("application/octet-stream", b"not json"), None);
        let m: Manifest = serde_json::from_slice(
            br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:c","size":3},"layers":[{"mediaType":"l","digest":"sha256:l","size":9}]}"#,
        )
        .unwrap();
        assert_eq!(m.config.digest, "sha256:c");
        assert_eq!(m.layers[0].size, 9);
    }
}
