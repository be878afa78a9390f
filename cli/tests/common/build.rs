//! Helpers of the `docker build` tests: fixture contexts copied into the
//! workspace, the images a build leaves in the real containerd, OCI archives
//! read back into configs and layer file lists, the reference build with
//! `docker buildx build` on the stack's Engine, raw BuildKit Control calls to
//! the gateway, and the Engine's build history (what BuildKit received).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Channel, Endpoint};

use super::*;

/// The gateway's BuildKit facade, the only BuildKit socket the agent gets.
pub const GATEWAY_BUILDKIT_SOCKET: &str = "/run/berth-stack/gateway/buildkit.sock";
/// The BuildKit host: Docker Engine 26 in the sandbox netns (root only).
pub const BUILDHOST_SOCKET: &str = "/run/berth-stack/buildhost/docker.sock";
/// The host-side docker client that has the `buildx` plugin (never
/// `/usr/local/bin/docker`, see the stack contract).
pub const HOST_DOCKER: &str = "/usr/bin/docker";
/// Where the build fixtures live in the repository.
pub const BUILD_FIXTURES: &str = "fixtures/build";
/// The line berth prints per context transfer when `BERTH_DEBUG_TRANSFER=1`.
pub const TRANSFER_LINE: &str = "berth: context sent: ";

// --- contexts -------------------------------------------------------------------

/// A fixture context copied into a fresh workspace directory owned by the
/// agent: `root/ctx` is the context, `root` has room beside it (outputs,
/// files outside the context).
pub struct Context {
    /// The agent's fresh directory.
    pub root: String,
    /// The copied context, `root/ctx`.
    pub dir: String,
}

impl Context {
    /// Copies `fixtures/build/<case>` into a fresh agent directory.
    pub fn new(cleanup: &mut Cleanup, case: &str) -> Context {
        let root = agent_dir(cleanup, case);
        let dir = format!("{root}/ctx");
        let src = repo_root().join(BUILD_FIXTURES).join(case);
        assert!(src.is_dir(), "no build fixture {}", src.display());
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(format!("{}/.", src.display())).arg(&dir);
        std::fs::create_dir(&dir).expect("context dir");
        run(cp, Input::Null, COMMAND_TIMEOUT).ok();
        let ctx = Context { root, dir };
        ctx.give_to_agent();
        ctx
    }

    /// A path inside the agent's directory (beside the context).
    pub fn beside(&self, name: &str) -> String {
        format!("{}/{name}", self.root)
    }

    /// A path inside the context.
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// Writes a file (and its parents) inside the context.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let path = PathBuf::from(self.path(name));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("parent dirs");
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Hands everything under the agent's directory to the agent (files the
    /// test wrote as root included).
    pub fn give_to_agent(&self) {
        let mut chown = Command::new("chown");
        chown
            .args(["-R", "--no-dereference", &format!("{AGENT}:{AGENT}")])
            .arg(&self.root);
        run(chown, Input::Null, COMMAND_TIMEOUT).ok();
    }
}

// --- building as the agent --------------------------------------------------------

/// `docker build ARGS…` as the agent.
pub fn build(args: &[&str]) -> Out {
    build_with(&[], args, Input::Null)
}

/// `docker build ARGS…` as the agent with extra environment variables
/// (`NAME=value`) and standard input.
pub fn build_with(env: &[&str], args: &[&str], input: Input) -> Out {
    let mut full = vec!["env"];
    full.extend_from_slice(env);
    full.extend_from_slice(&["docker", "build"]);
    full.extend_from_slice(args);
    sandbox_with(&full, input)
}

/// stdout and stderr together: where progress and step logs go differs
/// between progress modes, a user reads both.
pub fn all_output(out: &Out) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

/// Asserts a build failed as docker's does (exit 1) and that its output
/// holds every one of `needles`.
#[track_caller]
pub fn assert_build_failed(out: &Out, needles: &[&str]) {
    out.code(1);
    let text = all_output(out);
    for needle in needles {
        assert!(
            text.contains(needle),
            "expected {needle:?} in the failed build's output:\n{out}"
        );
    }
}

/// `docker.io/library/NAME:latest` for a short tag, as containerd names it.
pub fn full_ref(tag: &str) -> String {
    let (name, tag_part) = match tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (tag.to_string(), "latest".to_string()),
    };
    let name = if name.contains('/') {
        name
    } else {
        format!("library/{name}")
    };
    let first = name.split('/').next().unwrap_or_default();
    let name = if first.contains('.') || first.contains(':') || first == "localhost" {
        name
    } else {
        format!("docker.io/{name}")
    };
    format!("{name}:{tag_part}")
}

/// Removes the images a test built from the real containerd, even when the
/// test panics (berth has no `rmi` the tests could rely on).
#[derive(Default)]
pub struct Images {
    refs: Vec<String>,
}

impl Images {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh tag this guard removes at the end of the test.
    pub fn tag(&mut self, what: &str) -> String {
        let tag = unique(what);
        self.refs.push(full_ref(&tag));
        tag
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for r in &self.refs {
            // --sync: containerd's garbage collection runs before the next
            // test starts. Without it the collector ran later, in the middle
            // of a build whose export store had just seen a shared layer in
            // the sandbox, and the import then found the layer gone.
            let _ = real_ctr(&["images", "rm", "--sync", r]);
        }
    }
}

/// `docker image inspect TAG` as the agent, the single object it prints.
#[track_caller]
pub fn inspect_image(tag: &str) -> serde_json::Value {
    let out = docker(&["image", "inspect", tag]);
    out.ok();
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    json[0].clone()
}

/// `docker run --rm TAG ARGS…` as the agent; asserts success, returns stdout.
#[track_caller]
pub fn run_image(tag: &str, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm", tag];
    full.extend_from_slice(args);
    let out = docker(&full);
    out.ok();
    out.stdout
}

/// The image config the REAL containerd holds for `tag` (history included,
/// which `docker image inspect` does not show), read from its content store.
#[track_caller]
pub fn containerd_config(tag: &str) -> serde_json::Value {
    let reference = full_ref(tag);
    let ls = real_ctr(&["images", "ls"]);
    ls.ok();
    let digest = ls
        .stdout
        .lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&reference.as_str())).then(|| cols[2].to_string())
        })
        .unwrap_or_else(|| panic!("the real containerd has no image {reference}:\n{ls}"));
    let manifest = image_manifest(|d| real_content(&d), &digest);
    let config = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    json_blob(&real_content(config), config)
}

fn real_content(digest: &str) -> Vec<u8> {
    let mut cmd = Command::new("ctr");
    cmd.args(["-a", REAL_SOCKET, "-n", NAMESPACE, "content", "get", digest]);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("ctr content get {digest}: {e}"));
    assert!(
        out.status.success(),
        "ctr content get {digest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json_blob(bytes: &[u8], what: &str) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{what} is not JSON: {e}"))
}

/// Follows an index (nested or not) to the image manifest of this machine's
/// platform, skipping attestation manifests.
fn image_manifest(get: impl Fn(String) -> Vec<u8>, digest: &str) -> serde_json::Value {
    let mut digest = digest.to_string();
    for _ in 0..4 {
        let doc = json_blob(&get(digest.clone()), &digest);
        let Some(manifests) = doc["manifests"].as_array() else {
            return doc;
        };
        let pick = manifests
            .iter()
            .find(|m| {
                let attestation = m["annotations"]["vnd.docker.reference.type"].is_string();
                let platform = &m["platform"];
                !attestation
                    && (platform.is_null()
                        || (platform["os"] == "linux" && platform["architecture"] == "amd64"))
            })
            .unwrap_or_else(|| panic!("no linux/amd64 image manifest in {doc}"));
        digest = pick["digest"]
            .as_str()
            .expect("manifest digest")
            .to_string();
    }
    panic!("indexes nested too deep at {digest}");
}

// --- OCI archives ---------------------------------------------------------------------

/// One entry of a layer, as a user listing the layer would see it. mtimes are
/// left out: RUN steps stamp their files with the time they ran.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LayerEntry {
    pub path: String,
    /// `f` file, `d` directory, `l` symlink, `h` hard link, `c`/`b` devices, `p` fifo.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Symlink or hard link target.
    pub link: String,
    /// sha256 of a file's content.
    pub sha256: String,
    pub content: Vec<u8>,
}

impl LayerEntry {
    /// One comparable line (without the content itself).
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {} {:04o} {}:{} {}",
            self.path, self.kind, self.mode, self.uid, self.gid, self.size
        );
        if !self.link.is_empty() {
            s.push_str(&format!(" -> {}", self.link));
        }
        if !self.sha256.is_empty() {
            s.push_str(&format!(" sha256:{}", &self.sha256[..16]));
        }
        s
    }
}

/// An image read from an OCI layout archive (`--output type=oci`).
pub struct OciImage {
    pub manifest: serde_json::Value,
    pub config: serde_json::Value,
    /// Each layer's entries, in the archive's order.
    pub layers: Vec<Vec<LayerEntry>>,
}

impl OciImage {
    #[track_caller]
    pub fn read(path: &str) -> OciImage {
        let blobs: BTreeMap<String, Vec<u8>> = archive_entries(path).into_iter().collect();
        let get = |name: &str| -> Vec<u8> {
            blobs
                .get(name)
                .unwrap_or_else(|| {
                    panic!(
                        "{path} has no {name}; it holds {:?}",
                        blobs.keys().collect::<Vec<_>>()
                    )
                })
                .clone()
        };
        let blob_name = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let index = json_blob(&get("index.json"), "index.json");
        let top = index["manifests"]
            .as_array()
            .and_then(|m| m.first())
            .unwrap_or_else(|| panic!("{path}: empty index.json {index}"));
        let top_digest = top["digest"].as_str().expect("digest").to_string();
        let manifest = image_manifest(|d| get(&blob_name(&d)), &top_digest);
        let config_digest = manifest["config"]["digest"].as_str().expect("config");
        let config = json_blob(&get(&blob_name(config_digest)), config_digest);
        let layers = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().expect("layer digest");
                layer_entries(&get(&blob_name(digest)), digest)
            })
            .collect();
        OciImage {
            manifest,
            config,
            layers,
        }
    }

    /// Every layer's entry lines, layer by layer.
    pub fn layer_lines(&self) -> Vec<Vec<String>> {
        self.layers
            .iter()
            .map(|l| l.iter().map(LayerEntry::line).collect())
            .collect()
    }

    /// Paths of files in any layer whose content holds `needle`.
    pub fn files_containing(&self, needle: &[u8]) -> Vec<String> {
        self.layers
            .iter()
            .flatten()
            .filter(|e| contains(&e.content, needle))
            .map(|e| e.path.clone())
            .collect()
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The entries of a layer blob (gzip or plain tar), sorted by path.
pub fn layer_entries(blob: &[u8], what: &str) -> Vec<LayerEntry> {
    let reader: Box<dyn Read + '_> = if blob.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else {
        Box::new(blob)
    };
    tar_entries(reader, what)
}

/// The entries of a tar stream, sorted by path.
pub fn tar_entries(reader: impl Read, what: &str) -> Vec<LayerEntry> {
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive
        .entries()
        .unwrap_or_else(|e| panic!("reading {what}: {e}"))
    {
        let mut entry = entry.unwrap_or_else(|e| panic!("reading {what}: {e}"));
        let header = entry.header().clone();
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let link = entry
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = header.entry_type();
        let kind = match t {
            tar::EntryType::Regular | tar::EntryType::Continuous => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            _ => '?',
        };
        let mut content = Vec::new();
        if kind == 'f' {
            entry.read_to_end(&mut content).expect("entry content");
        }
        let sha256 = if kind == 'f' {
            hex::encode(Sha256::digest(&content))
        } else {
            String::new()
        };
        out.push(LayerEntry {
            path,
            kind,
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            size: content.len() as u64,
            link,
            sha256,
            content,
        });
    }
    out.sort();
    out
}

/// An image config without what differs between two builds of the same
/// context: creation times and the layer digests (RUN steps stamp their
/// files with the time they ran; the layer file lists are compared instead).
pub fn comparable_config(config: &serde_json::Value) -> serde_json::Value {
    let mut c = config.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("created");
        if let Some(rootfs) = o.get_mut("rootfs").and_then(|r| r.as_object_mut()) {
            let n = rootfs
                .get("diff_ids")
                .and_then(|d| d.as_array())
                .map(Vec::len)
                .unwrap_or(0);
            rootfs.insert("diff_ids".into(), serde_json::json!(format!("{n} layers")));
        }
        if let Some(history) = o.get_mut("history").and_then(|h| h.as_array_mut()) {
            for h in history {
                if let Some(h) = h.as_object_mut() {
                    h.remove("created");
                }
            }
        }
    }
    c
}

/// Lines only in `a` and only in `b`, for a readable failure.
pub fn line_diff(a: &[String], b: &[String]) -> String {
    let a_set: BTreeSet<&String> = a.iter().collect();
    let b_set: BTreeSet<&String> = b.iter().collect();
    let mut s = String::new();
    for l in a_set.difference(&b_set) {
        s.push_str(&format!("  - {l}\n"));
    }
    for l in b_set.difference(&a_set) {
        s.push_str(&format!("  + {l}\n"));
    }
    s
}

// --- the reference: docker buildx build on the same Engine -------------------------------

/// The busybox fixture unpacked as an OCI layout directory on the host, for
/// `--build-context busybox=oci-layout://…` (the Engine's store holds no images).
pub fn busybox_layout() -> &'static str {
    static DIR: OnceLock<String> = OnceLock::new();
    DIR.get_or_init(|| {
        // Keyed by the archive's manifest: one unpacked copy per fixture
        // version, shared by runs (unpacked aside, then renamed into place).
        let digest = busybox_fixture()
            .manifest_digest
            .trim_start_matches("sha256:");
        let dir = std::env::temp_dir().join(format!("berth-tests-busybox-{}", &digest[..16]));
        if !dir.join("index.json").exists() {
            let tmp = std::env::temp_dir().join(format!(
                "berth-tests-busybox-unpacking-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).expect("busybox layout dir");
            let file =
                std::fs::File::open(BUSYBOX_TAR).unwrap_or_else(|e| panic!("{BUSYBOX_TAR}: {e}"));
            tar::Archive::new(file)
                .unpack(&tmp)
                .unwrap_or_else(|e| panic!("unpacking {BUSYBOX_TAR}: {e}"));
            // Another run may have won the race; its copy is the same.
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        dir.display().to_string()
    })
}

/// Fails loudly unless the BuildKit host and its buildx client are there.
pub fn buildhost() {
    stack();
    let socket = Path::new(BUILDHOST_SOCKET);
    assert!(
        socket.exists(),
        "the stack's BuildKit host socket {BUILDHOST_SOCKET} is missing: run fixtures/stack/up.sh"
    );
    let plugin = Path::new("/usr/libexec/docker/cli-plugins/docker-buildx");
    assert!(
        plugin.exists(),
        "{} is missing: the reference builds need Debian's docker-buildx (fixtures/stack/install-deps.sh)",
        plugin.display()
    );
}

/// `docker buildx build` of `context` on the stack's Engine, on the host as
/// root, with the busybox fixture as the named context `busybox`, RUN steps
/// in host network mode (the sandbox's netns), no provenance, the result
/// written as an OCI archive to `dest`.
pub fn buildx_reference(context: &str, extra: &[&str], dest: &str) -> Out {
    buildhost();
    // buildx keeps its client state here instead of root's ~/.docker.
    let config_dir = std::env::temp_dir().join("berth-tests-docker-config");
    std::fs::create_dir_all(&config_dir).expect("docker config dir");
    let mut cmd = Command::new(HOST_DOCKER);
    cmd.env("DOCKER_HOST", format!("unix://{BUILDHOST_SOCKET}"))
        .env("DOCKER_CONFIG", &config_dir)
        .env("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")
        .args([
            "buildx",
            "build",
            "--progress",
            "plain",
            "--network",
            "host",
        ])
        .args(["--provenance", "false"])
        .arg("--build-context")
        .arg(format!("busybox=oci-layout://{}", busybox_layout()))
        .arg("--output")
        .arg(format!("type=oci,dest={dest}"))
        .args(extra)
        .arg(context);
    run(cmd, Input::Null, COMMAND_TIMEOUT)
}

/// Asserts two images are the same image: equal configs (minus times and
/// layer digests) and equal layer file lists.
#[track_caller]
pub fn assert_same_image(berth: &OciImage, docker: &OciImage, what: &str) {
    let (b, d) = (
        comparable_config(&berth.config),
        comparable_config(&docker.config),
    );
    assert!(
        b == d,
        "{what}: image config differs from docker buildx's\n--- berth ---\n{}\n--- docker buildx ---\n{}",
        serde_json::to_string_pretty(&b).unwrap_or_default(),
        serde_json::to_string_pretty(&d).unwrap_or_default()
    );
    let (bl, dl) = (berth.layer_lines(), docker.layer_lines());
    assert_eq!(
        bl.len(),
        dl.len(),
        "{what}: berth's image has {} layers, docker buildx's {}",
        bl.len(),
        dl.len()
    );
    for (i, (b, d)) in bl.iter().zip(&dl).enumerate() {
        assert!(
            b == d,
            "{what}: layer {i} differs (- berth, + docker buildx):\n{}",
            line_diff(b, d)
        );
    }
}

// --- raw BuildKit Control calls ---------------------------------------------------------

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A gRPC channel to the gateway's BuildKit socket, from the test process
/// (root on the host): the gateway decides on the request alone.
pub async fn gateway_buildkit() -> Channel {
    Endpoint::try_from("http://gateway.invalid")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(|_| async {
            let stream = tokio::net::UnixStream::connect(GATEWAY_BUILDKIT_SOCKET).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }))
        .await
        .unwrap_or_else(|e| panic!("connecting to {GATEWAY_BUILDKIT_SOCKET}: {e}"))
}

/// A gRPC channel to the Engine's embedded BuildKit: `POST /grpc` with
/// `Upgrade: h2c`, HTTP/2 after the 101.
pub async fn engine_buildkit() -> Channel {
    Endpoint::try_from("http://docker.invalid")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(|_| async {
            let mut s = tokio::net::UnixStream::connect(BUILDHOST_SOCKET).await?;
            s.write_all(
                b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
            )
            .await?;
            // Byte by byte: nothing after the head may be consumed.
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).await?;
                head.push(b[0]);
                if head.len() > 16 * 1024 {
                    return Err(std::io::Error::other("no end of the upgrade response"));
                }
            }
            let head = String::from_utf8_lossy(&head);
            if !head.starts_with("HTTP/1.1 101") {
                return Err(std::io::Error::other(format!("no upgrade: {head}")));
            }
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
        }))
        .await
        .unwrap_or_else(|e| panic!("connecting to the Engine's /grpc at {BUILDHOST_SOCKET}: {e}"))
}

/// `moby.buildkit.v1.BuildHistoryRequest` (BuildKit's control.proto); berth's
/// protos leave the history API out, the tests need only these fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BuildHistoryRequest {
    #[prost(bool, tag = "1")]
    pub active_only: bool,
    #[prost(string, tag = "2")]
    pub r#ref: String,
    #[prost(bool, tag = "3")]
    pub early_exit: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BuildHistoryEvent {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub record: Option<BuildHistoryRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BuildHistoryRecord {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub frontend: String,
    #[prost(btree_map = "string, string", tag = "3")]
    pub frontend_attrs: BTreeMap<String, String>,
}

/// Every build record the Engine's BuildKit holds (finished and running):
/// what BuildKit received, whatever the gateway says.
pub fn build_history() -> Vec<BuildHistoryRecord> {
    buildhost();
    block_on(async {
        let mut grpc = tonic::client::Grpc::new(engine_buildkit().await);
        grpc.ready().await.expect("engine channel ready");
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/moby.buildkit.v1.Control/ListenBuildHistory",
        );
        let req = BuildHistoryRequest {
            active_only: false,
            r#ref: String::new(),
            early_exit: true,
        };
        let codec: tonic_prost::ProstCodec<BuildHistoryRequest, BuildHistoryEvent> =
            tonic_prost::ProstCodec::default();
        let mut stream = grpc
            .server_streaming(tonic::Request::new(req), path, codec)
            .await
            .unwrap_or_else(|e| panic!("ListenBuildHistory on the Engine: {e}"))
            .into_inner();
        let mut records = Vec::new();
        while let Some(event) = stream
            .message()
            .await
            .unwrap_or_else(|e| panic!("ListenBuildHistory stream: {e}"))
        {
            if let Some(r) = event.record {
                records.push(r);
            }
        }
        records
    })
}

/// The build label the tests put on a build to find its record in the
/// Engine's history (`--label` reaches BuildKit as a frontend attribute).
pub const PROBE_LABEL: &str = "org.berth.test.probe";

/// True when the Engine's BuildKit holds a build record carrying
/// `PROBE_LABEL=probe` or whose ref is `probe`.
pub fn buildkit_saw(probe: &str) -> bool {
    let key = format!("label:{PROBE_LABEL}");
    build_history()
        .iter()
        .any(|r| r.r#ref == probe || r.frontend_attrs.get(&key).map(String::as_str) == Some(probe))
}

// --- context transfers --------------------------------------------------------------------

/// One `berth: context sent: N bytes in M files` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub bytes: u64,
    pub files: u64,
}

/// Every transfer line a build printed (stderr), in order.
#[track_caller]
pub fn transfers(out: &Out) -> Vec<Sent> {
    out.stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix(TRANSFER_LINE))
        .map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                [n, "bytes", "in", m, "files" | "file"] => Sent {
                    bytes: n.parse().unwrap_or_else(|_| panic!("bytes in {rest:?}")),
                    files: m.parse().unwrap_or_else(|_| panic!("files in {rest:?}")),
                },
                _ => panic!("unexpected transfer line {rest:?}:\n{out}"),
            }
        })
        .collect()
}
