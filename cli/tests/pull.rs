//! `docker pull`, `push`, `login`/`logout` and the pull `run` makes, as the
//! agent sees them: every registry is reached through the sandbox's proxy
//! (the stack's TLS registries in the outside namespace), the image is
//! imported by the gateway, and what docker prints is printed.
//!
//! The tests share image names (the fixture images), so they run one at a
//! time (`serial`) and remove what they pulled.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::registry::*;
use common::*;

fn busybox() -> String {
    format!("{REGISTRY}/berth/busybox:latest")
}

#[test]
fn pull_by_tag_prints_docker_lines_then_runs_then_is_up_to_date() {
    stack();
    let _serial = serial();
    let image = busybox();
    remove_images(&[&image]);
    let _cleanup = ImageCleanup(vec![image.clone()]);
    let digest = fixture_digest(&image);

    let out = docker(&["pull", &format!("{REGISTRY}/berth/busybox")]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "Using default tag: latest", "{out}");
    assert_eq!(lines[1], "latest: Pulling from berth/busybox", "{out}");
    assert!(
        lines.contains(&format!("Digest: {digest}").as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {image}").as_str()),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&image.as_str()), "{out}");
    // Each layer line is `<12 hex>: <status>`, ending in Pull complete or Already exists.
    let layer_lines: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            l.len() > 14
                && l.as_bytes()[12] == b':'
                && l[..12].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .collect();
    assert!(
        layer_lines
            .iter()
            .any(|l| l.ends_with(": Pull complete") || l.ends_with(": Already exists")),
        "{out}"
    );
    assert!(image_exists(&image));

    docker(&["run", "--rm", &image, "echo", "pulled-and-ran"])
        .ok()
        .stdout_has("pulled-and-ran");

    let again = docker(&["pull", &image]);
    again.ok();
    assert!(
        again
            .stdout_lines()
            .contains(&format!("Status: Image is up to date for {image}").as_str()),
        "{again}"
    );
}

#[test]
fn pull_by_digest_names_the_digest() {
    stack();
    let _serial = serial();
    let digest = fixture_digest(&busybox());
    let by_digest = format!("{REGISTRY}/berth/busybox@{digest}");
    remove_images(&[&by_digest]);
    let _cleanup = ImageCleanup(vec![by_digest.clone()]);
    let out = docker(&["pull", &by_digest]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(
        lines[0],
        format!("{digest}: Pulling from berth/busybox"),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&by_digest.as_str()), "{out}");
    assert!(image_exists(&by_digest), "{out}");
}

#[test]
fn pull_q_prints_only_the_name() {
    stack();
    let _serial = serial();
    let image = busybox();
    remove_images(&[&image]);
    let _cleanup = ImageCleanup(vec![image.clone()]);
    let out = docker(&["pull", "-q", &image]);
    out.ok();
    assert_eq!(out.stdout, format!("{image}\n"), "{out}");
}

#[test]
fn run_of_a_missing_image_pulls_it_first() {
    stack();
    let _serial = serial();
    let image = busybox();
    remove_images(&[&image]);
    let _cleanup = ImageCleanup(vec![image.clone()]);

    // --pull never: no pull, docker's refusal.
    let never = docker(&["run", "--rm", "--pull", "never", &image, "true"]);
    never.code(125).stderr_has("No such image");
    assert!(!image_exists(&image));

    let out = docker(&["run", "--rm", &image, "echo", "ran-after-pull"]);
    out.ok()
        .stdout_has("ran-after-pull")
        .stderr_has(&format!("Unable to find image '{image}' locally"))
        .stderr_has("latest: Pulling from berth/busybox")
        .stderr_has(&format!("Status: Downloaded newer image for {image}"));
    assert!(!out.stdout.contains("Pulling from"), "{out}");

    // --pull always pulls although the image is there.
    docker(&["run", "--rm", "--pull", "always", &image, "true"])
        .ok()
        .stderr_has("Status: Image is up to date for");
}

#[test]
fn multi_arch_index_pull_runs_the_native_platform() {
    stack();
    let _serial = serial();
    let image = format!("{REGISTRY}/berth/multiarch:latest");
    remove_images(&[&image]);
    let _cleanup = ImageCleanup(vec![image.clone()]);
    let out = docker(&["pull", &image]);
    out.ok();
    // The index's digest is the one reported.
    out.stdout_has(&format!("Digest: {}", fixture_digest(&image)));
    let native = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let cat = docker(&["run", "--rm", &image, "cat", "/arch"]);
    cat.ok();
    assert_eq!(cat.stdout.trim(), native, "{cat}");

    let foreign = if native == "amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let refused = docker(&["pull", "--platform", foreign, &image]);
    refused.code(1).stderr_has("not supported by berth");
}

#[test]
fn a_registry_the_proxy_refuses_is_a_clear_error_and_no_image() {
    stack();
    let _serial = serial();
    let image = format!("{DENIED_REGISTRY}/berth/busybox:latest");
    let out = docker(&["pull", &image]);
    out.code(1).stderr_has(&format!(
        "Error response from daemon: Get \"https://{DENIED_REGISTRY}/v2/\": proxy refused CONNECT: 403"
    ));
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(!image_exists(&image));
}

#[test]
fn a_missing_tag_is_docker_s_not_found() {
    stack();
    let _serial = serial();
    let image = format!("{REGISTRY}/berth/busybox:no-such-tag");
    docker(&["pull", &image]).code(1).stderr_has(&format!(
        "Error response from daemon: manifest for {image} not found: manifest unknown"
    ));
}

/// The CLI's scratch directories (`/tmp/berth-pull-<pid>-…`).
fn scratch_dirs(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("berth-pull-{pid}-");
    std::fs::read_dir("/tmp")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `docker pull image` as the agent and signals it once a download
/// is under way; returns its exit status (128+signal when it died of it).
fn interrupt_pull(image: &str, signal: nix::sys::signal::Signal) -> (i32, u32) {
    let mut child = Command::new(repo_root().join("fixtures/stack/sandbox"))
        .args(["docker", "pull", image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the pull");
    // The sandbox script execs down to the CLI: the child's pid is berth's.
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        seen = scratch_dirs(pid).iter().any(|d| {
            std::fs::read_dir(d)
                .map(|es| {
                    es.filter_map(|e| e.ok())
                        .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
                })
                .unwrap_or(false)
        });
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen, "the pull of {image} never started downloading");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
        .expect("signalling the pull");
    let status = child.wait().expect("waiting for the pull");
    use std::os::unix::process::ExitStatusExt;
    (
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        pid,
    )
}

#[test]
fn an_interrupted_pull_leaves_no_image_and_a_second_pull_completes() {
    stack();
    let _serial = serial();
    let repo = format!("berth/{}", unique("big"));
    let image = format!("{REGISTRY}/{repo}:latest");
    let _cleanup = ImageCleanup(vec![image.clone()]);
    push_large_image(&repo, 64);

    // Ctrl-C: the CLI removes its downloads and exits 130.
    let (code, pid) = interrupt_pull(&image, nix::sys::signal::Signal::SIGINT);
    assert_eq!(code, 130);
    assert!(scratch_dirs(pid).is_empty(), "downloads left in /tmp");
    assert!(!image_exists(&image), "an interrupted pull left {image}");

    // Killed outright: still no image.
    let (code, pid) = interrupt_pull(&image, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(code, 128 + 9);
    for d in scratch_dirs(pid) {
        let _ = std::fs::remove_dir_all(d);
    }
    assert!(!image_exists(&image), "a killed pull left {image}");

    let out = docker(&["pull", &image]);
    out.ok()
        .stdout_has(&format!("Status: Downloaded newer image for {image}"));
    assert!(image_exists(&image));
}

#[test]
fn pull_progress_on_a_terminal_draws_docker_s_bars() {
    stack();
    let _serial = serial();
    let repo = format!("berth/{}", unique("tty"));
    let image = format!("{REGISTRY}/{repo}:latest");
    let _cleanup = ImageCleanup(vec![image.clone()]);
    push_large_image(&repo, 32);
    // util-linux `script` runs the pull on a pseudo-terminal.
    let sandbox = repo_root().join("fixtures/stack/sandbox");
    let mut cmd = Command::new("script");
    cmd.args([
        "-qefc",
        &format!("{} docker pull {image}", sandbox.display()),
        "/dev/null",
    ]);
    let out = run(cmd, Input::Null, COMMAND_TIMEOUT);
    out.ok();
    let text = &out.stdout;
    assert!(text.contains("Downloading [="), "{out}");
    assert!(text.contains("MB/"), "{out}");
    assert!(text.contains("Pull complete"), "{out}");
    // Lines are redrawn in place (cursor movement), not appended.
    assert!(text.contains("\x1b["), "{out}");
    assert!(
        text.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
}

#[test]
fn build_tag_push_rmi_pull_run_round_trip() {
    stack();
    let _serial = serial();
    let base = busybox();
    let name = unique("rt");
    let built = format!("{name}:v1");
    let pushed = format!("{REGISTRY}/berth/{name}:v1");
    let _cleanup = ImageCleanup(vec![
        base.clone(),
        format!("docker.io/library/{built}"),
        pushed.clone(),
    ]);
    docker(&["pull", "-q", &base]).ok();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "rt");
    std::fs::write(
        format!("{dir}/Dockerfile"),
        format!("FROM {base}\nRUN echo round-trip-{name} > /msg\nCMD [\"cat\", \"/msg\"]\n"),
    )
    .expect("writing the Dockerfile");
    docker(&["build", "-q", "-t", &built, &dir]).ok();
    docker(&["tag", &built, &pushed]).ok();

    let out = docker(&["push", &pushed]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{REGISTRY}/berth/{name}]"),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{out}");
    // The base layer is already in the registry (or mounted from berth/busybox).
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(": Layer already exists")
                || l.contains(": Mounted from berth/busybox")),
        "{out}"
    );
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("v1: digest: sha256:") && last.contains(" size: "),
        "{out}"
    );

    docker(&["rmi", &pushed]).ok();
    docker(&["rmi", &built]).ok();
    assert!(!image_exists(&pushed));

    docker(&["pull", &pushed])
        .ok()
        .stdout_has(&format!("Status: Downloaded newer image for {pushed}"));
    docker(&["run", "--rm", &pushed])
        .ok()
        .stdout_has(&format!("round-trip-{name}"));

    // A second push finds everything there.
    let again = docker(&["push", &pushed]);
    again.ok();
    assert!(
        again
            .stdout_lines()
            .iter()
            .all(|l| !l.ends_with(": Pushed")),
        "{again}"
    );
}

#[test]
fn login_to_the_auth_registry_then_pull_and_logout() {
    stack();
    let _serial = serial();
    let (user, password) = registry_credentials();
    let image = format!("{AUTH_REGISTRY}/berth/busybox:latest");
    remove_images(&[&image]);
    let _cleanup = ImageCleanup(vec![image.clone()]);
    let mut cleanup = Cleanup::new();
    // A config dir of the test's own, with the registry CAs docker would use.
    let dir = agent_dir(&mut cleanup, "dockercfg");
    sandbox(&[
        "sh",
        "-c",
        &format!("cp -r \"$HOME/.docker/certs.d\" {dir}/"),
    ])
    .ok();
    let with_config = |script: &str, input: Option<&str>| {
        let full = format!("DOCKER_CONFIG={dir} {script}");
        match input {
            Some(i) => sandbox_with(&["sh", "-c", &full], Input::Bytes(i.as_bytes().to_vec())),
            None => sandbox(&["sh", "-c", &full]),
        }
    };

    with_config(&format!("docker pull {image}"), None)
        .code(1)
        .stderr_has("no basic auth credentials");

    let wrong = with_config(
        &format!("docker login -u {user} --password-stdin {AUTH_REGISTRY}"),
        Some("not-the-password\n"),
    );
    wrong
        .code(1)
        .stderr_has("Error response from daemon:")
        .stderr_has("unauthorized");
    assert!(
        !std::path::Path::new(&format!("{dir}/config.json")).exists()
            || !std::fs::read_to_string(format!("{dir}/config.json"))
                .unwrap_or_default()
                .contains(AUTH_REGISTRY)
    );

    with_config(
        &format!("docker login -u {user} --password-stdin {AUTH_REGISTRY}"),
        Some(&format!("{password}\n")),
    )
    .ok()
    .stdout_has("Login Succeeded");
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/config.json")).expect("config.json written"),
    )
    .expect("config.json is JSON");
    use base64::Engine as _;
    let auth = config["auths"][AUTH_REGISTRY]["auth"]
        .as_str()
        .expect("an auth entry");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .expect("base64"),
        format!("{user}:{password}").as_bytes()
    );

    with_config(&format!("docker pull {image}"), None)
        .ok()
        .stdout_has(&format!("Status: Downloaded newer image for {image}"));

    with_config(&format!("docker logout {AUTH_REGISTRY}"), None)
        .ok()
        .stdout_has(&format!("Removing login credentials for {AUTH_REGISTRY}"));
    with_config(&format!("docker pull {image}"), None)
        .code(1)
        .stderr_has("no basic auth credentials");
}
