//! Hostile `docker load` archives and the sandbox's quotas (threat model
//! rows 27, 28, 29 and 32), end to end: the agent runs `docker load` (berth)
//! or `ctr` against the gateway, and the real containerd is compared before
//! and after. Every case must be refused with one line naming the problem
//! and leave nothing: no image, blob, snapshot or lease, and no file outside.
//!
//! Archives are made here, entry by entry, with names written verbatim into
//! the tar headers (the `tar` crate refuses `..` on purpose). The stack's
//! gateway runs with `[quota] content_bytes = 2 GiB, snapshots = 1024,
//! leases = 64` (fixtures/stack/up.sh).
//!
//! `..` names in the outer archive: `images.rs::load_of_an_archive_with_dotdot_entries_fails_and_writes_nothing_outside`.
//! Build-context symlinks out of the context: `build.rs::symlinks_out_of_the_context_are_copied_as_links_never_followed`,
//! `::copy_through_links_out_of_the_context_finds_nothing`.

mod common;
#[path = "raw_api/raw.rs"]
#[allow(dead_code)]
mod raw;

use std::io::Write;
use std::path::Path;

use common::*;
use sha2::{Digest, Sha256};

/// The stack gateway's content quota (fixtures/stack/up.sh).
const QUOTA_CONTENT: u64 = 2 << 30;
const QUOTA_SNAPSHOTS: usize = 1024;
const QUOTA_LEASES: usize = 64;

// --- archives --------------------------------------------------------------------

#[derive(Clone)]
enum Kind {
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

/// A tar with `entries` in order, names and link targets written verbatim.
fn tar_of(entries: &[(String, Kind)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind) in entries {
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().expect("gnu header");
        assert!(name.len() < gnu.name.len(), "name too long: {name}");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        let (ty, data, link): (_, &[u8], &str) = match kind {
            Kind::File(d) => (tar::EntryType::Regular, d, ""),
            Kind::Symlink(t) => (tar::EntryType::Symlink, b"", t),
            Kind::Hardlink(t) => (tar::EntryType::Link, b"", t),
        };
        let gnu = header.as_gnu_mut().expect("gnu header");
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(ty);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).expect("appending");
    }
    builder.into_inner().expect("finishing the tar")
}

fn file(name: &str, data: impl Into<Vec<u8>>) -> (String, Kind) {
    (name.to_string(), Kind::File(data.into()))
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn blob_path(d: &str) -> String {
    format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::fast())
}

fn gzip_at(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// A gzip stream inflating to `head` followed by `zeros` zero bytes, built
/// from repeated members so it is made in milliseconds (gzip readers,
/// containerd's and the gateway's, read concatenated members as one).
fn gzip_bomb(head: &[u8], zeros: u64) -> Vec<u8> {
    const PIECE: u64 = 64 << 20;
    let mut out = gzip(head);
    let member = gzip_at(&vec![0u8; PIECE as usize], flate2::Compression::best());
    for _ in 0..zeros / PIECE {
        out.extend_from_slice(&member);
    }
    out.extend_from_slice(&gzip(&vec![0u8; (zeros % PIECE) as usize]));
    out
}

/// The host platform in OCI's spelling, so the gateway unpacks the image.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// One layer of a hand-made image.
struct Layer {
    media_type: &'static str,
    /// The blob's bytes; `None`: left out of the archive.
    bytes: Option<Vec<u8>>,
    /// The size and digest the manifest declares.
    size: u64,
    digest: String,
    diff_id: String,
}

impl Layer {
    fn tar(entries: &[(String, Kind)]) -> Layer {
        let bytes = tar_of(entries);
        Layer {
            media_type: "application/vnd.oci.image.layer.v1.tar",
            size: bytes.len() as u64,
            digest: digest(&bytes),
            diff_id: digest(&bytes),
            bytes: Some(bytes),
        }
    }

    fn gzip(compressed: Vec<u8>, diff_id: String) -> Layer {
        Layer {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            size: compressed.len() as u64,
            digest: digest(&compressed),
            diff_id,
            bytes: Some(compressed),
        }
    }
}

/// An OCI layout archive of one linux image named `name` with `layers`
/// (the config lists their diff_ids), plus `extra` entries appended.
fn oci_archive(name: &str, layers: &[Layer], extra: &[(String, Kind)]) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).expect("config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&manifest),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": format!("docker.io/library/{name}:latest"),
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    let mut entries = vec![
        file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        file("index.json", serde_json::to_vec(&index).expect("index")),
        (blob_path(&digest(&config)), Kind::File(config.clone())),
        (blob_path(&digest(&manifest)), Kind::File(manifest.clone())),
    ];
    for l in layers {
        if let Some(bytes) = &l.bytes {
            entries.push((blob_path(&l.digest), Kind::File(bytes.clone())));
        }
    }
    entries.extend_from_slice(extra);
    tar_of(&entries)
}

/// A plain one-file layer: a valid image with it loads.
fn harmless_layer() -> Layer {
    Layer::tar(&[file("hello.txt", "hello\n")])
}

// --- assertions ------------------------------------------------------------------------

/// Nothing named `marker` exists anywhere a load could have written to.
#[track_caller]
fn nothing_outside(marker: &str) {
    for landed in [format!("/tmp/{marker}"), format!("/{marker}")] {
        assert!(!Path::new(&landed).exists(), "the archive wrote {landed}");
    }
    for dir in [
        GATEWAY_PRIVATE,
        "/var/lib/berth-stack",
        "/run/berth-stack",
        WORKSPACE,
    ] {
        let hits: Vec<String> = walk(dir)
            .into_iter()
            .filter(|p| p.contains(marker))
            .collect();
        assert!(hits.is_empty(), "the archive wrote {hits:?}");
    }
}

// --- the outer archive ------------------------------------------------------------------

#[test]
fn load_absolute_entry_name_refused() {
    let marker = unique("abs");
    let bytes = oci_archive(
        &unique("abs"),
        &[harmless_layer()],
        &[file(&format!("/tmp/{marker}"), "escaped\n")],
    );
    load_refused("abs", &bytes, &["absolute"]);
    nothing_outside(&marker);
}

#[test]
fn load_symlink_escape_in_archive_refused() {
    // A blob name that is a symlink to a host file: reading it would hand
    // /etc/shadow to containerd as a layer.
    let layer = harmless_layer();
    let mut archive_layer = Layer::tar(&[file("x", "x")]);
    archive_layer.bytes = None;
    let extra = [(
        blob_path(&archive_layer.digest),
        Kind::Symlink("/etc/shadow".into()),
    )];
    let bytes = oci_archive(&unique("symlink"), &[layer, archive_layer], &extra);
    load_refused("symlink", &bytes, &["points outside the archive"]);
}

#[test]
fn load_relative_symlink_climbing_out_refused() {
    let mut layer = Layer::tar(&[file("x", "x")]);
    layer.bytes = None;
    let extra = [(
        blob_path(&layer.digest),
        Kind::Symlink("../../../../../../etc/passwd".into()),
    )];
    let bytes = oci_archive(&unique("symrel"), &[layer], &extra);
    load_refused("symrel", &bytes, &["points outside the archive"]);
}

#[test]
fn load_hardlink_escape_in_archive_refused() {
    let mut layer = Layer::tar(&[file("x", "x")]);
    layer.bytes = None;
    let extra = [(
        blob_path(&layer.digest),
        Kind::Hardlink("../../etc/shadow".into()),
    )];
    let bytes = oci_archive(&unique("hardlink"), &[layer], &extra);
    load_refused("hardlink", &bytes, &["points outside the archive"]);
}

#[test]
fn load_symlinked_directory_climbing_out_refused() {
    // `up` is a directory link to the archive's parent; `blobs/sha256/<layer>`
    // resolves through it to a host file.
    let mut layer = Layer::tar(&[file("x", "x")]);
    layer.bytes = None;
    let extra = [
        ("up".to_string(), Kind::Symlink("..".into())),
        (
            blob_path(&layer.digest),
            Kind::Symlink("../../up/up/etc/shadow".into()),
        ),
    ];
    let bytes = oci_archive(&unique("climb"), &[layer], &extra);
    load_refused("climb", &bytes, &["points outside the archive"]);
}

#[test]
fn load_duplicate_entries_refused() {
    let name = unique("dup");
    let extra = [file("index.json", "{}")];
    let bytes = oci_archive(&name, &[harmless_layer()], &extra);
    load_refused("dup", &bytes, &["appears twice"]);
}

#[test]
fn load_layer_bigger_than_declared_refused() {
    let mut layer = harmless_layer();
    layer
        .bytes
        .as_mut()
        .expect("bytes")
        .extend_from_slice(&[0u8; 1024]);
    layer.digest = digest(layer.bytes.as_ref().expect("bytes"));
    let bytes = oci_archive(&unique("size"), &[layer], &[]);
    load_refused("size", &bytes, &["descriptor says", "bytes"]);
}

#[test]
fn load_gzip_bomb_archive_refused() {
    // A tar header for a file of 4 GiB, then zeros: ~2 MiB of gzip that
    // inflates past the content quota, which bounds the decompressed archive.
    let mut header = tar::Header::new_gnu();
    header.set_path("bomb").expect("path");
    header.set_size(4 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let bomb = gzip_bomb(header.as_bytes(), QUOTA_CONTENT + (64 << 20));
    assert!(bomb.len() < 16 << 20, "the bomb is {} bytes", bomb.len());
    load_refused("gzbomb", &bomb, &["decompressed archive is larger than"]);
}

#[test]
fn load_gzip_bomb_layer_refused() {
    let mut header = tar::Header::new_gnu();
    header.set_path("bomb").expect("path");
    header.set_size(4 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let compressed = gzip_bomb(header.as_bytes(), QUOTA_CONTENT + (64 << 20));
    // The diff_id cannot be known without inflating: any value will do, the
    // size bound refuses first.
    let layer = Layer::gzip(compressed, digest(b"not computed"));
    let bytes = oci_archive(&unique("layerbomb"), &[layer], &[]);
    load_refused("layerbomb", &bytes, &["unpacks to more than"]);
}

// --- inside a layer -----------------------------------------------------------------

#[test]
fn load_layer_with_symlink_to_root_and_a_file_through_it_refused() {
    let marker = unique("through");
    let layer = Layer::tar(&[
        ("escape".to_string(), Kind::Symlink("/".into())),
        file(&format!("escape/tmp/{marker}"), "escaped\n"),
    ]);
    let bytes = oci_archive(&unique("through"), &[layer], &[]);
    load_refused("through", &bytes, &["goes through symlink escape"]);
    nothing_outside(&marker);
}

#[test]
fn load_layer_with_dotdot_entry_refused() {
    let marker = unique("ldotdot");
    let layer = Layer::tar(&[file(
        &format!("../../../../../../tmp/{marker}"),
        "escaped\n",
    )]);
    let bytes = oci_archive(&unique("ldotdot"), &[layer], &[]);
    load_refused("ldotdot", &bytes, &["'..'"]);
    nothing_outside(&marker);
}

#[test]
fn load_layer_with_hardlink_out_refused() {
    let layer = Layer::tar(&[(
        "shadow".to_string(),
        Kind::Hardlink("../../../etc/shadow".into()),
    )]);
    let bytes = oci_archive(&unique("lhard"), &[layer], &[]);
    load_refused("lhard", &bytes, &["'..'", "hard link"]);
}

#[test]
fn load_layer_with_wrong_diff_id_refused_before_writing() {
    let mut layer = Layer::gzip(gzip(&tar_of(&[file("a", "a")])), digest(b"other"));
    layer.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    let bytes = oci_archive(&unique("diffid"), &[layer], &[]);
    load_refused("diffid", &bytes, &["diff_id"]);
}

/// The control: the same builder makes an archive that loads.
#[test]
fn a_hand_made_archive_loads() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "control");
    let name = unique("control");
    let layer = Layer::gzip(
        gzip(&tar_of(&[file("hello.txt", "hello\n")])),
        digest(&tar_of(&[file("hello.txt", "hello\n")])),
    );
    let path = format!("{dir}/archive.tar");
    std::fs::write(&path, oci_archive(&name, &[layer], &[])).expect("archive");
    let out = docker(&["load", "-i", &path]);
    out.ok().stdout_has(&name);
    docker(&["rmi", &format!("{name}:latest")]).ok();
}

// --- quotas ------------------------------------------------------------------------

#[test]
fn quota_content_refuses_a_declared_size_before_writing() {
    // The manifest declares a 1 TiB layer the archive leaves out: the
    // declared size alone passes the quota, so nothing is written or read.
    let mut huge = Layer::tar(&[file("x", "x")]);
    huge.bytes = None;
    huge.size = 1 << 40;
    let bytes = oci_archive(&unique("quota"), &[harmless_layer(), huge], &[]);
    let out = load_refused("quota", &bytes, &["quota.content_bytes"]);
    out.stderr_has("1.0 TiB");
}

/// Snapshots.Prepare through the gateway until refused; everything made is
/// removed. (The raw client: `ctr snapshots prepare` labels its snapshot
/// `containerd.io/gc.root`, which the gateway refuses before the quota.)
#[test]
fn quota_snapshots_refuses_prepare_past_the_count() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let prefix = unique("snapq");
    let mut made = Vec::new();
    let refused = raw::block_on(async {
        for i in 0..=QUOTA_SNAPSHOTS {
            let key = format!("{prefix}-{i}");
            match raw::prepare("overlayfs", &key, "").await {
                Ok(_) => made.push(key),
                Err(s) => return Some(s),
            }
        }
        None
    });
    raw::block_on(async {
        for key in &made {
            let _ = raw::remove_snapshot(key).await;
        }
    });
    let status = refused.expect("a Prepare past the quota");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("quota.snapshots") && !status.message().contains('\n'),
        "{status:?}"
    );
    assert!(
        !made.is_empty() && made.len() <= QUOTA_SNAPSHOTS,
        "{}",
        made.len()
    );
    assert_nothing_new(&before, "snapshots past the quota");
}

/// `ctr leases create` through the gateway until refused; everything made
/// is removed.
#[test]
fn quota_leases_refuses_create_past_the_count() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let prefix = unique("leaseq");
    let mut made = Vec::new();
    let mut refused = None;
    for i in 0..=QUOTA_LEASES {
        let id = format!("{prefix}-{i}");
        let out = gateway_ctr(&["leases", "create", "--id", &id]);
        if out.code == 0 {
            made.push(id);
        } else {
            refused = Some(out);
            break;
        }
    }
    // One more straight to the socket, for the gRPC code.
    let status = raw::block_on(raw::create_lease(&format!("{prefix}-raw"), &[]));
    for id in &made {
        let _ = gateway_ctr(&["leases", "rm", id]);
    }
    let _ = raw::block_on(raw::delete_lease(&format!("{prefix}-raw")));
    let out = refused.expect("a lease past the quota");
    out.stderr_has("quota.leases");
    assert!(
        !made.is_empty() && made.len() <= QUOTA_LEASES,
        "{}",
        made.len()
    );
    let status = status.expect_err("the raw create past the quota");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_nothing_new(&before, "leases past the quota");
}

// --- build contexts ------------------------------------------------------------------

/// A context with links to `/` and to `/etc/shadow`, and Dockerfiles that
/// COPY through them: the links are sent as links and resolve inside the
/// context, so the build finds nothing and no host byte reaches it. (Links
/// to files and directories beside the context: `build.rs`, see the top.)
#[test]
fn build_copy_through_links_to_host_root_and_shadow_reads_nothing() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "symlinks");
    std::os::unix::fs::symlink("/", ctx.path("root-link")).expect("symlink");
    std::os::unix::fs::symlink("/etc/shadow", ctx.path("shadow-link")).expect("symlink");
    ctx.write(
        "via-root.Dockerfile",
        "FROM busybox\nCOPY root-link/etc/shadow /s\n",
    );
    ctx.write(
        "via-shadow.Dockerfile",
        "FROM busybox\nCOPY shadow-link /s\n",
    );
    ctx.give_to_agent();
    // The host's own root entry, as it would appear if the file were read.
    let shadow = std::fs::read_to_string("/etc/shadow").expect("/etc/shadow");
    let root_line = shadow.lines().next().expect("a line").to_string();
    for dockerfile in ["via-root.Dockerfile", "via-shadow.Dockerfile"] {
        let tag = images.tag("shadow");
        let out = build(&[
            "--progress",
            "plain",
            "-f",
            &ctx.path(dockerfile),
            "-t",
            &tag,
            &ctx.dir,
        ]);
        assert_build_failed(&out, &["not found"]);
        assert!(
            !all_output(&out).contains(&root_line),
            "{dockerfile}: /etc/shadow reached the build:\n{out}"
        );
        docker(&["image", "inspect", &tag]).code(1);
    }
}
