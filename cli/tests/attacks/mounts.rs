//! Bind mounts outside the workspace, however they are spelled (threat
//! model row 8): relative sources (runc resolves them against the bundle,
//! on the host), a parent of the workspace, a sibling sharing its prefix,
//! and mounts runc performs as binds whatever type they claim.

use serde_json::json;

use crate::common::*;
use crate::support::*;

/// Containers.Create with one more mount, `mount`; refused naming `reasons`.
#[track_caller]
fn mount_refused(mount: serde_json::Value, reasons: &[&str]) {
    let c = spec_container(|spec| {
        spec["mounts"].as_array_mut().expect("mounts").push(mount);
    });
    create_refused(c, reasons);
}

#[test]
fn a_relative_bind_source_is_refused() {
    // runc resolves a relative source against the bundle directory on the host.
    mount_refused(
        json!({"destination": "/x", "type": "bind", "source": "rootfs/../../..", "options": ["rbind"]}),
        &["not an absolute path"],
    );
}

#[test]
fn a_plain_relative_bind_source_is_refused() {
    mount_refused(
        json!({"destination": "/x", "type": "bind", "source": "etc", "options": ["rbind"]}),
        &["not an absolute path"],
    );
}

#[test]
fn an_rbind_of_the_workspaces_parent_is_refused() {
    // The stack's state directory holds containerd's and the gateway's.
    let parent = std::path::Path::new(WORKSPACE)
        .parent()
        .expect("workspace parent")
        .to_string_lossy()
        .into_owned();
    mount_refused(
        json!({"destination": "/x", "type": "bind", "source": parent, "options": ["rbind", "rw"]}),
        &["outside the allowed volume roots"],
    );
}

#[test]
fn a_bind_climbing_out_of_the_workspace_with_dotdot_is_refused() {
    mount_refused(
        json!({"destination": "/x", "type": "bind", "source": format!("{WORKSPACE}/../gateway"), "options": ["rbind"]}),
        &["must not contain . or .."],
    );
}

#[test]
fn a_sibling_sharing_the_workspaces_prefix_is_refused() {
    // A string-prefix check would take /…/workspace-evil for /…/workspace/.
    let mut cleanup = Cleanup::new();
    let sibling = format!("{WORKSPACE}-{}", unique("evil"));
    std::fs::create_dir_all(&sibling).expect("sibling directory");
    cleanup.path(&sibling);
    mount_refused(
        json!({"destination": "/x", "type": "bind", "source": sibling, "options": ["rbind"]}),
        &["outside the allowed volume roots"],
    );
}

#[test]
fn a_none_mount_with_rbind_is_a_bind_and_refused() {
    // runc bind-mounts whenever the options say bind or rbind.
    mount_refused(
        json!({"destination": "/x", "type": "none", "source": "/etc", "options": ["rbind", "ro"]}),
        &["/etc"],
    );
}

#[test]
fn a_tmpfs_mount_with_bind_is_a_bind_and_refused() {
    mount_refused(
        json!({"destination": "/x", "type": "tmpfs", "source": "/", "options": ["bind"]}),
        &["outside the allowed volume roots"],
    );
}

#[test]
fn an_untyped_mount_with_rbind_is_refused() {
    mount_refused(
        json!({"destination": "/x", "source": "/etc", "options": ["rbind"]}),
        &["/etc", "has no type"],
    );
}

#[test]
fn an_overlay_of_host_directories_is_refused() {
    // overlay's lowerdir names host paths: /etc read through the overlay.
    mount_refused(
        json!({"destination": "/x", "type": "overlay", "source": "overlay",
               "options": ["lowerdir=/etc", "upperdir=/tmp/bt-u", "workdir=/tmp/bt-w"]}),
        &["overlay"],
    );
}

#[test]
fn a_second_proc_mount_is_refused() {
    mount_refused(
        json!({"destination": "/x", "type": "proc", "source": "proc"}),
        &["proc mount at /x"],
    );
}

#[test]
fn a_shared_bind_of_the_workspace_is_refused() {
    // Shared propagation would carry the container's mounts back to the host.
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "shared");
    mount_refused(
        json!({"destination": "/x", "type": "bind", "source": dir, "options": ["rbind", "rshared"]}),
        &["rshared"],
    );
}
