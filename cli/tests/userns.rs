//! User namespaces (issue 5, item 2): with the gateway's `userns` key set,
//! a container's root is an unprivileged host uid, not host root.
//!
//! The stack's own gateway runs without user namespaces (docker's default,
//! which `run.rs` asserts), so this test starts a gateway of its own — the
//! same binary, the stack's config with its own sockets, state dir,
//! namespace and `userns = { uid = 300000, gid = 300000, size = 65536 }` —
//! in front of the stack's real containerd, drives it with the agent's
//! `docker` in the sandbox, and kills it by pid at the end.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BASE: u32 = 300000;
const SIZE: u32 = 65536;
const TEST_NAMESPACE: &str = "berth-userns-test";
/// The stack's containerd state dir: runc enters the rootfs below it as the
/// container's mapped root, so it must be searchable (0711, as up.sh makes it).
const CONTAINERD_STATE: &str = "/run/berth-stack/containerd";

/// The test's own gateway, killed by pid (and its sysfs unmounted) on drop.
struct Gateway {
    child: Child,
    dir: PathBuf,
    socket: String,
    log: PathBuf,
}

impl Gateway {
    fn start() -> Self {
        let dir = PathBuf::from(format!("/run/berth-userns-test-{}", std::process::id()));
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        // The agent reaches the socket; only root the state.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = dir.join("containerd.sock");
        let stack = std::fs::read_to_string("/run/berth-stack/gateway.toml")
            .expect("the stack's gateway config (run fixtures/stack/up.sh)");
        // Our keys first: the stack's config may end in a `[table]`.
        let mut config = format!(
            "namespace = \"{TEST_NAMESPACE}\"\nlisten_containerd = \"{}\"\nstate_dir = \"{}\"\n\
             userns = {{ uid = {BASE}, gid = {BASE}, size = {SIZE} }}\n",
            socket.display(),
            state.display()
        );
        for line in stack.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            if ![
                "namespace",
                "listen_containerd",
                "listen_buildkit",
                "buildkit_upstream",
                "state_dir",
                "userns",
            ]
            .contains(&key)
            {
                config.push_str(line);
                config.push('\n');
            }
        }
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("gateway.log");
        let binary = repo_root().join("target/release/berth-gateway");
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let gw = Self {
            child,
            dir,
            socket: socket.to_string_lossy().into_owned(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the test gateway did not start:\n{}",
                gw.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        gw
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `docker ARGS` as the agent in the sandbox, through this gateway.
    fn docker(&self, args: &[&str]) -> Out {
        let addr = format!("BERTH_CONTAINERD_ADDR=unix://{}", self.socket);
        let mut all = vec!["env", addr.as_str(), "docker"];
        all.extend_from_slice(args);
        sandbox(&all)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let addr = format!("BERTH_CONTAINERD_ADDR=unix://{}", self.socket);
        let _ = sandbox(&[
            "sh",
            "-c",
            &format!("env {addr} docker ps -aq | xargs -r env {addr} docker rm -f"),
        ]);
        let _ = self.docker(&["rmi", "-f", "busybox"]);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let sysfs = self.dir.join("state/userns/sys");
        let _ = Command::new("umount").arg("-l").arg(&sysfs).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The remapped parents containerd holds for this test's namespace.
fn remapped_snapshots() -> Vec<String> {
    let out = real_ctr_ns(TEST_NAMESPACE, &["snapshots", "ls"]);
    out.ok();
    out.stdout
        .lines()
        .filter(|l| l.starts_with(&format!("berth-userns/{BASE}-{BASE}-{SIZE}/")))
        .map(|l| l.to_string())
        .collect()
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn container_root_is_an_unprivileged_host_uid() {
    stack();
    let mode = std::fs::metadata(CONTAINERD_STATE).unwrap().mode();
    assert!(
        mode & 0o001 != 0,
        "{CONTAINERD_STATE} is {mode:o}: runc cannot reach a rootfs below it from a user \
         namespace; re-run fixtures/stack/up.sh (it makes the dir 0711)"
    );
    let gw = Gateway::start();
    let mut cleanup = Cleanup::new();
    gw.docker(&["load", "-i", BUSYBOX_TAR]).ok();
    assert!(
        remapped_snapshots().is_empty(),
        "no remapped parent before a run"
    );

    // The kernel's own view: root in here is BASE out there.
    let maps = gw.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    ]);
    maps.ok();
    let lines: Vec<Vec<&str>> = maps
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected = vec!["0", "300000", "65536"];
    assert_eq!(lines[0], expected, "uid_map:\n{maps}");
    assert_eq!(lines[1], expected, "gid_map:\n{maps}");
    assert_eq!(lines[2], vec!["0"], "id -u inside:\n{maps}");

    // The rootfs is a remapped copy of the image, made once.
    let first = remapped_snapshots();
    assert_eq!(first.len(), 1, "one remapped parent: {first:?}");
    let name = first[0].split_whitespace().next().unwrap().to_string();
    let created = |name: &str| {
        let info = real_ctr_ns(TEST_NAMESPACE, &["snapshots", "info", name]);
        info.ok();
        let v: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
        assert_eq!(v["Kind"], "Committed", "{info}");
        v["Created"].as_str().unwrap().to_string()
    };
    let made_at = created(&name);

    // Image files keep their in-image owners as seen inside.
    let owners = gw.docker(&[
        "run",
        "--rm",
        "busybox",
        "stat",
        "-c",
        "%u:%g %n",
        "/",
        "/bin",
        "/bin/busybox",
        "/etc",
    ]);
    owners.ok();
    for line in owners.stdout.lines() {
        assert!(line.starts_with("0:0 "), "owner inside: {line}\n{owners}");
    }
    // Second and third runs reused the copy: same snapshot, no new commit,
    // one remap in the gateway's log.
    assert_eq!(remapped_snapshots(), first);
    assert_eq!(
        created(&name),
        made_at,
        "the remapped parent was made again"
    );
    let remaps = gw.log_text().matches("\"remapped ").count();
    assert_eq!(remaps, 1, "remaps logged:\n{}", gw.log_text());

    // A workspace directory: what container root writes there is BASE's.
    let dir = PathBuf::from(format!("{WORKSPACE}/{}", unique("userns")));
    std::fs::create_dir(&dir).unwrap();
    cleanup.path(&dir);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A host-root-only file: root with CAP_DAC_OVERRIDE would read it.
    let secret = dir.join("secret");
    std::fs::write(&secret, b"host root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The agent's own file shows as nobody, as with docker's userns-remap.
    sandbox(&["sh", "-c", &format!("echo agent > {}/agent", dir.display())]).ok();
    let bind = format!("{}:/data", dir.display());
    let out = gw.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "touch /data/made-by-root; stat -c '%u %n' /data/agent /data/secret; \
         cat /data/secret && echo READ-THE-SECRET; true",
    ]);
    out.ok();
    assert_eq!(owner(&dir.join("made-by-root")), (BASE, BASE), "{out}");
    assert!(out.stdout.contains("65534 /data/agent"), "{out}");
    assert!(out.stdout.contains("65534 /data/secret"), "{out}");
    assert!(
        !out.stdout.contains("READ-THE-SECRET"),
        "root read a host-root-only file:\n{out}"
    );
    assert!(out.stderr.contains("Permission denied"), "{out}");

    // The process itself: uid 0 inside, BASE in the host's /proc — for a
    // container in the sandbox's network namespace and, with an exec, for
    // one with a private network. (runc 1.1 cannot exec into the first:
    // it joins the user namespace before the sandbox's network namespace,
    // which the host's user namespace owns; architecture/userns.md.)
    let shared = unique("userns-proc");
    let private = unique("userns-none");
    gw.docker(&["run", "-d", "--name", &shared, "busybox", "sleep", "60"])
        .ok();
    gw.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &private,
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let exec = gw.docker(&["exec", &private, "id", "-u"]);
    exec.ok();
    assert_eq!(exec.stdout.trim(), "0", "{exec}");
    let tasks = real_ctr_ns(TEST_NAMESPACE, &["task", "ls"]);
    tasks.ok();
    let pids: Vec<String> = tasks
        .stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[2] == "RUNNING").then(|| f[1].to_string())
        })
        .collect();
    assert_eq!(pids.len(), 2, "two running tasks:\n{tasks}");
    for pid in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
        assert_eq!(
            uids,
            vec!["300000"; 4],
            "host view of the container's root (pid {pid}): {uid_line}"
        );
    }
    gw.docker(&["rm", "-f", &shared, &private]).ok();
}
