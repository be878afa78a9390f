//! The input document the Rego policies see (`input` in `policies/`).
//!
//! It is berth's own, versioned schema — never a raw protobuf message or a
//! client's JSON. Admission computes every fact here in Rust
//! (`admission/facts.rs`), per item and strictly, so the policies only map
//! facts to reasons: a list named after a refusal (`outside_default`,
//! `refused_tmpfs_options`, `over_kernel_paths`…) holds the items that
//! refusal is about, and is empty for a request the boundary accepts. A
//! policy therefore never loops over a request's ordinary items, which is
//! what keeps a decision within its time budget
//! (`architecture/benchmarks.md`). Every field is always present: an absent
//! optional value is `null`, an empty list `[]`, so a rule can never be
//! skipped because a key is missing.
//!
//! Schema, version 2 (`input.version == 2`):
//!
//! ```text
//! input
//! ├─ version   2
//! ├─ method    "containers.create" | "containers.update" | "tasks.create"
//! │            | "tasks.exec" | any other served method ("images.list", …)
//! ├─ object    id of the object the request names (container id, image name…)
//! ├─ sandbox   { namespace, snapshotter, netns_path, volume_roots: [path] }
//! └─ request   one of, by `kind`:
//!    ├─ "container_create"
//!    │    id, image, snapshotter, labels: [key], extensions: [key],
//!    │    sandbox_field: string (Container.sandbox), runtime: { name, options: bool },
//!    │    annotations: [key], network_mode: "sandbox" | "none" | other value of
//!    │      the `berth.network` annotation,
//!    │    root: { path, readonly, absolute, normalized },
//!    │    process: Process (below),
//!    │    mounts: {
//!    │      binds: [ { destination, source,
//!    │                 bind: { source_absolute, source_normalized, under_volume_root,
//!    │                         exists, through_symlink, resolved } } ],
//!    │      untyped: [destination]  (no type, not a bind),
//!    │      unsupported: [ { type, destination } ]  (neither bind, tmpfs nor a system type),
//!    │      misplaced: [ { type, destination, places: [path] } ]  (a system type away
//!    │        from its places),
//!    │      writable_kernel: [destination]  (sysfs, cgroup, cgroup2 without "ro"),
//!    │      refused_bind_options, refused_tmpfs_options: [ { option, destination } ],
//!    │      relative_destinations, unnormalized_destinations: [destination],
//!    │      over_kernel_paths: [destination]  (a bind or tmpfs at or below /proc, /sys),
//!    │      over_root: bool  (a bind or tmpfs at /) },
//!    │    hooks: [kind with at least one hook, e.g. "prestart"],
//!    │    linux: { namespaces: { missing: [required type],
//!    │                           unknown: [type outside the allowed set, not "user"],
//!    │                           duplicates: [type], user: bool,
//!    │                           joined: [ { type, path } ]  (given with a path) },
//!    │             devices: [ { path, type, major, minor } ],
//!    │             device_rules: { given: ["c 1:3 rwm", …]  (allow rules of
//!    │                               resources.devices), outside_default: [rule] },
//!    │             seccomp: bool, sysctl: [key],
//!    │             unmasked_paths: [required masked or read-only path the spec leaves out],
//!    │             id_mappings: bool, mount_label, rootfs_propagation,
//!    │             pids_limit: null | int, unified: [key], cpu_realtime: bool }
//!    ├─ "container_update"
//!    │    id, paths: [field mask path], label_keys: [key the update writes or deletes]
//!    ├─ "task_create"
//!    │    container_id, stdio: Stdio, rootfs: int (count), checkpoint: bool,
//!    │    options: bool, runtime_path
//!    ├─ "task_exec"
//!    │    container_id, exec_id, stdio: Stdio, process: Process,
//!    │    container_capabilities: [cap]  (bounding set of the container)
//!    ├─ "solve"  (BuildKit Control.Solve; fields documented on
//!    │    `buildkit::solve::SolveFacts`)
//!    └─ "generic"  (no fields)
//!
//! Process = { cwd: { path, absolute, normalized, under_proc },
//!             terminal, user: { uid, gid, additional_gids },
//!             env_names: [name], capabilities: { bounding, effective,
//!             inheritable, permitted, ambient: [ "CAP_…" ],
//!             outside_default: [cap in any set but not in docker's default set] },
//!             no_new_privileges: null | bool, apparmor_profile, selinux_label,
//!             oom_score_adj: null | int,
//!             rlimits: { given: [ { type, hard, soft } ], unknown: [type],
//!                        above_max: [ { type, hard, max } ] } }
//! Stdio   = { stdin, stdout, stderr: { value, kind: "none" | "relay" | "path" | "uri" } }
//! ```
//!
//! A path is `absolute` when it starts with `/`, `normalized` when no
//! component is `.` or `..`; "at or below" compares components, so `//proc`
//! and `/proc/` are below `/proc` and `/procfs` is not. Lists of names are
//! sorted, so equal requests give equal documents.
//!
//! Version 2 replaced the raw per-item lists of version 1 (mount options,
//! namespace entries, masked paths) with these facts.

use serde::{Deserialize, Serialize};

/// Bump when a field changes meaning or disappears; the policies check it.
pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Schema version of this document ([`VERSION`]).
    pub version: u32,
    /// e.g. "containers.create", "tasks.exec", "namespaces.create".
    pub method: String,
    /// The id or name of the object the request is about ("" when none).
    pub object: String,
    pub sandbox: SandboxFacts,
    pub request: Request,
}

impl PolicyInput {
    pub fn new(method: &str, object: &str, sandbox: SandboxFacts, request: Request) -> Self {
        Self {
            version: VERSION,
            method: method.into(),
            object: object.into(),
            sandbox,
            request,
        }
    }
}

/// What the gateway's configuration says about the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxFacts {
    pub namespace: String,
    pub snapshotter: String,
    pub netns_path: String,
    pub volume_roots: Vec<String>,
}

/// The request, by kind. (Built once per request and serialised at once,
/// so the size difference between variants does not matter.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Request {
    ContainerCreate(ContainerCreate),
    ContainerUpdate(ContainerUpdate),
    TaskCreate(TaskCreate),
    TaskExec(TaskExec),
    Solve(crate::buildkit::SolveFacts),
    Image(ImageFacts),
    Generic,
}

/// An image name the sandbox wants to use, as docker normalises it
/// (`admission::image`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFacts {
    /// "create", "update", "load", "run", "pull" or "push".
    pub action: String,
    /// As the request gave it.
    pub name: String,
    /// The name parses as an image reference (or is a dangling record).
    pub valid: bool,
    /// A record the gateway's loader names for an image without a name.
    pub dangling: bool,
    /// e.g. "docker.io/library/busybox:latest" ("" unless valid and named).
    pub reference: String,
    /// e.g. "docker.io", "10.201.0.4:5000".
    pub registry: String,
    /// e.g. "library/busybox".
    pub repository: String,
    /// `registry/repository`, what the policy's patterns match.
    pub repo: String,
    pub tag: Option<String>,
    /// The manifest digest the name points to, when the request says.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerCreate {
    pub id: String,
    pub image: String,
    /// As requested; empty means containerd's default.
    pub snapshotter: String,
    /// Container label keys.
    pub labels: Vec<String>,
    /// Keys of `Container.extensions`.
    pub extensions: Vec<String>,
    /// `Container.sandbox` (a sandbox API id); berth never sets it.
    pub sandbox_field: String,
    pub runtime: RuntimeFacts,
    /// Spec annotation keys.
    pub annotations: Vec<String>,
    /// "sandbox" unless the `berth.network` annotation says otherwise.
    pub network_mode: String,
    pub root: RootFacts,
    pub process: ProcessFacts,
    pub mounts: MountFacts,
    /// Hook kinds with at least one hook ("prestart", "createRuntime"…).
    pub hooks: Vec<String>,
    pub linux: LinuxFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFacts {
    pub name: String,
    /// Whether `runtime.options` was given at all.
    pub options: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootFacts {
    /// As given (relative to the bundle).
    pub path: String,
    pub readonly: bool,
    pub absolute: bool,
    /// No `.` or `..` component.
    pub normalized: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessFacts {
    pub cwd: CwdFacts,
    pub terminal: bool,
    pub user: UserFacts,
    /// Names of the environment variables (values are not shown to policy).
    pub env_names: Vec<String>,
    pub capabilities: CapabilityFacts,
    pub no_new_privileges: Option<bool>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
    pub oom_score_adj: Option<i32>,
    pub rlimits: RlimitFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CwdFacts {
    pub path: String,
    pub absolute: bool,
    /// No `.` or `..` component.
    pub normalized: bool,
    /// At or below /proc (CVE-2024-21626).
    pub under_proc: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFacts {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Capability names as `CAP_…`, sorted, per set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityFacts {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
    /// Named in any set but outside docker's default set
    /// (`admission::DEFAULT_CAPS`).
    pub outside_default: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlimitFacts {
    /// As given, in spec order.
    pub given: Vec<Rlimit>,
    /// Types the boundary does not let a client set, sorted.
    pub unknown: Vec<String>,
    /// Limits whose hard value is above the boundary's maximum for the type.
    pub above_max: Vec<RlimitAboveMax>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// e.g. "RLIMIT_NOFILE".
    #[serde(rename = "type")]
    pub typ: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlimitAboveMax {
    #[serde(rename = "type")]
    pub typ: String,
    pub hard: u64,
    pub max: u64,
}

/// What the boundary finds in the spec's mounts. Each list names the mounts
/// one refusal is about (by destination, in spec order); a mount may appear
/// in several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountFacts {
    /// Mounts runc would bind-mount: type `bind`, or a `bind`/`rbind`
    /// option whatever the type says.
    pub binds: Vec<BindMount>,
    /// No type, and not a bind.
    pub untyped: Vec<String>,
    /// A type that is neither a bind, tmpfs nor a system type.
    pub unsupported: Vec<TypedMount>,
    /// A system type (proc, sysfs, …) away from the places it belongs.
    pub misplaced: Vec<MisplacedMount>,
    /// sysfs, cgroup or cgroup2 without the `ro` option.
    pub writable_kernel: Vec<String>,
    pub refused_bind_options: Vec<RefusedOption>,
    pub refused_tmpfs_options: Vec<RefusedOption>,
    pub relative_destinations: Vec<String>,
    /// A destination with a `.` or `..` component.
    pub unnormalized_destinations: Vec<String>,
    /// A bind or tmpfs at or below /proc or /sys.
    pub over_kernel_paths: Vec<String>,
    /// A bind or tmpfs at /.
    pub over_root: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindMount {
    pub destination: String,
    /// As given ("" when absent).
    pub source: String,
    pub bind: BindFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedMount {
    #[serde(rename = "type")]
    pub typ: String,
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MisplacedMount {
    #[serde(rename = "type")]
    pub typ: String,
    pub destination: String,
    /// Where a mount of this type may go.
    pub places: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedOption {
    pub option: String,
    pub destination: String,
}

/// Facts about a bind mount's host source, computed by the gateway without
/// following symlinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindFacts {
    pub source_absolute: bool,
    /// No `.` or `..` components.
    pub source_normalized: bool,
    /// Lexically below (or equal to) one of `sandbox.volume_roots`.
    pub under_volume_root: bool,
    /// Every component below the volume root exists (only checked when
    /// under a volume root).
    pub exists: bool,
    /// A component below the volume root is a symlink.
    pub through_symlink: bool,
    /// The host path the gateway would mount ("" unless all checks hold).
    pub resolved: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxFacts {
    pub namespaces: NamespaceFacts,
    pub devices: Vec<DeviceFacts>,
    pub device_rules: DeviceRuleFacts,
    /// Whether the client's spec has a seccomp profile (the gateway replaces
    /// it with its own either way; absence is how `--privileged` shows).
    pub seccomp: bool,
    pub sysctl: Vec<String>,
    /// Paths docker masks or makes read-only that the spec lists in
    /// neither `maskedPaths` nor `readonlyPaths`, sorted.
    pub unmasked_paths: Vec<String>,
    /// uidMappings or gidMappings given.
    pub id_mappings: bool,
    pub mount_label: String,
    pub rootfs_propagation: String,
    pub pids_limit: Option<i64>,
    /// Keys of `resources.unified`.
    pub unified: Vec<String>,
    /// cpu.realtimeRuntime or realtimePeriod given.
    pub cpu_realtime: bool,
}

/// Namespace types are "pid", "network", "mount", "ipc", "uts", "user",
/// "cgroup" or "time"; every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFacts {
    /// Required types not given (the container would share the host's).
    pub missing: Vec<String>,
    /// Types given that the boundary does not allow, except "user".
    pub unknown: Vec<String>,
    /// Types given more than once.
    pub duplicates: Vec<String>,
    /// A user namespace is given.
    pub user: bool,
    /// Namespaces given with a path (joined rather than created).
    pub joined: Vec<JoinedNamespace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinedNamespace {
    #[serde(rename = "type")]
    pub typ: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFacts {
    pub path: String,
    #[serde(rename = "type")]
    pub typ: String,
    pub major: i64,
    pub minor: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRuleFacts {
    /// Allow rules of `resources.devices`, as "c 1:3 rwm" (`*` for any
    /// number), sorted.
    pub given: Vec<String>,
    /// Those outside docker's default rules.
    pub outside_default: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerUpdate {
    pub id: String,
    /// The field mask; `["labels"]` when the client sent none (the gateway
    /// only ever forwards label changes).
    pub paths: Vec<String>,
    /// Label keys the update writes or deletes.
    pub label_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskCreate {
    pub container_id: String,
    pub stdio: StdioFacts,
    /// Number of client-supplied rootfs mounts.
    pub rootfs: usize,
    pub checkpoint: bool,
    pub options: bool,
    pub runtime_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskExec {
    pub container_id: String,
    pub exec_id: String,
    pub stdio: StdioFacts,
    pub process: ProcessFacts,
    /// The container's bounding set, as stored in containerd.
    pub container_capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioFacts {
    pub stdin: StreamFacts,
    pub stdout: StreamFacts,
    pub stderr: StreamFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFacts {
    pub value: String,
    /// "none" (empty), "relay" (`berth_proto::STDIO_RELAY`), "uri" (has a
    /// scheme, e.g. `binary://`, `file://`) or "path" (anything else).
    pub kind: String,
}

impl StreamFacts {
    pub fn classify(value: &str) -> Self {
        let kind = if value.is_empty() {
            "none"
        } else if value == berth_proto::STDIO_RELAY {
            "relay"
        } else if value.contains("://") || value.contains(':') && !value.starts_with('/') {
            "uri"
        } else {
            "path"
        };
        Self {
            value: value.to_string(),
            kind: kind.to_string(),
        }
    }
}

impl StdioFacts {
    pub fn new(stdin: &str, stdout: &str, stderr: &str) -> Self {
        Self {
            stdin: StreamFacts::classify(stdin),
            stdout: StreamFacts::classify(stdout),
            stderr: StreamFacts::classify(stderr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_classified() {
        for (value, kind) in [
            ("", "none"),
            (berth_proto::STDIO_RELAY, "relay"),
            ("/tmp/out", "path"),
            ("relative/file", "path"),
            ("binary:///usr/bin/logger?x=1", "uri"),
            ("file:///etc/shadow", "uri"),
            ("fifo:x", "uri"),
        ] {
            assert_eq!(StreamFacts::classify(value).kind, kind, "{value}");
        }
    }

    #[test]
    fn generic_request_round_trips() {
        let input = PolicyInput::new(
            "images.list",
            "",
            SandboxFacts {
                namespace: "ns".into(),
                snapshotter: "overlayfs".into(),
                netns_path: "/run/netns/x".into(),
                volume_roots: vec![],
            },
            Request::Generic,
        );
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(json["request"], serde_json::json!({"kind": "generic"}));
        let back: PolicyInput = serde_json::from_value(json).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn unknown_fields_are_refused_when_reading_back() {
        let json = serde_json::json!({
            "version": 1, "method": "m", "object": "", "extra": true,
            "sandbox": {"namespace": "", "snapshotter": "", "netns_path": "", "volume_roots": []},
            "request": {"kind": "generic"}
        });
        assert!(serde_json::from_value::<PolicyInput>(json).is_err());
    }
}
