//! The session content service served for real (tonic over a unix socket)
//! and driven with containerd's client messages, as BuildKit drives it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::WriteAction;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::export::Lookup;
use super::layout::{index_json, write_layout, Descriptor, Part};
use super::*;
use berth_proto::session::content::content_server::ContentServer;

pub(super) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn md(store: Option<&str>) -> MetadataMap {
    let mut m = MetadataMap::new();
    if let Some(s) = store {
        m.insert(STORE_HEADER, MetadataValue::try_from(s).unwrap());
    }
    m
}

#[test]
fn dispatches_on_the_store_header() {
    let named: BTreeMap<String, NamedStore> =
        [("s1".to_string(), NamedStore::with_digests("s1", Vec::new()))].into();
    let cases: &[(Option<&str>, bool, Result<Chosen, Code>)] = &[
        (Some("export"), true, Ok(Chosen::Export)),
        (Some("export"), false, Err(Code::NotFound)),
        (Some("oci:s1"), true, Ok(Chosen::Named("s1".into()))),
        (Some("oci:s1"), false, Ok(Chosen::Named("s1".into()))),
        // BuildKit always prefixes a named store's id.
        (Some("s1"), true, Err(Code::NotFound)),
        (Some("oci:s2"), true, Err(Code::NotFound)),
        (Some("oci:"), true, Err(Code::NotFound)),
        (None, true, Err(Code::InvalidArgument)),
    ];
    for (store, has_export, want) in cases {
        let got = choose(&md(*store), &named, *has_export).map_err(|s| s.code());
        assert_eq!(&got, want, "store {store:?}, export {has_export}");
    }
}

/// A scratch directory removed on drop.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new() -> Self {
        let p =
            std::env::temp_dir().join(format!("berth-store-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The service on a unix socket, a client to it, and the export store.
pub(super) struct Served {
    _dir: Scratch,
    pub(super) client: ContentClient<Channel>,
    pub(super) export: ExportStore,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const IN_SANDBOX: &[u8] = b"a layer the sandbox already has";
const NAMED_BLOB: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

async fn serve() -> Served {
    let dir = Scratch::new();
    let sandbox = BTreeMap::from([(digest_of(IN_SANDBOX), IN_SANDBOX.len() as i64)]);
    let export = ExportStore::with_lookup(&dir.0, Lookup::Fixed(sandbox)).unwrap();
    // Never dialled: named requests outside the store's digests are
    // refused before the gateway would be asked.
    let gateway = Endpoint::from_static("http://gateway.invalid").connect_lazy();
    let service = SessionContent::new(
        ContentClient::new(gateway),
        vec![NamedStore::with_digests("s1", [NAMED_BLOB.to_string()])],
        Some(export.clone()),
    );
    serve_service(dir, service, export).await
}

/// Serves `service` on a socket in `dir`.
pub(super) async fn serve_service(
    dir: Scratch,
    service: SessionContent,
    export: ExportStore,
) -> Served {
    let socket = dir.0.join("content.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(ContentServer::new(service))
            .serve_with_incoming(UnixListenerStream::new(listener))
            .await;
    });
    let client = ContentClient::new(connect(&socket).await);
    Served {
        _dir: dir,
        client,
        export,
        server,
    }
}

pub(super) async fn connect(socket: &Path) -> Channel {
    let path = socket.to_path_buf();
    Endpoint::from_static("http://store.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap()
}

fn for_store<T>(store: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert(STORE_HEADER, MetadataValue::try_from(store).unwrap());
    r
}

/// A write as containerd's proxy writer does it: STAT naming ref, size and
/// digest, WRITEs at the running offset, COMMIT. Returns the committed
/// digest, or the first error.
pub(super) async fn write_blob(
    client: &ContentClient<Channel>,
    store: &str,
    data: &[u8],
    expected: &str,
) -> Result<String, tonic::Status> {
    let (tx, rx) = mpsc::channel(1);
    tx.send(api::WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: format!("layer-{expected}"),
        total: data.len() as i64,
        expected: expected.to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut c = client.clone();
    let mut responses = c
        .write(for_store(store, ReceiverStream::new(rx)))
        .await?
        .into_inner();
    let stat = responses.message().await?.expect("a STAT answer");
    assert_eq!(stat.offset, 0);
    let mut offset = 0i64;
    for piece in data.chunks(7) {
        tx.send(api::WriteContentRequest {
            action: WriteAction::Write as i32,
            offset,
            data: piece.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
        let r = responses.message().await?.expect("a WRITE answer");
        offset += piece.len() as i64;
        assert_eq!(r.offset, offset);
    }
    tx.send(api::WriteContentRequest {
        action: WriteAction::Commit as i32,
        total: data.len() as i64,
        offset,
        expected: expected.to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = responses.message().await?.expect("a COMMIT answer");
    Ok(r.digest)
}

fn ingests(export: &ExportStore) -> usize {
    let dir = export.blob_path("sha256:x");
    let root = dir.parent().unwrap().parent().unwrap().parent().unwrap();
    std::fs::read_dir(root.join("ingest")).unwrap().count()
}

#[tokio::test]
async fn spools_new_blobs_with_their_digest_checked() {
    let s = serve().await;
    let data = b"a layer BuildKit just built".repeat(5);
    let digest = digest_of(&data);
    let got = write_blob(&s.client, EXPORT_STORE, &data, &digest)
        .await
        .unwrap();
    assert_eq!(got, digest);
    assert_eq!(
        s.export.blobs(),
        BTreeMap::from([(digest.clone(), data.len() as i64)])
    );
    assert_eq!(std::fs::read(s.export.blob_path(&digest)).unwrap(), data);

    // Readable back through the store.
    let mut c = s.client.clone();
    let info = c
        .info(for_store(
            EXPORT_STORE,
            api::InfoRequest {
                digest: digest.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.size, data.len() as i64);
    let mut read = c
        .read(for_store(
            EXPORT_STORE,
            api::ReadContentRequest {
                digest: digest.clone(),
                offset: 2,
                size: 5,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let piece = read.message().await.unwrap().unwrap();
    assert_eq!((piece.offset, &piece.data[..]), (2, &data[2..7]));
    assert_eq!(ingests(&s.export), 0);
}

#[tokio::test]
async fn blobs_already_there_are_answered_already_exists() {
    let s = serve().await;
    // The sandbox has it: BuildKit is told so before sending a byte.
    let e = write_blob(&s.client, EXPORT_STORE, IN_SANDBOX, &digest_of(IN_SANDBOX))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(s.export.blobs().is_empty());
    assert!(s.export.skipped().contains(&digest_of(IN_SANDBOX)));

    // The store has it (a second writer of the same blob).
    let data = b"written once";
    write_blob(&s.client, EXPORT_STORE, data, &digest_of(data))
        .await
        .unwrap();
    let e = write_blob(&s.client, EXPORT_STORE, data, &digest_of(data))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(s.export.blobs().len(), 1);
    assert_eq!(ingests(&s.export), 0);
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_not_kept() {
    let s = serve().await;
    let claimed = digest_of(b"what the descriptor says");
    let e = write_blob(&s.client, EXPORT_STORE, b"what was sent", &claimed)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().starts_with("unexpected commit digest"),
        "{}",
        e.message()
    );
    assert!(s.export.blobs().is_empty());
    // The failed ingest's file and ref are gone.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(ingests(&s.export), 0);
    assert!(s.export.statuses().is_empty());
}

#[tokio::test]
async fn named_stores_are_read_only_and_limited_to_their_images() {
    let s = serve().await;
    let e = write_blob(&s.client, "oci:s1", b"x", &digest_of(b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "store oci:s1 is read-only");

    let mut c = s.client.clone();
    let other = digest_of(b"another image's layer");
    let e = c
        .info(for_store(
            "oci:s1",
            api::InfoRequest {
                digest: other.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(
        e.message(),
        format!("content {other}: not found in store oci:s1")
    );
    let e = c
        .read(for_store(
            "oci:s1",
            api::ReadContentRequest {
                digest: other,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Unknown stores and requests naming none are refused.
    let e = c
        .info(for_store(
            "oci:nope",
            api::InfoRequest {
                digest: NAMED_BLOB.into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .info(api::InfoRequest {
            digest: NAMED_BLOB.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[test]
fn the_root_descriptor_comes_from_the_exporter_response() {
    use base64::Engine as _;
    let d = format!("sha256:{}", "ab".repeat(32));
    let json = format!(
        r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":481,"annotations":{{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}}}"#
    );
    let response = BTreeMap::from([(
        "containerimage.descriptor".to_string(),
        base64::engine::general_purpose::STANDARD.encode(json),
    )]);
    let root = root_descriptor(&response).unwrap();
    assert_eq!(root.digest, d);
    assert_eq!(root.size, 481);
    assert!(root_descriptor(&BTreeMap::new())
        .unwrap_err()
        .to_string()
        .contains("lacks containerimage.descriptor"));
}

#[test]
fn the_layout_holds_index_and_blobs() {
    let dir = Scratch::new();
    let export = ExportStore::with_lookup(&dir.0, Lookup::Fixed(BTreeMap::new())).unwrap();
    let root = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: digest_of(b"{manifest}"),
        size: 10,
    };
    let layer = b"layer bytes".to_vec();
    std::fs::write(export.blob_path(&digest_of(&layer)), &layer).unwrap();
    let parts = vec![
        Part::Spooled(digest_of(&layer)),
        Part::Bytes(root.digest.clone(), b"{manifest}".to_vec()),
    ];
    let index = index_json(&root, &["app:1".to_string(), "app:latest".to_string()]);
    let mut tar_bytes = Vec::new();
    write_layout(&export, &index, &parts, &mut tar_bytes).unwrap();

    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        found.push((name, body));
    }
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    let hex = |d: &str| d["sha256:".len()..].to_string();
    assert_eq!(
        names,
        [
            "oci-layout".to_string(),
            "index.json".to_string(),
            "blobs/".to_string(),
            "blobs/sha256/".to_string(),
            format!("blobs/sha256/{}", hex(&digest_of(&layer))),
            format!("blobs/sha256/{}", hex(&root.digest)),
        ]
    );
    assert_eq!(found[4].1, layer);
    let index: serde_json::Value = serde_json::from_slice(&found[1].1).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["digest"], root.digest.as_str());
    assert_eq!(entries[0]["size"], 10);
    assert_eq!(
        entries[1]["annotations"]["io.containerd.image.name"],
        "app:latest"
    );

    // No names: one entry, no annotations (a dangling image).
    let bare: serde_json::Value = serde_json::from_slice(&index_json(&root, &[])).unwrap();
    assert_eq!(bare["manifests"].as_array().unwrap().len(), 1);
    assert!(bare["manifests"][0].get("annotations").is_none());
}

#[test]
fn documents_name_their_children() {
    let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:c","size":1},"layers":[{"mediaType":"l","digest":"sha256:l","size":2}]}"#;
    let kids = named::children(named::OCI_MANIFEST, manifest).unwrap();
    let digests: Vec<&str> = kids.iter().map(|c| c.digest.as_str()).collect();
    assert_eq!(digests, ["sha256:c", "sha256:l"]);
    assert_eq!(named::sniff_media_type(manifest), named::OCI_MANIFEST);
    let index =
        br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:m","size":3}]}"#;
    assert_eq!(named::sniff_media_type(index), named::OCI_INDEX);
    assert_eq!(named::children(named::OCI_INDEX, index).unwrap().len(), 1);
    assert!(named::children("application/octet-stream", b"\x00")
        .unwrap()
        .is_empty());
}
