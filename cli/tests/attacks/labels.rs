//! Daemon-read annotations and labels (threat model rows 19 and 20): runc,
//! crun, CRIU, systemd and containerd's garbage collector and restart
//! monitor act on these keys; a client may set none of them, on containers,
//! snapshots, images or leases.

use crate::common::*;
use crate::raw;
use crate::support::*;

/// Containers.Create with the annotation `key=value`; refused naming it.
#[track_caller]
fn annotation_refused(key: &str, value: &str) {
    let c = spec_container(|spec| {
        spec["annotations"] = serde_json::json!({ key: value });
    });
    create_refused(c, &[key]);
}

#[test]
fn the_criu_config_annotation_is_refused() {
    // runc reads a CRIU configuration file from this host path.
    annotation_refused("org.criu.config", "/etc/passwd");
}

#[test]
fn a_systemd_property_annotation_is_refused() {
    // runc passes org.systemd.property.* to systemd as unit properties.
    annotation_refused("org.systemd.property.ExecStartPre", "/bin/sh -c id");
}

#[test]
fn a_run_oci_annotation_is_refused() {
    // crun writes its hooks' output to the host file this names.
    annotation_refused("run.oci.hooks.stdout", "/etc/cron.d/x");
}

#[test]
fn a_shim_grouping_annotation_is_refused() {
    // The runc shim groups containers into one shim by this annotation.
    annotation_refused("io.containerd.runc.v2.group", "other");
}

#[test]
fn a_container_with_a_gc_label_is_refused() {
    let mut c = spec_container(|_| {});
    c.labels.insert(
        "containerd.io/gc.ref.snapshot.overlayfs".to_string(),
        busybox_fixture().chain_id.clone(),
    );
    create_refused(c, &["containerd.io/gc.ref.snapshot.overlayfs"]);
}

#[test]
fn a_snapshot_pinning_another_snapshot_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("gc-ref");
    let result = raw::block_on(raw::prepare_labelled(
        &key,
        "",
        &[("containerd.io/gc.ref.snapshot.overlayfs", "anything")],
    ));
    if result.is_ok() {
        let _ = raw::block_on(raw::remove_snapshot(&key));
    }
    assert_denied(
        result,
        &["daemon acts on"],
        "Snapshots.Prepare with a gc.ref label",
    );
    assert_nothing_new(&before, "Snapshots.Prepare with a gc.ref label");
}

#[test]
fn ctr_labelling_an_image_for_the_gc_is_refused() {
    stack();
    let _serial = serial();
    let images = real_ctr(&["images", "ls"]);
    let before = Snapshot::take();
    let out = gateway_ctr(&[
        "images",
        "label",
        BUSYBOX_REF,
        "containerd.io/gc.ref.content.bt=sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ]);
    assert_raw_refused(&out, &["daemon acts on"], &before);
    assert_eq!(real_ctr(&["images", "ls"]).stdout, images.stdout);
}

#[test]
fn ctr_creating_a_flat_lease_is_refused() {
    // gc.flat makes the lease hold only what it names, not their children.
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let id = unique("flat-lease");
    let out = gateway_ctr(&[
        "leases",
        "create",
        "--id",
        &id,
        "containerd.io/gc.flat=true",
    ]);
    if out.code == 0 {
        let _ = real_ctr(&["leases", "rm", &id]);
    }
    assert_raw_refused(&out, &["daemon acts on"], &before);
}

#[test]
fn a_lease_pinning_content_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let id = unique("ref-lease");
    let result = raw::block_on(raw::create_lease(
        &id,
        &[(
            "containerd.io/gc.ref.content.x",
            &busybox_fixture().manifest_digest,
        )],
    ));
    if result.is_ok() {
        let _ = raw::block_on(raw::delete_lease(&id));
    }
    assert_denied(
        result,
        &["daemon acts on"],
        "Leases.Create with a gc.ref label",
    );
    assert_nothing_new(&before, "Leases.Create with a gc.ref label");
}
