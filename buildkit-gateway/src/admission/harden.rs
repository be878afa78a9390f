//! Hardening: what the gateway forwards after the policy allowed a request.
//!
//! The forwarded spec is built field by field from the typed spec: what the
//! boundary needs is set by the gateway (namespaces, capabilities, seccomp,
//! masked paths, devices, cgroup, system mounts, runtime), what the policy
//! checked is copied, everything else is left out. Only these bytes go on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxNamespace, LinuxResources, Mount,
    Process, Root, Spec,
};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{mounts, seccomp, DEFAULT_CAPS, DEFAULT_PIDS_LIMIT};
use crate::sandbox::Sandbox;

/// docker's default masked paths.
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

/// Environment variables the gateway owns in every process.
pub const PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HardenError {
    #[error(transparent)]
    Mount(#[from] mounts::Unresolved),
    #[error("spec has no process")]
    NoProcess,
}

/// A value of an oci-spec type with every optional field absent (their
/// `Default` impls fill in youki's defaults, which is not what we want).
fn empty<T: DeserializeOwned>() -> T {
    serde_json::from_value(json!({})).expect("every field of this type is optional")
}

fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("the gateway builds valid oci-spec values")
}

fn keep(set: &Option<Capabilities>, allowed: &HashSet<Capability>) -> Capabilities {
    set.iter()
        .flatten()
        .filter(|c| allowed.contains(c))
        .copied()
        .collect()
}

/// Capabilities ∩ `allowed`; inheritable and ambient always empty.
fn capabilities(
    caps: Option<&LinuxCapabilities>,
    allowed: &HashSet<Capability>,
) -> LinuxCapabilities {
    let mut out: LinuxCapabilities = empty();
    let none = None;
    let (bounding, effective, permitted) = match caps {
        Some(c) => (c.bounding(), c.effective(), c.permitted()),
        None => (&none, &none, &none),
    };
    out.set_bounding(Some(keep(bounding, allowed)));
    out.set_effective(Some(keep(effective, allowed)));
    out.set_permitted(Some(keep(permitted, allowed)));
    out.set_inheritable(Some(Capabilities::new()));
    out.set_ambient(Some(Capabilities::new()));
    out
}

/// The client's environment without any proxy variable (in any case), then
/// the sandbox's proxy variables.
pub fn proxy_env(env: Option<&Vec<String>>, proxy: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = env
        .into_iter()
        .flatten()
        .filter(|e| {
            let name = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            !PROXY_VARS.iter().any(|p| p.eq_ignore_ascii_case(name))
        })
        .cloned()
        .collect();
    out.extend(proxy.iter().map(|(k, v)| format!("{k}={v}")));
    out
}

/// A process as the gateway forwards it: capabilities limited to `allowed`,
/// no_new_privileges, no LSM labels, the sandbox's proxy variables.
pub fn process(mut p: Process, allowed: &HashSet<Capability>, sb: &Sandbox) -> Process {
    let caps = capabilities(p.capabilities().as_ref(), allowed);
    p.set_capabilities(Some(caps));
    p.set_no_new_privileges(Some(true));
    p.set_apparmor_profile(None);
    p.set_selinux_label(None);
    p.set_io_priority(None);
    p.set_scheduler(None);
    p.set_exec_cpu_affinity(None);
    p.set_command_line(None);
    let mut env = proxy_env(p.env().as_ref(), &sb.proxy_env);
    if !sb.ca_env.is_empty() {
        env.retain(|e| {
            let name = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            !crate::sandbox::CA_VARS.contains(&name)
        });
        env.extend(sb.ca_env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    p.set_env(Some(env));
    p
}

/// Capabilities a forwarded process may keep: docker's default set minus
/// CAP_NET_RAW. Containers share the sandbox's network namespace, and an
/// AF_PACKET socket sends frames below netfilter, past the sandbox's nftables
/// rules, so raw sockets would be a way around the proxy. The policy still
/// accepts a request naming NET_RAW (docker asks for it by default); the
/// hardening drops it.
pub fn default_caps() -> HashSet<Capability> {
    DEFAULT_CAPS
        .iter()
        .copied()
        .filter(|c| *c != Capability::NetRaw)
        .collect()
}

fn union(defaults: &[&str], client: Option<&Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = defaults.iter().map(|s| s.to_string()).collect();
    for p in client.into_iter().flatten() {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// Resource limits: the client's memory, cpu (without realtime), block I/O
/// and hugepage limits, which only restrict; pids at most the default; the
/// device cgroup denies everything (runc adds its default allowances).
fn resources(client: Option<&LinuxResources>) -> LinuxResources {
    let mut out: LinuxResources = empty();
    let pids = client
        .and_then(|r| r.pids().as_ref())
        .map(|p| p.limit())
        .filter(|l| *l > 0 && *l <= DEFAULT_PIDS_LIMIT)
        .unwrap_or(DEFAULT_PIDS_LIMIT);
    out.set_pids(Some(from_json(json!({ "limit": pids }))));
    out.set_devices(Some(vec![from_json(
        json!({"allow": false, "access": "rwm"}),
    )]));
    if let Some(r) = client {
        out.set_memory(*r.memory());
        if let Some(cpu) = r.cpu() {
            let mut cpu = cpu.clone();
            cpu.set_realtime_runtime(None);
            cpu.set_realtime_period(None);
            out.set_cpu(Some(cpu));
        }
        out.set_block_io(r.block_io().clone());
        out.set_hugepage_limits(r.hugepage_limits().clone());
    }
    out
}

fn namespaces(sb: &Sandbox, private_network: bool) -> Vec<LinuxNamespace> {
    let network = if private_network {
        json!({"type": "network"})
    } else {
        json!({"type": "network", "path": sb.netns_path})
    };
    let user = sb.userns.map(|_| "user");
    ["pid", "ipc", "uts", "mount", "cgroup"]
        .into_iter()
        .chain(user)
        .map(|t| from_json(json!({ "type": t })))
        .chain([from_json(network)])
        .collect()
}

/// The read-only bind of the sandbox's sysfs that replaces /sys in a
/// user namespace.
fn userns_sysfs(sb: &Sandbox) -> Mount {
    from_json(json!({
        "destination": "/sys",
        "type": "bind",
        "source": sb.userns_sysfs(),
        "options": ["bind", "ro", "nosuid", "noexec", "nodev"],
    }))
}

/// The bind mounts the gateway itself adds (not below a volume root): the
/// proxy CA and, with user namespaces, the sandbox's sysfs. Tasks.Create's
/// recheck of the client's binds leaves these out.
pub fn gateway_binds(sb: &Sandbox) -> Vec<Mount> {
    let mut own: Vec<Mount> = sb.proxy_ca.iter().map(|ca| mounts::proxy_ca(ca)).collect();
    if sb.userns.is_some() {
        own.push(userns_sysfs(sb));
    }
    own
}

/// With the sandbox's user namespace on: the gateway's ID mappings (the
/// client's never pass: policy refuses them and `linux` is built afresh),
/// and /sys as a read-only bind of the sandbox's sysfs when the container
/// joins the sandbox's network namespace — runc cannot mount sysfs for a
/// network namespace its user namespace does not own (EPERM), and a bind
/// of the host's /sys would show the host's interfaces.
fn user_namespace(sb: &Sandbox, private_network: bool, linux: &mut Linux, mounts: &mut [Mount]) {
    let Some(map) = sb.userns else {
        return;
    };
    let (uid, gid) = map.spec_mappings();
    linux.set_uid_mappings(Some(from_json(uid)));
    linux.set_gid_mappings(Some(from_json(gid)));
    if private_network {
        return;
    }
    for m in mounts.iter_mut() {
        if m.destination() == Path::new("/sys") {
            *m = userns_sysfs(sb);
        }
    }
}

/// The spec forwarded for container `id`, as JSON bytes.
pub fn container_spec(sb: &Sandbox, id: &str, spec: Spec) -> Result<Vec<u8>, HardenError> {
    let private_network = super::facts::network_mode(&spec) == "none";
    let client_process = spec.process().clone().ok_or(HardenError::NoProcess)?;
    let client_linux = spec.linux().clone().unwrap_or_else(empty);
    let volume_roots: Vec<PathBuf> = sb.volume_roots.clone();
    let mut mounts = mounts::harden(&volume_roots, spec.mounts().as_deref().unwrap_or_default())?;
    // Last, so no client mount can cover it.
    if let Some(ca) = &sb.proxy_ca {
        mounts.push(mounts::proxy_ca(ca));
    }

    let mut linux: Linux = empty();
    linux.set_namespaces(Some(namespaces(sb, private_network)));
    user_namespace(sb, private_network, &mut linux, &mut mounts);
    linux.set_resources(Some(resources(client_linux.resources().as_ref())));
    linux.set_cgroups_path(Some(PathBuf::from(sb.cgroups_path(id))));
    linux.set_seccomp(Some(seccomp::default_profile()));
    linux.set_masked_paths(Some(union(
        MASKED_PATHS,
        client_linux.masked_paths().as_ref(),
    )));
    linux.set_readonly_paths(Some(union(
        READONLY_PATHS,
        client_linux.readonly_paths().as_ref(),
    )));

    let mut root: Root = empty();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(spec.root().as_ref().and_then(|r| r.readonly()));

    let mut out: Spec = from_json(json!({ "ociVersion": spec.version() }));
    out.set_root(Some(root));
    out.set_mounts(Some(mounts));
    out.set_process(Some(process(client_process, &default_caps(), sb)));
    out.set_hostname(spec.hostname().clone());
    out.set_domainname(spec.domainname().clone());
    out.set_annotations(spec.annotations().clone());
    out.set_linux(Some(linux));
    Ok(to_bytes(&out))
}

/// Serialises with capability lists sorted, so equal requests forward
/// equal bytes (oci-spec keeps capabilities in a HashSet).
pub fn to_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_value(value).expect("oci-spec values serialise");
    let caps = match v.get_mut("process") {
        Some(p) => p.get_mut("capabilities"),
        None => v.get_mut("capabilities"),
    };
    if let Some(serde_json::Value::Object(sets)) = caps {
        for list in sets.values_mut() {
            if let serde_json::Value::Array(items) = list {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    serde_json::to_vec(&v).expect("JSON values serialise")
}

#[cfg(test)]
mod userns_tests {
    use super::super::testkit::{self, bind, container, engine, spec, World};
    use super::super::{container_create, recheck_binds};
    use crate::userns::IdMap;
    use serde_json::{json, Value};

    fn userns_world() -> World {
        let mut w = World::new();
        w.sb.userns = Some(IdMap::new(100000, 200000, 65536).unwrap());
        w
    }

    fn forwarded(w: &World, s: &Value) -> (Value, containerd_client::services::v1::Container) {
        let (c, _) = container_create(engine(), &w.sb, container(s)).unwrap();
        let v = serde_json::from_slice(&c.spec.as_ref().unwrap().value).unwrap();
        (v, c)
    }

    fn namespace_types(v: &Value) -> Vec<String> {
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    }

    fn mount_at<'a>(v: &'a Value, destination: &str) -> &'a Value {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == destination)
            .unwrap()
    }

    #[test]
    fn the_gateway_adds_its_user_namespace_and_mappings() {
        let w = userns_world();
        let (v, _) = forwarded(&w, &spec());
        assert!(namespace_types(&v).contains(&"user".to_string()));
        assert_eq!(
            v["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(
            v["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": 200000, "size": 65536}])
        );
        // The network namespace is still the sandbox's.
        let net = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap();
        assert_eq!(net["path"], testkit::NETNS);
    }

    #[test]
    fn sys_is_a_read_only_bind_of_the_sandbox_sysfs() {
        let w = userns_world();
        let (v, _) = forwarded(&w, &spec());
        let sys = mount_at(&v, "/sys");
        assert_eq!(sys["type"], "bind");
        assert_eq!(
            sys["source"],
            w.sb.userns_sysfs().to_string_lossy().as_ref()
        );
        let options: Vec<&str> = sys["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        for o in ["ro", "nosuid", "noexec", "nodev"] {
            assert!(options.contains(&o), "{o} missing in {options:?}");
        }
        assert!(!options.contains(&"rbind"), "{options:?}");
    }

    #[test]
    fn a_private_network_keeps_its_own_sysfs() {
        let w = userns_world();
        let mut s = spec();
        s["annotations"] = json!({ berth_proto::labels::NETWORK: "none" });
        let (v, _) = forwarded(&w, &s);
        assert_eq!(mount_at(&v, "/sys")["type"], "sysfs");
        assert!(namespace_types(&v).contains(&"user".to_string()));
    }

    #[test]
    fn client_mappings_and_user_namespaces_are_still_refused() {
        let w = userns_world();
        let mut s = spec();
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        let err = container_create(engine(), &w.sb, container(&s)).unwrap_err();
        assert!(
            err.reasons
                .contains(&"uid and gid mappings are not supported".to_string()),
            "{err:?}"
        );
        let mut s = spec();
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": "/proc/1/ns/user"}));
        let err = container_create(engine(), &w.sb, container(&s)).unwrap_err();
        assert!(
            err.reasons
                .contains(&"user namespaces are not supported".to_string()),
            "{err:?}"
        );
    }

    #[test]
    fn the_sysfs_bind_passes_the_task_create_recheck() {
        let w = userns_world();
        let mut s = spec();
        s["mounts"]
            .as_array_mut()
            .unwrap()
            .push(bind(&format!("{}/data", w.workspace()), "/data"));
        let (_, c) = forwarded(&w, &s);
        recheck_binds(&w.sb, &c).unwrap();
    }

    #[test]
    fn without_userns_nothing_changes() {
        let w = World::new();
        let (v, _) = forwarded(&w, &spec());
        assert!(!namespace_types(&v).contains(&"user".to_string()));
        assert!(v["linux"].get("uidMappings").is_none());
        assert_eq!(mount_at(&v, "/sys")["type"], "sysfs");
    }
}
