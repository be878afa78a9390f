//! What `docker save` writes: a tar that is both an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) and a docker save archive
//! (`manifest.json`, `repositories`), as Docker 25 and later write it, so
//! that both docker's loaders and OCI tools read it.
//!
//! The writer streams: a blob's bytes go out as they are read from the
//! gateway, with only the tar header (which needs the size up front) built
//! before; the caller checks digests as the bytes pass.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// containerd's annotation with the image's full name on an index entry.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation with the tag (docker writes the tag alone).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const BLOCK: usize = 512;

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub fn blob_path(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    format!("blobs/{alg}/{hex}")
}

/// A streaming tar writer over any async sink.
pub struct TarWriter<W> {
    out: W,
    /// Bytes still due for the file being written.
    remaining: u64,
    /// Size of the file being written, for its padding.
    current: u64,
}

impl<W: AsyncWrite + Unpin> TarWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            remaining: 0,
            current: 0,
        }
    }

    fn header(path: &str, size: u64, dir: bool) -> std::io::Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_size(size);
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        Ok(h)
    }

    pub async fn dir(&mut self, path: &str) -> std::io::Result<()> {
        let h = Self::header(path, 0, true)?;
        self.out.write_all(h.as_bytes()).await
    }

    /// Starts a regular file of `size` bytes; its bytes follow with [`Self::write`].
    pub async fn begin(&mut self, path: &str, size: u64) -> std::io::Result<()> {
        if self.remaining != 0 {
            return Err(std::io::Error::other("tar: previous file not finished"));
        }
        let h = Self::header(path, size, false)?;
        self.out.write_all(h.as_bytes()).await?;
        self.remaining = size;
        self.current = size;
        Ok(())
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.len() as u64 > self.remaining {
            return Err(std::io::Error::other(
                "tar: more bytes than the size announced",
            ));
        }
        self.out.write_all(bytes).await?;
        self.remaining -= bytes.len() as u64;
        Ok(())
    }

    /// Ends the file: all announced bytes must have come.
    pub async fn end(&mut self) -> std::io::Result<()> {
        if self.remaining != 0 {
            return Err(std::io::Error::other(format!(
                "tar: {} bytes short of the size announced",
                self.remaining
            )));
        }
        let pad = (BLOCK - (self.current as usize % BLOCK)) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad]).await?;
        self.current = 0;
        Ok(())
    }

    pub async fn file(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.begin(path, bytes.len() as u64).await?;
        self.write(bytes).await?;
        self.end().await
    }

    /// Writes the end-of-archive blocks and flushes; returns the sink.
    pub async fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK]).await?;
        self.out.flush().await?;
        Ok(self.out)
    }
}

/// One image root in the archive: the descriptor a record points to and
/// the names it is saved under.
#[derive(Debug, Clone)]
pub struct Root {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    /// Full names (`docker.io/library/busybox:latest`); empty when saved by ID.
    pub names: Vec<String>,
}

/// One image for manifest.json: its config, layers (bottom first) and
/// familiar tags (`busybox:latest`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub config: String,
    pub layers: Vec<String>,
    pub repo_tags: Vec<String>,
}

/// `oci-layout`.
pub fn oci_layout() -> Vec<u8> {
    br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()
}

/// `index.json`: an entry per name (containerd's name annotation and the
/// tag as OCI ref name), or one bare entry for an image saved by ID.
pub fn index_json(roots: &[Root]) -> Vec<u8> {
    let mut manifests = Vec::new();
    for r in roots {
        let base = json!({
            "mediaType": r.media_type,
            "digest": r.digest,
            "size": r.size,
        });
        if r.names.is_empty() {
            manifests.push(base);
            continue;
        }
        for name in &r.names {
            let mut d = base.clone();
            let mut ann = serde_json::Map::new();
            ann.insert(ANNOTATION_IMAGE_NAME.into(), Value::String(name.clone()));
            if let Some(tag) = tag_of(name) {
                ann.insert(ANNOTATION_REF_NAME.into(), Value::String(tag));
            }
            d["annotations"] = Value::Object(ann);
            manifests.push(d);
        }
    }
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&doc).expect("serialising JSON values")
}

/// The tag of a full name, if it has one (`…/busybox:latest` → `latest`).
fn tag_of(name: &str) -> Option<String> {
    let without_digest = name.split('@').next().unwrap_or(name);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, t)| t.to_string())
}

/// `manifest.json`: docker's list of `{Config, RepoTags, Layers}`, paths
/// into `blobs/`.
pub fn manifest_json(entries: &[Entry]) -> Vec<u8> {
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "Config": blob_path(&e.config),
                "RepoTags": if e.repo_tags.is_empty() { Value::Null } else { json!(e.repo_tags) },
                "Layers": e.layers.iter().map(|l| blob_path(l)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_vec(&list).expect("serialising JSON values")
}

/// `repositories`: the pre-1.10 map `{repository: {tag: top layer}}`, still
/// written by docker for old loaders; `None` when no image has a tag.
pub fn repositories(entries: &[Entry]) -> Option<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for e in entries {
        let Some(top) = e.layers.last() else { continue };
        let top = top.split_once(':').map_or(top.as_str(), |(_, h)| h);
        for rt in &e.repo_tags {
            let Some((repo, tag)) = rt.rsplit_once(':').filter(|(_, t)| !t.contains('/')) else {
                continue;
            };
            repos
                .entry(repo.to_string())
                .or_default()
                .insert(tag.to_string(), top.to_string());
        }
    }
    (!repos.is_empty()).then(|| serde_json::to_vec(&repos).expect("serialising JSON values"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const C: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const L: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const M: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn writes_a_tar_that_reads_back() {
        let bytes = block_on(async {
            let mut w = TarWriter::new(Vec::new());
            w.dir("blobs/").await.unwrap();
            w.file("oci-layout", &oci_layout()).await.unwrap();
            w.begin(&blob_path(L), 700).await.unwrap();
            w.write(&[7u8; 300]).await.unwrap();
            w.write(&[7u8; 400]).await.unwrap();
            w.end().await.unwrap();
            w.finish().await.unwrap()
        });
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            seen.push((path, data));
        }
        assert_eq!(seen[0].0, "blobs/");
        assert_eq!(seen[1], ("oci-layout".into(), oci_layout()));
        assert_eq!(seen[2].0, format!("blobs/sha256/{}", &L[7..]));
        assert_eq!(seen[2].1, vec![7u8; 700]);
    }

    #[test]
    fn refuses_a_short_or_long_file() {
        block_on(async {
            let mut w = TarWriter::new(Vec::new());
            w.begin("x", 4).await.unwrap();
            assert!(w.write(&[0; 5]).await.is_err());
            w.write(&[0; 3]).await.unwrap();
            assert!(w.end().await.is_err());
        });
    }

    #[test]
    fn index_has_an_entry_per_name_or_a_bare_one() {
        let roots = [
            Root {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: M.into(),
                size: 400,
                names: vec![
                    "docker.io/library/busybox:latest".into(),
                    "localhost:5000/x/y:v1".into(),
                ],
            },
            Root {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: C.into(),
                size: 10,
                names: vec![],
            },
        ];
        let v: Value = serde_json::from_slice(&index_json(&roots)).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        let m = v["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0]["annotations"][ANNOTATION_IMAGE_NAME],
            "docker.io/library/busybox:latest"
        );
        assert_eq!(m[0]["annotations"][ANNOTATION_REF_NAME], "latest");
        assert_eq!(m[1]["annotations"][ANNOTATION_REF_NAME], "v1");
        assert!(m[2].get("annotations").is_none());
        assert_eq!(m[2]["digest"], C);
    }

    #[test]
    fn docker_manifest_and_repositories() {
        let entries = [
            Entry {
                config: C.into(),
                layers: vec![L.into()],
                repo_tags: vec!["busybox:latest".into(), "localhost:5000/app:v1".into()],
            },
            Entry {
                config: M.into(),
                layers: vec![L.into()],
                repo_tags: vec![],
            },
        ];
        let v: Value = serde_json::from_slice(&manifest_json(&entries)).unwrap();
        assert_eq!(v[0]["Config"], format!("blobs/sha256/{}", &C[7..]));
        assert_eq!(v[0]["Layers"][0], format!("blobs/sha256/{}", &L[7..]));
        assert_eq!(v[0]["RepoTags"][1], "localhost:5000/app:v1");
        assert!(v[1]["RepoTags"].is_null());
        let r: Value = serde_json::from_slice(&repositories(&entries).unwrap()).unwrap();
        assert_eq!(r["busybox"]["latest"], &L[7..]);
        assert_eq!(r["localhost:5000/app"]["v1"], &L[7..]);
        assert!(repositories(&entries[1..]).is_none());
    }

    #[test]
    fn tags_of_names() {
        assert_eq!(
            tag_of("docker.io/library/busybox:latest").as_deref(),
            Some("latest")
        );
        assert_eq!(tag_of("localhost:5000/app").as_deref(), None);
        assert_eq!(tag_of(&format!("localhost:5000/app@{M}")).as_deref(), None);
    }
}
