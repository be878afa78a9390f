//! `docker run` as the agent sees it: exit codes, output, environment,
//! users, mounts, standard input and the network.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use common::*;
use sha2::{Digest, Sha256};

// --- exit codes and output -----------------------------------------------------

#[test]
fn run_prints_the_commands_output_and_exits_0() {
    stack();
    let out = docker(&["run", "--rm", "busybox", "echo", "hello"]);
    out.ok();
    assert_eq!(out.stdout, "hello\n", "{out}");
}

#[test]
fn run_exits_with_the_commands_status() {
    stack();
    docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]).code(3);
}

#[test]
fn run_of_a_missing_command_exits_127() {
    stack();
    docker(&["run", "--rm", "busybox", "nosuchcmd"])
        .code(127)
        .stderr_has("nosuchcmd");
}

#[test]
fn run_of_a_file_that_is_not_executable_exits_126() {
    stack();
    docker(&["run", "--rm", "busybox", "/etc/passwd"])
        .code(126)
        .stderr_has("/etc/passwd");
}

#[test]
fn run_keeps_stdout_and_stderr_apart() {
    stack();
    let out = docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    out.ok();
    assert_eq!(out.stdout, "out\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
}

#[test]
fn run_rm_removes_the_container_afterwards() {
    stack();
    let name = unique("rm");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    docker(&["run", "--rm", "--name", &name, "busybox", "true"]).ok();
    let ps = docker(&["ps", "-a", "--no-trunc"]);
    ps.ok();
    let table = Table::parse(&ps.stdout, PS_TITLES);
    assert!(
        table.row("NAMES", &name).is_none(),
        "--rm left {name} behind:\n{ps}"
    );
    docker(&["inspect", &name]).code(1).stderr_has("no such");
}

// --- environment ---------------------------------------------------------------------

/// `env` output as a map.
fn env_of(out: &Out) -> BTreeMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn run_sets_the_sandbox_proxy_even_when_the_user_overrides_it() {
    stack();
    let out = docker(&[
        "run",
        "--rm",
        "-e",
        "HTTP_PROXY=http://evil:1",
        "-e",
        "http_proxy=http://evil:1",
        "-e",
        "HTTPS_PROXY=http://evil:1",
        "-e",
        "ALL_PROXY=socks5://evil:1",
        "-e",
        "NO_PROXY=*",
        "-e",
        "no_proxy=*",
        "busybox",
        "env",
    ]);
    out.ok();
    let env = env_of(&out);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        for name in [var.to_string(), var.to_lowercase()] {
            assert_eq!(
                env.get(&name).map(String::as_str),
                Some(PROXY_URL),
                "{name}:\n{out}"
            );
        }
    }
    let no_proxy = env
        .get("NO_PROXY")
        .unwrap_or_else(|| panic!("NO_PROXY is not set:\n{out}"));
    assert_eq!(
        env.get("no_proxy"),
        Some(no_proxy),
        "no_proxy must match NO_PROXY:\n{out}"
    );
    assert!(
        !no_proxy.contains('*') && !no_proxy.contains("evil"),
        "NO_PROXY kept the user's value:\n{out}"
    );
    assert!(
        !no_proxy.contains("10.201."),
        "NO_PROXY lets the outside world bypass the proxy:\n{out}"
    );
}

#[test]
fn run_passes_e_and_env_file_variables_and_the_image_path() {
    stack();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "envfile");
    let env_file = format!("{dir}/vars.env");
    sandbox(&[
        "sh",
        "-c",
        &format!("printf '# a comment\\nFROM_FILE=yes\\nSPACED=a b\\n' > {env_file}"),
    ])
    .ok();
    let out = docker(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "--env-file",
        &env_file,
        "busybox",
        "env",
    ]);
    out.ok();
    let env = env_of(&out);
    assert_eq!(env.get("FOO").map(String::as_str), Some("bar"), "{out}");
    assert_eq!(
        env.get("FROM_FILE").map(String::as_str),
        Some("yes"),
        "{out}"
    );
    assert_eq!(env.get("SPACED").map(String::as_str), Some("a b"), "{out}");
    assert_eq!(
        env.get("PATH").map(String::as_str),
        Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "the image's Env must be kept:\n{out}"
    );
}

#[test]
fn run_w_sets_the_working_directory() {
    stack();
    let out = docker(&["run", "--rm", "-w", "/tmp", "busybox", "pwd"]);
    out.ok();
    assert_eq!(out.stdout, "/tmp\n", "{out}");
}

#[test]
fn run_entrypoint_replaces_the_images_command() {
    stack();
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/echo",
        "busybox",
        "from",
        "entrypoint",
    ]);
    out.ok();
    assert_eq!(out.stdout, "from entrypoint\n", "{out}");
}

fn id_of(user: &str) -> String {
    let out = docker(&["run", "--rm", "-u", user, "busybox", "id"]);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn run_u_1000_runs_as_the_images_berth_user() {
    stack();
    let id = id_of("1000");
    assert!(id.starts_with("uid=1000(berth) gid=1000(berth)"), "{id}");
    assert!(
        !id.contains("0(root)"),
        "a non-root user must not keep group root: {id}"
    );
}

#[test]
fn run_u_berth_resolves_the_name_in_the_image() {
    stack();
    let id = id_of("berth");
    assert!(id.starts_with("uid=1000(berth) gid=1000(berth)"), "{id}");
    assert!(!id.contains("0(root)"), "{id}");
}

#[test]
fn run_u_nobody_runs_as_nobody() {
    stack();
    let id = id_of("nobody");
    assert!(
        id.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{id}"
    );
    assert!(!id.contains("0(root)"), "{id}");
}

#[test]
fn run_read_only_makes_the_root_filesystem_read_only() {
    stack();
    docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"])
        .failed()
        .stderr_has("read-only file system");
    // Without the flag the same write works.
    docker(&["run", "--rm", "busybox", "touch", "/x"]).ok();
}

#[test]
fn run_v_shares_a_workspace_directory_with_the_container() {
    stack();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "vol");
    sandbox(&["sh", "-c", &format!("echo from-agent > {dir}/in")]).ok();

    let out = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{dir}:/data"),
        "busybox",
        "sh",
        "-c",
        "cat /data/in && echo from-container > /data/out",
    ]);
    out.ok();
    assert_eq!(out.stdout, "from-agent\n", "{out}");

    let written = format!("{dir}/out");
    assert_eq!(
        std::fs::read_to_string(&written).expect("the container's file"),
        "from-container\n"
    );
    // No user namespace, as with docker: the container's root writes as uid 0.
    let meta = std::fs::metadata(&written).expect("metadata");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner of {written}");
    // The agent still controls its workspace: it can read and delete the file.
    sandbox(&["cat", &written]).ok();
    sandbox(&["rm", "-f", &written]).ok();
    assert!(!std::path::Path::new(&written).exists());

    // Bind mounts carry nosuid and nodev (architecture rule 3), so a
    // set-uid file the container makes there grants nothing.
    let mounts = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{dir}:/data"),
        "busybox",
        "grep",
        " /data ",
        "/proc/mounts",
    ]);
    mounts.ok();
    for option in ["nosuid", "nodev"] {
        assert!(
            mounts.stdout.contains(option),
            "/data is mounted without {option}:\n{mounts}"
        );
    }
}

#[test]
fn run_v_ro_mounts_read_only() {
    stack();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "volro");
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{dir}:/data:ro"),
        "busybox",
        "touch",
        "/data/x",
    ])
    .failed()
    .stderr_has("read-only file system");
    assert!(!std::path::Path::new(&format!("{dir}/x")).exists());
}

// --- standard input ----------------------------------------------------------------

#[test]
fn run_i_forwards_piped_stdin() {
    stack();
    let out = docker_with(
        &["run", "-i", "--rm", "busybox", "cat"],
        Input::Bytes(b"data\n".to_vec()),
    );
    out.ok();
    assert_eq!(out.stdout, "data\n", "{out}");
}

#[test]
fn run_i_reads_a_redirected_file() {
    stack();
    let mut cleanup = Cleanup::new();
    let path = std::env::temp_dir().join(unique("stdin"));
    cleanup.path(&path);
    std::fs::write(&path, vec![b'x'; 12345]).expect("writing the input file");
    let file = std::fs::File::open(&path).expect("opening the input file");
    let out = docker_with(
        &["run", "-i", "--rm", "busybox", "wc", "-c"],
        Input::File(file),
    );
    out.ok();
    assert_eq!(out.stdout.trim(), "12345", "{out}");
}

#[test]
fn run_i_carries_a_megabyte_of_binary_stdin_intact() {
    stack();
    // Deterministic bytes covering every value, so a text-mode or
    // truncating relay is caught.
    let data: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let want = hex::encode(Sha256::digest(&data));
    let out = docker_with(
        &["run", "-i", "--rm", "busybox", "sha256sum"],
        Input::Bytes(data),
    );
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().next(),
        Some(want.as_str()),
        "{out}"
    );
}

#[test]
fn run_without_i_does_not_forward_stdin() {
    stack();
    let out = docker_with(
        &["run", "--rm", "busybox", "cat"],
        Input::Bytes(b"secret\n".to_vec()),
    );
    out.ok();
    assert_eq!(out.stdout, "", "{out}");
}

// --- network -----------------------------------------------------------------------
//
// busybox 1.35's `wget -T` crashes (SIGSEGV, also on the host), so the
// applet `timeout` bounds each fetch instead.

/// `docker run --rm FLAGS… busybox [env ENV_ARGS…] timeout 10 wget WGET_ARGS… URL`.
fn fetch(flags: &[&str], env: &[&str], wget: &[&str], url: &str) -> Out {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push("busybox");
    if !env.is_empty() {
        args.push("env");
        args.extend_from_slice(env);
    }
    args.extend_from_slice(&["timeout", "10", "wget", "-q", "-O-"]);
    args.extend_from_slice(wget);
    args.push(url);
    docker(&args)
}

/// Asserts a fetch failed the way a network refusal fails (exit 1 and
/// wget's own words), not by a crash or a timeout, and fetched nothing.
#[track_caller]
fn assert_fetch_failed(out: &Out, words: &[&str]) {
    out.code(1);
    assert!(
        words.iter().any(|w| out.stderr.contains(w)),
        "expected wget to report one of {words:?}:\n{out}"
    );
    assert!(
        !out.stdout.contains(OUTSIDE_BODY),
        "the outside world answered:\n{out}"
    );
}

#[test]
fn containers_reach_the_outside_through_the_proxy() {
    stack();
    let out = fetch(&[], &[], &[], OUTSIDE_URL);
    out.ok();
    assert_eq!(out.stdout.trim(), OUTSIDE_BODY, "{out}");
}

#[test]
fn a_users_proxy_variable_cannot_redirect_traffic() {
    stack();
    let out = fetch(&["-e", "http_proxy=http://evil:1"], &[], &[], OUTSIDE_URL);
    out.ok();
    assert_eq!(out.stdout.trim(), OUTSIDE_BODY, "{out}");
}

#[test]
fn the_proxy_refuses_a_denied_url() {
    stack();
    let out = fetch(&[], &[], &[], DENIED_URL);
    assert_fetch_failed(&out, &["403"]);
}

#[test]
fn a_direct_connection_bypassing_the_proxy_fails() {
    stack();
    let out = fetch(&[], &[], &["-Y", "off"], OUTSIDE_URL);
    assert_fetch_failed(&out, &["can't connect"]);
    let unset = ["-u", "http_proxy", "-u", "HTTP_PROXY"];
    let out = fetch(&[], &unset, &[], OUTSIDE_URL);
    assert_fetch_failed(&out, &["can't connect"]);
}

#[test]
fn containers_share_the_sandbox_network_namespace() {
    stack();
    // The sandbox's veth end is visible: the container is in the sandbox's
    // network namespace, not the host's and not a private one.
    let out = docker(&["run", "--rm", "busybox", "cat", "/proc/net/dev"]);
    out.ok().stdout_has("berth-s0");
    assert!(
        !out.stdout.contains("berth-h0"),
        "the host's network namespace is visible:\n{out}"
    );
}

#[test]
fn network_none_has_no_route_out() {
    stack();
    let none = ["--network", "none"];
    let devices = docker(&[
        "run",
        "--rm",
        none[0],
        none[1],
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    devices.ok();
    assert!(
        !devices.stdout.contains("berth-s0"),
        "--network none still has the sandbox's interface:\n{devices}"
    );
    // /proc/net/route (the main table) holds only its header without routes.
    let routes = docker(&[
        "run",
        "--rm",
        none[0],
        none[1],
        "busybox",
        "cat",
        "/proc/net/route",
    ]);
    routes.ok();
    assert_eq!(
        routes.stdout_lines().len(),
        1,
        "--network none has routes:\n{routes}"
    );
    // The same file with the sandbox's network has the default route.
    let shared = docker(&["run", "--rm", "busybox", "cat", "/proc/net/route"]);
    shared.ok();
    assert!(
        shared.stdout_lines().len() > 1,
        "the sandbox's network has no routes:\n{shared}"
    );
    let out = fetch(&none, &[], &[], OUTSIDE_URL);
    assert_fetch_failed(&out, &["Network is unreachable"]);
}

/// Containers share the sandbox's network namespace; with CAP_NET_RAW a
/// packet socket would send frames below the sandbox's nftables. The gateway
/// drops it even though docker's default set (which berth asks for) has it.
#[test]
fn containers_run_without_cap_net_raw() {
    stack();
    let out = docker(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "^CapBnd",
        "/proc/self/status",
    ]);
    out.ok();
    let hex = out
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no CapBnd line: {out}"));
    let bits = u64::from_str_radix(hex, 16).expect("CapBnd is hex");
    const CAP_NET_RAW: u32 = 13;
    const CAP_CHOWN: u32 = 0;
    assert_eq!(bits & (1 << CAP_NET_RAW), 0, "CAP_NET_RAW kept: {out}");
    assert_ne!(
        bits & (1 << CAP_CHOWN),
        0,
        "docker's default set lost: {out}"
    );
}
