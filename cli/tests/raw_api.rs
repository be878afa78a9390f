//! The gateway's containerd facade against a raw client that is not berth:
//! Debian's `ctr`, run as the agent inside the sandbox and pointed at the
//! gateway socket, and (for requests `ctr` cannot express) containerd's
//! protobuf messages sent directly. Every case must be refused by the
//! gateway and leave nothing new in the real containerd, and nothing the
//! request named on the host (a log file, a hook's marker) may appear.
//!
//! The tests compare containerd's state before and after, so they run one
//! at a time (`serial`).

mod common;

use std::time::Duration;

use common::*;

/// A container record made directly on the real containerd (with a plain
/// directory as rootfs, so no image or snapshot is needed), removed on drop.
struct RealMarker {
    namespace: String,
    id: String,
    _cleanup: Cleanup,
}

impl RealMarker {
    fn create(namespace: &str, tag: &str) -> RealMarker {
        let id = unique(tag);
        let rootfs = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&rootfs).expect("marker rootfs");
        let mut cleanup = Cleanup::new();
        cleanup.path(&rootfs);
        real_ctr_ns(
            namespace,
            &[
                "containers",
                "create",
                "--rootfs",
                &rootfs.to_string_lossy(),
                &id,
            ],
        )
        .ok();
        RealMarker {
            namespace: namespace.to_string(),
            id,
            _cleanup: cleanup,
        }
    }
}

impl Drop for RealMarker {
    fn drop(&mut self) {
        let _ = real_ctr_ns(&self.namespace, &["containers", "rm", &self.id]);
        if self.namespace != NAMESPACE {
            // Fails while the namespace still holds something; then it stays.
            let _ = real_ctr_ns(NAMESPACE, &["namespaces", "rm", &self.namespace]);
        }
    }
}

fn lines(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

// --- namespaces (rule 1) ---------------------------------------------------------

#[test]
fn a_client_namespace_is_replaced_by_the_sandboxs() {
    stack();
    let _serial = serial();
    let marker = RealMarker::create(OTHER_NAMESPACE, "other-ns");
    real_ctr_ns(OTHER_NAMESPACE, &["containers", "ls", "-q"])
        .ok()
        .stdout_has(&marker.id);
    let before = Snapshot::take();

    let seen = gateway_ctr_ns(OTHER_NAMESPACE, &["containers", "ls", "-q"]);
    seen.ok();
    assert!(
        !seen.stdout.contains(&marker.id),
        "the gateway showed another namespace's container:\n{seen}"
    );
    let sandbox_containers = lines(&real_ctr(&["containers", "ls", "-q"]));
    for id in lines(&seen) {
        assert!(
            sandbox_containers.contains(&id),
            "{id} is not a container of {NAMESPACE}:\n{seen}"
        );
    }

    let namespaces = gateway_ctr_ns(OTHER_NAMESPACE, &["namespaces", "ls", "-q"]);
    namespaces.ok();
    assert_eq!(
        lines(&namespaces),
        vec![NAMESPACE.to_string()],
        "namespaces the sandbox sees:\n{namespaces}"
    );
    assert_nothing_new(&before, "listing with another namespace");
}

#[test]
fn creating_a_namespace_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let name = unique("ns");
    let out = gateway_ctr(&["namespaces", "create", &name]);
    assert_raw_refused(&out, &["namespace"], &before);
}

#[test]
fn labelling_the_sandbox_namespace_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    // The namespace's default-snapshotter label would switch every later
    // container to another snapshotter.
    let out = gateway_ctr(&[
        "namespaces",
        "label",
        NAMESPACE,
        "containerd.io/defaults/snapshotter=native",
    ]);
    assert_raw_refused(&out, &["namespace"], &before);
    let labels = real_ctr(&["namespaces", "ls"]);
    assert!(
        !labels
            .ok()
            .stdout
            .contains("containerd.io/defaults/snapshotter"),
        "{labels}"
    );
}

#[test]
fn events_of_other_namespaces_are_not_delivered() {
    stack();
    let _serial = serial();
    // Subscribe as the agent for a few seconds while the real containerd
    // creates a container in each namespace.
    let events =
        std::thread::spawn(|| sandbox(&["timeout", "8", "ctr", "-a", GATEWAY_SOCKET, "events"]));
    std::thread::sleep(Duration::from_secs(2));
    let other = RealMarker::create(OTHER_NAMESPACE, "ev-other");
    let own = RealMarker::create(NAMESPACE, "ev-own");
    let (other_id, own_id) = (other.id.clone(), own.id.clone());
    drop(other);
    drop(own);
    let out = events.join().expect("events thread");
    assert!(
        out.stdout.contains(&own_id),
        "the sandbox's own events must arrive (else this proves nothing):\n{out}"
    );
    assert!(
        !out.stdout.contains(&other_id),
        "an event of {OTHER_NAMESPACE} reached the sandbox:\n{out}"
    );
    assert!(!out.stdout.contains(OTHER_NAMESPACE), "{out}");
}

// --- containers (rule 3) ------------------------------------------------------------
//
// `ctr run IMAGE` cannot get through the gateway at all: ctr asks the
// Introspection service for the snapshotter's capabilities, and the gateway
// does not serve Introspection. So these tests give ctr a whole spec with
// `--config` and create only the container record; the attack is in the spec.

/// Runs a host command (as root) and asserts success.
fn run_host(args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(args[0]);
    cmd.args(&args[1..]);
    let out = run(cmd, Input::Null, COMMAND_TIMEOUT);
    out.ok();
    out
}

/// Writes ctr's default runtime spec, changed by `edit`, where the agent can
/// read it; returns its path.
fn spec_file(cleanup: &mut Cleanup, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let dir = agent_dir(cleanup, "spec");
    let out = run_host(&["ctr", "oci", "spec"]);
    let mut spec: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("ctr oci spec prints JSON");
    edit(&mut spec);
    let path = format!("{dir}/spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("spec JSON"))
        .expect("writing the spec");
    path
}

/// `ctr containers create FLAGS… --config SPEC ID` as the agent, through the
/// gateway, with ctr's default spec changed by `edit`.
fn ctr_create(flags: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> Out {
    let mut cleanup = Cleanup::new();
    let spec = spec_file(&mut cleanup, edit);
    let id = unique("ctr");
    let mut args = vec!["containers", "create"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--config", &spec, &id]);
    gateway_ctr(&args)
}

/// Runs `ctr_create` between two snapshots and asserts the refusal names
/// one of `reasons`.
#[track_caller]
fn create_refused(flags: &[&str], reasons: &[&str], edit: impl FnOnce(&mut serde_json::Value)) {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = ctr_create(flags, edit);
    assert_raw_refused(&out, reasons, &before);
}

#[test]
fn a_container_with_another_runtime_is_refused() {
    create_refused(
        &["--runtime", "io.containerd.runc.v1"],
        &["io.containerd.runc.v1"],
        |_| {},
    );
}

#[test]
fn a_container_with_a_host_shim_binary_is_refused() {
    // containerd runs an absolute runtime path as the shim, as root.
    create_refused(&["--runtime", "/bin/sh"], &["/bin/sh"], |_| {});
}

#[test]
fn a_container_with_an_added_capability_is_refused() {
    create_refused(&[], &["cap_sys_admin"], |spec| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = spec["process"]["capabilities"][set]
                .as_array_mut()
                .expect("capability set");
            caps.push(serde_json::json!("CAP_SYS_ADMIN"));
        }
    });
}

#[test]
fn a_container_with_a_host_bind_mount_is_refused() {
    create_refused(&[], &["/etc"], |spec| {
        let mounts = spec["mounts"].as_array_mut().expect("mounts");
        mounts.push(serde_json::json!({
            "destination": "/x", "type": "bind", "source": "/etc", "options": ["rbind", "ro"]
        }));
    });
}

#[test]
fn a_container_joining_the_hosts_pid_namespace_is_refused() {
    create_refused(&[], &["pid namespace"], |spec| {
        for ns in spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
        {
            if ns["type"] == "pid" {
                ns["path"] = serde_json::json!("/proc/1/ns/pid");
            }
        }
    });
}

#[test]
fn a_container_in_the_hosts_network_namespace_is_refused() {
    // No network namespace in the spec means runc leaves the container in
    // the shim's, which is the host's (ctr run --net-host).
    create_refused(&[], &["network"], |spec| {
        let namespaces = spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces");
        namespaces.retain(|ns| ns["type"] != "network");
    });
}

#[test]
fn a_spec_with_hooks_is_refused_and_no_hook_runs() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let marker = std::env::temp_dir().join(unique("hook-ran"));
    cleanup.path(&marker);
    let touch = serde_json::json!({
        "path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]
    });
    let spec = spec_file(&mut cleanup, |spec| {
        spec["hooks"] = serde_json::json!({
            "prestart": [touch.clone()],
            "createRuntime": [touch.clone()],
            "startContainer": [touch],
        });
    });
    let before = Snapshot::take();
    // `run` rather than `containers create`: were the container admitted,
    // the task would start and the hooks run as root on the host.
    let id = unique("hooks");
    let out = gateway_ctr(&["run", "--rm", "--null-io", "--config", &spec, &id]);
    assert_raw_refused(&out, &["hook"], &before);
    assert!(
        !marker.exists(),
        "a hook ran on the host: {} exists",
        marker.display()
    );
}

// --- tasks: stdio is never a client path or URI (rule 4) ------------------------------

/// What a refusal of client stdio names: the stream, or the relay it must be.
const STDIO_REASONS: &[&str] = &["stdin", "stdout", "stderr", "relay", "stdio"];

/// A container created by berth (no task yet), for `ctr tasks start`.
fn created(cleanup: &mut Cleanup) -> String {
    let name = unique("raw-created");
    cleanup.container(&name);
    let out = docker(&["create", "--name", &name, "busybox", "true"]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(is_full_id(&id), "create prints the container ID:\n{out}");
    id
}

/// `ctr tasks start FLAGS… ID` on a berth-created container, between two
/// snapshots; asserts the refusal names one of `reasons`.
#[track_caller]
fn start_refused(flags: &[&str], reasons: &[&str]) {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = created(&mut cleanup);
    let before = Snapshot::take();
    let mut args = vec!["tasks", "start"];
    args.extend_from_slice(flags);
    args.push(&id);
    let out = gateway_ctr(&args);
    assert_raw_refused(&out, reasons, &before);
}

#[test]
fn a_task_with_client_fifo_paths_is_refused() {
    let mut cleanup = Cleanup::new();
    let fifo_dir = agent_dir(&mut cleanup, "fifo");
    start_refused(&["--fifo-dir", &fifo_dir], STDIO_REASONS);
}

#[test]
fn a_task_logging_to_a_host_file_is_refused() {
    let mut cleanup = Cleanup::new();
    let log = std::env::temp_dir().join(unique("log-uri"));
    cleanup.path(&log);
    start_refused(
        &["--log-uri", &format!("file://{}", log.display())],
        STDIO_REASONS,
    );
    assert!(
        !log.exists(),
        "the shim wrote the client's log file {}",
        log.display()
    );
}

#[test]
fn a_task_logging_to_a_host_binary_is_refused() {
    let mut cleanup = Cleanup::new();
    let marker = std::env::temp_dir().join(unique("binary-uri"));
    cleanup.path(&marker);
    // containerd would run `/bin/sh -c "touch MARKER"` as root on the host.
    let uri = format!("binary:///bin/sh?-c=touch%20{}", marker.display());
    start_refused(&["--log-uri", &uri], STDIO_REASONS);
    assert!(
        !marker.exists(),
        "a binary:// log URI ran a host program: {} exists",
        marker.display()
    );
}

#[test]
fn a_task_with_runtime_options_is_refused() {
    // --no-pivot travels as task options to the shim.
    start_refused(&["--null-io", "--no-pivot"], &["option"]);
}

/// A container started by berth, for the raw clients to poke at.
fn running(cleanup: &mut Cleanup) -> String {
    let name = unique("raw-target");
    cleanup.container(&name);
    let out = docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn an_exec_with_client_stdio_is_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    let fifo_dir = agent_dir(&mut cleanup, "exec-fifo");
    let log = std::env::temp_dir().join(unique("exec-log"));
    cleanup.path(&log);
    let before = Snapshot::take();
    let out = gateway_ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "bt-fifo",
        "--fifo-dir",
        &fifo_dir,
        &id,
        "true",
    ]);
    assert_raw_refused(&out, STDIO_REASONS, &before);
    let log_uri = format!("file://{}", log.display());
    let out = gateway_ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "bt-log",
        "--log-uri",
        &log_uri,
        &id,
        "true",
    ]);
    assert_raw_refused(&out, STDIO_REASONS, &before);
    assert!(
        !log.exists(),
        "the shim wrote the client's log file {}",
        log.display()
    );
}

#[test]
fn task_checkpoint_and_update_are_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    let before = Snapshot::take();
    let out = gateway_ctr(&["tasks", "checkpoint", &id]);
    assert_raw_refused(&out, UNSERVED, &before);
    let out = gateway_ctr(&["tasks", "update", "--memory-limit", "0", &id]);
    assert_raw_refused(&out, UNSERVED, &before);
}

#[test]
fn labels_under_containerd_io_are_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = running(&mut cleanup);
    let before = Snapshot::take();
    // containerd's garbage collector reads containerd.io/gc.* labels.
    let out = gateway_ctr(&[
        "containers",
        "label",
        &id,
        "containerd.io/gc.ref.content.bt=sha256:00",
    ]);
    assert_raw_refused(&out, &["containerd.io", "prefix"], &before);
    let info = real_ctr(&["containers", "info", &id]);
    assert!(
        !info.ok().stdout.contains("containerd.io/gc.ref.content.bt"),
        "{info}"
    );
}

// --- snapshots, content, diff (rules 2 and 5) ---------------------------------------

#[test]
fn snapshot_mounts_are_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let chain = &busybox_fixture().chain_id;
    let out = gateway_ctr(&["snapshots", "mounts", "/tmp/bt-target", chain]);
    assert_raw_refused(&out, UNSERVED, &before);
}

#[test]
fn snapshot_diff_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let chain = &busybox_fixture().chain_id;
    let out = gateway_ctr(&["snapshots", "diff", chain]);
    assert_raw_refused(&out, UNSERVED, &before);
}

#[test]
fn a_prepared_snapshot_does_not_hand_out_host_paths() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("prepare");
    let chain = &busybox_fixture().chain_id;
    // Prepare is served (berth's run needs it) with its mounts emptied: they
    // name overlay directories on the host.
    let out = gateway_ctr(&["snapshots", "prepare", "--mounts", &key, chain]);
    out.ok();
    for host in [
        "/var/lib/berth-stack",
        "upperdir",
        "lowerdir",
        "workdir",
        "overlay",
    ] {
        assert!(
            !out.stdout.contains(host),
            "Prepare handed the client host mounts ({host}):\n{out}"
        );
    }
    gateway_ctr(&["snapshots", "rm", &key]).ok();
    assert_nothing_new(&before, "prepare then remove");
}

#[test]
fn a_snapshot_of_another_snapshotter_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("native");
    let out = gateway_ctr(&["snapshots", "--snapshotter", "native", "prepare", &key]);
    if out.code == 0 {
        let _ = real_ctr(&["snapshots", "--snapshotter", "native", "rm", &key]);
    }
    assert_raw_refused(&out, &["snapshotter", "native"], &before);
}

// --- requests ctr cannot express --------------------------------------------------------

#[path = "raw_api/raw.rs"]
mod raw;

/// The base spec ctr would send, as JSON text without its closing brace,
/// so a test can append keys verbatim.
fn open_spec() -> String {
    let spec = run_host(&["ctr", "oci", "spec"]).stdout;
    let trimmed = spec.trim_end();
    let open = trimmed.strip_suffix('}').expect("a JSON object");
    open.to_string()
}

#[track_caller]
fn assert_status_refused(result: Result<(), tonic::Status>, names: &[&str], what: &str) {
    let status = match result {
        Ok(()) => panic!("{what}: the gateway accepted it"),
        Err(s) => s,
    };
    use tonic::Code;
    assert!(
        matches!(
            status.code(),
            Code::PermissionDenied | Code::InvalidArgument | Code::Unimplemented
        ),
        "{what}: expected a refusal, got {:?}: {}",
        status.code(),
        status.message()
    );
    if status.code() != Code::Unimplemented {
        let msg = status.message().to_lowercase();
        assert!(
            names.iter().any(|n| msg.contains(n)),
            "{what}: the refusal does not name {names:?}: {}",
            status.message()
        );
    }
}

#[test]
fn a_spec_with_a_case_variant_hooks_key_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    // runc decodes JSON case-insensitively: "Hooks" is hooks to it.
    let spec = format!(
        "{},\n\"Hooks\": {{\"prestart\": [{{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"true\"]}}]}}\n}}",
        open_spec()
    );
    let id = unique("case-hooks");
    let result = raw::block_on(raw::create_container(&id, &spec));
    assert_status_refused(result, &["hooks"], "a spec with \"Hooks\"");
    assert_nothing_new(&before, "Containers.Create with \"Hooks\"");
}

#[test]
fn a_spec_with_a_duplicate_key_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    // Go's decoder keeps the last duplicate; a checker reading the first
    // would see the harmless one.
    let spec = format!(
        "{},\n\"process\": {{\"user\": {{\"uid\": 0, \"gid\": 0}}, \"cwd\": \"/\", \"args\": [\"true\"], \
         \"capabilities\": {{\"bounding\": [\"CAP_SYS_ADMIN\"], \"effective\": [\"CAP_SYS_ADMIN\"], \
         \"permitted\": [\"CAP_SYS_ADMIN\"]}}}}\n}}",
        open_spec()
    );
    let id = unique("dup-key");
    let result = raw::block_on(raw::create_container(&id, &spec));
    assert_status_refused(
        result,
        &["duplicate", "process"],
        "a spec with two \"process\" keys",
    );
    assert_nothing_new(&before, "Containers.Create with a duplicate key");
}

#[test]
fn diff_apply_onto_a_host_directory_is_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let target = std::env::temp_dir().join(unique("apply"));
    std::fs::create_dir_all(&target).expect("apply target");
    cleanup.path(&target);
    let layer = real_ctr(&["content", "ls", "-q"]);
    let fixture = busybox_fixture();
    let manifest = real_ctr(&["content", "get", &fixture.manifest_digest]);
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest.ok().stdout).expect("manifest JSON");
    let l = &manifest["layers"][0];
    let desc = containerd_client::types::Descriptor {
        media_type: l["mediaType"].as_str().expect("mediaType").to_string(),
        digest: l["digest"].as_str().expect("digest").to_string(),
        size: l["size"].as_i64().expect("size"),
        ..Default::default()
    };
    assert!(
        layer.stdout.contains(&desc.digest),
        "the busybox layer is in the sandbox's content:\n{layer}"
    );
    let before = Snapshot::take();
    let result = raw::block_on(raw::apply(desc, &target.to_string_lossy()));
    assert_status_refused(result, &["diff", "apply"], "Diff.Apply");
    let written = std::fs::read_dir(&target).expect("apply target").count();
    assert_eq!(
        written,
        0,
        "Diff.Apply wrote into the host directory {}",
        target.display()
    );
    assert_nothing_new(&before, "Diff.Apply");
}

#[test]
fn diff_of_host_directories_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let result = raw::block_on(raw::diff("/etc", "/root"));
    assert_status_refused(result, &["diff"], "Diff.Diff");
    assert_nothing_new(&before, "Diff.Diff");
}

#[test]
fn writing_content_directly_is_refused() {
    // ctr's `content ingest` only reports the closed stream ("EOF"), so the
    // write is sent by hand to see the gateway's status.
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let result = raw::block_on(raw::write_content(
        &unique("ingest"),
        b"not through the gateway's loader\n",
    ));
    assert_status_refused(result, &["content", "write"], "Content.Write");
    assert_nothing_new(&before, "Content.Write");
}
