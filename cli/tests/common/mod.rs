//! Shared helpers of berth's integration tests.
//!
//! Every test drives the real binaries of the local sandbox stack
//! (architecture/stack-contract.md): `docker` is berth run as the agent
//! through `fixtures/stack/sandbox`, and `real_ctr` looks at the real
//! containerd behind the gateway to prove what it holds. The tests run as
//! root (the sandbox script needs it) and fail loudly when the stack is down.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
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

/// Snapshotters the real containerd has loaded; a bypass of the gateway's
/// fixed snapshotter would show up under `native`.
const SNAPSHOTTERS: [&str; 2] = ["overlayfs", "native"];

/// How long a single command may take before the test gives up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long "nothing new" waits for containerd's garbage collector to remove
/// what a refused client's own lease protected.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

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
/// containerd client that is not berth.
pub fn gateway_ctr(args: &[&str]) -> Out {
    let mut full = vec!["ctr", "-a", GATEWAY_SOCKET];
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

// --- what the real containerd holds ----------------------------------------------

/// The objects the real containerd holds for the sandbox (and for
/// `OTHER_NAMESPACE`), the namespaces it has, and the FIFOs in the gateway's
/// private directory, each as one line such as
/// `berth-sandbox container 3f2a…` or `fifo /var/lib/…/io/x/stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    items: BTreeSet<String>,
}

impl Snapshot {
    pub fn take() -> Self {
        let mut items = BTreeSet::new();
        let namespaces = ctr_lines(real_ctr_ns(NAMESPACE, &["namespaces", "ls", "-q"]));
        for ns in &namespaces {
            items.insert(format!("namespace {ns}"));
        }
        for ns in [NAMESPACE, OTHER_NAMESPACE] {
            if !namespaces.iter().any(|n| n == ns) {
                continue;
            }
            let lists: [(&str, &[&str]); 5] = [
                ("container", &["containers", "ls", "-q"]),
                ("task", &["tasks", "ls", "-q"]),
                ("lease", &["leases", "ls", "-q"]),
                ("image", &["images", "ls", "-q"]),
                ("content", &["content", "ls", "-q"]),
            ];
            for (kind, args) in lists {
                for id in ctr_lines(real_ctr_ns(ns, args)) {
                    items.insert(format!("{ns} {kind} {id}"));
                }
            }
            for snapshotter in SNAPSHOTTERS {
                let out = real_ctr_ns(ns, &["snapshots", "--snapshotter", snapshotter, "ls"]);
                // KEY PARENT KIND, after a header line.
                for line in ctr_lines(out).iter().skip(1) {
                    if let Some(key) = line.split_whitespace().next() {
                        items.insert(format!("{ns} snapshot/{snapshotter} {key}"));
                    }
                }
            }
        }
        for path in gateway_io_entries() {
            items.insert(path);
        }
        Self { items }
    }

    /// What `self` holds that `before` did not.
    pub fn new_since(&self, before: &Snapshot) -> Vec<String> {
        self.items.difference(&before.items).cloned().collect()
    }

    pub fn contains(&self, item: &str) -> bool {
        self.items.contains(item)
    }
}

fn ctr_lines(out: Out) -> Vec<String> {
    assert_eq!(out.code, 0, "listing the real containerd failed:\n{out}");
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every entry under the gateway's io directory, and every FIFO anywhere in
/// its private directory.
fn gateway_io_entries() -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from(GATEWAY_PRIVATE)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path.clone());
            }
            if ft.is_fifo() {
                found.push(format!("fifo {}", path.display()));
            } else if path.starts_with(GATEWAY_IO) {
                found.push(format!("gateway-io {}", path.display()));
            }
        }
    }
    found
}

/// Asserts that the real containerd (and the gateway's io directory) holds
/// nothing that `before` did not, waiting a little for containerd's garbage
/// collector. Whatever is left over is removed before the test fails, so one
/// failure does not cascade into the next test.
#[track_caller]
pub fn assert_nothing_new(before: &Snapshot, what: &str) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let new = Snapshot::take().new_since(before);
        if new.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            remove_leftovers(&new);
            panic!(
                "{what}: the real containerd / gateway io dir holds new objects after {SETTLE_TIMEOUT:?}:\n  {}",
                new.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn remove_leftovers(items: &[String]) {
    let order = ["task", "container", "lease", "image"];
    for kind in order {
        for item in items {
            let mut parts = item.splitn(3, ' ');
            let (Some(ns), Some(k), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if k != kind {
                continue;
            }
            let _ = match kind {
                "task" => {
                    let _ = real_ctr_ns(ns, &["tasks", "kill", "-s", "SIGKILL", id]);
                    std::thread::sleep(Duration::from_millis(300));
                    real_ctr_ns(ns, &["tasks", "rm", "-f", id])
                }
                "container" => real_ctr_ns(ns, &["containers", "rm", id]),
                "lease" => real_ctr_ns(ns, &["leases", "rm", id]),
                _ => real_ctr_ns(ns, &["images", "rm", id]),
            };
        }
    }
    // Snapshots in any order: children first takes a few passes.
    for _ in 0..3 {
        for item in items {
            let mut parts = item.splitn(3, ' ');
            let (Some(ns), Some(k), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if let Some(snapshotter) = k.strip_prefix("snapshot/") {
                let _ = real_ctr_ns(ns, &["snapshots", "--snapshotter", snapshotter, "rm", key]);
            }
        }
    }
}

// --- refusals ------------------------------------------------------------------------

/// Asserts a refusal as a user must see it: exit 125, one line on stderr
/// naming the rule (one of `keywords`, ignoring case), no debug dump of a
/// gRPC status, and nothing new in the real containerd.
#[track_caller]
pub fn assert_refused(out: &Out, keywords: &[&str], before: &Snapshot) {
    assert_eq!(out.code, 125, "expected a refusal (exit 125):\n{out}");
    assert_one_line_message(out, keywords);
    assert_nothing_new(before, &out.cmd);
}

/// Asserts stderr is one non-empty line naming one of `keywords` and is not
/// a raw gRPC status or Rust debug dump.
#[track_caller]
pub fn assert_one_line_message(out: &Out, keywords: &[&str]) {
    let msg = out.stderr.trim();
    assert!(!msg.is_empty(), "expected a message on stderr:\n{out}");
    assert_eq!(
        msg.lines().count(),
        1,
        "expected a one-line message:\n{out}"
    );
    let lower = msg.to_lowercase();
    assert!(
        keywords.iter().any(|k| lower.contains(&k.to_lowercase())),
        "expected the message to name the rule (one of {keywords:?}):\n{out}"
    );
    for raw in ["status {", "code: ", "rpc error", "tonic", "metadata: "] {
        assert!(
            !lower.contains(raw),
            "the message leaks a raw status ({raw:?}):\n{out}"
        );
    }
}

/// Words a containerd client prints when the server refused a request
/// (errdefs: PermissionDenied → "permission denied", Unimplemented → "not
/// implemented", …) or when berth's gateway words its refusal.
pub const DENIAL_WORDS: &[&str] = &[
    "denied",
    "refus",
    "not allowed",
    "not implemented",
    "unimplemented",
    "forbidden",
    "not permitted",
    "policy",
    "not supported",
];

/// Asserts a raw client (`ctr`) was refused by the server: non-zero exit and
/// a denial on stderr (not a client-side failure), and nothing new.
#[track_caller]
pub fn assert_raw_refused(out: &Out, before: &Snapshot) {
    assert_ne!(out.code, 0, "expected the gateway to refuse:\n{out}");
    let lower = out.stderr.to_lowercase();
    assert!(
        DENIAL_WORDS.iter().any(|w| lower.contains(w)),
        "expected a refusal from the gateway (one of {DENIAL_WORDS:?}):\n{out}"
    );
    assert_nothing_new(before, &out.cmd);
}

// --- the busybox fixture --------------------------------------------------------------

/// Digests of the busybox fixture, read from its archive.
pub struct Fixture {
    /// `sha256:…` of the image config: docker's image ID.
    pub config_digest: String,
    /// `sha256:…` of the manifest.
    pub manifest_digest: String,
    /// The chain ID of its single layer: the committed snapshot's key.
    pub chain_id: String,
}

pub fn busybox_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let blobs = archive_entries(BUSYBOX_TAR);
        let json = |name: &str| -> serde_json::Value {
            let bytes = blobs
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{BUSYBOX_TAR} has no {name}"));
            serde_json::from_slice(&bytes.1)
                .unwrap_or_else(|e| panic!("{name} in {BUSYBOX_TAR}: {e}"))
        };
        let blob_name =
            |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let index = json("index.json");
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("index digest")
            .to_string();
        let manifest = json(&blob_name(&manifest_digest));
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_string();
        let config = json(&blob_name(&config_digest));
        let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
        assert_eq!(diff_ids.len(), 1, "the busybox fixture has one layer");
        let chain_id = diff_ids[0].as_str().expect("diff id").to_string();
        Fixture {
            config_digest,
            manifest_digest,
            chain_id,
        }
    })
}

/// (path, bytes) of every regular file in a tar archive.
pub fn archive_entries(path: &str) -> Vec<(String, Vec<u8>)> {
    let file = File::open(path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    let mut archive = tar::Archive::new(file);
    let mut out = Vec::new();
    for entry in archive
        .entries()
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
    {
        let mut entry = entry.unwrap_or_else(|e| panic!("reading {path}: {e}"));
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry bytes");
        out.push((name.trim_start_matches("./").to_string(), bytes));
    }
    out
}

// --- docker's table output ---------------------------------------------------------------

/// A table as docker prints it (`ps`, `images`): columns found from the
/// header's titles, cells cut at the same character offsets (docker aligns
/// with Go's tabwriter, counting characters).
pub struct Table {
    pub titles: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses `text` whose first line is a header with the given titles, in order.
    #[track_caller]
    pub fn parse(text: &str, titles: &[&str]) -> Table {
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap_or_else(|| panic!("no header in:\n{text}"));
        let found: Vec<&str> = header
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(found, titles, "docker's header, in order:\n{text}");
        let hchars: Vec<char> = header.chars().collect();
        let mut starts = Vec::new();
        let mut from = 0;
        for t in titles {
            let tchars: Vec<char> = t.chars().collect();
            let at = (from..hchars.len())
                .find(|&i| hchars[i..].starts_with(&tchars))
                .unwrap_or_else(|| panic!("title {t} not in header {header:?}"));
            starts.push(at);
            from = at + tchars.len();
        }
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let chars: Vec<char> = line.chars().collect();
                (0..starts.len())
                    .map(|i| {
                        let a = starts[i].min(chars.len());
                        let b = starts
                            .get(i + 1)
                            .copied()
                            .unwrap_or(chars.len())
                            .min(chars.len());
                        chars[a..b].iter().collect::<String>().trim().to_string()
                    })
                    .collect()
            })
            .collect();
        Table {
            titles: titles.iter().map(|s| s.to_string()).collect(),
            rows,
        }
    }

    /// The row whose `column` equals `value`.
    pub fn row(&self, column: &str, value: &str) -> Option<&Vec<String>> {
        let i = self.titles.iter().position(|t| t == column)?;
        self.rows.iter().find(|r| r[i] == value)
    }

    pub fn cell<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        let i = self
            .titles
            .iter()
            .position(|t| t == column)
            .expect("known column");
        &row[i]
    }
}

pub const PS_TITLES: &[&str] = &[
    "CONTAINER ID",
    "IMAGE",
    "COMMAND",
    "CREATED",
    "STATUS",
    "PORTS",
    "NAMES",
];
pub const IMAGES_TITLES: &[&str] = &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];

/// True for a docker container ID: 64 lower-case hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
