//! `docker run`, `docker create` and `docker start`.
//!
//! run = create + start + attach: flags are decoded and checked first
//! (`options`), then the image and user are resolved and the spec built,
//! then the snapshot, container and task are created through the gateway.
//! A failure after something was created removes it again when `--rm` was
//! given, and always removes a snapshot whose container was refused.

mod options;

use std::collections::HashMap;
use std::io::IsTerminal;

use berth_proto::STDIO_RELAY;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots::PrepareSnapshotRequest;
use tonic::Code;

pub use options::{io_reason, parse_env_file, resolve_env_flag};
use options::{Invalid, RealHost, RunOptions};

use crate::cli::{RunArgs, StartArgs};
use crate::client::Gateway;
use crate::containers::{self, label, names, Container, Record, State};
use crate::error::{exit, CliError, Result};
use crate::image::{self, ImageInfo};
use crate::spec::{self, ProcessInput, SpecInput};
use crate::stdio::{self, Io};

/// The name the CLI was invoked as (`docker` or `berth`), for messages.
pub fn program() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "docker".to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Run,
    Create,
}

/// Why a run or create failed, before it is worded for its command.
#[derive(Debug)]
enum Failure {
    Invalid(Invalid),
    Gateway(tonic::Status),
    Cli(CliError),
}

impl From<Invalid> for Failure {
    fn from(i: Invalid) -> Self {
        Failure::Invalid(i)
    }
}

/// docker's exit code for a daemon error of `run`: the command could not
/// be found (127) or invoked (126), else 125. A policy refusal is always 125.
fn run_exit_code(status: &tonic::Status) -> i32 {
    if status.code() == Code::PermissionDenied {
        return exit::DAEMON;
    }
    let msg = status.message();
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        exit::NOT_FOUND
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        exit::CANNOT_INVOKE
    } else {
        exit::DAEMON
    }
}

/// Words a failure as docker does for `run` (on a `docker:` line) and
/// `create` (daemon errors exit 1, bare). docker adds a `--help` hint on
/// further lines; berth keeps every message to one line.
fn fail(cmd: Cmd, f: Failure) -> CliError {
    let prog = program();
    let hinted = |code: i32, msg: &str| {
        if msg.starts_with(&format!("{prog}:")) {
            return CliError::new(code, msg);
        }
        CliError::new(code, format!("{prog}: {msg}"))
    };
    match (cmd, f) {
        (
            _,
            Failure::Invalid(Invalid {
                message,
                from_daemon: false,
            }),
        ) => hinted(exit::DAEMON, &message),
        (
            Cmd::Run,
            Failure::Invalid(Invalid {
                message,
                from_daemon: true,
            }),
        ) => hinted(
            exit::DAEMON,
            &format!("Error response from daemon: {message}"),
        ),
        (
            Cmd::Create,
            Failure::Invalid(Invalid {
                message,
                from_daemon: true,
            }),
        ) => CliError::general(format!("Error response from daemon: {message}")),
        (Cmd::Run, Failure::Gateway(s)) => {
            hinted(run_exit_code(&s), &containers::daemon_message(&s))
        }
        // A policy refusal is berth's own error: 125, as for run.
        (Cmd::Create, Failure::Gateway(s)) if s.code() == Code::PermissionDenied => {
            CliError::daemon(containers::daemon_message(&s))
        }
        (Cmd::Create, Failure::Gateway(s)) => containers::daemon_error(&s),
        (Cmd::Run, Failure::Cli(e)) => hinted(e.code, &e.message),
        (Cmd::Create, Failure::Cli(e)) => e,
    }
}

/// Everything needed to create one container.
struct Plan {
    opts: RunOptions,
    id: String,
    image: ImageInfo,
    container: api::Container,
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// docker's name conflict message.
fn conflict(name: &str, id: &str) -> Invalid {
    Invalid::daemon(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

async fn prepare(gw: &Gateway, opts: RunOptions) -> Result<Plan, Failure> {
    let existing = containers::list_live(gw).await.map_err(Failure::Cli)?;
    let taken = |n: &str| {
        existing
            .iter()
            .find(|(c, _)| c.name == n)
            .map(|(c, _)| c.id.clone())
    };
    let name = match &opts.name {
        Some(n) => {
            if let Some(id) = taken(n) {
                return Err(conflict(n, &id).into());
            }
            n.clone()
        }
        None => {
            let mut retry = 0;
            loop {
                let n = names::generate(retry);
                if taken(&n).is_none() {
                    break n;
                }
                retry += 1;
            }
        }
    };

    let image = crate::commands::pull::image_for_run(gw, &opts.image, opts.pull)
        .await
        .map_err(Failure::Cli)?;
    let config = image.config.config().clone().unwrap_or_default();
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    let (entrypoint, cmd) = spec::command(
        &list(config.entrypoint()),
        &list(config.cmd()),
        opts.entrypoint.as_deref(),
        &opts.command,
    )
    .map_err(|m| Failure::Invalid(Invalid::daemon(m)))?;
    let user = opts
        .user
        .clone()
        .or_else(|| config.user().clone())
        .unwrap_or_default();
    // An empty user is root; numeric so that images without /etc/passwd work.
    let lookup_user = if user.is_empty() { "0" } else { user.as_str() };
    let (uid, gid, additional_gids) = image::resolve_user(gw, &image, lookup_user)
        .await
        .map_err(Failure::Cli)?;

    let id = random_id();
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let workdir = opts
        .workdir
        .clone()
        .or_else(|| config.working_dir().clone().filter(|w| !w.is_empty()));
    let config_env = spec::config_env(&opts.env, &list(config.env()));
    let args: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();

    let input = SpecInput {
        process: ProcessInput {
            args,
            env: spec::process_env(&config_env, &hostname, opts.tty),
            cwd: workdir.clone().unwrap_or_else(|| "/".to_string()),
            uid,
            gid,
            additional_gids,
            terminal: opts.tty,
            capabilities: opts.capabilities.clone(),
            no_new_privileges: opts.no_new_privileges,
            apparmor_profile: opts.apparmor.clone(),
        },
        hostname,
        read_only_rootfs: opts.read_only,
        binds: opts.binds.clone(),
        privileged: opts.privileged,
        seccomp: opts.seccomp.clone(),
        unmask_system_paths: opts.unmask_system_paths,
        host: opts.host,
        ipc_none: opts.ipc_none,
        network_none: opts.network_none,
        devices: opts.devices.clone(),
        resources: opts.resources,
    };
    let spec = spec::build(&input);

    let record = Record {
        image_id: image.config_digest.clone(),
        entrypoint_len: entrypoint.len(),
        user,
        working_dir: workdir.unwrap_or_default(),
        open_stdin: opts.interactive,
        stdin_once: opts.interactive && !opts.detach,
        attach_stdin: opts.interactive && !opts.detach,
        attach_stdout: !opts.detach,
        attach_stderr: !opts.detach,
        auto_remove: opts.auto_remove,
        stop_signal: opts
            .stop_signal
            .clone()
            .or_else(|| config.stop_signal().clone()),
        stop_timeout: opts.stop_timeout,
        network_mode: opts.network_mode.clone(),
        binds: opts.bind_specs.clone(),
        cap_add: opts.cap_add.clone(),
        cap_drop: opts.cap_drop.clone(),
        privileged: opts.privileged,
        security_opt: opts.security_opt.clone(),
        pid_mode: opts.pid_mode.clone(),
        ipc_mode: opts.ipc_mode.clone(),
        uts_mode: opts.uts_mode.clone(),
        runtime: opts.runtime.clone(),
        memory: opts.resources.memory.unwrap_or(0),
        nano_cpus: opts.resources.nano_cpus.unwrap_or(0),
        pids_limit: opts.resources.pids_limit,
        read_only: opts.read_only,
        devices: opts.device_specs.clone(),
    };
    let record_json = serde_json::to_string(&record)
        .map_err(|e| Failure::Cli(CliError::daemon(e.to_string())))?;
    if label::CONFIG.len() + record_json.len() > containers::MAX_LABEL_SIZE {
        return Err(Invalid::cli(
            "too many options for berth to record on the container (over 4096 bytes)",
        )
        .into());
    }
    let mut labels: HashMap<String, String> = opts.labels.clone().into_iter().collect();
    labels.insert(label::NAME.to_string(), name);
    labels.insert(label::IMAGE.to_string(), opts.image.clone());
    labels.insert(label::CONFIG.to_string(), record_json);

    let spec_bytes =
        serde_json::to_vec(&spec).map_err(|e| Failure::Cli(CliError::daemon(e.to_string())))?;
    let container = api::Container {
        id: id.clone(),
        labels,
        image: image.name.clone(),
        runtime: Some(api::container::Runtime {
            name: opts.runtime.clone(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: containers::SPEC_TYPE_URL.to_string(),
            value: spec_bytes,
        }),
        snapshotter: containers::SNAPSHOTTER.to_string(),
        snapshot_key: id.clone(),
        ..Default::default()
    };
    Ok(Plan {
        opts,
        id,
        image,
        container,
    })
}

/// docker creates missing bind sources; so does berth (as the sandbox user,
/// before the gateway decides whether the source is allowed at all).
fn create_bind_sources(opts: &RunOptions) {
    for b in &opts.binds {
        let p = std::path::Path::new(&b.source);
        if std::fs::symlink_metadata(p).is_err() {
            // A failure here is reported by the gateway's own check.
            let _ = std::fs::create_dir_all(p);
        }
    }
}

/// Prepares the rootfs snapshot and creates the container; a refused
/// container leaves no snapshot behind.
async fn create_container(gw: &Gateway, plan: &Plan) -> Result<(), Failure> {
    create_bind_sources(&plan.opts);
    let prepare = PrepareSnapshotRequest {
        snapshotter: containers::SNAPSHOTTER.to_string(),
        key: plan.id.clone(),
        parent: plan.image.chain_id.clone(),
        labels: HashMap::new(),
    };
    // The reply's mounts are emptied by the gateway: the rootfs is its business.
    containers::snapshots_api(gw)
        .prepare(prepare)
        .await
        .map_err(Failure::Gateway)?;
    let req = api::CreateContainerRequest {
        container: Some(plan.container.clone()),
    };
    if let Err(s) = containers::containers_api(gw).create(req).await {
        let _ = containers::remove_snapshot(gw, containers::SNAPSHOTTER, &plan.id).await;
        return Err(Failure::Gateway(s));
    }
    Ok(())
}

/// Creates the container's task with its streams on the gateway's relay.
async fn create_task(gw: &Gateway, id: &str, stdin: bool, tty: bool) -> Result<(), tonic::Status> {
    let relay = |on: bool| {
        if on {
            STDIO_RELAY.to_string()
        } else {
            String::new()
        }
    };
    let req = api::CreateTaskRequest {
        container_id: id.to_string(),
        stdin: relay(stdin),
        stdout: relay(true),
        // With a TTY, stderr goes to the terminal too.
        stderr: relay(!tty),
        terminal: tty,
        ..Default::default()
    };
    containers::tasks_api(gw).create(req).await.map(|_| ())
}

/// Starts the init process and records the start time.
async fn start_task(gw: &Gateway, id: &str) -> Result<(), tonic::Status> {
    let req = api::StartRequest {
        container_id: id.to_string(),
        exec_id: String::new(),
    };
    containers::tasks_api(gw).start(req).await?;
    // Only `ps`'s "Up …" needs it; a failure here must not fail the run.
    let _ = containers::record_start(gw, id, chrono::Utc::now()).await;
    Ok(())
}

async fn cleanup(gw: &Gateway, id: &str) {
    let _ = containers::remove(gw, id, containers::SNAPSHOTTER, id).await;
}

/// docker's check before attaching a TTY to stdin. Prints docker's message
/// and returns its exit code when stdin is not a terminal.
fn check_tty(stdin: bool, tty: bool) -> Option<i32> {
    if stdin && tty && !std::io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        return Some(1);
    }
    None
}

pub async fn run(gw: &Gateway, a: RunArgs) -> Result<i32> {
    let opts = RunOptions::decode(&a, &RealHost).map_err(|e| fail(Cmd::Run, e.into()))?;
    if !opts.detach {
        if let Some(code) = check_tty(opts.interactive, opts.tty) {
            return Ok(code);
        }
    }
    let plan = prepare(gw, opts).await.map_err(|f| fail(Cmd::Run, f))?;
    create_container(gw, &plan)
        .await
        .map_err(|f| fail(Cmd::Run, f))?;
    let id = plan.id.as_str();
    let opts = &plan.opts;

    if let Err(s) = create_task(gw, id, opts.interactive, opts.tty).await {
        if opts.auto_remove {
            cleanup(gw, id).await;
        }
        return Err(fail(Cmd::Run, Failure::Gateway(s)));
    }

    if opts.detach {
        if let Err(s) = start_task(gw, id).await {
            if opts.auto_remove {
                cleanup(gw, id).await;
            }
            return Err(fail(Cmd::Run, Failure::Gateway(s)));
        }
        println!("{id}");
        return Ok(0);
    }

    let io = Io {
        stdin: opts.interactive,
        tty: opts.tty,
        sig_proxy: true,
    };
    let result = stdio::run_attached(gw, id, "", io, || async move {
        start_task(gw, id)
            .await
            .map_err(|s| fail(Cmd::Run, Failure::Gateway(s)))
    })
    .await;
    if opts.auto_remove {
        if result.is_err() {
            // The attach was cut (the gateway restarted): the process may
            // still run in its shim; `--rm` must not leave it.
            if containers::kill(gw, id, "", 9).await.is_ok() {
                let _ = containers::wait(gw, id, "").await;
            }
        }
        cleanup(gw, id).await;
    }
    match result {
        Ok(status) => Ok(status as i32),
        Err(e) => Err(fail(Cmd::Run, Failure::Cli(e))),
    }
}

pub async fn create(gw: &Gateway, a: RunArgs) -> Result<i32> {
    let opts = RunOptions::decode(&a, &RealHost).map_err(|e| fail(Cmd::Create, e.into()))?;
    let plan = prepare(gw, opts).await.map_err(|f| fail(Cmd::Create, f))?;
    create_container(gw, &plan)
        .await
        .map_err(|f| fail(Cmd::Create, f))?;
    println!("{}", plan.id);
    Ok(0)
}

/// Replaces a finished (or never started) task with a fresh one.
async fn recreate_task(gw: &Gateway, c: &Container) -> Result<(), tonic::Status> {
    containers::delete_task(gw, &c.id).await?;
    create_task(gw, &c.id, c.record.open_stdin, c.tty()).await
}

/// Starts one container detached. Errors are docker's daemon messages.
async fn start_detached(gw: &Gateway, key: &str) -> Result<(), String> {
    let (c, state) = containers::find(gw, key).await.map_err(|e| e.message)?;
    let message = |s: tonic::Status| containers::daemon_message(&s);
    match state {
        State::Running { .. } => return Ok(()),
        State::Paused { .. } => {
            return Err(
                "Error response from daemon: cannot start a paused container, try unpause instead"
                    .to_string(),
            )
        }
        State::Created | State::Exited { .. } => {}
    }
    recreate_task(gw, &c).await.map_err(message)?;
    start_task(gw, &c.id).await.map_err(message)
}

pub async fn start(gw: &Gateway, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(CliError::general(
                "you cannot start and attach multiple containers at once",
            ));
        }
        return start_attached(gw, &a.containers[0], a.interactive).await;
    }
    let mut failed = Vec::new();
    for key in &a.containers {
        match start_detached(gw, key).await {
            Ok(()) => println!("{key}"),
            Err(msg) => {
                eprintln!("{msg}");
                failed.push(key.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::general(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )))
    }
}

async fn start_attached(gw: &Gateway, key: &str, interactive: bool) -> Result<i32> {
    let (c, state) = containers::find(gw, key).await?;
    let io = Io {
        stdin: interactive && c.record.open_stdin,
        tty: c.tty(),
        sig_proxy: true,
    };
    if let Some(code) = check_tty(io.stdin, io.tty) {
        return Ok(code);
    }
    let id = c.id.as_str();
    let status = match state {
        State::Paused { .. } => {
            return Err(CliError::general(
                "Error response from daemon: cannot start a paused container, try unpause instead",
            ))
        }
        // docker attaches to a container that is already running.
        State::Running { .. } => stdio::run_attached(gw, id, "", io, || async { Ok(()) }).await?,
        State::Created | State::Exited { .. } => {
            recreate_task(gw, &c)
                .await
                .map_err(|s| containers::daemon_error(&s))?;
            stdio::run_attached(gw, id, "", io, || async move {
                start_task(gw, id)
                    .await
                    .map_err(|s| containers::daemon_error(&s))
            })
            .await?
        }
    };
    if c.record.auto_remove {
        cleanup(gw, id).await;
    }
    Ok(status as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_map_to_dockers_exit_codes() {
        let unknown = |m: &str| tonic::Status::unknown(m.to_string());
        let not_found = r#"failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#;
        assert_eq!(run_exit_code(&unknown(not_found)), 127);
        let no_file = r#"failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/nosuch/x": stat /nosuch/x: no such file or directory: unknown"#;
        assert_eq!(run_exit_code(&unknown(no_file)), 127);
        let denied = r#"failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc": permission denied: unknown"#;
        assert_eq!(run_exit_code(&unknown(denied)), 126);
        assert_eq!(run_exit_code(&unknown("snapshot not found")), 125);
        // A policy refusal is berth's, whatever its wording.
        assert_eq!(
            run_exit_code(&tonic::Status::permission_denied(
                "refusing bind mount /etc: permission denied"
            )),
            125
        );
    }

    #[test]
    fn failures_are_worded_per_command() {
        let prog = program();
        let e = fail(
            Cmd::Run,
            Failure::Invalid(Invalid {
                message: "network foo not found".into(),
                from_daemon: true,
            }),
        );
        assert_eq!(e.code, 125);
        assert_eq!(
            e.message,
            format!("{prog}: Error response from daemon: network foo not found")
        );
        let e = fail(
            Cmd::Create,
            Failure::Gateway(tonic::Status::permission_denied(
                "refusing privileged container",
            )),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                125,
                "Error response from daemon: refusing privileged container"
            )
        );
        let e = fail(
            Cmd::Create,
            Failure::Gateway(tonic::Status::not_found("image gone")),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (1, "Error response from daemon: image gone")
        );
        let e = fail(
            Cmd::Create,
            Failure::Invalid(Invalid {
                message: "open x: no such file or directory".into(),
                from_daemon: false,
            }),
        );
        assert_eq!(
            (e.code, e.message),
            (125, format!("{prog}: open x: no such file or directory"))
        );
        let e = fail(
            Cmd::Run,
            Failure::Gateway(tonic::Status::unknown(
                "exec: \"x\": executable file not found in $PATH",
            )),
        );
        assert_eq!(e.code, 127);
    }

    #[test]
    fn conflicts_use_dockers_message() {
        assert_eq!(
            conflict("x", "abc").message,
            "Conflict. The container name \"/x\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
        );
    }
}
