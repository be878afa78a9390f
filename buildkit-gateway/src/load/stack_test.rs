//! Loads real archives into a scratch namespace of the local stack's
//! containerd and checks the result with `ctr`. Needs the stack:
//!
//!   cargo test --release -p berth-gateway load::stack_test -- --ignored --test-threads=1
//!
//! It fails (never passes silently) when the stack is not up, and removes
//! everything it created, namespace included.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::sync::mpsc;

use super::oci::Digest;
use super::testdata::{gzip, DockerSave, OciLayout, TempFile};
use super::{import_archive, LoadError};
use crate::sandbox::Sandbox;
use crate::upstream::Upstream;
use berth_proto::berth::v1::LoadedImage;

const SOCKET: &str = "/run/berth-stack/containerd/containerd.sock";
const NAMESPACE: &str = "scratch-load";

fn ctr(args: &[&str]) -> String {
    ctr_in(NAMESPACE, args)
}

fn ctr_in(namespace: &str, args: &[&str]) -> String {
    let out = Command::new("ctr")
        .args(["-a", SOCKET, "-n", namespace])
        .args(args)
        .output()
        .expect("running ctr");
    assert!(
        out.status.success(),
        "ctr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Lines of `ctr <what> ls -q`, or the keys of `ctr snapshots ls` (which
/// has no `-q`).
fn listed(what: &str) -> Vec<String> {
    listed_in(NAMESPACE, what)
}

fn listed_in(namespace: &str, what: &str) -> Vec<String> {
    if what == "snapshots" {
        let table = ctr_in(namespace, &["snapshots", "ls"]);
        return table
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
    }
    ctr_in(namespace, &[what, "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Removes everything in a scratch namespace, then the namespace.
struct Scratch(&'static str);

impl Drop for Scratch {
    fn drop(&mut self) {
        let namespace = self.0;
        let run = |args: &[&str]| {
            let _ = Command::new("ctr")
                .args(["-a", SOCKET, "-n", namespace])
                .args(args)
                .output();
        };
        for image in listed_quiet(namespace, "images") {
            run(&["images", "rm", "--sync", &image]);
        }
        for lease in listed_quiet(namespace, "leases") {
            run(&["leases", "rm", "--sync", &lease]);
        }
        let _ = Command::new("ctr")
            .args(["-a", SOCKET, "namespaces", "rm", namespace])
            .output();
    }
}

fn listed_quiet(namespace: &str, what: &str) -> Vec<String> {
    Command::new("ctr")
        .args(["-a", SOCKET, "-n", namespace, what, "ls", "-q"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn sandbox(namespace: &str) -> Sandbox {
    Sandbox {
        namespace: namespace.into(),
        netns_path: PathBuf::from("/run/netns/berth-sandbox"),
        proxy_env: Vec::new(),
        proxy_ca: None,
        ca_env: Vec::new(),
        volume_roots: Vec::new(),
        snapshotter: "overlayfs".into(),
        state_dir: std::env::temp_dir(),
        userns: None,
    }
}

async fn load(path: &Path) -> (Result<Vec<LoadedImage>, LoadError>, Vec<String>) {
    load_into(NAMESPACE, path).await
}

async fn load_into(
    namespace: &str,
    path: &Path,
) -> (Result<Vec<LoadedImage>, LoadError>, Vec<String>) {
    let up = Upstream::new(Path::new(SOCKET), namespace).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    });
    let result = import_archive(
        &up,
        &sandbox(namespace),
        &crate::quota::Quotas::default(),
        path,
        &|_: &str, _: &str| Ok(()),
        &tx,
    )
    .await;
    drop(tx);
    (result, collector.await.unwrap())
}

/// The busybox fixture of `fixtures/images/build-busybox.sh`.
fn busybox_archive(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images/build-busybox.sh");
    let out = dir.join("busybox.tar");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("running build-busybox.sh");
    assert!(status.success(), "build-busybox.sh failed");
    out
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local stack (fixtures/stack/up.sh)"]
async fn loads_archives_into_a_scratch_namespace() {
    assert!(
        Path::new(SOCKET).exists(),
        "the local stack is not up: {SOCKET} is missing"
    );
    let _scratch = Scratch(NAMESPACE);
    let workdir = TempFile::with(b"");
    let dir = workdir.path().parent().unwrap();

    // 1. The busybox OCI fixture.
    let busybox = busybox_archive(dir);
    let (result, lines) = load(&busybox).await;
    let loaded = result.expect("busybox loads");
    eprintln!("progress: {lines:#?}\nloaded: {loaded:#?}");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, "docker.io/library/busybox:latest");
    assert!(listed("images").contains(&"docker.io/library/busybox:latest".to_string()));
    let snapshots = ctr(&["snapshots", "ls"]);
    eprintln!("snapshots:\n{snapshots}");
    assert!(snapshots
        .lines()
        .any(|l| l.starts_with("sha256:") && l.contains("Committed")));
    assert!(
        !snapshots.contains("berth-extract-"),
        "extraction snapshot left behind"
    );
    assert!(listed("leases").is_empty(), "lease left behind");
    let config = ctr(&["content", "ls"]);
    assert!(
        config.contains("containerd.io/gc.ref.snapshot.overlayfs="),
        "config lacks the snapshot GC label:\n{config}"
    );
    // With the lease gone, only the image record and the GC labels keep the
    // blobs and the snapshot: a forced collection must leave them all.
    force_gc();
    assert_eq!(
        listed("content").len(),
        3,
        "blobs collected although the image refers to them"
    );
    assert_eq!(
        listed("snapshots").len(),
        1,
        "snapshot collected although the config refers to it"
    );
    // The unpacked snapshot is a working root filesystem.
    let out = ctr(&[
        "run",
        "--rm",
        "docker.io/library/busybox:latest",
        "berth-load-check",
        "/bin/sh",
        "-c",
        "head -1 /etc/passwd",
    ]);
    assert_eq!(out.trim(), "root:x:0:0:root:/root:/bin/sh");

    // 2. Loading it again: everything is already there.
    let (again, lines) = load(&busybox).await;
    assert_eq!(again.expect("reload works"), loaded);
    assert!(
        lines.iter().any(|l| l.contains("already present")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("already unpacked")),
        "{lines:?}"
    );

    // 2b. containerd's own export (index.json and manifest.json) loads back
    //     to the same image.
    let exported = dir.join("exported.tar");
    ctr(&[
        "images",
        "export",
        exported.to_str().unwrap(),
        "docker.io/library/busybox:latest",
    ]);
    let (result, _) = load(&exported).await;
    assert_eq!(result.expect("ctr export loads"), loaded);

    // 3. A gzip-compressed legacy docker save with a shared, symlinked layer.
    let docker = TempFile::with(&gzip(&DockerSave::two_images().tar()));
    let (result, lines) = load(docker.path()).await;
    let loaded = result.expect("docker save loads");
    eprintln!("progress: {lines:#?}\nloaded: {loaded:#?}");
    let names: Vec<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:latest",
            "localhost:5000/x:1",
            "docker.io/foo/bar:latest"
        ]
    );
    let images = ctr(&["images", "ls"]);
    eprintln!("images:\n{images}");
    assert!(images.contains("application/vnd.docker.distribution.manifest.v2+json"));

    // 4. A load that fails half-way leaves nothing: the second image's top
    //    layer does not match its diff_id; its base layer, written first,
    //    must be collected again.
    let mut broken = DockerSave::two_images().with_tags(&["broken:1"], &["broken:2"]);
    let base = super::testdata::layer_tar("fresh-base.txt", b"never kept\n");
    let top = super::testdata::layer_tar("fresh-top.txt", b"never stored\n");
    broken.diff_ids = vec![Digest::of(&base), Digest::of(&top)];
    broken.configs = vec![
        config_with(&[&broken.diff_ids[0]]),
        config_with(&[&broken.diff_ids[0], &broken.diff_ids[1]]),
    ];
    let mut corrupt_top = top.clone();
    corrupt_top[512] ^= 0xff; // first byte of the file's content
    broken.layers = vec![base, corrupt_top];
    let broken_file = TempFile::with(&broken.tar());
    // Step 3 retagged busybox:latest, leaving the OCI busybox blobs
    // unreferenced: collect them first so the comparison is exact.
    force_gc();
    let content_before = listed("content");
    let (result, _) = load(broken_file.path()).await;
    let e = result
        .expect_err("the corrupt archive is refused")
        .to_string();
    eprintln!("error: {e}");
    assert!(
        e.starts_with("invalid archive: blob sha256:") && e.contains("does not match its digest"),
        "{e}"
    );
    assert!(!listed("images")
        .iter()
        .any(|i| i.starts_with("docker.io/library/broken")));
    assert!(listed("leases").is_empty(), "lease left behind");
    assert_eq!(
        listed("content"),
        content_before,
        "partial blobs left behind"
    );
    assert!(!ctr(&["snapshots", "ls"]).contains("berth-extract-"));

    // 5. Clean-up works: removing the images collects every blob and snapshot.
    for image in listed("images") {
        ctr(&["images", "rm", "--sync", &image]);
    }
    assert!(
        listed("content").is_empty(),
        "content left after removing the images"
    );
    assert!(
        listed("snapshots").is_empty(),
        "snapshots left after removing the images"
    );
}

/// Runs containerd's GC synchronously (deleting a lease with --sync does).
fn force_gc() {
    force_gc_in(NAMESPACE);
}

fn force_gc_in(namespace: &str) {
    let id = format!("berth-load-gc-{:016x}", rand::random::<u64>());
    ctr_in(namespace, &["leases", "create", "--id", &id]);
    ctr_in(namespace, &["leases", "rm", "--sync", &id]);
}

/// The archives a build's export sends: layers the sandbox has are left out.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local stack (fixtures/stack/up.sh)"]
async fn takes_left_out_layers_from_the_sandbox_only() {
    assert!(
        Path::new(SOCKET).exists(),
        "the local stack is not up: {SOCKET} is missing"
    );
    const NS: &str = "scratch-load-partial";
    const OTHER: &str = "scratch-load-other";
    let _scratch = Scratch(NS);
    let _other = Scratch(OTHER);

    // 1. A complete image puts the layer into the sandbox.
    let base = OciLayout::with_file("partial.txt", b"shared layer\n");
    let full = TempFile::with(&base.tar());
    let (result, _) = load_into(NS, full.path()).await;
    result.expect("the complete image loads");

    // 2. A second image over the same layer, whose archive leaves it out
    //    (what a rebuild exports), takes it from the sandbox.
    let mut rebuilt = base.sibling("true", "docker.io/library/rebuilt:1");
    rebuilt.omit = Some(rebuilt.layer_digest.clone());
    let partial = TempFile::with(&rebuilt.tar());
    let (result, lines) = load_into(NS, partial.path()).await;
    let loaded = result.expect("the partial archive loads");
    eprintln!("progress: {lines:#?}");
    assert_eq!(loaded[0].name, "docker.io/library/rebuilt:1");
    assert_eq!(loaded[0].config_digest, rebuilt.config_digest.to_string());
    assert!(
        lines.iter().any(|l| l.contains("(from the sandbox)")),
        "{lines:?}"
    );
    assert!(listed_in(NS, "leases").is_empty(), "lease left behind");
    // Once the first image is gone, the second one alone keeps the layer
    // and its snapshot: its manifest's GC labels root them.
    ctr_in(
        NS,
        &["images", "rm", "--sync", "docker.io/library/busybox:latest"],
    );
    force_gc_in(NS);
    let content = listed_in(NS, "content");
    assert!(
        content.contains(&rebuilt.layer_digest.to_string()),
        "layer collected: {content:?}"
    );
    assert_eq!(
        listed_in(NS, "snapshots").len(),
        1,
        "snapshot collected although the rebuilt image's config refers to it"
    );

    // 3. A layer the sandbox lacks is refused before anything is written,
    //    and nothing is left behind.
    let mut fresh = OciLayout::with_file("fresh.txt", b"never loaded\n");
    fresh.annotations = vec![(
        super::plan::ANNOTATION_IMAGE_NAME,
        "docker.io/library/fresh:1",
    )];
    fresh.omit = Some(fresh.layer_digest.clone());
    let content_before = listed_in(NS, "content");
    let snapshots_before = listed_in(NS, "snapshots");
    let absent = TempFile::with(&fresh.tar());
    let (result, _) = load_into(NS, absent.path()).await;
    let e = result.expect_err("an absent layer is refused").to_string();
    assert_eq!(
        e,
        format!(
            "invalid archive: blob {} is neither in the archive nor in the sandbox",
            fresh.layer_digest
        )
    );
    assert!(!listed_in(NS, "images").contains(&"docker.io/library/fresh:1".to_string()));
    assert!(listed_in(NS, "leases").is_empty(), "lease left behind");
    force_gc_in(NS);
    assert_eq!(
        listed_in(NS, "content"),
        content_before,
        "blobs left behind"
    );
    assert_eq!(listed_in(NS, "snapshots"), snapshots_before);

    // 4. Another namespace's blobs do not count: the archive may name only
    //    what this sandbox has (containerd isolates content per namespace).
    let other = OciLayout::with_file("other.txt", b"another sandbox's layer\n");
    let other_full = TempFile::with(&other.tar());
    let (result, _) = load_into(OTHER, other_full.path()).await;
    result.expect("the other namespace's image loads");
    let mut borrowing = other.sibling("true", "docker.io/library/borrowing:1");
    borrowing.omit = Some(borrowing.layer_digest.clone());
    let borrowing = TempFile::with(&borrowing.tar());
    let (result, _) = load_into(NS, borrowing.path()).await;
    let e = result
        .expect_err("another namespace's layer is refused")
        .to_string();
    assert!(
        e.contains("is neither in the archive nor in the sandbox"),
        "{e}"
    );
    assert!(listed_in(NS, "leases").is_empty(), "lease left behind");
}

fn config_with(diff_ids: &[&Digest]) -> Vec<u8> {
    let (os, arch) = super::plan::host_platform();
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": os,
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
    }))
    .unwrap()
}
