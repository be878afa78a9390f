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
    move |source| RelayError::Io { context: context.into(), source }
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
        [(Stream::Stdout, true, s.stdout || s.stderr), (Stream::Stderr, false, false)]
    } else {
        [(Stream::Stdout, true, s.stdout), (Stream::Stderr, true, s.stderr)]
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
        Self { inner: Arc::new(Inner { io_dir, log_dir, procs: Mutex::new(HashMap::new()) }) }
    }

    fn key(container: &str, exec: &str) -> Result<Key, RelayError> {
        if !valid_id(container) {
            return Err(RelayError::InvalidId(container.to_string()));
        }
        if !exec.is_empty() && (!valid_id(exec) || exec == INIT_DIR) {
            return Err(RelayError::InvalidId(exec.to_string()));
        }
        Ok(Key { container: container.to_string(), exec: exec.to_string() })
    }

    fn proc_dir(&self, key: &Key) -> PathBuf {
        let leaf = if key.exec.is_empty() { INIT_DIR } else { &key.exec };
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
    pub fn prepare(&self, container: &str, exec: &str, streams: Streams) -> Result<Pending, RelayError> {
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
        let log = if exec.is_empty() { Some(self.log_path(container)?) } else { None };
        let proc = match open_relay(&key, &paths, streams, true, log.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        procs.insert(key.clone(), proc.clone());
        Ok(Pending { relays: self.clone(), key, paths, proc, committed: false })
    }

    pub fn get(&self, container: &str, exec: &str) -> Result<Arc<Process>, RelayError> {
        let key = Self::key(container, exec)?;
        self.procs().get(&key).cloned().ok_or_else(|| RelayError::NotRelayed(key.name()))
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
        let Ok(proc) = self.get(container, exec) else { return };
        let mut ended = proc.ended();
        let _ = tokio::time::timeout(DRAIN, ended.wait_for(|e| *e)).await;
        if let Ok(key) = Self::key(container, exec) {
            self.remove(&key, &proc);
        }
    }

    /// After Tasks.Delete: the init process and every exec of the container
    /// are gone.
    pub async fn finish_container(&self, container: &str) {
        let execs: Vec<String> =
            self.procs().keys().filter(|k| k.container == container).map(|k| k.exec.clone()).collect();
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
            let keys: Vec<Key> = procs.keys().filter(|k| k.container == container).cloned().collect();
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
                let exec = if leaf == INIT_DIR { String::new() } else { leaf };
                let Ok(key) = Self::key(&container, &exec) else { continue };
                let dir = p.path();
                let found = |name: &str| Some(dir.join(name)).filter(|f| fifo::is_fifo(f));
                let paths = Paths { stdin: found("stdin"), stdout: found("stdout"), stderr: found("stderr") };
                let streams = Streams {
                    stdin: paths.stdin.is_some(),
                    stdout: paths.stdout.is_some(),
                    stderr: paths.stderr.is_some(),
                    terminal: paths.stderr.is_none(),
                };
                if paths.stdout.is_none() {
                    continue;
                }
                let log = if exec.is_empty() { self.log_path(&container).ok() } else { None };
                match open_relay(&key, &paths, streams, false, log.as_deref()) {
                    Ok(proc) => {
                        self.procs().insert(key, proc);
                        n += 1;
                    }
                    Err(e) => crate::audit::warn(&format!("recovering relay of {}: {e}", key.name())),
                }
            }
        }
        Ok(n)
    }
}

fn create_fifos(dir: &Path, streams: Streams) -> Result<Paths, RelayError> {
    if dir.exists() {
        // Left by a process whose delete the gateway did not see.
        std::fs::remove_dir_all(dir).map_err(io_err(format!("removing stale {}", dir.display())))?;
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
    for p in [&paths.stdin, &paths.stdout, &paths.stderr].into_iter().flatten() {
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
        if fresh {
            placeholders.push(fifo::placeholder(path).map_err(io_err(format!("opening {}", path.display())))?);
        }
        let rx = fifo::reader(path).map_err(io_err(format!("opening {}", path.display())))?;
        outputs.push(OutputPipe { stream, rx, keep });
    }
    let stdin = match &paths.stdin {
        Some(p) => Some(fifo::stdin_writer(p).map_err(io_err(format!("opening {}", p.display())))?),
        None => None,
    };
    let log = match log {
        Some(p) => Some(LogWriter::open(p).map_err(io_err(format!("opening log {}", p.display())))?),
        None => None,
    };
    Ok(Process::start(key.name(), outputs, stdin, placeholders, log))
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
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::io::Write;

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-relay-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("io")).unwrap();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        dir
    }

    fn relays(dir: &Path) -> Relays {
        Relays::new(dir.join("io"), dir.join("logs"))
    }

    const OUT: Streams = Streams { stdin: false, stdout: true, stderr: true, terminal: false };

    /// What the runc shim does with an output FIFO: open for writing, keep a
    /// spare read end, write, close both when the process ends.
    fn shim_writes(path: PathBuf, chunks: Vec<&'static [u8]>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut w = OpenOptions::new().write(true).open(&path).unwrap();
            let _spare = File::open(&path).unwrap();
            for c in chunks {
                w.write_all(c).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    }

    async fn collect(mut rx: tokio::sync::mpsc::Receiver<Output>) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(o) = rx.recv().await {
            match o {
                Output::Stdout(b) => out.extend(b),
                Output::Stderr(b) => err.extend(b),
            }
        }
        (out, err)
    }

    #[test]
    fn ids_follow_containerd_rules() {
        for ok in ["a", "web", "my-app_1.2", "0f3c"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "-a", "a-", "a..b", "a b", &"a".repeat(77)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn relays_output_to_subscriber_and_log_then_ends() {
        let dir = tempdir();
        let r = relays(&dir);
        let pending = r.prepare("c1", "", OUT).unwrap();
        let paths = pending.paths().clone();
        pending.commit();
        let proc = r.get("c1", "").unwrap();
        let sub = proc.subscribe(true, true);

        // The shim connects during Tasks.Create, which then returns.
        let out = shim_writes(paths.stdout.clone().unwrap(), vec![b"hello ", b"world\n"]);
        let err = shim_writes(paths.stderr.clone().unwrap(), vec![b"oops\n"]);
        out.join().unwrap();
        err.join().unwrap();
        r.connect("c1", "");

        let (o, e) = tokio::time::timeout(Duration::from_secs(5), collect(sub)).await.unwrap();
        assert_eq!(o, b"hello world\n");
        assert_eq!(e, b"oops\n");
        assert!(proc.is_ended());

        let mut reader = log::LogReader::open(&r.log_path("c1").unwrap()).await.unwrap();
        let mut logged = Vec::new();
        while let Some(entry) = reader.next().await.unwrap() {
            logged.push((entry.stream, entry.data));
        }
        let stdout: Vec<u8> =
            logged.iter().filter(|(s, _)| *s == Stream::Stdout).flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(stdout, b"hello world\n");
        assert!(logged.contains(&(Stream::Stderr, b"oops\n".to_vec())));

        r.finish_container("c1").await;
        assert!(!dir.join("io/c1").exists(), "fifo dir left behind");
        assert!(r.get("c1", "").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn output_nobody_reads_does_not_block_the_process() {
        let dir = tempdir();
        let r = relays(&dir);
        let pending = r.prepare("d", "", OUT).unwrap();
        let stdout = pending.paths().stdout.clone().unwrap();
        pending.commit();
        // Far more than a pipe holds (64 KiB): the writer only finishes if
        // the relay drains it with no one attached.
        let big: &'static [u8] = Box::leak(vec![b'x'; 1 << 20].into_boxed_slice());
        let shim = shim_writes(stdout, vec![big]);
        tokio::task::spawn_blocking(move || shim.join().unwrap()).await.unwrap();
        r.connect("d", "");
        let mut ended = r.get("d", "").unwrap().ended();
        tokio::time::timeout(Duration::from_secs(5), ended.wait_for(|e| *e)).await.unwrap().unwrap();
        let len = std::fs::metadata(r.log_path("d").unwrap()).unwrap().len();
        assert!(len > 1 << 20, "log has {len} bytes");
        r.remove_container("d");
        assert!(!r.log_path("d").unwrap().exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn failed_create_leaves_no_fifo_and_frees_the_id() {
        let dir = tempdir();
        let r = relays(&dir);
        let pending = r.prepare("c2", "e1", Streams { stdin: true, ..OUT }).unwrap();
        assert!(dir.join("io/c2/e1/stdin").exists());
        assert!(matches!(r.prepare("c2", "e1", OUT), Err(RelayError::Busy(_))));
        drop(pending);
        assert!(!dir.join("io/c2").exists());
        assert!(r.get("c2", "e1").is_err());
        // An exec's output is not logged.
        assert!(!r.log_path("c2").unwrap().exists());
        r.prepare("c2", "e1", OUT).unwrap().commit();
        r.remove_container("c2");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn stdin_reaches_the_process_and_closes() {
        let dir = tempdir();
        let r = relays(&dir);
        let pending = r.prepare("c3", "x", Streams { stdin: true, ..OUT }).unwrap();
        let stdin = pending.paths().stdin.clone().unwrap();
        pending.commit();
        let proc = r.get("c3", "x").unwrap();
        proc.write_stdin(b"typed\n").await.unwrap();

        // close_stdin must wait until the shim connected (Tasks.Start).
        let closing = {
            let proc = proc.clone();
            tokio::spawn(async move { proc.close_stdin().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!closing.is_finished());

        let (opened_tx, opened) = std::sync::mpsc::channel();
        let shim = std::thread::spawn(move || {
            let mut f = File::open(&stdin).unwrap();
            opened_tx.send(()).unwrap();
            let mut s = String::new();
            io::Read::read_to_string(&mut f, &mut s).unwrap();
            s
        });
        tokio::task::spawn_blocking(move || opened.recv().unwrap()).await.unwrap();
        r.connect("c3", "x");
        closing.await.unwrap();
        assert_eq!(tokio::task::spawn_blocking(move || shim.join().unwrap()).await.unwrap(), "typed\n");
        assert!(proc.write_stdin(b"late").await.is_err());
        r.remove_container("c3");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn unrequested_stream_is_drained_but_not_relayed() {
        let dir = tempdir();
        let r = relays(&dir);
        let pending = r.prepare("c4", "", Streams { stdout: true, ..Default::default() }).unwrap();
        let paths = pending.paths().clone();
        pending.commit();
        assert!(paths.stderr.is_some(), "the shim needs both output fifos");
        let sub = r.get("c4", "").unwrap().subscribe(true, true);
        shim_writes(paths.stdout.unwrap(), vec![b"out\n"]).join().unwrap();
        shim_writes(paths.stderr.unwrap(), vec![b"err\n"]).join().unwrap();
        r.connect("c4", "");
        let (o, e) = tokio::time::timeout(Duration::from_secs(5), collect(sub)).await.unwrap();
        assert_eq!((o.as_slice(), e.as_slice()), (b"out\n".as_slice(), b"".as_slice()));
        r.remove_container("c4");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn recovers_fifos_of_a_previous_gateway() {
        let dir = tempdir();
        let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // The first gateway creates a task's relay and goes away (its
        // runtime, with the relay tasks, is dropped).
        let paths = runtime().block_on(async {
            let r = relays(&dir);
            let p = r.prepare("c5", "", OUT).unwrap();
            let paths = p.paths().clone();
            p.commit();
            r.connect("c5", "");
            paths
        });
        // The shim still holds its write end; a new gateway starts.
        let mut w = OpenOptions::new().read(true).write(true).open(paths.stdout.as_ref().unwrap()).unwrap();
        runtime().block_on(async {
            let r = relays(&dir);
            assert_eq!(r.recover().unwrap(), 1);
            let proc = r.get("c5", "").unwrap();
            w.write_all(b"after restart\n").unwrap();
            drop(w);
            let mut ended = proc.ended();
            tokio::time::timeout(Duration::from_secs(5), ended.wait_for(|e| *e)).await.unwrap().unwrap();
            let mut reader = log::LogReader::open(&r.log_path("c5").unwrap()).await.unwrap();
            assert_eq!(reader.next().await.unwrap().unwrap().data, b"after restart\n");
            r.remove_container("c5");
        });
        std::fs::remove_dir_all(dir).unwrap();
    }
}
