//! Connection to berth-gateway's containerd facade.
//!
//! The gateway pins the namespace itself; the CLI sends none, since any value
//! it sent would be removed (boundary rule 1).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

use crate::env;
use crate::error::{CliError, Result};

/// A channel to the gateway, shared by every service client of one command.
#[derive(Clone)]
pub struct Gateway {
    pub channel: Channel,
    pub socket: PathBuf,
}

/// Resolves the gateway socket path from `BERTH_CONTAINERD_ADDR`.
pub fn socket_path() -> Result<PathBuf> {
    let addr = std::env::var(env::CONTAINERD_ADDR)
        .unwrap_or_else(|_| env::DEFAULT_CONTAINERD_ADDR.to_string());
    match addr.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(CliError::daemon(format!(
            "invalid {}={addr}: expected unix:///absolute/path",
            env::CONTAINERD_ADDR
        ))),
    }
}

impl Gateway {
    /// Connects to the gateway. Fails with docker's wording when the socket is absent.
    pub async fn connect() -> Result<Self> {
        let socket = socket_path()?;
        let path = socket.clone();
        let endpoint = Endpoint::try_from("http://gateway.invalid")
            .map_err(|e| CliError::daemon(e.to_string()))?;
        let channel = connect_unix(endpoint, path).await.map_err(|_| {
            CliError::daemon(format!(
                "Cannot connect to the berth gateway at unix://{}. Is the gateway running?",
                socket.display()
            ))
        })?;
        Ok(Self { channel, socket })
    }
}

/// How long a command waits for a gateway it was talking to to come back
/// (a restart takes about a second; its grace period for running calls is
/// 5 s). Only reconnects wait: a gateway that is not there at the start is
/// reported at once, as docker reports a missing daemon.
const RECONNECT_WINDOW: Duration = Duration::from_secs(20);
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Connects `endpoint` over the unix socket `path`: both of the gateway's
/// sockets (containerd facade, BuildKit facade) are reached this way.
///
/// When the connection breaks, tonic connects again for the next call. If
/// the gateway is restarting, that call waits for it (up to
/// `RECONNECT_WINDOW`) instead of failing: a `run --rm` whose attach the
/// restart cut still removes its container once the gateway is back.
pub async fn connect_unix(
    endpoint: Endpoint,
    path: std::path::PathBuf,
) -> std::result::Result<tonic::transport::Channel, tonic::transport::Error> {
    let connected = Arc::new(AtomicBool::new(false));
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            let connected = connected.clone();
            async move {
                let again = connected.load(Ordering::Relaxed);
                let stream = connect_retrying(&path, again).await?;
                connected.store(true, Ordering::Relaxed);
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(NoSigPipe(stream)))
            }
        }))
        .await
}

/// Connects to `path`; with `again`, waits while the socket is missing or
/// refuses (the gateway between stopping and listening again).
async fn connect_retrying(path: &Path, again: bool) -> std::io::Result<UnixStream> {
    let deadline = tokio::time::Instant::now() + RECONNECT_WINDOW;
    loop {
        match UnixStream::connect(path).await {
            Err(e)
                if again
                    && matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            res => return res,
        }
    }
}

/// A connection to the gateway whose writes never raise SIGPIPE. The CLI
/// keeps SIGPIPE's default disposition (a closed stdout ends it quietly,
/// as docker), and a plain `write` to a socket whose gateway went away
/// would kill it the same way, silently, with status 141 (a build whose
/// gateway restarted did). `send` with MSG_NOSIGNAL returns EPIPE instead,
/// which reaches the user as a lost connection.
struct NoSigPipe(UnixStream);

impl tokio::io::AsyncRead for NoSigPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for NoSigPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let stream = &self.0;
        loop {
            std::task::ready!(stream.poll_write_ready(cx))?;
            match stream.try_io(tokio::io::Interest::WRITABLE, || send_nosignal(stream, buf)) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn send_nosignal(stream: &UnixStream, buf: &[u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    #[allow(unsafe_code)]
    // SAFETY: the descriptor is the open socket `stream` owns, and the
    // pointer and length are those of `buf`, which outlives the call.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_first_connect_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let err = connect_retrying(&dir.path().join("gw.sock"), false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    static SIGPIPES: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_sigpipe(_: libc::c_int) {
        SIGPIPES.store(true, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn writing_to_a_gateway_that_went_away_is_an_error_not_sigpipe() {
        use tokio::io::AsyncWriteExt;
        // Count SIGPIPEs for the test's length (the harness ignores them,
        // the CLI does not: main.rs).
        #[allow(unsafe_code)]
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(libc::SIGPIPE, on_sigpipe as *const () as libc::sighandler_t);
        }
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut a = NoSigPipe(a);
        let err = a.write_all(b"hello").await.unwrap_err();
        #[allow(unsafe_code)]
        // SAFETY: back to the harness's disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(!SIGPIPES.load(Ordering::SeqCst), "the write raised SIGPIPE");
    }

    #[tokio::test]
    async fn a_reconnect_waits_for_the_gateway_to_listen_again() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gw.sock");
        let later = sock.clone();
        let listener = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let l = tokio::net::UnixListener::bind(&later).unwrap();
            l.accept().await.unwrap()
        });
        connect_retrying(&sock, true).await.unwrap();
        listener.await.unwrap();
    }
}
