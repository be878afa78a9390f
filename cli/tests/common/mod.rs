//! Shared helpers of berth's integration tests.
//!
//! Every test drives the real binaries of the local sandbox stack
//! (architecture/stack-contract.md): `docker` is berth run as the agent
//! through `fixtures/stack/sandbox`, and `real_ctr` looks at the real
//! containerd behind the gateway to prove what it holds. The tests run as
//! root (the sandbox script needs it) and fail loudly when the stack is down.

// Each test binary uses a different subset of these helpers (and re-exports).
#![allow(dead_code, unused_imports)]

mod build;
mod fixture;
pub mod registry;
pub mod sandbox_b;
mod snapshot;
mod table;

pub use build::*;
pub use fixture::*;
pub use snapshot::*;
pub use table::*;

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

// --- names and paths of the stack contract -----------------------------------

/// The gateway's containerd facade, the only socket the agent gets.
pub const GATEWAY_SOCKET: &str = "/run/berth-stack/gateway/containerd.sock";
/// The real containerd; only the host side (root) may use it.
pub const REAL_SOCKET: &str = "/run/berth-stack/containerd/containerd.sock";
/// The sandbox's containerd namespace.
pub const NAMESPACE: &str = "berth-sandbox";
/// A namespace of the real containerd that is not the sandbox's; tests use it
/// to prove the gateway pins every request to `NAMESPACE`.
pub const OTHER_NAMESPACE: &str = "berth-tests-other";
/// The sandbox workspace, owned by the agent; the only volume root.
pub const WORKSPACE: &str = "/var/lib/berth-stack/workspace";
/// The gateway's private directory (FIFOs, logs), not writable by the agent.
pub const GATEWAY_PRIVATE: &str = "/var/lib/berth-stack/gateway";
/// Where the gateway creates the FIFOs of tasks and execs.
pub const GATEWAY_IO: &str = "/var/lib/berth-stack/gateway/io";
/// The busybox fixture image (OCI layout archive, tag `busybox:latest`).
pub const BUSYBOX_TAR: &str = "/var/lib/berth-stack/images/busybox.tar";
/// The name the fixture image has in containerd.
pub const BUSYBOX_REF: &str = "docker.io/library/busybox:latest";
/// The sandbox proxy every container must use.
pub const PROXY_URL: &str = "http://10.200.0.1:3128";
/// Reachable only through the proxy; serves `hello from outside`.
pub const OUTSIDE_URL: &str = "http://10.201.0.2:8080/hello.txt";
/// The same server on an address the proxy refuses.
pub const DENIED_URL: &str = "http://10.201.0.3:8080/hello.txt";
/// What `OUTSIDE_URL` serves.
pub const OUTSIDE_BODY: &str = "hello from outside";
/// The agent user.
pub const AGENT: &str = "berth-agent";

/// How long a single command may take before the test gives up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

fn sandbox_script() -> PathBuf {
    repo_root().join("fixtures/stack/sandbox")
}

// --- the stack must be up -----------------------------------------------------

/// Panics with a clear message unless the local sandbox stack is up: the
/// tests run as root, the gateway socket exists and `fixtures/stack/status.sh`
/// succeeds. Checked once per test binary; every test calls it first.
pub fn stack() {
    static STATE: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(reason) = STATE.get_or_init(check_stack) {
        panic!(
            "\n\n*** the berth sandbox stack is not up: {reason}\n\
             *** these integration tests drive the real stack and never skip.\n\
             *** start it as root with `make stack-up` (fixtures/stack/up.sh), then run\n\
             *** `cargo test --release -p berth --test '*'` as root.\n\n"
        );
    }
}

fn check_stack() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("the tests must run as root (fixtures/stack/sandbox needs it)".into());
    }
    for (socket, what) in [(GATEWAY_SOCKET, "gateway"), (REAL_SOCKET, "containerd")] {
        match std::fs::metadata(socket) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => return Err(format!("{socket} ({what}) is not a socket")),
            Err(e) => return Err(format!("{socket} ({what}) is missing: {e}")),
        }
    }
    let status = repo_root().join("fixtures/stack/status.sh");
    if !status.exists() {
        return Err(format!("{} does not exist", status.display()));
    }
    let out = Command::new(&status)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", status.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}{}",
            status.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Serialises the tests of one binary that compare containerd's state before
/// and after a command: a concurrent test's objects would look "new".
/// (cargo runs test binaries one after another, so only threads of the same
/// binary can interfere.)
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// --- running commands -----------------------------------------------------------

/// What a finished command printed and how it exited.
pub struct Out {
    pub cmd: String,
    /// The exit status; 128+N when a signal N ended it (as a shell reports).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

impl Out {
    /// Asserts exit status 0 and returns self for chaining.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    /// Asserts the exit status.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit status {code}:\n{self}");
        self
    }

    /// Asserts a failure (any non-zero status).
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert_ne!(self.code, 0, "expected a failure:\n{self}");
        self
    }

    /// Asserts stdout holds `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "expected {needle:?} on stdout:\n{self}"
        );
        self
    }

    /// Asserts stderr holds `needle`, ignoring case.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "expected {needle:?} on stderr:\n{self}"
        );
        self
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// What a command reads on its standard input.
pub enum Input {
    Null,
    Bytes(Vec<u8>),
    File(File),
}

/// Runs `cmd` to completion (or kills it after `timeout`), capturing output.
pub fn run(mut cmd: Command, input: Input, timeout: Duration) -> Out {
    let shown = format!("{cmd:?}");
    let mut bytes = None;
    match input {
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::Bytes(b) => {
            cmd.stdin(Stdio::piped());
            bytes = Some(b);
        }
        Input::File(f) => {
            cmd.stdin(Stdio::from(f));
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {shown}: {e}"));
    let writer = child.stdin.take().map(|mut stdin| {
        let b = bytes.take().unwrap_or_default();
        // A process that exits without reading its input closes the pipe; that is not our failure.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&b);
        })
    });
    let stdout = reader(child.stdout.take().expect("piped stdout"));
    let stderr = reader(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    let Some(status) = status else {
        // Our own child, ended by its pid.
        let _ = child.kill();
        let _ = child.wait();
        let out = Out {
            cmd: shown,
            code: -1,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        panic!("timed out after {timeout:?} and killed:\n{out}");
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Out {
        cmd: shown,
        code,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs a command as the agent inside the sandbox (netns, no capabilities,
/// the contract's environment, in the workspace).
pub fn sandbox(args: &[&str]) -> Out {
    sandbox_with(args, Input::Null)
}

pub fn sandbox_with(args: &[&str], input: Input) -> Out {
    let mut cmd = Command::new(sandbox_script());
    cmd.args(args);
    run(cmd, input, COMMAND_TIMEOUT)
}

/// `docker ARGS…` as the agent: berth's CLI talking to the gateway.
pub fn docker(args: &[&str]) -> Out {
    docker_with(args, Input::Null)
}

pub fn docker_with(args: &[&str], input: Input) -> Out {
    let mut full = vec!["docker"];
    full.extend_from_slice(args);
    sandbox_with(&full, input)
}

/// The real `ctr` pointed at the gateway socket, as the agent: a raw
/// containerd client that is not berth. It names the sandbox's namespace,
/// as a client that knows its sandbox would: ctr reads the namespace's
/// labels first, and the gateway answers `not found` for any other.
pub fn gateway_ctr(args: &[&str]) -> Out {
    gateway_ctr_ns(NAMESPACE, args)
}

/// `gateway_ctr` asking for another namespace (which the gateway ignores).
pub fn gateway_ctr_ns(namespace: &str, args: &[&str]) -> Out {
    let mut full = vec!["ctr", "-a", GATEWAY_SOCKET, "-n", namespace];
    full.extend_from_slice(args);
    sandbox(&full)
}

/// `ctr` on the REAL containerd, in the sandbox's namespace, as root on the
/// host: what containerd actually holds.
pub fn real_ctr(args: &[&str]) -> Out {
    real_ctr_ns(NAMESPACE, args)
}

pub fn real_ctr_ns(namespace: &str, args: &[&str]) -> Out {
    let mut cmd = Command::new("ctr");
    cmd.args(["-a", REAL_SOCKET, "-n", namespace]).args(args);
    run(cmd, Input::Null, COMMAND_TIMEOUT)
}

// --- names and cleanup ------------------------------------------------------------

/// A name no other test (or earlier run) uses: `bt-<tag>-<pid>-<n>`.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "bt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes what a test made, even when it panics: containers (through
/// berth, as the agent would) and host paths.
#[derive(Default)]
pub struct Cleanup {
    containers: Vec<String>,
    paths: Vec<PathBuf>,
}

impl Cleanup {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn container(&mut self, name: &str) -> &mut Self {
        self.containers.push(name.to_string());
        self
    }

    pub fn path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.paths.push(path.into());
        self
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.containers {
            let mut cmd = Command::new(sandbox_script());
            cmd.args(["docker", "rm", "-f", name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
        for path in &self.paths {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir_all(path);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(path);
                }
                Err(_) => {}
            }
        }
    }
}

/// A fresh directory in the workspace, made by the agent (so it is the
/// agent's), removed at the end of the test.
pub fn agent_dir(cleanup: &mut Cleanup, tag: &str) -> String {
    let dir = format!("{WORKSPACE}/{}", unique(tag));
    sandbox(&["mkdir", &dir]).ok();
    cleanup.path(&dir);
    dir
}

/// Polls `f` until it returns Some or `timeout` passes. For state that
/// settles asynchronously (a log line reaching the log), not for timing.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every path under `root`, recursively (empty when it does not exist).
pub fn walk(root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from(root)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path.clone());
            }
            found.push(path.display().to_string());
        }
    }
    found
}

/// Lines of a command's stdout, trimmed, without empty ones.
pub fn lines(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
