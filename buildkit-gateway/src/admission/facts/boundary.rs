//! The boundary's tables that facts are computed against. Each says what a
//! docker-like request may contain; the policy refuses what falls outside
//! (the facts name it), and the hardening replaces most of it anyway.
//! `policies/data.json` keeps only what the rules still read (docker's
//! default and privileged capabilities, the reasons for missing namespaces,
//! …); a unit test checks that both sides agree where they overlap.

/// Namespaces a container must have of its own: without an entry it would
/// share the host's (`--pid host`, `--network host`…).
pub const REQUIRED_NAMESPACES: [&str; 5] = ["ipc", "mount", "network", "pid", "uts"];

/// Namespace types a spec may name (a user namespace has its own refusal).
pub const ALLOWED_NAMESPACES: [&str; 6] = ["cgroup", "ipc", "mount", "network", "pid", "uts"];

/// Mount types every container has, and the only places they may go (the
/// gateway replaces them with its own).
pub const SYSTEM_MOUNTS: [(&str, &[&str]); 6] = [
    ("cgroup", &["/sys/fs/cgroup"]),
    ("cgroup2", &["/sys/fs/cgroup"]),
    ("devpts", &["/dev/pts"]),
    ("mqueue", &["/dev/mqueue"]),
    ("proc", &["/proc"]),
    ("sysfs", &["/sys"]),
];

/// System mount types that must be read-only: a writable sysfs or cgroup
/// tree reaches host kernel settings.
pub const READ_ONLY_TYPES: [&str; 3] = ["cgroup", "cgroup2", "sysfs"];

/// Places no client bind or tmpfs may cover: the kernel's interfaces, which
/// the masked and read-only paths protect.
pub const KERNEL_PATHS: [&str; 2] = ["/proc", "/sys"];

/// Options a bind mount may carry (no `shared`/`rshared` propagation, no
/// `suid`, `dev`, remount or idmap options).
pub const BIND_OPTIONS: [&str; 17] = [
    "bind",
    "rbind",
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "noexec",
    "exec",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "noatime",
    "strictatime",
    "nodiratime",
];

/// Options a tmpfs may carry as they are.
pub const TMPFS_OPTIONS: [&str; 13] = [
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "noexec",
    "exec",
    "relatime",
    "norelatime",
    "noatime",
    "strictatime",
    "nodiratime",
    "private",
    "rprivate",
];

/// tmpfs options allowed with a value. The value may not hold a comma: runc
/// joins the options it does not know into the mount data, so a comma
/// would smuggle in further options.
pub const TMPFS_OPTION_PREFIXES: [&str; 6] =
    ["size=", "mode=", "uid=", "gid=", "nr_inodes=", "nr_blocks="];

/// rlimits a client may set, with the highest hard value allowed (`None`:
/// any value).
pub const RLIMITS: [(&str, Option<u64>); 12] = [
    ("RLIMIT_AS", None),
    ("RLIMIT_CORE", None),
    ("RLIMIT_CPU", None),
    ("RLIMIT_DATA", None),
    ("RLIMIT_FSIZE", None),
    ("RLIMIT_LOCKS", None),
    ("RLIMIT_MEMLOCK", Some(67_108_864)),
    ("RLIMIT_MSGQUEUE", None),
    ("RLIMIT_NOFILE", Some(1_048_576)),
    ("RLIMIT_NPROC", None),
    ("RLIMIT_SIGPENDING", None),
    ("RLIMIT_STACK", None),
];

/// docker's default device cgroup allow rules, as facts write them.
pub const DEFAULT_DEVICE_RULES: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// Paths docker masks; a spec without one of them asks to unmask it
/// (`--security-opt systempaths=unconfined`).
pub const REQUIRED_MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/firmware",
];

/// Paths docker makes read-only.
pub const REQUIRED_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
