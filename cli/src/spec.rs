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
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn base_input() -> SpecInput {
        SpecInput {
            process: ProcessInput {
                args: s(&["sh"]),
                env: s(&["PATH=/bin"]),
                cwd: "/".into(),
                uid: 0,
                gid: 0,
                additional_gids: vec![10],
                terminal: false,
                capabilities: capabilities(false, &[], &[]).unwrap(),
                no_new_privileges: false,
                apparmor_profile: None,
            },
            hostname: "0123456789ab".into(),
            read_only_rootfs: false,
            binds: vec![],
            privileged: false,
            seccomp: Seccomp::Default,
            unmask_system_paths: false,
            host: HostNamespaces::default(),
            ipc_none: false,
            network_none: false,
            devices: vec![],
            resources: Resources::default(),
        }
    }

    fn namespaces(spec: &Value) -> Vec<String> {
        spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    }

    fn caps(spec: &Value, set: &str) -> Vec<String> {
        crate::containers::string_list(&spec["process"]["capabilities"][set])
    }

    #[test]
    fn default_spec_is_a_valid_oci_spec_with_dockers_defaults() {
        let spec = build(&base_input());
        let parsed: oci_spec::runtime::Spec =
            serde_json::from_value(spec.clone()).expect("valid OCI spec");
        assert_eq!(parsed.hostname().as_deref(), Some("0123456789ab"));
        assert_eq!(
            namespaces(&spec),
            ["pid", "ipc", "uts", "mount", "network", "cgroup"]
        );
        assert!(spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("path").is_none()));
        assert_eq!(caps(&spec, "bounding"), DEFAULT_CAPS);
        assert_eq!(caps(&spec, "effective"), DEFAULT_CAPS);
        assert_eq!(caps(&spec, "permitted"), DEFAULT_CAPS);
        assert!(spec["process"]["capabilities"].get("inheritable").is_none());
        assert!(spec["process"]["capabilities"].get("ambient").is_none());
        assert_eq!(spec["process"]["noNewPrivileges"], false);
        assert!(spec["process"].get("rlimits").is_none());
        assert_eq!(spec["process"]["user"]["additionalGids"], json!([10]));
        assert_eq!(spec["root"], json!({ "path": "rootfs", "readonly": false }));
        assert_eq!(spec["linux"]["maskedPaths"], json!(MASKED_PATHS));
        assert_eq!(spec["linux"]["readonlyPaths"], json!(READONLY_PATHS));
        assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{ "allow": false, "access": "rwm" }])
        );
        assert!(spec["linux"].get("devices").is_none());
        assert!(spec.get("annotations").is_none());
        let dests: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
        assert_eq!(spec["mounts"][3]["options"][3], "ro");
        assert_eq!(spec["mounts"][4]["options"][0], "ro");
    }

    #[test]
    fn privileged_is_reflected_not_refused() {
        let mut input = base_input();
        input.privileged = true;
        input.process.capabilities = capabilities(true, &[], &[]).unwrap();
        let spec = build(&input);
        assert_eq!(caps(&spec, "bounding").len(), ALL_CAPS.len());
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{ "allow": true, "access": "rwm" }])
        );
        assert!(spec["linux"].get("maskedPaths").is_none());
        assert!(spec["linux"].get("readonlyPaths").is_none());
        assert_eq!(spec["mounts"][3]["options"][3], "rw");
    }

    #[test]
    fn host_namespaces_are_left_out() {
        for (host, missing) in [
            (
                HostNamespaces {
                    pid: true,
                    ..Default::default()
                },
                "pid",
            ),
            (
                HostNamespaces {
                    ipc: true,
                    ..Default::default()
                },
                "ipc",
            ),
            (
                HostNamespaces {
                    uts: true,
                    ..Default::default()
                },
                "uts",
            ),
            (
                HostNamespaces {
                    network: true,
                    ..Default::default()
                },
                "network",
            ),
        ] {
            let mut input = base_input();
            input.host = host;
            let ns = namespaces(&build(&input));
            assert!(!ns.contains(&missing.to_string()), "{missing}");
            assert_eq!(ns.len(), 5);
        }
    }

    #[test]
    fn network_none_is_an_annotation_and_keeps_the_namespace() {
        let mut input = base_input();
        input.network_none = true;
        let spec = build(&input);
        assert_eq!(spec["annotations"], json!({ "berth.network": "none" }));
        assert!(namespaces(&spec).contains(&"network".to_string()));
    }

    #[test]
    fn seccomp_unconfined_and_custom_profiles() {
        let mut input = base_input();
        input.seccomp = Seccomp::Unconfined;
        assert!(build(&input)["linux"].get("seccomp").is_none());
        let custom = json!({ "defaultAction": "SCMP_ACT_ALLOW" });
        input.seccomp = Seccomp::Profile(custom.clone());
        assert_eq!(build(&input)["linux"]["seccomp"], custom);
    }

    #[test]
    fn systempaths_unconfined_drops_masks() {
        let mut input = base_input();
        input.unmask_system_paths = true;
        let spec = build(&input);
        assert!(spec["linux"].get("maskedPaths").is_none());
        assert!(spec["linux"].get("readonlyPaths").is_none());
    }

    #[test]
    fn devices_binds_and_resources() {
        let mut input = base_input();
        input.devices = vec![Device {
            path: "/dev/xvda".into(),
            kind: "b".into(),
            major: 8,
            minor: 0,
            file_mode: 0o660,
            permissions: "rwm".into(),
        }];
        input.binds = vec![
            Bind {
                source: "/w/src".into(),
                destination: "/src".into(),
                read_only: true,
                propagation: None,
            },
            Bind {
                source: "/w/out".into(),
                destination: "/out".into(),
                read_only: false,
                propagation: Some("rshared".into()),
            },
        ];
        input.resources = Resources {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(100),
        };
        input.read_only_rootfs = true;
        input.ipc_none = true;
        let spec = build(&input);
        serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone()).expect("valid OCI spec");
        assert_eq!(spec["linux"]["devices"][0]["path"], "/dev/xvda");
        assert_eq!(spec["linux"]["devices"][0]["type"], "b");
        assert_eq!(
            spec["linux"]["resources"]["devices"][1],
            json!({ "allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm" })
        );
        let mounts = spec["mounts"].as_array().unwrap();
        assert!(!mounts.iter().any(|m| m["destination"] == "/dev/shm"));
        let binds: Vec<&Value> = mounts.iter().filter(|m| m["type"] == "bind").collect();
        assert_eq!(binds[0]["options"], json!(["rbind", "ro"]));
        assert_eq!(binds[1]["options"], json!(["rbind", "rw", "rshared"]));
        assert_eq!(binds[1]["source"], "/w/out");
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(
            spec["linux"]["resources"]["cpu"],
            json!({ "quota": 150_000, "period": 100_000 })
        );
        assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(spec["root"]["readonly"], true);
    }

    #[test]
    fn unlimited_pids_are_not_limited() {
        let mut input = base_input();
        input.resources.pids_limit = Some(-1);
        assert!(build(&input)["linux"]["resources"].get("pids").is_none());
    }

    #[test]
    fn capability_tweaks_follow_docker() {
        let v = |x: &[&str]| s(x);
        let added = capabilities(false, &v(&["net_admin"]), &[]).unwrap();
        assert_eq!(added.last().unwrap(), "CAP_NET_ADMIN");
        assert_eq!(added.len(), DEFAULT_CAPS.len() + 1);
        let dropped = capabilities(false, &[], &v(&["CAP_CHOWN", "kill"])).unwrap();
        assert!(!dropped.contains(&"CAP_CHOWN".to_string()));
        assert!(!dropped.contains(&"CAP_KILL".to_string()));
        assert_eq!(dropped.len(), DEFAULT_CAPS.len() - 2);
        assert_eq!(
            capabilities(false, &v(&["ALL"]), &v(&["SYS_ADMIN"]))
                .unwrap()
                .len(),
            ALL_CAPS.len() - 1
        );
        assert_eq!(
            capabilities(false, &v(&["chown"]), &v(&["all"])).unwrap(),
            ["CAP_CHOWN"]
        );
        assert_eq!(
            capabilities(false, &v(&["CHOWN"]), &[]).unwrap().len(),
            DEFAULT_CAPS.len()
        );
        assert_eq!(
            capabilities(false, &v(&["FOO"]), &[]).unwrap_err(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(capabilities(true, &[], &[]).unwrap().len(), ALL_CAPS.len());
    }

    #[test]
    fn env_merges_like_docker() {
        let image = s(&["PATH=/usr/bin", "HOME=/root"]);
        let user = s(&["A=1", "HOME=/home", "UNSET"]);
        let config = config_env(&user, &image);
        assert_eq!(config, ["A=1", "HOME=/home", "PATH=/usr/bin"]);
        assert_eq!(
            process_env(&config, "abc", true),
            [
                "PATH=/usr/bin",
                "HOSTNAME=abc",
                "TERM=xterm",
                "A=1",
                "HOME=/home"
            ]
        );
        assert_eq!(
            process_env(&[], "abc", false),
            [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=abc".into()]
        );
        assert_eq!(
            replace_or_append(&s(&["A=1", "B=2"]), &s(&["B=3", "A", "C=4"])),
            ["B=3", "C=4"]
        );
    }

    #[test]
    fn entrypoint_and_cmd_merge_like_docker() {
        let ep = s(&["/entry.sh"]);
        let cmd = s(&["serve", "--port=1"]);
        assert_eq!(
            command(&ep, &cmd, None, &[]).unwrap(),
            (ep.clone(), cmd.clone())
        );
        assert_eq!(
            command(&ep, &cmd, None, &s(&["ls"])).unwrap(),
            (ep.clone(), s(&["ls"]))
        );
        // A user entrypoint drops the image's CMD.
        assert_eq!(
            command(&ep, &cmd, Some("/bin/sh -c"), &[]).unwrap(),
            (s(&["/bin/sh -c"]), vec![])
        );
        assert_eq!(
            command(&ep, &cmd, Some("sh"), &s(&["-c", "x"])).unwrap(),
            (s(&["sh"]), s(&["-c", "x"]))
        );
        assert_eq!(
            command(&ep, &cmd, Some(""), &s(&["ls"])).unwrap(),
            (vec![], s(&["ls"]))
        );
        assert_eq!(
            command(&ep, &cmd, Some(""), &[]).unwrap_err(),
            "no command specified"
        );
        assert_eq!(
            command(&[], &[], None, &[]).unwrap_err(),
            "no command specified"
        );
        assert_eq!(
            command(&[], &s(&["sh"]), None, &[]).unwrap(),
            (vec![], s(&["sh"]))
        );
    }
}
