//! The busybox fixture image, read from its archive.

use std::fs::File;
use std::io::Read;
use std::sync::OnceLock;

use super::BUSYBOX_TAR;

/// Digests of the busybox fixture, read from its archive.
pub struct Fixture {
    /// `sha256:…` of the image config: docker's image ID.
    pub config_digest: String,
    /// `sha256:…` of the manifest.
    pub manifest_digest: String,
    /// The chain ID of its single layer: the committed snapshot's key.
    pub chain_id: String,
}

pub fn busybox_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let blobs = archive_entries(BUSYBOX_TAR);
        let json = |name: &str| -> serde_json::Value {
            let bytes = blobs
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{BUSYBOX_TAR} has no {name}"));
            serde_json::from_slice(&bytes.1)
                .unwrap_or_else(|e| panic!("{name} in {BUSYBOX_TAR}: {e}"))
        };
        let blob_name =
            |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let index = json("index.json");
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("index digest")
            .to_string();
        let manifest = json(&blob_name(&manifest_digest));
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_string();
        let config = json(&blob_name(&config_digest));
        let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
        assert_eq!(diff_ids.len(), 1, "the busybox fixture has one layer");
        let chain_id = diff_ids[0].as_str().expect("diff id").to_string();
        Fixture {
            config_digest,
            manifest_digest,
            chain_id,
        }
    })
}

/// (path, bytes) of every regular file in a tar archive.
pub fn archive_entries(path: &str) -> Vec<(String, Vec<u8>)> {
    let file = File::open(path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    let mut archive = tar::Archive::new(file);
    let mut out = Vec::new();
    for entry in archive
        .entries()
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
    {
        let mut entry = entry.unwrap_or_else(|e| panic!("reading {path}: {e}"));
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry bytes");
        out.push((name.trim_start_matches("./").to_string(), bytes));
    }
    out
}
