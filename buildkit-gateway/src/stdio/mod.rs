//! The stdio relay (boundary rule 4): a task's or exec's standard streams are
//! FIFOs the gateway creates in its private directory,
//! `<state_dir>/io/<container>/<exec id or "init">/{stdin,stdout,stderr}`, and
//! their bytes reach the client over `berth.v1.Stdio/Attach`. A client never
//! names a path.

mod fifo;
pub mod log;
mod relay;

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use relay::{Output, Process};

use self::log::{LogWriter, Stream};
use relay::OutputPipe;

/// How long Tasks.Delete waits for a process's output to drain before the
/// FIFOs go (the shim closes them when it deletes the process, so this is
/// only reached when an attached client stalls the relay).
const DRAIN: Duration = Duration::from_secs(2);
/// The directory name of the init process, which is why no exec may use it.
const INIT_DIR: &str = "init";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid id {0:?}: expected letters, digits and single . _ - between them, at most 76 characters")]
    InvalidId(String),
    #[error("{0} already has a running process")]
    Busy(String),
    #[error("no relayed process {0}: create the task or exec with stdio set to berth-relay first")]
    NotRelayed(String),
    #[error("process {0} was created without stdin")]
    NoStdin(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> RelayError {
    move |source| RelayError::Io {
        context: context.into(),
        source,
    }
}

/// containerd's identifier rule (`identifiers.Validate`): it also keeps ids
/// safe as path components.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    let sep = |c: u8| matches!(c, b'.' | b'_' | b'-');
    !b.is_empty()
        && b.len() <= 76
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || sep(c))
        && !b.windows(2).any(|w| sep(w[0]) && sep(w[1]))
}

/// Which streams a task or exec asked to relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub terminal: bool,
}

impl Streams {
    pub fn any(&self) -> bool {
        self.stdin || self.stdout || self.stderr
    }
}

/// The FIFO paths to put into the forwarded request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

/// Which FIFOs a request needs. The shim of containerd 1.7 stats the stdout
/// and stderr paths whenever any stream is piped (and fails on an empty one),
/// so without a terminal both exist and an unrequested one is drained and
/// dropped, as /dev/null would; with a terminal the console has only stdout.
fn layout(s: Streams) -> [(Stream, bool, bool); 2] {
    // (stream, create, keep)
    if s.terminal {
        [
            (Stream::Stdout, true, s.stdout || s.stderr),
            (Stream::Stderr, false, false),
        ]
    } else {
        [
            (Stream::Stdout, true, s.stdout),
            (Stream::Stderr, true, s.stderr),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    container: String,
    /// Empty for the init process, as in containerd's API.
    exec: String,
}

impl Key {
    fn name(&self) -> String {
        if self.exec.is_empty() {
            self.container.clone()
        } else {
            format!("{}/{}", self.container, self.exec)
        }
    }
}

/// Every relayed process of the sandbox.
#[derive(Clone)]
pub struct Relays {
    inner: Arc<Inner>,
}

struct Inner {
    io_dir: PathBuf,
    log_dir: PathBuf,
    procs: Mutex<HashMap<Key, Arc<Process>>>,
}

impl Relays {
    /// `io_dir` and `log_dir` exist and only the gateway can use them.
    pub fn new(io_dir: PathBuf, log_dir: PathBuf) -> Self {
        Self {
            inner: Arc::new(Inner {
                io_dir,
                log_dir,
                procs: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn key(container: &str, exec: &str) -> Result<Key, RelayError> {
        if !valid_id(container) {
            return Err(RelayError::InvalidId(container.to_string()));
        }
        if !exec.is_empty() && (!valid_id(exec) || exec == INIT_DIR) {
            return Err(RelayError::InvalidId(exec.to_string()));
        }
        Ok(Key {
            container: container.to_string(),
            exec: exec.to_string(),
        })
    }

    fn proc_dir(&self, key: &Key) -> PathBuf {
        let leaf = if key.exec.is_empty() {
            INIT_DIR
        } else {
            &key.exec
        };
        self.inner.io_dir.join(&key.container).join(leaf)
    }

    pub fn log_path(&self, container: &str) -> Result<PathBuf, RelayError> {
        if !valid_id(container) {
            return Err(RelayError::InvalidId(container.to_string()));
        }
        Ok(self.inner.log_dir.join(format!("{container}.log")))
    }

    fn procs(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Process>>> {
        self.inner.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the FIFOs of a process about to be created and starts relaying
    /// them. The init process's output also goes to the container log. Until
    /// `Pending::commit`, dropping the result removes everything again.
    pub fn prepare(
        &self,
        container: &str,
        exec: &str,
        streams: Streams,
    ) -> Result<Pending, RelayError> {
        let key = Self::key(container, exec)?;
        let mut procs = self.procs();
        if let Some(old) = procs.get(&key) {
            if !old.is_ended() {
                return Err(RelayError::Busy(key.name()));
            }
            let old = procs.remove(&key).expect("present");
            old.shutdown();
        }
        let dir = self.proc_dir(&key);
        let paths = match create_fifos(&dir, streams) {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let log = if exec.is_empty() {
            Some(self.log_path(container)?)
        } else {
            None
        };
        let proc = match open_relay(&key, &paths, streams, true, log.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        procs.insert(key.clone(), proc.clone());
        Ok(Pending {
            relays: self.clone(),
            key,
            paths,
            proc,
            committed: false,
        })
    }

    pub fn get(&self, container: &str, exec: &str) -> Result<Arc<Process>, RelayError> {
        let key = Self::key(container, exec)?;
        self.procs()
            .get(&key)
            .cloned()
            .ok_or_else(|| RelayError::NotRelayed(key.name()))
    }

    /// The call that makes the shim open its FIFO ends returned.
    pub fn connect(&self, container: &str, exec: &str) {
        if let Ok(p) = self.get(container, exec) {
            p.connect();
        }
    }

    /// After Tasks.DeleteProcess: lets the output drain, then removes the
    /// process's FIFOs.
    pub async fn finish(&self, container: &str, exec: &str) {
        let Ok(proc) = self.get(container, exec) else {
            return;
        };
        let mut ended = proc.ended();
        let _ = tokio::time::timeout(DRAIN, ended.wait_for(|e| *e)).await;
        if let Ok(key) = Self::key(container, exec) {
            self.remove(&key, &proc);
        }
    }

    /// After Tasks.Delete: the init process and every exec of the container
    /// are gone.
    pub async fn finish_container(&self, container: &str) {
        let execs: Vec<String> = self
            .procs()
            .keys()
            .filter(|k| k.container == container)
            .map(|k| k.exec.clone())
            .collect();
        futures::future::join_all(execs.iter().map(|e| self.finish(container, e))).await;
        self.remove_empty_dir(container);
    }

    /// After Containers.Delete: relays, FIFOs and the log go.
    pub fn remove_container(&self, container: &str) {
        if !valid_id(container) {
            return;
        }
        let gone: Vec<Arc<Process>> = {
            let mut procs = self.procs();
            let keys: Vec<Key> = procs
                .keys()
                .filter(|k| k.container == container)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| procs.remove(k)).collect()
        };
        for p in gone {
            p.shutdown();
        }
        let _ = std::fs::remove_dir_all(self.inner.io_dir.join(container));
        if let Ok(log) = self.log_path(container) {
            let _ = std::fs::remove_file(log);
        }
    }

    fn remove(&self, key: &Key, proc: &Arc<Process>) {
        let mut procs = self.procs();
        // Only if it was not replaced by a new process meanwhile.
        if procs.get(key).is_some_and(|p| Arc::ptr_eq(p, proc)) {
            procs.remove(key);
            drop(procs);
            proc.shutdown();
            let _ = std::fs::remove_dir_all(self.proc_dir(key));
        }
    }

    fn remove_empty_dir(&self, container: &str) {
        // Fails (and stays) while a process of the container still has FIFOs.
        let _ = std::fs::remove_dir(self.inner.io_dir.join(container));
    }

    /// Picks up the FIFOs of processes that outlived a previous gateway, so
    /// their output keeps flowing to the log instead of filling the pipes.
    /// The shims hold their write ends while the processes run; FIFOs of
    /// processes that are gone read EOF at once.
    pub fn recover(&self) -> io::Result<usize> {
        let mut n = 0;
        for c in std::fs::read_dir(&self.inner.io_dir)? {
            let c = c?;
            let container = c.file_name().to_string_lossy().into_owned();
            if !valid_id(&container) || !c.file_type()?.is_dir() {
                continue;
            }
            for p in std::fs::read_dir(c.path())? {
                let p = p?;
                let leaf = p.file_name().to_string_lossy().into_owned();
                let exec = if leaf == INIT_DIR {
                    String::new()
                } else {
                    leaf
                };
                let Ok(key) = Self::key(&container, &exec) else {
                    continue;
                };
                let dir = p.path();
                let found = |name: &str| Some(dir.join(name)).filter(|f| fifo::is_fifo(f));
                let paths = Paths {
                    stdin: found("stdin"),
                    stdout: found("stdout"),
                    stderr: found("stderr"),
                };
                let streams = Streams {
                    stdin: paths.stdin.is_some(),
                    stdout: paths.stdout.is_some(),
                    stderr: paths.stderr.is_some(),
                    terminal: paths.stderr.is_none(),
                };
                if paths.stdout.is_none() {
                    continue;
                }
                let log = if exec.is_empty() {
                    self.log_path(&container).ok()
                } else {
                    None
                };
                match open_relay(&key, &paths, streams, false, log.as_deref()) {
                    Ok(proc) => {
                        self.procs().insert(key, proc);
                        n += 1;
                    }
                    Err(e) => {
                        crate::audit::warn(&format!("recovering relay of {}: {e}", key.name()))
                    }
                }
            }
        }
        Ok(n)
    }
}

fn create_fifos(dir: &Path, streams: Streams) -> Result<Paths, RelayError> {
    if dir.exists() {
        // Left by a process whose delete the gateway did not see.
        std::fs::remove_dir_all(dir)
            .map_err(io_err(format!("removing stale {}", dir.display())))?;
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let mut paths = Paths::default();
    if streams.stdin {
        paths.stdin = Some(dir.join("stdin"));
    }
    for (stream, create, _) in layout(streams) {
        if create {
            let p = dir.join(match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            });
            match stream {
                Stream::Stdout => paths.stdout = Some(p),
                Stream::Stderr => paths.stderr = Some(p),
            }
        }
    }
    for p in [&paths.stdin, &paths.stdout, &paths.stderr]
        .into_iter()
        .flatten()
    {
        fifo::make(p).map_err(io_err(format!("creating fifo {}", p.display())))?;
    }
    Ok(paths)
}

/// Opens the gateway's ends and starts the relay. `fresh`: the shim has not
/// connected yet, so placeholders keep EOF away until it has.
fn open_relay(
    key: &Key,
    paths: &Paths,
    streams: Streams,
    fresh: bool,
    log: Option<&Path>,
) -> Result<Arc<Process>, RelayError> {
    let mut outputs = Vec::new();
    let mut placeholders = Vec::new();
    for (stream, _, keep) in layout(streams) {
        let path = match stream {
            Stream::Stdout => &paths.stdout,
            Stream::Stderr => &paths.stderr,
        };
        let Some(path) = path else { continue };
        let rx = fifo::reader(path).map_err(io_err(format!("opening {}", path.display())))?;
        // After the reader, so that the reader sees the hang-up (fifo.rs).
        let hold =
            fifo::placeholder(path).map_err(io_err(format!("opening {}", path.display())))?;
        if fresh {
            placeholders.push(hold);
        }
        outputs.push(OutputPipe { stream, rx, keep });
    }
    // Opened on first use, once the shim's reader is there (fifo.rs).
    let stdin = paths.stdin.clone();
    let log = match log {
        Some(p) => {
            Some(LogWriter::open(p).map_err(io_err(format!("opening log {}", p.display())))?)
        }
        None => None,
    };
    Ok(Process::start(
        key.name(),
        outputs,
        stdin,
        placeholders,
        log,
    ))
}

/// A relay for a process being created. Dropped uncommitted (the create
/// failed, or the gateway bailed out), it removes the relay and its FIFOs:
/// no FIFO outlives a failed create.
pub struct Pending {
    relays: Relays,
    key: Key,
    paths: Paths,
    proc: Arc<Process>,
    committed: bool,
}

impl Pending {
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The process exists upstream; its relay stays.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.committed {
            self.relays.remove(&self.key, &self.proc);
            self.relays.remove_empty_dir(&self.key.container);
        }
    }
}

#[cfg(test)]
mod tests;
