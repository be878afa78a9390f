//! What code inside a container, or the agent itself, cannot do (threat
//! model rows 7, 31, 34, 35, 37): the kernel or the stack refuses it, and
//! the request-side variants are refused by the gateway.

use crate::common::*;
use crate::support::*;

/// Runs `script` in a fresh busybox container (`run --rm`) as the agent;
/// the container must leave nothing behind in the real containerd.
fn in_container(script: &str) -> Out {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = docker(&["run", "--rm", "busybox", "sh", "-c", script]);
    assert_nothing_new(&before, "run --rm");
    out
}

/// Asserts the container's command failed with EPERM's words.
#[track_caller]
fn not_permitted(out: &Out) {
    assert_ne!(out.code, 0, "expected the kernel to refuse:\n{out}");
    assert_ne!(out.code, 125, "the container did not run:\n{out}");
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("not permitted") || err.contains("permission denied"),
        "expected EPERM's words on stderr:\n{out}"
    );
}

#[test]
fn unshare_user_in_a_container_fails() {
    // unprivileged user namespaces reach kernel code that needs
    // capabilities; the gateway's seccomp profile refuses unshare.
    not_permitted(&in_container("unshare -U true"));
}

#[test]
fn unshare_mount_in_a_container_fails() {
    not_permitted(&in_container("unshare -m true"));
}

#[test]
fn entering_the_hosts_namespaces_from_a_container_fails() {
    let out = in_container("nsenter -t 1 -m -n true");
    assert_ne!(out.code, 0, "{out}");
    assert_ne!(out.code, 125, "{out}");
}

#[test]
fn mounting_in_a_container_fails() {
    not_permitted(&in_container("mount -t tmpfs none /mnt"));
}

#[test]
fn an_af_packet_socket_in_a_container_fails() {
    // arping opens socket(AF_PACKET, …) first; without CAP_NET_RAW the
    // kernel refuses, so raw frames cannot bypass the sandbox's nftables.
    not_permitted(&in_container("arping -c 1 -w 1 10.200.0.1"));
}

#[test]
fn containers_lack_cap_net_raw() {
    let out = in_container("grep CapBnd /proc/self/status");
    out.ok();
    let hex = out
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no CapBnd:\n{out}"));
    let caps = u64::from_str_radix(hex, 16).expect("CapBnd is hex");
    const CAP_NET_RAW: u64 = 1 << 13;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    assert_eq!(caps & (CAP_NET_RAW | CAP_SYS_ADMIN), 0, "CapBnd {hex}");
}

#[test]
fn a_block_device_made_in_a_container_cannot_be_opened() {
    // CAP_MKNOD is in docker's default set; the device cgroup refuses the open.
    let out = in_container("mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda");
    not_permitted(&out);
}

#[test]
fn a_device_cgroup_rule_allowing_every_block_device_is_refused() {
    create_refused(
        spec_container(|s| {
            s["linux"]["resources"]["devices"] =
                serde_json::json!([{"allow": true, "type": "b", "access": "rwm"}]);
        }),
        &["device cgroup rule"],
    );
}

#[test]
fn a_container_has_the_default_pids_limit() {
    let out = in_container("cat /sys/fs/cgroup/pids/pids.max");
    out.ok();
    assert_eq!(out.stdout.trim(), "1024", "{out}");
}

#[test]
fn a_pids_limit_above_the_maximum_is_refused() {
    create_refused(
        spec_container(|s| s["linux"]["resources"]["pids"] = serde_json::json!({"limit": 100000})),
        &["pids limit"],
    );
}

#[test]
fn the_agent_cannot_open_the_real_containerd_socket() {
    stack();
    let out = sandbox(&["ctr", "-a", REAL_SOCKET, "version"]);
    assert_ne!(out.code, 0, "the agent reached the real containerd:\n{out}");
    out.stderr_has("permission denied");
}

#[test]
fn the_agent_cannot_read_the_gateways_private_directory() {
    stack();
    let out = sandbox(&["ls", GATEWAY_PRIVATE]);
    assert_ne!(out.code, 0, "the agent listed {GATEWAY_PRIVATE}:\n{out}");
    out.stderr_has("permission denied");
}
