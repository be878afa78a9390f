//! Turning decoded requests into the facts of [`PolicyInput`](crate::policy::PolicyInput).
//! Pure functions, except bind-source resolution (which reads the host's
//! directory tree).

use containerd_client::services::v1 as api;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, Spec};
use serde::Serialize;

use crate::policy::input::{
    CapabilityFacts, ContainerCreate, DeviceFacts, LinuxFacts, MountFacts, NamespaceFacts,
    ProcessFacts, RlimitFacts, RootFacts, RuntimeFacts, SandboxFacts, UserFacts,
};
use crate::sandbox::Sandbox;

use super::mounts;

/// The name serde gives a unit enum variant (`CAP_SYS_ADMIN`, `RLIMIT_NOFILE`, `pid`).
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

pub fn cap_name(cap: &Capability) -> String {
    serde_name(cap)
}

fn sorted<I: IntoIterator<Item = String>>(items: I) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    v.dedup();
    v
}

fn cap_names(set: &Option<Capabilities>) -> Vec<String> {
    sorted(set.iter().flatten().map(cap_name))
}

pub fn capabilities(caps: Option<&LinuxCapabilities>) -> CapabilityFacts {
    let Some(c) = caps else {
        return CapabilityFacts::default();
    };
    CapabilityFacts {
        bounding: cap_names(c.bounding()),
        effective: cap_names(c.effective()),
        inheritable: cap_names(c.inheritable()),
        permitted: cap_names(c.permitted()),
        ambient: cap_names(c.ambient()),
    }
}

pub fn sandbox(sb: &Sandbox) -> SandboxFacts {
    SandboxFacts {
        namespace: sb.namespace.clone(),
        snapshotter: sb.snapshotter.clone(),
        netns_path: sb.netns_path.to_string_lossy().into_owned(),
        volume_roots: sb
            .volume_roots
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect(),
    }
}

pub fn process(p: &Process) -> ProcessFacts {
    let user = p.user();
    ProcessFacts {
        cwd: p.cwd().to_string_lossy().into_owned(),
        terminal: p.terminal().unwrap_or(false),
        user: UserFacts {
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
        },
        env_names: sorted(
            p.env()
                .iter()
                .flatten()
                .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string()),
        ),
        capabilities: capabilities(p.capabilities().as_ref()),
        no_new_privileges: p.no_new_privileges(),
        apparmor_profile: p.apparmor_profile().clone(),
        selinux_label: p.selinux_label().clone(),
        oom_score_adj: p.oom_score_adj(),
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .map(|r| RlimitFacts {
                typ: serde_name(&r.typ()),
                hard: r.hard(),
                soft: r.soft(),
            })
            .collect(),
    }
}

/// The value of the `berth.network` annotation, "sandbox" when absent.
pub fn network_mode(spec: &Spec) -> String {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(berth_proto::labels::NETWORK))
        .cloned()
        .unwrap_or_else(|| "sandbox".to_string())
}

pub fn container_create(sb: &Sandbox, c: &api::Container, spec: &Spec) -> ContainerCreate {
    let process = spec
        .process()
        .as_ref()
        .map(process)
        .expect("decode_spec requires a process");
    let linux = spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());

    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| {
            let source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            MountFacts {
                destination: m.destination().to_string_lossy().into_owned(),
                typ: m.typ().clone().unwrap_or_default(),
                bind: mounts::is_bind(m).then(|| mounts::bind_facts(&sb.volume_roots, &source)),
                source,
                options: m.options().clone().unwrap_or_default(),
            }
        })
        .collect();

    let mut hooks = Vec::new();
    if let Some(h) = spec.hooks() {
        for (kind, list) in [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
            ("createContainer", h.create_container()),
            ("startContainer", h.start_container()),
            ("poststart", h.poststart()),
            ("poststop", h.poststop()),
        ] {
            if list.as_ref().is_some_and(|l| !l.is_empty()) {
                hooks.push(kind.to_string());
            }
        }
    }

    let device_rules = resources
        .and_then(|r| r.devices().as_ref())
        .into_iter()
        .flatten()
        .filter(|d| d.allow())
        .map(|d| {
            let typ = d
                .typ()
                .map(|t| serde_name(&t))
                .unwrap_or_else(|| "a".into());
            let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
            let access = d.access().clone().unwrap_or_default();
            format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
        });

    let linux_facts = LinuxFacts {
        namespaces: linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .map(|ns| NamespaceFacts {
                typ: serde_name(&ns.typ()),
                path: ns
                    .path()
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            })
            .collect(),
        devices: linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .map(|d| DeviceFacts {
                path: d.path().to_string_lossy().into_owned(),
                typ: serde_name(&d.typ()),
                major: d.major(),
                minor: d.minor(),
            })
            .collect(),
        device_rules: sorted(device_rules),
        seccomp: linux.is_some_and(|l| l.seccomp().is_some()),
        sysctl: sorted(
            linux
                .and_then(|l| l.sysctl().as_ref())
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        ),
        masked_paths: linux
            .and_then(|l| l.masked_paths().clone())
            .unwrap_or_default(),
        readonly_paths: linux
            .and_then(|l| l.readonly_paths().clone())
            .unwrap_or_default(),
        id_mappings: linux.is_some_and(|l| {
            l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        }),
        mount_label: linux
            .and_then(|l| l.mount_label().clone())
            .unwrap_or_default(),
        rootfs_propagation: linux
            .and_then(|l| l.rootfs_propagation().clone())
            .unwrap_or_default(),
        pids_limit: resources.and_then(|r| r.pids().as_ref()).map(|p| p.limit()),
        unified: sorted(
            resources
                .and_then(|r| r.unified().as_ref())
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        ),
        cpu_realtime: resources
            .and_then(|r| r.cpu().as_ref())
            .is_some_and(|c| c.realtime_runtime().is_some() || c.realtime_period().is_some()),
    };

    let root = spec.root().as_ref();
    ContainerCreate {
        id: c.id.clone(),
        image: c.image.clone(),
        snapshotter: c.snapshotter.clone(),
        labels: sorted(c.labels.keys().cloned()),
        extensions: sorted(c.extensions.keys().cloned()),
        sandbox_field: c.sandbox.clone(),
        runtime: RuntimeFacts {
            name: c
                .runtime
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            options: c.runtime.as_ref().is_some_and(|r| r.options.is_some()),
        },
        annotations: sorted(spec.annotations().iter().flatten().map(|(k, _)| k.clone())),
        network_mode: network_mode(spec),
        root: RootFacts {
            path: root
                .map(|r| r.path().to_string_lossy().into_owned())
                .unwrap_or_default(),
            readonly: root.and_then(|r| r.readonly()).unwrap_or(false),
        },
        process,
        mounts,
        hooks,
        linux: linux_facts,
    }
}
