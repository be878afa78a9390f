//! What the real containerd holds, and the assertions built on it: a
//! refused or failed request must leave nothing new behind.

use std::collections::BTreeSet;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

/// Snapshotters the real containerd has loaded; a bypass of the gateway's
/// fixed snapshotter would show up under `native`.
const SNAPSHOTTERS: [&str; 2] = ["overlayfs", "native"];
/// How long "nothing new" waits for containerd's garbage collector to remove
/// what a refused client's own lease protected.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

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
    lines(&out)
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
/// implemented", InvalidArgument → "invalid argument") or when berth's
/// gateway words its refusal.
pub const DENIAL_WORDS: &[&str] = &[
    "denied",
    "refus",
    "not allowed",
    "not implemented",
    "unimplemented",
    "invalid argument",
    "forbidden",
    "not permitted",
    "not supported",
];

/// Words of a refusal because the method itself is not served (rule 2).
pub const UNSERVED: &[&str] = &["not implemented", "unimplemented"];

/// Asserts a raw client (`ctr`) was refused by the server for the intended
/// reason: non-zero exit, and ctr's error line (`ctr: …`, not its warnings)
/// holds a denial and one of `reasons` — so a request that failed earlier,
/// on some unrelated call, does not pass for the refusal under test — and
/// nothing new in the real containerd.
#[track_caller]
pub fn assert_raw_refused(out: &Out, reasons: &[&str], before: &Snapshot) {
    assert_ne!(out.code, 0, "expected the gateway to refuse:\n{out}");
    let error = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("ctr: "))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    assert!(
        DENIAL_WORDS.iter().any(|w| error.contains(w)),
        "expected a refusal from the gateway (one of {DENIAL_WORDS:?}) in ctr's error:\n{out}"
    );
    assert!(
        reasons.iter().any(|r| error.contains(&r.to_lowercase())),
        "expected the refusal to name {reasons:?}:\n{out}"
    );
    assert_nothing_new(before, &out.cmd);
}

/// Writes `bytes` into a fresh workspace directory and loads it as the agent;
/// asserts exit 1 (docker load's), one line naming one of `keywords`, no
/// image loaded, nothing new in containerd.
#[track_caller]
pub fn load_refused(tag: &str, bytes: &[u8], keywords: &[&str]) -> Out {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, tag);
    let path = format!("{dir}/archive.tar");
    std::fs::write(&path, bytes).expect("writing the archive");
    let before = Snapshot::take();
    let out = docker(&["load", "-i", &path]);
    out.code(1);
    assert_one_line_message(&out, keywords);
    assert!(!out.stdout.contains("Loaded image"), "{out}");
    assert_nothing_new(&before, &out.cmd);
    out
}
