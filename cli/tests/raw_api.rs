//! The gateway's containerd facade against a raw client that is not berth:
//! Debian's `ctr`, run as the agent inside the sandbox and pointed at the
//! gateway socket, and containerd's protobuf messages sent directly where
//! `ctr` cannot get the request under test through (see `raw_api/raw.rs`).
//! Every case must be refused by the gateway, naming its reason, and leave
//! nothing new in the real containerd; nothing the request named on the host
//! (a log file, a program's marker) may appear.
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
// `ctr run` and `ctr containers create` cannot reach Containers.Create
// through the gateway: for an image it asks Introspection, which the gateway
// does not serve, and a task needs Snapshots.Mounts, which is never served. So the container
// attacks are hand-built Containers.Create requests carrying ctr's default
// spec with one change each.

#[path = "raw_api/raw.rs"]
mod raw;

use containerd_client::services::v1::{Container, CreateTaskRequest};

/// Runs a host command (as root) and asserts success.
fn run_host(args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(args[0]);
    cmd.args(&args[1..]);
    let out = run(cmd, Input::Null, COMMAND_TIMEOUT);
    out.ok();
    out
}

/// ctr's default runtime spec (`ctr oci spec`), changed by `edit`, as JSON.
fn spec_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let out = run_host(&["ctr", "oci", "spec"]);
    let mut spec: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("ctr oci spec prints JSON");
    edit(&mut spec);
    serde_json::to_string(&spec).expect("spec JSON")
}

/// A container with ctr's default spec changed by `edit`.
fn spec_container(edit: impl FnOnce(&mut serde_json::Value)) -> Container {
    raw::container(&unique("raw"), &spec_with(edit))
}

/// The base spec ctr would send, as JSON text without its closing brace,
/// so a test can append keys verbatim.
fn open_spec() -> String {
    let spec = run_host(&["ctr", "oci", "spec"]).stdout;
    let trimmed = spec.trim_end();
    let open = trimmed.strip_suffix('}').expect("a JSON object");
    open.to_string()
}

/// Asserts a gRPC refusal: PermissionDenied, InvalidArgument or
/// Unimplemented, whose code name or message names one of `reasons` (so an
/// Unimplemented passes only where `reasons` allow "unimplemented").
#[track_caller]
fn assert_status_refused(result: Result<(), tonic::Status>, reasons: &[&str], what: &str) {
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
    let text = format!("{:?} {}", status.code(), status.message()).to_lowercase();
    assert!(
        reasons.iter().any(|r| text.contains(&r.to_lowercase())),
        "{what}: the refusal does not name {reasons:?}: {:?}: {}",
        status.code(),
        status.message()
    );
}

/// Sends Containers.Create for `container` between two snapshots and asserts
/// a refusal naming one of `reasons`.
#[track_caller]
fn create_refused(container: Container, reasons: &[&str]) {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let what = format!("Containers.Create of {}", container.id);
    let result = raw::block_on(raw::create_container(container));
    assert_status_refused(result, reasons, &what);
    assert_nothing_new(&before, &what);
}

#[test]
fn a_container_with_another_runtime_is_refused() {
    let mut c = spec_container(|_| {});
    c.runtime.as_mut().expect("runtime").name = "io.containerd.runc.v1".to_string();
    create_refused(c, &["io.containerd.runc.v1"]);
}

#[test]
fn a_container_with_a_host_shim_binary_is_refused() {
    // containerd runs an absolute runtime path as the shim, as root.
    let mut c = spec_container(|_| {});
    c.runtime.as_mut().expect("runtime").name = "/bin/sh".to_string();
    create_refused(c, &["/bin/sh"]);
}

#[test]
fn a_container_with_runtime_options_is_refused() {
    // runc's Options field 6 is binary_name: the shim would run it as runc.
    let mut value = vec![0x32, 7];
    value.extend_from_slice(b"/bin/sh");
    let mut c = spec_container(|_| {});
    c.runtime.as_mut().expect("runtime").options = Some(prost_types::Any {
        type_url: "containerd.runc.v1.Options".to_string(),
        value,
    });
    create_refused(c, &["option"]);
}

#[test]
fn a_container_with_an_added_capability_is_refused() {
    let c = spec_container(|spec| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = spec["process"]["capabilities"][set]
                .as_array_mut()
                .expect("capability set");
            caps.push(serde_json::json!("CAP_SYS_ADMIN"));
        }
    });
    create_refused(c, &["cap_sys_admin"]);
}

#[test]
fn a_container_with_a_host_bind_mount_is_refused() {
    let c = spec_container(|spec| {
        let mounts = spec["mounts"].as_array_mut().expect("mounts");
        mounts.push(serde_json::json!({
            "destination": "/x", "type": "bind", "source": "/etc", "options": ["rbind", "ro"]
        }));
    });
    create_refused(c, &["/etc"]);
}

#[test]
fn a_container_joining_the_hosts_pid_namespace_is_refused() {
    let c = spec_container(|spec| {
        let namespaces = spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces");
        for ns in namespaces {
            if ns["type"] == "pid" {
                ns["path"] = serde_json::json!("/proc/1/ns/pid");
            }
        }
    });
    create_refused(c, &["pid namespace"]);
}

#[test]
fn a_container_in_the_hosts_network_namespace_is_refused() {
    // No network namespace in the spec leaves the container in the shim's,
    // which is the host's (ctr run --net-host).
    let c = spec_container(|spec| {
        let namespaces = spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces");
        namespaces.retain(|ns| ns["type"] != "network");
    });
    create_refused(c, &["network"]);
}

#[test]
fn a_spec_with_hooks_is_refused() {
    let c = spec_container(|spec| {
        let hook = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "true"]});
        spec["hooks"] = serde_json::json!({
            "prestart": [hook.clone()], "createRuntime": [hook.clone()], "startContainer": [hook],
        });
    });
    create_refused(c, &["hook"]);
}

#[test]
fn a_container_with_a_daemon_read_label_is_refused() {
    // containerd's restart monitor starts tasks from containerd.io/restart.*
    // labels, logging to the URI a label names.
    let mut c = spec_container(|_| {});
    c.labels.insert(
        "containerd.io/restart.loguri".to_string(),
        "binary:///bin/sh".to_string(),
    );
    create_refused(c, &["containerd.io/restart.loguri"]);
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
    let result = raw::block_on(raw::create_container(raw::container(&id, &spec)));
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
    let result = raw::block_on(raw::create_container(raw::container(&id, &spec)));
    assert_status_refused(
        result,
        &["duplicate", "process"],
        "a spec with two \"process\" keys",
    );
    assert_nothing_new(&before, "Containers.Create with a duplicate key");
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

// --- tasks: rootfs and stdio are the gateway's (rule 4) -------------------------------

/// What a refusal of client stdio names: the stream, or the relay it must be.
const STDIO_REASONS: &[&str] = &["stdin", "stdout", "stderr", "relay", "stdio"];

/// A container created by berth (no task yet).
fn created(cleanup: &mut Cleanup) -> String {
    let name = unique("raw-created");
    cleanup.container(&name);
    let out = docker(&["create", "--name", &name, "busybox", "true"]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(is_full_id(&id), "create prints the container ID:\n{out}");
    id
}

/// A container started by berth.
fn running(cleanup: &mut Cleanup) -> String {
    let name = unique("raw-target");
    cleanup.container(&name);
    let out = docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
    out.ok();
    out.stdout.trim().to_string()
}

/// Sends Tasks.Create for a berth-created container, changed by `edit`,
/// between two snapshots; asserts a refusal naming one of `reasons`.
#[track_caller]
fn task_refused(reasons: &[&str], edit: impl FnOnce(&mut CreateTaskRequest)) {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let id = created(&mut cleanup);
    let mut req = CreateTaskRequest {
        container_id: id.clone(),
        ..Default::default()
    };
    edit(&mut req);
    let before = Snapshot::take();
    let result = raw::block_on(raw::create_task(req));
    let what = format!("Tasks.Create of {id}");
    assert_status_refused(result, reasons, &what);
    assert_nothing_new(&before, &what);
}

#[test]
fn a_task_writing_to_a_host_path_is_refused() {
    // A plain path makes the shim open that existing host file for
    // appending, as root.
    let mut cleanup = Cleanup::new();
    let victim = std::env::temp_dir().join(unique("victim"));
    std::fs::write(&victim, b"").expect("victim file");
    cleanup.path(&victim);
    let path = victim.to_string_lossy().into_owned();
    task_refused(STDIO_REASONS, |req| {
        req.stdout = path.clone();
        req.stderr = path;
    });
    let len = std::fs::metadata(&victim).expect("victim file").len();
    assert_eq!(len, 0, "the shim wrote into {}", victim.display());
}

#[test]
fn a_task_logging_to_a_host_file_is_refused() {
    let mut cleanup = Cleanup::new();
    let log = std::env::temp_dir().join(unique("log-uri"));
    cleanup.path(&log);
    let uri = format!("file://{}", log.display());
    task_refused(STDIO_REASONS, |req| {
        req.stdout = uri.clone();
        req.stderr = uri;
    });
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
    task_refused(STDIO_REASONS, |req| {
        req.stdout = uri.clone();
        req.stderr = uri;
    });
    assert!(
        !marker.exists(),
        "a binary:// log URI ran a host program: {} exists",
        marker.display()
    );
}

#[test]
fn a_task_with_a_client_rootfs_is_refused() {
    task_refused(&["rootfs"], |req| req.rootfs = vec![raw::bind("/")]);
}

#[test]
fn a_task_with_a_runtime_path_is_refused() {
    task_refused(&["runtime path", "runtime_path"], |req| {
        req.runtime_path = "/bin/sh".to_string()
    });
}

#[test]
fn a_task_with_options_is_refused() {
    task_refused(&["option"], |req| {
        req.options = Some(prost_types::Any {
            type_url: "containerd.runc.v1.CreateOptions".to_string(),
            value: vec![0x08, 0x01],
        })
    });
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
    let result = raw::block_on(raw::checkpoint(&id));
    assert_status_refused(result, &["checkpoint", "unimplemented"], "Tasks.Checkpoint");
    let result = raw::block_on(raw::update_task(&id));
    assert_status_refused(result, &["update", "unimplemented"], "Tasks.Update");
    assert_nothing_new(&before, "Tasks.Checkpoint and Update");
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
fn a_prepared_snapshot_does_not_hand_out_host_paths() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("prepare");
    // Prepare is served (berth's run needs it) with its mounts emptied: they
    // name overlay directories on the host.
    let prepared = raw::block_on(raw::prepare("overlayfs", &key, &busybox_fixture().chain_id));
    let mounts = prepared
        .unwrap_or_else(|s| panic!("Snapshots.Prepare refused: {:?}: {}", s.code(), s.message()));
    let shown = format!("{mounts:?}");
    raw::block_on(raw::remove_snapshot(&key))
        .unwrap_or_else(|s| panic!("Snapshots.Remove refused: {:?}: {}", s.code(), s.message()));
    for host in ["/var/lib/berth-stack", "upperdir", "lowerdir", "workdir"] {
        assert!(
            !shown.contains(host),
            "Prepare handed the client host mounts ({host}): {shown}"
        );
    }
    assert_nothing_new(&before, "prepare then remove");
}

#[test]
fn a_snapshot_of_another_snapshotter_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("native");
    let result = raw::block_on(raw::prepare("native", &key, ""));
    if result.is_ok() {
        let _ = real_ctr(&["snapshots", "--snapshotter", "native", "rm", &key]);
    }
    let result = result.map(|_| ());
    assert_status_refused(result, &["native"], "Snapshots.Prepare on native");
    assert_nothing_new(&before, "Snapshots.Prepare on native");
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
    assert_status_refused(result, &["unimplemented"], "Content.Write");
    assert_nothing_new(&before, "Content.Write");
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
    assert_status_refused(result, &["unimplemented"], "Diff.Apply");
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
    assert_status_refused(result, &["unimplemented"], "Diff.Diff");
    assert_nothing_new(&before, "Diff.Diff");
}

// --- labels and leases on snapshots and leases (rule 3) ------------------------------

#[test]
fn a_snapshot_with_a_gc_label_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("gc-label");
    let result = raw::block_on(raw::prepare_labelled(
        &key,
        &busybox_fixture().chain_id,
        &[("containerd.io/gc.root", "yes")],
    ));
    if result.is_ok() {
        let _ = raw::block_on(raw::remove_snapshot(&key));
    }
    assert_status_refused(
        result,
        &["containerd.io/", "daemon acts on"],
        "Snapshots.Prepare with a gc.root label",
    );
    assert_nothing_new(&before, "Snapshots.Prepare with a gc.root label");
}

#[test]
fn a_lease_with_a_gc_root_label_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let id = unique("lease-gc");
    let result = raw::block_on(raw::create_lease(&id, &[("containerd.io/gc.root", "yes")]));
    if result.is_ok() {
        let _ = raw::block_on(raw::delete_lease(&id));
    }
    assert_status_refused(
        result,
        &["daemon acts on"],
        "Leases.Create with a gc.root label",
    );
    assert_nothing_new(&before, "Leases.Create with a gc.root label");
}

#[test]
fn a_lease_named_like_the_gateways_own_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let id = format!("berth-prepare-{}", unique("squat"));
    let result = raw::block_on(raw::create_lease(&id, &[]));
    if result.is_ok() {
        let _ = raw::block_on(raw::delete_lease(&id));
    }
    assert_status_refused(
        result,
        &["reserved for the gateway"],
        "Leases.Create of a berth- lease",
    );
    assert_nothing_new(&before, "Leases.Create of a berth- lease");
}
