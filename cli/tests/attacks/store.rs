//! Objects of another namespace, named by key or digest (threat model rows
//! 18 and 38): the real containerd holds them, the gateway must answer as
//! if they did not exist, and a snapshot cannot be stacked on them.

use sha2::{Digest, Sha256};
use tonic::Code;

use crate::common::*;
use crate::raw;
use crate::rpc;
use crate::support::*;

/// A committed snapshot made directly on the real containerd in
/// `OTHER_NAMESPACE`, removed on drop.
struct OtherSnapshot {
    name: String,
}

impl OtherSnapshot {
    fn create() -> Self {
        let active = unique("other-active");
        let name = unique("other-committed");
        real_ctr_ns(OTHER_NAMESPACE, &["snapshots", "prepare", &active]).ok();
        real_ctr_ns(OTHER_NAMESPACE, &["snapshots", "commit", &name, &active]).ok();
        OtherSnapshot { name }
    }

    fn exists(&self) -> bool {
        real_ctr_ns(OTHER_NAMESPACE, &["snapshots", "info", &self.name]).code == 0
    }
}

impl Drop for OtherSnapshot {
    fn drop(&mut self) {
        let _ = real_ctr_ns(OTHER_NAMESPACE, &["snapshots", "rm", &self.name]);
    }
}

/// A blob ingested directly on the real containerd in `OTHER_NAMESPACE`
/// (content sharing is isolated), removed on drop.
struct OtherBlob {
    digest: String,
}

impl OtherBlob {
    fn create() -> Self {
        let data = format!("a blob only {OTHER_NAMESPACE} holds: {}\n", unique("blob"));
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(data.as_bytes())));
        raw::block_on(write_real(data.as_bytes(), &digest))
            .unwrap_or_else(|s| panic!("writing {digest} to {OTHER_NAMESPACE}: {s:?}"));
        real_ctr_ns(OTHER_NAMESPACE, &["content", "ls", "-q"]).stdout_has(&digest);
        OtherBlob { digest }
    }
}

impl Drop for OtherBlob {
    fn drop(&mut self) {
        let _ = real_ctr_ns(OTHER_NAMESPACE, &["content", "rm", &self.digest]);
    }
}

/// Content.Write of `data` straight to the real containerd in
/// `OTHER_NAMESPACE`, committed with a `gc.root` label so the garbage
/// collector keeps it for the test (`ctr content ingest` holds it only
/// under a lease it drops when done).
async fn write_real(data: &[u8], digest: &str) -> Result<(), tonic::Status> {
    use containerd_client::services::v1::content_client::ContentClient;
    use containerd_client::services::v1::{WriteAction, WriteContentRequest};
    let channel = tonic::transport::Endpoint::try_from("http://containerd.invalid")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(|_| async {
            let stream = tokio::net::UnixStream::connect(REAL_SOCKET).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }))
        .await
        .expect("connecting to the real containerd");
    let msg = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: unique("other-blob"),
        total: data.len() as i64,
        expected: digest.to_string(),
        offset: 0,
        data: data.to_vec(),
        labels: [("containerd.io/gc.root".to_string(), "bt".to_string())].into(),
    };
    let mut req = tonic::Request::new(tokio_stream::iter(vec![msg]));
    req.metadata_mut().insert(
        "containerd-namespace",
        OTHER_NAMESPACE.parse().expect("namespace"),
    );
    let mut replies = ContentClient::new(channel).write(req).await?.into_inner();
    while replies.message().await?.is_some() {}
    Ok(())
}

/// Asserts `ctr` through the gateway failed with containerd's `not found`.
#[track_caller]
fn ctr_not_found(out: &Out, before: &Snapshot) {
    assert_ne!(out.code, 0, "expected not found:\n{out}");
    out.stderr_has("not found");
    assert_nothing_new(before, &out.cmd);
}

#[test]
fn a_snapshot_on_another_namespaces_parent_is_not_found() {
    stack();
    let _serial = serial();
    let other = OtherSnapshot::create();
    let before = Snapshot::take();
    let key = unique("on-other");
    let result = raw::block_on(raw::prepare("overlayfs", &key, &other.name));
    if result.is_ok() {
        let _ = raw::block_on(raw::remove_snapshot(&key));
    }
    assert_status(
        result,
        &[Code::NotFound],
        &["not found"],
        "Snapshots.Prepare on another namespace's parent",
    );
    assert_nothing_new(&before, "Snapshots.Prepare on another namespace's parent");
}

#[test]
fn another_namespaces_snapshot_cannot_be_read_or_removed() {
    stack();
    let _serial = serial();
    let other = OtherSnapshot::create();
    let before = Snapshot::take();
    ctr_not_found(&gateway_ctr(&["snapshots", "info", &other.name]), &before);
    ctr_not_found(&gateway_ctr(&["snapshots", "rm", &other.name]), &before);
    let listed = gateway_ctr(&["snapshots", "ls"]);
    assert!(!listed.ok().stdout.contains(&other.name), "{listed}");
    assert!(other.exists(), "the other namespace's snapshot is gone");
}

#[test]
fn another_namespaces_blob_info_is_not_found() {
    stack();
    let _serial = serial();
    let blob = OtherBlob::create();
    let before = Snapshot::take();
    let result = raw::block_on(rpc::content_info(&blob.digest));
    assert_status(result, &[Code::NotFound], &["not found"], "Content.Info");
    assert_nothing_new(&before, "Content.Info of another namespace's blob");
}

#[test]
fn another_namespaces_blob_cannot_be_read() {
    stack();
    let _serial = serial();
    let blob = OtherBlob::create();
    let before = Snapshot::take();
    let result = raw::block_on(rpc::content_read(&blob.digest));
    assert_status(result, &[Code::NotFound], &["not found"], "Content.Read");
    ctr_not_found(&gateway_ctr(&["content", "get", &blob.digest]), &before);
}

#[test]
fn another_namespaces_blob_is_not_listed() {
    stack();
    let _serial = serial();
    let blob = OtherBlob::create();
    let listed = gateway_ctr(&["content", "ls", "-q"]);
    listed.ok();
    assert!(!listed.stdout.contains(&blob.digest), "{listed}");
    assert!(
        listed.stdout.contains(&busybox_fixture().manifest_digest),
        "the sandbox's own content must be listed (else this proves nothing):\n{listed}"
    );
}

#[test]
fn an_image_on_another_namespaces_blob_reads_as_not_found() {
    // A record may name any digest; its bytes stay out of reach, so a
    // run or a content read of it is not found.
    stack();
    let _serial = serial();
    let blob = OtherBlob::create();
    let name = format!("docker.io/library/busybox:{}", unique("probe"));
    let before = Snapshot::take();
    let target = containerd_client::types::Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        digest: blob.digest.clone(),
        size: 1,
        ..Default::default()
    };
    let created = raw::block_on(rpc::create_image(&name, target));
    let read = raw::block_on(rpc::content_read(&blob.digest));
    let run = docker(&["run", "--rm", &name, "true"]);
    let _ = real_ctr(&["images", "rm", &name]);
    if let Err(status) = created {
        assert_denied(Err::<(), _>(status), &["image"], "Images.Create");
    }
    assert_status(
        read,
        &[Code::NotFound],
        &["not found"],
        "Content.Read via image",
    );
    assert_ne!(
        run.code, 0,
        "a container ran on another namespace's blob:\n{run}"
    );
    assert_nothing_new(&before, "an image on another namespace's blob");
}
