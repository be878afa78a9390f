//! The gateway's image policy (rule `images.admit`, `policies/images/`) as
//! the agent meets it on the local stack, whose site data
//! (`fixtures/stack/policy-site.json`) allows docker.io and the test
//! registries and refuses every `*/berth/forbidden` repository. Each
//! refusal is checked twice: the user sees the policy's one-line reason,
//! and the real containerd holds nothing of the refused image.

mod common;

use common::registry::REGISTRY;
use common::*;

/// The repository the stack's policy refuses (the registry holds it, so
/// only the gateway stands in the way).
fn forbidden(tag: &str) -> String {
    format!("{REGISTRY}/berth/forbidden:{tag}")
}

fn refusal(repo_ref: &str) -> String {
    let repo = repo_ref.rsplit_once(':').map_or(repo_ref, |(r, _)| r);
    format!("repository {repo} is refused by the image policy (rule images.admit)")
}

fn real_images() -> String {
    real_ctr(&["images", "ls", "-q"]).ok().stdout.clone()
}

fn real_leases() -> Vec<String> {
    real_ctr(&["leases", "ls", "-q"])
        .ok()
        .stdout_lines()
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn a_build_tagged_into_a_refused_repository_is_refused_and_leaves_nothing() {
    stack();
    let _serial = serial();
    let name = forbidden(&unique("built"));
    let leases = real_leases();
    let out = docker_with(
        &["build", "-q", "-t", &name, "-"],
        Input::Bytes(b"FROM busybox\nRUN echo refused-build > /marker\n".to_vec()),
    );
    out.code(1).stderr_has(&refusal(&name));
    assert!(
        !real_images().contains(&name),
        "the refused image exists:\n{out}"
    );
    let left: Vec<String> = real_leases()
        .into_iter()
        .filter(|l| !leases.contains(l) && !l.starts_with("berth-prepare-"))
        .collect();
    assert!(left.is_empty(), "the refused import left leases {left:?}");
}

#[test]
fn from_a_refused_repository_fails_in_buildkit_before_anything_is_fetched() {
    stack();
    let _serial = serial();
    let df = format!("FROM {}\nRUN true\n", forbidden("latest"));
    let out = docker_with(&["build", "-"], Input::Bytes(df.into_bytes()));
    out.code(1).stderr_has(&format!(
        "source \"docker-image://{}\" denied by policy",
        forbidden("latest")
    ));
}

#[test]
fn from_an_allowed_registry_image_builds_through_the_proxy() {
    stack();
    let _serial = serial();
    let tag = unique("fromreg");
    let df = format!(
        "FROM {REGISTRY}/berth/busybox:latest\nRUN echo built-from-the-registry > /origin\n"
    );
    docker_with(
        &["build", "-q", "-t", &tag, "-"],
        Input::Bytes(df.into_bytes()),
    )
    .ok();
    let out = docker(&["run", "--rm", &tag, "cat", "/origin"]);
    docker(&["rmi", &tag]);
    out.ok().stdout_has("built-from-the-registry");
}

#[test]
fn tagging_into_a_refused_repository_is_refused_for_docker_and_for_a_raw_client() {
    stack();
    let _serial = serial();
    let name = forbidden(&unique("tagged"));
    docker(&["tag", "busybox", &name])
        .code(1)
        .stderr_has(&refusal(&name));
    // ctr's `images tag` is a plain Images.Create through the gateway.
    let raw = gateway_ctr(&["images", "tag", BUSYBOX_REF, &name]);
    raw.failed().stderr_has(&refusal(&name));
    assert!(!real_images().contains(&name), "the refused name exists");
}

#[test]
fn a_pull_from_a_refused_repository_is_refused_and_leaves_no_image() {
    stack();
    let _serial = serial();
    let name = forbidden("latest");
    let out = docker(&["pull", &name]);
    out.code(1).stderr_has(&refusal(&name));
    assert!(
        !real_images().contains(&name),
        "the refused image exists:\n{out}"
    );
}
