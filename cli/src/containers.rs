//! The sandbox's containers as docker shows them.
//!
//! A berth container is a containerd container (spec, snapshot, labels) plus
//! at most one task. docker keeps more than the OCI spec says (the command as
//! typed, `--rm`, the stop signal, …); berth records that as JSON in the
//! `berth.config` label at create time, and the start time in
//! `berth.started-at` when a task starts. Everything else (state, exit code,
//! finish time) is read from the task.

mod inspect;
pub mod names;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::types::v1::{Process, Status};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use tonic::Code;

use crate::client::Gateway;
use crate::error::{CliError, Result};

// Called by `commands::inspect` (owned by the images side of the CLI).
#[allow(unused_imports)]
pub use inspect::inspect_json;

/// Labels berth's CLI keeps on a container besides the shared ones in
/// `berth_proto::labels`. User labels may not use the `berth.` prefix.
pub mod label {
    pub use berth_proto::labels::{IMAGE, NAME};
    /// JSON of [`super::Record`].
    pub const CONFIG: &str = "berth.config";
    /// RFC 3339 time the current task was started.
    pub const STARTED_AT: &str = "berth.started-at";
    /// Prefix reserved for berth's own labels.
    pub const RESERVED_PREFIX: &str = "berth.";
}

/// The snapshotter every container uses (the gateway pins it too).
pub const SNAPSHOTTER: &str = "overlayfs";
/// The runtime every container uses (boundary rule 3).
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// containerd's type URL for a JSON OCI runtime spec.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// containerd's type URL for a JSON OCI process spec (Tasks.Exec).
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// containerd refuses a label whose key and value together exceed this.
pub const MAX_LABEL_SIZE: usize = 4096;

/// What docker keeps in a container's config that the OCI spec does not
/// say, recorded in the `berth.config` label. Fields default so that a
/// record written by an older berth still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Record {
    /// Digest of the image config at create time (docker's `Image`).
    pub image_id: String,
    /// How many leading process args came from the entrypoint.
    pub entrypoint_len: usize,
    /// `-u` as typed, or the image's `User`.
    pub user: String,
    /// `-w` as typed, or the image's `WorkingDir`.
    pub working_dir: String,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub auto_remove: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// docker's NetworkMode: `bridge` (berth's default network), `host` or `none`.
    pub network_mode: String,
    pub binds: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub uts_mode: String,
    pub runtime: String,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    pub devices: Vec<String>,
}

/// A container of the sandbox, decoded from containerd's record.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    /// docker name without the leading slash.
    pub name: String,
    /// The image as the user typed it.
    pub image: String,
    /// The image's full name in containerd.
    pub image_name: String,
    pub created: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    /// The user's labels (berth's own removed).
    pub labels: BTreeMap<String, String>,
    pub record: Record,
    /// The OCI spec as stored (after the gateway's hardening).
    pub spec: serde_json::Value,
    pub snapshotter: String,
    pub snapshot_key: String,
    pub runtime: String,
}

impl Container {
    pub fn from_api(c: api::Container) -> Self {
        let mut labels: BTreeMap<String, String> = c.labels.into_iter().collect();
        let name = labels
            .remove(label::NAME)
            .unwrap_or_else(|| c.id.chars().take(12).collect());
        let image = labels
            .remove(label::IMAGE)
            .unwrap_or_else(|| c.image.clone());
        let record = labels
            .remove(label::CONFIG)
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let started_at = labels
            .remove(label::STARTED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        labels.retain(|k, _| !k.starts_with(label::RESERVED_PREFIX));
        let spec = c
            .spec
            .as_ref()
            .and_then(|any| serde_json::from_slice(&any.value).ok())
            .unwrap_or(serde_json::Value::Null);
        Self {
            name,
            image,
            image_name: c.image,
            created: c.created_at.as_ref().and_then(timestamp),
            started_at,
            labels,
            record,
            spec,
            snapshotter: c.snapshotter,
            snapshot_key: c.snapshot_key,
            runtime: c.runtime.map(|r| r.name).unwrap_or_default(),
            id: c.id,
        }
    }

    /// The init process's args (entrypoint followed by command).
    pub fn args(&self) -> Vec<String> {
        string_list(&self.spec["process"]["args"])
    }

    pub fn tty(&self) -> bool {
        self.spec["process"]["terminal"].as_bool().unwrap_or(false)
    }

    /// docker's list `Command`: path and args joined by spaces.
    pub fn command_line(&self) -> String {
        self.args().join(" ")
    }

    /// Signal `docker stop` sends first.
    pub fn stop_signal(&self) -> u32 {
        self.record
            .stop_signal
            .as_deref()
            .and_then(parse_signal)
            .unwrap_or(libc::SIGTERM as u32)
    }
}

/// A string array of a JSON value; missing or malformed is empty.
pub fn string_list(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// docker's view of a container's state, from its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No task, or a task that was never started.
    Created,
    Running {
        pid: u32,
    },
    Paused {
        pid: u32,
    },
    Exited {
        code: u32,
        finished: Option<DateTime<Utc>>,
    },
}

impl State {
    pub fn from_task(task: Option<&Process>) -> Self {
        let Some(t) = task else { return State::Created };
        match Status::try_from(t.status).unwrap_or(Status::Unknown) {
            Status::Running => State::Running { pid: t.pid },
            Status::Paused | Status::Pausing => State::Paused { pid: t.pid },
            Status::Stopped => State::Exited {
                code: t.exit_status,
                finished: t.exited_at.as_ref().and_then(timestamp),
            },
            // containerd answers Unknown when it could not get the shim's
            // state (a timeout under load); the task exists, so it runs.
            Status::Unknown => State::Running { pid: t.pid },
            Status::Created => State::Created,
        }
    }

    /// Running or paused: the container's processes exist.
    pub fn is_running(&self) -> bool {
        matches!(self, State::Running { .. } | State::Paused { .. })
    }

    /// docker's `State.Status` and ps `State` word.
    pub fn word(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running { .. } => "running",
            State::Paused { .. } => "paused",
            State::Exited { .. } => "exited",
        }
    }

    /// docker's ps STATUS column (its daemon's `State.String()`).
    pub fn describe(&self, started: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
        let since = |t: Option<DateTime<Utc>>| human_duration(now - t.unwrap_or(now));
        match self {
            State::Created => "Created".to_string(),
            State::Running { .. } => format!("Up {}", since(started)),
            State::Paused { .. } => format!("Up {} (Paused)", since(started)),
            State::Exited { code, finished } => format!("Exited ({code}) {} ago", since(*finished)),
        }
    }
}

/// docker's `units.HumanDuration`: "Less than a second", "1 second",
/// "About a minute", "3 hours", "2 weeks", …
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded to the nearest, as go-units does.
    let hours = (d.num_milliseconds() as f64 / 3_600_000.0 + 0.5) as i64;
    if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", d.num_hours() / 24 / 365)
    }
}

/// Converts a protobuf timestamp; containerd's zero time (year 1) is `None`.
pub fn timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    if t.seconds <= 0 {
        return None;
    }
    DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
}

/// Go's JSON form of a `time.Time` (RFC 3339 with trailing zeros of the
/// fraction trimmed); `None` is Go's zero time, as docker prints it.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    let frac = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = frac.trim_end_matches('0');
    let dot = if frac.is_empty() { "" } else { "." };
    format!("{}{dot}{frac}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Linux signal numbers by name, for `kill -s`, `stop -s` and `--stop-signal`.
const SIGNALS: &[(&str, u32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

const SIGRTMIN: u32 = 34;
const SIGRTMAX: u32 = 64;

/// Parses a signal as docker does: a number, or a name with or without
/// `SIG`, in any case, including `RTMIN+n` / `RTMAX-n`.
pub fn parse_signal(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(n) = SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v) {
        return Some(n);
    }
    let rt = |base: u32, off: &str, sign: i64| -> Option<u32> {
        let off: i64 = if off.is_empty() { 0 } else { off.parse().ok()? };
        let n = base as i64 + sign * off;
        (SIGRTMIN as i64..=SIGRTMAX as i64)
            .contains(&n)
            .then_some(n as u32)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(SIGRTMIN, rest.strip_prefix('+').unwrap_or(rest), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(SIGRTMAX, rest.strip_prefix('-').unwrap_or(rest), -1);
    }
    None
}

pub fn containers_api(gw: &Gateway) -> ContainersClient<Channel> {
    ContainersClient::new(gw.channel.clone())
}

pub fn tasks_api(gw: &Gateway) -> TasksClient<Channel> {
    TasksClient::new(gw.channel.clone())
}

pub fn snapshots_api(gw: &Gateway) -> SnapshotsClient<Channel> {
    SnapshotsClient::new(gw.channel.clone())
}

/// `Error response from daemon: <message>`: how docker words anything its
/// daemon (here: the gateway) refused or failed.
pub fn daemon_message(status: &tonic::Status) -> String {
    if let Some(e) = crate::error::CliError::unavailable(status) {
        return e.message;
    }
    let msg = status.message().trim();
    if msg.is_empty() {
        format!(
            "Error response from daemon: {}",
            status.code().description()
        )
    } else {
        format!("Error response from daemon: {msg}")
    }
}

/// A gateway failure as docker's non-run commands report it (exit 1).
pub fn daemon_error(status: &tonic::Status) -> CliError {
    CliError::general(daemon_message(status))
}

pub fn no_such_container(key: &str) -> CliError {
    CliError::general(format!(
        "Error response from daemon: No such container: {key}"
    ))
}

/// Every container of the sandbox, newest first (docker's ps order).
pub async fn list(gw: &Gateway) -> Result<Vec<Container>> {
    let reply = containers_api(gw)
        .list(api::ListContainersRequest { filters: vec![] })
        .await
        .map_err(|s| daemon_error(&s))?
        .into_inner();
    let mut all: Vec<Container> = reply
        .containers
        .into_iter()
        .map(Container::from_api)
        .collect();
    all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(all)
}

#[derive(Debug)]
pub enum Lookup<'a> {
    Found(&'a Container),
    Missing,
    Ambiguous,
}

impl PartialEq for Lookup<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Lookup::Found(a), Lookup::Found(b)) => a.id == b.id,
            (Lookup::Missing, Lookup::Missing) | (Lookup::Ambiguous, Lookup::Ambiguous) => true,
            _ => false,
        }
    }
}

/// docker's resolution of a container reference: full ID, then exact
/// name (with or without its slash), then unique ID prefix.
pub fn select<'a>(all: &'a [Container], key: &str) -> Lookup<'a> {
    if key.is_empty() {
        return Lookup::Missing;
    }
    if let Some(c) = all.iter().find(|c| c.id == key) {
        return Lookup::Found(c);
    }
    let name = key.strip_prefix('/').unwrap_or(key);
    if let Some(c) = all.iter().find(|c| c.name == name) {
        return Lookup::Found(c);
    }
    let mut prefixed = all.iter().filter(|c| c.id.starts_with(key));
    match (prefixed.next(), prefixed.next()) {
        (Some(c), None) => Lookup::Found(c),
        (Some(_), Some(_)) => Lookup::Ambiguous,
        _ => Lookup::Missing,
    }
}

/// Every container with its state, newest first, after removing the
/// `--rm` containers that have exited: docker's daemon removes them when
/// they exit; berth has no daemon, so whoever looks first does.
pub async fn list_live(gw: &Gateway) -> Result<Vec<(Container, State)>> {
    let all = list(gw).await?;
    let mut tasks = tasks(gw).await?;
    let mut live = Vec::with_capacity(all.len());
    for c in all {
        let state = State::from_task(tasks.remove(&c.id).as_ref());
        if c.record.auto_remove && sweepable(&c.record, &state, Utc::now()) {
            // Best effort: another berth may be removing it at the same time.
            let _ = remove(gw, &c.id, &c.snapshotter, &c.snapshot_key).await;
            continue;
        }
        live.push((c, state));
    }
    Ok(live)
}

/// How long an exited `--rm` container whose output a CLI was attached to
/// is left to that CLI to remove (it does so right after the exit) before
/// any other berth command removes it (the attached CLI died).
const ATTACHED_REMOVAL_GRACE_SECS: i64 = 30;

/// Whether an exited `--rm` container is left for this command to remove.
/// A detached one is nobody's; an attached one belongs to the `run` that
/// waits on it, and removing it under that `run` would fail its Wait or
/// Delete (seen as parallel `docker run --rm` exiting 125 with "not found").
fn sweepable(record: &Record, state: &State, now: DateTime<Utc>) -> bool {
    let State::Exited { finished, .. } = state else {
        return false;
    };
    if !record.attach_stdout {
        return true;
    }
    match finished {
        Some(t) => (now - *t).num_seconds() >= ATTACHED_REMOVAL_GRACE_SECS,
        None => false,
    }
}

/// Finds one container by name, ID or unique ID prefix, with its state.
pub async fn find(gw: &Gateway, key: &str) -> Result<(Container, State)> {
    let live = list_live(gw).await?;
    let all: Vec<Container> = live.iter().map(|(c, _)| c.clone()).collect();
    let id = resolve(&all, key)?.id.clone();
    Ok(live
        .into_iter()
        .find(|(c, _)| c.id == id)
        .expect("resolved from the same list"))
}

/// [`select`] with docker's errors.
pub fn resolve<'a>(all: &'a [Container], key: &str) -> Result<&'a Container> {
    match select(all, key) {
        Lookup::Found(c) => Ok(c),
        Lookup::Missing => Err(no_such_container(key)),
        Lookup::Ambiguous => Err(CliError::general(format!(
            "Error response from daemon: multiple IDs found with provided prefix: {key}"
        ))),
    }
}

/// The container's init process, if it has a task.
pub async fn task(gw: &Gateway, id: &str) -> Result<Option<Process>> {
    let req = api::GetRequest {
        container_id: id.to_string(),
        exec_id: String::new(),
    };
    match tasks_api(gw).get(req).await {
        Ok(r) => Ok(r.into_inner().process),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(daemon_error(&s)),
    }
}

/// Every task of the sandbox by container ID.
pub async fn tasks(gw: &Gateway) -> Result<HashMap<String, Process>> {
    let reply = tasks_api(gw)
        .list(api::ListTasksRequest {
            filter: String::new(),
        })
        .await
        .map_err(|s| daemon_error(&s))?
        .into_inner();
    // containerd names an init process by its container in `id` and leaves
    // `container_id` empty.
    let key = |p: &Process| {
        if p.container_id.is_empty() {
            p.id.clone()
        } else {
            p.container_id.clone()
        }
    };
    Ok(reply.tasks.into_iter().map(|p| (key(&p), p)).collect())
}

/// Sends a signal to a process (the init process when `exec_id` is empty).
pub async fn kill(gw: &Gateway, id: &str, exec_id: &str, signal: u32) -> Result<(), tonic::Status> {
    let req = api::KillRequest {
        container_id: id.to_string(),
        exec_id: exec_id.to_string(),
        signal,
        all: false,
    };
    tasks_api(gw).kill(req).await.map(|_| ())
}

/// Waits for a process to exit and returns its status.
pub async fn wait(gw: &Gateway, id: &str, exec_id: &str) -> Result<u32, tonic::Status> {
    let req = api::WaitRequest {
        container_id: id.to_string(),
        exec_id: exec_id.to_string(),
    };
    Ok(tasks_api(gw).wait(req).await?.into_inner().exit_status)
}

/// Deletes a stopped (or never started) task; a missing task is fine.
pub async fn delete_task(gw: &Gateway, id: &str) -> Result<(), tonic::Status> {
    match tasks_api(gw)
        .delete(api::DeleteTaskRequest {
            container_id: id.to_string(),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == Code::NotFound => Ok(()),
        Err(s) => Err(s),
    }
}

/// Removes a snapshot; a missing one is fine.
pub async fn remove_snapshot(
    gw: &Gateway,
    snapshotter: &str,
    key: &str,
) -> Result<(), tonic::Status> {
    let req = api::snapshots::RemoveSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        key: key.to_string(),
    };
    match snapshots_api(gw).remove(req).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == Code::NotFound => Ok(()),
        Err(s) => Err(s),
    }
}

/// Removes a container that is not running: its task, the container record
/// and its snapshot, so nothing is left behind.
pub async fn remove(
    gw: &Gateway,
    id: &str,
    snapshotter: &str,
    snapshot_key: &str,
) -> Result<(), tonic::Status> {
    delete_task(gw, id).await?;
    match containers_api(gw)
        .delete(api::DeleteContainerRequest { id: id.to_string() })
        .await
    {
        Ok(_) => {}
        Err(s) if s.code() == Code::NotFound => {}
        Err(s) => return Err(s),
    }
    if !snapshot_key.is_empty() {
        let snapshotter = if snapshotter.is_empty() {
            SNAPSHOTTER
        } else {
            snapshotter
        };
        remove_snapshot(gw, snapshotter, snapshot_key).await?;
    }
    Ok(())
}

/// Records when the container's current task started (docker's StartedAt),
/// which containerd does not keep.
pub async fn record_start(gw: &Gateway, id: &str, at: DateTime<Utc>) -> Result<(), tonic::Status> {
    let container = api::Container {
        id: id.to_string(),
        labels: HashMap::from([(label::STARTED_AT.to_string(), at.to_rfc3339())]),
        ..Default::default()
    };
    let req = api::UpdateContainerRequest {
        container: Some(container),
        update_mask: Some(prost_types::FieldMask {
            paths: vec![format!("labels.{}", label::STARTED_AT)],
        }),
    };
    containers_api(gw).update(req).await.map(|_| ())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sweep_tests;
