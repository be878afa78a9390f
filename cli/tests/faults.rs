//! Faults and load (issue 5, item 5): containerd, the BuildKit host and the
//! gateway each restarted in the middle of an attached `docker run`, a
//! `docker exec` and a `docker build` with a slow RUN step, through
//! `fixtures/stack/restart.sh`. Each test asserts what the user sees (exit
//! code, one clear line), that the gateway recovers by itself (the next
//! `docker run --rm busybox true` and `docker ps` work), and that nothing
//! leaks: no container, task, snapshot or lease in the real containerd, no
//! FIFO directory in the gateway's io dir, no process left running.
//! architecture/faults.md says what happens in each case and why.
//!
//! These tests restart daemons every other test uses: they run alone,
//! after every other integration test, one at a time (`make
//! integration-test` runs them last with `--test-threads=1`; `serial()`
//! keeps them apart when run otherwise).

mod common;

use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;

/// How long a restarted daemon may take to come back (restart.sh waits for it).
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for a process of the test to appear or to go.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

// --- helpers ----------------------------------------------------------------------

/// `fixtures/stack/restart.sh WHICH`, asserting it brought the daemon back.
fn restart(which: &str) {
    let mut cmd = Command::new(repo_root().join("fixtures/stack/restart.sh"));
    cmd.arg(which);
    run(cmd, Input::Null, RESTART_TIMEOUT).ok();
}

/// A command as the agent, in the background.
fn spawn_docker(args: Vec<String>) -> JoinHandle<Out> {
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
    })
}

fn spawn_build(args: Vec<String>) -> JoinHandle<Out> {
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        build(&args)
    })
}

/// Pids of `sh -c SCRIPT` processes whose script holds `marker`: the
/// container's, exec's or RUN step's shell (the CLI's own command line
/// holds the marker too, but is not `sh -c`).
fn marked(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.len() >= 3
            && (argv[0] == "sh" || argv[0] == "/bin/sh")
            && argv[1] == "-c"
            && argv[2].contains(marker)
        {
            found.push(pid);
        }
    }
    found
}

#[track_caller]
fn wait_marked(marker: &str) {
    eventually(PROCESS_TIMEOUT, || {
        (!marked(marker).is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("no process with {marker} started within {PROCESS_TIMEOUT:?}"));
}

#[track_caller]
fn assert_no_marked(marker: &str) {
    let left = eventually(PROCESS_TIMEOUT, || marked(marker).is_empty().then_some(()));
    assert!(
        left.is_some(),
        "processes with {marker} still run: {:?}",
        marked(marker)
    );
}

/// The gateway serves again without anyone restarting it by hand: the very
/// next run and ps work.
#[track_caller]
fn assert_recovered() {
    docker(&["run", "--rm", "busybox", "true"]).ok();
    docker(&["ps"]).ok();
}

/// An error a user can read: exactly one non-empty line on stderr, holding
/// every one of `needles`.
#[track_caller]
fn assert_one_line_error(out: &Out, needles: &[&str]) {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{out}");
    for n in needles {
        out.stderr_has(n);
    }
}

/// A detached `sleep` container for the exec tests, removed at the end.
fn sleeper(cleanup: &mut Cleanup, tag: &str) -> String {
    let name = unique(tag);
    cleanup.container(&name);
    docker(&["run", "-d", "--name", &name, "busybox", "sleep", "600"]).ok();
    name
}

/// A context whose one RUN step sleeps `secs` seconds inside a shell that
/// carries `marker`.
fn slow_context(cleanup: &mut Cleanup, marker: &str, secs: u32) -> String {
    let dir = agent_dir(cleanup, "fault-build");
    let dockerfile =
        format!("FROM busybox\nRUN sh -c 'echo {marker}; sleep {secs}; echo {marker} > /done'\n");
    std::fs::write(format!("{dir}/Dockerfile"), dockerfile).expect("Dockerfile");
    let mut chown = Command::new("chown");
    chown.args(["-R", &format!("{AGENT}:{AGENT}"), &dir]);
    run(chown, Input::Null, COMMAND_TIMEOUT).ok();
    dir
}

/// Items new since `before` that a build may rightly leave (the image it
/// built, its content, its layers unpacked as snapshots named by chain ID)
/// are not leaks; containers, tasks, leases, containers' snapshots (named
/// by container ID) and FIFOs are.
fn leaks_after_build(before: &Snapshot) -> Vec<String> {
    Snapshot::take()
        .new_since(before)
        .into_iter()
        // Objects other tests name with `unique` (`bt-…`) are theirs.
        .filter(|i| !i.contains(" bt-"))
        .filter(|i| {
            i.contains(" container ")
                || i.contains(" task ")
                || i.contains(" lease ")
                || (i.contains(" snapshot/") && !i.contains(" sha256:"))
                || i.starts_with("fifo ")
                || i.starts_with("gateway-io ")
        })
        .collect()
}

#[track_caller]
fn assert_no_build_leaks(before: &Snapshot) {
    let left = eventually(Duration::from_secs(15), || {
        leaks_after_build(before).is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "the build left behind: {:?}",
        leaks_after_build(before)
    );
}

// --- the same three actions, whatever is restarted ---------------------------------

/// How long the process sleeps: past the gateway's 5 s grace for running
/// calls when the gateway is restarted (else the call would simply finish).
fn sleep_for(which: &str) -> u32 {
    if which == "gateway" {
        20
    } else {
        6
    }
}

/// `docker run --rm` of an attached container that prints, sleeps and
/// exits 3; `which` is restarted while it sleeps.
fn run_with_restart(which: &str) -> (Out, Snapshot) {
    let before = Snapshot::take();
    let marker = unique("fault-run");
    let secs = sleep_for(which);
    let script = format!("echo start {marker}; sleep {secs}; echo end {marker}; exit 3");
    let name = unique("fault-run");
    let child = spawn_docker(
        [
            "run", "--rm", "--name", &name, "busybox", "sh", "-c", &script,
        ]
        .map(String::from)
        .to_vec(),
    );
    wait_marked(&marker);
    restart(which);
    let out = child.join().expect("docker run thread");
    assert_no_marked(&marker);
    (out, before)
}

/// `docker exec` of a command that prints, sleeps and exits 4 in a running
/// container; `which` is restarted while it sleeps.
fn exec_with_restart(which: &str) -> (Out, Cleanup, String) {
    let mut cleanup = Cleanup::new();
    let name = sleeper(&mut cleanup, "fault-exec");
    let marker = unique("fault-exec");
    let secs = sleep_for(which);
    let script = format!("echo start {marker}; sleep {secs}; echo end {marker}; exit 4");
    let child = spawn_docker(
        ["exec", &name, "sh", "-c", &script]
            .map(String::from)
            .to_vec(),
    );
    wait_marked(&marker);
    restart(which);
    let out = child.join().expect("docker exec thread");
    assert_no_marked(&marker);
    (out, cleanup, name)
}

/// After an exec test: removing the container leaves nothing behind.
#[track_caller]
fn assert_exec_clean(cleanup: Cleanup, name: &str, before: &Snapshot) {
    docker(&["rm", "-f", name]).ok();
    drop(cleanup);
    assert_nothing_new(before, "after removing the exec's container");
}

/// A build whose RUN step sleeps 8 s; `which` is restarted in that step.
fn build_with_restart(which: &str, images: &mut Images) -> (Out, String, Snapshot) {
    let before = Snapshot::take();
    let mut cleanup = Cleanup::new();
    let marker = unique("fault-build");
    let dir = slow_context(&mut cleanup, &marker, sleep_for(which) + 2);
    let tag = images.tag("fault-build");
    let child = spawn_build(
        ["--progress", "plain", "-t", &tag, &dir]
            .map(String::from)
            .to_vec(),
    );
    wait_marked(&marker);
    restart(which);
    let out = child.join().expect("docker build thread");
    assert_no_marked(&marker);
    (out, tag, before)
}

// --- containerd restarted -----------------------------------------------------------

/// The process lives in its shim, not in containerd: the gateway waits for
/// containerd to come back and passes the real exit status on, as dockerd
/// does across a containerd restart. The output keeps flowing (the FIFOs are
/// the gateway's and the shim's) and `--rm` removes everything.
#[test]
fn containerd_restart_during_run_keeps_the_process() {
    stack();
    let _g = serial();
    let (out, before) = run_with_restart("containerd");
    out.code(3).stdout_has("start bt-").stdout_has("end bt-");
    assert_recovered();
    assert_nothing_new(&before, "run --rm across a containerd restart");
}

#[test]
fn containerd_restart_during_exec_keeps_the_process() {
    stack();
    let _g = serial();
    let before = Snapshot::take();
    let (out, cleanup, name) = exec_with_restart("containerd");
    out.code(4).stdout_has("start bt-").stdout_has("end bt-");
    assert_recovered();
    assert_exec_clean(cleanup, &name, &before);
}

/// containerd plays no part in a build until its image is imported, after
/// the RUN step: the build succeeds.
#[test]
fn containerd_restart_during_build_step_completes_the_build() {
    buildhost();
    let _g = serial();
    let mut images = Images::new();
    let (out, tag, before) = build_with_restart("containerd", &mut images);
    out.ok();
    docker(&["run", "--rm", &tag, "cat", "/done"])
        .ok()
        .stdout_has("bt-fault-build");
    assert_recovered();
    assert_no_build_leaks(&before);
}

// --- the BuildKit host restarted ----------------------------------------------------

/// Runs and execs never touch the BuildKit host.
#[test]
fn buildhost_restart_during_run_is_not_noticed() {
    stack();
    let _g = serial();
    let (out, before) = run_with_restart("buildhost");
    out.code(3).stdout_has("end bt-");
    assert_recovered();
    assert_nothing_new(&before, "run --rm across a BuildKit host restart");
}

#[test]
fn buildhost_restart_during_exec_is_not_noticed() {
    stack();
    let _g = serial();
    let before = Snapshot::take();
    let (out, cleanup, name) = exec_with_restart("buildhost");
    out.code(4).stdout_has("end bt-");
    assert_recovered();
    assert_exec_clean(cleanup, &name, &before);
}

/// dockerd cancels the build when it stops: the CLI says BuildKit went away
/// and exits 125; the next build goes to the new dockerd.
#[test]
fn buildhost_restart_during_build_fails_with_125() {
    buildhost();
    let _g = serial();
    let mut images = Images::new();
    let (out, tag, before) = build_with_restart("buildhost", &mut images);
    out.code(125);
    let last = out.stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("ERROR: ") && last.to_lowercase().contains("buildkit"),
        "expected one ERROR line naming BuildKit last:\n{out}"
    );
    docker(&["image", "inspect", &tag]).failed();
    assert_recovered();
    assert_no_build_leaks(&before);
    // The BuildKit facade found the new dockerd by itself.
    let mut cleanup = Cleanup::new();
    let marker = unique("fault-after");
    let dir = slow_context(&mut cleanup, &marker, 0);
    let tag = images.tag("fault-after");
    build(&["-q", "-t", &tag, &dir]).ok();
}

// --- the gateway restarted ------------------------------------------------------------

/// The CLI's connection is cut: it says so on one line and exits 125, as
/// docker does when its daemon goes away. The process would outlive the
/// gateway in its shim; `--rm` kills and removes it once the gateway is
/// back, so nothing is left.
#[test]
fn gateway_restart_during_run_fails_with_125_and_leaves_nothing() {
    stack();
    let _g = serial();
    let (out, before) = run_with_restart("gateway");
    out.code(125);
    assert_one_line_error(&out, &["gateway"]);
    assert_recovered();
    assert_nothing_new(&before, "run --rm across a gateway restart");
}

/// The exec's process is the container's: it ends with it.
#[test]
fn gateway_restart_during_exec_fails_with_125() {
    stack();
    let _g = serial();
    let before = Snapshot::take();
    let (out, cleanup, name) = exec_with_restart("gateway");
    out.code(125);
    assert_one_line_error(&out, &["gateway"]);
    assert_recovered();
    assert_exec_clean(cleanup, &name, &before);
}

/// The gateway's connection to BuildKit goes with it, and BuildKit cancels
/// the solve of a client that went away.
#[test]
fn gateway_restart_during_build_fails_with_125() {
    buildhost();
    let _g = serial();
    let mut images = Images::new();
    let (out, tag, before) = build_with_restart("gateway", &mut images);
    out.code(125);
    let last = out.stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("ERROR: ") && last.to_lowercase().contains("gateway"),
        "expected one ERROR line naming the gateway last:\n{out}"
    );
    docker(&["image", "inspect", &tag]).failed();
    assert_recovered();
    assert_no_build_leaks(&before);
}

// --- load --------------------------------------------------------------------------------

/// 20 `run --rm` and 4 builds of distinct contexts at once through the one
/// gateway: all succeed and nothing is left (no timing asserted;
/// fixtures/load/run.sh is the full-size load).
#[test]
fn parallel_runs_and_builds_all_succeed_and_leave_nothing() {
    buildhost();
    let _g = serial();
    let before = Snapshot::take();
    let mut images = Images::new();
    let mut cleanup = Cleanup::new();
    let mut runs = Vec::new();
    for i in 0..20 {
        runs.push(spawn_docker(
            [
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                &format!("echo load-{i}"),
            ]
            .map(String::from)
            .to_vec(),
        ));
    }
    let mut builds = Vec::new();
    for _ in 0..4 {
        let marker = unique("load-build");
        let dir = slow_context(&mut cleanup, &marker, 1);
        let tag = images.tag("load-build");
        builds.push((
            tag.clone(),
            spawn_build(["-q", "-t", &tag, &dir].map(String::from).to_vec()),
        ));
    }
    for (i, r) in runs.into_iter().enumerate() {
        r.join()
            .expect("run thread")
            .ok()
            .stdout_has(&format!("load-{i}"));
    }
    for (tag, b) in builds {
        b.join().expect("build thread").ok();
        docker(&["image", "inspect", &tag]).ok();
    }
    // The built images are the test's own (removed by `images`); nothing else.
    assert_no_build_leaks(&before);
}
