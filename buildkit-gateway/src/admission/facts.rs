//! Turning decoded requests into the facts of [`PolicyInput`](crate::policy::PolicyInput).
//! Pure functions, except bind-source resolution (which reads the host's
//! directory tree).
//!
//! Per-item work happens here, not in Rego: each item of a request (a
//! mount, a capability, a namespace entry, an rlimit…) is classified
//! against the boundary's tables ([`boundary`]), and the input lists the
//! items each refusal is about. A classification is strict: whatever is not
//! known to be allowed is listed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use containerd_client::services::v1 as api;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxNamespace, Mount, PosixRlimit, Process, Spec,
};
use serde::Serialize;

use crate::policy::input::{
    BindMount, CapabilityFacts, ContainerCreate, CwdFacts, DeviceFacts, DeviceRuleFacts,
    JoinedNamespace, LinuxFacts, MisplacedMount, MountFacts, NamespaceFacts, ProcessFacts,
    RefusedOption, Rlimit, RlimitAboveMax, RlimitFacts, RootFacts, RuntimeFacts, SandboxFacts,
    TypedMount, UserFacts,
};
use crate::sandbox::Sandbox;

use super::{mounts, DEFAULT_CAPS};

pub mod boundary;
#[cfg(test)]
mod tests;

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

fn lossy(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The lexical shape of a path, without touching the file system.
#[derive(Debug)]
struct PathShape<'a> {
    absolute: bool,
    /// No `.` or `..` component.
    normalized: bool,
    /// The non-empty components: `//proc/` has just `proc`.
    components: Vec<&'a str>,
}

impl<'a> PathShape<'a> {
    fn of(path: &'a str) -> Self {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        Self {
            absolute: path.starts_with('/'),
            normalized: !components.iter().any(|c| *c == "." || *c == ".."),
            components,
        }
    }

    /// At or below `place` (an absolute path written without `.`, `..` or
    /// repeated slashes), comparing components: a relative path is read as
    /// if it started at `/`, so the answer errs towards "below".
    fn at_or_below(&self, place: &str) -> bool {
        let place: Vec<&str> = place.split('/').filter(|c| !c.is_empty()).collect();
        self.components.starts_with(&place)
    }

    /// `/` itself (or nothing but slashes).
    fn is_root(&self) -> bool {
        self.components.is_empty()
    }
}

fn cap_names(set: &Option<Capabilities>) -> Vec<String> {
    sorted(set.iter().flatten().map(cap_name))
}

pub fn capabilities(caps: Option<&LinuxCapabilities>) -> CapabilityFacts {
    let Some(c) = caps else {
        return CapabilityFacts::default();
    };
    let outside_default = sorted(
        [
            c.bounding(),
            c.effective(),
            c.inheritable(),
            c.permitted(),
            c.ambient(),
        ]
        .into_iter()
        .flat_map(|set| set.iter().flatten())
        .filter(|cap| !DEFAULT_CAPS.contains(cap))
        .map(cap_name),
    );
    CapabilityFacts {
        bounding: cap_names(c.bounding()),
        effective: cap_names(c.effective()),
        inheritable: cap_names(c.inheritable()),
        permitted: cap_names(c.permitted()),
        ambient: cap_names(c.ambient()),
        outside_default,
    }
}

pub fn sandbox(sb: &Sandbox) -> SandboxFacts {
    SandboxFacts {
        namespace: sb.namespace.clone(),
        snapshotter: sb.snapshotter.clone(),
        netns_path: lossy(&sb.netns_path),
        volume_roots: sb.volume_roots.iter().map(|r| lossy(r)).collect(),
    }
}

fn cwd(path: String) -> CwdFacts {
    let shape = PathShape::of(&path);
    CwdFacts {
        absolute: shape.absolute,
        normalized: shape.normalized,
        // CVE-2024-21626: runc could be made to start a process with a
        // working directory in /proc/self/fd, i.e. on a host directory.
        under_proc: shape.at_or_below("/proc"),
        path,
    }
}

pub fn rlimits(given: &[PosixRlimit]) -> RlimitFacts {
    let mut facts = RlimitFacts::default();
    for r in given {
        let typ = serde_name(&r.typ());
        match boundary::RLIMITS.iter().find(|(name, _)| *name == typ) {
            None => facts.unknown.push(typ.clone()),
            Some((_, Some(max))) if r.hard() > *max => facts.above_max.push(RlimitAboveMax {
                typ: typ.clone(),
                hard: r.hard(),
                max: *max,
            }),
            Some(_) => {}
        }
        facts.given.push(Rlimit {
            typ,
            hard: r.hard(),
            soft: r.soft(),
        });
    }
    facts.unknown = sorted(facts.unknown);
    facts
}

pub fn process(p: &Process) -> ProcessFacts {
    let user = p.user();
    ProcessFacts {
        cwd: cwd(lossy(p.cwd())),
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
        rlimits: rlimits(p.rlimits().as_deref().unwrap_or_default()),
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

fn refused_options(
    options: &[String],
    destination: &str,
    allowed: impl Fn(&str) -> bool,
    out: &mut Vec<RefusedOption>,
) {
    for option in options.iter().filter(|o| !allowed(o)) {
        out.push(RefusedOption {
            option: option.clone(),
            destination: destination.to_string(),
        });
    }
}

fn tmpfs_option_allowed(option: &str) -> bool {
    boundary::TMPFS_OPTIONS.contains(&option)
        || boundary::TMPFS_OPTION_PREFIXES
            .iter()
            .any(|p| option.starts_with(p) && !option.contains(','))
}

/// Read-only when the last of `ro` and `rw` is `ro` (runc applies the
/// options in order).
fn read_only(options: &[String]) -> bool {
    options
        .iter()
        .rev()
        .find(|o| *o == "ro" || *o == "rw")
        .is_some_and(|o| o == "ro")
}

/// Facts about the spec's mounts; bind sources are resolved below
/// `volume_roots` ([`mounts::bind_facts`]).
pub fn mounts(volume_roots: &[PathBuf], given: &[Mount]) -> MountFacts {
    let mut f = MountFacts::default();
    for m in given {
        let destination = lossy(m.destination());
        let typ = m.typ().clone().unwrap_or_default();
        let options = m.options().as_deref().unwrap_or_default();
        let shape = PathShape::of(&destination);
        if !shape.absolute {
            f.relative_destinations.push(destination.clone());
        }
        if !shape.normalized {
            f.unnormalized_destinations.push(destination.clone());
        }

        let client_content = if mounts::is_bind(m) {
            let source = m.source().as_deref().map(lossy).unwrap_or_default();
            refused_options(
                options,
                &destination,
                |o| boundary::BIND_OPTIONS.contains(&o),
                &mut f.refused_bind_options,
            );
            f.binds.push(BindMount {
                destination: destination.clone(),
                bind: mounts::bind_facts(volume_roots, &source),
                source,
            });
            true
        } else if typ.is_empty() {
            f.untyped.push(destination.clone());
            false
        } else if typ == "tmpfs" {
            refused_options(
                options,
                &destination,
                tmpfs_option_allowed,
                &mut f.refused_tmpfs_options,
            );
            true
        } else if let Some((_, places)) = boundary::SYSTEM_MOUNTS.iter().find(|(t, _)| *t == typ) {
            if !places.contains(&destination.as_str()) {
                f.misplaced.push(MisplacedMount {
                    typ: typ.clone(),
                    destination: destination.clone(),
                    places: places.iter().map(|p| p.to_string()).collect(),
                });
            }
            if boundary::READ_ONLY_TYPES.contains(&typ.as_str()) && !read_only(options) {
                f.writable_kernel.push(destination.clone());
            }
            false
        } else {
            f.unsupported.push(TypedMount {
                typ,
                destination: destination.clone(),
            });
            false
        };

        // What the client fills (a bind's host directory, an empty tmpfs)
        // may not cover the kernel's interfaces or the whole root.
        if client_content {
            if shape.is_root() {
                f.over_root = true;
            }
            if boundary::KERNEL_PATHS.iter().any(|p| shape.at_or_below(p)) {
                f.over_kernel_paths.push(destination);
            }
        }
    }
    f
}

pub fn namespaces(given: &[LinuxNamespace]) -> NamespaceFacts {
    let names: Vec<String> = given.iter().map(|ns| serde_name(&ns.typ())).collect();
    let types = sorted(names.iter().cloned());
    let mut duplicates: Vec<String> = names
        .iter()
        .filter(|n| names.iter().filter(|m| m == n).count() > 1)
        .cloned()
        .collect();
    duplicates.sort();
    duplicates.dedup();
    let mut joined: Vec<JoinedNamespace> = given
        .iter()
        .zip(&names)
        .filter_map(|(ns, name)| {
            let path = ns.path().as_deref().map(lossy).unwrap_or_default();
            (!path.is_empty()).then(|| JoinedNamespace {
                typ: name.clone(),
                path,
            })
        })
        .collect();
    joined.sort_by(|a, b| (&a.typ, &a.path).cmp(&(&b.typ, &b.path)));
    NamespaceFacts {
        missing: boundary::REQUIRED_NAMESPACES
            .iter()
            .filter(|t| !types.iter().any(|g| g == *t))
            .map(|t| t.to_string())
            .collect(),
        unknown: types
            .iter()
            .filter(|t| *t != "user" && !boundary::ALLOWED_NAMESPACES.contains(&t.as_str()))
            .cloned()
            .collect(),
        user: types.iter().any(|t| t == "user"),
        duplicates,
        joined,
    }
}

/// Paths docker masks or makes read-only that the spec lists in neither
/// list, sorted.
pub fn unmasked_paths(masked: &[String], readonly: &[String]) -> Vec<String> {
    let given: BTreeSet<&str> = masked.iter().chain(readonly).map(String::as_str).collect();
    sorted(
        boundary::REQUIRED_MASKED_PATHS
            .iter()
            .chain(&boundary::REQUIRED_READONLY_PATHS)
            .filter(|p| !given.contains(*p))
            .map(|p| p.to_string()),
    )
}

pub fn device_rules(rules: Vec<String>) -> DeviceRuleFacts {
    let given = sorted(rules);
    DeviceRuleFacts {
        outside_default: given
            .iter()
            .filter(|r| !boundary::DEFAULT_DEVICE_RULES.contains(&r.as_str()))
            .cloned()
            .collect(),
        given,
    }
}

pub fn container_create(sb: &Sandbox, c: &api::Container, spec: &Spec) -> ContainerCreate {
    let process = spec
        .process()
        .as_ref()
        .map(process)
        .expect("decode_spec requires a process");
    let linux = spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());

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

    let device_rule_list = resources
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
        })
        .collect();

    let linux_facts = LinuxFacts {
        namespaces: namespaces(
            linux
                .and_then(|l| l.namespaces().as_deref())
                .unwrap_or_default(),
        ),
        devices: linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .map(|d| DeviceFacts {
                path: lossy(d.path()),
                typ: serde_name(&d.typ()),
                major: d.major(),
                minor: d.minor(),
            })
            .collect(),
        device_rules: device_rules(device_rule_list),
        seccomp: linux.is_some_and(|l| l.seccomp().is_some()),
        sysctl: sorted(
            linux
                .and_then(|l| l.sysctl().as_ref())
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        ),
        unmasked_paths: unmasked_paths(
            linux
                .and_then(|l| l.masked_paths().as_deref())
                .unwrap_or_default(),
            linux
                .and_then(|l| l.readonly_paths().as_deref())
                .unwrap_or_default(),
        ),
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

    let root_path = spec
        .root()
        .as_ref()
        .map(|r| lossy(r.path()))
        .unwrap_or_default();
    let shape = PathShape::of(&root_path);
    let (absolute, normalized) = (shape.absolute, shape.normalized);
    let root = RootFacts {
        absolute,
        normalized,
        readonly: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        path: root_path,
    };

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
        root,
        process,
        mounts: mounts(
            &sb.volume_roots,
            spec.mounts().as_deref().unwrap_or_default(),
        ),
        hooks,
        linux: linux_facts,
    }
}
