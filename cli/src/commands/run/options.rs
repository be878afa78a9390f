//! `docker run`/`create` flags turned into validated options before anything
//! talks to the gateway (docker's CLI- and daemon-side checks, with their
//! messages).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::cli::RunArgs;
use crate::containers::{label, parse_signal};
use crate::spec::{self, Bind, Device, HostNamespaces, Resources, Seccomp};

/// A refused flag value, worded as docker words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    /// docker's daemon (not its CLI) reports this one: it is printed after
    /// `Error response from daemon:`.
    pub from_daemon: bool,
}

impl Invalid {
    pub(super) fn cli(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            from_daemon: false,
        }
    }

    pub(super) fn daemon(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            from_daemon: true,
        }
    }

    fn unsupported(what: impl std::fmt::Display) -> Self {
        Self::cli(format!("{what} is not supported by berth"))
    }
}

/// What `run` needs from the machine it runs on; a trait so the decoding
/// is testable without touching the real environment.
pub trait Host {
    fn env(&self, key: &str) -> Option<String>;
    fn read(&self, path: &str) -> std::io::Result<String>;
    /// (type `c`/`b`, major, minor, permission bits) of a device node.
    fn device(&self, path: &str) -> std::io::Result<(String, i64, i64, u32)>;
}

pub struct RealHost;

impl Host for RealHost {
    fn env(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn read(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn device(&self, path: &str) -> std::io::Result<(String, i64, i64, u32)> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(path)?;
        let kind = if meta.file_type().is_char_device() {
            "c"
        } else if meta.file_type().is_block_device() {
            "b"
        } else {
            return Err(std::io::Error::other("not a device node"));
        };
        let rdev = meta.rdev();
        Ok((
            kind.to_string(),
            libc::major(rdev) as i64,
            libc::minor(rdev) as i64,
            meta.mode() & 0o7777,
        ))
    }
}

/// The validated options of one `run`/`create`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub name: Option<String>,
    pub image: String,
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    /// The user's variables (`--env-file` then `-e`), resolved.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub binds: Vec<Bind>,
    pub bind_specs: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub detach: bool,
    pub auto_remove: bool,
    pub interactive: bool,
    pub tty: bool,
    pub read_only: bool,
    pub privileged: bool,
    pub capabilities: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub host: HostNamespaces,
    pub ipc_none: bool,
    pub network_none: bool,
    pub network_mode: String,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub uts_mode: String,
    pub devices: Vec<Device>,
    pub device_specs: Vec<String>,
    pub seccomp: Seccomp,
    pub apparmor: Option<String>,
    pub no_new_privileges: bool,
    pub unmask_system_paths: bool,
    pub security_opt: Vec<String>,
    pub resources: Resources,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// containerd runtime name (`runc` means `io.containerd.runc.v2`).
    pub runtime: String,
    /// `--pull`: when the image is pulled before the container is created.
    pub pull: crate::commands::pull::PullPolicy,
}

impl RunOptions {
    pub fn decode(a: &RunArgs, host: &dyn Host) -> Result<Self, Invalid> {
        if let Some(flag) = a.unsupported.first_used() {
            return Err(Invalid::unsupported(flag));
        }
        if a.init {
            // docker-init is bind-mounted from the host; berth has no host binaries to give.
            return Err(Invalid::unsupported("--init"));
        }
        let pull =
            crate::commands::pull::PullPolicy::parse(a.pull.as_deref()).map_err(Invalid::cli)?;
        if let Some(p) = &a.platform {
            if p != &host_platform() {
                return Err(Invalid::unsupported(format!("--platform {p}")));
            }
        }
        let name = match &a.name {
            Some(n) => Some(
                crate::containers::names::validate(n)
                    .map_err(Invalid::daemon)?
                    .to_string(),
            ),
            None => None,
        };

        let mut env = Vec::new();
        for file in &a.env_file {
            let content = host
                .read(file)
                .map_err(|e| Invalid::cli(format!("open {file}: {}", io_reason(&e))))?;
            env.extend(parse_env_file(&content, file, &|k| host.env(k))?);
        }
        for e in &a.env {
            env.extend(resolve_env_flag(e, &|k| host.env(k))?);
        }

        let labels = parse_labels(&a.label)?;

        let mut binds = Vec::new();
        for v in &a.volume {
            binds.push(parse_volume(v)?);
        }

        if let Some(w) = &a.workdir {
            if !w.starts_with('/') {
                return Err(Invalid::daemon(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }

        let capabilities =
            spec::capabilities(a.privileged, &a.cap_add, &a.cap_drop).map_err(Invalid::daemon)?;

        let mut host_ns = HostNamespaces::default();
        let pid_mode = a.pid.clone().unwrap_or_default();
        match pid_mode.as_str() {
            "" => {}
            "host" => host_ns.pid = true,
            m if m.starts_with("container:") => {
                return Err(Invalid::unsupported("--pid container:<name>"))
            }
            _ => return Err(Invalid::cli("--pid: invalid PID mode")),
        }
        let ipc_mode = a.ipc.clone().unwrap_or_else(|| "private".to_string());
        let mut ipc_none = false;
        match ipc_mode.as_str() {
            "" | "private" | "shareable" => {}
            "none" => ipc_none = true,
            "host" => host_ns.ipc = true,
            m if m.starts_with("container:") => {
                return Err(Invalid::unsupported("--ipc container:<name>"))
            }
            _ => return Err(Invalid::cli("--ipc: invalid IPC mode")),
        }
        let uts_mode = a.uts.clone().unwrap_or_default();
        match uts_mode.as_str() {
            "" => {}
            "host" => host_ns.uts = true,
            _ => return Err(Invalid::cli("--uts: invalid UTS mode")),
        }
        let (network_mode, network_none) = match a.network.as_deref().unwrap_or("default") {
            // berth's one network is the sandbox's; docker calls the default `bridge`.
            "default" | "bridge" => ("bridge".to_string(), false),
            "none" => ("none".to_string(), true),
            "host" => {
                host_ns.network = true;
                ("host".to_string(), false)
            }
            m if m.starts_with("container:") => {
                return Err(Invalid::unsupported("--network container:<name>"))
            }
            other => return Err(Invalid::daemon(format!("network {other} not found"))),
        };
        if a.hostname.is_some() && host_ns.uts {
            return Err(Invalid::daemon(
                "conflicting options: hostname and the UTS mode",
            ));
        }

        let mut devices = Vec::new();
        for d in &a.device {
            devices.push(parse_device(d, host)?);
        }

        let sec = parse_security_opts(&a.security_opt, host)?;

        let resources = Resources {
            memory: a.memory.as_deref().map(parse_memory).transpose()?,
            nano_cpus: a.cpus.as_deref().map(parse_cpus).transpose()?,
            pids_limit: a.pids_limit,
        };

        if let Some(sig) = &a.stop_signal {
            if parse_signal(sig).is_none() {
                return Err(Invalid::daemon(format!("Invalid signal: {sig}")));
            }
        }

        let runtime = match a.runtime.as_deref() {
            None | Some("runc") => crate::containers::RUNTIME.to_string(),
            Some(other) => other.to_string(),
        };

        Ok(Self {
            name,
            image: a.image.clone(),
            command: a.command.clone(),
            entrypoint: a.entrypoint.clone(),
            env,
            labels,
            bind_specs: a.volume.clone(),
            binds,
            user: a.user.clone(),
            workdir: a.workdir.clone(),
            hostname: a.hostname.clone(),
            detach: a.detach,
            auto_remove: a.rm,
            interactive: a.interactive,
            tty: a.tty,
            read_only: a.read_only,
            privileged: a.privileged,
            capabilities,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            host: host_ns,
            ipc_none,
            network_none,
            network_mode,
            pid_mode,
            ipc_mode,
            uts_mode,
            devices,
            device_specs: a.device.clone(),
            seccomp: sec.seccomp,
            apparmor: sec.apparmor,
            no_new_privileges: sec.no_new_privileges,
            unmask_system_paths: sec.unmask_system_paths,
            security_opt: a.security_opt.clone(),
            resources,
            stop_signal: a.stop_signal.clone(),
            stop_timeout: a.stop_timeout,
            runtime,
            pull,
        })
    }
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// The reason part of an I/O error as Go prints it (`no such file or directory`).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code)
            .desc()
            .to_ascii_lowercase(),
        None => e.to_string(),
    }
}

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\u{b}', '\u{c}', '\r'];

/// docker's `--env-file` format: one `KEY=VALUE` or `KEY` per line, values
/// kept verbatim, leading whitespace and `#` comment lines ignored, a bare
/// `KEY` taken from the environment (dropped when unset).
pub fn parse_env_file(
    content: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Invalid> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let raw = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if variable.contains(WHITESPACE) {
            return Err(Invalid::cli(format!(
                "invalid env file ({file}): variable '{variable}' contains whitespaces"
            )));
        }
        if variable.is_empty() {
            return Err(Invalid::cli(format!(
                "invalid env file ({file}): no variable name on line '{line}'"
            )));
        }
        match value {
            Some(v) => out.push(format!("{variable}={v}")),
            None => {
                if let Some(v) = lookup(variable) {
                    out.push(format!("{variable}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// One `-e` value: `KEY=VALUE`, or `KEY` taken from the environment. A
/// `KEY` that is unset locally is kept bare, which unsets it in the
/// container (docker's behaviour).
pub fn resolve_env_flag(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, Invalid> {
    let key = value.split_once('=').map_or(value, |(k, _)| k);
    if key.is_empty() {
        return Err(Invalid::cli(format!(
            "invalid argument \"{value}\" for \"-e, --env\" flag: invalid environment variable: {value}"
        )));
    }
    if value.contains('=') {
        return Ok(Some(value.to_string()));
    }
    Ok(Some(
        lookup(key).map_or_else(|| key.to_string(), |v| format!("{key}={v}")),
    ))
}

/// `-l key=value` or `-l key` (empty value). berth's own prefix is reserved:
/// berth's bookkeeping labels must not be forged.
pub fn parse_labels(values: &[String]) -> Result<BTreeMap<String, String>, Invalid> {
    let mut labels = BTreeMap::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
        if k.is_empty() {
            return Err(Invalid::cli(format!(
                "invalid argument \"{v}\" for \"-l, --label\" flag: invalid label format: \"{v}\""
            )));
        }
        if k.starts_with(label::RESERVED_PREFIX) {
            return Err(Invalid::cli(format!(
                "label {k} uses the prefix {} reserved by berth",
                label::RESERVED_PREFIX
            )));
        }
        labels.insert(k.to_string(), val.to_string());
    }
    Ok(labels)
}

/// A path made lexical-clean as Go's `filepath.Clean` does (no `.`/`..`).
fn clean(path: &str) -> String {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

fn is_volume_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// `-v SRC:DST[:OPTS]`. SRC must be an absolute path: named and anonymous
/// volumes need a volume store berth does not have.
pub fn parse_volume(v: &str) -> Result<Bind, Invalid> {
    let parts: Vec<&str> = v.split(':').collect();
    let invalid =
        |why: &str| Invalid::daemon(format!("invalid volume specification: '{v}': {why}"));
    let (src, dst, opts) = match parts.as_slice() {
        [dst] if dst.starts_with('/') => {
            return Err(Invalid::unsupported(format!("anonymous volume {dst}")));
        }
        [_] => return Err(invalid("invalid mount config for type \"volume\": invalid mount path: mount path must be absolute")),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(Invalid::daemon(format!("invalid spec: {v}: too many colons"))),
    };
    if src.is_empty() {
        return Err(invalid(
            "invalid mount config for type \"bind\": field Source must not be empty",
        ));
    }
    if !src.starts_with('/') {
        if is_volume_name(src) {
            return Err(Invalid::unsupported(format!("named volume {src}")));
        }
        return Err(Invalid::daemon(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    if !dst.starts_with('/') {
        return Err(invalid(&format!(
            "invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    let destination = clean(dst);
    if destination == "/" {
        return Err(invalid("invalid mount config for type \"bind\": invalid specification: destination can't be '/'"));
    }
    let mut read_only = false;
    let mut propagation = None;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            // SELinux relabelling and volume copy hints mean nothing here.
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => propagation = Some(p.to_string()),
            _ => return Err(Invalid::daemon(format!("invalid mode: {opts}"))),
        }
    }
    Ok(Bind {
        source: clean(src),
        destination,
        read_only,
        propagation,
    })
}

/// `--device SRC[:DST][:PERMS]`, read from the device node as docker's daemon does.
pub fn parse_device(d: &str, host: &dyn Host) -> Result<Device, Invalid> {
    let parts: Vec<&str> = d.split(':').collect();
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, p] if is_perms(p) => (*src, *src, *p),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, p] if is_perms(p) => (*src, *dst, *p),
        _ => {
            return Err(Invalid::cli(format!(
                "invalid argument \"{d}\" for \"--device\" flag: bad format for path: {d}"
            )))
        }
    };
    if !dst.starts_with('/') {
        return Err(Invalid::cli(format!(
            "invalid argument \"{d}\" for \"--device\" flag: {dst} is not an absolute path"
        )));
    }
    let (kind, major, minor, mode) = host.device(src).map_err(|e| {
        Invalid::daemon(format!(
            "error gathering device information while adding custom device \"{src}\": {}",
            io_reason(&e)
        ))
    })?;
    Ok(Device {
        path: dst.to_string(),
        kind,
        major,
        minor,
        file_mode: mode,
        permissions: perms.to_string(),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOpts {
    pub seccomp: Seccomp,
    pub apparmor: Option<String>,
    pub no_new_privileges: bool,
    pub unmask_system_paths: bool,
}

/// `--security-opt` values docker accepts (`key=value`, or the legacy `key:value`).
pub fn parse_security_opts(opts: &[String], host: &dyn Host) -> Result<SecurityOpts, Invalid> {
    let mut out = SecurityOpts {
        seccomp: Seccomp::Default,
        apparmor: None,
        no_new_privileges: false,
        unmask_system_paths: false,
    };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(Invalid::cli(format!("Invalid --security-opt: {opt:?}")));
        };
        match key {
            "seccomp" if value == "unconfined" => out.seccomp = Seccomp::Unconfined,
            "seccomp" => {
                let content = host.read(value).map_err(|e| {
                    Invalid::cli(format!(
                        "opening seccomp profile ({value}) failed: open {value}: {}",
                        io_reason(&e)
                    ))
                })?;
                let profile = serde_json::from_str(&content).map_err(|e| {
                    Invalid::daemon(format!("decoding seccomp profile failed: {e}"))
                })?;
                out.seccomp = Seccomp::Profile(profile);
            }
            "apparmor" => out.apparmor = Some(value.to_string()),
            "no-new-privileges" => {
                out.no_new_privileges = match value {
                    "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
                    "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
                    _ => {
                        return Err(Invalid::daemon(
                            "invalid --security-opt 2: \"no-new-privileges\" must be a boolean",
                        ))
                    }
                }
            }
            "systempaths" if value == "unconfined" => out.unmask_system_paths = true,
            "label" => return Err(Invalid::unsupported("--security-opt label (SELinux)")),
            _ => {
                return Err(Invalid::daemon(format!(
                    "invalid --security-opt 2: {opt:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// docker's `RAMInBytes`: `512m`, `1.5g`, `1024`, `64MiB`; binary multiples.
pub fn parse_memory(s: &str) -> Result<i64, Invalid> {
    let invalid = || {
        Invalid::cli(format!(
            "invalid argument \"{s}\" for \"-m, --memory\" flag: invalid size: '{s}'"
        ))
    };
    let t = s.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let num: f64 = num.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0f64.powi(3),
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return Err(invalid()),
    };
    let bytes = (num * mult) as i64;
    if bytes > 0 && bytes < 6 * 1024 * 1024 {
        return Err(Invalid::daemon("Minimum memory limit allowed is 6MB"));
    }
    Ok(bytes)
}

/// `--cpus 1.5` in billionths of a CPU, refusing more precision than that.
pub fn parse_cpus(s: &str) -> Result<i64, Invalid> {
    let invalid = |why: &str| {
        Invalid::cli(format!(
            "invalid argument \"{s}\" for \"--cpus\" flag: {why}"
        ))
    };
    let not_rational = || invalid(&format!("failed to parse {s} as a rational number"));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(not_rational());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(invalid("value is too precise"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_rational())?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| not_rational())?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(frac_nanos))
        .ok_or_else(not_rational)
}

#[cfg(test)]
mod tests;
