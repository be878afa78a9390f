//! One process's relay: reads its output FIFOs for as long as it runs,
//! whether or not anyone is attached (so `-d` containers never block on a
//! full pipe), appends the init process's output to the container log, and
//! fans the bytes out to attached clients.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::fifo;
use super::log::{now_nanos, LogWriter, Stream};
use crate::audit;

/// Bytes read from the process in one go.
const CHUNK: usize = 32 << 10;
/// Chunks buffered per attached client before the relay waits for it: a slow
/// client slows the process down, as with docker attach.
const SUBSCRIBER_BUFFER: usize = 64;
/// How often the stdin FIFO is tried until the shim's reader has opened it
/// (a few milliseconds after Tasks.Start or Tasks.Create returned).
const STDIN_POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

impl Output {
    fn stream(&self) -> Stream {
        match self {
            Output::Stdout(_) => Stream::Stdout,
            Output::Stderr(_) => Stream::Stderr,
        }
    }
}

struct Subscriber {
    tx: mpsc::Sender<Output>,
    stdout: bool,
    stderr: bool,
}

impl Subscriber {
    fn wants(&self, s: Stream) -> bool {
        match s {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

#[derive(Default)]
struct Fanout {
    subscribers: Vec<Subscriber>,
    ended: bool,
}

/// An output FIFO the relay reads.
pub struct OutputPipe {
    pub stream: Stream,
    pub rx: pipe::Receiver,
    /// False for a FIFO created only so the shim has both (an unrequested
    /// stream): its bytes are read and dropped, as /dev/null would.
    pub keep: bool,
}

/// The gateway's side of a process's stdin FIFO.
enum Stdin {
    /// The shim's reader has not been seen yet.
    Unopened(PathBuf),
    Open(pipe::Sender),
    Closed,
}

pub struct Process {
    /// For messages: `container` or `container/exec`.
    pub name: String,
    stdin: tokio::sync::Mutex<Stdin>,
    has_stdin: bool,
    placeholders: Mutex<Vec<File>>,
    fanout: Mutex<Fanout>,
    ended: watch::Sender<bool>,
    /// Bumped after every log append, for `logs --follow`.
    logged: watch::Sender<u64>,
    log: Option<Mutex<LogWriter>>,
    task: Mutex<Option<AbortHandle>>,
}

impl Process {
    /// Starts relaying. `placeholders` are dropped by `connect`.
    pub fn start(
        name: String,
        outputs: Vec<OutputPipe>,
        stdin: Option<PathBuf>,
        placeholders: Vec<File>,
        log: Option<LogWriter>,
    ) -> Arc<Self> {
        let proc = Arc::new(Self {
            name,
            has_stdin: stdin.is_some(),
            stdin: tokio::sync::Mutex::new(match stdin {
                Some(path) => Stdin::Unopened(path),
                None => Stdin::Closed,
            }),
            placeholders: Mutex::new(placeholders),
            fanout: Mutex::new(Fanout::default()),
            ended: watch::Sender::new(false),
            logged: watch::Sender::new(0),
            log: log.map(Mutex::new),
            task: Mutex::new(None),
        });
        let relay = proc.clone();
        let handle = tokio::spawn(async move {
            futures::future::join_all(outputs.into_iter().map(|o| relay.pump(o))).await;
            relay.end();
        });
        *lock(&proc.task) = Some(handle.abort_handle());
        proc
    }

    /// The shim opened its ends: from now on EOF on an output FIFO means the
    /// process's output ended.
    pub fn connect(&self) {
        lock(&self.placeholders).clear();
    }

    pub fn has_stdin(&self) -> bool {
        self.has_stdin
    }

    pub fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Resolves once the process's output streams all reached EOF (or the
    /// relay was torn down).
    pub fn ended(&self) -> watch::Receiver<bool> {
        self.ended.subscribe()
    }

    /// Changes after every log append.
    pub fn logged(&self) -> watch::Receiver<u64> {
        self.logged.subscribe()
    }

    /// Subscribes to the output from now on. The receiver ends when the
    /// output ended; at once if it already has.
    pub fn subscribe(&self, stdout: bool, stderr: bool) -> mpsc::Receiver<Output> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let mut f = lock(&self.fanout);
        if !f.ended {
            f.subscribers.push(Subscriber { tx, stdout, stderr });
        }
        rx
    }

    /// Writes to the process's stdin, first waiting for the shim's reader
    /// (fifo.rs says why). Fails once stdin was closed or the process ended.
    pub async fn write_stdin(&self, data: &[u8]) -> io::Result<()> {
        let mut stdin = self.stdin.lock().await;
        match self.open_stdin(&mut stdin).await? {
            Some(tx) => tx.write_all(data).await,
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin is closed")),
        }
    }

    /// Closes the gateway's end of stdin, once the shim's reader is there so
    /// that it sees the bytes and, after Tasks.CloseIO drops the shim's own
    /// write end, EOF. The caller must also send Tasks.CloseIO.
    pub async fn close_stdin(&self) {
        let mut stdin = self.stdin.lock().await;
        let _ = self.open_stdin(&mut stdin).await;
        *stdin = Stdin::Closed;
    }

    /// The open write end: opened now if the shim's reader has come, else
    /// waited for; `None` when stdin is closed or the process ended first.
    async fn open_stdin<'a>(
        &self,
        stdin: &'a mut Stdin,
    ) -> io::Result<Option<&'a mut pipe::Sender>> {
        if let Stdin::Unopened(path) = stdin {
            let mut ended = self.ended.subscribe();
            let opened = loop {
                if let Some(tx) = fifo::stdin_writer(path)? {
                    break Some(tx);
                }
                tokio::select! {
                    _ = tokio::time::sleep(STDIN_POLL) => {}
                    _ = ended.wait_for(|e| *e) => break None,
                }
            };
            *stdin = match opened {
                Some(tx) => Stdin::Open(tx),
                None => Stdin::Closed,
            };
        }
        Ok(match stdin {
            Stdin::Open(tx) => Some(tx),
            _ => None,
        })
    }

    /// Stops relaying now: the process is gone or was never created.
    pub fn shutdown(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        lock(&self.placeholders).clear();
        if let Ok(mut stdin) = self.stdin.try_lock() {
            *stdin = Stdin::Closed;
        }
        self.end();
    }

    async fn pump(&self, mut out: OutputPipe) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match out.rx.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) if out.keep => self.deliver(out.stream, &buf[..n]).await,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    audit::warn(&format!(
                        "relay of {}: reading {:?}: {e}",
                        self.name, out.stream
                    ));
                    return;
                }
            }
        }
    }

    async fn deliver(&self, stream: Stream, data: &[u8]) {
        if let Some(log) = &self.log {
            let res = lock(log).append(stream, now_nanos(), data);
            match res {
                Ok(()) => {
                    self.logged.send_modify(|n| *n += 1);
                }
                Err(e) => audit::warn(&format!("log of {}: {e}", self.name)),
            }
        }
        let out = match stream {
            Stream::Stdout => Output::Stdout(data.to_vec()),
            Stream::Stderr => Output::Stderr(data.to_vec()),
        };
        let targets: Vec<mpsc::Sender<Output>> = lock(&self.fanout)
            .subscribers
            .iter()
            .filter(|s| s.wants(out.stream()))
            .map(|s| s.tx.clone())
            .collect();
        if targets.is_empty() {
            return;
        }
        for tx in targets {
            // A client that went away is pruned below.
            let _ = tx.send(out.clone()).await;
        }
        lock(&self.fanout).subscribers.retain(|s| !s.tx.is_closed());
    }

    fn end(&self) {
        {
            let mut f = lock(&self.fanout);
            f.ended = true;
            // Dropping the senders ends every attached stream after what it
            // already received.
            f.subscribers.clear();
        }
        self.ended.send_replace(true);
        self.logged.send_modify(|n| *n += 1);
    }
}

/// A poisoned lock only means another relay task panicked; the data (a
/// subscriber list, a file handle) is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
