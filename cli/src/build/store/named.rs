//! Named stores: the sandbox's images offered as `oci-layout://` contexts,
//! each limited to the digests reachable from its images.

use std::collections::{BTreeSet, VecDeque};

use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tonic::transport::Channel;

use super::StoreError;
use crate::client::Gateway;

/// Largest index or manifest read while walking (they are held in memory).
pub const MAX_DOCUMENT: i64 = 4 << 20;
/// Most digests one named store may hold.
const MAX_DIGESTS: usize = 10_000;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// A store id and the digests BuildKit may read through it.
#[derive(Debug, Clone)]
pub struct NamedStore {
    id: String,
    allowed: BTreeSet<String>,
}

/// One child a document names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Child {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    manifests: Vec<Child>,
    #[serde(default)]
    config: Option<Child>,
    #[serde(default)]
    layers: Vec<Child>,
}

/// The descriptors an index (its manifests) or manifest (config, layers)
/// names; nothing for other documents.
pub fn children(media_type: &str, bytes: &[u8]) -> Result<Vec<Child>, StoreError> {
    if !is_index(media_type) && !is_manifest(media_type) {
        return Ok(Vec::new());
    }
    let doc: Document = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Invalid(format!("{media_type} document is not valid: {e}")))?;
    let mut out = doc.manifests;
    out.extend(doc.config);
    out.extend(doc.layers);
    Ok(out)
}

/// `sha256:<64 lowercase hex>`: the only digests the stores deal in.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Reads a whole small document from the sandbox through the gateway and
/// checks it against its digest. `Ok(None)` when the sandbox lacks it.
pub async fn read_document(
    client: &ContentClient<Channel>,
    digest: &str,
    size: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if !(0..=MAX_DOCUMENT).contains(&size) {
        return Err(StoreError::Invalid(format!(
            "document {digest} is {size} bytes, more than berth reads"
        )));
    }
    let mut c = client.clone();
    let req = api::ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let doing = || format!("reading {digest} from the sandbox");
    let mut stream = match c.read(req).await {
        Ok(s) => s.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
        Err(s) => return Err(StoreError::gateway(doing(), &s)),
    };
    let mut out = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(m)) => {
                out.extend_from_slice(&m.data);
                if out.len() as i64 > size {
                    break;
                }
            }
            Ok(None) => break,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(StoreError::gateway(doing(), &s)),
        }
    }
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&out)));
    if out.len() as i64 != size || actual != digest {
        return Err(StoreError::Invalid(format!(
            "document {digest} read from the sandbox does not match its descriptor"
        )));
    }
    Ok(Some(out))
}

impl NamedStore {
    /// The store `id` (as in `oci-layout://<id>:…`) for images whose
    /// targets are `targets`: every index, manifest, config and layer
    /// reachable from them. Documents the sandbox lacks (other platforms)
    /// end the walk there.
    pub async fn walk(gw: &Gateway, id: &str, targets: &[String]) -> Result<Self, StoreError> {
        let client = ContentClient::new(gw.channel.clone());
        let mut allowed = BTreeSet::new();
        let mut queue: VecDeque<String> = targets.iter().cloned().collect();
        // A target's media type is not known here: the document itself
        // says what it is (`sniff_media_type`).
        while let Some(digest) = queue.pop_front() {
            if !valid_digest(&digest) {
                return Err(StoreError::Invalid(format!(
                    "image target {digest} is not a sha256 digest"
                )));
            }
            if !allowed.insert(digest.clone()) {
                continue;
            }
            if allowed.len() > MAX_DIGESTS {
                return Err(StoreError::Invalid(format!(
                    "named context {id} holds more than {MAX_DIGESTS} blobs"
                )));
            }
            let mut c = client.clone();
            let size = match c
                .info(api::InfoRequest {
                    digest: digest.clone(),
                })
                .await
            {
                Ok(r) => r.into_inner().info.map(|i| i.size).unwrap_or(-1),
                Err(s) if s.code() == tonic::Code::NotFound => continue,
                Err(s) => {
                    return Err(StoreError::gateway(
                        format!("looking up {digest} in the sandbox"),
                        &s,
                    ))
                }
            };
            if !(0..=MAX_DOCUMENT).contains(&size) {
                // A layer or other large blob named as a target: a leaf.
                continue;
            }
            let Some(bytes) = read_document(&client, &digest, size).await? else {
                continue;
            };
            let media_type = sniff_media_type(&bytes);
            for child in children(&media_type, &bytes)? {
                if !valid_digest(&child.digest) {
                    return Err(StoreError::Invalid(format!(
                        "{digest} names {}, which is not a sha256 digest",
                        child.digest
                    )));
                }
                if is_index(&child.media_type) || is_manifest(&child.media_type) {
                    queue.push_back(child.digest);
                } else {
                    allowed.insert(child.digest);
                }
            }
        }
        Ok(NamedStore {
            id: id.to_string(),
            allowed,
        })
    }

    /// A store holding exactly `digests`.
    #[cfg(test)]
    pub fn with_digests(id: &str, digests: impl IntoIterator<Item = String>) -> Self {
        NamedStore {
            id: id.to_string(),
            allowed: digests.into_iter().collect(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn allows(&self, digest: &str) -> bool {
        self.allowed.contains(digest)
    }

    pub fn digests(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(String::as_str)
    }
}

/// What a document read by digest is: its own `mediaType`, else an index
/// when it lists `manifests`, a manifest when it has a `config`. Anything
/// else is treated as a leaf.
pub fn sniff_media_type(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Head>(bytes) {
        Ok(Head {
            media_type: Some(m),
            ..
        }) => m,
        Ok(Head {
            manifests: Some(_), ..
        }) => OCI_INDEX.to_string(),
        Ok(Head {
            config: Some(_), ..
        }) => OCI_MANIFEST.to_string(),
        _ => String::new(),
    }
}
