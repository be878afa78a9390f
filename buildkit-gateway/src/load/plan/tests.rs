//! Planning tests over archives built in memory.

use super::*;
use crate::load::oci::{self, Manifest};
use crate::load::testdata::{gzip, DockerSave, Entry, OciLayout, TempFile};

fn plan_of(bytes: &[u8]) -> Result<Plan, LoadError> {
    let tmp = TempFile::with(bytes);
    let ar = Archive::open(tmp.path())?;
    plan(&ar)
}

fn err_of(bytes: &[u8]) -> String {
    match plan_of(bytes) {
        Ok(_) => panic!("archive was accepted"),
        Err(e) => e.to_string(),
    }
}

fn labels(blob: &Blob) -> Vec<(&str, &str)> {
    blob.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn plans_an_oci_layout() {
    let oci = OciLayout::busybox();
    let plan = plan_of(&oci.tar()).unwrap();
    assert_eq!(plan.format, Format::OciLayout);
    let roles: Vec<Role> = plan.blobs.iter().map(|b| b.role).collect();
    assert_eq!(roles, [Role::Layer, Role::Config, Role::Manifest]);
    let [image] = &plan.images[..] else {
        panic!("one image expected")
    };
    assert_eq!(image.names, ["docker.io/library/busybox:latest"]);
    assert_eq!(image.target.digest, oci.manifest_digest);
    assert_eq!(image.target.media_type, oci::OCI_MANIFEST);
    assert_eq!(image.config.as_ref(), Some(&oci.config_digest));
    let unpack = image.unpack.as_ref().expect("host platform is unpacked");
    assert_eq!(unpack.layers.len(), 1);
    assert_eq!(unpack.layers[0].diff_id, oci.diff_id);
    assert_eq!(
        labels(&plan.blobs[2]),
        [
            (LABEL_GC_CONFIG, oci.config_digest.as_str()),
            (
                "containerd.io/gc.ref.content.l.0",
                oci.layer_digest.as_str()
            )
        ]
    );
    assert_eq!(
        labels(&plan.blobs[0]),
        [(LABEL_UNCOMPRESSED, oci.diff_id.as_str())]
    );
}

#[test]
fn plans_a_gzip_compressed_oci_layout() {
    let oci = OciLayout::busybox();
    let plan = plan_of(&gzip(&oci.tar())).unwrap();
    assert_eq!(plan.images[0].names, ["docker.io/library/busybox:latest"]);
    assert_eq!(plan.blobs.len(), 3);
}

#[test]
fn plans_an_index_of_platforms() {
    let mut oci = OciLayout::busybox();
    oci.wrap_in_index(&[("linux", "s390x-not-here")]);
    let plan = plan_of(&oci.tar()).unwrap();
    let roles: Vec<Role> = plan.blobs.iter().map(|b| b.role).collect();
    assert_eq!(
        roles,
        [Role::Layer, Role::Config, Role::Manifest, Role::Index]
    );
    let image = &plan.images[0];
    assert_eq!(image.target.media_type, oci::OCI_INDEX);
    assert_eq!(image.unpack.as_ref().unwrap().manifest, oci.manifest_digest);
    let index = &plan.blobs[3];
    assert_eq!(
        index.labels.get("containerd.io/gc.ref.content.m.0"),
        Some(&oci.manifest_digest.to_string())
    );
    assert!(index
        .labels
        .contains_key("containerd.io/gc.ref.content.m.1"));
}

#[test]
fn names_come_from_ref_name_only_when_it_is_a_reference() {
    let mut oci = OciLayout::busybox();
    oci.annotations = vec![(ANNOTATION_REF_NAME, "latest")];
    let plan = plan_of(&oci.tar()).unwrap();
    assert!(plan.images[0].names.is_empty());
    oci.annotations = vec![(ANNOTATION_REF_NAME, "localhost:5000/app:1")];
    let plan = plan_of(&oci.tar()).unwrap();
    assert_eq!(plan.images[0].names, ["localhost:5000/app:1"]);
    oci.annotations = vec![(ANNOTATION_IMAGE_NAME, "Not A Name")];
    assert!(err_of(&oci.tar())
        .starts_with("invalid archive: image name \"Not A Name\" is not a valid reference"));
}

#[test]
fn plans_a_legacy_docker_save() {
    let docker = DockerSave::two_images();
    let plan = plan_of(&docker.tar()).unwrap();
    assert_eq!(plan.format, Format::DockerSave);
    assert_eq!(plan.images.len(), 2);
    let first = &plan.images[0];
    assert_eq!(
        first.names,
        ["docker.io/library/busybox:latest", "localhost:5000/x:1"]
    );
    assert_eq!(first.target.media_type, oci::DOCKER_MANIFEST);
    assert_eq!(plan.images[1].names, ["docker.io/foo/bar:latest"]);
    // The shared base layer (a symlinked layer.tar in the second image) is
    // written once, uncompressed, under its diff_id.
    let layers: Vec<&Blob> = plan
        .blobs
        .iter()
        .filter(|b| b.role == Role::Layer)
        .collect();
    assert_eq!(layers.len(), 2);
    let unpacked = &plan.images[1].unpack.as_ref().unwrap().layers;
    assert!(unpacked.iter().all(|l| l.media_type == oci::DOCKER_LAYER));
    assert_eq!(layers[0].digest, docker.diff_ids[0]);
    // The synthesised manifest is well-formed and matches its digest.
    let manifest = plan
        .blobs
        .iter()
        .find(|b| b.digest == first.target.digest)
        .unwrap();
    let Source::Bytes(bytes) = &manifest.source else {
        panic!("synthesised manifest expected")
    };
    assert_eq!(Digest::of(bytes), first.target.digest);
    let parsed: Manifest = serde_json::from_slice(bytes).unwrap();
    assert_eq!(parsed.media_type.as_deref(), Some(oci::DOCKER_MANIFEST));
    assert_eq!(parsed.layers.len(), 1);
    assert_eq!(parsed.layers[0].digest, docker.diff_ids[0]);
    assert_eq!(
        manifest.labels.get(LABEL_GC_CONFIG),
        Some(&parsed.config.digest.to_string())
    );
    let second = plan.images[1].unpack.as_ref().unwrap();
    assert_eq!(
        second.layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>(),
        [&docker.diff_ids[0], &docker.diff_ids[1]]
    );
}

#[test]
fn prefers_the_oci_index_and_takes_repo_tags_for_unnamed_entries() {
    let mut oci = OciLayout::busybox();
    oci.annotations = vec![(ANNOTATION_REF_NAME, "latest")];
    let manifest_json = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["busybox:1.36"],"Layers":["blobs/sha256/{}"]}}]"#,
        oci.config_digest.hex(),
        oci.layer_digest.hex()
    );
    oci.extra
        .push(Entry::file("manifest.json", manifest_json.as_bytes()));
    let plan = plan_of(&oci.tar()).unwrap();
    assert_eq!(plan.format, Format::OciLayout);
    assert_eq!(plan.images[0].names, ["docker.io/library/busybox:1.36"]);
}

#[test]
fn plans_a_left_out_layer_from_the_sandbox() {
    let mut oci = OciLayout::busybox();
    oci.omit = Some(oci.layer_digest.clone());
    let plan = plan_of(&oci.tar()).unwrap();
    let layer = &plan.blobs[0];
    assert_eq!(layer.role, Role::Layer);
    assert_eq!(layer.digest, oci.layer_digest);
    assert_eq!(layer.size, oci.layer.len() as u64);
    assert!(matches!(layer.source, Source::Sandbox), "{layer:?}");
    // Its labels still go on the sandbox's copy, and it is still unpacked.
    assert_eq!(labels(layer), [(LABEL_UNCOMPRESSED, oci.diff_id.as_str())]);
    let unpack = plan.images[0].unpack.as_ref().expect("still unpacked");
    assert_eq!(unpack.layers[0].digest, oci.layer_digest);
    // Everything the archive holds comes from the archive.
    assert!(plan.blobs[1..]
        .iter()
        .all(|b| matches!(b.source, Source::Archive(_))));
}

#[test]
fn refuses_a_missing_config_or_manifest() {
    // The plan reads them, so the sandbox cannot stand in for them.
    let mut oci = OciLayout::busybox();
    oci.omit = Some(oci.config_digest.clone());
    assert_eq!(
        err_of(&oci.tar()),
        format!(
            "invalid archive: blob {} is missing (config)",
            oci.config_digest
        )
    );
    let mut oci = OciLayout::busybox();
    oci.omit = Some(oci.manifest_digest.clone());
    assert_eq!(
        err_of(&oci.tar()),
        format!(
            "invalid archive: blob {} is missing (manifest)",
            oci.manifest_digest
        )
    );
}

#[test]
fn tolerates_other_platforms_missing_from_an_index() {
    let mut oci = OciLayout::busybox();
    oci.wrap_in_index(&[("linux", "riscv-elsewhere")]);
    // The second platform's manifest is listed but absent: fine, and not
    // asked of the sandbox either.
    let plan = plan_of(&oci.tar()).unwrap();
    assert!(!plan
        .blobs
        .iter()
        .any(|b| matches!(b.source, Source::Sandbox)));
    // The host platform's layer left out must come from the sandbox.
    oci.omit = Some(oci.layer_digest.clone());
    let plan = plan_of(&oci.tar()).unwrap();
    let from_sandbox: Vec<&Digest> = plan
        .blobs
        .iter()
        .filter(|b| matches!(b.source, Source::Sandbox))
        .map(|b| &b.digest)
        .collect();
    assert_eq!(from_sandbox, [&oci.layer_digest]);
}

#[test]
fn refuses_a_manifest_that_does_not_match_its_digest() {
    let mut oci = OciLayout::busybox();
    oci.corrupt_manifest = true;
    assert_eq!(
        err_of(&oci.tar()),
        format!(
            "invalid archive: blob {} does not match its digest",
            oci.manifest_digest
        )
    );
}

#[test]
fn layer_digest_mismatch_is_caught_while_copying() {
    let mut oci = OciLayout::busybox();
    oci.corrupt_layer = true;
    let tmp = TempFile::with(&oci.tar());
    let ar = Archive::open(tmp.path()).unwrap();
    let plan = plan(&ar).unwrap();
    let layer = &plan.blobs[0];
    let Source::Archive(loc) = layer.source else {
        panic!("archive source expected")
    };
    let e = ar
        .copy_verified(loc, &layer.digest, |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "invalid archive: blob {} does not match its digest",
            oci.layer_digest
        )),
        "{e}"
    );
}

#[test]
fn refuses_bad_and_oversized_json() {
    let bad =
        crate::load::testdata::tar_of(&[Entry::file("index.json", b"{\"schemaVersion\": 2, ")]);
    assert!(err_of(&bad).starts_with("invalid archive: index.json is not valid JSON: "));
    let mut big = b"{\"schemaVersion\":2,\"manifests\":[],\"x\":\"".to_vec();
    big.resize(5 << 20, b'a');
    big.extend_from_slice(b"\"}");
    let big = crate::load::testdata::tar_of(&[Entry::file("index.json", &big)]);
    assert_eq!(
        err_of(&big),
        "invalid archive: index.json is larger than 4 MiB"
    );
    let legacy = crate::load::testdata::tar_of(&[Entry::file("manifest.json", b"{\"Config\":1}")]);
    assert!(err_of(&legacy).starts_with("invalid archive: manifest.json is not valid JSON: "));
}

#[test]
fn refuses_bad_digests_and_sizes_in_descriptors() {
    let mut oci = OciLayout::busybox();
    oci.index_override = Some(r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ABC","size":1}]}"#.into());
    assert!(err_of(&oci.tar()).contains("is not sha256:<64 lowercase hex>"));
    let mut oci = OciLayout::busybox();
    oci.manifest_size_delta = 1;
    assert!(err_of(&oci.tar()).contains("its descriptor says"));
}

#[test]
fn refuses_a_name_given_to_two_images() {
    let docker = DockerSave::two_images().with_tags(&["a:1"], &["a:1"]);
    assert_eq!(
        err_of(&docker.tar()),
        "invalid archive: name docker.io/library/a:1 is given to two different images"
    );
}

#[test]
fn refuses_archives_of_neither_format() {
    let bytes = crate::load::testdata::tar_of(&[Entry::file("hello", b"x")]);
    assert_eq!(
        err_of(&bytes),
        "invalid archive: archive has neither index.json nor manifest.json (not an OCI layout or docker save archive)"
    );
}
