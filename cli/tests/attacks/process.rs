//! Processes: a working directory under /proc (CVE-2024-21626, threat model
//! row 24), execs asking for more than their container has (row 4), and
//! exec IDs the gateway would put into a path (row 15).

use serde_json::json;

use crate::common::*;
use crate::raw;
use crate::rpc;
use crate::support::*;

/// ctr's default process (`ctr oci spec`'s `process`) changed by `edit`.
fn process_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let spec: serde_json::Value = serde_json::from_str(base_spec()).expect("spec JSON");
    let mut process = spec["process"].clone();
    process["args"] = json!(["true"]);
    edit(&mut process);
    serde_json::to_string(&process).expect("process JSON")
}

/// Sends Tasks.Exec into a running berth container; asserts a refusal
/// naming one of `reasons`, that nothing new appeared, and returns.
#[track_caller]
fn exec_refused(exec_id: &str, process: &str, stdout: &str, reasons: &[&str]) {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    let before = Snapshot::take();
    let result = raw::block_on(rpc::exec(&id, exec_id, process, stdout));
    let what = format!("Tasks.Exec {exec_id:?} in {id}");
    assert_status(
        result,
        &[tonic::Code::PermissionDenied, tonic::Code::InvalidArgument],
        reasons,
        &what,
    );
    assert_nothing_new(&before, &what);
    let pids = real_ctr(&["tasks", "ps", &id]);
    assert_eq!(
        lines(&pids).len(),
        2,
        "{what}: the container runs more than its init:\n{pids}"
    );
}

// --- cwd under /proc -------------------------------------------------------------

const UNDER_PROC: &[&str] = &["under /proc"];

#[test]
fn a_container_cwd_in_proc_self_fd_is_refused() {
    create_refused(
        spec_container(|s| s["process"]["cwd"] = json!("/proc/self/fd/7")),
        UNDER_PROC,
    );
}

#[test]
fn a_container_cwd_in_proc_with_doubled_slashes_is_refused() {
    create_refused(
        spec_container(|s| s["process"]["cwd"] = json!("//proc//1/cwd")),
        UNDER_PROC,
    );
}

#[test]
fn a_container_cwd_reaching_proc_through_dotdot_is_refused() {
    create_refused(
        spec_container(|s| s["process"]["cwd"] = json!("/tmp/../proc/self/fd/7")),
        &["must not contain . or ..", "under /proc"],
    );
}

#[test]
fn an_exec_cwd_in_proc_self_fd_is_refused() {
    let process = process_with(|p| p["cwd"] = json!("/proc/self/fd/7"));
    exec_refused(&unique("cwd"), &process, "", UNDER_PROC);
}

#[test]
fn ctr_exec_with_a_cwd_in_proc_is_refused() {
    // Debian's ctr asking for the CVE-2024-21626 working directory.
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    // ctr's own FIFOs go to a directory the agent may write.
    let fifo_dir = agent_dir(&mut cleanup, "ctr-cwd-fifo");
    let before = Snapshot::take();
    let exec_id = unique("ctr-cwd");
    let out = gateway_ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        &exec_id,
        "--fifo-dir",
        &fifo_dir,
        "--cwd",
        "/proc/self/fd/8",
        &id,
        "true",
    ]);
    assert_raw_refused(&out, UNDER_PROC, &before);
}

#[test]
fn berth_exec_with_a_workdir_in_proc_is_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    let before = Snapshot::take();
    let out = docker(&["exec", "-w", "/proc/self/fd/7", &id, "true"]);
    assert_refused(&out, UNDER_PROC, &before);
}

// --- exec with more privilege than its container -----------------------------------

#[test]
fn an_exec_adding_cap_sys_admin_is_refused() {
    let process = process_with(|p| {
        for set in ["bounding", "effective", "permitted"] {
            p["capabilities"][set]
                .as_array_mut()
                .expect("capability set")
                .push(json!("CAP_SYS_ADMIN"));
        }
    });
    exec_refused(&unique("cap"), &process, "", &["cap_sys_admin"]);
}

#[test]
fn an_exec_with_ambient_capabilities_is_refused() {
    let process = process_with(|p| p["capabilities"]["ambient"] = json!(["CAP_CHOWN"]));
    exec_refused(&unique("ambient"), &process, "", &["ambient"]);
}

#[test]
fn an_exec_with_inheritable_capabilities_is_refused() {
    let process = process_with(|p| p["capabilities"]["inheritable"] = json!(["CAP_CHOWN"]));
    exec_refused(&unique("inherit"), &process, "", &["inheritable"]);
}

#[test]
fn an_exec_with_a_case_variant_capabilities_key_is_refused() {
    let process = process_with(|p| {
        p["Capabilities"] = json!({"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"]});
    });
    exec_refused(&unique("case-cap"), &process, "", &["capabilities"]);
}

#[test]
fn an_exec_without_no_new_privileges_still_gets_it() {
    // Not a refusal: the hardening forces noNewPrivileges, so a setuid
    // binary in the container cannot gain what the exec lacks. The exec
    // writes its own status where the test can read it back.
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    let exec_id = unique("nnp");
    let process = process_with(|p| {
        p["noNewPrivileges"] = json!(false);
        p["args"] = json!([
            "/bin/sh",
            "-c",
            "grep -E 'NoNewPrivs|CapEff' /proc/self/status > /tmp/nnp"
        ]);
    });
    raw::block_on(rpc::exec(&id, &exec_id, &process, "")).expect("Tasks.Exec");
    let status = raw::block_on(rpc::start_and_wait(&id, &exec_id)).expect("start and wait");
    assert_eq!(status, 0, "the exec failed");
    let out = docker(&["exec", &id, "cat", "/tmp/nnp"]);
    out.ok().stdout_has("NoNewPrivs:\t1");
    // docker's default set without CAP_NET_RAW (bit 13).
    out.stdout_has("CapEff:\t00000000a80405fb");
}

// --- exec IDs --------------------------------------------------------------------

/// The gateway puts relayed exec IDs into FIFO paths under its io
/// directory; a traversal would create them elsewhere.
#[track_caller]
fn exec_id_refused(exec_id: &str) {
    let escaped = std::path::Path::new(GATEWAY_PRIVATE).join("etc");
    exec_refused(
        exec_id,
        &process_with(|_| {}),
        "berth-relay",
        &["invalid", "id"],
    );
    assert!(
        !escaped.exists() && !std::path::Path::new("/etc/x").exists(),
        "an exec id escaped the io directory"
    );
}

#[test]
fn an_exec_id_with_dotdot_is_refused() {
    exec_id_refused("../../etc/x");
}

#[test]
fn an_exec_id_with_a_slash_is_refused() {
    exec_id_refused("a/b");
}

#[test]
fn an_exec_id_of_dotdot_is_refused() {
    exec_id_refused("..");
}

#[test]
fn the_exec_id_init_is_refused() {
    // init is the directory of the container's own process: an exec
    // named so would take over its FIFOs.
    exec_id_refused("init");
}

#[test]
fn an_overlong_exec_id_is_refused() {
    exec_id_refused(&"a".repeat(77));
}
