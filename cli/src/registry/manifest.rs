//! Manifests as registries serve them: the four media types berth accepts
//! (Docker schema 2 manifest and manifest list, OCI manifest and index),
//! and the choice of one platform's manifest from a list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The Accept header of manifest requests: all four, lists first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Legacy schema 1 types, refused with a clear reason (docker dropped them).
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
}

/// What a manifest response is, from its Content-Type, else the
/// document's own `mediaType` or shape.
pub fn kind(content_type: &str, doc: &[u8]) -> Result<Kind, String> {
    let by_type = |t: &str| match t {
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    };
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if DOCKER_SCHEMA1.contains(&ct) {
        return Err(
            "the registry only has a Docker schema 1 manifest, which is not supported".into(),
        );
    }
    if let Some(k) = by_type(ct) {
        return Ok(k);
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(doc).map_err(|e| format!("invalid manifest: {e}"))?;
    if let Some(k) = by_type(&p.media_type) {
        return Ok(k);
    }
    match (p.manifests.is_some(), p.config.is_some()) {
        (true, _) => Ok(Kind::Index),
        (_, true) => Ok(Kind::Manifest),
        _ => Err(format!("unsupported manifest media type {ct:?}")),
    }
}

/// The media type to file a document under: the Content-Type when it is
/// one of the four, else the document's own, else OCI's for its kind.
pub fn media_type(content_type: &str, doc: &[u8], kind: Kind) -> String {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(&ct) {
        return ct.to_string();
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
    }
    match serde_json::from_slice::<Probe>(doc) {
        Ok(p) if !p.media_type.is_empty() => p.media_type,
        _ => match kind {
            Kind::Index => OCI_INDEX.into(),
            Kind::Manifest => OCI_MANIFEST.into(),
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform in Go's names (linux/amd64 on x86-64).
    pub fn native() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Self {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        }
    }

    /// Parses `os/arch[/variant]` (docker's `--platform`), normalising the
    /// usual aliases (`x86_64`, `aarch64`, arm64's default `v8`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("invalid platform {s:?}: expected os/arch[/variant]");
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let os = parts[0].to_ascii_lowercase();
        let (arch, default_variant) = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), None),
            "aarch64" | "arm64" => ("arm64".to_string(), Some("v8")),
            "armhf" => ("arm".to_string(), Some("v7")),
            "armel" => ("arm".to_string(), Some("v6")),
            other => (other.to_string(), None),
        };
        let variant = parts
            .get(2)
            .map(|v| v.to_ascii_lowercase())
            .or(default_variant.map(Into::into));
        Ok(Self {
            os,
            architecture: arch,
            variant,
        })
    }

    /// `os/arch[/variant]`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// Whether this (requested) platform is the native one, variants
    /// normalised.
    pub fn same_as(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && variant_rank(self) == variant_rank(other)
    }
}

/// A variant as a number for comparisons (`v7` → 7); arm64's missing
/// variant is `v8`, as containerd's matcher treats it.
fn variant_rank(p: &Platform) -> Option<u32> {
    let v = match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => "v8",
        (_, Some(v)) => v,
        (_, None) => return None,
    };
    v.strip_prefix('v').and_then(|n| n.parse().ok())
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

/// Chooses `want`'s manifest from a list, as containerd's platform matcher:
/// same OS and architecture; the exact variant first, then the highest
/// lower variant the platform still runs (an arm v7 host runs v6); an entry
/// without a variant last. Attestations (`unknown/unknown`) never match.
pub fn choose<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let want_rank = variant_rank(want);
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in &index.manifests {
        let Some(p) = &d.platform else { continue };
        if p.os != want.os || p.architecture != want.architecture {
            continue;
        }
        let score = match (variant_rank(p), want_rank) {
            (a, b) if a == b => 1000,
            (Some(have), Some(w)) if have < w => 100 + have,
            (None, _) => 1,
            _ => continue,
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, d));
        }
    }
    best.map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            annotations: BTreeMap::new(),
        }
    }

    fn pick(index: &Index, want: &str) -> Option<String> {
        choose(index, &Platform::parse(want).unwrap()).map(|d| d.digest.clone())
    }

    #[test]
    fn chooses_the_native_platform() {
        let index = Index {
            manifests: vec![
                entry("unknown", "unknown", None, "att"),
                entry("linux", "arm64", None, "arm64"),
                entry("linux", "amd64", None, "amd64"),
                entry("linux", "arm", Some("v6"), "armv6"),
                entry("linux", "arm", Some("v7"), "armv7"),
                entry("windows", "amd64", None, "win"),
            ],
        };
        assert_eq!(pick(&index, "linux/amd64").as_deref(), Some("amd64"));
        assert_eq!(pick(&index, "linux/arm64/v8").as_deref(), Some("arm64"));
        assert_eq!(pick(&index, "linux/arm64").as_deref(), Some("arm64"));
        assert_eq!(pick(&index, "linux/arm/v7").as_deref(), Some("armv7"));
        assert_eq!(pick(&index, "linux/arm/v8").as_deref(), Some("armv7"));
        assert_eq!(pick(&index, "linux/arm/v6").as_deref(), Some("armv6"));
        assert_eq!(pick(&index, "linux/arm/v5"), None);
        assert_eq!(pick(&index, "linux/s390x"), None);
        let native = choose(&index, &Platform::native()).map(|d| d.digest.as_str());
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(native, Some("amd64"));
        }
    }

    #[test]
    fn parses_platforms() {
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().display(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().display(),
            "linux/arm64/v8"
        );
        assert!(Platform::parse("linux/arm64")
            .unwrap()
            .same_as(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!Platform::parse("linux/arm64")
            .unwrap()
            .same_as(&Platform::parse("linux/amd64").unwrap()));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }

    #[test]
    fn classifies_documents() {
        assert_eq!(kind(DOCKER_LIST, b"{}"), Ok(Kind::Index));
        assert_eq!(
            kind("application/json", br#"{"manifests":[]}"#),
            Ok(Kind::Index)
        );
        assert_eq!(
            kind(
                "",
                br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
            ),
            Ok(Kind::Manifest)
        );
        assert!(kind(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            b"{}"
        )
        .is_err());
        assert_eq!(
            media_type("text/plain", br#"{"config":{}}"#, Kind::Manifest),
            OCI_MANIFEST
        );
    }
}
