//! `docker stop`, `kill`, `rm` and `wait`.
//!
//! Each takes several containers, reports each failure as docker's daemon
//! words it, goes on with the rest, and exits 1 if any failed. A name is
//! printed as the user gave it when its container is done with.

use std::time::Duration;

use tonic::Code;

use crate::cli::{KillArgs, RmArgs, StopArgs, WaitArgs};
use crate::client::Gateway;
use crate::containers::{self, daemon_error, parse_signal, Container, State};
use crate::error::{CliError, Result};

/// docker's default `stop` timeout in seconds.
const DEFAULT_STOP_TIMEOUT: i64 = 10;

fn invalid_signal(s: &str) -> CliError {
    CliError::general(format!("Error response from daemon: Invalid signal: {s}"))
}

/// Runs `op` on each container, printing the name on success and the error
/// otherwise; exit 1 if any failed.
async fn each<'a, F, Fut>(keys: &'a [String], mut op: F) -> Result<i32>
where
    F: FnMut(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    let mut failed = false;
    for key in keys {
        match op(key).await {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}", e.message);
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// Sends `signal`, a killed process that already exited being fine.
async fn signal(gw: &Gateway, id: &str, signal: u32) -> Result<()> {
    match containers::kill(gw, id, "", signal).await {
        Ok(()) => Ok(()),
        Err(s) if s.code() == Code::NotFound => Ok(()),
        Err(s) => Err(daemon_error(&s)),
    }
}

/// Stops a running container as docker does: its stop signal, then SIGKILL
/// after `timeout` seconds (negative: wait forever).
async fn stop_container(gw: &Gateway, c: &Container, sig: u32, timeout: i64) -> Result<()> {
    signal(gw, &c.id, sig).await?;
    let wait = containers::wait(gw, &c.id, "");
    let exited = if timeout < 0 {
        Some(wait.await)
    } else {
        tokio::time::timeout(Duration::from_secs(timeout as u64), wait)
            .await
            .ok()
    };
    match exited {
        Some(Ok(_)) => Ok(()),
        Some(Err(s)) if s.code() == Code::NotFound => Ok(()),
        Some(Err(s)) => Err(daemon_error(&s)),
        None => {
            signal(gw, &c.id, libc::SIGKILL as u32).await?;
            match containers::wait(gw, &c.id, "").await {
                Ok(_) => Ok(()),
                Err(s) if s.code() == Code::NotFound => Ok(()),
                Err(s) => Err(daemon_error(&s)),
            }
        }
    }
}

/// After its process ended, a `--rm` container goes (docker's daemon would
/// remove it on exit).
async fn auto_remove(gw: &Gateway, c: &Container) {
    if c.record.auto_remove {
        let _ = containers::remove(gw, &c.id, &c.snapshotter, &c.snapshot_key).await;
    }
}

pub async fn stop(gw: &Gateway, a: StopArgs) -> Result<i32> {
    let sig = match &a.signal {
        Some(s) => Some(parse_signal(s).ok_or_else(|| invalid_signal(s))?),
        None => None,
    };
    each(&a.containers, |key| async move {
        let (c, state) = containers::find(gw, key).await?;
        if state.is_running() {
            let timeout = a
                .time
                .or(c.record.stop_timeout)
                .unwrap_or(DEFAULT_STOP_TIMEOUT);
            stop_container(gw, &c, sig.unwrap_or_else(|| c.stop_signal()), timeout).await?;
            auto_remove(gw, &c).await;
        }
        Ok(Some(key.to_string()))
    })
    .await
}

pub async fn kill(gw: &Gateway, a: KillArgs) -> Result<i32> {
    let sig = parse_signal(&a.signal).ok_or_else(|| invalid_signal(&a.signal))?;
    each(&a.containers, |key| async move {
        let (c, state) = containers::find(gw, key).await?;
        if !state.is_running() {
            return Err(CliError::general(format!(
                "Error response from daemon: cannot kill container: {key}: container {} is not running",
                c.id
            )));
        }
        containers::kill(gw, &c.id, "", sig)
            .await
            .map_err(|s| CliError::general(format!("Error response from daemon: cannot kill container: {key}: {}", s.message())))?;
        Ok(Some(key.to_string()))
    })
    .await
}

pub async fn rm(gw: &Gateway, a: RmArgs) -> Result<i32> {
    if a.link {
        return Err(CliError::general("--link is not supported by berth"));
    }
    each(&a.containers, |key| async move {
        let (c, state) = match containers::find(gw, key).await {
            Ok(found) => found,
            // docker's `rm -f` reports a missing container but does not fail.
            Err(e) if a.force && e.message.contains("No such container") => {
                eprintln!("{}", e.message);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if state.is_running() {
            if !a.force {
                return Err(CliError::general(format!(
                    "Error response from daemon: cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            stop_container(gw, &c, libc::SIGKILL as u32, -1).await?;
        }
        containers::remove(gw, &c.id, &c.snapshotter, &c.snapshot_key)
            .await
            .map_err(|s| CliError::general(format!("Error response from daemon: cannot remove container \"/{}\": {}", c.name, s.message())))?;
        Ok(Some(key.to_string()))
    })
    .await
}

pub async fn wait(gw: &Gateway, a: WaitArgs) -> Result<i32> {
    each(&a.containers, |key| async move {
        let (c, state) = containers::find(gw, key).await?;
        let code = match state {
            // docker waits for "not running", which a created container already is.
            State::Created => 0,
            State::Exited { code, .. } => code,
            State::Running { .. } | State::Paused { .. } => containers::wait(gw, &c.id, "")
                .await
                .map_err(|s| daemon_error(&s))?,
        };
        auto_remove(gw, &c).await;
        Ok(Some(code.to_string()))
    })
    .await
}
