//! PLACEHOLDER interface, owned by the policy helper.
//!
//! Decode, decide, harden: every request that can change the sandbox goes
//! through one function here, which turns it into a typed view, asks the
//! policy, and returns the hardened request to forward — or a denial naming
//! the rule. Nothing here performs I/O except reading host paths for bind
//! mount checks.
#![allow(dead_code, unused_variables)]

use containerd_client::services::v1 as api;

use crate::policy::PolicyEngine;
use crate::sandbox::Sandbox;

/// A refusal, worded for the user: `refusing <object>: <reason> (rule <rule>)`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// Policy rule or gateway rule that refused, e.g. "containers.create".
    pub rule: String,
    pub message: String,
    pub reasons: Vec<String>,
}

/// What was decided, for the audit line.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub rule: String,
    pub object: String,
    pub reasons: Vec<String>,
}

pub type Admission<T> = Result<(T, Verdict), Denied>;

/// Containers.Create: strict spec parse, policy, hardening (rule 3).
pub fn container_create(engine: &PolicyEngine, sb: &Sandbox, c: api::Container) -> Admission<api::Container> {
    Err(unwritten("containers.create"))
}

/// Containers.Update: only labels outside daemon-read prefixes may change.
pub fn container_update(
    engine: &PolicyEngine,
    sb: &Sandbox,
    current: &api::Container,
    req: api::UpdateContainerRequest,
) -> Admission<api::UpdateContainerRequest> {
    Err(unwritten("containers.update"))
}

/// Tasks.Create: refuses client stdio, rootfs, checkpoint and options (rule 4).
/// The caller fills in the gateway's FIFOs and computed rootfs afterwards.
pub fn task_create(engine: &PolicyEngine, sb: &Sandbox, req: api::CreateTaskRequest) -> Admission<api::CreateTaskRequest> {
    Err(unwritten("tasks.create"))
}

/// Tasks.Exec: the process spec is checked and hardened like the container's;
/// client stdio refused.
pub fn task_exec(
    engine: &PolicyEngine,
    sb: &Sandbox,
    container: &api::Container,
    req: api::ExecProcessRequest,
) -> Admission<api::ExecProcessRequest> {
    Err(unwritten("tasks.exec"))
}

/// Any other method: asks the policy with the method name and object id
/// (e.g. namespace writes are refused by policy).
pub fn generic(engine: &PolicyEngine, sb: &Sandbox, method: &str, object: &str) -> Result<Verdict, Denied> {
    Err(unwritten(method))
}

fn unwritten(rule: &str) -> Denied {
    Denied { rule: rule.into(), message: format!("{rule}: admission not written yet"), reasons: vec![] }
}
