//! `docker tag`, `rmi`, `save`, `images` filters and `image prune` against
//! the stack, as a docker user sees them: names, IDs, exit codes and the
//! messages docker prints.
//!
//! Each test makes its own images: the busybox fixture with a config label
//! of its own (so a new image ID sharing busybox's layer), loaded under a
//! unique name or none. A guard removes them at the end, so the tests run
//! in parallel with each other and with other test binaries.

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The label every image made here carries, valued with its unique name.
const LABEL: &str = "berth.test.image-cmds";

/// An image of this test file: its name (None when dangling) and ID.
struct TestImage {
    name: Option<String>,
    id: String,
    /// The label value (a unique word), for prune filters.
    mark: String,
}

impl TestImage {
    fn name(&self) -> &str {
        self.name.as_deref().expect("a named test image")
    }
}

/// Removes the images (by ID, forced) and names a test made.
#[derive(Default)]
struct Images(Vec<String>);

impl Images {
    fn add(&mut self, what: &str) {
        self.0.push(what.to_string());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for what in self.0.iter().rev() {
            let _ = docker(&["rmi", "-f", what]);
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An OCI layout archive of busybox's layer under a new config (labelled
/// `mark`), named `name` in index.json, or unnamed.
fn archive(name: Option<&str>, mark: &str) -> (Vec<u8>, String) {
    archive_of(name, mark, false).0
}

/// This machine's architecture in Go's names (OCI platforms).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// As [`archive`]; with `index`, the name points at an image index of this
/// platform's manifest and another platform's that the archive lacks (as
/// a multi-platform pull leaves it). Also returns the root's digest.
fn archive_of(name: Option<&str>, mark: &str, index: bool) -> ((Vec<u8>, String), String) {
    let entries = archive_entries(BUSYBOX_TAR);
    let get = |path: &str| -> Vec<u8> {
        entries
            .iter()
            .find(|(n, _)| n == path)
            .unwrap_or_else(|| panic!("{BUSYBOX_TAR} has no {path}"))
            .1
            .clone()
    };
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let fx = busybox_fixture();
    let mut manifest: Value = serde_json::from_slice(&get(&blob(&fx.manifest_digest))).unwrap();
    let mut config: Value = serde_json::from_slice(&get(&blob(&fx.config_digest))).unwrap();
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    config["config"]["Labels"] = json!({ LABEL: mark });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = sha256(&config_bytes);
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_bytes.len());
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = sha256(&manifest_bytes);
    let mut entry = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest_bytes.len(),
    });
    let mut extra: Vec<(String, Vec<u8>)> = Vec::new();
    if index {
        let mut host = entry.clone();
        host["platform"] = json!({"architecture": go_arch(), "os": "linux"});
        let other = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(mark.as_bytes()),
            "size": mark.len(),
            "platform": {"architecture": "s390x", "os": "linux"},
        });
        let index_bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [host, other],
        }))
        .unwrap();
        entry = json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha256(&index_bytes),
            "size": index_bytes.len(),
        });
        extra.push((blob(&sha256(&index_bytes)), index_bytes));
    }
    let root = entry["digest"].as_str().unwrap().to_string();
    if let Some(n) = name {
        entry["annotations"] =
            json!({ "io.containerd.image.name": format!("docker.io/library/{n}:latest") });
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [entry]})).unwrap();

    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
        (blob(&manifest_digest), manifest_bytes),
        (blob(&config_digest), config_bytes),
    ];
    files.extend(extra);
    for layer in manifest["layers"].as_array().unwrap() {
        let d = layer["digest"].as_str().unwrap();
        files.push((blob(d), get(&blob(d))));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    ((b.into_inner().unwrap(), config_digest), root)
}

/// Loads a new image of busybox's layer, named `<unique>:latest` or dangling.
fn make_image(images: &mut Images, tag: &str, named: bool) -> TestImage {
    stack();
    let mark = unique(tag);
    let name = named.then(|| mark.clone());
    let (bytes, id) = archive(name.as_deref(), &mark);
    images.add(&id);
    let out = docker_with(&["load"], Input::Bytes(bytes));
    out.ok();
    TestImage { name, id, mark }
}

/// docker's short ID: the first 12 hex digits.
fn short(id: &str) -> &str {
    &id["sha256:".len()..]["".len()..12]
}

fn exists(what: &str) -> bool {
    docker(&["image", "inspect", "--format", "{{.Id}}", what]).code == 0
}

fn id_of(what: &str) -> String {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", what]);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn tag_then_run_by_the_new_name() {
    let mut images = Images::default();
    let img = make_image(&mut images, "tag", true);
    let target = format!("{}-copy:v1", img.name());
    images.add(&target);
    let out = docker(&["tag", img.name(), &target]);
    out.ok();
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(id_of(&target), img.id);
    let out = docker(&["run", "--rm", &target, "echo", "tagged"]);
    out.ok().stdout_has("tagged");

    // By short ID, with `docker image tag`, and over an existing tag.
    let by_id = format!("{}-byid", img.name());
    images.add(&by_id);
    docker(&["image", "tag", short(&img.id), &by_id]).ok();
    assert_eq!(id_of(&by_id), img.id);
    docker(&["tag", "busybox", &target]).ok();
    assert_eq!(id_of(&target), busybox_fixture().config_digest);

    // A tag moved away from an image's only name leaves it as <none>.
    let lone = make_image(&mut images, "lone", true);
    docker(&["tag", "busybox", lone.name()]).ok();
    assert_eq!(id_of(lone.name()), busybox_fixture().config_digest);
    assert!(exists(&lone.id), "the image lost its name, not itself");
    let dangling = docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    dangling.ok().stdout_has(&lone.id);
    images.add(lone.name());
}

#[test]
fn tag_errors_are_dockers() {
    stack();
    let missing = unique("nosuch");
    let out = docker(&["tag", &missing, "x"]);
    out.code(1);
    assert_eq!(
        out.stderr.trim(),
        format!("Error response from daemon: No such image: {missing}:latest"),
        "{out}"
    );
    let out = docker(&["tag", "busybox", "Bad/Name"]);
    out.code(1);
    assert!(
        out.stderr
            .contains("Error parsing reference: \"Bad/Name\" is not a valid repository/tag"),
        "{out}"
    );
    docker(&["tag", "busybox"]).code(1);
}

#[test]
fn rmi_untags_then_deletes() {
    let mut images = Images::default();
    let img = make_image(&mut images, "rmi", true);
    let second = format!("{}-second", img.name());
    docker(&["tag", img.name(), &second]).ok();

    let out = docker(&["rmi", &second]);
    out.ok();
    assert_eq!(out.stdout, format!("Untagged: {second}:latest\n"), "{out}");
    assert!(exists(&img.id), "the image lost only a name");

    let out = docker(&["image", "rm", img.name()]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("Untagged: {}:latest\nDeleted: {}\n", img.name(), img.id),
        "{out}"
    );
    assert!(!exists(&img.id));
    // Deleted synchronously: containerd collected the config already.
    let content = real_ctr(&["content", "ls", "-q"]);
    content.ok();
    assert!(!content.stdout.contains(&img.id), "{content}");
}

#[test]
fn rmi_by_id_with_several_repositories_needs_force() {
    let mut images = Images::default();
    let img = make_image(&mut images, "multi", true);
    let other = format!("{}-other:v2", img.name());
    docker(&["tag", img.name(), &other]).ok();
    let out = docker(&["rmi", short(&img.id)]);
    out.code(1);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "Error response from daemon: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&img.id)
        ),
        "{out}"
    );
    assert!(exists(&other));
    let out = docker(&["rmi", "-f", short(&img.id)]);
    out.ok();
    let mut lines = out.stdout_lines();
    lines.sort();
    let mut want = vec![
        format!("Untagged: {}:latest", img.name()),
        format!("Untagged: {other}"),
        format!("Deleted: {}", img.id),
    ];
    want.sort();
    assert_eq!(lines, want, "{out}");
    assert!(!exists(&img.id));
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let mut images = Images::default();
    let mut cleanup = Cleanup::new();
    let img = make_image(&mut images, "used", true);
    let name = unique("user");
    cleanup.container(&name);
    let out = docker(&["run", "-d", "--name", &name, img.name(), "sleep", "60"]);
    out.ok();
    let cid = out.stdout.trim().to_string();

    let out = docker(&["rmi", img.name()]);
    out.code(1);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "Error response from daemon: conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
            img.name(),
            &cid[..12],
            short(&img.id)
        ),
        "{out}"
    );
    let out = docker(&["rmi", "-f", short(&img.id)]);
    out.code(1).stderr_has(&format!(
        "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
        short(&img.id),
        &cid[..12]
    ));
    // Forced by name: the name goes, the image stays as <none>.
    let out = docker(&["rmi", "-f", img.name()]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("Untagged: {}:latest\n", img.name()),
        "{out}"
    );
    assert!(exists(&img.id));
    let dangling = docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    dangling.ok().stdout_has(&img.id);

    docker(&["rm", "-f", &name]).ok();
    let out = docker(&["rmi", &img.id]);
    out.ok();
    assert_eq!(out.stdout, format!("Deleted: {}\n", img.id), "{out}");
}

#[test]
fn rmi_goes_on_over_its_arguments() {
    let mut images = Images::default();
    let img = make_image(&mut images, "args", true);
    let missing = unique("nosuch");
    let out = docker(&["rmi", &missing, img.name()]);
    out.code(1);
    assert_eq!(
        out.stderr.trim(),
        format!("Error response from daemon: No such image: {missing}:latest"),
        "{out}"
    );
    out.stdout_has(&format!("Deleted: {}", img.id));
    // Forced, a missing image is reported but does not fail.
    let out = docker(&["rmi", "-f", &missing]);
    out.ok().stderr_has("No such image");
}

/// (path, bytes) of every file of a tar made by `docker save`.
fn saved(path: &str) -> Vec<(String, Vec<u8>)> {
    archive_entries(path)
}

fn json_of(entries: &[(String, Vec<u8>)], path: &str) -> Value {
    let bytes = &entries
        .iter()
        .find(|(n, _)| n == path)
        .unwrap_or_else(|| panic!("the archive has no {path}"))
        .1;
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn save_rmi_load_keeps_the_id() {
    let mut images = Images::default();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "save");
    let img = make_image(&mut images, "save", true);
    let path = format!("{dir}/one.tar");
    let out = docker(&["save", "-o", &path, img.name()]);
    out.ok();
    assert_eq!(out.stdout, "");

    let entries = saved(&path);
    for f in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(entries.iter().any(|(n, _)| n == f), "no {f} in the archive");
    }
    let config = format!("blobs/sha256/{}", &img.id[7..]);
    let manifest = json_of(&entries, "manifest.json");
    assert_eq!(manifest[0]["Config"], config.as_str());
    assert_eq!(
        manifest[0]["RepoTags"],
        json!([format!("{}:latest", img.name())])
    );
    let index = json_of(&entries, "index.json");
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        format!("docker.io/library/{}:latest", img.name()).as_str()
    );
    // Every blob is named by its digest.
    for (n, bytes) in entries
        .iter()
        .filter(|(n, _)| n.starts_with("blobs/sha256/"))
    {
        assert_eq!(sha256(bytes)[7..], n["blobs/sha256/".len()..], "{n}");
    }

    docker(&["rmi", img.name()]).ok();
    assert!(!exists(&img.id));
    let out = docker(&["load", "-i", &path]);
    out.ok();
    assert!(
        out.stdout_lines()
            .contains(&format!("Loaded image: {}:latest", img.name()).as_str()),
        "{out}"
    );
    assert_eq!(id_of(img.name()), img.id);

    // To stdout when it is not a terminal, byte for byte the same archive.
    let piped = format!("{dir}/piped.tar");
    sandbox(&["sh", "-c", &format!("docker save {} > {piped}", img.name())]).ok();
    assert_eq!(saved(&piped), entries);
}

#[test]
fn save_of_two_images_loads_both() {
    let mut images = Images::default();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "save2");
    let a = make_image(&mut images, "savea", true);
    let b = make_image(&mut images, "saveb", true);
    let path = format!("{dir}/two.tar");
    docker(&["image", "save", "-o", &path, a.name(), b.name()]).ok();
    let manifest = json_of(&saved(&path), "manifest.json");
    assert_eq!(manifest.as_array().map(Vec::len), Some(2), "{manifest}");
    docker(&["rmi", a.name(), b.name()]).ok();
    let out = docker(&["load", "-i", &path]);
    out.ok();
    assert_eq!(id_of(a.name()), a.id);
    assert_eq!(id_of(b.name()), b.id);
}

#[test]
fn save_fails_whole_and_leaves_no_file() {
    stack();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "savefail");
    let missing = unique("nosuch");
    let path = format!("{dir}/x.tar");
    let out = docker(&["save", "-o", &path, "busybox", &missing]);
    out.code(1);
    assert_eq!(
        out.stderr.trim(),
        format!("Error response from daemon: No such image: {missing}:latest"),
        "{out}"
    );
    assert_eq!(walk(&dir), Vec::<String>::new(), "files left behind");
}

#[test]
fn save_refuses_to_write_to_a_terminal() {
    stack();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let mut cmd = Command::new(repo_root().join("fixtures/stack/sandbox"));
    cmd.args(["docker", "save", "busybox"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning the sandbox");
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = master.read_to_end(&mut buf);
        buf
    });
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    drop(cmd);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "cowardly refusing to save to a terminal. Use the -o flag or redirect"
    );
    let screen = reader.join().unwrap();
    assert!(screen.len() < 100, "an archive went to the terminal");
}

#[test]
fn images_filters_digests_and_format() {
    let mut images = Images::default();
    let img = make_image(&mut images, "list", true);
    let second = format!("{}-two:v9", img.name());
    docker(&["tag", img.name(), &second]).ok();

    let out = docker(&["images", "--filter", &format!("reference={}*", img.name())]);
    out.ok();
    let table = Table::parse(&out.stdout, IMAGES_TITLES);
    assert_eq!(table.rows.len(), 2, "{out}");
    let row = table
        .row("REPOSITORY", img.name())
        .expect("the image's row");
    assert_eq!(table.cell(row, "TAG"), "latest");
    assert_eq!(table.cell(row, "IMAGE ID"), short(&img.id));

    let out = docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
        &format!("{}-two", img.name()),
    ]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("{second} {}\n", short(&img.id)),
        "{out}"
    );

    let out = docker(&["images", "--digests", img.name()]);
    out.ok();
    let table = Table::parse(
        &out.stdout,
        &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"],
    );
    let row = table
        .row("REPOSITORY", img.name())
        .expect("the image's row");
    assert!(table.cell(row, "DIGEST").starts_with("sha256:"), "{out}");

    let out = docker(&["images", "-q", "--no-trunc", "--filter", "dangling=false"]);
    out.ok().stdout_has(&img.id);
    let out = docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    out.ok();
    assert!(!out.stdout.contains(&img.id), "{out}");
}

#[test]
fn prune_removes_only_dangling_images() {
    let mut images = Images::default();
    let dangling = make_image(&mut images, "prune", false);
    let named = make_image(&mut images, "prunekeep", true);
    let filter_of = |i: &TestImage| format!("label={LABEL}={}", i.mark);

    // Declined: nothing goes.
    let out = docker_with(
        &["image", "prune", "--filter", &filter_of(&dangling)],
        Input::Bytes(b"n\n".to_vec()),
    );
    out.ok();
    assert_eq!(
        out.stdout,
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ",
        "{out}"
    );
    assert!(exists(&dangling.id));

    let out = docker_with(
        &["image", "prune", "--filter", &filter_of(&dangling)],
        Input::Bytes(b"y\n".to_vec()),
    );
    out.ok();
    assert!(
        out.stdout.contains(&format!(
            "Deleted Images:\ndeleted: {}\n\nTotal reclaimed space: ",
            dangling.id
        )),
        "{out}"
    );
    assert!(!exists(&dangling.id));

    // A named image is not dangling; -a takes it.
    let out = docker(&["image", "prune", "-f", "--filter", &filter_of(&named)]);
    out.ok();
    assert_eq!(out.stdout, "Total reclaimed space: 0B\n", "{out}");
    assert!(exists(&named.id));
    let out = docker(&["image", "prune", "-a", "-f", "--filter", &filter_of(&named)]);
    out.ok();
    assert!(
        out.stdout.starts_with(&format!(
            "Deleted Images:\nuntagged: {}:latest\ndeleted: {}\n",
            named.name(),
            named.id
        )),
        "{out}"
    );
    assert!(!exists(&named.id));
}

#[test]
fn tag_into_a_refused_repository_is_refused_in_one_line() {
    stack();
    // The stack's site policy refuses `*/berth/forbidden`.
    let target = format!("10.201.0.4:5000/berth/forbidden:{}", unique("t"));
    let out = docker(&["tag", "busybox", &target]);
    out.code(1);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    out.stderr_has("Error response from daemon: ")
        .stderr_has("refused by the image policy");
    assert!(!exists(&target));
}

#[test]
fn save_keeps_a_multi_platform_index_and_saves_by_id_unnamed() {
    let mut images = Images::default();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "saveindex");
    stack();
    let mark = unique("index");
    let ((bytes, id), root) = archive_of(Some(&mark), &mark, true);
    images.add(&id);
    docker_with(&["load"], Input::Bytes(bytes)).ok();

    let path = format!("{dir}/index.tar");
    docker(&["save", "-o", &path, &mark]).ok();
    let entries = saved(&path);
    let index = json_of(&entries, "index.json");
    assert_eq!(index["manifests"][0]["digest"], root.as_str(), "{index}");
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert!(entries
        .iter()
        .any(|(n, _)| *n == format!("blobs/sha256/{}", &root[7..])));
    docker(&["rmi", &mark]).ok();
    docker(&["load", "-i", &path]).ok();
    assert_eq!(id_of(&mark), id);
    let out = docker(&["images", "--digests", "--format", "{{.Digest}}", &mark]);
    out.ok();
    assert_eq!(out.stdout.trim(), root, "{out}");

    // By ID: the image goes unnamed, as docker saves it.
    let by_id = format!("{dir}/byid.tar");
    docker(&["save", "-o", &by_id, short(&id)]).ok();
    let entries = saved(&by_id);
    assert!(json_of(&entries, "manifest.json")[0]["RepoTags"].is_null());
    assert!(json_of(&entries, "index.json")["manifests"][0]
        .get("annotations")
        .is_none());
    assert!(!entries.iter().any(|(n, _)| n == "repositories"));
}

#[test]
fn rmi_removes_a_name_whose_content_is_gone() {
    let mut images = Images::default();
    let img = make_image(&mut images, "broken", true);
    // Behind the gateway: the config vanishes (as after a failed import).
    real_ctr(&["content", "rm", &img.id]).ok();
    let out = docker(&["rmi", img.name()]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("Untagged: {}:latest\n", img.name()),
        "{out}"
    );
    let left = real_ctr(&["images", "ls", "-q"]);
    left.ok();
    assert!(!left.stdout.contains(img.name()), "{left}");
}
