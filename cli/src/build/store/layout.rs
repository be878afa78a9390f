//! The end of an export: an OCI layout of what BuildKit wrote, streamed
//! into the sandbox through `berth.v1.Images/Load`.
//!
//! The layout holds `oci-layout`, an `index.json` naming the image once per
//! name, every blob the export store spooled, and the index, manifest and
//! config documents the gateway reads to plan the import. A document
//! BuildKit skipped (the sandbox had it) is read back from the sandbox: it
//! is small, and the gateway trusts only documents inside the archive.
//! Layers the sandbox has are left out; the gateway takes them from the
//! sandbox's own content store.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;

use base64::Engine as _;
use berth_proto::berth::v1::images_client::ImagesClient;
use berth_proto::berth::v1::{load_response, LoadRequest, LoadedImage};
use containerd_client::services::v1::content_client::ContentClient;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::export::ExportStore;
use super::named::{
    is_index, is_manifest, read_document, sniff_media_type, valid_digest, MAX_DOCUMENT,
};
use super::StoreError;
use crate::client::Gateway;

/// The exporter response key holding the image's root descriptor
/// (base64 of its JSON).
pub const RESPONSE_DESCRIPTOR: &str = "containerimage.descriptor";
/// `io.containerd.image.name`: the gateway names the image after it.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Pieces of the archive per load message.
const CHUNK: usize = 1 << 20;

/// An OCI descriptor, as much of it as the layout needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

/// What a finished export did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// As `docker load` reports them.
    pub images: Vec<LoadedImage>,
    /// Size of the archive sent to the gateway.
    pub sent_bytes: u64,
    /// Blobs BuildKit wrote (the sandbox lacked them).
    pub new_blobs: usize,
}

/// The image's root descriptor from the exporter's response.
pub fn root_descriptor(response: &BTreeMap<String, String>) -> Result<Descriptor, StoreError> {
    let Some(encoded) = response.get(RESPONSE_DESCRIPTOR) else {
        return Err(StoreError::Invalid(format!(
            "the exporter's response lacks {RESPONSE_DESCRIPTOR}"
        )));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| StoreError::Invalid(format!("{RESPONSE_DESCRIPTOR} is not base64: {e}")))?;
    let d: Descriptor = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Invalid(format!("{RESPONSE_DESCRIPTOR} is not valid: {e}")))?;
    if !valid_digest(&d.digest) || !(is_index(&d.media_type) || is_manifest(&d.media_type)) {
        return Err(StoreError::Invalid(format!(
            "the exporter named {} ({}), not an image",
            d.digest, d.media_type
        )));
    }
    Ok(d)
}

/// `index.json`: the root once per name (the gateway reads one name per
/// entry), or once without a name.
pub fn index_json(root: &Descriptor, names: &[String]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(flatten)]
        d: &'a Descriptor,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<&'static str, &'a str>,
    }
    let mut manifests: Vec<Entry> = names
        .iter()
        .map(|n| Entry {
            d: root,
            annotations: BTreeMap::from([(ANNOTATION_IMAGE_NAME, n.as_str())]),
        })
        .collect();
    if manifests.is_empty() {
        manifests.push(Entry {
            d: root,
            annotations: BTreeMap::new(),
        });
    }
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("serialisable")
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    config: Option<Descriptor>,
}

/// Where a blob of the layout comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Spooled by the export store.
    Spooled(String),
    /// A document read back from the sandbox.
    Bytes(String, Vec<u8>),
}

impl ExportStore {
    /// Imports what BuildKit exported as the image `root` (see
    /// [`root_descriptor`]) under `names` (the `-t` values; none makes a
    /// dangling image), then drops this handle. Call it once BuildKit's
    /// exporter is done: after the solve returned, or, for an early import
    /// (`build::early`), once the exporter's vertex completed (it writes
    /// nothing after that).
    pub async fn finish(
        self,
        gw: &Gateway,
        root: &Descriptor,
        names: &[String],
    ) -> Result<Loaded, StoreError> {
        let client = self
            .channel()
            .unwrap_or_else(|| ContentClient::new(gw.channel.clone()));
        let parts = self.parts(&client, root).await?;
        let index = index_json(root, names);
        let new_blobs = self.blobs().len();
        let (tx, rx) = mpsc::channel::<LoadRequest>(4);
        let store = self.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = ChunkWriter::new(tx);
            write_layout(&store, &index, &parts, &mut out)?;
            out.finish()
        });
        let mut images_client = ImagesClient::new(gw.channel.clone());
        let loaded = async {
            let mut stream = images_client
                .load(ReceiverStream::new(rx))
                .await?
                .into_inner();
            let mut images = Vec::new();
            while let Some(msg) = stream.message().await? {
                if let Some(load_response::Payload::Loaded(img)) = msg.payload {
                    images.push(img);
                }
            }
            Ok::<_, tonic::Status>(images)
        }
        .await;
        let written = writer
            .await
            .map_err(|e| StoreError::io("writing the image layout", std::io::Error::other(e)))?;
        // The gateway's verdict explains a failure best; a local error
        // matters only when it accepted a short archive.
        let images =
            loaded.map_err(|s| StoreError::gateway("importing the image into the sandbox", &s))?;
        let sent_bytes = written?;
        Ok(Loaded {
            images,
            sent_bytes,
            new_blobs,
        })
    }

    /// The descriptor of the image document `digest` BuildKit exported:
    /// spooled, or skipped because the sandbox has it (then read back from
    /// there). Its media type is the document's own. `None` when the
    /// export holds no such document or it is not an index or manifest.
    pub async fn describe(
        &self,
        gw: &Gateway,
        digest: &str,
    ) -> Result<Option<Descriptor>, StoreError> {
        if !valid_digest(digest) {
            return Ok(None);
        }
        let bytes = if let Some(&size) = self.blobs().get(digest) {
            if size > MAX_DOCUMENT {
                return Ok(None);
            }
            std::fs::read(self.blob_path(digest))
                .map_err(|e| StoreError::io(format!("reading {digest}"), e))?
        } else if let Some(size) = self.skipped_size(digest) {
            let client = self
                .channel()
                .unwrap_or_else(|| ContentClient::new(gw.channel.clone()));
            match read_document(&client, digest, size).await? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let media_type = sniff_media_type(&bytes);
        if !(is_index(&media_type) || is_manifest(&media_type)) {
            return Ok(None);
        }
        Ok(Some(Descriptor {
            media_type,
            digest: digest.to_string(),
            size: bytes.len() as i64,
        }))
    }

    /// Every spooled blob, plus the documents below `root` the spool lacks
    /// and the sandbox has, in a stable order.
    async fn parts(
        &self,
        client: &ContentClient<Channel>,
        root: &Descriptor,
    ) -> Result<Vec<Part>, StoreError> {
        let spooled = self.blobs();
        let mut parts: Vec<Part> = spooled.keys().cloned().map(Part::Spooled).collect();
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([(root.clone(), true)]);
        while let Some((d, walk)) = queue.pop_front() {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            if !valid_digest(&d.digest) {
                return Err(StoreError::Invalid(format!(
                    "{} is not a sha256 digest",
                    d.digest
                )));
            }
            let bytes = if spooled.contains_key(&d.digest) {
                if !walk {
                    continue;
                }
                std::fs::read(self.blob_path(&d.digest))
                    .map_err(|e| StoreError::io(format!("reading {}", d.digest), e))?
            } else {
                match read_document(client, &d.digest, d.size).await? {
                    Some(b) => {
                        parts.push(Part::Bytes(d.digest.clone(), b.clone()));
                        b
                    }
                    // Not the sandbox's either: the gateway decides
                    // whether the image needs it.
                    None => continue,
                }
            };
            if !walk {
                continue;
            }
            if bytes.len() as i64 > MAX_DOCUMENT {
                continue;
            }
            let doc: Document = serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::Invalid(format!("document {} is not valid: {e}", d.digest))
            })?;
            for child in doc.manifests {
                if is_index(&child.media_type) || is_manifest(&child.media_type) {
                    queue.push_back((child, true));
                }
            }
            if is_manifest(&d.media_type) {
                if let Some(config) = doc.config {
                    queue.push_back((config, false));
                }
            }
        }
        Ok(parts)
    }
}

/// Writes the layout as a tar to `out`.
pub fn write_layout(
    store: &ExportStore,
    index: &[u8],
    parts: &[Part],
    out: &mut impl Write,
) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::io("writing the image layout", e);
    let mut b = tar::Builder::new(out);
    let file = |b: &mut tar::Builder<&mut _>, name: &str, bytes: &[u8]| {
        b.append_data(&mut header(bytes.len() as u64), name, bytes)
            .map_err(io)
    };
    file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    file(&mut b, "index.json", index)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, dir, std::io::empty()).map_err(io)?;
    }
    for part in parts {
        match part {
            Part::Spooled(digest) => {
                let path = store.blob_path(digest);
                let mut f = std::fs::File::open(&path)
                    .map_err(|e| StoreError::io(format!("reading {digest}"), e))?;
                let len = f.metadata().map_err(io)?.len();
                b.append_data(&mut header(len), blob_name(digest), &mut f)
                    .map_err(io)?;
            }
            Part::Bytes(digest, bytes) => file(&mut b, &blob_name(digest), bytes)?,
        }
    }
    b.finish().map_err(io)?;
    Ok(())
}

fn blob_name(digest: &str) -> String {
    format!(
        "blobs/sha256/{}",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    )
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h
}

/// Cuts the tar into load messages as it is written.
struct ChunkWriter {
    tx: mpsc::Sender<LoadRequest>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<LoadRequest>) -> Self {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            sent: 0,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx.blocking_send(LoadRequest { chunk }).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the gateway ended the import",
            )
        })
    }

    fn finish(mut self) -> Result<u64, StoreError> {
        self.send()
            .map_err(|e| StoreError::io("sending the image layout", e))?;
        Ok(self.sent)
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tonic::transport::Endpoint;

    use super::super::export::Lookup;
    use super::super::tests::{digest_of, serve_service, write_blob, Scratch};
    use super::super::{SessionContent, EXPORT_STORE};
    use super::*;

    const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
    const IN_SANDBOX: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;

    /// A gateway never dialled: the documents asked for are spooled.
    fn offline() -> Gateway {
        Gateway {
            channel: Endpoint::from_static("http://gateway.invalid").connect_lazy(),
            socket: "/nonexistent".into(),
        }
    }

    #[tokio::test]
    async fn describes_spooled_documents_and_records_skipped_sizes() {
        let dir = Scratch::new();
        let sandbox = BTreeMap::from([(digest_of(IN_SANDBOX), IN_SANDBOX.len() as i64)]);
        let export = ExportStore::with_lookup(&dir.0, Lookup::Fixed(sandbox)).unwrap();
        let service = SessionContent::new(
            ContentClient::new(offline().channel),
            Vec::new(),
            Some(export.clone()),
        );
        let s = serve_service(dir, service, export).await;
        let manifest = digest_of(MANIFEST);
        write_blob(&s.client, EXPORT_STORE, MANIFEST, &manifest)
            .await
            .unwrap();
        let layer = b"not a document";
        write_blob(&s.client, EXPORT_STORE, layer, &digest_of(layer))
            .await
            .unwrap();
        write_blob(&s.client, EXPORT_STORE, IN_SANDBOX, &digest_of(IN_SANDBOX))
            .await
            .unwrap_err();

        let gw = offline();
        let d = s.export.describe(&gw, &manifest).await.unwrap();
        assert_eq!(
            d,
            Some(Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: manifest,
                size: MANIFEST.len() as i64,
            })
        );
        assert_eq!(
            s.export.describe(&gw, &digest_of(layer)).await.unwrap(),
            None
        );
        assert_eq!(
            s.export
                .describe(&gw, &digest_of(b"never written"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.export.describe(&gw, "sha256:short").await.unwrap(), None);
        assert_eq!(
            s.export.skipped_size(&digest_of(IN_SANDBOX)),
            Some(IN_SANDBOX.len() as i64)
        );
    }
}
