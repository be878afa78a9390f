//! Archives built in memory for the tests: well-formed OCI layouts and
//! docker-save archives, and hostile entries the `tar` crate's safe API
//! would refuse to write.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::oci::{self, Digest};
use super::plan::{host_platform, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};

/// A file in its own fresh directory, removed with the directory on drop.
pub struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    pub fn with(bytes: &[u8]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("berth-load-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("archive");
        std::fs::write(&path, bytes).unwrap();
        Self { dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

impl Entry {
    pub fn file(name: &str, data: &[u8]) -> Self {
        Entry::File(name.into(), data.to_vec())
    }
    pub fn dir(name: &str) -> Self {
        Entry::Dir(name.into())
    }
    pub fn symlink(name: &str, target: &str) -> Self {
        Entry::Symlink(name.into(), target.into())
    }
    pub fn hardlink(name: &str, target: &str) -> Self {
        Entry::Hardlink(name.into(), target.into())
    }
}

/// One ustar header with `name` and `link` written verbatim.
pub fn raw_header(name: &[u8], typeflag: u8, link: &[u8], size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_mode(0o644);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(typeflag));
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A tar of `entries`, names written as given (hostile ones included).
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for entry in entries {
        let (name, typeflag, link, data): (&str, u8, &str, &[u8]) = match entry {
            Entry::File(n, d) => (n, b'0', "", d),
            Entry::Dir(n) => (n, b'5', "", &[]),
            Entry::Symlink(n, t) => (n, b'2', t, &[]),
            Entry::Hardlink(n, t) => (n, b'1', t, &[]),
        };
        if name.len() <= 100 {
            let header = raw_header(
                name.as_bytes(),
                typeflag,
                link.as_bytes(),
                data.len() as u64,
            );
            let mut h = tar::Header::new_old();
            h.as_mut_bytes().copy_from_slice(&header);
            b.append(&h, data).unwrap();
        } else {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::new(typeflag));
            b.append_data(&mut h, name, data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A root filesystem layer: one file.
pub fn layer_tar(file: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, file, content).unwrap();
    b.into_inner().unwrap()
}

fn image_config(diff_ids: &[&Digest]) -> Vec<u8> {
    image_config_with(diff_ids, "sh")
}

fn image_config_with(diff_ids: &[&Digest], cmd: &str) -> Vec<u8> {
    let (os, arch) = host_platform();
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

fn manifest_of(config: &Digest, config_size: usize, layer: &Digest, layer_size: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.as_str(), "size": layer_size}],
    }))
    .unwrap()
}

/// An OCI image layout with one gzip layer, and knobs to break it.
pub struct OciLayout {
    pub layer: Vec<u8>,
    pub layer_digest: Digest,
    pub diff_id: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    /// An image index between index.json and the manifest, if any.
    pub index: Option<(Vec<u8>, Digest)>,
    pub annotations: Vec<(&'static str, &'static str)>,
    pub extra: Vec<Entry>,
    pub omit: Option<Digest>,
    pub corrupt_manifest: bool,
    pub corrupt_layer: bool,
    pub index_override: Option<String>,
    pub manifest_size_delta: i64,
}

impl OciLayout {
    pub fn busybox() -> Self {
        Self::with_file("hello.txt", b"hello from a layer\n")
    }

    pub fn with_file(file: &str, content: &[u8]) -> Self {
        let plain = layer_tar(file, content);
        let diff_id = Digest::of(&plain);
        let layer = gzip(&plain);
        let layer_digest = Digest::of(&layer);
        let config = image_config(&[&diff_id]);
        let config_digest = Digest::of(&config);
        let manifest = manifest_of(&config_digest, config.len(), &layer_digest, layer.len());
        let manifest_digest = Digest::of(&manifest);
        Self {
            layer,
            layer_digest,
            diff_id,
            config,
            config_digest,
            manifest,
            manifest_digest,
            index: None,
            annotations: vec![
                (ANNOTATION_IMAGE_NAME, "docker.io/library/busybox:latest"),
                (ANNOTATION_REF_NAME, "latest"),
            ],
            extra: Vec::new(),
            omit: None,
            corrupt_manifest: false,
            corrupt_layer: false,
            index_override: None,
            manifest_size_delta: 0,
        }
    }

    /// The same layer under another config (its Cmd) and name: a second
    /// image that shares this one's layer, as a rebuild does.
    pub fn sibling(&self, cmd: &str, name: &'static str) -> Self {
        let config = image_config_with(&[&self.diff_id], cmd);
        let config_digest = Digest::of(&config);
        let manifest = manifest_of(
            &config_digest,
            config.len(),
            &self.layer_digest,
            self.layer.len(),
        );
        let manifest_digest = Digest::of(&manifest);
        Self {
            layer: self.layer.clone(),
            layer_digest: self.layer_digest.clone(),
            diff_id: self.diff_id.clone(),
            config,
            config_digest,
            manifest,
            manifest_digest,
            index: None,
            annotations: vec![(ANNOTATION_IMAGE_NAME, name)],
            extra: Vec::new(),
            omit: None,
            corrupt_manifest: false,
            corrupt_layer: false,
            index_override: None,
            manifest_size_delta: 0,
        }
    }

    /// Puts an image index over the manifest, listing the host platform and
    /// `others`, whose manifests the archive does not hold.
    pub fn wrap_in_index(&mut self, others: &[(&str, &str)]) {
        let (os, arch) = host_platform();
        let mut manifests = vec![serde_json::json!({
            "mediaType": oci::OCI_MANIFEST, "digest": self.manifest_digest.as_str(), "size": self.manifest.len(),
            "platform": {"os": os, "architecture": arch},
        })];
        for (os, arch) in others {
            let absent = Digest::of(format!("{os}/{arch}").as_bytes());
            manifests.push(serde_json::json!({
                "mediaType": oci::OCI_MANIFEST, "digest": absent.as_str(), "size": 123,
                "platform": {"os": os, "architecture": arch},
            }));
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": manifests,
        }))
        .unwrap();
        let digest = Digest::of(&index);
        self.index = Some((index, digest));
    }

    pub fn tar(&self) -> Vec<u8> {
        let (root_type, root_digest, root_size) = match &self.index {
            Some((bytes, digest)) => (oci::OCI_INDEX, digest.clone(), bytes.len()),
            None => (
                oci::OCI_MANIFEST,
                self.manifest_digest.clone(),
                self.manifest.len(),
            ),
        };
        let annotations: serde_json::Map<String, serde_json::Value> = self
            .annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let index_json = match &self.index_override {
            Some(text) => text.clone().into_bytes(),
            None => serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": oci::OCI_INDEX,
                "manifests": [{
                    "mediaType": root_type, "digest": root_digest.as_str(),
                    "size": (root_size as i64 + self.manifest_size_delta), "annotations": annotations,
                }],
            }))
            .unwrap(),
        };
        let mut manifest = self.manifest.clone();
        if self.corrupt_manifest {
            manifest[0] = b'[';
        }
        let mut layer = self.layer.clone();
        if self.corrupt_layer {
            let last = layer.len() - 1;
            layer[last] ^= 0xff;
        }
        let mut blobs = vec![
            (&self.layer_digest, layer),
            (&self.config_digest, self.config.clone()),
            (&self.manifest_digest, manifest),
        ];
        if let Some((bytes, digest)) = &self.index {
            blobs.push((digest, bytes.clone()));
        }
        let mut entries = vec![
            Entry::file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            Entry::file("index.json", &index_json),
            Entry::dir("blobs/"),
            Entry::dir("blobs/sha256/"),
        ];
        for (digest, bytes) in blobs {
            if self.omit.as_ref() != Some(digest) {
                entries.push(Entry::file(
                    &format!("blobs/sha256/{}", digest.hex()),
                    &bytes,
                ));
            }
        }
        let mut out = tar_of(&entries);
        if !self.extra.is_empty() {
            // Splice the extra entries in before the end-of-archive blocks.
            let extra = tar_of(&self.extra);
            out.truncate(end_of_entries(&out));
            out.extend_from_slice(&extra);
        }
        out
    }
}

/// Offset of the end-of-archive marker of a tar written by `tar_of`.
fn end_of_entries(tar: &[u8]) -> usize {
    let mut pos = 0;
    while tar[pos..pos + 512].iter().any(|&b| b != 0) {
        let size = u64::from_str_radix(
            std::str::from_utf8(&tar[pos + 124..pos + 135])
                .unwrap()
                .trim_matches(|c: char| c == '\0' || c == ' '),
            8,
        )
        .unwrap() as usize;
        pos += 512 + size.div_ceil(512) * 512;
    }
    pos
}

/// A legacy `docker save` of two images sharing a base layer; the second
/// image's copy of it is a symlink into the first one's directory.
pub struct DockerSave {
    pub layers: Vec<Vec<u8>>,
    pub diff_ids: Vec<Digest>,
    pub configs: Vec<Vec<u8>>,
    pub tags: [Vec<String>; 2],
}

impl DockerSave {
    pub fn two_images() -> Self {
        let layers = vec![
            layer_tar("a.txt", b"base layer\n"),
            layer_tar("b.txt", b"top layer\n"),
        ];
        let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
        let configs = vec![
            image_config(&[&diff_ids[0]]),
            image_config(&[&diff_ids[0], &diff_ids[1]]),
        ];
        Self {
            layers,
            diff_ids,
            configs,
            tags: [
                vec!["busybox:latest".into(), "localhost:5000/x:1".into()],
                vec!["foo/bar".into()],
            ],
        }
    }

    pub fn with_tags(mut self, first: &[&str], second: &[&str]) -> Self {
        self.tags = [
            first.iter().map(|s| s.to_string()).collect(),
            second.iter().map(|s| s.to_string()).collect(),
        ];
        self
    }

    pub fn tar(&self) -> Vec<u8> {
        let config_names: Vec<String> = self
            .configs
            .iter()
            .map(|c| format!("{}.json", Digest::of(c).hex()))
            .collect();
        let manifest = serde_json::json!([
            {"Config": config_names[0], "RepoTags": self.tags[0], "Layers": ["1111/layer.tar"]},
            {"Config": config_names[1], "RepoTags": self.tags[1], "Layers": ["2222/layer.tar", "3333/layer.tar"]},
        ]);
        tar_of(&[
            Entry::dir("1111/"),
            Entry::file("1111/VERSION", b"1.0"),
            Entry::file("1111/json", b"{}"),
            Entry::file("1111/layer.tar", &self.layers[0]),
            Entry::dir("2222/"),
            Entry::symlink("2222/layer.tar", "../1111/layer.tar"),
            Entry::dir("3333/"),
            Entry::file("3333/layer.tar", &self.layers[1]),
            Entry::file(&config_names[0], &self.configs[0]),
            Entry::file(&config_names[1], &self.configs[1]),
            Entry::file("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
            Entry::file("repositories", b"{}"),
        ])
    }
}
