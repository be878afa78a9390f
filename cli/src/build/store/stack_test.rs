//! The export store against the local stack's gateway: what BuildKit's
//! exporter does with `tar=false`, driven by hand, twice. Needs the stack:
//!
//!   cargo test --release -p berth --bin berth build::store::stack_test -- --ignored
//!
//! It fails (never passes silently) when the stack is not up and removes
//! the images it made.

use std::path::Path;
use std::process::Command;

use containerd_client::services::v1::content_client::ContentClient;
use tonic::transport::Channel;
use tonic::Code;

use super::layout::Descriptor;
use super::tests::{connect, digest_of, serve_service, write_blob, Scratch};
use super::*;
use crate::client::Gateway;

const GATEWAY: &str = "/run/berth-stack/gateway/containerd.sock";
const CONTAINERD: &str = "/run/berth-stack/containerd/containerd.sock";
const NAMESPACE: &str = "berth-sandbox";
const NAMES: [&str; 2] = [
    "docker.io/library/berth-store-stack:1",
    "docker.io/library/berth-store-stack:2",
];

/// Removes the test's images from the sandbox, whatever happened.
struct Images;

impl Drop for Images {
    fn drop(&mut self) {
        for name in NAMES {
            let _ = Command::new("ctr")
                .args(["-a", CONTAINERD, "-n", NAMESPACE, "images", "rm", name])
                .output();
        }
    }
}

/// One uncompressed layer holding a file of random bytes, its config and
/// manifest: a fresh image the sandbox cannot have.
fn image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let content: Vec<u8> = (0..256 << 10).map(|_| rand::random::<u8>()).collect();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "random.bin", &content[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(&layer), "size": layer.len()}],
    }))
    .unwrap();
    (layer, config, manifest)
}

/// Writes the blobs children first, as BuildKit's exporter does; the
/// codes the store answered with.
async fn export(client: &ContentClient<Channel>, blobs: &[&[u8]]) -> Vec<Result<(), Code>> {
    let mut out = Vec::new();
    for blob in blobs {
        let r = write_blob(client, EXPORT_STORE, blob, &digest_of(blob)).await;
        out.push(r.map(|_| ()).map_err(|s| s.code()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local stack (fixtures/stack/up.sh)"]
async fn a_rebuild_sends_only_what_the_sandbox_lacks() {
    assert!(
        Path::new(GATEWAY).exists(),
        "the local stack is not up: {GATEWAY} is missing"
    );
    let _images = Images;
    let gw = Gateway {
        channel: connect(Path::new(GATEWAY)).await,
        socket: GATEWAY.into(),
    };
    let (layer, config, manifest) = image();
    let root = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: digest_of(&manifest),
        size: manifest.len() as i64,
    };
    let serve = |export: ExportStore| {
        let service = SessionContent::new(
            ContentClient::new(gw.channel.clone()),
            Vec::new(),
            Some(export.clone()),
        );
        serve_service(Scratch::new(), service, export)
    };

    // 1. A first build: the sandbox lacks everything, all of it is sent.
    let served = serve(ExportStore::new(&gw).unwrap()).await;
    let codes = export(&served.client, &[&layer, &config, &manifest]).await;
    assert_eq!(codes, [Ok(()), Ok(()), Ok(())]);
    let loaded = served
        .export
        .clone()
        .finish(&gw, &root, &[NAMES[0].to_string()])
        .await
        .expect("the first export loads");
    assert_eq!(loaded.new_blobs, 3);
    assert!(loaded.sent_bytes > layer.len() as u64);
    assert_eq!(loaded.images.len(), 1);
    assert_eq!(loaded.images[0].name, NAMES[0]);
    assert_eq!(loaded.images[0].config_digest, digest_of(&config));
    assert_eq!(loaded.images[0].target_digest, root.digest);
    drop(served);

    // 2. The same image again: every blob is answered AlreadyExists, the
    //    layout holds only the documents (read back from the sandbox) and
    //    the gateway takes the layer from the sandbox.
    let served = serve(ExportStore::new(&gw).unwrap()).await;
    let codes = export(&served.client, &[&layer, &config, &manifest]).await;
    assert_eq!(
        codes,
        [
            Err(Code::AlreadyExists),
            Err(Code::AlreadyExists),
            Err(Code::AlreadyExists)
        ]
    );
    let loaded = served
        .export
        .clone()
        .finish(&gw, &root, &[NAMES[1].to_string()])
        .await
        .expect("the rebuilt export loads");
    assert_eq!(loaded.new_blobs, 0);
    assert!(
        loaded.sent_bytes < 16 << 10,
        "sent {} bytes for an image the sandbox has",
        loaded.sent_bytes
    );
    assert_eq!(loaded.images[0].name, NAMES[1]);
    assert_eq!(loaded.images[0].config_digest, digest_of(&config));

    // 3. The image as a named context: its store allows exactly its blobs.
    let named = NamedStore::walk(&gw, "s", std::slice::from_ref(&root.digest))
        .await
        .unwrap();
    let mut allowed: Vec<&str> = named.digests().collect();
    allowed.sort();
    let mut want = vec![digest_of(&layer), digest_of(&config), root.digest.clone()];
    want.sort();
    assert_eq!(allowed, want);
}
