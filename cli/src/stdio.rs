//! A process's standard streams, relayed through the gateway.
//!
//! The gateway owns the process's FIFOs (boundary rule 4); the CLI reaches
//! them only through `berth.v1.Stdio/Attach`. The attach stream is opened
//! and confirmed (`ready`) before the process starts, so no output is lost.
//! This module also owns the local terminal: raw mode for `-it` (restored
//! on every way out), window size, and docker's signal proxy.

use std::future::Future;
use std::io::IsTerminal;

use berth_proto::berth::v1::stdio_client::StdioClient;
use berth_proto::berth::v1::{
    attach_request, attach_response, AttachOpen, AttachRequest, AttachResponse,
};
use containerd_client::services::v1 as api;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Gateway;
use crate::containers::{self, daemon_message};
use crate::error::{CliError, Result};

/// How the local side is connected to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Io {
    /// Local stdin is pumped into the process (`-i`).
    pub stdin: bool,
    /// The process has a TTY (`-t`): one output stream, raw local terminal.
    pub tty: bool,
    /// Forward the CLI's signals to the process (docker's sig-proxy).
    pub sig_proxy: bool,
}

/// The local terminal in raw mode; restores the saved settings when dropped.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode, as docker does for `-it`. `None`
    /// when stdin is not a terminal.
    pub fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// (columns, rows) of the terminal on stdout, if it is one.
pub fn window_size() -> Option<(u16, u16)> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer, which points
    // to a live, correctly typed local.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

async fn resize(gw: &Gateway, container_id: &str, exec_id: &str) {
    if let Some((cols, rows)) = window_size() {
        let req = api::ResizePtyRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            width: cols.into(),
            height: rows.into(),
        };
        // A failed resize leaves the previous size; nothing to report.
        let _ = containers::tasks_api(gw).resize_pty(req).await;
    }
}

/// An open attach stream whose `ready` has been received.
pub struct Attachment {
    requests: mpsc::Sender<AttachRequest>,
    responses: tonic::Streaming<AttachResponse>,
}

/// Opens the attach stream of a process (the init process when `exec_id`
/// is empty) and waits until the gateway has subscribed it to the output.
pub async fn attach(
    gw: &Gateway,
    container_id: &str,
    exec_id: &str,
    io: Io,
) -> Result<Attachment, tonic::Status> {
    let (requests, rx) = mpsc::channel(16);
    let open = AttachOpen {
        container_id: container_id.to_string(),
        exec_id: exec_id.to_string(),
        stdin: io.stdin,
        stdout: true,
        stderr: !io.tty,
    };
    requests
        .send(AttachRequest {
            payload: Some(attach_request::Payload::Open(open)),
        })
        .await
        .map_err(|_| tonic::Status::internal("attach stream closed"))?;
    let mut responses = StdioClient::new(gw.channel.clone())
        .attach(ReceiverStream::new(rx))
        .await?
        .into_inner();
    loop {
        match responses.message().await? {
            Some(AttachResponse {
                payload: Some(attach_response::Payload::Ready(_)),
            }) => break,
            Some(other) => write_output(other).await,
            None => {
                return Err(tonic::Status::unavailable(
                    "the gateway closed the attach stream before it was ready",
                ))
            }
        }
    }
    Ok(Attachment {
        requests,
        responses,
    })
}

async fn write_output(r: AttachResponse) {
    match r.payload {
        Some(attach_response::Payload::Stdout(b)) => {
            let mut out = tokio::io::stdout();
            let _ = out.write_all(&b).await;
            let _ = out.flush().await;
        }
        Some(attach_response::Payload::Stderr(b)) => {
            let mut err = tokio::io::stderr();
            let _ = err.write_all(&b).await;
            let _ = err.flush().await;
        }
        _ => {}
    }
}

impl Attachment {
    /// Copies the process's output to the local stdout/stderr until the
    /// gateway ends the stream (the process's output closed); with `stdin`,
    /// pumps the local stdin to the process and closes it at EOF.
    pub async fn relay(mut self, stdin: bool) {
        let pump = stdin.then(|| tokio::spawn(pump_stdin(self.requests.clone())));
        while let Ok(Some(r)) = self.responses.message().await {
            write_output(r).await;
        }
        if let Some(p) = pump {
            p.abort();
        }
        // `self.requests` lives until here so the request side stays open
        // while output flows, whether or not stdin is attached.
        drop(self.requests);
    }
}

async fn pump_stdin(requests: mpsc::Sender<AttachRequest>) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let payload = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => attach_request::Payload::CloseStdin(true),
            Ok(n) => attach_request::Payload::Stdin(buf[..n].to_vec()),
        };
        let last = matches!(payload, attach_request::Payload::CloseStdin(_));
        if requests
            .send(AttachRequest {
                payload: Some(payload),
            })
            .await
            .is_err()
            || last
        {
            return;
        }
    }
}

/// Signals docker's sig-proxy forwards (SIGCHLD, SIGPIPE, SIGURG and
/// SIGWINCH stay local; SIGKILL and SIGSTOP cannot be caught).
const PROXIED: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Forwards the CLI's signals to the process until aborted.
fn spawn_signal_proxy(gw: &Gateway, container_id: &str, exec_id: &str) -> Vec<JoinHandle<()>> {
    PROXIED
        .iter()
        .filter_map(|&sig| {
            let mut stream = signal(SignalKind::from_raw(sig)).ok()?;
            let (gw, id, exec) = (gw.clone(), container_id.to_string(), exec_id.to_string());
            Some(tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let _ = containers::kill(&gw, &id, &exec, sig as u32).await;
                }
            }))
        })
        .collect()
}

/// Follows the local window size (SIGWINCH) until aborted.
fn spawn_resizer(gw: &Gateway, container_id: &str, exec_id: &str) -> Option<JoinHandle<()>> {
    let mut winch = signal(SignalKind::window_change()).ok()?;
    let (gw, id, exec) = (gw.clone(), container_id.to_string(), exec_id.to_string());
    Some(tokio::spawn(async move {
        while winch.recv().await.is_some() {
            resize(&gw, &id, &exec).await;
        }
    }))
}

/// Resolves with the signal number when the CLI is told to end (with a TTY,
/// where signals are not proxied): the terminal must be restored first.
async fn termination() -> i32 {
    let mut streams = Vec::new();
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
        if let Ok(s) = signal(SignalKind::from_raw(sig)) {
            streams.push((sig, s));
        }
    }
    if streams.is_empty() {
        return std::future::pending().await;
    }
    let waits = streams.into_iter().map(|(sig, mut s)| {
        Box::pin(async move {
            s.recv().await;
            sig
        })
    });
    futures::future::select_all(waits).await.0
}

/// Runs a created process attached to the local terminal: attach, then
/// `start`, then relay until it exits; returns its exit status. The local
/// terminal is restored on every way out.
pub async fn run_attached<F, Fut>(
    gw: &Gateway,
    container_id: &str,
    exec_id: &str,
    io: Io,
    start: F,
) -> Result<u32>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let attachment = attach(gw, container_id, exec_id, io)
        .await
        .map_err(|s| CliError::daemon(daemon_message(&s)))?;
    let raw = if io.tty && io.stdin {
        RawTerminal::enter()
    } else {
        None
    };
    start().await?;

    let mut helpers = Vec::new();
    if io.tty {
        resize(gw, container_id, exec_id).await;
        helpers.extend(spawn_resizer(gw, container_id, exec_id));
    } else if io.sig_proxy {
        helpers.extend(spawn_signal_proxy(gw, container_id, exec_id));
    }
    let output = tokio::spawn(attachment.relay(io.stdin));

    let exit = tokio::select! {
        r = containers::wait(gw, container_id, exec_id) => r,
        sig = termination(), if io.tty => {
            for h in &helpers { h.abort(); }
            output.abort();
            drop(raw);
            return Ok(128 + sig as u32);
        }
    };
    for h in &helpers {
        h.abort();
    }
    let status = match exit {
        Ok(status) => status,
        Err(s) => {
            output.abort();
            drop(raw);
            return Err(CliError::daemon(daemon_message(&s)));
        }
    };
    // The stream ends once the process's output has closed: everything it
    // wrote has been printed.
    let _ = output.await;
    drop(raw);
    Ok(status)
}
