//! Requests as berth's CLI (docker-like) builds them, and a sandbox with a
//! real workspace directory, for the admission tests and the golden cases.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use containerd_client::services::v1 as api;
use prost_types::Any;
use serde_json::{json, Value};

use super::harden::{MASKED_PATHS, READONLY_PATHS};
use super::{PROCESS_TYPE_URL, SPEC_TYPE_URL};
use crate::policy::testutil::{tempdir, TempDir};
use crate::policy::PolicyEngine;
use crate::sandbox::{Sandbox, RUNTIME};

pub const NETNS: &str = "/run/netns/berth-sandbox";
pub const PROXY: &str = "http://10.200.0.1:3128";
pub const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8";

pub fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// The repository's policies, loaded once.
pub fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::load(&policy_dir()).expect("policies/ loads"))
}

/// A sandbox whose volume root is a fresh directory holding `data/` (a
/// directory), `file` and `link -> /etc`; `outside/` is next to the root.
pub struct World {
    pub dir: TempDir,
    pub sb: Sandbox,
}

impl World {
    pub fn new() -> Self {
        let dir = tempdir();
        let ws = dir.path().join("workspace");
        std::fs::create_dir_all(ws.join("data/sub")).unwrap();
        std::fs::write(ws.join("file"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", ws.join("link")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let mut proxy_env = Vec::new();
        for (name, value) in [
            ("HTTP_PROXY", PROXY),
            ("HTTPS_PROXY", PROXY),
            ("ALL_PROXY", PROXY),
            ("NO_PROXY", ""),
        ] {
            proxy_env.push((name.to_string(), value.to_string()));
            proxy_env.push((name.to_lowercase(), value.to_string()));
        }
        let sb = Sandbox {
            namespace: "berth-sandbox".into(),
            netns_path: NETNS.into(),
            proxy_env,
            proxy_ca: None,
            ca_env: Vec::new(),
            volume_roots: vec![ws],
            snapshotter: "overlayfs".into(),
            state_dir: dir.path().join("state"),
            userns: None,
        };
        Self { dir, sb }
    }

    pub fn workspace(&self) -> String {
        self.sb.volume_roots[0].to_string_lossy().into_owned()
    }

    pub fn outside(&self) -> String {
        self.dir
            .path()
            .join("outside")
            .to_string_lossy()
            .into_owned()
    }
}

pub const DEFAULT_CAP_NAMES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability docker's --privileged grants on a current kernel.
pub const ALL_CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The process of `docker run busybox sh`.
pub fn process() -> Value {
    json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
        "args": ["sh"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=3f2a9c1b7d4e",
            "http_proxy=http://elsewhere:8080",
            "Https_Proxy=http://elsewhere:8080"
        ],
        "cwd": "/",
        "capabilities": {
            "bounding": DEFAULT_CAP_NAMES,
            "effective": DEFAULT_CAP_NAMES,
            "permitted": DEFAULT_CAP_NAMES
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
        "noNewPrivileges": false,
        "oomScoreAdj": 0
    })
}

/// The spec of `docker run busybox sh`, as a docker-like client builds it
/// (plus one masked path of its own, `/proc/extra`).
pub fn spec() -> Value {
    let mut masked: Vec<&str> = MASKED_PATHS.to_vec();
    masked.push("/proc/extra");
    json!({
        "ociVersion": "1.1.0",
        "process": process(),
        "root": {"path": "rootfs"},
        "hostname": "3f2a9c1b7d4e",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}
        ],
        "annotations": {"org.opencontainers.image.ref.name": "busybox"},
        "linux": {
            "resources": {
                "devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 136, "access": "rwm"}
                ],
                "memory": {"limit": 536870912}
            },
            "cgroupsPath": "/default/3f2a9c1b7d4e",
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}
            ],
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
            },
            "maskedPaths": masked,
            "readonlyPaths": READONLY_PATHS
        }
    })
}

pub fn any(type_url: &str, value: &Value) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: serde_json::to_vec(value).unwrap(),
    }
}

/// The container record `docker run` creates around `spec`.
pub fn container(spec: &Value) -> api::Container {
    api::Container {
        id: ID.to_string(),
        labels: [("berth.name".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
        image: "docker.io/library/busybox:latest".into(),
        runtime: Some(api::container::Runtime {
            name: RUNTIME.into(),
            options: None,
        }),
        spec: Some(any(SPEC_TYPE_URL, spec)),
        snapshotter: "overlayfs".into(),
        snapshot_key: ID.into(),
        ..Default::default()
    }
}

/// A bind mount as `-v source:destination[:ro]` writes it.
pub fn bind(source: &str, destination: &str) -> Value {
    json!({"destination": destination, "type": "bind", "source": source, "options": ["rbind", "rprivate"]})
}

pub fn exec_request(process: &Value) -> api::ExecProcessRequest {
    api::ExecProcessRequest {
        container_id: ID.into(),
        exec_id: "exec-1".into(),
        stdout: berth_proto::STDIO_RELAY.into(),
        stderr: berth_proto::STDIO_RELAY.into(),
        spec: Some(any(PROCESS_TYPE_URL, process)),
        ..Default::default()
    }
}

pub fn task_request() -> api::CreateTaskRequest {
    api::CreateTaskRequest {
        container_id: ID.into(),
        stdin: berth_proto::STDIO_RELAY.into(),
        stdout: berth_proto::STDIO_RELAY.into(),
        stderr: berth_proto::STDIO_RELAY.into(),
        ..Default::default()
    }
}
