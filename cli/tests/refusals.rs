//! What berth refuses through its docker CLI, and how run fails on bad
//! input: each case exits 125 with a one-line message naming the rule, and
//! the real containerd holds nothing new afterwards (no container, task,
//! snapshot, lease, image or content) and no FIFO appeared.
//!
//! The tests of this file compare containerd's state before and after, so
//! they run one at a time (`serial`).

mod common;

use common::*;

/// Runs `docker run ARGS… busybox true` and asserts a refusal naming one of `keywords`.
#[track_caller]
fn refused(flags: &[&str], keywords: &[&str]) {
    stack();
    let _serial = serial();
    let name = unique("refused");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    let before = Snapshot::take();
    let mut args = vec!["run", "--rm", "--name", &name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "true"]);
    let out = docker(&args);
    assert_refused(&out, keywords, &before);
}

#[test]
fn privileged_is_refused() {
    refused(&["--privileged"], &["privileged", "capabilit"]);
}

#[test]
fn cap_add_sys_admin_is_refused() {
    refused(&["--cap-add", "SYS_ADMIN"], &["sys_admin", "capabilit"]);
}

#[test]
fn cap_add_all_is_refused() {
    refused(&["--cap-add", "ALL"], &["capabilit", "cap_"]);
}

#[test]
fn pid_host_is_refused() {
    refused(&["--pid", "host"], &["pid"]);
}

#[test]
fn ipc_host_is_refused() {
    refused(&["--ipc", "host"], &["ipc"]);
}

#[test]
fn uts_host_is_refused() {
    refused(&["--uts", "host"], &["uts"]);
}

#[test]
fn network_host_is_refused() {
    refused(&["--network", "host"], &["network"]);
}

#[test]
fn bind_mount_of_etc_is_refused() {
    refused(&["-v", "/etc:/x"], &["/etc"]);
}

#[test]
fn bind_mount_escaping_the_workspace_with_dotdot_is_refused() {
    let src = format!("{WORKSPACE}/../../../../etc");
    refused(
        &["-v", &format!("{src}:/x")],
        &["/etc", "..", "workspace", "volume"],
    );
}

#[test]
fn bind_mount_through_an_agent_made_symlink_to_etc_is_refused() {
    stack();
    let link = format!("{WORKSPACE}/{}", unique("link"));
    let mut cleanup = Cleanup::new();
    cleanup.path(&link);
    // The agent can make any symlink in its own workspace.
    sandbox(&["ln", "-s", "/etc", &link]).ok();
    refused(&["-v", &format!("{link}:/x")], &["symlink"]);
    // A symlink in the middle of the path is no better.
    refused(&["-v", &format!("{link}/ssl:/x")], &["symlink"]);
}

#[test]
fn device_is_refused() {
    // The machine's disk, whatever it is called here: a device that does not
    // exist would be refused before it reaches the gateway.
    let disk = ["/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/xvda"]
        .into_iter()
        .find(|d| std::path::Path::new(d).exists())
        .unwrap_or("/dev/kmsg");
    refused(
        &["--device", disk],
        &[&format!("devices are not allowed ({disk})")],
    );
}

#[test]
fn another_runtime_is_refused() {
    refused(&["--runtime", "io.containerd.runc.v1"], &["runtime"]);
}

#[test]
fn seccomp_unconfined_is_refused() {
    refused(&["--security-opt", "seccomp=unconfined"], &["seccomp"]);
}

#[test]
fn an_unsupported_flag_is_refused_with_exit_125() {
    refused(&["-p", "8080:80"], &["publish", "-p"]);
}

// --- failures of run on bad input --------------------------------------------------

#[test]
fn run_of_a_missing_image_exits_125_and_names_it() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = docker(&["run", "--rm", "bt-nosuch-image", "true"]);
    out.code(125).stderr_has("bt-nosuch-image");
    assert_nothing_new(&before, &out.cmd);
}

#[test]
fn run_with_an_invalid_name_exits_125() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = docker(&["run", "--rm", "--name", "bad name!", "busybox", "true"]);
    out.code(125).stderr_has("bad name!");
    assert_nothing_new(&before, &out.cmd);
}

#[test]
fn run_with_an_unknown_flag_exits_125_and_names_the_flag() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = docker(&["run", "--no-such-flag", "busybox", "true"]);
    out.code(125).stderr_has("--no-such-flag");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_nothing_new(&before, &out.cmd);
}

#[test]
fn run_with_a_name_already_in_use_exits_125() {
    stack();
    let _serial = serial();
    let name = unique("dup");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]).ok();
    let before = Snapshot::take();
    let out = docker(&["run", "--rm", "--name", &name, "busybox", "true"]);
    out.code(125).stderr_has(&name);
    assert_nothing_new(&before, &out.cmd);
}
