//! Decode, decide, harden: every request that can change the sandbox goes
//! through one function here, which turns it into a typed view, asks the
//! policy, and returns the hardened request to forward — or a denial naming
//! the rule. Nothing here performs I/O except reading host paths for bind
//! mount checks.
//!
//! A denial reads `refusing <object>: <reason>[; <reason>…] (rule <method>)`,
//! e.g. `refusing container 3f2a9c1b7d4e: capability CAP_SYS_ADMIN is not
//! allowed (rule containers.create)`.

use std::collections::HashSet;

use containerd_client::services::v1 as api;
use oci_spec::runtime::{Capability, Process, Spec};
use prost_types::Any;

use crate::policy::input::{self, PolicyInput, Request, StdioFacts};
use crate::policy::PolicyEngine;
use crate::sandbox::{Sandbox, RUNTIME};

pub(crate) mod facts;
pub mod harden;
pub mod image;
pub mod mounts;
pub mod pin;
pub mod seccomp;
pub mod strict;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

/// `Any.type_url` of a container's OCI spec, as containerd's typeurl writes it.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// `Any.type_url` of an exec's OCI process spec.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// docker's default capability set; no container gets anything else.
/// (`policies/data.json` `boundary.default_capabilities` lists the same.)
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::AuditWrite,
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Mknod,
    Capability::NetBindService,
    Capability::NetRaw,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// pids limit of a container whose spec asks for none (or for more).
pub const DEFAULT_PIDS_LIMIT: i64 = 1024;

/// Label and annotation prefixes that containerd, its shims, runc, CRIU or
/// systemd read as instructions (`policies/data.json` `boundary.daemon_prefixes`).
pub const DAEMON_PREFIXES: [&str; 7] = [
    "containerd.io/",
    "io.containerd.",
    "io.cri-containerd.",
    "io.kubernetes.cri",
    "org.criu.",
    "org.systemd.property.",
    "run.oci.",
];

/// A refusal, worded for the user: `refusing <object>: <reason> (rule <rule>)`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// Policy rule or gateway rule that refused, e.g. "containers.create".
    pub rule: String,
    pub message: String,
    pub reasons: Vec<String>,
}

impl Denied {
    fn new(rule: &str, object: &str, reasons: Vec<String>) -> Self {
        let message = format!("refusing {object}: {} (rule {rule})", reasons.join("; "));
        Self {
            rule: rule.to_string(),
            message,
            reasons,
        }
    }
}

/// What was decided, for the audit line.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub rule: String,
    pub object: String,
    pub reasons: Vec<String>,
}

pub type Admission<T> = Result<(T, Verdict), Denied>;

/// docker-style short id, as used in messages.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// Asks the policy; a deny becomes a [`Denied`] naming `object`.
fn decide(engine: &PolicyEngine, input: &PolicyInput, object: &str) -> Result<Verdict, Denied> {
    let decision = engine.decide(input);
    if let Some(error) = &decision.error {
        // The user sees only "policy evaluation failed"; the detail goes to
        // the gateway's log (stderr), where an operator can act on it.
        eprintln!(
            "berth-gateway: policy error deciding {} {}: {error}",
            input.method, input.object
        );
    }
    if decision.allow {
        Ok(Verdict {
            rule: input.method.clone(),
            object: input.object.clone(),
            reasons: vec![],
        })
    } else {
        Err(Denied::new(&input.method, object, decision.reasons))
    }
}

/// Checks the `Any` wrapper and the JSON, then parses the typed value.
fn decode<T: serde::de::DeserializeOwned>(
    any: Option<&Any>,
    type_url: &str,
    shape: &strict::Shape,
    what: &str,
) -> Result<T, String> {
    let any = any.ok_or_else(|| format!("a {what} is required"))?;
    if any.type_url != type_url {
        return Err(format!(
            "{what} type {} is not allowed (only {type_url})",
            any.type_url
        ));
    }
    strict::check(&any.value, shape).map_err(|e| e.to_string())?;
    serde_json::from_slice(&any.value)
        .map_err(|e| format!("{what} is not a valid runtime {what}: {e}"))
}

fn decode_spec(any: Option<&Any>) -> Result<Spec, String> {
    let spec: Spec = decode(any, SPEC_TYPE_URL, &strict::SPEC, "spec")?;
    if spec.process().is_none() {
        return Err("spec has no process".into());
    }
    Ok(spec)
}

/// The decoded spec and the policy input of a Containers.Create.
pub(crate) fn create_input(
    sb: &Sandbox,
    c: &api::Container,
) -> Result<(Spec, PolicyInput), String> {
    let spec = decode_spec(c.spec.as_ref())?;
    let request = facts::container_create(sb, c, &spec);
    let input = PolicyInput::new(
        "containers.create",
        &c.id,
        facts::sandbox(sb),
        Request::ContainerCreate(request),
    );
    Ok((spec, input))
}

/// Containers.Create: strict spec parse, policy, hardening (rule 3).
pub fn container_create(
    engine: &PolicyEngine,
    sb: &Sandbox,
    c: api::Container,
) -> Admission<api::Container> {
    const RULE: &str = "containers.create";
    let object = format!("container {}", short_id(&c.id));
    let refuse = |reason: String| Denied::new(RULE, &object, vec![reason]);

    let (spec, input) = create_input(sb, &c).map_err(refuse)?;
    let verdict = decide(engine, &input, &object)?;

    let bytes = harden::container_spec(sb, &c.id, spec).map_err(|e| refuse(e.to_string()))?;
    let snapshotter = if c.snapshotter.is_empty() {
        sb.snapshotter.clone()
    } else {
        c.snapshotter
    };
    let hardened = api::Container {
        id: c.id,
        labels: c.labels,
        image: c.image,
        runtime: Some(api::container::Runtime {
            name: RUNTIME.to_string(),
            options: None,
        }),
        spec: Some(Any {
            type_url: SPEC_TYPE_URL.to_string(),
            value: bytes,
        }),
        snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: None,
        updated_at: None,
        extensions: Default::default(),
        sandbox: String::new(),
    };
    Ok((hardened, verdict))
}

/// The forwarded field mask and the policy input of a Containers.Update.
pub(crate) fn update_input(
    sb: &Sandbox,
    current: &api::Container,
    given: &api::Container,
    mask: Option<prost_types::FieldMask>,
) -> (Vec<String>, PolicyInput) {
    let mut paths: Vec<String> = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        paths.push("labels".into());
        let changed = |set: bool, differs: bool| set && differs;
        for (name, differs) in [
            (
                "spec",
                changed(given.spec.is_some(), given.spec != current.spec),
            ),
            (
                "runtime",
                changed(given.runtime.is_some(), given.runtime != current.runtime),
            ),
            (
                "image",
                changed(!given.image.is_empty(), given.image != current.image),
            ),
            (
                "snapshotter",
                changed(
                    !given.snapshotter.is_empty(),
                    given.snapshotter != current.snapshotter,
                ),
            ),
            (
                "snapshot_key",
                changed(
                    !given.snapshot_key.is_empty(),
                    given.snapshot_key != current.snapshot_key,
                ),
            ),
            (
                "extensions",
                changed(
                    !given.extensions.is_empty(),
                    given.extensions != current.extensions,
                ),
            ),
            (
                "sandbox",
                changed(!given.sandbox.is_empty(), given.sandbox != current.sandbox),
            ),
        ] {
            if differs {
                paths.push(name.into());
            }
        }
    }

    let mut label_keys = Vec::new();
    for path in &paths {
        if path == "labels" {
            // A full replacement writes the given labels and deletes the rest.
            label_keys.extend(given.labels.keys().cloned());
            label_keys.extend(
                current
                    .labels
                    .keys()
                    .filter(|k| !given.labels.contains_key(*k))
                    .cloned(),
            );
        } else if let Some(key) = path.strip_prefix("labels.") {
            label_keys.push(key.to_string());
        }
    }
    label_keys.sort();
    label_keys.dedup();

    let request = input::ContainerUpdate {
        id: current.id.clone(),
        paths: paths.clone(),
        label_keys,
    };
    let input = PolicyInput::new(
        "containers.update",
        &current.id,
        facts::sandbox(sb),
        Request::ContainerUpdate(request),
    );
    (paths, input)
}

/// Containers.Update: only labels outside daemon-read prefixes may change.
///
/// Without a field mask containerd would replace every field; the gateway
/// then treats each field the client set to something other than the
/// current value as a requested change, and forwards only the labels.
pub fn container_update(
    engine: &PolicyEngine,
    sb: &Sandbox,
    current: &api::Container,
    req: api::UpdateContainerRequest,
) -> Admission<api::UpdateContainerRequest> {
    const RULE: &str = "containers.update";
    let given = req.container.unwrap_or_default();
    let object = format!("container {}", short_id(&current.id));
    if given.id != current.id {
        return Err(Denied::new(
            RULE,
            &object,
            vec!["the update names another container".into()],
        ));
    }

    let (paths, input) = update_input(sb, current, &given, req.update_mask);
    let verdict = decide(engine, &input, &object)?;

    let hardened = api::UpdateContainerRequest {
        container: Some(api::Container {
            id: current.id.clone(),
            labels: given.labels,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    Ok((hardened, verdict))
}

/// Tasks.Create: refuses client stdio, rootfs, checkpoint and options (rule 4).
/// The caller fills in the gateway's FIFOs and computed rootfs afterwards.
pub fn task_create(
    engine: &PolicyEngine,
    sb: &Sandbox,
    req: api::CreateTaskRequest,
) -> Admission<api::CreateTaskRequest> {
    let object = format!("task {}", short_id(&req.container_id));
    let input = task_create_input(sb, &req);
    let verdict = decide(engine, &input, &object)?;
    Ok((req, verdict))
}

/// Just before Tasks.Create: checks again that every bind mount of the
/// container (as the gateway forwarded it) still resolves, without a
/// symlink, to the host path the decision saw. The workspace is writable
/// by the agent, which could swap a checked directory for a symlink between
/// Containers.Create and the task's start (runc mounts at task create).
pub fn recheck_binds(sb: &Sandbox, container: &api::Container) -> Result<(), Denied> {
    const RULE: &str = "tasks.create";
    let object = format!("task {}", short_id(&container.id));
    let refuse = |reason: String| Denied::new(RULE, &object, vec![reason]);
    let spec: Spec = container
        .spec
        .as_ref()
        .and_then(|any| serde_json::from_slice(&any.value).ok())
        .ok_or_else(|| refuse("the container's spec cannot be read".into()))?;
    // The gateway's own binds (proxy CA, userns sysfs) are not below a volume root.
    let mut spec = spec;
    if let Some(all) = spec.mounts().clone() {
        let own = harden::gateway_binds(sb);
        spec.set_mounts(Some(all.into_iter().filter(|m| !own.contains(m)).collect()));
    }
    mounts::recheck_binds(&sb.volume_roots, &spec).map_err(|e| refuse(e.to_string()))
}

/// The policy input of a Tasks.Create.
pub(crate) fn task_create_input(sb: &Sandbox, req: &api::CreateTaskRequest) -> PolicyInput {
    let request = input::TaskCreate {
        container_id: req.container_id.clone(),
        stdio: StdioFacts::new(&req.stdin, &req.stdout, &req.stderr),
        rootfs: req.rootfs.len(),
        checkpoint: req.checkpoint.is_some(),
        options: req.options.is_some(),
        runtime_path: req.runtime_path.clone(),
    };
    PolicyInput::new(
        "tasks.create",
        &req.container_id,
        facts::sandbox(sb),
        Request::TaskCreate(request),
    )
}

/// Tasks.Exec: the process spec is checked and hardened like the container's;
/// client stdio refused.
pub fn task_exec(
    engine: &PolicyEngine,
    sb: &Sandbox,
    container: &api::Container,
    req: api::ExecProcessRequest,
) -> Admission<api::ExecProcessRequest> {
    const RULE: &str = "tasks.exec";
    let object = format!(
        "exec {} in container {}",
        req.exec_id,
        short_id(&container.id)
    );
    let refuse = |reason: String| Denied::new(RULE, &object, vec![reason]);
    if req.container_id != container.id {
        return Err(refuse("the exec names another container".into()));
    }
    let (process, container_caps, input) = exec_input(sb, container, &req).map_err(refuse)?;
    let verdict = decide(engine, &input, &object)?;

    let allowed: HashSet<Capability> = harden::default_caps()
        .intersection(&container_caps)
        .copied()
        .collect();
    let hardened = harden::process(process, &allowed, sb);
    let out = api::ExecProcessRequest {
        spec: Some(Any {
            type_url: PROCESS_TYPE_URL.to_string(),
            value: harden::to_bytes(&hardened),
        }),
        ..req
    };
    Ok((out, verdict))
}

/// The decoded process, the container's bounding set and the policy input
/// of a Tasks.Exec.
pub(crate) fn exec_input(
    sb: &Sandbox,
    container: &api::Container,
    req: &api::ExecProcessRequest,
) -> Result<(Process, HashSet<Capability>, PolicyInput), String> {
    let process: Process = decode(
        req.spec.as_ref(),
        PROCESS_TYPE_URL,
        &strict::PROCESS,
        "process",
    )?;
    // The container's spec is the one the gateway forwarded; read it leniently.
    let container_caps: HashSet<Capability> = container
        .spec
        .as_ref()
        .and_then(|any| serde_json::from_slice::<Spec>(&any.value).ok())
        .and_then(|spec| {
            spec.process()
                .as_ref()
                .and_then(|p| p.capabilities().clone())
        })
        .and_then(|caps| caps.bounding().clone())
        .ok_or_else(|| "the container's capabilities cannot be read".to_string())?
        .into_iter()
        // The hardening removed CAP_NET_RAW from every container (see
        // `harden::default_caps`); an exec asking for docker's default set
        // is accepted like a create is, and loses it the same way.
        .chain(std::iter::once(Capability::NetRaw))
        .collect();

    let request = input::TaskExec {
        container_id: req.container_id.clone(),
        exec_id: req.exec_id.clone(),
        stdio: StdioFacts::new(&req.stdin, &req.stdout, &req.stderr),
        process: facts::process(&process),
        container_capabilities: {
            let mut v: Vec<String> = container_caps.iter().map(facts::cap_name).collect();
            v.sort();
            v
        },
    };
    let input = PolicyInput::new(
        "tasks.exec",
        &req.container_id,
        facts::sandbox(sb),
        Request::TaskExec(request),
    );
    Ok((process, container_caps, input))
}

/// Any other method: asks the policy with the method name and object id
/// (e.g. namespace writes are refused by policy).
///
/// Method names are the containerd service in lower case, a dot, and the
/// RPC in snake case: `namespaces.create`, `tasks.delete_process`,
/// `containers.list_stream`; berth's own services are `stdio.attach`,
/// `logs.read`, `images.load`.
pub fn generic(
    engine: &PolicyEngine,
    sb: &Sandbox,
    method: &str,
    object: &str,
) -> Result<Verdict, Denied> {
    let input = PolicyInput::new(method, object, facts::sandbox(sb), Request::Generic);
    decide(engine, &input, &object_phrase(method, object))
}

/// "namespace foo" for `namespaces.create` on `foo`.
fn object_phrase(method: &str, object: &str) -> String {
    let area = method.split('.').next().unwrap_or(method);
    let noun = match area {
        "containers" => "container",
        "tasks" => "task",
        "namespaces" => "namespace",
        "images" => "image",
        "content" => "content",
        "snapshots" => "snapshot",
        "leases" => "lease",
        "events" => "events",
        _ => method,
    };
    let object = if area == "containers" || area == "tasks" {
        short_id(object)
    } else {
        object
    };
    if object.is_empty() {
        noun.to_string()
    } else {
        format!("{noun} {object}")
    }
}
