//! The OCI image layout a pull hands to the gateway's `Images/Load`: one
//! tar stream with `oci-layout`, `index.json` naming the image, and the
//! blobs the sandbox lacks. Layers the sandbox already has are left out;
//! the gateway's loader takes them from the sandbox's content store.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::json;

use super::digest::Digest;
use super::manifest::OCI_INDEX;

/// The annotations the gateway's loader reads the image's name from.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A blob of the layout: in memory (manifests, config) or a verified
/// download on disk.
pub enum BlobSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// What goes into the layout.
pub struct Layout {
    /// The image's root: an index or a manifest.
    pub root_media_type: String,
    pub root_digest: Digest,
    pub root_size: u64,
    /// The full name (`host/path:tag` or `host/path@digest`).
    pub name: String,
    /// The tag, for `org.opencontainers.image.ref.name`.
    pub tag: Option<String>,
    pub blobs: Vec<(Digest, u64, BlobSource)>,
}

impl Layout {
    pub fn index_json(&self) -> Vec<u8> {
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION_IMAGE_NAME, self.name.clone());
        if let Some(tag) = &self.tag {
            annotations.insert(ANNOTATION_REF_NAME, tag.clone());
        }
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": self.root_media_type,
                "digest": self.root_digest.as_str(),
                "size": self.root_size,
                "annotations": annotations,
            }],
        });
        serde_json::to_vec(&doc).expect("index.json encodes")
    }

    /// Writes the layout as a tar to `out` (blocking: run it off the
    /// async threads).
    pub fn write_tar<W: Write>(&self, out: W) -> io::Result<W> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        add_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add_bytes(&mut tar, "index.json", &self.index_json())?;
        let mut seen = std::collections::HashSet::new();
        for (digest, size, source) in &self.blobs {
            if !seen.insert(digest.clone()) {
                continue;
            }
            let path = format!("blobs/sha256/{}", digest.hex());
            match source {
                BlobSource::Bytes(b) => add_bytes(&mut tar, &path, b)?,
                BlobSource::File(f) => {
                    let file = std::fs::File::open(f)?;
                    let mut h = header(*size);
                    tar.append_data(&mut h, &path, file)?;
                }
            }
        }
        tar.into_inner()
    }
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = header(bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
}

/// A `Write` that hands fixed-size chunks to an async receiver; a closed
/// receiver (the gateway ended the call) is a broken pipe.
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChunkWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<Vec<u8>>, chunk: usize) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        self.tx
            .blocking_send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the gateway ended the load"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn layout_names_the_image_and_holds_each_blob_once() {
        let config = b"{}".to_vec();
        let cd = Digest::of(&config);
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("l");
        std::fs::write(&layer, b"layer-bytes").unwrap();
        let ld = Digest::of(b"layer-bytes");
        let manifest = b"{\"m\":1}".to_vec();
        let md = Digest::of(&manifest);
        let layout = Layout {
            root_media_type: super::super::manifest::OCI_MANIFEST.into(),
            root_digest: md.clone(),
            root_size: manifest.len() as u64,
            name: "10.0.0.1:5000/a/b:v1".into(),
            tag: Some("v1".into()),
            blobs: vec![
                (
                    md.clone(),
                    manifest.len() as u64,
                    BlobSource::Bytes(manifest.clone()),
                ),
                (cd.clone(), 2, BlobSource::Bytes(config.clone())),
                (ld.clone(), 11, BlobSource::File(layer.clone())),
                (cd.clone(), 2, BlobSource::Bytes(config)),
            ],
        };
        let bytes = layout.write_tar(Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut names = Vec::new();
        let mut index = String::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p == "index.json" {
                e.read_to_string(&mut index).unwrap();
            }
            names.push(p);
        }
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names.contains(&format!("blobs/sha256/{}", ld.hex())));
        let v: serde_json::Value = serde_json::from_str(&index).unwrap();
        let m = &v["manifests"][0];
        assert_eq!(m["digest"], md.as_str());
        assert_eq!(
            m["annotations"][ANNOTATION_IMAGE_NAME],
            "10.0.0.1:5000/a/b:v1"
        );
        assert_eq!(m["annotations"][ANNOTATION_REF_NAME], "v1");
    }
}
