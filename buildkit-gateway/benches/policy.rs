//! Cost of the gateway's decisions, without any I/O (target: a policy
//! decision ≤ 50 µs median; see architecture/benchmarks.md).
//!
//! - `decide_containers_create`: `PolicyEngine::decide` on the facts of
//!   `berth run --rm busybox true`.
//! - `decide_generic`: the decision every plain forwarded call pays
//!   (`containers.list`).
//! - `admit_containers_create`: the whole Containers.Create admission —
//!   strict parse of the spec, facts, policy, hardening, re-serialisation.
//!
//! `data/run-busybox-true.spec.json` is the spec berth's CLI builds for
//! `berth run --rm busybox true` (`cli/src/spec.rs` `build`, docker's
//! default seccomp profile included), as the gateway receives it.
//!
//! Run with `cargo bench -p berth-gateway --bench policy` (or `make bench`).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use berth_gateway::admission;
use berth_gateway::config::Config;
use berth_gateway::policy::input::{
    CapabilityFacts, ContainerCreate, LinuxFacts, MountFacts, NamespaceFacts, ProcessFacts,
    RlimitFacts, RootFacts, RuntimeFacts, SandboxFacts, UserFacts,
};
use berth_gateway::policy::{input::Request, PolicyEngine, PolicyInput};
use berth_gateway::sandbox::{Sandbox, RUNTIME};
use containerd_client::services::v1 as api;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const SPEC: &str = include_str!("data/run-busybox-true.spec.json");
const ID: &str = "5c1f0e2a9b7d43c68e1a2f3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f";
const IMAGE: &str = "docker.io/library/busybox:latest";

/// docker's default capability set, sorted as the policy input lists it.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// The sandbox of the local stack, as fixtures/stack/up.sh configures it.
fn sandbox() -> Sandbox {
    Sandbox::from_config(&Config {
        namespace: "berth-sandbox".into(),
        containerd_socket: "/run/berth-stack/containerd/containerd.sock".into(),
        listen_containerd: "/run/berth-stack/gateway/containerd.sock".into(),
        listen_buildkit: None,
        state_dir: "/var/lib/berth-stack/gateway".into(),
        policy_dir: policy_dir(),
        netns_path: "/run/netns/berth-sandbox".into(),
        proxy_url: "http://10.200.0.1:3128".into(),
        no_proxy: "localhost,127.0.0.1,::1".into(),
        volume_roots: vec!["/var/lib/berth-stack/workspace".into()],
        snapshotter: "overlayfs".into(),
    })
}

fn sandbox_facts(sb: &Sandbox) -> SandboxFacts {
    SandboxFacts {
        namespace: sb.namespace.clone(),
        snapshotter: sb.snapshotter.clone(),
        netns_path: sb.netns_path.to_string_lossy().into_owned(),
        volume_roots: sb
            .volume_roots
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The container berth's CLI sends for `berth run --rm busybox true`.
fn container() -> api::Container {
    let spec: serde_json::Value =
        serde_json::from_str(SPEC).expect("data/run-busybox-true.spec.json is JSON");
    api::Container {
        id: ID.into(),
        labels: HashMap::from([
            ("berth.name".to_string(), "bench_busybox".to_string()),
            ("berth.image".to_string(), "busybox".to_string()),
            (
                "berth.config".to_string(),
                r#"{"user":"","auto_remove":true}"#.to_string(),
            ),
        ]),
        image: IMAGE.into(),
        runtime: Some(api::container::Runtime {
            name: RUNTIME.into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: admission::SPEC_TYPE_URL.into(),
            value: serde_json::to_vec(&spec).expect("re-encoding the spec"),
        }),
        snapshotter: "overlayfs".into(),
        snapshot_key: ID.into(),
        ..Default::default()
    }
}

/// The facts admission computes from that container's spec.
fn create_input(sb: &Sandbox) -> PolicyInput {
    let mount = |destination: &str, typ: &str, source: &str, options: &[&str]| MountFacts {
        destination: destination.into(),
        typ: typ.into(),
        source: source.into(),
        options: strings(options),
        bind: None,
    };
    let namespace = |typ: &str| NamespaceFacts {
        typ: typ.into(),
        path: String::new(),
    };
    let request = ContainerCreate {
        id: ID.into(),
        image: IMAGE.into(),
        snapshotter: "overlayfs".into(),
        labels: strings(&["berth.config", "berth.image", "berth.name"]),
        extensions: vec![],
        sandbox_field: String::new(),
        runtime: RuntimeFacts {
            name: RUNTIME.into(),
            options: false,
        },
        annotations: vec![],
        network_mode: "sandbox".into(),
        root: RootFacts {
            path: "rootfs".into(),
            readonly: false,
        },
        process: ProcessFacts {
            cwd: "/".into(),
            terminal: false,
            user: UserFacts {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
            },
            env_names: strings(&["HOSTNAME", "PATH"]),
            capabilities: CapabilityFacts {
                bounding: strings(&DEFAULT_CAPS),
                effective: strings(&DEFAULT_CAPS),
                permitted: strings(&DEFAULT_CAPS),
                inheritable: vec![],
                ambient: vec![],
            },
            no_new_privileges: Some(false),
            apparmor_profile: None,
            selinux_label: None,
            oom_score_adj: None,
            rlimits: vec![RlimitFacts {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1_048_576,
                soft: 1_048_576,
            }],
        },
        mounts: vec![
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["ro", "nosuid", "noexec", "nodev"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
            ),
        ],
        hooks: vec![],
        linux: LinuxFacts {
            namespaces: ["pid", "ipc", "uts", "mount", "network", "cgroup"]
                .map(namespace)
                .to_vec(),
            devices: vec![],
            device_rules: vec![],
            seccomp: true,
            sysctl: vec![],
            masked_paths: strings(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/sys/devices/virtual/powercap",
                "/sys/firmware",
            ]),
            readonly_paths: strings(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
            id_mappings: false,
            mount_label: String::new(),
            rootfs_propagation: String::new(),
            pids_limit: None,
            unified: vec![],
            cpu_realtime: false,
        },
    };
    PolicyInput::new(
        "containers.create",
        ID,
        sandbox_facts(sb),
        Request::ContainerCreate(request),
    )
}

fn policy(c: &mut Criterion) {
    let engine = PolicyEngine::load(&policy_dir()).expect("policies/ loads");
    let sb = sandbox();

    // Benchmark the path a real request takes: each input must be allowed,
    // or the numbers would time a refusal instead.
    let create = create_input(&sb);
    let decision = engine.decide(&create);
    assert!(
        decision.allow,
        "the busybox run must be allowed by policies/: {decision:?}"
    );
    let list = PolicyInput::new("containers.list", "", sandbox_facts(&sb), Request::Generic);
    let decision = engine.decide(&list);
    assert!(
        decision.allow,
        "containers.list must be allowed by policies/: {decision:?}"
    );
    let container = container();
    if let Err(denied) = admission::container_create(&engine, &sb, container.clone()) {
        panic!("admission refuses the busybox run: {denied}");
    }

    let mut group = c.benchmark_group("policy");
    group.bench_function("decide_containers_create", |b| {
        b.iter(|| engine.decide(black_box(&create)))
    });
    group.bench_function("decide_generic", |b| {
        b.iter(|| engine.decide(black_box(&list)))
    });
    group.bench_function("admit_containers_create", |b| {
        b.iter_batched(
            || container.clone(),
            |c| admission::container_create(&engine, &sb, c),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
