//! Table tests of the facts: each classification, with the boundary cases
//! a client could use to slip past it.

use oci_spec::runtime::{LinuxCapabilities, LinuxNamespace, Mount, PosixRlimit};
use serde_json::{json, Value};

use super::*;
use crate::policy::input::BindFacts;
use crate::policy::testutil::tempdir;

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test value parses")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn path_shapes() {
    for (path, absolute, normalized, root, under_proc) in [
        ("/", true, true, true, false),
        ("//", true, true, true, false),
        ("", false, true, true, false),
        ("/proc", true, true, false, true),
        ("/proc/", true, true, false, true),
        ("//proc", true, true, false, true),
        ("/proc//self/fd/8", true, true, false, true),
        ("/procfs", true, true, false, false),
        ("/a/../proc", true, false, false, false),
        ("/proc/./x", true, false, false, true),
        ("proc/x", false, true, false, true),
        ("work", false, true, false, false),
        ("/x/...", true, true, false, false),
    ] {
        let s = PathShape::of(path);
        assert_eq!(
            (
                s.absolute,
                s.normalized,
                s.is_root(),
                s.at_or_below("/proc")
            ),
            (absolute, normalized, root, under_proc),
            "{path:?}"
        );
    }
}

#[test]
fn working_directory() {
    for (path, absolute, normalized, under_proc) in [
        ("/", true, true, false),
        ("/work", true, true, false),
        ("work", false, true, false),
        ("/tmp/../proc", true, false, false),
        ("/proc/self/fd/7", true, true, true),
        ("//proc/self/fd/7", true, true, true),
        ("/proc", true, true, true),
        ("/processes", true, true, false),
    ] {
        let c = cwd(path.to_string());
        assert_eq!(
            (c.absolute, c.normalized, c.under_proc, c.path.as_str()),
            (absolute, normalized, under_proc, path),
            "{path:?}"
        );
    }
}

#[test]
fn capabilities_outside_the_default_set() {
    let default = super::super::testkit::DEFAULT_CAP_NAMES;
    let caps = |v: Value| capabilities(Some(&from::<LinuxCapabilities>(v)));

    let docker = caps(json!({"bounding": default, "effective": default, "permitted": default}));
    assert!(docker.outside_default.is_empty(), "{docker:?}");
    assert_eq!(docker.bounding.len(), 14);

    // In any set, named once, sorted.
    let added = caps(json!({
        "bounding": ["CAP_SYS_ADMIN", "CAP_CHOWN"],
        "effective": ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"],
        "inheritable": ["CAP_BPF"],
        "permitted": [],
        "ambient": ["CAP_SYS_PTRACE", "CAP_KILL"]
    }));
    assert_eq!(
        added.outside_default,
        strings(&[
            "CAP_BPF",
            "CAP_NET_ADMIN",
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE"
        ])
    );
    assert_eq!(added.ambient, strings(&["CAP_KILL", "CAP_SYS_PTRACE"]));

    assert_eq!(capabilities(None), CapabilityFacts::default());
}

#[test]
fn rlimits_against_the_table() {
    let limits: Vec<PosixRlimit> = from(json!([
        {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1024},
        {"type": "RLIMIT_MEMLOCK", "hard": 67108865, "soft": 0},
        {"type": "RLIMIT_RTPRIO", "hard": 99, "soft": 99},
        {"type": "RLIMIT_AS", "hard": u64::MAX, "soft": u64::MAX},
        {"type": "RLIMIT_NICE", "hard": 40, "soft": 40},
        {"type": "RLIMIT_NOFILE", "hard": 1048577, "soft": 1024}
    ]));
    let f = rlimits(&limits);
    assert_eq!(f.unknown, strings(&["RLIMIT_NICE", "RLIMIT_RTPRIO"]));
    assert_eq!(
        f.above_max,
        vec![
            RlimitAboveMax {
                typ: "RLIMIT_MEMLOCK".into(),
                hard: 67108865,
                max: 67108864
            },
            RlimitAboveMax {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1048577,
                max: 1048576
            },
        ]
    );
    assert_eq!(f.given.len(), 6);
    assert_eq!(f.given[0].typ, "RLIMIT_NOFILE");
    assert_eq!(rlimits(&[]), RlimitFacts::default());
}

/// docker's system mounts, as berth's CLI sends them.
fn docker_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ]
}

fn mount_facts(extra: Vec<Value>) -> MountFacts {
    let mut all = docker_mounts();
    all.extend(extra);
    let given: Vec<Mount> = all.into_iter().map(from).collect();
    mounts(&[PathBuf::from("/nonexistent-volume-root")], &given)
}

fn option(option: &str, destination: &str) -> RefusedOption {
    RefusedOption {
        option: option.into(),
        destination: destination.into(),
    }
}

#[test]
fn docker_system_mounts_have_no_findings() {
    assert_eq!(mount_facts(vec![]), MountFacts::default());
}

#[test]
fn mount_options() {
    let f = mount_facts(vec![
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["suid", "size=1m", "mode=1777", "uid=0"]}),
        json!({"destination": "/t", "type": "tmpfs", "options": ["size=1m,huge=always", "dev", "exec", "rw"]}),
        json!({"destination": "/d", "type": "bind", "source": "/w/d", "options": ["rbind", "rshared", "ro", "suid"]}),
        // runc binds whatever the type says when an option says bind
        json!({"destination": "/e", "type": "tmpfs", "source": "/etc", "options": ["rbind", "size=1m"]}),
        // a system type's options are replaced by the gateway's
        json!({"destination": "/proc", "type": "proc", "options": ["suid"]}),
    ]);
    assert_eq!(
        f.refused_tmpfs_options,
        vec![
            option("suid", "/run"),
            option("size=1m,huge=always", "/t"),
            option("dev", "/t")
        ]
    );
    assert_eq!(
        f.refused_bind_options,
        vec![
            option("rshared", "/d"),
            option("suid", "/d"),
            option("size=1m", "/e")
        ]
    );
    let binds: Vec<(&str, &str)> = f
        .binds
        .iter()
        .map(|b| (b.destination.as_str(), b.source.as_str()))
        .collect();
    assert_eq!(binds, [("/d", "/w/d"), ("/e", "/etc")]);
    assert!(!f.binds[1].bind.under_volume_root);
}

#[test]
fn mount_types_and_places() {
    let f = mount_facts(vec![
        json!({"destination": "/x", "source": "/dev/sda1"}),
        json!({"destination": "/y", "source": "/w", "options": ["bind"]}),
        json!({"destination": "/mnt", "type": "overlay", "source": "overlay"}),
        json!({"destination": "/p", "type": "Proc"}),
        json!({"destination": "/hostproc", "type": "proc", "source": "proc"}),
        json!({"destination": "/proc/", "type": "proc"}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup2"}),
    ]);
    assert_eq!(f.untyped, strings(&["/x"]));
    assert_eq!(
        f.binds.len(),
        1,
        "an untyped mount with a bind option binds"
    );
    assert_eq!(
        f.unsupported,
        vec![
            TypedMount {
                typ: "overlay".into(),
                destination: "/mnt".into()
            },
            TypedMount {
                typ: "Proc".into(),
                destination: "/p".into()
            },
        ]
    );
    let misplaced: Vec<(&str, &str, Vec<String>)> = f
        .misplaced
        .iter()
        .map(|m| (m.typ.as_str(), m.destination.as_str(), m.places.clone()))
        .collect();
    assert_eq!(
        misplaced,
        [
            ("proc", "/hostproc", strings(&["/proc"])),
            ("proc", "/proc/", strings(&["/proc"]))
        ]
    );
    assert_eq!(f.writable_kernel, strings(&["/sys/fs/cgroup"]));
}

#[test]
fn kernel_trees_must_be_read_only() {
    for (options, writable) in [
        (json!(["ro"]), false),
        (json!(["nosuid", "ro", "nodev"]), false),
        (json!(["rw", "ro"]), false),
        (json!(["ro", "rw"]), true),
        (json!(["nosuid"]), true),
        (json!([]), true),
        (json!(["RO"]), true),
    ] {
        let m: Mount = from(json!({"destination": "/sys", "type": "sysfs", "options": options}));
        let f = mounts(&[], &[m]);
        assert_eq!(f.writable_kernel.len() == 1, writable, "{options}");
    }
    // A bind is judged as a bind, whatever its type says.
    let m: Mount = from(json!({"destination": "/sys", "type": "sysfs", "options": ["rbind"]}));
    assert!(mounts(&[], &[m]).writable_kernel.is_empty());
}

#[test]
fn mount_destinations() {
    let f = mount_facts(vec![
        json!({"destination": "run", "type": "tmpfs"}),
        json!({"destination": "/a/../etc", "type": "bind", "source": "/w"}),
        json!({"destination": "/proc/sys", "type": "tmpfs"}),
        json!({"destination": "//sys", "type": "bind", "source": "/w"}),
        json!({"destination": "/sys/", "type": "tmpfs"}),
        json!({"destination": "/sysfoo", "type": "tmpfs"}),
        json!({"destination": "/processes", "type": "bind", "source": "/w"}),
    ]);
    assert_eq!(f.relative_destinations, strings(&["run"]));
    assert_eq!(f.unnormalized_destinations, strings(&["/a/../etc"]));
    assert_eq!(
        f.over_kernel_paths,
        strings(&["/proc/sys", "//sys", "/sys/"])
    );
    assert!(!f.over_root);

    for root in ["/", "//", ""] {
        let m: Mount = from(json!({"destination": root, "type": "bind", "source": "/w"}));
        assert!(mounts(&[], &[m]).over_root, "{root:?}");
        let m: Mount = from(json!({"destination": root, "type": "tmpfs"}));
        assert!(mounts(&[], &[m]).over_root, "{root:?}");
    }
    // The system mounts themselves sit at /proc and /sys.
    let m: Mount = from(json!({"destination": "/", "type": "proc"}));
    let f = mounts(&[], &[m]);
    assert!(!f.over_root && f.over_kernel_paths.is_empty());
    assert_eq!(f.misplaced.len(), 1);
}

#[test]
fn bind_sources_are_resolved_below_the_volume_roots() {
    let dir = tempdir();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::os::unix::fs::symlink("/etc", ws.join("link")).unwrap();
    let bind = |source: &str| -> BindFacts {
        let m: Mount = from(json!({"destination": "/d", "type": "bind", "source": source}));
        mounts(std::slice::from_ref(&ws), &[m]).binds[0]
            .bind
            .clone()
    };
    let ws_str = ws.to_string_lossy().into_owned();
    let data = bind(&format!("{ws_str}/data"));
    assert!(data.under_volume_root && data.exists && !data.through_symlink);
    assert!(bind(&format!("{ws_str}/link")).through_symlink);
    assert!(!bind("data").source_absolute);
    assert!(!bind(&format!("{ws_str}/../x")).source_normalized);
    assert!(!bind("/etc").under_volume_root);
}

fn ns(v: Value) -> NamespaceFacts {
    let given: Vec<LinuxNamespace> = from(v);
    namespaces(&given)
}

#[test]
fn namespace_facts() {
    let docker = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "cgroup"}]);
    let f = ns(docker.clone());
    assert_eq!(
        (f.missing.len(), f.unknown.len(), f.duplicates.len(), f.user),
        (0, 0, 0, false)
    );
    assert!(f.joined.is_empty());

    let f = ns(json!([{"type": "mount"}, {"type": "network"}, {"type": "cgroup"}]));
    assert_eq!(f.missing, strings(&["ipc", "pid", "uts"]));

    let f = ns(json!([]));
    assert_eq!(f.missing.len(), 5);

    let mut extra = docker.as_array().unwrap().clone();
    extra.push(json!({"type": "user"}));
    extra.push(json!({"type": "time"}));
    extra.push(json!({"type": "pid", "path": "/proc/1/ns/pid"}));
    extra.push(json!({"type": "network", "path": "/run/netns/x"}));
    let f = ns(Value::Array(extra));
    assert!(f.user);
    assert_eq!(f.unknown, strings(&["time"]), "user has its own refusal");
    assert_eq!(f.duplicates, strings(&["network", "pid"]));
    assert_eq!(
        f.joined,
        vec![
            JoinedNamespace {
                typ: "network".into(),
                path: "/run/netns/x".into()
            },
            JoinedNamespace {
                typ: "pid".into(),
                path: "/proc/1/ns/pid".into()
            },
        ]
    );

    // An empty path creates a namespace, like no path.
    let f = ns(json!([{"type": "network", "path": ""}]));
    assert!(f.joined.is_empty());
}

#[test]
fn unmasked_system_paths() {
    let masked = strings(super::super::harden::MASKED_PATHS);
    let readonly = strings(super::super::harden::READONLY_PATHS);
    assert!(unmasked_paths(&masked, &readonly).is_empty());

    let without: Vec<String> = masked
        .iter()
        .filter(|p| *p != "/proc/kcore")
        .cloned()
        .collect();
    assert_eq!(
        unmasked_paths(&without, &readonly),
        strings(&["/proc/kcore"])
    );
    // Either list will do: a read-only path that is masked is still hidden.
    let mut all = masked.clone();
    all.extend(readonly.iter().cloned());
    assert!(unmasked_paths(&all, &[]).is_empty());

    let none = unmasked_paths(&[], &[]);
    assert_eq!(none.len(), 15);
    assert!(none.windows(2).all(|w| w[0] < w[1]), "sorted: {none:?}");
}

#[test]
fn device_rules_outside_the_defaults() {
    let f = device_rules(strings(&[
        "c 1:3 rwm",
        "b 8:0 rwm",
        "c 1:3 rwm",
        "a *:* rwm",
    ]));
    assert_eq!(f.given, strings(&["a *:* rwm", "b 8:0 rwm", "c 1:3 rwm"]));
    assert_eq!(f.outside_default, strings(&["a *:* rwm", "b 8:0 rwm"]));
    assert_eq!(device_rules(vec![]), DeviceRuleFacts::default());
}

#[test]
fn tables_agree_with_the_policy_data() {
    let data: Value = serde_json::from_slice(
        &std::fs::read(super::super::testkit::policy_dir().join("data.json")).unwrap(),
    )
    .unwrap();
    let b = &data["boundary"];
    let mut required: Vec<&str> = b["required_namespaces"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    required.sort();
    assert_eq!(required, boundary::REQUIRED_NAMESPACES);
    // Every privileged capability lies outside the default set, so a
    // --privileged request always names them in `outside_default`.
    for cap in b["privileged_capabilities"].as_array().unwrap() {
        let cap = cap.as_str().unwrap();
        assert!(
            !super::super::testkit::DEFAULT_CAP_NAMES.contains(&cap),
            "{cap}"
        );
    }
    // Tables the rules no longer read live here only.
    for moved in [
        "allowed_namespaces",
        "system_mounts",
        "bind_options",
        "tmpfs_options",
        "tmpfs_option_prefixes",
        "forbidden_destinations",
        "rlimits",
        "default_device_rules",
        "required_masked_paths",
        "required_readonly_paths",
    ] {
        assert!(b.get(moved).is_none(), "data.json still has {moved}");
    }
    for table in [
        &boundary::ALLOWED_NAMESPACES[..],
        &boundary::REQUIRED_NAMESPACES,
        &boundary::READ_ONLY_TYPES,
        &boundary::KERNEL_PATHS,
        &boundary::BIND_OPTIONS,
        &boundary::TMPFS_OPTIONS,
        &boundary::DEFAULT_DEVICE_RULES,
    ] {
        let mut seen = std::collections::BTreeSet::new();
        assert!(
            table.iter().all(|x| seen.insert(x)),
            "duplicate in {table:?}"
        );
    }
}
