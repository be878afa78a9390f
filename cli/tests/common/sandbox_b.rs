//! Sandbox B, the stack's second sandbox (architecture/stack-contract.md,
//! "Sandbox B"): its own netns, agent, berth-gateway and containerd
//! namespace on the same containerd. The two-sandbox tests act in one
//! sandbox and look from the other, then read the real containerd.

use std::collections::BTreeSet;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::*;

/// Sandbox B's containerd facade (only B's agent reaches its directory).
pub const B_GATEWAY_SOCKET: &str = "/run/berth-stack/gateway-b/containerd.sock";
/// Where B's BuildKit facade would be; never served (B has no BuildKit).
pub const B_BUILDKIT_SOCKET: &str = "/run/berth-stack/gateway-b/buildkit.sock";
/// Sandbox B's containerd namespace.
pub const B_NAMESPACE: &str = "berth-sandbox-b";
/// Sandbox B's agent user.
pub const B_AGENT: &str = "berth-agent-b";
/// Sandbox B's workspace (its gateway's only volume root).
pub const B_WORKSPACE: &str = "/var/lib/berth-stack/workspace-b";

/// Which sandbox a command runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn script(self) -> PathBuf {
        let name = match self {
            Side::A => "sandbox",
            Side::B => "sandbox-b",
        };
        repo_root().join("fixtures/stack").join(name)
    }

    pub fn namespace(self) -> &'static str {
        match self {
            Side::A => NAMESPACE,
            Side::B => B_NAMESPACE,
        }
    }

    pub fn gateway_socket(self) -> &'static str {
        match self {
            Side::A => GATEWAY_SOCKET,
            Side::B => B_GATEWAY_SOCKET,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// A command as this sandbox's agent.
    pub fn run(self, args: &[&str]) -> Out {
        let mut cmd = Command::new(self.script());
        cmd.args(args);
        run(cmd, Input::Null, COMMAND_TIMEOUT)
    }

    /// `docker ARGS…` as this sandbox's agent, through its own gateway.
    pub fn docker(self, args: &[&str]) -> Out {
        let mut full = vec!["docker"];
        full.extend_from_slice(args);
        self.run(&full)
    }

    /// `ctr` as this sandbox's agent on its own gateway, naming namespace
    /// `ns` (the gateway pins every request to its own whatever is named).
    pub fn ctr(self, ns: &str, args: &[&str]) -> Out {
        let mut full = vec!["ctr", "-a", self.gateway_socket(), "-n", ns];
        full.extend_from_slice(args);
        self.run(&full)
    }

    /// Starts a long-running command as this sandbox's agent (the sandbox
    /// script execs it, so the child's pid is the command's).
    pub fn spawn(self, args: &[&str]) -> Child {
        Command::new(self.script())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {args:?} in sandbox {self:?}: {e}"))
    }
}

/// Ends a spawned command (our own child, by its pid) and returns what it
/// printed on stdout and stderr.
pub fn finish(mut child: Child) -> (String, String) {
    let _ = child.kill();
    let out = child
        .wait_with_output()
        .expect("collecting a spawned command");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Panics unless sandbox B is up (its gateway socket and the stack).
pub fn stack_b() {
    stack();
    let ok = std::fs::metadata(B_GATEWAY_SOCKET)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    assert!(
        ok,
        "\n\n*** sandbox B is not up ({B_GATEWAY_SOCKET} missing): run fixtures/stack/up.sh\n"
    );
}

/// Every object of one containerd namespace as the REAL containerd holds
/// it, one line each: `container ID IMAGE`, `task ID STATUS`, `image REF
/// DIGEST`, `content DIGEST`, `snapshot KEY PARENT KIND`, `lease ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsState {
    pub items: BTreeSet<String>,
}

impl NsState {
    pub fn take(ns: &str) -> Self {
        let mut items = BTreeSet::new();
        let lists: [(&str, &[&str], bool); 6] = [
            ("container", &["containers", "ls"], true),
            ("task", &["tasks", "ls"], true),
            ("image", &["images", "ls"], true),
            ("content", &["content", "ls", "-q"], false),
            (
                "snapshot",
                &["snapshots", "--snapshotter", "overlayfs", "ls"],
                true,
            ),
            ("lease", &["leases", "ls", "-q"], false),
        ];
        for (kind, args, header) in lists {
            let out = real_ctr_ns(ns, args);
            assert_eq!(out.code, 0, "listing the real containerd failed:\n{out}");
            for line in out.stdout.lines().skip(usize::from(header)) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.is_empty() {
                    continue;
                }
                // Image lines: REF TYPE DIGEST …; tasks: ID PID STATUS (the
                // pid is kept: a restarted task would differ).
                let shown = match kind {
                    "image" => format!("{} {}", cols[0], cols.get(2).unwrap_or(&"")),
                    _ => cols.join(" "),
                };
                items.insert(format!("{kind} {shown}"));
            }
        }
        Self { items }
    }

    /// Lines of `self` holding `needle`.
    pub fn matching(&self, needle: &str) -> Vec<&String> {
        self.items.iter().filter(|l| l.contains(needle)).collect()
    }
}

/// Asserts `text` (what the other sandbox saw) holds none of `secrets`.
#[track_caller]
pub fn assert_sees_none(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what}: sandbox saw the other sandbox's {s:?}:\n{text}"
        );
    }
}

/// The `ctr: …` error lines of a failed ctr call, lower-cased.
pub fn ctr_error(out: &Out) -> String {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("ctr: "))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
}

/// Removes what a two-sandbox test made, even when it panics: containers
/// through each sandbox's own CLI, images and leases in the real containerd.
#[derive(Default)]
pub struct Made {
    containers: Vec<(Side, String)>,
    images: Vec<(Side, String)>,
    leases: Vec<(Side, String)>,
}

impl Made {
    pub fn container(&mut self, side: Side, name: &str) {
        self.containers.push((side, name.to_string()));
    }
    pub fn image(&mut self, side: Side, reference: &str) {
        self.images.push((side, reference.to_string()));
    }
    pub fn lease(&mut self, side: Side, id: &str) {
        self.leases.push((side, id.to_string()));
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for (side, name) in &self.containers {
            let _ = side.docker(&["rm", "-f", name]);
        }
        for (side, id) in &self.leases {
            let _ = real_ctr_ns(side.namespace(), &["leases", "rm", id]);
        }
        for (side, r) in &self.images {
            let _ = real_ctr_ns(side.namespace(), &["images", "rm", "--sync", r]);
        }
    }
}

/// Snapshots.Prepare of `key` on `parent`, without labels, straight to a
/// gateway socket from the test process (as `raw_api` does: `ctr`'s own
/// prepare adds a `containerd.io/gc.root` label that the gateway refuses
/// before it looks at the parent).
pub fn raw_prepare(socket: &'static str, key: &str, parent: &str) -> Result<(), tonic::Status> {
    use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
    use containerd_client::services::v1::snapshots::PrepareSnapshotRequest;
    block_on(async {
        let channel = tonic::transport::Endpoint::try_from("http://gateway.invalid")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_| async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }))
            .await
            .unwrap_or_else(|e| panic!("connecting to {socket}: {e}"));
        let req = PrepareSnapshotRequest {
            snapshotter: "overlayfs".to_string(),
            key: key.to_string(),
            parent: parent.to_string(),
            ..Default::default()
        };
        SnapshotsClient::new(channel).prepare(req).await.map(|_| ())
    })
}

/// Sandbox B's `quota.leases` (`B_LEASE_QUOTA` in fixtures/stack/lib.sh).
pub const B_LEASE_QUOTA: usize = 8;
