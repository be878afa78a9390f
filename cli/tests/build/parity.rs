//! Docker parity: for each fixture, the image berth builds equals the one
//! `docker buildx build` (Debian's buildx 0.13, the Engine's `docker`
//! driver) builds from the same context on the same Engine: the same config
//! apart from creation times and layer digests, and the same files in each
//! layer (path, type, mode, owner, size, link target, content digest).
//!
//! Both builds write OCI archives; the reference gets the busybox fixture
//! as the named context `busybox` from its OCI layout, as berth serves it.
//! The reference runs on the host as root, outside the gateway: it is an
//! independent client of the same BuildKit, not berth's own output.

use crate::common::*;

/// Builds `ctx` with berth (as the agent) and with docker buildx (on the
/// host), both with `flags`, and asserts the two images are the same.
#[track_caller]
fn assert_parity(ctx: &Context, flags: &[&str], what: &str) {
    let berth_tar = ctx.beside("berth-oci.tar");
    let mut args: Vec<&str> = flags.to_vec();
    let output = format!("type=oci,dest={berth_tar}");
    args.extend_from_slice(&["--output", &output, &ctx.dir]);
    build(&args).ok();

    let docker_tar = ctx.beside("docker-oci.tar");
    buildx_reference(&ctx.dir, flags, &docker_tar).ok();

    assert_same_image(
        &OciImage::read(&berth_tar),
        &OciImage::read(&docker_tar),
        what,
    );
}

/// A fixture copied into the workspace, then built both ways.
#[track_caller]
fn parity(case: &str, flags: &[&str]) {
    buildhost();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, case);
    // Dockerfile paths given with -f are relative to the context here.
    let flags: Vec<String> = flags.iter().map(|f| f.replace("{ctx}", &ctx.dir)).collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    assert_parity(&ctx, &flags, &format!("{case} {flags:?}"));
}

#[test]
fn parity_multistage_default_target() {
    parity("multistage", &[]);
}

#[test]
fn parity_multistage_target() {
    parity("multistage", &["--target", "tool"]);
}

#[test]
fn parity_args_defaults() {
    parity("args", &[]);
}

#[test]
fn parity_args_set() {
    parity(
        "args",
        &[
            "--build-arg",
            "FLAVOUR=spicy",
            "--build-arg",
            "GREETING=howdy",
        ],
    );
}

#[test]
fn parity_heredoc() {
    parity("heredoc", &[]);
}

#[test]
fn parity_chown_chmod() {
    parity("chown-chmod", &[]);
}

#[test]
fn parity_dockerignore() {
    parity("dockerignore", &[]);
}

#[test]
fn parity_dockerignore_beside_the_dockerfile() {
    parity("dockerignore", &["-f", "{ctx}/Alt.Dockerfile"]);
}

#[test]
fn parity_config() {
    parity(
        "config",
        &["--label", "org.example.cli=from the command line"],
    );
}

#[test]
fn parity_outputs_from_scratch() {
    parity("outputs", &[]);
}

#[test]
fn parity_symlinks_out_of_the_context() {
    buildhost();
    let mut cleanup = Cleanup::new();
    let ctx = crate::symlinks_context(&mut cleanup);
    assert_parity(&ctx, &[], "symlinks");
}

#[test]
fn parity_secret_mount() {
    buildhost();
    let _serial = crate::secret_builds();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "secret-mount");
    let secret = ctx.beside("token.txt");
    std::fs::write(&secret, "parity secret").expect("secret file");
    ctx.give_to_agent();
    let flag = format!("id=token,src={secret}");
    // --no-cache on both sides: a secret is not part of the cache key, so
    // cached steps would compare an earlier build's results.
    assert_parity(&ctx, &["--no-cache", "--secret", &flag], "secret-mount");
}

#[test]
fn parity_from_a_locally_built_image() {
    buildhost();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    // The base: built in the sandbox (tagged there), and the same build
    // exported as an OCI layout for the reference, which gets it as the
    // named context of the same name.
    let base_ctx = Context::new(&mut cleanup, "multistage");
    let base = images.tag("parity-base");
    build(&["--target", "tool", "-t", &base, &base_ctx.dir]).ok();
    let base_tar = base_ctx.beside("base-oci.tar");
    build(&[
        "--target",
        "tool",
        "--output",
        &format!("type=oci,dest={base_tar}"),
        &base_ctx.dir,
    ])
    .ok();
    let layout = base_ctx.beside("base-layout");
    std::fs::create_dir(&layout).expect("layout dir");
    let file = std::fs::File::open(&base_tar).unwrap_or_else(|e| panic!("{base_tar}: {e}"));
    tar::Archive::new(file)
        .unpack(&layout)
        .unwrap_or_else(|e| panic!("unpacking {base_tar}: {e}"));

    let ctx = Context::new(&mut cleanup, "from-local");
    let base_arg = format!("BASE={base}");
    let berth_tar = ctx.beside("berth-oci.tar");
    build(&[
        "--build-arg",
        &base_arg,
        "--output",
        &format!("type=oci,dest={berth_tar}"),
        &ctx.dir,
    ])
    .ok();
    let docker_tar = ctx.beside("docker-oci.tar");
    // By digest: an export without a name has no tag in its index.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{layout}/index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no manifest in {index}"));
    let named = format!("{base}=oci-layout://{layout}@{digest}");
    buildx_reference(
        &ctx.dir,
        &["--build-arg", &base_arg, "--build-context", &named],
        &docker_tar,
    )
    .ok();
    assert_same_image(
        &OciImage::read(&berth_tar),
        &OciImage::read(&docker_tar),
        "from-local",
    );
}
