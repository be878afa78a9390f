//! What every attack module shares: the base spec `ctr` would send, a
//! container made by berth to aim at, and the assertion that a gRPC call
//! was refused for the reason under test.

use std::sync::OnceLock;

use containerd_client::services::v1::Container;
use tonic::Code;

use crate::common::*;
use crate::raw;

/// Runs a host command (as root) and asserts success.
pub fn run_host(args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(args[0]);
    cmd.args(&args[1..]);
    let out = run(cmd, Input::Null, COMMAND_TIMEOUT);
    out.ok();
    out
}

/// ctr's default runtime spec (`ctr oci spec`) as JSON text.
pub fn base_spec() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| run_host(&["ctr", "oci", "spec"]).stdout)
}

/// ctr's default spec changed by `edit`, as JSON.
pub fn spec_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut spec: serde_json::Value =
        serde_json::from_str(base_spec()).expect("ctr oci spec prints JSON");
    edit(&mut spec);
    serde_json::to_string(&spec).expect("spec JSON")
}

/// ctr's default spec changed by `edit`, then with the text `placeholder`
/// (a JSON string, quotes included) replaced by `raw`: how a test writes
/// keys serde_json would never produce (case variants, duplicates, escapes).
pub fn spec_text(
    edit: impl FnOnce(&mut serde_json::Value),
    placeholder: &str,
    raw: &str,
) -> String {
    let spec = spec_with(edit);
    assert!(
        spec.contains(placeholder),
        "{placeholder} is not in the spec"
    );
    spec.replacen(placeholder, raw, 1)
}

/// A container with ctr's default spec changed by `edit`.
pub fn spec_container(edit: impl FnOnce(&mut serde_json::Value)) -> Container {
    raw::container(&unique("atk"), &spec_with(edit))
}

/// Asserts a gRPC refusal with one of `codes`, whose message names one of
/// `reasons` (ignoring case).
#[track_caller]
pub fn assert_status<T>(
    result: Result<T, tonic::Status>,
    codes: &[Code],
    reasons: &[&str],
    what: &str,
) -> tonic::Status {
    let status = match result {
        Ok(_) => panic!("{what}: the gateway accepted it"),
        Err(s) => s,
    };
    assert!(
        codes.contains(&status.code()),
        "{what}: expected one of {codes:?}, got {:?}: {}",
        status.code(),
        status.message()
    );
    let text = status.message().to_lowercase();
    assert!(
        reasons.iter().any(|r| text.contains(&r.to_lowercase())),
        "{what}: the refusal does not name {reasons:?}: {:?}: {}",
        status.code(),
        status.message()
    );
    status
}

/// A refusal by policy or a gateway rule: PermissionDenied naming a reason.
#[track_caller]
pub fn assert_denied<T>(result: Result<T, tonic::Status>, reasons: &[&str], what: &str) {
    assert_status(result, &[Code::PermissionDenied], reasons, what);
}

/// Sends Containers.Create for `container` between two snapshots of the real
/// containerd and asserts a PermissionDenied naming one of `reasons`.
#[track_caller]
pub fn create_refused(container: Container, reasons: &[&str]) {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let what = format!("Containers.Create of {}", container.id);
    let result = raw::block_on(raw::create_container(container));
    assert_denied(result, reasons, &what);
    assert_nothing_new(&before, &what);
}

/// Like `create_refused` for a spec given as text.
#[track_caller]
pub fn create_text_refused(spec: &str, reasons: &[&str]) {
    create_refused(raw::container(&unique("atk"), spec), reasons);
}

/// A container created by berth (no task yet).
pub fn created(cleanup: &mut Cleanup) -> String {
    let name = unique("atk-created");
    cleanup.container(&name);
    let out = docker(&["create", "--name", &name, "busybox", "true"]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(is_full_id(&id), "create prints the container ID:\n{out}");
    id
}

/// A container started by berth, running `sleep 300`.
pub fn running(cleanup: &mut Cleanup) -> String {
    let name = unique("atk-target");
    cleanup.container(&name);
    let out = docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(is_full_id(&id), "run -d prints the container ID:\n{out}");
    id
}

/// `ctr containers info` of `id` on the real containerd: its whole record.
pub fn real_record(id: &str) -> String {
    let out = real_ctr(&["containers", "info", id]);
    out.ok();
    out.stdout
}
