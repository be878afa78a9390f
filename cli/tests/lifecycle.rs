//! Detached containers: run -d, ps, logs, exec, inspect, stop, kill, wait, rm.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `docker run -d --name NAME busybox ARGS…`; returns the full ID.
fn run_detached(cleanup: &mut Cleanup, name: &str, args: &[&str]) -> String {
    cleanup.container(name);
    let mut full = vec!["run", "-d", "--name", name, "busybox"];
    full.extend_from_slice(args);
    let out = docker(&full);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(
        is_full_id(&id),
        "run -d must print the 64-hex container ID:\n{out}"
    );
    id
}

/// A long-running container that printed `started`.
fn started(cleanup: &mut Cleanup, tag: &str) -> (String, String) {
    let name = unique(tag);
    let id = run_detached(cleanup, &name, &["sh", "-c", "echo started; sleep 300"]);
    (name, id)
}

fn ps(args: &[&str]) -> Table {
    let mut full = vec!["ps"];
    full.extend_from_slice(args);
    let out = docker(&full);
    out.ok();
    Table::parse(&out.stdout, PS_TITLES)
}

fn status_of(name: &str) -> String {
    let table = ps(&["-a"]);
    let row = table
        .row("NAMES", name)
        .unwrap_or_else(|| panic!("ps -a does not list {name}"));
    table.cell(row, "STATUS").to_string()
}

#[test]
fn run_d_prints_the_id_and_ps_shows_the_container_up() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, id) = started(&mut cleanup, "ps");

    let table = ps(&[]);
    let row = table
        .row("NAMES", &name)
        .unwrap_or_else(|| panic!("ps does not list {name}"));
    assert_eq!(table.cell(row, "CONTAINER ID"), &id[..12]);
    assert_eq!(table.cell(row, "IMAGE"), "busybox");
    assert!(
        table.cell(row, "COMMAND").starts_with("\"sh -c"),
        "COMMAND: {:?}",
        table.cell(row, "COMMAND")
    );
    assert!(
        table.cell(row, "STATUS").starts_with("Up "),
        "STATUS: {:?}",
        table.cell(row, "STATUS")
    );
    assert_eq!(table.cell(row, "PORTS"), "");

    let quiet = docker(&["ps", "-q"]);
    quiet.ok();
    assert!(
        quiet.stdout_lines().contains(&&id[..12]),
        "ps -q must list the short ID {}:\n{quiet}",
        &id[..12]
    );
    assert!(
        quiet.stdout_lines().iter().all(|l| l.len() == 12),
        "ps -q prints short IDs only:\n{quiet}"
    );

    // The real containerd runs exactly this container in the sandbox's namespace.
    real_ctr(&["containers", "ls", "-q"]).ok().stdout_has(&id);
    let tasks = real_ctr(&["tasks", "ls"]);
    let task = tasks
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with(&id))
        .map(str::to_string);
    let task = task.unwrap_or_else(|| panic!("no task for {id}:\n{tasks}"));
    assert!(task.contains("RUNNING"), "{task}");
}

#[test]
fn logs_shows_what_the_container_printed() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "logs");
    let seen = eventually(Duration::from_secs(10), || {
        let out = docker(&["logs", &name]);
        (out.code == 0 && out.stdout.contains("started")).then_some(out)
    });
    assert!(
        seen.is_some(),
        "logs never showed `started`: {}",
        docker(&["logs", &name])
    );
}

#[test]
fn logs_f_follows_until_the_container_exits() {
    stack();
    let mut cleanup = Cleanup::new();
    let name = unique("follow");
    run_detached(
        &mut cleanup,
        &name,
        &[
            "sh",
            "-c",
            "echo one; sleep 2; echo two; sleep 1; echo three >&2",
        ],
    );
    let out = docker(&["logs", "-f", &name]);
    out.ok();
    assert_eq!(out.stdout, "one\ntwo\n", "{out}");
    assert_eq!(
        out.stderr, "three\n",
        "logs keeps the container's stderr on stderr:\n{out}"
    );
    assert!(status_of(&name).starts_with("Exited (0)"));
}

#[test]
fn exec_runs_a_command_in_the_running_container() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "exec");
    let out = docker(&["exec", &name, "echo", "hi"]);
    out.ok();
    assert_eq!(out.stdout, "hi\n", "{out}");
    docker(&["exec", &name, "sh", "-c", "exit 5"]).code(5);
    // It is the same container: the init process is visible.
    docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ])
    .ok()
    .stdout_has("sleep");
}

#[test]
fn exec_e_adds_variables_and_keeps_the_proxy() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "exec-env");
    let out = docker(&[
        "exec",
        "-e",
        "A=b",
        "-e",
        "http_proxy=http://evil:1",
        &name,
        "env",
    ]);
    out.ok();
    let lines = out.stdout_lines();
    assert!(lines.contains(&"A=b"), "{out}");
    assert!(
        lines.contains(&format!("http_proxy={PROXY_URL}").as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("HTTP_PROXY={PROXY_URL}").as_str()),
        "{out}"
    );
}

#[test]
fn exec_i_forwards_stdin() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "exec-i");
    let out = docker_with(
        &["exec", "-i", &name, "cat"],
        Input::Bytes(b"through exec\n".to_vec()),
    );
    out.ok();
    assert_eq!(out.stdout, "through exec\n", "{out}");
}

#[test]
fn exec_privileged_is_refused() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "exec-priv");
    let out = docker(&["exec", "--privileged", &name, "id"]);
    out.code(125);
    assert_one_line_message(&out, &["privileged", "capabilit"]);
}

#[test]
fn exec_in_a_missing_container_fails() {
    stack();
    docker(&["exec", "bt-nosuch-container", "true"])
        .failed()
        .stderr_has("no such container");
}

#[test]
fn inspect_shows_docker_shaped_json() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, id) = started(&mut cleanup, "inspect");
    let out = docker(&["inspect", &name]);
    out.ok();
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    let all = json
        .as_array()
        .unwrap_or_else(|| panic!("inspect prints a JSON array:\n{out}"));
    assert_eq!(all.len(), 1, "{out}");
    let c = &all[0];
    assert_eq!(c["Id"], id.as_str(), "{out}");
    assert_eq!(c["Name"], format!("/{name}").as_str(), "{out}");
    assert_eq!(c["State"]["Status"], "running", "{out}");
    assert_eq!(c["State"]["Running"], true, "{out}");
    assert!(
        c["State"]["Pid"].as_i64().unwrap_or(0) > 0,
        "State.Pid: {out}"
    );
    assert_eq!(c["Config"]["Image"], "busybox", "{out}");
    assert_eq!(
        c["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo started; sleep 300"]),
        "{out}"
    );
    assert_eq!(
        c["Image"],
        busybox_fixture().config_digest.as_str(),
        "Image is the image ID:\n{out}"
    );

    let running = docker(&["inspect", "-f", "{{.State.Running}}", &name]);
    running.ok();
    assert_eq!(running.stdout, "true\n", "{running}");
    let name_only = docker(&["inspect", "--format", "{{.Name}}", &name]);
    name_only.ok();
    assert_eq!(name_only.stdout, format!("/{name}\n"), "{name_only}");
}

#[test]
fn stop_t_kills_a_process_that_ignores_sigterm_after_the_timeout() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, id) = started(&mut cleanup, "stop");
    let began = Instant::now();
    let out = docker(&["stop", "-t", "1", &name]);
    let took = began.elapsed();
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        name,
        "stop prints the name it was given:\n{out}"
    );
    // sh/sleep as PID 1 has no SIGTERM handler, so the kernel ignores
    // SIGTERM; the SIGKILL after the 1 s grace period ends it. Not a
    // benchmark: 8 s only tells `-t 1` from docker's default of 10 s.
    assert!(took < Duration::from_secs(8), "stop -t 1 took {took:?}");
    let status = status_of(&name);
    assert!(
        status.starts_with("Exited (137)"),
        "ps -a STATUS after stop: {status:?}"
    );
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.stdout.trim(), "137", "{code}");
    // Stopped, not removed.
    real_ctr(&["containers", "ls", "-q"]).ok().stdout_has(&id);
}

#[test]
fn stop_of_a_process_that_handles_sigterm_exits_143() {
    stack();
    let mut cleanup = Cleanup::new();
    let name = unique("stop-term");
    // The trap makes PID 1 handle SIGTERM; `wait` lets the shell run it
    // while sleep runs in the background.
    run_detached(
        &mut cleanup,
        &name,
        &["sh", "-c", "trap 'exit 143' TERM; sleep 300 & wait"],
    );
    docker(&["stop", "-t", "30", &name]).ok();
    let status = status_of(&name);
    assert!(
        status.starts_with("Exited (143)"),
        "ps -a STATUS after stop: {status:?}"
    );
}

#[test]
fn kill_ends_the_container_with_137() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "kill");
    let out = docker(&["kill", &name]);
    out.ok();
    assert_eq!(out.stdout.trim(), name, "{out}");
    let status = eventually(Duration::from_secs(10), || {
        let s = status_of(&name);
        s.starts_with("Exited").then_some(s)
    });
    let status = status.unwrap_or_else(|| panic!("still running after kill: {}", status_of(&name)));
    assert!(status.starts_with("Exited (137)"), "{status:?}");
}

#[test]
fn wait_prints_the_exit_status() {
    stack();
    let mut cleanup = Cleanup::new();
    let name = unique("wait");
    run_detached(&mut cleanup, &name, &["sh", "-c", "sleep 1; exit 7"]);
    let out = docker(&["wait", &name]);
    out.ok();
    assert_eq!(out.stdout.trim(), "7", "{out}");
}

#[test]
fn rm_f_removes_a_running_container_from_containerd() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, id) = started(&mut cleanup, "rmf");
    let out = docker(&["rm", "-f", &name]);
    out.ok();
    assert_eq!(out.stdout.trim(), name, "{out}");
    assert!(
        ps(&["-a"]).row("NAMES", &name).is_none(),
        "ps -a still lists {name}"
    );
    let containers = real_ctr(&["containers", "ls", "-q"]);
    assert!(
        !containers.ok().stdout.contains(&id),
        "containerd still holds {id}:\n{containers}"
    );
    let tasks = real_ctr(&["tasks", "ls", "-q"]);
    assert!(
        !tasks.ok().stdout.contains(&id),
        "containerd still runs {id}:\n{tasks}"
    );
    // The container's FIFOs go with it.
    let leftovers: Vec<String> = walk(GATEWAY_IO)
        .into_iter()
        .filter(|p| p.contains(&id))
        .collect();
    assert!(leftovers.is_empty(), "FIFOs of {id} remain: {leftovers:?}");
}

#[test]
fn rm_of_a_running_container_without_f_is_refused() {
    stack();
    let mut cleanup = Cleanup::new();
    let (name, _) = started(&mut cleanup, "rm-running");
    docker(&["rm", &name]).code(1).stderr_has(&name);
    assert!(status_of(&name).starts_with("Up "));
}

#[test]
fn rm_of_a_missing_container_exits_1() {
    stack();
    docker(&["rm", "bt-nosuch-container"])
        .code(1)
        .stderr_has("No such container");
}

#[test]
fn logs_of_a_missing_container_exits_1() {
    stack();
    docker(&["logs", "bt-nosuch-container"])
        .code(1)
        .stderr_has("No such container");
}
