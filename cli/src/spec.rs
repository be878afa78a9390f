//! The OCI runtime spec of a container, built as docker's daemon builds it.
//!
//! The CLI states faithfully what the user asked for — including dangerous
//! requests such as `--privileged` or `--pid host` — and never refuses them
//! itself: the gateway decides with policy and hardens what it forwards.
//! Host-path fields (rootfs mounts, cgroups path, network namespace path,
//! stdio) are left to the gateway.

mod seccomp;

use serde_json::{json, Value};

/// docker's default PATH for a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// CFS period docker uses for `--cpus`.
const CPU_PERIOD: u64 = 100_000;

/// docker's default capability set, in docker's order.
pub const DEFAULT_CAPS: &[&str] = &[
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

/// Every Linux capability, by number.
pub const ALL_CAPS: &[&str] = &[
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

/// docker's default masked paths (hidden behind an empty read-only mount).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's default read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The process of a container or exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInput {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub terminal: bool,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seccomp {
    /// docker's default profile for the process's capabilities.
    Default,
    /// `--security-opt seccomp=unconfined` or `--privileged`: no filter.
    Unconfined,
    /// `--security-opt seccomp=<file>`: the user's profile.
    Profile(Value),
}

/// A `-v SRC:DST[:OPTS]` bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// `shared`, `rslave`, … when the user named one.
    pub propagation: Option<String>,
}

/// A `--device` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: String,
    /// `c` or `b`.
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    /// cgroup permissions, `rwm` by default.
    pub permissions: String,
}

/// Which namespaces the user asked to share with the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostNamespaces {
    pub pid: bool,
    pub ipc: bool,
    pub uts: bool,
    pub network: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory: Option<i64>,
    /// `--cpus` in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// Everything the spec of a container is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecInput {
    pub process: ProcessInput,
    pub hostname: String,
    pub read_only_rootfs: bool,
    pub binds: Vec<Bind>,
    pub privileged: bool,
    pub seccomp: Seccomp,
    /// `--security-opt systempaths=unconfined`: no masked or read-only paths.
    pub unmask_system_paths: bool,
    pub host: HostNamespaces,
    /// `--ipc none`: a private IPC namespace without /dev/shm.
    pub ipc_none: bool,
    /// `--network none`: asks the gateway for an empty network namespace.
    pub network_none: bool,
    pub devices: Vec<Device>,
    pub resources: Resources,
}

/// The OCI spec (as JSON) of a container.
pub fn build(input: &SpecInput) -> Value {
    let mut namespaces = Vec::new();
    for (kind, shared) in [
        ("pid", input.host.pid),
        ("ipc", input.host.ipc),
        ("uts", input.host.uts),
        ("mount", false),
        ("network", input.host.network),
        ("cgroup", false),
    ] {
        // Sharing a namespace with the host is expressed, as in docker's
        // spec, by leaving its entry out; the gateway sees and decides.
        if !shared {
            namespaces.push(json!({ "type": kind }));
        }
    }

    let mut resources = json!({
        "devices": device_rules(input),
    });
    if let Some(limit) = input.resources.memory {
        resources["memory"] = json!({ "limit": limit });
    }
    if let Some(nano) = input.resources.nano_cpus {
        let quota = nano as i128 * CPU_PERIOD as i128 / 1_000_000_000;
        resources["cpu"] = json!({ "quota": quota as i64, "period": CPU_PERIOD });
    }
    if let Some(pids) = input.resources.pids_limit.filter(|p| *p > 0) {
        resources["pids"] = json!({ "limit": pids });
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
    });
    if !input.privileged && !input.unmask_system_paths {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    match &input.seccomp {
        Seccomp::Unconfined => {}
        _ if input.privileged => {}
        Seccomp::Default => {
            linux["seccomp"] = seccomp::default_profile(&input.process.capabilities)
        }
        Seccomp::Profile(p) => linux["seccomp"] = p.clone(),
    }
    if !input.devices.is_empty() {
        linux["devices"] = Value::Array(
            input
                .devices
                .iter()
                .map(|d| {
                    json!({
                        "path": d.path,
                        "type": d.kind,
                        "major": d.major,
                        "minor": d.minor,
                        "fileMode": d.file_mode,
                        "uid": 0,
                        "gid": 0,
                    })
                })
                .collect(),
        );
    }

    let mut spec = json!({
        "ociVersion": "1.1.0",
        "process": process(&input.process),
        "root": { "path": "rootfs", "readonly": input.read_only_rootfs },
        "hostname": input.hostname,
        "mounts": mounts(input),
        "linux": linux,
    });
    if input.network_none {
        spec["annotations"] = json!({ berth_proto::labels::NETWORK: "none" });
    }
    spec
}

/// The OCI process object, shared by containers and execs.
pub fn process(p: &ProcessInput) -> Value {
    let caps = &p.capabilities;
    let mut user = json!({ "uid": p.uid, "gid": p.gid });
    if !p.additional_gids.is_empty() {
        user["additionalGids"] = json!(p.additional_gids);
    }
    let mut process = json!({
        "terminal": p.terminal,
        "user": user,
        "args": p.args,
        "env": p.env,
        "cwd": p.cwd,
        // None inheritable or ambient: CVE-2022-24769.
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        // No rlimits, as docker: the process inherits the runtime's. A fixed
        // RLIMIT_NOFILE above the shim's hard limit fails runc's setrlimit
        // (EPERM) on hosts that run containerd with a lower limit.
        "noNewPrivileges": p.no_new_privileges,
    });
    if let Some(profile) = &p.apparmor_profile {
        process["apparmorProfile"] = json!(profile);
    }
    process
}

fn mounts(input: &SpecInput) -> Vec<Value> {
    // Privileged containers get /sys and the cgroup tree writable, as in docker.
    let sys_mode = if input.privileged { "rw" } else { "ro" };
    let mut m = vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
        json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", sys_mode] }),
        json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": [sys_mode, "nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"] }),
    ];
    if !input.ipc_none {
        m.push(
            json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"] }),
        );
    }
    for b in &input.binds {
        let mut options = vec![
            "rbind".to_string(),
            if b.read_only { "ro" } else { "rw" }.to_string(),
        ];
        if let Some(p) = &b.propagation {
            options.push(p.clone());
        }
        m.push(json!({
            "destination": b.destination,
            "type": "bind",
            "source": b.source,
            "options": options,
        }));
    }
    m
}

/// Device cgroup rules: deny everything (runc adds its default allowlist of
/// /dev/null, /dev/zero, …), then the user's devices; `--privileged` allows all.
fn device_rules(input: &SpecInput) -> Vec<Value> {
    if input.privileged {
        return vec![json!({ "allow": true, "access": "rwm" })];
    }
    let mut rules = vec![json!({ "allow": false, "access": "rwm" })];
    for d in &input.devices {
        rules.push(json!({
            "allow": true,
            "type": d.kind,
            "major": d.major,
            "minor": d.minor,
            "access": d.permissions,
        }));
    }
    rules
}

/// Normalizes `--cap-add`/`--cap-drop` values: `net_admin` → `CAP_NET_ADMIN`,
/// `ALL` kept. `flag` is docker's field name for the error (`CapAdd`).
fn normalize_caps(values: &[String], flag: &str) -> Result<(Vec<String>, bool), String> {
    let mut caps = Vec::new();
    let mut all = false;
    for v in values {
        let upper = v.trim().to_ascii_uppercase();
        if upper == "ALL" {
            all = true;
            continue;
        }
        let cap = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if !ALL_CAPS.contains(&cap.as_str()) {
            return Err(format!("invalid {flag}: unknown capability: \"{cap}\""));
        }
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    Ok((caps, all))
}

/// docker's capability tweaking: privileged gets all; `--cap-add ALL`
/// gets all but the dropped; `--cap-drop ALL` keeps only the added;
/// otherwise the default set minus drops plus adds.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, String> {
    let all = || ALL_CAPS.iter().map(|c| c.to_string());
    if privileged {
        return Ok(all().collect());
    }
    let (drop, drop_all) = normalize_caps(drop, "CapDrop")?;
    let (add, add_all) = normalize_caps(add, "CapAdd")?;
    let caps: Vec<String> = if add_all {
        all().filter(|c| !drop.contains(c)).collect()
    } else if drop_all {
        add
    } else {
        let mut caps: Vec<String> = DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
        caps
    };
    Ok(caps)
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// docker's `ReplaceOrAppendEnvValues`: each override replaces the entry
/// with the same key in place, or is appended; an override without `=`
/// removes the key.
pub fn replace_or_append(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<Option<String>> = base.iter().cloned().map(Some).collect();
    for o in overrides {
        let key = env_key(o);
        let existing = out
            .iter()
            .position(|e| e.as_deref().is_some_and(|e| env_key(e) == key));
        match (o.contains('='), existing) {
            (true, Some(i)) => out[i] = Some(o.clone()),
            (true, None) => out.push(Some(o.clone())),
            (false, Some(i)) => out[i] = None,
            (false, None) => {}
        }
    }
    out.into_iter().flatten().collect()
}

/// docker's container `Config.Env`: the user's variables first, then the
/// image's that the user did not set.
pub fn config_env(user: &[String], image: &[String]) -> Vec<String> {
    let mut env: Vec<String> = user.iter().filter(|e| e.contains('=')).cloned().collect();
    for i in image {
        if !user.iter().any(|u| env_key(u) == env_key(i)) {
            env.push(i.clone());
        }
    }
    env
}

/// The environment of a container's process, as docker's daemon makes it:
/// PATH, HOSTNAME and (with a TTY) TERM, overridden by `Config.Env`.
pub fn process_env(config_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut base = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    replace_or_append(&base, config_env)
}

/// docker's merge of the user's `--entrypoint` and command with the image's
/// ENTRYPOINT and CMD. Returns (entrypoint, cmd).
///
/// A user entrypoint discards the image's CMD; `--entrypoint ""` clears the
/// entrypoint and also discards the image's CMD.
pub fn command(
    image_entrypoint: &[String],
    image_cmd: &[String],
    user_entrypoint: Option<&str>,
    user_cmd: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    let (entrypoint, cmd) = match user_entrypoint {
        Some("") => (vec![], user_cmd.to_vec()),
        Some(ep) => (vec![ep.to_string()], user_cmd.to_vec()),
        None if user_cmd.is_empty() => (image_entrypoint.to_vec(), image_cmd.to_vec()),
        None => (image_entrypoint.to_vec(), user_cmd.to_vec()),
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err("no command specified".to_string());
    }
    Ok((entrypoint, cmd))
}

#[cfg(test)]
mod tests;
