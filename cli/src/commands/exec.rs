//! `docker exec`: a new process in a running container.
//!
//! The process spec starts from the container's (as the gateway stored it)
//! with `-e`, `-w`, `-u`, `-t` applied; the gateway checks it like the
//! container's. Tasks.Exec registers it, the attach stream is opened, then
//! it is started, waited for and deleted.

use containerd_client::services::v1 as api;
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::client::Gateway;
use crate::commands::run::{io_reason, parse_env_file, resolve_env_flag};
use crate::containers::{self, Container, State};
use crate::error::{exit, CliError, Result};
use crate::image;
use crate::spec;
use crate::stdio::{self, Io};
use berth_proto::STDIO_RELAY;

/// The exit code docker gives an exec whose process could not be started:
/// 127 when the command does not exist, else 126.
fn start_exit_code(msg: &str, command: &str) -> i32 {
    let lower = msg.to_lowercase();
    if lower.contains(&command.to_lowercase())
        && (lower.contains("executable file not found")
            || lower.contains("no such file or directory"))
    {
        exit::NOT_FOUND
    } else {
        exit::CANNOT_INVOKE
    }
}

/// The exec's environment: the container process's, then the exec's `-e`.
fn exec_env(container_env: &[String], exec_env: &[String], tty: bool) -> Vec<String> {
    let mut base = container_env.to_vec();
    if tty && !base.iter().any(|e| e.starts_with("TERM=")) {
        base.push("TERM=xterm".to_string());
    }
    spec::replace_or_append(&base, exec_env)
}

/// The process spec of the exec, from the container's process.
fn process_spec(
    container_process: &Value,
    args: &[String],
    env: Vec<String>,
    cwd: Option<&str>,
    user: Option<(u32, u32, Vec<u32>)>,
    tty: bool,
    privileged: bool,
) -> Value {
    let mut p = container_process.clone();
    if let Some(obj) = p.as_object_mut() {
        // The console size is the container's; the exec's is set by ResizePty.
        obj.remove("consoleSize");
    }
    p["args"] = json!(args);
    p["terminal"] = json!(tty);
    p["env"] = json!(env);
    if let Some(cwd) = cwd {
        p["cwd"] = json!(cwd);
    }
    if let Some((uid, gid, groups)) = user {
        let mut u = json!({ "uid": uid, "gid": gid });
        if !groups.is_empty() {
            u["additionalGids"] = json!(groups);
        }
        p["user"] = u;
    }
    if privileged {
        let all = spec::capabilities(true, &[], &[]).unwrap_or_default();
        p["capabilities"] = json!({ "bounding": all, "effective": all, "permitted": all });
    }
    p
}

async fn user_for(gw: &Gateway, c: &Container, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let image = image::resolve(gw, &c.image_name).await?;
    image::resolve_user(gw, &image, user)
        .await
        .map_err(|e| CliError::new(exit::CANNOT_INVOKE, e.message))
}

pub async fn exec(gw: &Gateway, a: ExecArgs) -> Result<i32> {
    if !a.detach && a.interactive && a.tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let (c, state) = containers::find(gw, &a.container).await?;
    match state {
        State::Running { .. } => {}
        State::Paused { .. } => {
            return Err(CliError::general(format!(
            "Error response from daemon: container {} is paused, unpause the container before exec",
            c.id
        )))
        }
        State::Created | State::Exited { .. } => {
            return Err(CliError::general(format!(
                "Error response from daemon: container {} is not running",
                c.id
            )))
        }
    }
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            return Err(CliError::general(format!(
                "Error response from daemon: the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
    }

    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for file in &a.env_file {
        let content = std::fs::read_to_string(file)
            .map_err(|e| CliError::daemon(format!("open {file}: {}", io_reason(&e))))?;
        env.extend(
            parse_env_file(&content, file, &lookup).map_err(|e| CliError::daemon(e.message))?,
        );
    }
    for e in &a.env {
        env.extend(resolve_env_flag(e, &lookup).map_err(|e| CliError::daemon(e.message))?);
    }

    let user = match &a.user {
        Some(u) => Some(user_for(gw, &c, u).await?),
        None => None,
    };
    let container_process = &c.spec["process"];
    if !container_process.is_object() {
        return Err(CliError::general(format!(
            "Error response from daemon: container {} has no process spec",
            c.id
        )));
    }
    let container_env = containers::string_list(&container_process["env"]);
    let process = process_spec(
        container_process,
        &a.command,
        exec_env(&container_env, &env, a.tty),
        a.workdir.as_deref(),
        user,
        a.tty,
        a.privileged,
    );

    let exec_id = hex::encode(rand::random::<[u8; 32]>());
    let relay = |on: bool| {
        if on {
            STDIO_RELAY.to_string()
        } else {
            String::new()
        }
    };
    let req = api::ExecProcessRequest {
        container_id: c.id.clone(),
        stdin: relay(a.interactive),
        stdout: relay(true),
        stderr: relay(!a.tty),
        terminal: a.tty,
        spec: Some(prost_types::Any {
            type_url: containers::PROCESS_TYPE_URL.to_string(),
            value: serde_json::to_vec(&process).map_err(|e| CliError::daemon(e.to_string()))?,
        }),
        exec_id: exec_id.clone(),
    };
    containers::tasks_api(gw).exec(req).await.map_err(|s| {
        // A policy refusal is berth's own error (125); others are docker's daemon errors (1).
        if s.code() == tonic::Code::PermissionDenied {
            CliError::daemon(containers::daemon_message(&s))
        } else {
            containers::daemon_error(&s)
        }
    })?;

    let id = c.id.as_str();
    let command = a.command.first().cloned().unwrap_or_default();
    let start = || {
        let (exec_id, command) = (exec_id.clone(), command.clone());
        async move {
            let req = api::StartRequest {
                container_id: id.to_string(),
                exec_id,
            };
            match containers::tasks_api(gw).start(req).await {
                Ok(_) => Ok(()),
                Err(s) => {
                    // docker prints the runtime's message bare and exits
                    // with 126/127; the empty message tells `exec` so.
                    eprintln!("{}", s.message());
                    Err(CliError::new(
                        start_exit_code(s.message(), &command),
                        String::new(),
                    ))
                }
            }
        }
    };

    if a.detach {
        return match start().await {
            Ok(()) => Ok(0),
            Err(e) => Ok(e.code),
        };
    }

    let io = Io {
        stdin: a.interactive,
        tty: a.tty,
        sig_proxy: false,
    };
    let result = stdio::run_attached(gw, id, &exec_id, io, start).await;
    if result.is_err() {
        // The attach was cut (the gateway restarted): no one could attach
        // to the process again or learn its status; it must not stay.
        if containers::kill(gw, id, &exec_id, 9).await.is_ok() {
            let _ = containers::wait(gw, id, &exec_id).await;
        }
    }
    let delete = api::DeleteProcessRequest {
        container_id: id.to_string(),
        exec_id: exec_id.clone(),
    };
    let _ = containers::tasks_api(gw).delete_process(delete).await;
    match result {
        Ok(status) => Ok(status as i32),
        Err(e) if e.message.is_empty() => Ok(e.code),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exec_start_failures_map_like_docker() {
        let nf = r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#;
        assert_eq!(start_exit_code(nf, "nosuch"), 127);
        let denied = r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc": permission denied: unknown"#;
        assert_eq!(start_exit_code(denied, "/etc"), 126);
        assert_eq!(start_exit_code("refusing exec", "ls"), 126);
    }

    #[test]
    fn exec_env_adds_term_and_overrides() {
        let base = s(&["PATH=/bin", "HOSTNAME=h", "A=1"]);
        assert_eq!(
            exec_env(&base, &s(&["A=2", "B=3"]), false),
            ["PATH=/bin", "HOSTNAME=h", "A=2", "B=3"]
        );
        assert_eq!(
            exec_env(&base, &[], true),
            ["PATH=/bin", "HOSTNAME=h", "A=1", "TERM=xterm"]
        );
    }

    #[test]
    fn process_spec_keeps_the_containers_confinement() {
        let container = json!({
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/bin"],
            "cwd": "/srv",
            "capabilities": { "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"] },
            "noNewPrivileges": true,
            "consoleSize": { "height": 1, "width": 1 },
        });
        let p = process_spec(
            &container,
            &s(&["ls", "-l"]),
            s(&["PATH=/bin"]),
            None,
            Some((1000, 1000, vec![])),
            true,
            false,
        );
        assert_eq!(p["args"], json!(["ls", "-l"]));
        assert_eq!(p["cwd"], "/srv");
        assert_eq!(p["terminal"], true);
        assert_eq!(p["user"], json!({ "uid": 1000, "gid": 1000 }));
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_CHOWN"]));
        assert_eq!(p["noNewPrivileges"], true);
        assert!(p.get("consoleSize").is_none());
        serde_json::from_value::<oci_spec::runtime::Process>(p).expect("valid OCI process");
        let privileged = process_spec(
            &container,
            &s(&["sh"]),
            vec![],
            Some("/"),
            None,
            false,
            true,
        );
        assert_eq!(
            privileged["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            spec::ALL_CAPS.len()
        );
        assert_eq!(privileged["cwd"], "/");
    }
}
