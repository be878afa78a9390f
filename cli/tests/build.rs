//! `docker build` as the agent sees it, through the gateway's BuildKit facade
//! on the local stack: every test copies a context from `fixtures/build/`
//! into the workspace, builds it as the agent and checks what a user would
//! notice — exit status, output, `docker run` of the image, its config.
//!
//! The submodules hold the proxy and refusal cases (`build/network.rs`),
//! outputs and flags (`build/outputs.rs`) and the comparison with
//! `docker buildx build` on the same Engine (`build/parity.rs`).

mod common;

#[path = "build/network.rs"]
mod network;
#[path = "build/outputs.rs"]
mod outputs;
#[path = "build/parity.rs"]
mod parity;

use common::*;
use sha2::{Digest, Sha256};

// --- tags, run, stages -------------------------------------------------------------

#[test]
fn build_t_makes_an_image_that_run_starts_at_once() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "multistage");
    let tag = images.tag("ms");
    let second = images.tag("ms-second");
    build(&["-t", &tag, "-t", &second, &ctx.dir]).ok();

    assert_eq!(
        run_image(&tag, &["cat", "/stage-base", "/from-tool", "/stage-final"]),
        "base\ntool\nfinal\n"
    );
    // The image is in the sandbox's namespace of the real containerd, under both tags.
    let ls = real_ctr(&["images", "ls", "-q"]);
    ls.ok()
        .stdout_has(&full_ref(&tag))
        .stdout_has(&full_ref(&second));
    assert_eq!(
        inspect_image(&tag)["Id"],
        inspect_image(&second)["Id"],
        "two -t of one build name one image"
    );
}

#[test]
fn build_target_stops_at_the_named_stage() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "multistage");
    let tag = images.tag("target");
    build(&["--target", "tool", "-t", &tag, &ctx.dir]).ok();
    let out = run_image(
        &tag,
        &[
            "sh",
            "-c",
            "cat /stage-base /stage-tool; test -e /stage-final && echo final-present || echo no-final",
        ],
    );
    assert_eq!(out, "base\ntool\nno-final\n");
}

#[test]
fn build_target_of_a_failing_stage_fails_with_its_log() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "multistage");
    let tag = images.tag("broken");
    let out = build(&[
        "--progress",
        "plain",
        "--target",
        "broken",
        "-t",
        &tag,
        &ctx.dir,
    ]);
    assert_build_failed(&out, &["the broken stage ran", "exit code: 9"]);
    docker(&["image", "inspect", &tag]).code(1);
}

#[test]
fn a_failing_run_exits_1_and_shows_its_log() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "failing");
    let tag = images.tag("failing");
    // auto progress without a terminal is plain; the log tail must show either way.
    let out = build(&["-t", &tag, &ctx.dir]);
    assert_build_failed(
        &out,
        &[
            "fl-4711",
            "failing now",
            "did not complete successfully: exit code: 7",
            // docker's excerpt of the Dockerfile around the failed step
            "Dockerfile:2",
            ">>> RUN echo \"marker before the failure: fl-4711\"",
        ],
    );
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("Status {"),
        "a failed build must read as docker's, not as a crash:\n{out}"
    );
    docker(&["image", "inspect", &tag]).code(1);
    assert!(
        !real_ctr(&["images", "ls", "-q"])
            .stdout
            .contains(&full_ref(&tag)),
        "a failed build left an image"
    );
}

// --- ARG and --build-arg ---------------------------------------------------------------

fn env_list(image: &serde_json::Value) -> Vec<String> {
    image["Config"]["Env"]
        .as_array()
        .unwrap_or_else(|| panic!("no Config.Env in {image}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn arg_before_from_and_build_args_take_their_defaults() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "args");
    let tag = images.tag("args");
    build(&["-t", &tag, &ctx.dir]).ok();
    assert_eq!(
        run_image(&tag, &["cat", "/args.txt"]),
        "flavour=plain greeting=hello\n"
    );
    assert!(env_list(&inspect_image(&tag)).contains(&"GREETING_ENV=hello".to_string()));
}

#[test]
fn build_arg_overrides_args_before_and_after_from() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "args");
    let tag = images.tag("args-set");
    build(&[
        "--build-arg",
        "FLAVOUR=spicy",
        "--build-arg",
        "GREETING=howdy",
        "-t",
        &tag,
        &ctx.dir,
    ])
    .ok();
    assert_eq!(
        run_image(&tag, &["cat", "/args.txt"]),
        "flavour=spicy greeting=howdy\n"
    );
    let env = env_list(&inspect_image(&tag));
    assert!(env.contains(&"GREETING_ENV=howdy".to_string()), "{env:?}");
}

#[test]
fn build_arg_name_alone_takes_the_value_from_the_environment() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "args");
    let tag = images.tag("args-env");
    build_with(
        &["GREETING=from-the-environment"],
        &["--build-arg", "GREETING", "-t", &tag, &ctx.dir],
        Input::Null,
    )
    .ok();
    assert_eq!(
        run_image(&tag, &["cat", "/args.txt"]),
        "flavour=plain greeting=from-the-environment\n"
    );
}

#[test]
fn from_an_image_built_in_the_sandbox() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let base_ctx = Context::new(&mut cleanup, "multistage");
    let base = images.tag("local-base");
    build(&["--target", "tool", "-t", &base, &base_ctx.dir]).ok();

    let ctx = Context::new(&mut cleanup, "from-local");
    let tag = images.tag("derived");
    build(&["--build-arg", &format!("BASE={base}"), "-t", &tag, &ctx.dir]).ok();
    assert_eq!(run_image(&tag, &["cat", "/derived"]), "tool\nderived\n");
    let layers = |t: &str| {
        inspect_image(t)["RootFS"]["Layers"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_else(|| panic!("no RootFS.Layers for {t}"))
    };
    assert_eq!(
        layers(&tag),
        layers(&base) + 1,
        "the derived image is its base plus one layer"
    );
}

// --- Dockerfile features ------------------------------------------------------------------

#[test]
fn heredocs_in_run_and_copy() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "heredoc");
    let tag = images.tag("heredoc");
    build(&["-t", &tag, &ctx.dir]).ok();
    let files = [
        ("run.txt", "first line\nsecond line\n"),
        ("shebang.txt", "shebang heredoc ran\n"),
        ("copied.txt", "copied by a heredoc\nwith two lines\n"),
        ("tabs.txt", "leading tab removed\n"),
        ("shell.txt", "a heredoc the shell reads\n"),
    ];
    for (name, want) in files {
        assert_eq!(
            run_image(&tag, &["cat", &format!("/opt/heredoc/{name}")]),
            want,
            "/opt/heredoc/{name}"
        );
    }
}

#[test]
fn copy_chown_and_chmod_set_owner_and_mode() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "chown-chmod");
    let tag = images.tag("chown");
    build(&["-t", &tag, &ctx.dir]).ok();
    let out = run_image(
        &tag,
        &[
            "stat",
            "-c",
            "%n %u:%g %a",
            "/data-numeric",
            "/data-numeric/config.txt",
            "/data-numeric/sub",
            "/data-numeric/sub/nested.txt",
            "/app-named.sh",
            "/app-mode.sh",
            "/both.txt",
        ],
    );
    let got: Vec<&str> = out.lines().collect();
    let owner = |line: &str| line.split(' ').nth(1).unwrap_or_default().to_string();
    for line in &got[..5] {
        assert_eq!(owner(line), "1000:1000", "--chown: {line}\n{out}");
    }
    assert_eq!(got[5], "/app-mode.sh 0:0 750", "--chmod alone:\n{out}");
    assert_eq!(
        got[6], "/both.txt 1000:1000 640",
        "--chown with --chmod:\n{out}"
    );
}

/// `/listing.txt` of a dockerignore fixture build, as a list of paths.
fn listing(tag: &str) -> Vec<String> {
    run_image(tag, &["cat", "/listing.txt"])
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| l != ".")
        .collect()
}

#[test]
fn dockerignore_excludes_with_exceptions_and_double_star() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "dockerignore");
    let tag = images.tag("ignore");
    build(&["-t", &tag, &ctx.dir]).ok();
    let got = listing(&tag);
    for kept in [
        "Dockerfile",
        ".dockerignore",
        "app.txt",
        "important.log",
        "src/main.txt",
        "build/keep/kept.txt",
        "deep/a/b/stay.txt",
    ] {
        assert!(got.iter().any(|p| p == kept), "{kept} is missing: {got:#?}");
    }
    for ignored in [
        "debug.log",
        "notes.tmp",
        "src/cache.tmp",
        "src/nested/more.tmp",
        "secrets",
        "secrets/key.txt",
        "build/out.bin",
        "deep/drop.txt",
        "deep/a/b/drop.txt",
    ] {
        assert!(
            !got.iter().any(|p| p == ignored),
            "{ignored} should be ignored: {got:#?}"
        );
    }
}

#[test]
fn a_dockerfiles_own_dockerignore_replaces_the_contexts() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "dockerignore");
    let tag = images.tag("ignore-alt");
    build(&["-f", &ctx.path("Alt.Dockerfile"), "-t", &tag, &ctx.dir]).ok();
    let got = listing(&tag);
    assert!(
        !got.iter().any(|p| p == "app.txt"),
        "Alt.Dockerfile.dockerignore ignores app.txt: {got:#?}"
    );
    for kept in ["debug.log", "notes.tmp", "secrets/key.txt"] {
        assert!(
            got.iter().any(|p| p == kept),
            "{kept}: .dockerignore must not apply beside Alt.Dockerfile.dockerignore: {got:#?}"
        );
    }
}

// --- symlinks out of the context ----------------------------------------------------------

/// What the host holds outside the symlinks context; nothing of it may
/// reach BuildKit.
const OUTSIDE_SECRET: &str = "host file outside the context: sl-9a7c";

/// The symlinks context with its links: `link-in` to a file inside,
/// `link-out-rel`/`link-out-abs` to a file beside the context, `link-dir-out`
/// to the directory holding it.
pub fn symlinks_context(cleanup: &mut Cleanup) -> Context {
    let ctx = Context::new(cleanup, "symlinks");
    let outside = ctx.beside("outside");
    std::fs::create_dir_all(&outside).expect("outside dir");
    std::fs::write(format!("{outside}/secret.txt"), OUTSIDE_SECRET).expect("outside file");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, ctx.path(name))
            .unwrap_or_else(|e| panic!("symlink {name}: {e}"))
    };
    link("data/inside.txt", "link-in");
    link("../outside/secret.txt", "link-out-rel");
    link(&format!("{outside}/secret.txt"), "link-out-abs");
    link("../outside", "link-dir-out");
    ctx.give_to_agent();
    ctx
}

#[test]
fn symlinks_out_of_the_context_are_copied_as_links_never_followed() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = symlinks_context(&mut cleanup);
    let dest = ctx.beside("out");
    build(&["--output", &format!("type=local,dest={dest}"), &ctx.dir]).ok();

    let read_link = |name: &str| {
        std::fs::read_link(format!("{dest}/{name}"))
            .unwrap_or_else(|e| panic!("{name} in the output is not a symlink: {e}"))
            .display()
            .to_string()
    };
    assert_eq!(read_link("link-in"), "data/inside.txt");
    assert_eq!(read_link("link-out-rel"), "../outside/secret.txt");
    assert_eq!(
        read_link("link-out-abs"),
        format!("{}/secret.txt", ctx.beside("outside"))
    );
    assert_eq!(read_link("link-dir-out"), "../outside");
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/data/inside.txt")).expect("data/inside.txt"),
        "inside the context\n"
    );
    for path in walk(&dest) {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if meta.is_file() {
            let bytes = std::fs::read(&path).expect("output file");
            assert!(
                !contains(&bytes, OUTSIDE_SECRET.as_bytes()),
                "{path} holds the host file the links point to"
            );
        }
    }
}

#[test]
fn copy_through_a_link_inside_the_context_copies_its_target() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = symlinks_context(&mut cleanup);
    let tag = images.tag("link-in");
    build(&[
        "-f",
        &ctx.path("follow-in.Dockerfile"),
        "-t",
        &tag,
        &ctx.dir,
    ])
    .ok();
    assert_eq!(
        run_image(&tag, &["cat", "/followed-in.txt"]),
        "inside the context\n"
    );
}

#[test]
fn copy_through_links_out_of_the_context_finds_nothing() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = symlinks_context(&mut cleanup);
    for dockerfile in [
        "follow-out.Dockerfile",
        "follow-abs.Dockerfile",
        "follow-dir.Dockerfile",
    ] {
        let tag = images.tag("link-out");
        let out = build(&[
            "--progress",
            "plain",
            "-f",
            &ctx.path(dockerfile),
            "-t",
            &tag,
            &ctx.dir,
        ]);
        assert_build_failed(&out, &["not found"]);
        assert!(
            !all_output(&out).contains(OUTSIDE_SECRET),
            "{dockerfile}: the host file reached the build:\n{out}"
        );
        docker(&["image", "inspect", &tag]).code(1);
    }
}

// --- RUN --mount ------------------------------------------------------------------------

/// Builds of the secret-mount fixture run one at a time: a secret is not part
/// of a step's cache key, so BuildKit runs one step for concurrent builds of
/// the same Dockerfile, with one of their secrets (docker does the same).
pub fn secret_builds() -> std::sync::MutexGuard<'static, ()> {
    serial()
}

const SECRET_VALUE: &str = "s3cret-token-value-bk-5521";

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[test]
fn secret_mount_is_readable_in_the_step_and_absent_from_the_image() {
    stack();
    let _serial = secret_builds();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "secret-mount");
    // Beside the context, not in it: the secret travels only as a secret.
    let secret = ctx.beside("token.txt");
    std::fs::write(&secret, SECRET_VALUE).expect("secret file");
    ctx.give_to_agent();
    let tag = images.tag("secret");
    let flag = format!("id=token,src={secret}");
    // --no-cache: a secret is not part of the cache key (as in docker), so a
    // cached step would show an earlier build's secret.
    build(&["--no-cache", "--secret", &flag, "-t", &tag, &ctx.dir]).ok();
    assert_eq!(
        run_image(
            &tag,
            &["cat", "/token.sha256", "/token.length", "/token-at-target"]
        ),
        format!(
            "{}\n{}\nmounted\n",
            sha256_hex(SECRET_VALUE),
            SECRET_VALUE.len()
        )
    );
    let left = run_image(
        &tag,
        &[
            "sh",
            "-c",
            "cat /run/secrets/token /etc/app-token 2>/dev/null; echo end",
        ],
    );
    assert_eq!(left, "end\n", "the secret stayed in the image");

    // Nothing of it in any layer, the config or the history.
    let archive = ctx.beside("secret-oci.tar");
    build(&[
        "--secret",
        &flag,
        "--output",
        &format!("type=oci,dest={archive}"),
        &ctx.dir,
    ])
    .ok();
    let image = OciImage::read(&archive);
    let files = image.files_containing(SECRET_VALUE.as_bytes());
    assert!(files.is_empty(), "layers hold the secret: {files:?}");
    assert!(
        !image.config.to_string().contains(SECRET_VALUE),
        "the image config holds the secret: {}",
        image.config
    );
}

#[test]
fn secret_env_takes_the_value_from_the_environment() {
    stack();
    let _serial = secret_builds();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "secret-mount");
    let tag = images.tag("secret-env");
    let value = "secret-from-the-environment";
    build_with(
        &[&format!("BERTH_TEST_TOKEN={value}")],
        &[
            "--no-cache",
            "--secret",
            "id=token,env=BERTH_TEST_TOKEN",
            "-t",
            &tag,
            &ctx.dir,
        ],
        Input::Null,
    )
    .ok();
    assert_eq!(
        run_image(&tag, &["cat", "/token.sha256"]),
        format!("{}\n", sha256_hex(value))
    );
}

#[test]
fn a_missing_required_secret_fails_the_build() {
    stack();
    let _serial = secret_builds();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "secret-mount");
    let tag = images.tag("no-secret");
    // --no-cache: a cached step would not ask for the secret at all.
    let out = build(&["--no-cache", "--progress", "plain", "-t", &tag, &ctx.dir]);
    assert_build_failed(&out, &["secret token: not found"]);
    docker(&["image", "inspect", &tag]).code(1);
}

#[test]
fn cache_mount_persists_between_builds_and_stays_out_of_the_image() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "cache-mount");
    let runs = |tag: &str| -> u64 {
        let out = run_image(tag, &["cat", "/cache-runs"]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("/cache-runs: {out:?}"))
    };
    let first = images.tag("cache-1");
    let id = unique("run");
    build(&[
        "--build-arg",
        &format!("RUN_ID={id}-1"),
        "-t",
        &first,
        &ctx.dir,
    ])
    .ok();
    let second = images.tag("cache-2");
    build(&[
        "--build-arg",
        &format!("RUN_ID={id}-2"),
        "-t",
        &second,
        &ctx.dir,
    ])
    .ok();
    assert_eq!(
        runs(&second),
        runs(&first) + 1,
        "the second build's step saw the first one's line in the cache"
    );
    assert_eq!(
        run_image(
            &second,
            &[
                "sh",
                "-c",
                "test -e /var/cache/berth-test/runs && echo present || echo absent"
            ]
        ),
        "absent\n",
        "the cache mount's content is not part of the image"
    );
}

#[test]
fn ssh_default_forwards_the_agents_ssh_agent_to_run_steps() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "ssh-mount");
    let key = ctx.beside("key");
    let dest = ctx.beside("out");
    // An ssh-agent of the agent's own, holding a fresh key, for this build.
    let script = format!(
        "ssh-keygen -q -t ed25519 -N '' -f {key} && ssh-add -q {key} && \
         docker build --no-cache --ssh default --output type=local,dest={dest} {}",
        ctx.dir
    );
    sandbox(&["ssh-agent", "sh", "-c", &script]).ok();
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/ssh.txt")).expect("ssh.txt"),
        "agent socket forwarded\n"
    );

    let out = build(&[
        "--no-cache",
        "--progress",
        "plain",
        "--output",
        &format!("type=local,dest={}", ctx.beside("without")),
        &ctx.dir,
    ]);
    assert_build_failed(&out, &["no SSH key"]);
}

// --- the image config ------------------------------------------------------------------

#[test]
fn config_instructions_land_in_the_image_config() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "config");
    let tag = images.tag("config");
    build(&[
        "--label",
        "org.example.cli=from the command line",
        "-t",
        &tag,
        &ctx.dir,
    ])
    .ok();
    let image = inspect_image(&tag);
    let config = &image["Config"];
    assert_eq!(
        env_list(&image),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_HOME=/srv/app",
            "GREETING=hello world",
        ],
        "{image}"
    );
    assert_eq!(config["WorkingDir"], "/srv/app", "{image}");
    assert_eq!(config["User"], "berth", "{image}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"]),
        "{image}"
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["echo \"$GREETING from $(pwd) as $(id -un): $(cat made.txt)\""]),
        "{image}"
    );
    assert_eq!(
        config["Labels"],
        serde_json::json!({
            "org.example.fixture": "config",
            "org.example.description": "every config instruction",
            "org.example.cli": "from the command line",
        }),
        "{image}"
    );
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "9090/udp": {}}),
        "{image}"
    );

    let out = docker(&["run", "--rm", &tag]);
    out.ok();
    assert_eq!(
        out.stdout, "hello world from /srv/app as berth: made in /srv/app\n",
        "{out}"
    );
}

/// docker's client sends every context file as owned by 0:0 (the docker
/// CLI's and buildx's `resetUIDAndGID`), so a COPY without --chown gives
/// root-owned files whoever owns the context on the client.
#[test]
fn copied_context_files_belong_to_root_not_to_the_agent() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let tag = images.tag("owner");
    let dockerfile = "FROM busybox\nCOPY . /ctx/\n";
    build_with(
        &[],
        &["-f", "-", "-t", &tag, &ctx.dir],
        Input::Bytes(dockerfile.into()),
    )
    .ok();
    assert_eq!(
        run_image(
            &tag,
            &[
                "stat",
                "-c",
                "%n %u:%g",
                "/ctx/hello.txt",
                "/ctx/nested",
                "/ctx/nested/deeper/file.txt"
            ]
        ),
        "/ctx/hello.txt 0:0\n/ctx/nested 0:0\n/ctx/nested/deeper/file.txt 0:0\n"
    );
}
