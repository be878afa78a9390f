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

    let seen = gateway_ctr(&["-n", OTHER_NAMESPACE, "containers", "ls", "-q"]);
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

    let namespaces = gateway_ctr(&["-n", OTHER_NAMESPACE, "namespaces", "ls", "-q"]);
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
    assert_raw_refused(&out, &before);
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
    assert_raw_refused(&out, &before);
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

/// `ctr run --rm FLAGS… busybox ID true` as the agent through the gateway.
fn ctr_run(flags: &[&str]) -> Out {
    let id = unique("ctr");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[BUSYBOX_REF, &id, "true"]);
    gateway_ctr(&args)
}

#[test]
fn ctr_run_with_another_runtime_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = ctr_run(&["--null-io", "--runtime", "io.containerd.runc.v1"]);
    assert_raw_refused(&out, &before);
}

#[test]
fn ctr_run_with_a_runtime_binary_path_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = ctr_run(&["--null-io", "--runc-binary", "/bin/sh"]);
    assert_raw_refused(&out, &before);
}

#[test]
fn ctr_run_privileged_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = ctr_run(&["--null-io", "--privileged"]);
    assert_raw_refused(&out, &before);
}

#[test]
fn ctr_run_with_a_host_bind_mount_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = ctr_run(&[
        "--null-io",
        "--mount",
        "type=bind,src=/etc,dst=/x,options=rbind:ro",
    ]);
    assert_raw_refused(&out, &before);
}

#[test]
fn ctr_run_joining_the_hosts_pid_namespace_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = ctr_run(&["--null-io", "--with-ns", "pid:/proc/1/ns/pid"]);
    assert_raw_refused(&out, &before);
}

/// Writes a runtime spec (ctr's default, plus `extra` merged at the top
/// level) where the agent can read it; returns its path.
fn spec_file(cleanup: &mut Cleanup, extra: serde_json::Value) -> String {
    let dir = agent_dir(cleanup, "spec");
    let out = run_host(&["ctr", "oci", "spec"]);
    let mut spec: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("ctr oci spec prints JSON");
    for (k, v) in extra.as_object().expect("an object") {
        spec[k] = v.clone();
    }
    let path = format!("{dir}/spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("spec JSON"))
        .expect("writing the spec");
    path
}

fn run_host(args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(args[0]);
    cmd.args(&args[1..]);
    let out = run(cmd, Input::Null, COMMAND_TIMEOUT);
    out.ok();
    out
}

#[test]
fn a_spec_with_hooks_is_refused_and_no_hook_runs() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let marker = std::env::temp_dir().join(unique("hook-ran"));
    cleanup.path(&marker);
    let touch = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]});
    let spec = spec_file(
        &mut cleanup,
        serde_json::json!({"hooks": {
            "prestart": [touch.clone()],
            "createRuntime": [touch.clone()],
            "startContainer": [touch],
        }}),
    );
    let before = Snapshot::take();
    let id = unique("hooks");
    let out = gateway_ctr(&["run", "--rm", "--null-io", "--config", &spec, &id]);
    assert_raw_refused(&out, &before);
    assert!(
        !marker.exists(),
        "a hook ran on the host: {} exists",
        marker.display()
    );
}

// --- tasks: stdio is never a client path or URI (rule 4) ------------------------------

#[test]
fn a_task_with_client_fifo_paths_is_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let fifo_dir = agent_dir(&mut cleanup, "fifo");
    let before = Snapshot::take();
    let out = ctr_run(&["--fifo-dir", &fifo_dir]);
    assert_raw_refused(&out, &before);
}

#[test]
fn a_task_logging_to_a_host_file_is_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let log = std::env::temp_dir().join(unique("log-uri"));
    cleanup.path(&log);
    let before = Snapshot::take();
    let out = ctr_run(&["--log-uri", &format!("file://{}", log.display())]);
    assert_raw_refused(&out, &before);
    assert!(
        !log.exists(),
        "the shim wrote the client's log file {}",
        log.display()
    );
}

#[test]
fn a_task_logging_to_a_host_binary_is_refused() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let marker = std::env::temp_dir().join(unique("binary-uri"));
    cleanup.path(&marker);
    // containerd would run `/bin/sh -c "touch MARKER"` as root on the host.
    let uri = format!("binary:///bin/sh?-c=touch%20{}", marker.display());
    let before = Snapshot::take();
    let out = ctr_run(&["--log-uri", &uri]);
    assert_raw_refused(&out, &before);
    assert!(
        !marker.exists(),
        "a binary:// log URI ran a host program: {} exists",
        marker.display()
    );
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
    assert_raw_refused(&out, &before);
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
    assert_raw_refused(&out, &before);
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
    assert_raw_refused(&out, &before);
    let out = gateway_ctr(&["tasks", "update", "--memory-limit", "0", &id]);
    assert_raw_refused(&out, &before);
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
    assert_raw_refused(&out, &before);
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
    assert_raw_refused(&out, &before);
}

#[test]
fn snapshot_diff_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let chain = &busybox_fixture().chain_id;
    let out = gateway_ctr(&["snapshots", "diff", chain]);
    assert_raw_refused(&out, &before);
}

#[test]
fn a_prepared_snapshot_does_not_hand_out_host_paths() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let key = unique("prepare");
    let chain = &busybox_fixture().chain_id;
    let out = gateway_ctr(&["snapshots", "prepare", "--mounts", &key, chain]);
    if out.code == 0 {
        for host in ["/var/lib/berth-stack", "upperdir", "lowerdir", "workdir"] {
            assert!(
                !out.stdout.contains(host),
                "Prepare handed the client host mounts ({host}):\n{out}"
            );
        }
        gateway_ctr(&["snapshots", "rm", &key]).ok();
        assert_nothing_new(&before, "prepare then remove");
    } else {
        assert_raw_refused(&out, &before);
    }
}

#[test]
fn writing_content_directly_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = sandbox_with(
        &[
            "ctr",
            "-a",
            GATEWAY_SOCKET,
            "content",
            "ingest",
            &unique("ingest"),
        ],
        Input::Bytes(b"not through the gateway's loader\n".to_vec()),
    );
    assert_raw_refused(&out, &before);
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
    assert_raw_refused(&out, &before);
}

// --- requests ctr cannot express --------------------------------------------------------

mod raw {
    //! containerd's messages sent straight to the gateway socket. The
    //! connection comes from the test process (root, on the host), not the
    //! agent: the gateway serves one sandbox and decides on the request alone.

    use containerd_client::services::v1::containers_client::ContainersClient;
    use containerd_client::services::v1::diff_client::DiffClient;
    use containerd_client::services::v1::{
        container, ApplyRequest, Container, CreateContainerRequest, DiffRequest,
    };
    use containerd_client::types::{Descriptor, Mount};
    use tonic::transport::{Channel, Endpoint};

    use super::common::GATEWAY_SOCKET;

    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f)
    }

    pub async fn channel() -> Channel {
        Endpoint::try_from("http://gateway.invalid")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(|_| async {
                let stream = tokio::net::UnixStream::connect(GATEWAY_SOCKET).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }))
            .await
            .expect("connecting to the gateway socket")
    }

    /// Containers.Create with `spec_json` sent as the exact bytes given.
    pub async fn create_container(id: &str, spec_json: &str) -> Result<(), tonic::Status> {
        let container = Container {
            id: id.to_string(),
            image: super::BUSYBOX_REF.to_string(),
            runtime: Some(container::Runtime {
                name: "io.containerd.runc.v2".to_string(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_string(),
                value: spec_json.as_bytes().to_vec(),
            }),
            snapshotter: "overlayfs".to_string(),
            snapshot_key: id.to_string(),
            ..Default::default()
        };
        let mut client = ContainersClient::new(channel().await);
        client
            .create(CreateContainerRequest {
                container: Some(container),
            })
            .await
            .map(|_| ())
    }

    pub fn bind(source: &str) -> Mount {
        Mount {
            r#type: "bind".to_string(),
            source: source.to_string(),
            target: String::new(),
            options: vec!["rbind".to_string(), "rw".to_string()],
        }
    }

    /// Diff.Apply of `layer` onto a bind mount of a host directory.
    pub async fn apply(layer: Descriptor, host_dir: &str) -> Result<(), tonic::Status> {
        let mut client = DiffClient::new(channel().await);
        let req = ApplyRequest {
            diff: Some(layer),
            mounts: vec![bind(host_dir)],
            ..Default::default()
        };
        client.apply(req).await.map(|_| ())
    }

    /// Diff.Diff between two host directories.
    pub async fn diff(left: &str, right: &str) -> Result<(), tonic::Status> {
        let mut client = DiffClient::new(channel().await);
        let req = DiffRequest {
            left: vec![bind(left)],
            right: vec![bind(right)],
            ..Default::default()
        };
        client.diff(req).await.map(|_| ())
    }
}

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
