//! Containers.Update may change labels outside the daemon-read prefixes and
//! nothing else (threat model rows 19 and 22): the spec, runtime, snapshot
//! key, snapshotter and image a container was admitted with stay as they
//! were, whether the client names the field in a mask or sends a whole new
//! record without one.

use containerd_client::services::v1::Container;

use crate::common::*;
use crate::raw;
use crate::rpc;
use crate::support::*;

/// Sends an update of a berth-created container, built by `change` from
/// the record the gateway shows, with mask `paths`; asserts a refusal naming
/// one of `reasons` and that the real record is byte for byte unchanged.
#[track_caller]
fn update_refused(paths: &[&str], reasons: &[&str], change: impl FnOnce(&mut Container)) {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = created(&mut cleanup);
    let mut container = raw::block_on(rpc::get_container(&id)).expect("Containers.Get");
    change(&mut container);
    let record = real_record(&id);
    let before = Snapshot::take();
    let result = raw::block_on(rpc::update_container(container, paths));
    let what = format!("Containers.Update of {id} ({paths:?})");
    assert_denied(result, reasons, &what);
    assert_eq!(real_record(&id), record, "{what}: the real record changed");
    assert_nothing_new(&before, &what);
}

/// A spec with CAP_SYS_ADMIN in every set, as the container's new spec.
fn privileged_spec(c: &mut Container) {
    let spec = spec_with(|spec| {
        for set in ["bounding", "effective", "permitted"] {
            spec["process"]["capabilities"][set] = serde_json::json!(["CAP_SYS_ADMIN"]);
        }
    });
    c.spec.as_mut().expect("spec").value = spec.into_bytes();
}

#[test]
fn update_changing_the_spec_is_refused() {
    update_refused(&["spec"], &["changing spec"], privileged_spec);
}

#[test]
fn update_changing_the_spec_without_a_mask_is_refused() {
    // Without a mask containerd replaces every field the request carries.
    update_refused(&[], &["changing spec"], privileged_spec);
}

#[test]
fn update_changing_the_runtime_is_refused() {
    update_refused(&["runtime"], &["changing runtime"], |c| {
        c.runtime.as_mut().expect("runtime").name = "/bin/sh".to_string();
    });
}

#[test]
fn update_changing_the_snapshot_key_is_refused() {
    // Another key would make the next task's rootfs another snapshot.
    update_refused(&["snapshot_key"], &["changing snapshot_key"], |c| {
        c.snapshot_key = busybox_fixture().chain_id.clone();
    });
}

#[test]
fn update_changing_the_snapshotter_is_refused() {
    update_refused(&["snapshotter"], &["changing snapshotter"], |c| {
        c.snapshotter = "native".to_string();
    });
}

#[test]
fn update_changing_the_image_is_refused() {
    update_refused(&["image"], &["changing image"], |c| {
        c.image = "docker.io/library/not-admitted:latest".to_string();
    });
}

#[test]
fn update_adding_extensions_is_refused() {
    update_refused(&["extensions"], &["changing extensions"], |c| {
        c.extensions.insert(
            "x".to_string(),
            prost_types::Any {
                type_url: "x".to_string(),
                value: vec![1],
            },
        );
    });
}

#[test]
fn update_setting_a_restart_label_is_refused() {
    // containerd's restart monitor would restart the task logging to a
    // host program.
    update_refused(
        &["labels.containerd.io/restart.loguri"],
        &["containerd.io/restart.loguri"],
        |c| {
            c.labels.insert(
                "containerd.io/restart.loguri".to_string(),
                "binary:///bin/sh".to_string(),
            );
        },
    );
}

#[test]
fn update_replacing_all_labels_with_a_gc_label_is_refused() {
    update_refused(&["labels"], &["containerd.io/gc.root"], |c| {
        c.labels
            .insert("containerd.io/gc.root".to_string(), "yes".to_string());
    });
}

#[test]
fn update_with_a_case_variant_mask_path_is_refused() {
    // containerd matches mask paths exactly; a checker folding case would
    // read "Spec" as a label path or as nothing.
    update_refused(&["Spec"], &["changing spec"], privileged_spec);
}

#[test]
fn update_of_another_container_id_is_refused_or_not_found() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = created(&mut cleanup);
    let mut container = raw::block_on(rpc::get_container(&id)).expect("Containers.Get");
    container.id = format!("{id}-other");
    let before = Snapshot::take();
    let result = raw::block_on(rpc::update_container(container, &["spec"]));
    assert_status(
        result,
        &[tonic::Code::NotFound, tonic::Code::PermissionDenied],
        &["not found", "another container"],
        "Containers.Update of an unknown id",
    );
    assert_nothing_new(&before, "Containers.Update of an unknown id");
}
